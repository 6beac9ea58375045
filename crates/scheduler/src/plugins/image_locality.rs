//! ImageLocality: prefer nodes that already have the pod's images, weighted by how widely
//! each image is spread over the cluster (so one node is not favoured for ever).

use std::collections::HashMap;

use crate::framework::{NodeInfo, PodInfo, MAX_NODE_SCORE};

pub const NAME: &str = "ImageLocality";
pub const WEIGHT: i64 = 1;

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// `image_nodes`: how many nodes have each image; `total_nodes`: nodes in the cluster.
pub fn score(
    pod: &PodInfo,
    node: &NodeInfo,
    image_nodes: &HashMap<String, usize>,
    total_nodes: usize,
) -> i64 {
    if pod.images.is_empty() || total_nodes == 0 {
        return 0;
    }
    let mut sum = 0i64;
    for img in &pod.images {
        if let Some(size) = node.images.get(img) {
            let spread = *image_nodes.get(img).unwrap_or(&1) as f64 / total_nodes as f64;
            sum += (*size as f64 * spread) as i64;
        }
    }
    let max = MAX_CONTAINER_THRESHOLD * pod.images.len() as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    #[test]
    fn bigger_and_more_widespread_images_score_higher() {
        let mut n = node("a", json!({}), "1", "1Gi");
        n.images.insert("nginx:latest".into(), 500 * MB);
        let p = pod(
            "p",
            json!({"containers": [{"name": "c", "image": "nginx"}]}),
        );
        let mut spread = HashMap::new();
        spread.insert("nginx:latest".to_string(), 2usize);
        // 500MB × 2/2 nodes = 500MB: (500-23)/(1000-23) → 48.
        assert_eq!(score(&p, &n, &spread, 2), 48);
        spread.insert("nginx:latest".to_string(), 1usize);
        assert_eq!(score(&p, &n, &spread, 2), 23);
        assert_eq!(score(&p, &node("b", json!({}), "1", "1Gi"), &spread, 2), 0);
    }
}
