//! TaintToleration: `NoSchedule`/`NoExecute` taints a pod does not tolerate rule the node
//! out; untolerated `PreferNoSchedule` taints lower the node's score.

use crate::framework::{tolerated, tolerates, Code, FilterResult, NodeInfo, PodInfo, Status};

pub const NAME: &str = "TaintToleration";
pub const WEIGHT: i64 = 3;

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    let tolerations = pod.tolerations();
    for t in &node.taints {
        if (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(tolerations, t) {
            return Err(Status::new(
                Code::Unresolvable,
                NAME,
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    t.key,
                    t.value.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    Ok(())
}

/// The number of `PreferNoSchedule` taints not tolerated (by tolerations with an empty or
/// `PreferNoSchedule` effect); fewer is better, see [`super::normalize`] with `reverse`.
pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let prefer: Vec<_> = pod
        .tolerations()
        .iter()
        .filter(|t| {
            t.effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
        })
        .collect();
    node.taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule" && !prefer.iter().any(|tol| tolerates(tol, t)))
        .count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    fn tainted(taints: serde_json::Value) -> NodeInfo {
        node_full("a", json!({}), json!({"taints": taints}), "1", "1Gi")
    }

    #[test]
    fn untolerated_taints_filter_with_upstream_wording() {
        let n = tainted(
            json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
        );
        let e = filter(&pod("p", json!({})), &n).unwrap_err();
        assert_eq!(
            e.reasons[0],
            "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
        );
        assert_eq!(e.code, Code::Unresolvable);
        let ok = pod(
            "q",
            json!({"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}),
        );
        assert!(filter(&ok, &n).is_ok());
        let n = tainted(json!([{"key": "k", "value": "v", "effect": "NoExecute"}]));
        let wrong_value = pod("r", json!({"tolerations": [{"key": "k", "value": "w"}]}));
        assert_eq!(
            filter(&wrong_value, &n).unwrap_err().reasons[0],
            "node(s) had untolerated taint {k: v}"
        );
        let all = pod("s", json!({"tolerations": [{"operator": "Exists"}]}));
        assert!(filter(&all, &n).is_ok());
        // PreferNoSchedule never filters.
        assert!(filter(
            &pod("p", json!({})),
            &tainted(json!([{"key": "k", "effect": "PreferNoSchedule"}]))
        )
        .is_ok());
    }

    #[test]
    fn prefer_no_schedule_counts() {
        let n = tainted(json!([
            {"key": "a", "effect": "PreferNoSchedule"},
            {"key": "b", "effect": "PreferNoSchedule"},
            {"key": "c", "effect": "NoSchedule"}
        ]));
        assert_eq!(score(&pod("p", json!({})), &n), 2);
        let p = pod(
            "q",
            json!({"tolerations": [{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}]}),
        );
        assert_eq!(score(&p, &n), 1);
    }
}
