//! InterPodAffinity: required pod affinity and anti-affinity of the incoming pod, and the
//! required anti-affinity of pods already running against it (filter); preferred terms of
//! both sides (score).

use std::collections::HashMap;

use crate::framework::{
    AffinityTerm, Code, FilterResult, NodeInfo, PodInfo, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "InterPodAffinity";
pub const WEIGHT: i64 = 2;
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

type Counts = HashMap<(String, String), i64>;

fn bump(m: &mut Counts, node: &NodeInfo, key: &str, by: i64) {
    if let Some(v) = node.labels().get(key) {
        let e = m.entry((key.to_string(), v.clone())).or_insert(0);
        *e += by;
        if *e == 0 {
            m.remove(&(key.to_string(), v.clone()));
        }
    }
}

fn matches_all(terms: &[AffinityTerm], p: &PodInfo) -> bool {
    terms.iter().all(|t| t.matches(p))
}

/// Topology-pair counts the filter needs, computed once per scheduling attempt.
#[derive(Clone, Debug, Default)]
pub struct FilterState {
    /// Existing pods' required anti-affinity terms that match the incoming pod.
    existing_anti: Counts,
    /// Existing pods matching all of the incoming pod's required affinity terms.
    affinity: Counts,
    /// Existing pods matching the incoming pod's required anti-affinity terms.
    anti: Counts,
}

impl FilterState {
    /// `None` when nothing can filter: the pod has no required terms and no running pod
    /// has required anti-affinity.
    pub fn new(pod: &PodInfo, nodes: &[NodeInfo]) -> Option<FilterState> {
        let own = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
        let any_anti = nodes.iter().any(|n| n.pods_with_required_anti_affinity > 0);
        if !own && !any_anti {
            return None;
        }
        let mut s = FilterState::default();
        for n in nodes {
            if n.pods_with_required_anti_affinity > 0 {
                for e in n
                    .pods
                    .iter()
                    .filter(|e| !e.required_anti_affinity.is_empty())
                {
                    for t in &e.required_anti_affinity {
                        if t.matches(pod) {
                            bump(&mut s.existing_anti, n, &t.topology_key, 1);
                        }
                    }
                }
            }
            if own {
                for e in &n.pods {
                    s.add_existing(pod, e, n, 1);
                }
            }
        }
        Some(s)
    }

    fn add_existing(&mut self, pod: &PodInfo, e: &PodInfo, n: &NodeInfo, by: i64) {
        if !pod.required_affinity.is_empty() && matches_all(&pod.required_affinity, e) {
            for t in &pod.required_affinity {
                bump(&mut self.affinity, n, &t.topology_key, by);
            }
        }
        for t in &pod.required_anti_affinity {
            if t.matches(e) {
                bump(&mut self.anti, n, &t.topology_key, by);
            }
        }
    }

    /// Accounts for `other` leaving (`by` -1) or joining (`by` 1) `node` (preemption's
    /// what-if).
    pub fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, by: i64) {
        for t in &other.required_anti_affinity {
            if t.matches(pod) {
                bump(&mut self.existing_anti, node, &t.topology_key, by);
            }
        }
        self.add_existing(pod, other, node, by);
    }

    pub fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> FilterResult {
        let labels = node.labels();
        if !pod.required_affinity.is_empty() {
            let mut pods_exist = true;
            for t in &pod.required_affinity {
                match labels.get(&t.topology_key) {
                    None => {
                        return Err(Status::new(Code::Unresolvable, NAME, REASON_AFFINITY));
                    }
                    Some(v) => {
                        if self
                            .affinity
                            .get(&(t.topology_key.clone(), v.clone()))
                            .copied()
                            .unwrap_or(0)
                            <= 0
                        {
                            pods_exist = false;
                        }
                    }
                }
            }
            // The first pod of a group with affinity to itself may go anywhere.
            let first_of_group =
                self.affinity.is_empty() && matches_all(&pod.required_affinity, pod);
            if !pods_exist && !first_of_group {
                return Err(Status::new(Code::Unresolvable, NAME, REASON_AFFINITY));
            }
        }
        for t in &pod.required_anti_affinity {
            if let Some(v) = labels.get(&t.topology_key) {
                if self
                    .anti
                    .get(&(t.topology_key.clone(), v.clone()))
                    .copied()
                    .unwrap_or(0)
                    > 0
                {
                    return Err(Status::new(Code::Unschedulable, NAME, REASON_ANTI_AFFINITY));
                }
            }
        }
        for ((k, v), n) in &self.existing_anti {
            if *n > 0 && labels.get(k) == Some(v) {
                return Err(Status::new(
                    Code::Unschedulable,
                    NAME,
                    REASON_EXISTING_ANTI_AFFINITY,
                ));
            }
        }
        Ok(())
    }
}

