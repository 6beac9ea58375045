//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods that tolerate
//! the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use crate::framework::{tolerated, Code, FilterResult, NodeInfo, PodInfo, Status};

pub const NAME: &str = "NodeUnschedulable";
pub const REASON: &str = "node(s) were unschedulable";

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    if !node.unschedulable {
        return Ok(());
    }
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if tolerated(pod.tolerations(), &taint) {
        Ok(())
    } else {
        Err(Status::new(Code::Unresolvable, NAME, REASON))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    #[test]
    fn cordoned_nodes() {
        let n = node_full("a", json!({}), json!({"unschedulable": true}), "1", "1Gi");
        let e = filter(&pod("p", json!({})), &n).unwrap_err();
        assert_eq!(
            (e.code, e.reasons[0].as_ref()),
            (Code::Unresolvable, REASON)
        );
        let tolerant = pod(
            "q",
            json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}),
        );
        assert!(filter(&tolerant, &n).is_ok());
        assert!(filter(&pod("p", json!({})), &node("b", json!({}), "1", "1Gi")).is_ok());
    }
}
