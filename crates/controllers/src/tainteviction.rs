//! The taint-eviction controller (upstream's NoExecuteTaintManager): a pod on a node with
//! `NoExecute` taints it does not tolerate is deleted at once; one that tolerates them for
//! `tolerationSeconds` is deleted that long after the taint was added. Before deleting, the
//! pod gets a `DisruptionTarget` condition (`DeletionByTaintManager`) and a
//! `TaintManagerEviction` event, as upstream does.

use skiff_client::shared::Shared;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::Event;
use kube::{Api, Client, ResourceExt};

use skiff_client::events::Recorder;
use skiff_client::queue::{run_workers, Next, WorkQueue};
use skiff_client::taints::{no_execute_tolerance, NO_EXECUTE};

type PodKey = (String, String);

pub async fn run(shared: Shared) -> anyhow::Result<()> {
    let client = shared.client().clone();
    let queue = WorkQueue::<PodKey>::new();
    let (pods, pod_watch) = {
        let queue = queue.clone();
        // The process's shared pod cache; only pods bound to a node concern this loop.
        shared.cached::<Pod>(move |ev| {
            if let Event::Apply(p) | Event::InitApply(p) = ev {
                if p.spec.as_ref().is_some_and(|s| s.node_name.is_some()) {
                    queue.add(key(p))
                }
            }
        })
    };
    // Only a change in a node's NoExecute taints concerns its pods: heartbeats do not.
    let seen_taints: Arc<Mutex<HashMap<String, Vec<Taint>>>> = Default::default();
    let (nodes, node_watch) = {
        let (queue, pods, seen) = (queue.clone(), pods.clone(), seen_taints.clone());
        shared.cached::<Node>(move |ev| {
            let (node, gone) = match ev {
                Event::Apply(n) | Event::InitApply(n) => (n, false),
                Event::Delete(n) => (n, true),
                _ => return,
            };
            let name = node.name_any();
            let taints = if gone { vec![] } else { no_execute(node) };
            let changed = {
                let mut seen = seen.lock().unwrap();
                let before = seen.get(&name).cloned().unwrap_or_default();
                if gone {
                    seen.remove(&name);
                } else {
                    seen.insert(name.clone(), taints.clone());
                }
                before != taints
            };
            if changed {
                for p in pods.state() {
                    if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&name) {
                        queue.add(key(&p));
                    }
                }
            }
        })
    };
    let recorder = Recorder::new(client.clone(), "taint-eviction-controller");
    let work = run_workers("taint-eviction", queue, 2, move |k: PodKey| {
        let (client, nodes, pods, recorder) = (
            client.clone(),
            nodes.clone(),
            pods.clone(),
            recorder.clone(),
        );
        async move { reconcile(&client, &nodes, &pods, &recorder, k).await }
    });
    tokio::join!(node_watch, pod_watch, work);
    Ok(())
}

fn key(p: &Pod) -> PodKey {
    (p.namespace().unwrap_or_default(), p.name_any())
}

fn no_execute(n: &Node) -> Vec<Taint> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .filter(|t| t.effect == NO_EXECUTE)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

async fn reconcile(
    client: &Client,
    nodes: &Store<Node>,
    pods: &Store<Pod>,
    recorder: &Recorder,
    (ns, name): PodKey,
) -> anyhow::Result<Next> {
    let Some(pod) = pods.get(&ObjectRef::new(&name).within(&ns)) else {
        return Ok(Next::Done);
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return Ok(Next::Done);
    }
    let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return Ok(Next::Done);
    };
    let Some(node) = nodes.get(&ObjectRef::new(&node_name)) else {
        return Ok(Next::Done);
    };
    let taints = no_execute(&node);
    if taints.is_empty() {
        return Ok(Next::Done);
    }
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let wait = match no_execute_tolerance(&tolerations, &taints) {
        None => Duration::ZERO,
        Some(None) => return Ok(Next::Done),
        Some(Some(secs)) => {
            // Counted from the newest NoExecute taint's timeAdded, as upstream does.
            let added = taints
                .iter()
                .filter_map(|t| t.time_added.as_ref().map(|t| t.0))
                .max()
                .unwrap_or_else(k8s_openapi::jiff::Timestamp::now);
            let due = added + k8s_openapi::jiff::SignedDuration::from_secs(secs);
            let left = due.duration_since(k8s_openapi::jiff::Timestamp::now());
            Duration::try_from(left).unwrap_or(Duration::ZERO)
        }
    };
    if !wait.is_zero() {
        return Ok(Next::After(wait));
    }
    evict(client, recorder, &pod).await?;
    Ok(Next::Done)
}

async fn evict(client: &Client, recorder: &Recorder, pod: &Pod) -> anyhow::Result<()> {
    let (ns, name) = key(pod);
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    recorder
        .normal(
            pod,
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {ns}/{name}"),
        )
        .await;
    let condition = serde_json::json!({
        "type": "DisruptionTarget", "status": "True",
        "reason": "DeletionByTaintManager",
        "message": "Taint manager: deleting due to NoExecute taint",
        "lastTransitionTime": Time(k8s_openapi::jiff::Timestamp::now()),
    });
    let patch = serde_json::json!({"status": {"conditions": [condition]}});
    if let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        tracing::debug!("adding DisruptionTarget to {ns}/{name}: {e}");
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
