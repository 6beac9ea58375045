//! Whether a node satisfies a pod's hard node constraints (`spec.nodeSelector` and
//! `requiredDuringSchedulingIgnoredDuringExecution` node affinity), with upstream's rules
//! (`nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)`): terms are ORed, the
//! requirements of a term ANDed, an empty term matches nothing, `matchFields` knows only
//! `metadata.name`. Used by the DaemonSet controller to decide where its pods belong.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec};

/// The field a DaemonSet pod's affinity pins it to its node with.
pub const NODE_NAME_FIELD: &str = "metadata.name";

/// Whether `node` satisfies the pod's node selector and required node affinity.
pub fn required_matches(spec: &PodSpec, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.as_deref().unwrap_or_default();
    if let Some(sel) = &spec.node_selector {
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(sel) => sel
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, name, labels)),
    }
}

/// One node selector term: every requirement holds, and it has at least one.
pub fn term_matches(
    t: &NodeSelectorTerm,
    node_name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let exprs = t.match_expressions.as_deref().unwrap_or_default();
    let fields = t.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == NODE_NAME_FIELD && requirement_matches(r, Some(node_name)))
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value.and_then(|v| v.parse::<i64>().ok()), values) else {
                return false;
            };
            let Ok(bound) = bound.parse::<i64>() else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// The node a pod is bound to, or the one its required affinity pins it to with a single
/// `metadata.name In [node]` field requirement (`util.GetTargetNodeName`).
pub fn target_node(spec: &PodSpec) -> Option<String> {
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.to_string());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.as_ref()?.iter().find_map(|r| {
            let v = r.values.as_deref().unwrap_or_default();
            (r.key == NODE_NAME_FIELD && r.operator == "In" && v.len() == 1).then(|| v[0].clone())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSelector};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn spec(terms: Vec<NodeSelectorTerm>) -> PodSpec {
        PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: terms,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn selectors_terms_and_operators() {
        let n = node("a", &[("zone", "x"), ("cpus", "8")]);
        let mut s = PodSpec::default();
        assert!(required_matches(&s, &n));
        s.node_selector = Some([("zone".to_string(), "y".to_string())].into());
        assert!(!required_matches(&s, &n));

        let t = |exprs: Vec<NodeSelectorRequirement>| NodeSelectorTerm {
            match_expressions: Some(exprs),
            match_fields: None,
        };
        assert!(required_matches(
            &spec(vec![t(vec![req("cpus", "Gt", &["4"])])]),
            &n
        ));
        assert!(!required_matches(
            &spec(vec![t(vec![req("cpus", "Lt", &["4"])])]),
            &n
        ));
        assert!(required_matches(
            &spec(vec![t(vec![
                req("zone", "NotIn", &["y"]),
                req("gpu", "DoesNotExist", &[])
            ])]),
            &n
        ));
        // Terms are ORed; an empty term matches nothing.
        assert!(required_matches(
            &spec(vec![
                t(vec![req("zone", "In", &["y"])]),
                t(vec![req("zone", "Exists", &[])])
            ]),
            &n
        ));
        assert!(!required_matches(&spec(vec![t(vec![])]), &n));

        let pinned = spec(vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req(NODE_NAME_FIELD, "In", &["a"])]),
        }]);
        assert!(required_matches(&pinned, &n));
        assert!(!required_matches(&pinned, &node("b", &[])));
        assert_eq!(target_node(&pinned).as_deref(), Some("a"));
    }
}
