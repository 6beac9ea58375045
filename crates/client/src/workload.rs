//! Helpers shared by the workload controllers (jobs, daemon sets, stateful sets, ...): the
//! owner of an object as a queue key, pod state predicates as
//! `k8s.io/kubernetes/pkg/api/v1/pod` and `controller.ActivePods` define them, and the API
//! errors controllers tell apart.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controllerref::controller_of;

/// `(namespace, name)` of the controller of `meta` when it is a `kind` of `api_version`.
pub fn controller_key(
    meta: &ObjectMeta,
    api_version: &str,
    kind: &str,
) -> Option<(String, String)> {
    let r = controller_of(meta)?;
    (r.kind == kind && r.api_version == api_version)
        .then(|| (meta.namespace.clone().unwrap_or_default(), r.name.clone()))
}

/// Whether `meta` is controlled by the object with `uid`.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Not terminated (Succeeded/Failed) and not being deleted (`controller.IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    condition_true(pod, "Ready")
}

pub fn condition_true(pod: &Pod, type_: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// When the pod's `Ready` condition last became `True`.
pub fn ready_since(pod: &Pod) -> Option<k8s_openapi::jiff::Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

/// Ready for at least `min_ready_seconds` at `now` (`podutil.IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: k8s_openapi::jiff::Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_since(pod)
        .is_some_and(|t| now.as_second() - t.as_second() >= i64::from(min_ready_seconds))
}

/// Sort rank of pods for deletion as `controller.ActivePods` orders them: the pods least
/// worth keeping first (unscheduled < scheduled, pending < unknown < running, not ready
/// < ready, ready for less time, more restarts, newer).
pub fn deletion_rank(pod: &Pod) -> impl Ord {
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let phase_rank = match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    };
    let ready = is_ready(pod);
    let ready_for = std::cmp::Reverse(ready_since(pod).map(|t| t.as_second()));
    let restarts: i32 = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0);
    let created = std::cmp::Reverse(
        pod.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second()),
    );
    (
        scheduled,
        phase_rank,
        ready,
        ready_for,
        std::cmp::Reverse(restarts),
        created,
    )
}

/// A watch of `api` that only queues `key(obj)` for every applied or deleted object, keeping
/// no cache (for controllers that read what they act on live).
pub async fn watch_keys<K, Q>(
    what: &'static str,
    api: kube::Api<K>,
    cfg: kube::runtime::watcher::Config,
    queue: std::sync::Arc<crate::queue::WorkQueue<Q>>,
    key: impl Fn(&K) -> Option<Q> + Send + 'static,
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    Q: Clone + Eq + std::hash::Hash + Send + Sync + 'static,
{
    use kube::runtime::watcher::{watcher, Event};
    use kube::runtime::WatchStreamExt;
    crate::informer::for_each_event(what, watcher(api, cfg).default_backoff(), |ev| match ev {
        Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => {
            if let Some(k) = key(&o) {
                queue.add(k);
            }
        }
        Event::Init | Event::InitDone => {}
    })
    .await
}

/// List parameters that let the API server filter by a workload's selector (the caller
/// still checks each object: an unconvertible selector lists everything).
pub fn list_params(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> kube::api::ListParams {
    let lp = kube::api::ListParams::default();
    match kube::core::Selector::try_from(sel.clone()) {
        Ok(s) if !s.selects_all() => lp.labels_from(&s),
        _ => lp,
    }
}

/// Whether an API error says the namespace is being terminated: creations there are
/// refused and nothing is to be done.
pub fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_forbidden() && s.message.contains("because it is being terminated"))
}

pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_conflict())
}

pub fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_already_exists())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    fn pod(node: Option<&str>, phase: &str, ready: bool) -> Pod {
        Pod {
            spec: Some(PodSpec {
                node_name: node.map(Into::into),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn deletion_order_prefers_unscheduled_pending_unready() {
        let mut pods = [
            pod(Some("n"), "Running", true),
            pod(None, "Pending", false),
            pod(Some("n"), "Running", false),
            pod(Some("n"), "Pending", false),
        ];
        pods.sort_by_key(deletion_rank);
        assert_eq!(phase(&pods[0]), "Pending");
        assert!(pods[0].spec.as_ref().unwrap().node_name.is_none());
        assert_eq!(phase(&pods[1]), "Pending");
        assert!(!is_ready(&pods[2]));
        assert!(is_ready(&pods[3]));
    }
}
