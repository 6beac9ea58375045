//! Label selectors (metav1.LabelSelector) and node selectors (core/v1 NodeSelector),
//! compiled once so that matching does not re-read the API structs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
    /// An operator we do not understand matches nothing, as upstream's validation would
    /// have refused it.
    Never,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    op: Op,
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.key);
        match &self.op {
            Op::In(vals) => v.is_some_and(|v| vals.contains(v)),
            Op::NotIn(vals) => v.is_none_or(|v| !vals.contains(v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
            Op::Gt(n) => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            Op::Lt(n) => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
            Op::Never => false,
        }
    }
}

/// A compiled label selector. `Nothing` is a nil selector in contexts where nil selects
/// nothing (affinity terms without a selector).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Nothing,
    Match(Vec<Requirement>),
}

impl Selector {
    pub fn everything() -> Selector {
        Selector::Match(Vec::new())
    }

    /// `None` selects nothing (pod affinity terms and spread constraints treat a missing
    /// selector so).
    pub fn from_label_selector(sel: Option<&LabelSelector>) -> Selector {
        let Some(sel) = sel else {
            return Selector::Nothing;
        };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::In(vec![v.clone()]),
            });
        }
        for e in sel.match_expressions.iter().flatten() {
            let vals = e.values.clone().unwrap_or_default();
            let op = match e.operator.as_str() {
                "In" => Op::In(vals),
                "NotIn" => Op::NotIn(vals),
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                _ => Op::Never,
            };
            reqs.push(Requirement {
                key: e.key.clone(),
                op,
            });
        }
        Selector::Match(reqs)
    }

    /// Adds `key in (value)` (matchLabelKeys of spread constraints and affinity terms).
    pub fn require(&mut self, key: &str, value: &str) {
        if let Selector::Match(r) = self {
            r.push(Requirement {
                key: key.into(),
                op: Op::In(vec![value.into()]),
            });
        }
    }

    /// Adds `key notin (value)` (mismatchLabelKeys of affinity terms).
    pub fn forbid(&mut self, key: &str, value: &str) {
        if let Selector::Match(r) = self {
            r.push(Requirement {
                key: key.into(),
                op: Op::NotIn(vec![value.into()]),
            });
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::Match(reqs) => reqs.iter().all(|r| r.matches(labels)),
        }
    }

    pub fn is_everything(&self) -> bool {
        matches!(self, Selector::Match(r) if r.is_empty())
    }
}

/// One compiled node selector term: label expressions and `metadata.name` field expressions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTerm {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

fn node_requirement(r: &NodeSelectorRequirement) -> Requirement {
    let vals = r.values.clone().unwrap_or_default();
    let op = match r.operator.as_str() {
        "In" => Op::In(vals),
        "NotIn" => Op::NotIn(vals),
        "Exists" => Op::Exists,
        "DoesNotExist" => Op::DoesNotExist,
        "Gt" | "Lt" => match vals.first().and_then(|v| v.parse::<i64>().ok()) {
            Some(n) if vals.len() == 1 && r.operator == "Gt" => Op::Gt(n),
            Some(n) if vals.len() == 1 => Op::Lt(n),
            _ => Op::Never,
        },
        _ => Op::Never,
    };
    Requirement {
        key: r.key.clone(),
        op,
    }
}

impl NodeTerm {
    pub fn new(t: &NodeSelectorTerm) -> NodeTerm {
        NodeTerm {
            labels: t
                .match_expressions
                .iter()
                .flatten()
                .map(node_requirement)
                .collect(),
            fields: t
                .match_fields
                .iter()
                .flatten()
                .map(node_requirement)
                .collect(),
        }
    }

    /// A term with no requirements matches nothing (upstream's nodeaffinity helper).
    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        if self.labels.is_empty() && self.fields.is_empty() {
            return false;
        }
        if !self.labels.iter().all(|r| r.matches(labels)) {
            return false;
        }
        self.fields.iter().all(|r| {
            r.key == "metadata.name" && {
                let mut m = Labels::new();
                m.insert("metadata.name".into(), node_name.into());
                r.matches(&m)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        }))
        .unwrap();
        let s = Selector::from_label_selector(Some(&sel));
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!Selector::from_label_selector(None).matches(&labels(&[])));
        assert!(
            Selector::from_label_selector(Some(&LabelSelector::default()))
                .matches(&labels(&[("x", "y")]))
        );
    }

    #[test]
    fn node_terms() {
        let t: NodeSelectorTerm = serde_json::from_value(json!({
            "matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}],
            "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]
        }))
        .unwrap();
        let t = NodeTerm::new(&t);
        assert!(t.matches("n1", &labels(&[("cores", "8")])));
        assert!(!t.matches("n2", &labels(&[("cores", "8")])));
        assert!(!t.matches("n1", &labels(&[("cores", "2")])));
        assert!(!NodeTerm::new(&NodeSelectorTerm::default()).matches("n1", &labels(&[])));
    }
}
