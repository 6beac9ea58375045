//! The Deployment controller (upstream's `pkg/controller/deployment`).
//!
//! A Deployment owns ReplicaSets named `<deployment>-<pod-template-hash>` (adopting
//! orphans its selector matches, releasing those it no longer matches). Each template
//! gets its own ReplicaSet and revision; a new template is rolled out with the
//! RollingUpdate or Recreate strategy ([`rolling`]); a changed `spec.replicas` is spread
//! over the ReplicaSets in proportion to their size (also while paused); old revisions
//! beyond `revisionHistoryLimit` are deleted ([`history`]); status and the Available and
//! Progressing conditions come from the ReplicaSets ([`progress`]). `kubectl rollout
//! undo` needs nothing special: it writes an old ReplicaSet's template back into the
//! Deployment, whose ReplicaSet is then found again and given the next revision.
//!
//! Bad objects never make the controller crash or spin: an invalid selector gets a
//! warning event and `observedGeneration`; a ReplicaSet the API refuses gets the
//! `ReplicaSetCreateError` condition and event, and is retried with backoff.

pub mod history;
pub mod progress;
pub mod rolling;
pub mod util;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{PartialObjectMeta, Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use skiff_client::controllerref::{self, claim, controller_of, controller_ref, Claim};
use skiff_client::events::Recorder;
use skiff_client::selector::Selector;

use crate::informer::{for_each_event, watch_to_queue};
use crate::queue::{run_workers, Next, WorkQueue};
use crate::replicaset::key_of;
use util::*;

pub const CONTROLLER: &str = "deployment-controller";

pub(crate) struct Ctl {
    client: Client,
    deployments: Store<Deployment>,
    rss: Store<ReplicaSet>,
    recorder: Recorder,
}

pub async fn run(client: Client) -> anyhow::Result<()> {
    let queue = WorkQueue::<String>::new();
    let (deployments, d_watch) = watch_to_queue(
        "deployments",
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
        queue.clone(),
        |d: &Deployment| Some(key_of(d)),
    );
    let (rss, rs_writer) = reflector::store::<ReplicaSet>();
    let ctl = Arc::new(Ctl {
        client: client.clone(),
        deployments,
        rss,
        recorder: Recorder::new(client.clone(), CONTROLLER),
    });

    let rs_stream = reflector::reflector(
        rs_writer,
        skiff_client::informer::watch(
            Api::<ReplicaSet>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    );
    let (c, q) = (ctl.clone(), queue.clone());
    let rs_watch = for_each_event("replicasets", rs_stream, move |ev| match ev {
        Event::Apply(rs) | Event::InitApply(rs) | Event::Delete(rs) => {
            for k in c.deployments_for_rs(&rs) {
                q.add(k);
            }
        }
        Event::Init | Event::InitDone => {}
    });
    // Pods matter for Recreate, whose new ReplicaSet waits until the old pods are gone:
    // their deletions requeue the Deployment. Only metadata is watched and nothing is
    // kept; the pods themselves are listed live when a Recreate rollout needs them.
    let pod_stream = skiff_client::informer::watch(
        Api::<PartialObjectMeta<Pod>>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff();
    let (c, q) = (ctl.clone(), queue.clone());
    let pod_watch = for_each_event("pods", pod_stream, move |ev| {
        if let Event::Delete(p) = ev {
            if let Some(k) = c.deployment_of_pod(&p.metadata) {
                q.add(k);
            }
        }
    });
    let c = ctl.clone();
    let work = run_workers("deployment", queue, 2, move |key: String| {
        let c = c.clone();
        async move { c.sync(&key).await }
    });
    tokio::join!(d_watch, rs_watch, pod_watch, work);
    Ok(())
}

fn selector_of(d: &Deployment) -> Result<Selector, String> {
    Selector::from_label_selector(d.spec.as_ref().map(|s| &s.selector))
}

impl Ctl {
    /// The Deployment controlling `rs`, or for an orphan every Deployment that selects it.
    fn deployments_for_rs(&self, rs: &ReplicaSet) -> Vec<String> {
        let ns = rs.namespace().unwrap_or_default();
        if let Some(r) = controller_of(&rs.metadata) {
            if r.kind == "Deployment" && r.api_version.starts_with("apps/") {
                return vec![format!("{ns}/{}", r.name)];
            }
            return vec![];
        }
        self.deployments
            .state()
            .iter()
            .filter(|d| d.namespace().as_deref() == Some(ns.as_str()))
            .filter(|d| {
                selector_of(d)
                    .is_ok_and(|s| !s.is_everything() && s.matches(rs.metadata.labels.as_ref()))
            })
            .map(|d| key_of(d.as_ref()))
            .collect()
    }

    fn deployment_of_pod(&self, p: &kube::api::ObjectMeta) -> Option<String> {
        let r = controller_of(p)?;
        let ns = p.namespace.clone().unwrap_or_default();
        let rs = self.rss.get(&ObjectRef::new(&r.name).within(&ns))?;
        let d = controller_of(&rs.metadata)?;
        (d.kind == "Deployment").then(|| format!("{ns}/{}", d.name))
    }

    /// `getReplicaSetsForDeployment`: adopts and releases, returns the controlled ones.
    async fn claim_rss(
        &self,
        d: &Deployment,
        selector: &Selector,
    ) -> anyhow::Result<Vec<ReplicaSet>> {
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let deleting = d.metadata.deletion_timestamp.is_some();
        let ns = d.namespace().unwrap_or_default();
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        let candidates: Vec<ReplicaSet> = self
            .rss
            .state()
            .iter()
            .filter(|r| r.namespace().as_deref() == Some(ns.as_str()))
            .map(|r| (**r).clone())
            .collect();
        let mut can_adopt: Option<bool> = None;
        let mut out = Vec::new();
        for rs in candidates {
            let matches = selector.matches(rs.metadata.labels.as_ref());
            match claim(&uid, deleting, &rs.metadata, matches) {
                Claim::Keep => out.push(rs),
                Claim::Ignore => {}
                Claim::Release => {
                    controllerref::release(&api, &rs, &uid).await?;
                }
                Claim::Adopt => {
                    if can_adopt.is_none() {
                        let dapi: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
                        can_adopt = Some(dapi.get_opt(&d.name_any()).await?.is_some_and(|f| {
                            f.metadata.uid == d.metadata.uid
                                && f.metadata.deletion_timestamp.is_none()
                        }));
                    }
                    if can_adopt == Some(true) {
                        if let Some(adopted) =
                            controllerref::adopt(&api, &rs, controller_ref(d)).await?
                        {
                            out.push(adopted);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Next> {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let Some(d) = self.deployments.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(Next::Done);
        };
        let mut d: Deployment = (*d).clone();
        let selector = match selector_of(&d) {
            Ok(s) if !s.is_everything() => s,
            Ok(_) => {
                self.recorder
                    .warning(
                        &d,
                        "SelectingAll",
                        "This deployment is selecting all pods. A non-empty selector is required.",
                    )
                    .await;
                self.observe_generation(&mut d).await?;
                return Ok(Next::Done);
            }
            Err(e) => {
                self.recorder
                    .warning(
                        &d,
                        "InvalidSelector",
                        &format!("invalid label selector: {e}"),
                    )
                    .await;
                self.observe_generation(&mut d).await?;
                return Ok(Next::Done);
            }
        };
        let rss = self.claim_rss(&d, &selector).await?;
        if d.metadata.deletion_timestamp.is_some() {
            let set = self.rs_set(&mut d, &rss, false).await?;
            return self
                .sync_deployment_status(&mut d, &set.all(), set.new.as_ref())
                .await;
        }
        self.check_paused_conditions(&mut d).await?;
        if paused(&d) || self.is_scaling_event(&mut d, &rss).await? {
            return self.sync_scale(&mut d, &rss).await;
        }
        if is_recreate(&d) {
            self.rollout_recreate(&mut d, &rss).await
        } else {
            self.rollout_rolling(&mut d, &rss).await
        }
    }

    /// Records that a Deployment this controller cannot act on was seen.
    async fn observe_generation(&self, d: &mut Deployment) -> anyhow::Result<()> {
        let mut st = status(d);
        if st.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
            st.observed_generation = d.metadata.generation;
            self.write_status(d, st).await?;
        }
        Ok(())
    }

    /// `isScalingEvent`: an active ReplicaSet was sized for another `spec.replicas`.
    async fn is_scaling_event(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
    ) -> anyhow::Result<bool> {
        let set = self.rs_set(d, rss, false).await?;
        let want = replicas(d);
        Ok(set
            .all()
            .iter()
            .filter(|r| rs_replicas(r) > 0)
            .filter_map(desired_annotation)
            .any(|desired| desired != want))
    }

    /// `sync`: scaling (paused or not) without rolling out a new template.
    async fn sync_scale(&self, d: &mut Deployment, rss: &[ReplicaSet]) -> anyhow::Result<Next> {
        let set = self.rs_set(d, rss, false).await?;
        self.scale(d, set.new.as_ref(), &set.old).await?;
        if paused(d) {
            self.cleanup(d, &set.old).await?;
        }
        // Status from the cache as it was: the ReplicaSet controller reports the new
        // counts, which brings us back here.
        self.sync_deployment_status(d, &set.all(), set.new.as_ref())
            .await
    }

    /// `scale`: the only active ReplicaSet (or the newest) takes the whole size; with a
    /// saturated new one the old ones go to zero; otherwise sizes change in proportion.
    async fn scale(
        &self,
        d: &Deployment,
        new: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> anyhow::Result<()> {
        let want = replicas(d);
        let mut all: Vec<ReplicaSet> = old.to_vec();
        all.extend(new.cloned());
        let active: Vec<&ReplicaSet> = all.iter().filter(|r| rs_replicas(r) > 0).collect();
        let only = match active.len() {
            0 => new.or_else(|| old.iter().max_by(|a, b| by_creation(a, b))),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(rs) = only {
            if rs_replicas(rs) != want {
                self.scale_rs_event(rs, want, d).await?;
            }
            return Ok(());
        }
        let saturated = new.is_some_and(|n| {
            rs_replicas(n) == want && desired_annotation(n) == Some(want) && rs_available(n) == want
        });
        if saturated {
            for rs in old.iter().filter(|r| rs_replicas(r) > 0) {
                self.scale_rs_event(rs, 0, d).await?;
            }
            return Ok(());
        }
        if !is_rolling(d) {
            return Ok(());
        }
        let sized: Vec<Sized> = active
            .iter()
            .map(|r| Sized {
                name: r.name_any(),
                replicas: rs_replicas(r),
                max_replicas_annotation: max_replicas_annotation(r),
                created: created(r),
            })
            .collect();
        let current: i32 = sized.iter().map(|s| s.replicas).sum();
        let sizes = proportional_sizes(&sized, want, max_surge(d), status(d).replicas.unwrap_or(0));
        let allowed = if want > 0 { want + max_surge(d) } else { 0 };
        let op = if allowed > current { "up" } else { "down" };
        for (name, size) in sizes {
            if let Some(rs) = active.iter().find(|r| r.name_any() == name) {
                self.scale_rs(rs, size, d, op).await?;
            }
        }
        Ok(())
    }

    /// `scaleReplicaSetAndRecordEvent`.
    async fn scale_rs_event(
        &self,
        rs: &ReplicaSet,
        size: i32,
        d: &Deployment,
    ) -> anyhow::Result<(bool, ReplicaSet)> {
        if rs_replicas(rs) == size {
            return Ok((false, rs.clone()));
        }
        let op = if rs_replicas(rs) < size { "up" } else { "down" };
        self.scale_rs(rs, size, d, op).await
    }

    /// `scaleReplicaSet`: the size and the desired/max-replicas annotations in one write;
    /// a `ScalingReplicaSet` event when the size changed.
    async fn scale_rs(
        &self,
        rs: &ReplicaSet,
        size: i32,
        d: &Deployment,
        op: &str,
    ) -> anyhow::Result<(bool, ReplicaSet)> {
        let want = replicas(d);
        let mut annotations: BTreeMap<String, String> = BTreeMap::new();
        let mut current = rs.metadata.annotations.clone().unwrap_or_default();
        let annotations_changed = set_replicas_annotations(&mut current, want, want + max_surge(d));
        let old = rs_replicas(rs);
        if old == size && !annotations_changed {
            return Ok((false, rs.clone()));
        }
        annotations.insert(DESIRED_REPLICAS.into(), want.to_string());
        annotations.insert(MAX_REPLICAS.into(), (want + max_surge(d)).to_string());
        let api: Api<ReplicaSet> =
            Api::namespaced(self.client.clone(), &rs.namespace().unwrap_or_default());
        let patch = json!({"metadata": {"annotations": annotations}, "spec": {"replicas": size}});
        let updated = api
            .patch(
                &rs.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        let scaled = old != size;
        if scaled {
            let msg = format!(
                "Scaled {op} replica set {} from {old} to {size}",
                rs.name_any()
            );
            self.recorder.normal(d, "ScalingReplicaSet", &msg).await;
        }
        Ok((scaled, updated))
    }
}
