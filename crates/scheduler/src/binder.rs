//! The API side of a scheduling decision, run in spawned tasks so the next pod is
//! scheduled meanwhile (upstream's binding cycle): `POST pods/NAME/binding`, the
//! `Scheduled` event; on failure the `FailedScheduling` event and the pod's `PodScheduled`
//! condition; for preemption the victims' deletion and the preemptor's
//! `status.nominatedNodeName`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use skiff_client::events::Recorder;
use tokio::sync::Semaphore;

use crate::framework::PodInfo;
use crate::preemption::Candidate;
use crate::Shared;

pub struct Binder {
    client: Client,
    recorder: Recorder,
    scheduler_name: String,
    /// Bounds concurrent bindings (each is one API request).
    bind_slots: Arc<Semaphore>,
    /// Bounds concurrent status updates, deletions and events.
    api_slots: Arc<Semaphore>,
}

impl Binder {
    pub fn new(client: Client, scheduler_name: &str, concurrency: usize) -> Arc<Binder> {
        Arc::new(Binder {
            recorder: Recorder::new(client.clone(), scheduler_name),
            client,
            scheduler_name: scheduler_name.to_string(),
            bind_slots: Arc::new(Semaphore::new(concurrency.max(1))),
            api_slots: Arc::new(Semaphore::new((concurrency / 2).max(1))),
        })
    }

    fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Binds the assumed `pod` to `node`; on failure the pod is forgotten by the cache and
    /// queued again with backoff.
    pub fn spawn_bind(
        self: &Arc<Self>,
        shared: Arc<Shared>,
        pod: Arc<PodInfo>,
        node: String,
        attempts: u32,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let permit = this.bind_slots.clone().acquire_owned().await;
            let binding = Binding {
                metadata: ObjectMeta {
                    name: Some(pod.name.clone()),
                    namespace: Some(pod.namespace.clone()),
                    uid: Some(pod.uid.clone()).filter(|u| !u.is_empty()),
                    ..Default::default()
                },
                target: ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Node".into()),
                    name: Some(node.clone()),
                    ..Default::default()
                },
            };
            let res = this
                .pods(&pod.namespace)
                .create_subresource::<_, serde_json::Value>(
                    "binding",
                    &pod.name,
                    &PostParams::default(),
                    &binding,
                )
                .await;
            drop(permit);
            match res {
                Ok(_) => {
                    shared.stats.bound.fetch_add(1, Ordering::Relaxed);
                    let _slot = this.api_slots.acquire().await;
                    let msg = format!(
                        "Successfully assigned {}/{} to {node}",
                        pod.namespace, pod.name
                    );
                    this.recorder.normal(&*pod.pod, "Scheduled", &msg).await;
                }
                Err(e) => {
                    shared.stats.bind_errors.fetch_add(1, Ordering::Relaxed);
                    shared.cache.lock().unwrap().forget(&pod.key);
                    let gone = matches!(&e, kube::Error::Api(s) if s.is_not_found());
                    let taken = matches!(&e, kube::Error::Api(s) if s.is_conflict() && s.message.contains("already assigned"));
                    tracing::debug!("binding {} to {node}: {e}", pod.key);
                    if gone || taken {
                        return;
                    }
                    shared.queue.retry(pod.clone(), attempts);
                    let _slot = this.api_slots.acquire().await;
                    let msg = format!("Binding rejected: {e}");
                    this.recorder
                        .warning(&*pod.pod, "FailedScheduling", &msg)
                        .await;
                }
            }
        });
    }

    /// Reports a failed attempt: the `FailedScheduling` event and the `PodScheduled`
    /// condition (plus `nominatedNodeName` when preemption chose a node), and carries out
    /// the preemption.
    pub fn spawn_failure(
        self: &Arc<Self>,
        pod: Arc<PodInfo>,
        message: String,
        preemption: Option<Candidate>,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let _slot = this.api_slots.acquire().await;
            if let Some(c) = &preemption {
                this.preempt(&pod, c).await;
            }
            this.recorder
                .warning(&*pod.pod, "FailedScheduling", &message)
                .await;
            this.update_condition(&pod, &message, preemption.as_ref().map(|c| c.node.as_str()))
                .await;
        });
    }

    async fn preempt(&self, pod: &PodInfo, c: &Candidate) {
        for v in &c.victims {
            let api = self.pods(&v.namespace);
            let cond = json!({"status": {"conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "PreemptionByScheduler",
                "message": format!("{}: preempting to accommodate a higher priority pod", self.scheduler_name),
                "lastTransitionTime": now(),
            }]}});
            if let Err(e) = api
                .patch_status(&v.name, &PatchParams::default(), &Patch::Strategic(&cond))
                .await
            {
                tracing::debug!("marking preemption victim {}: {e}", v.key);
            }
            match api.delete(&v.name, &DeleteParams::default()).await {
                Ok(_) => {
                    let msg = format!("Preempted by pod {} on node {}", pod.uid, c.node);
                    self.recorder.normal(&*v.pod, "Preempted", &msg).await;
                }
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(e) => tracing::warn!("preempting {}: {e}", v.key),
            }
        }
    }

    async fn update_condition(&self, pod: &PodInfo, message: &str, nominated: Option<&str>) {
        let status = pod.pod.status.as_ref();
        let current = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        let same = current.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message)
        });
        let nominated_now = status.and_then(|s| s.nominated_node_name.as_deref());
        if same && (nominated.is_none() || nominated == nominated_now) {
            return;
        }
        let mut patch = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": now(),
        }]}});
        if let Some(n) = nominated {
            patch["status"]["nominatedNodeName"] = json!(n);
        }
        if let Err(e) = self
            .pods(&pod.namespace)
            .patch_status(
                &pod.name,
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            tracing::debug!("updating the PodScheduled condition of {}: {e}", pod.key);
        }
    }
}

fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now())
}
