//! Taints and tolerations, with upstream's matching rules (`Toleration.ToleratesTaint`),
//! shared by the scheduler, the taint-eviction controller and the DaemonSet controller.

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// The taints the node lifecycle controller manages.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// Whether `t` tolerates `taint`: the effect matches (an empty effect matches all), and the
/// key matches (an empty key with `Exists` matches every key), and the value matches for
/// `Equal` (the default operator).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    let exists = t.operator.as_deref() == Some("Exists");
    if key.is_empty() {
        return exists;
    }
    if key != taint.key {
        return false;
    }
    exists || t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
}

/// Whether some toleration in `ts` tolerates `taint`.
pub fn tolerated_by(ts: &[Toleration], taint: &Taint) -> bool {
    ts.iter().any(|t| tolerates(t, taint))
}

/// For a pod on a node with these NoExecute `taints`: `None` if some taint is not tolerated
/// (evict now); otherwise `Some(limit)` where `limit` is the shortest `tolerationSeconds`
/// among the tolerations used (`None` inside: tolerated forever).
pub fn no_execute_tolerance(ts: &[Toleration], taints: &[Taint]) -> Option<Option<i64>> {
    let mut limit: Option<i64> = None;
    for taint in taints.iter().filter(|t| t.effect == NO_EXECUTE) {
        let matching: Vec<&Toleration> = ts.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return None;
        }
        // Among the tolerations that match one taint, the most permissive one counts.
        let secs = if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            None
        } else {
            matching.iter().filter_map(|t| t.toleration_seconds).max()
        };
        if let Some(s) = secs {
            limit = Some(limit.map_or(s, |l| l.min(s)));
        }
    }
    Some(limit.map(|l| l.max(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: (!value.is_empty()).then(|| value.into()),
            effect: effect.into(),
            time_added: None,
        }
    }

    fn tol(key: &str, op: &str, value: &str, effect: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.into()),
            operator: (!op.is_empty()).then(|| op.into()),
            value: (!value.is_empty()).then(|| value.into()),
            effect: (!effect.is_empty()).then(|| effect.into()),
            toleration_seconds: secs,
        }
    }

    #[test]
    fn matching_follows_upstream() {
        let t = taint("gpu", "yes", NO_SCHEDULE);
        assert!(tolerates(
            &tol("gpu", "Equal", "yes", NO_SCHEDULE, None),
            &t
        ));
        assert!(
            tolerates(&tol("gpu", "", "yes", "", None), &t),
            "Equal is the default"
        );
        assert!(!tolerates(
            &tol("gpu", "Equal", "no", NO_SCHEDULE, None),
            &t
        ));
        assert!(tolerates(&tol("gpu", "Exists", "", "", None), &t));
        assert!(!tolerates(&tol("gpu", "Exists", "", NO_EXECUTE, None), &t));
        assert!(
            tolerates(&tol("", "Exists", "", "", None), &t),
            "tolerate everything"
        );
        assert!(!tolerates(&tol("", "Equal", "", "", None), &t));
    }

    #[test]
    fn no_execute_limits_take_the_shortest_taint() {
        let taints = [
            taint(NOT_READY, "", NO_EXECUTE),
            taint(UNREACHABLE, "", NO_EXECUTE),
        ];
        let ts = [
            tol(NOT_READY, "Exists", "", NO_EXECUTE, Some(300)),
            tol(UNREACHABLE, "Exists", "", NO_EXECUTE, Some(5)),
        ];
        assert_eq!(no_execute_tolerance(&ts, &taints), Some(Some(5)));
        assert_eq!(
            no_execute_tolerance(&ts[..1], &taints),
            None,
            "unreachable untolerated"
        );
        let forever = [tol("", "Exists", "", "", None)];
        assert_eq!(no_execute_tolerance(&forever, &taints), Some(None));
        assert_eq!(
            no_execute_tolerance(&[], &[taint("x", "", NO_SCHEDULE)]),
            Some(None)
        );
    }
}
