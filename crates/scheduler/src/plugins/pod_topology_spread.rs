//! PodTopologySpread: `DoNotSchedule` constraints filter nodes whose domain would exceed
//! `maxSkew` over the least loaded domain (with `minDomains`); `ScheduleAnyway` constraints
//! score nodes in less loaded domains higher.

use std::collections::{HashMap, HashSet};

use crate::framework::{
    tolerated, Code, FilterResult, NodeInfo, PodInfo, SpreadConstraint, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "PodTopologySpread";
pub const WEIGHT: i64 = 2;
pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

/// Pods on `node` that count for constraint `c` of `pod`.
fn count_matching(c: &SpreadConstraint, pod: &PodInfo, node: &NodeInfo) -> i64 {
    node.pods
        .iter()
        .filter(|p| {
            !p.terminating && p.namespace == pod.namespace && c.selector.matches(p.labels())
        })
        .count() as i64
}

/// Whether `node` takes part in the constraint's domains (node inclusion policies).
fn eligible(c: &SpreadConstraint, pod: &PodInfo, node: &NodeInfo) -> bool {
    if c.honor_node_affinity && !pod.node.matches(&node.name, node.labels()) {
        return false;
    }
    if c.honor_taints {
        let untolerated = node.taints.iter().any(|t| {
            (t.effect == "NoSchedule" || t.effect == "NoExecute")
                && !tolerated(pod.tolerations(), t)
        });
        if untolerated {
            return false;
        }
    }
    true
}

/// Matching-pod counts per (constraint, domain) over the whole cluster, for the hard
/// constraints.
#[derive(Clone, Debug)]
pub struct FilterState {
    constraints: Vec<SpreadConstraint>,
    counts: Vec<HashMap<String, i64>>,
}

impl FilterState {
    /// `None` when the pod has no `DoNotSchedule` constraint.
    pub fn new(pod: &PodInfo, nodes: &[NodeInfo]) -> Option<FilterState> {
        let constraints: Vec<SpreadConstraint> =
            pod.spread.iter().filter(|c| c.hard).cloned().collect();
        if constraints.is_empty() {
            return None;
        }
        let mut counts = vec![HashMap::new(); constraints.len()];
        for n in nodes {
            let labels = n.labels();
            if !constraints
                .iter()
                .all(|c| labels.contains_key(&c.topology_key))
            {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if !eligible(c, pod, n) {
                    continue;
                }
                let v = &labels[&c.topology_key];
                *counts[i].entry(v.clone()).or_insert(0) += count_matching(c, pod, n);
            }
        }
        Some(FilterState {
            constraints,
            counts,
        })
    }

    fn min_match(&self, i: usize) -> i64 {
        let c = &self.constraints[i];
        let domains = self.counts[i].len() as i32;
        if c.min_domains.is_some_and(|m| domains < m) {
            return 0;
        }
        self.counts[i].values().copied().min().unwrap_or(0)
    }

    pub fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> FilterResult {
        let labels = node.labels();
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(v) = labels.get(&c.topology_key) else {
                return Err(Status::new(Code::Unresolvable, NAME, REASON_MISSING_LABEL));
            };
            let self_match = c.selector.matches(pod.labels()) as i64;
            let count = self.counts[i].get(v).copied().unwrap_or(0);
            if count + self_match - self.min_match(i) > c.max_skew as i64 {
                return Err(Status::new(Code::Unschedulable, NAME, REASON));
            }
        }
        Ok(())
    }

    /// Accounts for `other` leaving (`by` -1) or joining (`by` 1) `node` (preemption's
    /// what-if).
    pub fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, by: i64) {
        let victim = other;
        if victim.namespace != pod.namespace {
            return;
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if let Some(v) = node.labels().get(&c.topology_key) {
                if eligible(c, pod, node) && c.selector.matches(victim.labels()) {
                    if let Some(n) = self.counts[i].get_mut(v) {
                        *n += by;
                    }
                }
            }
        }
    }
}

