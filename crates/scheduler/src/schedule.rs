//! One scheduling attempt (upstream's `schedulePod`): PreFilter, then Filter over a sample
//! of nodes starting where the last attempt stopped, then Score and a random pick among the
//! best. Works directly on the cache, which the caller holds locked: no per-cycle copies
//! of nodes or pods.

use std::sync::Arc;

use crate::cache::Cache;
use crate::framework::{NodeInfo, PodInfo, Status};
use crate::plugins::{self, CycleState};

/// upstream: `minFeasibleNodesToFind` and `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES: usize = 100;
const MIN_FEASIBLE_PERCENTAGE: usize = 5;

/// How many feasible nodes to find before scoring (percentageOfNodesToScore's adaptive
/// default: 50% - nodes/125, at least 5% and at least 100 nodes).
pub fn num_feasible_nodes_to_find(num_all: usize, percentage: Option<u32>) -> usize {
    if num_all < MIN_FEASIBLE_NODES {
        return num_all;
    }
    let pct = match percentage {
        Some(p) if p > 0 => (p as usize).min(100),
        _ => 50usize
            .saturating_sub(num_all / 125)
            .max(MIN_FEASIBLE_PERCENTAGE),
    };
    (num_all * pct / 100).max(MIN_FEASIBLE_NODES)
}

/// Why no node fits: every node's filter status.
#[derive(Debug)]
pub struct FitFailure {
    pub num_all_nodes: usize,
    /// (node index in the cache, status) for every node that was filtered out.
    pub statuses: Vec<(usize, Status)>,
}

impl FitFailure {
    pub fn message(&self, post_filter: Option<&str>) -> String {
        crate::framework::fit_error_message(
            self.num_all_nodes,
            None,
            self.statuses.iter().map(|(_, s)| s),
            post_filter,
        )
    }

    /// The plugins that rejected the pod somewhere (for requeueing on events).
    pub fn rejected_by(&self) -> u32 {
        self.statuses
            .iter()
            .fold(0, |m, (_, s)| m | plugins::plugin_bit(s.plugin))
    }
}

#[derive(Debug)]
pub enum Error {
    /// No node at all (upstream's ErrNoNodesAvailable).
    NoNodes,
    Unfit(FitFailure),
}

pub const NO_NODES_MSG: &str = "no nodes available to schedule pods";

/// A small xorshift generator: tie-breaking among equal scores needs no crypto.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

/// Filters `pod` against node `i`, counting pods nominated there first when there are any.
pub fn filter_node(
    cache: &Cache,
    state: &CycleState,
    pod: &PodInfo,
    i: usize,
) -> Result<(), Status> {
    let node = &cache.nodes[i];
    if cache.has_nominated() {
        let nominated = cache.nominated_for(&node.name, pod);
        if !nominated.is_empty() {
            let mut n: NodeInfo = node.clone();
            for p in nominated {
                n.add_pod(p);
            }
            return plugins::filter(state, pod, &n);
        }
    }
    plugins::filter(state, pod, node)
}

