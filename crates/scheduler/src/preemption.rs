//! DefaultPreemption (PostFilter): when no node fits, find the node where evicting the
//! fewest, least important lower-priority pods makes the pod fit; PodDisruptionBudgets are
//! respected where possible (victims that would violate one are reprieved first and such
//! nodes are chosen last).

use std::sync::Arc;

use crate::cache::Cache;
use crate::framework::{Code, NodeInfo, PodInfo, Status};
use crate::plugins::{self, CycleState};
use crate::schedule::FitFailure;
use crate::selectors::Selector;

pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const NEVER: &str = "preemption: not eligible due to preemptionPolicy=Never.";
pub const TERMINATING: &str =
    "preemption: not eligible due to a terminating pod on the nominated node.";

/// A PodDisruptionBudget as preemption sees it.
#[derive(Clone, Debug)]
pub struct Pdb {
    pub namespace: String,
    pub selector: Selector,
    pub disruptions_allowed: i32,
}

/// The chosen node and the pods to evict there.
#[derive(Debug)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
    pub pdb_violations: usize,
}

/// Upstream's `MoreImportantPod`: higher priority, then earlier start.
fn more_important(a: &PodInfo, b: &PodInfo) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| a.created.cmp(&b.created))
}

/// Splits `pods` into those whose eviction would violate a PDB and those that would not,
/// spending each budget's allowed disruptions in order.
fn split_by_pdb(pods: Vec<Arc<PodInfo>>, pdbs: &[Pdb]) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violates = false;
        for (i, b) in pdbs.iter().enumerate() {
            if b.namespace == p.namespace && b.selector.matches(p.labels()) {
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violates = true;
                }
            }
        }
        if violates {
            violating.push(p)
        } else {
            fine.push(p)
        }
    }
    (violating, fine)
}

/// upstream's `selectVictimsOnNode`: remove every lower-priority pod; if the pod then fits,
/// add them back one by one (most important first, PDB-protected ones before others) while
/// it still fits.
fn select_victims(
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    pdbs: &[Pdb],
) -> Result<(Vec<Arc<PodInfo>>, usize), Status> {
    let mut lower: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if lower.is_empty() {
        return Err(Status::new(
            Code::Unresolvable,
            "DefaultPreemption",
            NO_VICTIMS,
        ));
    }
    let mut trial = node.clone();
    let mut st = state.clone();
    for v in &lower {
        trial.remove_pod(&v.key);
        st.update(pod, v, node, -1);
    }
    plugins::filter(&st, pod, &trial)?;
    lower.sort_by(|a, b| more_important(a, b));
    let (violating, fine) = split_by_pdb(lower, pdbs);
    let mut victims = Vec::new();
    let mut violations = 0;
    for (group, violates) in [(violating, true), (fine, false)] {
        for p in group {
            trial.add_pod(p.clone());
            st.update(pod, &p, node, 1);
            if plugins::filter(&st, pod, &trial).is_err() {
                trial.remove_pod(&p.key);
                st.update(pod, &p, node, -1);
                if violates {
                    violations += 1;
                }
                victims.push(p);
            }
        }
    }
    Ok((victims, violations))
}

/// Finds a preemption candidate, or returns the PostFilter message saying why there is
/// none ("preemption: 0/3 nodes are available: ...").
pub fn preempt(
    cache: &Cache,
    pod: &PodInfo,
    failure: &FitFailure,
    pdbs: &[Pdb],
) -> Result<Candidate, String> {
    if pod.preempt_never {
        return Err(NEVER.into());
    }
    let nominated = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(n) = nominated.and_then(|n| cache.node(n)) {
        let unresolvable = failure
            .statuses
            .iter()
            .any(|(i, s)| cache.nodes[*i].name == n.name && s.code == Code::Unresolvable);
        if !unresolvable
            && n.pods
                .iter()
                .any(|p| p.terminating && p.priority < pod.priority)
        {
            return Err(TERMINATING.into());
        }
    }
    let state = CycleState::new(pod, &cache.nodes);
    let mut statuses: Vec<Status> = Vec::new();
    let mut best: Option<Candidate> = None;
    for (i, s) in &failure.statuses {
        if s.code == Code::Unresolvable {
            statuses.push(Status::new(
                Code::Unresolvable,
                "DefaultPreemption",
                NOT_HELPFUL,
            ));
            continue;
        }
        let node = &cache.nodes[*i];
        match select_victims(&state, pod, node, pdbs) {
            Err(s) => statuses.push(s),
            Ok((victims, pdb_violations)) => {
                let c = Candidate {
                    node: node.name.clone(),
                    victims,
                    pdb_violations,
                };
                if best.as_ref().is_none_or(|b| better(&c, b)) {
                    best = Some(c);
                }
            }
        }
    }
    // Nodes that were never filtered (none: every node is filtered when nothing fits).
    let missing = failure.num_all_nodes.saturating_sub(failure.statuses.len());
    for _ in 0..missing {
        statuses.push(Status::new(
            Code::Unresolvable,
            "DefaultPreemption",
            NOT_HELPFUL,
        ));
    }
    best.ok_or_else(|| {
        format!(
            "preemption: {}",
            crate::framework::fit_error_message(failure.num_all_nodes, None, &statuses, None)
        )
    })
}

