//! The default plugin set, in upstream's order, with upstream's score weights. Plugins are
//! plain functions over [`PodInfo`] and [`NodeInfo`]; this module strings them together.

pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;
pub mod volume_restrictions;

use std::collections::HashMap;

use crate::framework::{FilterResult, NodeInfo, PodInfo, MAX_NODE_SCORE};

/// What PreFilter computed for one scheduling attempt.
#[derive(Clone, Debug, Default)]
pub struct CycleState {
    pub spread: Option<pod_topology_spread::FilterState>,
    pub affinity: Option<inter_pod_affinity::FilterState>,
}

impl CycleState {
    pub fn new(pod: &PodInfo, nodes: &[NodeInfo]) -> CycleState {
        CycleState {
            spread: pod_topology_spread::FilterState::new(pod, nodes),
            affinity: inter_pod_affinity::FilterState::new(pod, nodes),
        }
    }

    /// Accounts for `other` leaving (`by` -1) or joining (`by` 1) `node` in the
    /// cluster-wide counts.
    pub fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, by: i64) {
        if let Some(s) = self.spread.as_mut() {
            s.update(pod, other, node, by);
        }
        if let Some(s) = self.affinity.as_mut() {
            s.update(pod, other, node, by);
        }
    }
}

/// Runs the filters in upstream's default order, stopping at the first that fails (as
/// kube-scheduler does, so each node reports one plugin's reasons).
pub fn filter(state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    node_unschedulable::filter(pod, node)?;
    node_name::filter(pod, node)?;
    taint_toleration::filter(pod, node)?;
    node_affinity::filter(pod, node)?;
    node_ports::filter(pod, node)?;
    node_resources::filter(pod, node)?;
    volume_restrictions::filter(pod, node)?;
    if let Some(s) = &state.spread {
        s.filter(pod, node)?;
    }
    if let Some(s) = &state.affinity {
        s.filter(pod, node)?;
    }
    Ok(())
}

/// Bit flags naming plugins, for requeueing: a pod rejected by some plugins is retried on
/// the cluster events that can change those plugins' answer.
pub fn plugin_bit(name: &str) -> u32 {
    match name {
        node_unschedulable::NAME => 1,
        node_name::NAME => 1 << 1,
        taint_toleration::NAME => 1 << 2,
        node_affinity::NAME => 1 << 3,
        node_ports::NAME => 1 << 4,
        node_resources::NAME => 1 << 5,
        volume_restrictions::NAME => 1 << 6,
        pod_topology_spread::NAME => 1 << 7,
        inter_pod_affinity::NAME => 1 << 8,
        _ => 1 << 31,
    }
}

/// Plugins whose verdict can change when an assigned pod goes away.
pub const ON_POD_DELETE: u32 = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8);
/// Plugins whose verdict can change when a pod is assigned or relabelled.
pub const ON_POD_ADD: u32 = (1 << 7) | (1 << 8);
/// Node changes can change every plugin's verdict.
pub const ON_NODE_CHANGE: u32 = u32::MAX;

/// upstream's `DefaultNormalizeScore`: scale to 0..=100 by the maximum, optionally reversed.
pub fn normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

/// The weighted sum of every score plugin for each feasible node (indices into `nodes`).
/// Plugins with nothing to say for this pod are skipped: they would add the same amount to
/// every node.
pub fn score(
    pod: &PodInfo,
    nodes: &[NodeInfo],
    feasible: &[usize],
    image_nodes: &HashMap<String, usize>,
) -> Vec<i64> {
    let mut total: Vec<i64> = feasible
        .iter()
        .map(|&i| node_resources::least_allocated(pod, &nodes[i]) * node_resources::WEIGHT)
        .collect();
    if node_resources::balanced_applies(pod) {
        for (t, &i) in total.iter_mut().zip(feasible) {
            *t += node_resources::balanced_allocation(pod, &nodes[i])
                * node_resources::BALANCED_WEIGHT;
        }
    }
    let mut add = |scores: Vec<i64>, weight: i64| {
        for (t, s) in total.iter_mut().zip(scores) {
            *t += s * weight;
        }
    };
    if feasible.iter().any(|&i| !nodes[i].taints.is_empty()) {
        let mut s: Vec<i64> = feasible
            .iter()
            .map(|&i| taint_toleration::score(pod, &nodes[i]))
            .collect();
        normalize(&mut s, true);
        add(s, taint_toleration::WEIGHT);
    }
    if !pod.node.preferred.is_empty() {
        let mut s: Vec<i64> = feasible
            .iter()
            .map(|&i| node_affinity::score(pod, &nodes[i]))
            .collect();
        normalize(&mut s, false);
        add(s, node_affinity::WEIGHT);
    }
    if let Some(s) = pod_topology_spread::scores(pod, nodes, feasible) {
        add(s, pod_topology_spread::WEIGHT);
    }
    if let Some(s) = inter_pod_affinity::scores(pod, nodes, feasible) {
        add(s, inter_pod_affinity::WEIGHT);
    }
    if !image_nodes.is_empty() && !pod.images.is_empty() {
        let s = feasible
            .iter()
            .map(|&i| image_locality::score(pod, &nodes[i], image_nodes, nodes.len()))
            .collect();
        add(s, image_locality::WEIGHT);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    #[test]
    fn normalize_like_upstream() {
        let mut s = vec![0, 1, 2];
        normalize(&mut s, true);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![0, 0];
        normalize(&mut s, true);
        assert_eq!(s, vec![100, 100]);
        let mut s = vec![3, 6];
        normalize(&mut s, false);
        assert_eq!(s, vec![50, 100]);
    }

    #[test]
    fn filters_stop_at_the_first_failure() {
        let n = node_full(
            "a",
            json!({}),
            json!({"taints": [{"key": "k", "effect": "NoSchedule"}]}),
            "1",
            "1Gi",
        );
        let p = pod("p", requests("2", "2Gi"));
        let e = filter(&CycleState::default(), &p, &n).unwrap_err();
        assert_eq!(e.plugin, taint_toleration::NAME);
        assert_eq!(e.reasons.len(), 1);
    }

    #[test]
    fn emptier_nodes_score_higher() {
        let mut nodes = vec![
            node("a", json!({}), "4", "8Gi"),
            node("b", json!({}), "4", "8Gi"),
        ];
        nodes[0].add_pod(pod("x", requests("2", "4Gi")));
        let p = pod("p", requests("1", "1Gi"));
        let s = score(&p, &nodes, &[0, 1], &HashMap::new());
        assert!(s[1] > s[0], "{s:?}");
    }
}
