//! The node lifecycle controller: judges node health from heartbeats (the node's Lease in
//! `kube-node-lease` and the Ready condition's `lastHeartbeatTime`) and keeps the
//! condition-derived taints in step with it.
//!
//! - A node whose heartbeats stop for longer than the grace period gets every condition set
//!   to `Unknown` ("Kubelet stopped posting node status."), and its pods' `Ready`
//!   conditions set to False.
//! - Taints follow `Ready` (upstream's TaintNodesByCondition and NoExecute tainting):
//!   `False` → `node.kubernetes.io/not-ready` (NoSchedule and NoExecute), `Unknown` →
//!   `node.kubernetes.io/unreachable` (both effects), `True` → neither; and
//!   `spec.unschedulable` → `node.kubernetes.io/unschedulable:NoSchedule`.
//!
//! Like leader election, staleness is measured on this process's clock from when a
//! heartbeat was last seen to change, so node and controller clocks need not agree. What
//! the NoExecute taints do to pods is the taint-eviction controller's job
//! ([`crate::tainteviction`]).

use skiff_client::shared::Shared;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use skiff_client::events::Recorder;
use skiff_client::informer::cached;
use skiff_client::taints::{NOT_READY, NO_EXECUTE, NO_SCHEDULE, UNREACHABLE, UNSCHEDULABLE};

/// How often node health is looked at (upstream's `--node-monitor-period`).
pub const MONITOR_PERIOD: Duration = Duration::from_secs(5);
/// Upstream's default `--node-monitor-grace-period`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(40);

/// When a node's heartbeat was last seen to change.
struct Probe {
    lease_renew: Option<String>,
    ready_heartbeat: Option<String>,
    seen: Instant,
}

pub async fn run(shared: Shared, grace: Duration) -> anyhow::Result<()> {
    let client = shared.client().clone();
    let (nodes, node_watch) = shared.cached::<Node>(|_| {});
    let (leases, lease_watch) = cached(
        "node leases",
        Api::<Lease>::namespaced(client.clone(), "kube-node-lease"),
        watcher::Config::default(),
        |_| {},
    );
    let monitor = monitor(client, nodes, leases, grace);
    tokio::join!(node_watch, lease_watch, monitor);
    Ok(())
}

async fn monitor(client: Client, nodes: Store<Node>, leases: Store<Lease>, grace: Duration) {
    let probes: Arc<Mutex<HashMap<String, Probe>>> = Default::default();
    let recorder = Recorder::new(client.clone(), "node-controller");
    let api: Api<Node> = Api::all(client.clone());
    let _ = tokio::join!(nodes.wait_until_ready(), leases.wait_until_ready());
    let mut tick = tokio::time::interval(MONITOR_PERIOD);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let all = nodes.state();
        {
            let names: std::collections::HashSet<&str> = all
                .iter()
                .filter_map(|n| n.metadata.name.as_deref())
                .collect();
            let mut p = probes.lock().unwrap();
            p.retain(|name, _| names.contains(name.as_str()));
        }
        for node in all {
            let name = node.name_any();
            let lease = leases
                .get(&reflector::ObjectRef::new(&name).within("kube-node-lease"))
                .and_then(|l| {
                    l.spec
                        .as_ref()?
                        .renew_time
                        .as_ref()
                        .map(|t| t.0.to_string())
                });
            let heartbeat = ready_condition(&node)
                .and_then(|c| c.last_heartbeat_time.as_ref().map(|t| t.0.to_string()));
            let stale = {
                let mut p = probes.lock().unwrap();
                let probe = p.entry(name.clone()).or_insert_with(|| Probe {
                    lease_renew: lease.clone(),
                    ready_heartbeat: heartbeat.clone(),
                    seen: now,
                });
                if probe.lease_renew != lease || probe.ready_heartbeat != heartbeat {
                    probe.lease_renew = lease;
                    probe.ready_heartbeat = heartbeat;
                    probe.seen = now;
                }
                now.duration_since(probe.seen) > grace
            };
            if stale {
                if let Err(e) = mark_unknown(&client, &api, &recorder, &node).await {
                    tracing::debug!(node = name, "marking the node unknown: {e:#}");
                    continue;
                }
            }
            if let Err(e) = reconcile_taints(&api, &node, stale).await {
                tracing::debug!(node = name, "updating the node's taints: {e:#}");
            }
        }
    }
}

fn ready_condition(n: &Node) -> Option<&NodeCondition> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The node's Ready status as the taints should see it.
fn ready_status(n: &Node) -> &str {
    ready_condition(n).map_or("Unknown", |c| c.status.as_str())
}

