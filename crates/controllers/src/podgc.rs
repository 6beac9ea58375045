//! The pod garbage collector, every 20 seconds as upstream:
//!
//! - orphaned pods: pods bound to a node that no longer exists (absent for a 40 s
//!   quarantine and confirmed by a direct read) get a `DisruptionTarget` condition
//!   (`DeletionByPodGC`), are marked Failed and are force-deleted;
//! - unscheduled pods being deleted (no node will ever finish them) are force-deleted;
//! - terminating pods on nodes tainted `node.kubernetes.io/out-of-service` are
//!   force-deleted;
//! - finished pods (Succeeded/Failed) beyond `--terminated-pod-gc-threshold` are deleted,
//!   oldest first.

use skiff_client::shared::Shared;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};

use skiff_client::workload::phase;

pub const CHECK_PERIOD: Duration = Duration::from_secs(20);
pub const QUARANTINE: Duration = Duration::from_secs(40);
/// Upstream's default `--terminated-pod-gc-threshold`.
pub const DEFAULT_THRESHOLD: usize = 12500;
const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

pub async fn run(shared: Shared, threshold: usize) -> anyhow::Result<()> {
    let client = shared.client().clone();
    let (pods, pod_watch) = shared.cached::<Pod>(|_| {});
    let (nodes, node_watch) = shared.cached::<Node>(|_| {});
    let gc = async move {
        let _ = tokio::join!(pods.wait_until_ready(), nodes.wait_until_ready());
        let mut missing_since: HashMap<String, Instant> = HashMap::new();
        let mut tick = tokio::time::interval(CHECK_PERIOD);
        loop {
            tick.tick().await;
            if let Err(e) = collect(&client, &pods, &nodes, threshold, &mut missing_since).await {
                tracing::debug!("pod gc: {e:#}");
            }
        }
    };
    tokio::join!(pod_watch, node_watch, gc);
    Ok(())
}

fn is_terminal(p: &Pod) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

fn node_of(p: &Pod) -> Option<&str> {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// The finished pods to delete so that at most `threshold` remain, oldest first.
pub fn over_threshold(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    let mut done: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| is_terminal(p) && p.metadata.deletion_timestamp.is_none())
        .cloned()
        .collect();
    if threshold == 0 || done.len() <= threshold {
        return Vec::new();
    }
    done.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    let excess = done.len() - threshold;
    done.truncate(excess);
    done
}

async fn collect(
    client: &Client,
    pods: &Store<Pod>,
    nodes: &Store<Node>,
    threshold: usize,
    missing_since: &mut HashMap<String, Instant>,
) -> anyhow::Result<()> {
    let all = pods.state();
    for p in over_threshold(&all, threshold) {
        force_delete(client, &p, None).await;
    }
    let now = Instant::now();
    let node_api: Api<Node> = Api::all(client.clone());
    let mut still_missing = HashMap::new();
    for p in &all {
        let Some(node) = node_of(p) else {
            if p.metadata.deletion_timestamp.is_some() {
                force_delete(client, p, None).await;
            }
            continue;
        };
        match nodes.get(&ObjectRef::new(node)) {
            Some(n) => {
                let out_of_service = n
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|ts| ts.iter().any(|t| t.key == OUT_OF_SERVICE));
                if out_of_service && p.metadata.deletion_timestamp.is_some() {
                    force_delete(client, p, Some("DeletionByPodGC")).await;
                }
            }
            None => {
                let since = *missing_since.get(node).unwrap_or(&now);
                still_missing.insert(node.to_string(), since);
                if now.duration_since(since) < QUARANTINE {
                    continue;
                }
                // The watch may lag: a direct read decides.
                if node_api.get_opt(node).await?.is_none() {
                    force_delete(client, p, Some("DeletionByPodGC")).await;
                }
            }
        }
    }
    *missing_since = still_missing;
    Ok(())
}

/// Deletes a pod at once (grace 0), first marking why when `reason` is given.
async fn force_delete(client: &Client, p: &Pod, reason: Option<&str>) {
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    if let Some(reason) = reason {
        let mut status = serde_json::json!({"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": reason,
            "message": "PodGC: node no longer exists",
            "lastTransitionTime": Time(k8s_openapi::jiff::Timestamp::now()),
        }]});
        if !is_terminal(p) {
            status["phase"] = "Failed".into();
        }
        let patch = serde_json::json!({ "status": status });
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            tracing::debug!("marking pod {ns}/{name} for pod gc: {e}");
        }
    }
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: p.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &dp).await {
        Ok(_) => tracing::info!("pod gc: deleted pod {ns}/{name}"),
        Err(kube::Error::Api(s)) if s.is_not_found() || s.code == 409 => {}
        Err(e) => tracing::debug!("pod gc: deleting {ns}/{name}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, created: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "d", "creationTimestamp": created},
                "status": {"phase": phase}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn the_oldest_finished_pods_go_first() {
        let pods = [
            pod("new", "Succeeded", "2026-01-03T00:00:00Z"),
            pod("running", "Running", "2026-01-01T00:00:00Z"),
            pod("old", "Failed", "2026-01-01T00:00:00Z"),
            pod("mid", "Succeeded", "2026-01-02T00:00:00Z"),
        ];
        let names = |v: Vec<Arc<Pod>>| v.iter().map(|p| p.name_any()).collect::<Vec<_>>();
        assert_eq!(names(over_threshold(&pods, 1)), ["old", "mid"]);
        assert!(over_threshold(&pods, 3).is_empty());
        assert!(
            over_threshold(&pods, 0).is_empty(),
            "0 turns it off, as upstream"
        );
    }
}
