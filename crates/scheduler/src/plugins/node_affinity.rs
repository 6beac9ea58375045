//! NodeAffinity: `nodeSelector` and required node affinity filter; preferred node affinity
//! scores the sum of the weights of the terms a node matches.

use crate::framework::{Code, FilterResult, NodeInfo, PodInfo, Status};

pub const NAME: &str = "NodeAffinity";
pub const WEIGHT: i64 = 2;
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    if pod.node.matches(&node.name, node.labels()) {
        Ok(())
    } else {
        Err(Status::new(Code::Unresolvable, NAME, REASON))
    }
}

pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    pod.node
        .preferred
        .iter()
        .filter(|(_, t)| t.matches(&node.name, node.labels()))
        .map(|(w, _)| *w as i64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    #[test]
    fn selector_and_required_terms() {
        let ssd = node("a", json!({"disk": "ssd", "zone": "z1"}), "1", "1Gi");
        let hdd = node("b", json!({"disk": "hdd", "zone": "z2"}), "1", "1Gi");
        let p = pod("p", json!({"nodeSelector": {"disk": "ssd"}}));
        assert!(filter(&p, &ssd).is_ok());
        assert_eq!(filter(&p, &hdd).unwrap_err().reasons[0], REASON);
        let p = pod(
            "q",
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z9"]}]},
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}
            ]}}}}),
        );
        assert!(filter(&p, &ssd).is_err());
        assert!(filter(&p, &hdd).is_ok());
    }

    #[test]
    fn preferred_weights() {
        let p = pod(
            "p",
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 5, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
                {"weight": 2, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}
            ]}}}),
        );
        assert_eq!(
            score(
                &p,
                &node("a", json!({"disk": "ssd", "zone": "z1"}), "1", "1Gi")
            ),
            7
        );
        assert_eq!(score(&p, &node("b", json!({"zone": "z1"}), "1", "1Gi")), 2);
    }
}