/// Sets every condition (and a missing Ready) to Unknown, once, and the pods on the node to
/// not ready.
async fn mark_unknown(
    client: &Client,
    api: &Api<Node>,
    recorder: &Recorder,
    node: &Node,
) -> anyhow::Result<()> {
    let name = node.name_any();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut conditions: Vec<NodeCondition> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let never = ready_condition(node).is_none();
    if never {
        conditions.insert(
            0,
            NodeCondition {
                type_: "Ready".into(),
                ..Default::default()
            },
        );
    }
    let mut changed = false;
    for c in conditions.iter_mut() {
        if c.status == "Unknown" {
            continue;
        }
        changed = true;
        c.status = "Unknown".into();
        c.last_transition_time = Some(now.clone());
        if never {
            c.reason = Some("NodeStatusNeverUpdated".into());
            c.message = Some("Kubelet never posted node status.".into());
        } else {
            c.reason = Some("NodeStatusUnknown".into());
            c.message = Some("Kubelet stopped posting node status.".into());
        }
    }
    if !changed {
        return Ok(());
    }
    let patch = serde_json::json!({"status": {"conditions": conditions}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    recorder
        .normal(
            node,
            "NodeNotReady",
            &format!("Node {name} status is now: NodeNotReady"),
        )
        .await;
    mark_pods_not_ready(client, &name).await
}

async fn mark_pods_not_ready(client: &Client, node: &str) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await?;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    for pod in on_node {
        let Some(conds) = pod.status.as_ref().and_then(|s| s.conditions.clone()) else {
            continue;
        };
        if !conds
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
        {
            continue;
        }
        let conds: Vec<_> = conds
            .into_iter()
            .map(|mut c| {
                if c.type_ == "Ready" {
                    c.status = "False".into();
                    c.last_transition_time = Some(now.clone());
                }
                c
            })
            .collect();
        let ns = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let patch = serde_json::json!({"status": {"conditions": conds}});
        if let Err(e) = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            tracing::debug!("marking pod {ns}/{} not ready: {e}", pod.name_any());
        }
    }
    Ok(())
}

/// The managed taints a node should carry.
fn desired_taints(ready: &str, unschedulable: bool) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match ready {
        "True" => {}
        "False" => {
            out.push((NOT_READY, NO_SCHEDULE));
            out.push((NOT_READY, NO_EXECUTE));
        }
        _ => {
            out.push((UNREACHABLE, NO_SCHEDULE));
            out.push((UNREACHABLE, NO_EXECUTE));
        }
    }
    if unschedulable {
        out.push((UNSCHEDULABLE, NO_SCHEDULE));
    }
    out
}

/// The node's taints with the managed ones made to match `desired`; `None` if nothing
/// changes.
fn merged_taints(current: &[Taint], desired: &[(&str, &str)]) -> Option<Vec<Taint>> {
    let managed = |t: &Taint| [NOT_READY, UNREACHABLE, UNSCHEDULABLE].contains(&t.key.as_str());
    let has = |k: &str, e: &str| current.iter().any(|t| t.key == k && t.effect == e);
    let wanted = |t: &Taint| desired.iter().any(|(k, e)| t.key == *k && t.effect == *e);
    let stale = current.iter().any(|t| managed(t) && !wanted(t));
    let missing: Vec<_> = desired.iter().filter(|(k, e)| !has(k, e)).collect();
    if !stale && missing.is_empty() {
        return None;
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !managed(t) || wanted(t))
        .cloned()
        .collect();
    for (k, e) in missing {
        out.push(Taint {
            key: (*k).into(),
            value: None,
            effect: (*e).into(),
            time_added: (*e == NO_EXECUTE).then(|| now.clone()),
        });
    }
    Some(out)
}

async fn reconcile_taints(api: &Api<Node>, node: &Node, stale: bool) -> anyhow::Result<()> {
    let ready = if stale { "Unknown" } else { ready_status(node) };
    // A node that never reported and is not yet past its grace period is left alone, like
    // upstream, which only taints once it has judged the node.
    if ready_condition(node).is_none() && !stale {
        return Ok(());
    }
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let Some(taints) = merged_taints(&current, &desired_taints(ready, unschedulable)) else {
        return Ok(());
    };
    // The resourceVersion makes this a compare-and-swap: a concurrent edit of the taints
    // (kubectl taint) is not overwritten; the next round looks again.
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": node.resource_version()},
        "spec": {"taints": taints},
    });
    api.patch(
        &node.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: &str, e: &str) -> Taint {
        Taint {
            key: k.into(),
            value: None,
            effect: e.into(),
            time_added: None,
        }
    }

    #[test]
    fn taints_follow_readiness_and_keep_foreign_ones() {
        let user = t("dedicated", NO_SCHEDULE);
        // Ready: nothing to add.
        assert!(
            merged_taints(std::slice::from_ref(&user), &desired_taints("True", false)).is_none()
        );
        // Unknown: both unreachable taints, NoExecute with a time.
        let m = merged_taints(
            std::slice::from_ref(&user),
            &desired_taints("Unknown", false),
        )
        .unwrap();
        let keys: Vec<_> = m
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("dedicated", NO_SCHEDULE),
                (UNREACHABLE, NO_SCHEDULE),
                (UNREACHABLE, NO_EXECUTE)
            ]
        );
        assert!(m[1].time_added.is_none() && m[2].time_added.is_some());
        // Back to Ready: the managed taints go, the user's stays.
        let back = merged_taints(&m, &desired_taints("True", false)).unwrap();
        assert_eq!(back, std::slice::from_ref(&user));
        // Cordoned.
        let c = merged_taints(&[], &desired_taints("True", true)).unwrap();
        assert_eq!(c, [t(UNSCHEDULABLE, NO_SCHEDULE)]);
        // False → not-ready replaces unreachable.
        let nr = merged_taints(&m, &desired_taints("False", false)).unwrap();
        assert!(nr.iter().all(|t| t.key != UNREACHABLE));
        assert_eq!(nr.iter().filter(|t| t.key == NOT_READY).count(), 2);
    }
}
