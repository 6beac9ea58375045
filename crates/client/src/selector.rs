//! Label selectors as controllers evaluate them: `metav1.LabelSelector` (matchLabels and
//! matchExpressions) and the plain map selectors of ReplicationControllers and Services.
//!
//! As upstream's `metav1.LabelSelectorAsSelector`: a missing selector selects nothing, an
//! empty one selects everything, and an expression with an unknown operator or a value
//! list of the wrong shape is an error (reported by the caller, never a panic).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed selector. `None` requirements select nothing (a nil selector).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    reqs: Option<Vec<Requirement>>,
}

impl Selector {
    /// The selector that matches no object.
    pub fn nothing() -> Self {
        Selector { reqs: None }
    }

    /// The selector that matches every object.
    pub fn everything() -> Self {
        Selector {
            reqs: Some(Vec::new()),
        }
    }

    /// From a `metav1.LabelSelector` (`None`: selects nothing).
    pub fn from_label_selector(sel: Option<&LabelSelector>) -> Result<Self, String> {
        let Some(sel) = sel else {
            return Ok(Self::nothing());
        };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::In,
                values: vec![v.clone()],
            });
        }
        for e in sel.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            let op = match e.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => return Err(format!("{other:?} is not a valid label selector operator")),
            };
            match op {
                Op::In | Op::NotIn if values.is_empty() => {
                    return Err(format!(
                        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty (key {:?})",
                        e.key
                    ))
                }
                Op::Exists | Op::DoesNotExist if !values.is_empty() => {
                    return Err(format!(
                        "values: Invalid value: {values:?}: values set must be empty for exists and does not exist (key {:?})",
                        e.key
                    ))
                }
                _ => {}
            }
            reqs.push(Requirement {
                key: e.key.clone(),
                op,
                values,
            });
        }
        Ok(Selector { reqs: Some(reqs) })
    }

    /// From a map selector (ReplicationController, Service): every pair must match. An
    /// empty or missing map selects nothing, as upstream's `SelectorFromValidatedSet` of
    /// an RC's (defaulted, validated non-empty) selector would never be empty.
    pub fn from_map(map: Option<&BTreeMap<String, String>>) -> Self {
        match map {
            Some(m) if !m.is_empty() => Selector {
                reqs: Some(
                    m.iter()
                        .map(|(k, v)| Requirement {
                            key: k.clone(),
                            op: Op::In,
                            values: vec![v.clone()],
                        })
                        .collect(),
                ),
            },
            _ => Self::nothing(),
        }
    }

    /// Whether the selector matches every object.
    pub fn is_everything(&self) -> bool {
        self.reqs.as_ref().is_some_and(|r| r.is_empty())
    }

    pub fn is_nothing(&self) -> bool {
        self.reqs.is_none()
    }

    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let Some(reqs) = &self.reqs else {
            return false;
        };
        reqs.iter().all(|r| {
            let v = labels.and_then(|l| l.get(&r.key));
            match r.op {
                Op::In => v.is_some_and(|v| r.values.contains(v)),
                Op::NotIn => v.is_none_or(|v| !r.values.contains(v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        let s = Selector::from_label_selector(Some(&sel)).unwrap();
        assert!(s.matches(Some(&labels(&[("app", "web")]))));
        assert!(s.matches(Some(&labels(&[("app", "web"), ("tier", "fe")]))));
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "db")]))));
        assert!(!s.matches(None));
        assert!(Selector::from_label_selector(None).unwrap().is_nothing());
        let empty = Selector::from_label_selector(Some(&LabelSelector::default())).unwrap();
        assert!(empty.is_everything() && empty.matches(None));
        let bad = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "Near".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert!(Selector::from_label_selector(Some(&bad)).is_err());
    }

    #[test]
    fn map_selectors() {
        let s = Selector::from_map(Some(&labels(&[("app", "web")])));
        assert!(s.matches(Some(&labels(&[("app", "web"), ("x", "y")]))));
        assert!(!s.matches(Some(&labels(&[("app", "db")]))));
        assert!(Selector::from_map(Some(&BTreeMap::new())).is_nothing());
    }
}