/// upstream's `pickOneNodeForPreemption` criteria: fewest PDB violations, then the lowest
/// highest victim priority, then the smallest sum of priorities, then fewest victims.
fn better(a: &Candidate, b: &Candidate) -> bool {
    let key = |c: &Candidate| {
        let highest = c
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        let sum: i64 = c.victims.iter().map(|v| v.priority as i64).sum();
        (c.pdb_violations, highest, sum, c.victims.len())
    };
    key(a) < key(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use crate::schedule::{schedule, Error, Rng};
    use serde_json::json;

    fn prio_pod(name: &str, prio: i32, cpu: &str) -> Arc<PodInfo> {
        let mut spec = requests(cpu, "100Mi");
        spec["priority"] = json!(prio);
        pod_with(name, json!({"labels": {"app": name}}), spec)
    }

    fn cluster() -> Cache {
        let mut c = Cache::default();
        for n in ["a", "b"] {
            c.set_node(node(n, json!({}), "2", "4Gi").node.clone());
        }
        c.add_or_update_pod(prio_pod("low-a", 1, "1500m"), "a");
        c.add_or_update_pod(prio_pod("small-a", 1, "100m"), "a");
        c.add_or_update_pod(prio_pod("mid-b", 50, "1500m"), "b");
        c
    }

    fn failure(c: &mut Cache, p: &Arc<PodInfo>) -> FitFailure {
        match schedule(c, p, None, &mut Rng::new()) {
            Err(Error::Unfit(f)) => f,
            other => panic!("expected no fit, got {other:?}"),
        }
    }

    #[test]
    fn evicts_the_fewest_least_important_pods() {
        let mut c = cluster();
        let p = prio_pod("high", 100, "1");
        let f = failure(&mut c, &p);
        let cand = preempt(&c, &p, &f, &[]).unwrap();
        assert_eq!(cand.node, "a");
        let names: Vec<&str> = cand.victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["low-a"], "the small pod is reprieved");
    }

    #[test]
    fn pdbs_steer_preemption_elsewhere() {
        let mut c = cluster();
        let p = prio_pod("high", 100, "1");
        let f = failure(&mut c, &p);
        let pdb = Pdb {
            namespace: "default".into(),
            selector: Selector::from_label_selector(Some(
                &serde_json::from_value(json!({"matchLabels": {"app": "low-a"}})).unwrap(),
            )),
            disruptions_allowed: 0,
        };
        let cand = preempt(&c, &p, &f, &[pdb]).unwrap();
        assert_eq!(cand.node, "b");
    }

    #[test]
    fn messages_when_preemption_cannot_help() {
        let mut c = cluster();
        let p = prio_pod("huge", 100, "3");
        let f = failure(&mut c, &p);
        assert_eq!(
            preempt(&c, &p, &f, &[]).unwrap_err(),
            "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
        let p = prio_pod("peer", 0, "1");
        let f = failure(&mut c, &p);
        assert_eq!(
            preempt(&c, &p, &f, &[]).unwrap_err(),
            "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
        );
        let mut spec = requests("1", "100Mi");
        spec["priority"] = json!(100);
        spec["preemptionPolicy"] = json!("Never");
        let p = pod("never", spec);
        let f = failure(&mut c, &p);
        assert_eq!(preempt(&c, &p, &f, &[]).unwrap_err(), NEVER);
    }
}