/// Picks a node for `pod`, or says why none fits.
pub fn schedule(
    cache: &mut Cache,
    pod: &Arc<PodInfo>,
    percentage: Option<u32>,
    rng: &mut Rng,
) -> Result<String, Error> {
    let n = cache.nodes.len();
    if n == 0 {
        return Err(Error::NoNodes);
    }
    let state = CycleState::new(pod, &cache.nodes);
    let want = num_feasible_nodes_to_find(n, percentage);
    let start = cache.next_start % n;
    let mut feasible: Vec<usize> = Vec::with_capacity(want.min(n));
    let mut statuses = Vec::new();
    let mut processed = 0;
    for k in 0..n {
        let i = (start + k) % n;
        processed += 1;
        match filter_node(cache, &state, pod, i) {
            Ok(()) => {
                feasible.push(i);
                if feasible.len() >= want {
                    break;
                }
            }
            Err(s) => statuses.push((i, s)),
        }
    }
    cache.next_start = (start + processed) % n;
    if feasible.is_empty() {
        return Err(Error::Unfit(FitFailure {
            num_all_nodes: n,
            statuses,
        }));
    }
    if feasible.len() == 1 {
        return Ok(cache.nodes[feasible[0]].name.clone());
    }
    let scores = plugins::score(pod, &cache.nodes, &feasible, &cache.image_nodes);
    // Reservoir sampling among the nodes with the best score.
    let mut best = 0usize;
    let mut ties = 0u64;
    for (j, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = j;
            ties = 1;
        } else if *s == scores[best] {
            ties += 1;
            if rng.next_u64().is_multiple_of(ties) {
                best = j;
            }
        }
    }
    Ok(cache.nodes[feasible[best]].name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    #[test]
    fn feasible_node_sampling() {
        assert_eq!(num_feasible_nodes_to_find(50, None), 50);
        assert_eq!(num_feasible_nodes_to_find(1000, None), 420);
        assert_eq!(num_feasible_nodes_to_find(5000, None), 500);
        assert_eq!(num_feasible_nodes_to_find(10000, None), 500);
        assert_eq!(num_feasible_nodes_to_find(150, None), 100);
        assert_eq!(num_feasible_nodes_to_find(1000, Some(100)), 1000);
    }

    fn cache_with(nodes: Vec<NodeInfo>) -> Cache {
        let mut c = Cache::default();
        for n in nodes {
            c.set_node(n.node.clone());
        }
        c
    }

    #[test]
    fn spreads_and_reports_fit_errors() {
        let mut c = cache_with(vec![
            node("a", json!({}), "1", "1Gi"),
            node("b", json!({}), "1", "1Gi"),
        ]);
        let mut rng = Rng::new();
        let p = pod("p", requests("600m", "100Mi"));
        let first = schedule(&mut c, &p, None, &mut rng).unwrap();
        c.assume(p.clone(), &first);
        let q = pod("q", requests("600m", "100Mi"));
        let second = schedule(&mut c, &q, None, &mut rng).unwrap();
        assert_ne!(first, second);
        c.assume(q, &second);
        let r = pod("r", requests("600m", "100Mi"));
        let Err(Error::Unfit(f)) = schedule(&mut c, &r, None, &mut rng) else {
            panic!("should not fit");
        };
        assert_eq!(
            f.message(None),
            "0/2 nodes are available: 2 Insufficient cpu."
        );
        assert!(matches!(
            schedule(&mut Cache::default(), &r, None, &mut rng),
            Err(Error::NoNodes)
        ));
    }

    /// The scheduling cycle alone (PreFilter, Filter, Score, assume) at scheduler_perf's
    /// SchedulingBasic shape, without the API. A measurement, not a test of timing: run
    /// with `cargo test -p skiff-scheduler --release -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement"]
    fn cycle_throughput() {
        for nodes in [1000usize, 5000] {
            let mut c = Cache::default();
            for i in 0..nodes {
                let labels = json!({"kubernetes.io/hostname": format!("n{i}"),
                    "topology.kubernetes.io/zone": format!("zone-{}", i % 10)});
                c.set_node(node(&format!("n{i}"), labels, "4", "32Gi").node.clone());
            }
            let pods: Vec<_> = (0..10_000)
                .map(|i| pod(&format!("p{i}"), requests("100m", "500Mi")))
                .collect();
            let mut rng = Rng::new();
            let t = std::time::Instant::now();
            for p in &pods {
                let n = schedule(&mut c, p, None, &mut rng).unwrap();
                c.assume(p.clone(), &n);
            }
            let took = t.elapsed();
            eprintln!(
                "{nodes} nodes, 10000 pods: {:.0} pods/s ({:.1} µs per pod)",
                10_000.0 / took.as_secs_f64(),
                took.as_secs_f64() * 1e6 / 10_000.0
            );
        }
    }
}