/// Scores for `feasible` (indices into `nodes`), already normalized to 0..=100, or `None`
/// when the pod has no `ScheduleAnyway` constraint.
pub fn scores(pod: &PodInfo, nodes: &[NodeInfo], feasible: &[usize]) -> Option<Vec<i64>> {
    let soft: Vec<&SpreadConstraint> = pod.spread.iter().filter(|c| !c.hard).collect();
    if soft.is_empty() {
        return None;
    }
    let has_keys = |n: &NodeInfo| {
        soft.iter()
            .all(|c| n.labels().contains_key(&c.topology_key))
    };
    // Domain sizes among the feasible nodes give each constraint its weight.
    let mut weights = Vec::with_capacity(soft.len());
    for c in &soft {
        let size = if c.topology_key == "kubernetes.io/hostname" {
            feasible.iter().filter(|&&i| has_keys(&nodes[i])).count()
        } else {
            feasible
                .iter()
                .filter(|&&i| has_keys(&nodes[i]))
                .map(|&i| &nodes[i].labels()[&c.topology_key])
                .collect::<HashSet<_>>()
                .len()
        };
        weights.push(((size + 2) as f64).ln());
    }
    // Matching pods per domain, over every eligible node of the cluster.
    let mut counts: Vec<HashMap<&str, i64>> = vec![HashMap::new(); soft.len()];
    for (i, c) in soft.iter().enumerate() {
        if c.topology_key == "kubernetes.io/hostname" {
            continue;
        }
        for n in nodes {
            if !has_keys(n) || !eligible(c, pod, n) {
                continue;
            }
            *counts[i]
                .entry(n.labels()[&c.topology_key].as_str())
                .or_insert(0) += count_matching(c, pod, n);
        }
    }
    let raw: Vec<Option<i64>> = feasible
        .iter()
        .map(|&ni| {
            let n = &nodes[ni];
            if !has_keys(n) {
                return None;
            }
            let mut s = 0.0;
            for (i, c) in soft.iter().enumerate() {
                let cnt = if c.topology_key == "kubernetes.io/hostname" {
                    count_matching(c, pod, n)
                } else {
                    counts[i]
                        .get(n.labels()[&c.topology_key].as_str())
                        .copied()
                        .unwrap_or(0)
                };
                s += cnt as f64 * weights[i] + (c.max_skew - 1) as f64;
            }
            Some(s.round() as i64)
        })
        .collect();
    let (mut min, mut max) = (i64::MAX, 0i64);
    for s in raw.iter().flatten() {
        min = min.min(*s);
        max = max.max(*s);
    }
    Some(
        raw.iter()
            .map(|s| match s {
                None => 0,
                Some(_) if max == 0 => MAX_NODE_SCORE,
                Some(s) => MAX_NODE_SCORE * (max + min - s) / max,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    fn spread_pod(name: &str, when: &str, min_domains: Option<i32>) -> std::sync::Arc<PodInfo> {
        let mut c = json!({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}});
        if let Some(m) = min_domains {
            c["minDomains"] = json!(m);
        }
        pod_with(
            name,
            json!({"labels": {"app": "web"}}),
            json!({"topologySpreadConstraints": [c]}),
        )
    }

    fn zones() -> Vec<NodeInfo> {
        vec![
            node("a", json!({"zone": "z1"}), "4", "8Gi"),
            node("b", json!({"zone": "z2"}), "4", "8Gi"),
            node("c", json!({"zone": "z3"}), "4", "8Gi"),
        ]
    }

    #[test]
    fn max_skew_over_zones() {
        let mut nodes = zones();
        nodes[0].add_pod(spread_pod("x", "DoNotSchedule", None));
        let p = spread_pod("p", "DoNotSchedule", None);
        let st = FilterState::new(&p, &nodes).unwrap();
        let e = st.filter(&p, &nodes[0]).unwrap_err();
        assert_eq!(
            (e.code, e.reasons[0].as_ref()),
            (Code::Unschedulable, REASON)
        );
        assert!(st.filter(&p, &nodes[1]).is_ok());
        let bare = node("d", json!({}), "4", "8Gi");
        assert_eq!(
            st.filter(&p, &bare).unwrap_err().reasons[0],
            REASON_MISSING_LABEL
        );
        // Pods that do not match the selector do not count.
        let mut nodes = zones();
        nodes[0].add_pod(pod_with("y", json!({"labels": {"app": "db"}}), json!({})));
        let st = FilterState::new(&p, &nodes).unwrap();
        assert!(st.filter(&p, &nodes[0]).is_ok());
    }

    #[test]
    fn min_domains_treats_missing_domains_as_empty() {
        let mut nodes = zones();
        for (i, n) in nodes.iter_mut().enumerate() {
            n.add_pod(spread_pod(&format!("x{i}"), "DoNotSchedule", None));
        }
        let p = spread_pod("p", "DoNotSchedule", Some(4));
        let st = FilterState::new(&p, &nodes).unwrap();
        // Only 3 domains < minDomains 4: the global minimum is 0, so skew 2 > 1 everywhere.
        assert!(nodes.iter().all(|n| st.filter(&p, n).is_err()));
        let p = spread_pod("p", "DoNotSchedule", None);
        let st = FilterState::new(&p, &nodes).unwrap();
        assert!(nodes.iter().all(|n| st.filter(&p, n).is_ok()));
    }

    #[test]
    fn soft_constraints_prefer_emptier_domains() {
        let mut nodes = zones();
        nodes[0].add_pod(spread_pod("x", "ScheduleAnyway", None));
        nodes[0].add_pod(spread_pod("y", "ScheduleAnyway", None));
        let p = spread_pod("p", "ScheduleAnyway", None);
        let s = scores(&p, &nodes, &[0, 1, 2]).unwrap();
        assert!(s[0] < s[1]);
        assert_eq!(s[1], MAX_NODE_SCORE);
        assert_eq!(s[1], s[2]);
        assert!(scores(&pod("q", json!({})), &nodes, &[0]).is_none());
    }
}
