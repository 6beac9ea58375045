//! NodeResourcesFit (filter: requests against allocatable minus what the node's pods
//! request; score: LeastAllocated over cpu and memory, weight 1 each) and
//! NodeResourcesBalancedAllocation (score: how evenly cpu and memory would be used).

use std::borrow::Cow;

use crate::framework::{Code, FilterResult, NodeInfo, PodInfo, Status, MAX_NODE_SCORE};

pub const NAME: &str = "NodeResourcesFit";
pub const BALANCED: &str = "NodeResourcesBalancedAllocation";
pub const WEIGHT: i64 = 1;
pub const BALANCED_WEIGHT: i64 = 1;

/// Every resource that does not fit, in upstream's order (pods, cpu, memory,
/// ephemeral-storage, extended). A request larger than the whole node is unresolvable:
/// preemption cannot help there.
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    let mut reasons: Vec<Cow<'static, str>> = Vec::new();
    let mut unresolvable = false;
    if node.pods.len() as i64 + 1 > node.allowed_pods {
        reasons.push("Too many pods".into());
    }
    let r = &pod.req.requests;
    let (alloc, used) = (&node.allocatable, &node.requested);
    let mut check = |want: i64, have: i64, used: i64, reason: Cow<'static, str>| {
        if want > 0 && want > have - used {
            unresolvable |= want > have;
            reasons.push(reason);
        }
    };
    check(
        r.milli_cpu,
        alloc.milli_cpu,
        used.milli_cpu,
        "Insufficient cpu".into(),
    );
    check(
        r.memory,
        alloc.memory,
        used.memory,
        "Insufficient memory".into(),
    );
    check(
        r.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
        "Insufficient ephemeral-storage".into(),
    );
    for (name, want) in &r.scalar {
        check(
            *want,
            alloc.scalar(name),
            used.scalar(name),
            format!("Insufficient {name}").into(),
        );
    }
    if reasons.is_empty() {
        return Ok(());
    }
    Err(Status {
        code: if unresolvable {
            Code::Unresolvable
        } else {
            Code::Unschedulable
        },
        plugin: NAME,
        reasons,
    })
}

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// LeastAllocated with the default resources (cpu and memory, weight 1 each), counting
/// containers without requests at the scoring defaults.
pub fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let cpu = least_requested(
        node.non_zero_cpu + pod.req.non_zero_cpu,
        node.allocatable.milli_cpu,
    );
    let mem = least_requested(
        node.non_zero_memory + pod.req.non_zero_memory,
        node.allocatable.memory,
    );
    (cpu + mem) / 2
}

/// Whether BalancedAllocation has anything to say (upstream skips pods without requests).
pub fn balanced_applies(pod: &PodInfo) -> bool {
    pod.req.requests.milli_cpu > 0 || pod.req.requests.memory > 0
}

/// `(1 - std) * 100` of the cpu and memory fractions the node would have in use.
pub fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let frac = |used: i64, want: i64, cap: i64| {
        if cap <= 0 {
            1.0
        } else {
            ((used + want) as f64 / cap as f64).min(1.0)
        }
    };
    let cpu = frac(
        node.requested.milli_cpu,
        pod.req.requests.milli_cpu,
        node.allocatable.milli_cpu,
    );
    let mem = frac(
        node.requested.memory,
        pod.req.requests.memory,
        node.allocatable.memory,
    );
    let std = ((cpu - mem) / 2.0).abs();
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    #[test]
    fn fit_reasons_in_upstream_order() {
        let mut n = node("a", json!({}), "2", "4Gi");
        n.add_pod(pod("x", requests("1500m", "1Gi")));
        let e = filter(&pod("p", requests("1", "8Gi")), &n).unwrap_err();
        assert_eq!(e.reasons, vec!["Insufficient cpu", "Insufficient memory"]);
        // 8Gi is more than the whole node: preemption cannot help.
        assert_eq!(e.code, Code::Unresolvable);
        let e = filter(&pod("p", requests("1", "1Gi")), &n).unwrap_err();
        assert_eq!((e.code, e.reasons.len()), (Code::Unschedulable, 1));
        assert!(filter(&pod("p", requests("500m", "1Gi")), &n).is_ok());
    }

    #[test]
    fn pod_count_and_extended_resources() {
        let mut n = node("a", json!({}), "2", "4Gi");
        n.allowed_pods = 1;
        n.add_pod(pod("x", json!({})));
        assert_eq!(
            filter(&pod("p", json!({})), &n).unwrap_err().reasons,
            vec!["Too many pods"]
        );
        let gpu = pod(
            "g",
            json!({"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]}),
        );
        let n = node("b", json!({}), "2", "4Gi");
        let e = filter(&gpu, &n).unwrap_err();
        assert_eq!(
            (e.code, e.reasons[0].as_ref()),
            (Code::Unresolvable, "Insufficient example.com/gpu")
        );
    }

    #[test]
    fn scores() {
        let n = node("a", json!({}), "4", "8Gi");
        // cpu: (4000-1000)/4000 = 75; memory: (8-2)/8 = 75.
        assert_eq!(least_allocated(&pod("p", requests("1", "2Gi")), &n), 75);
        // Containers without requests count 100m and 200Mi.
        assert_eq!(least_allocated(&pod("p", json!({})), &n), (97 + 97) / 2);
        // cpu 1/4, memory 6/8: std 0.25 → 75.
        assert_eq!(balanced_allocation(&pod("p", requests("1", "6Gi")), &n), 75);
        assert_eq!(
            balanced_allocation(&pod("p", requests("2", "4Gi")), &n),
            100
        );
    }
}
