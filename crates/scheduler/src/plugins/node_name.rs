//! NodeName: a pod that names its node fits only there.

use crate::framework::{Code, FilterResult, NodeInfo, PodInfo, Status};

pub const NAME: &str = "NodeName";
pub const REASON: &str = "node(s) didn't match the requested node name";

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(n) if !n.is_empty() && n != node.name => {
            Err(Status::new(Code::Unresolvable, NAME, REASON))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    #[test]
    fn only_the_named_node() {
        let p = pod("p", json!({"nodeName": "a"}));
        assert!(filter(&p, &node("a", json!({}), "1", "1Gi")).is_ok());
        let e = filter(&p, &node("b", json!({}), "1", "1Gi")).unwrap_err();
        assert_eq!(e.reasons, vec![REASON]);
        assert!(filter(&pod("q", json!({})), &node("b", json!({}), "1", "1Gi")).is_ok());
    }
}