/// Normalized scores for `feasible` (indices into `nodes`), or `None` when no preferred
/// term on either side applies.
pub fn scores(pod: &PodInfo, nodes: &[NodeInfo], feasible: &[usize]) -> Option<Vec<i64>> {
    let own = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
    let mut topo: HashMap<(&str, &str), i64> = HashMap::new();
    for n in nodes {
        if !own && n.pods_with_affinity == 0 {
            continue;
        }
        let labels = n.labels();
        let mut add = |key: &str, w: i64| {
            if let Some((k, v)) = labels.get_key_value(key) {
                *topo.entry((k.as_str(), v.as_str())).or_insert(0) += w;
            }
        };
        for e in &n.pods {
            for (w, t) in &pod.preferred_affinity {
                if t.matches(e) {
                    add(&t.topology_key, *w as i64);
                }
            }
            for (w, t) in &pod.preferred_anti_affinity {
                if t.matches(e) {
                    add(&t.topology_key, -(*w as i64));
                }
            }
            if !e.has_affinity() {
                continue;
            }
            // Existing pods' required affinity counts with hardPodAffinityWeight 1.
            for t in &e.required_affinity {
                if t.matches(pod) {
                    add(&t.topology_key, 1);
                }
            }
            for (w, t) in &e.preferred_affinity {
                if t.matches(pod) {
                    add(&t.topology_key, *w as i64);
                }
            }
            for (w, t) in &e.preferred_anti_affinity {
                if t.matches(pod) {
                    add(&t.topology_key, -(*w as i64));
                }
            }
        }
    }
    if topo.is_empty() {
        return None;
    }
    let raw: Vec<i64> = feasible
        .iter()
        .map(|&i| {
            let labels = nodes[i].labels();
            topo.iter()
                .filter(|((k, v), _)| labels.get(*k).is_some_and(|l| l == v))
                .map(|(_, s)| *s)
                .sum()
        })
        .collect();
    let min = raw.iter().copied().min().unwrap_or(0);
    let max = raw.iter().copied().max().unwrap_or(0);
    Some(
        raw.iter()
            .map(|s| {
                if max > min {
                    (MAX_NODE_SCORE as f64 * ((s - min) as f64 / (max - min) as f64)) as i64
                } else {
                    0
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    fn web(name: &str, aff: serde_json::Value) -> std::sync::Arc<PodInfo> {
        pod_with(
            name,
            json!({"labels": {"app": "web"}}),
            json!({"affinity": aff}),
        )
    }

    fn anti() -> serde_json::Value {
        json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}})
    }

    fn hosts() -> Vec<NodeInfo> {
        ["a", "b"]
            .iter()
            .map(|n| {
                node(
                    n,
                    json!({"kubernetes.io/hostname": n, "zone": "z1"}),
                    "4",
                    "8Gi",
                )
            })
            .collect()
    }

    #[test]
    fn anti_affinity_one_per_node() {
        let mut nodes = hosts();
        nodes[0].add_pod(web("x", anti()));
        let p = web("p", anti());
        let st = FilterState::new(&p, &nodes).unwrap();
        let e = st.filter(&p, &nodes[0]).unwrap_err();
        assert_eq!(
            (e.code, e.reasons[0].as_ref()),
            (Code::Unschedulable, REASON_ANTI_AFFINITY)
        );
        assert!(st.filter(&p, &nodes[1]).is_ok());
        // A pod without terms is still kept away by the existing pod's anti-affinity.
        let plain = pod_with("q", json!({"labels": {"app": "web"}}), json!({}));
        let st = FilterState::new(&plain, &nodes).unwrap();
        assert_eq!(
            st.filter(&plain, &nodes[0]).unwrap_err().reasons[0],
            REASON_EXISTING_ANTI_AFFINITY
        );
        // Preemption's what-if: without the victim the node fits.
        let mut st = FilterState::new(&p, &nodes).unwrap();
        let victim = nodes[0].pods[0].clone();
        st.update(&p, &victim, &nodes[0], -1);
        assert!(st.filter(&p, &nodes[0]).is_ok());
    }

    #[test]
    fn affinity_needs_a_matching_pod_except_for_the_first() {
        let aff = json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}});
        let mut nodes = hosts();
        let p = web("p", aff.clone());
        // No matching pod anywhere and the pod matches itself: any node.
        let st = FilterState::new(&p, &nodes).unwrap();
        assert!(st.filter(&p, &nodes[0]).is_ok());
        nodes[1].add_pod(web("x", json!({})));
        let st = FilterState::new(&p, &nodes).unwrap();
        let e = st.filter(&p, &nodes[0]).unwrap_err();
        assert_eq!(
            (e.code, e.reasons[0].as_ref()),
            (Code::Unresolvable, REASON_AFFINITY)
        );
        assert!(st.filter(&p, &nodes[1]).is_ok());
    }

    #[test]
    fn preferred_terms_score() {
        let mut nodes = hosts();
        nodes[1].add_pod(pod_with("db", json!({"labels": {"app": "db"}}), json!({})));
        let p = web(
            "p",
            json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}}]}}),
        );
        assert_eq!(scores(&p, &nodes, &[0, 1]).unwrap(), vec![0, 100]);
        assert!(scores(&pod("q", json!({})), &nodes, &[0, 1]).is_none());
    }
}
