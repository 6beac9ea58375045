//! The ReplicaSet and ReplicationController controllers (upstream's
//! `pkg/controller/replicaset`; the RC controller there is the same code over the other
//! kind, and so it is here: [`run`] is generic over [`ReplicaOwner`]).
//!
//! An owner controls the pods carrying its controller reference; it adopts active orphans
//! its selector matches and releases pods it controls that no longer match. It creates
//! pods from its template (`generateName: <owner>-`) in slow-start batches (1, 2, 4, ...)
//! or deletes the pods least worth keeping until it has `spec.replicas` active pods, with
//! [`Expectations`] so that it never acts twice on a cache that has not yet seen its own
//! writes. Status counts the active pods, the fully labelled, ready and available ones, and
//! carries the `ReplicaFailure` condition while creating or deleting fails.

use skiff_client::shared::Shared;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use skiff_client::controllerref::{self, claim, controller_of, controller_ref, Claim};
use skiff_client::events::Recorder;
use skiff_client::expectations::Expectations;
use skiff_client::selector::Selector;
use skiff_client::workload::{
    is_active, is_available, is_ready, namespace_terminating, phase, ready_since,
};

use crate::informer::watch_to_queue;
use crate::queue::{run_workers, Next, WorkQueue};

/// Upstream's `BurstReplicas`: at most this many creations or deletions per sync.
pub const BURST_REPLICAS: usize = 500;

/// The condition type set while creating or deleting pods fails.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// What the controller needs to know about the kind it runs for.
pub trait ReplicaOwner:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The event source and log name (`replicaset-controller`, `replication-controller`).
    const CONTROLLER: &'static str;

    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    fn pod_selector(&self) -> Result<Selector, String>;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn replica_status(&self) -> ReplicaStatus;
}

impl ReplicaOwner for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset-controller";

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn pod_selector(&self) -> Result<Selector, String> {
        Selector::from_label_selector(self.spec.as_ref().map(|s| &s.selector))
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }
    fn replica_status(&self) -> ReplicaStatus {
        let s = self.status.clone().unwrap_or_default();
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .unwrap_or_default()
                .into_iter()
                .map(|c| Condition {
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                    last_transition_time: c.last_transition_time,
                })
                .collect(),
        }
    }
}

impl ReplicaOwner for ReplicationController {
    const CONTROLLER: &'static str = "replication-controller";

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn pod_selector(&self) -> Result<Selector, String> {
        // Upstream defaults an empty RC selector to the template's labels.
        let spec = self.spec.as_ref();
        let sel = spec
            .and_then(|s| s.selector.as_ref())
            .filter(|m| !m.is_empty())
            .or_else(|| {
                spec.and_then(|s| s.template.as_ref())
                    .and_then(|t| t.metadata.as_ref())
                    .and_then(|m| m.labels.as_ref())
            });
        Ok(Selector::from_map(sel))
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }
    fn replica_status(&self) -> ReplicaStatus {
        let s = self.status.clone().unwrap_or_default();
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .unwrap_or_default()
                .into_iter()
                .map(|c| Condition {
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                    last_transition_time: c.last_transition_time,
                })
                .collect(),
        }
    }
}

/// The status both kinds share (same JSON shape).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaStatus {
    pub replicas: i32,
    pub fully_labeled_replicas: i32,
    pub ready_replicas: i32,
    pub available_replicas: i32,
    pub observed_generation: i64,
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<Time>,
}

impl ReplicaStatus {
    /// The status as JSON, zero counts omitted as Go's `omitempty` does (as a merge patch,
    /// `null` removes them).
    fn to_patch(&self) -> Value {
        let nz = |n: i32| if n == 0 { Value::Null } else { json!(n) };
        let conditions: Vec<Value> = self
            .conditions
            .iter()
            .map(|c| {
                json!({"type": c.type_, "status": c.status, "reason": c.reason,
                       "message": c.message, "lastTransitionTime": c.last_transition_time})
            })
            .collect();
        json!({"status": {
            "replicas": self.replicas,
            "fullyLabeledReplicas": nz(self.fully_labeled_replicas),
            "readyReplicas": nz(self.ready_replicas),
            "availableReplicas": nz(self.available_replicas),
            "observedGeneration": if self.observed_generation == 0 { Value::Null } else { json!(self.observed_generation) },
            "conditions": if conditions.is_empty() { Value::Null } else { json!(conditions) },
        }})
    }
}

/// `namespace/name`.
pub fn key_of<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// Whether `r` refers to a `K` (any version of its group).
fn refers_to<K: Resource<DynamicType = ()>>(
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> bool {
    let group = K::group(&());
    let ref_group = r.api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    r.kind == K::kind(&()) && ref_group == group
}

// ---- pod availability ----

/// Seconds until a ready pod becomes available (`podutil.IsPodAvailable`): `Some(0)` when
/// it is, `None` when it is not ready or will never be (no ready transition time).
pub fn until_available(p: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<i64> {
    if !is_ready(p) {
        return None;
    }
    if min_ready_seconds <= 0 {
        return Some(0);
    }
    let since = ready_since(p)?;
    let ready_for = now.as_second() - since.as_second();
    Some((i64::from(min_ready_seconds) - ready_for).max(0))
}

// ---- deletion ranking (controller.ActivePodsWithRanks) ----

fn phase_ordinal(p: &Pod) -> u8 {
    match phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(p: &Pod) -> i64 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
        .and_then(|v| v.parse::<i32>().ok())
        .map(i64::from)
        .unwrap_or(0)
}

fn max_restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

/// log2 bucket of how long ago `t` was (upstream's LogarithmicScaleDown): timestamps in
/// the same power-of-two age bucket rank equal.
fn log_bucket(t: Timestamp, now: Timestamp) -> i64 {
    let d = now.as_nanosecond() - t.as_nanosecond();
    if d <= 0 {
        return -1;
    }
    let secs = d as f64 / 1e9;
    if secs < 1.0 {
        return 0;
    }
    secs.log2().floor() as i64 + 1
}

/// `ActivePodsWithRanks.Less`: `Less` means "delete first". `rank` is the number of related
/// active pods on the same node (doubled-up pods go first).
pub fn deletion_order(a: (&Pod, usize), b: (&Pod, usize), now: Timestamp) -> Ordering {
    let (pa, ra) = a;
    let (pb, rb) = b;
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    // 1. unassigned < assigned
    if node(pa) != node(pb) {
        return node(pa).cmp(&node(pb));
    }
    // 2. pending < unknown < running
    if phase_ordinal(pa) != phase_ordinal(pb) {
        return phase_ordinal(pa).cmp(&phase_ordinal(pb));
    }
    // 3. not ready < ready
    if is_ready(pa) != is_ready(pb) {
        return is_ready(pa).cmp(&is_ready(pb));
    }
    // 4. lower deletion cost < higher
    if deletion_cost(pa) != deletion_cost(pb) {
        return deletion_cost(pa).cmp(&deletion_cost(pb));
    }
    // 5. doubled up < not doubled up
    if ra != rb {
        return rb.cmp(&ra);
    }
    let uid = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
    // 6. ready for less time < more time (log-scaled); zero times first
    if is_ready(pa) && is_ready(pb) {
        let (ta, tb) = (ready_since(pa), ready_since(pb));
        if ta != tb {
            match (ta, tb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(ta), Some(tb)) => {
                    let (ba, bb) = (log_bucket(ta, now), log_bucket(tb, now));
                    if ba != bb {
                        return ba.cmp(&bb);
                    }
                    return uid(pa).cmp(&uid(pb));
                }
            }
        }
    }
    // 7. more restarts < fewer
    if max_restarts(pa) != max_restarts(pb) {
        return max_restarts(pb).cmp(&max_restarts(pa));
    }
    // 8. newer < older (log-scaled); empty creation time first
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let (ca, cb) = (created(pa), created(pb));
    if ca != cb {
        return match (ca, cb) {
            (None, _) => Ordering::Less,
            (_, None) => Ordering::Greater,
            (Some(ca), Some(cb)) => {
                let (ba, bb) = (log_bucket(ca, now), log_bucket(cb, now));
                if ba != bb {
                    ba.cmp(&bb)
                } else {
                    uid(pa).cmp(&uid(pb))
                }
            }
        };
    }
    Ordering::Equal
}

/// The `n` pods to delete first (`getPodsToDelete`): ranked by related active pods on
/// their node, then [`deletion_order`].
pub fn pods_to_delete(pods: &[Pod], related: &[Pod], n: usize, now: Timestamp) -> Vec<Pod> {
    if n >= pods.len() {
        return pods.to_vec();
    }
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| is_active(p)) {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *on_node.entry(node).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&Pod, usize)> = pods
        .iter()
        .map(|p| {
            let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
            (p, node.and_then(|n| on_node.get(n)).copied().unwrap_or(0))
        })
        .collect();
    ranked.sort_by(|a, b| deletion_order(*a, *b, now));
    ranked.into_iter().take(n).map(|(p, _)| p.clone()).collect()
}

/// Batch sizes of upstream's `slowStartBatch`: 1, 2, 4, ... up to `count` in total.
pub fn slow_start_batches(count: usize, initial: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut remaining = count;
    let mut size = initial.max(1).min(count);
    while remaining > 0 && size > 0 {
        out.push(size);
        remaining -= size;
        size = (2 * size).min(remaining);
    }
    out
}

/// Computes the status of `owner` from the pods it controls (`calculateStatus`).
pub fn calculate_status<K: ReplicaOwner>(
    owner: &K,
    pods: &[Pod],
    manage_error: Option<(&str, &str)>,
    now: Timestamp,
) -> ReplicaStatus {
    let template_labels = owner
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let mut st = owner.replica_status();
    st.replicas = pods.len() as i32;
    st.fully_labeled_replicas = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            template_labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count() as i32;
    st.ready_replicas = pods.iter().filter(|p| is_ready(p)).count() as i32;
    st.available_replicas = pods
        .iter()
        .filter(|p| is_available(p, owner.min_ready_seconds(), now))
        .count() as i32;
    st.observed_generation = owner.meta().generation.unwrap_or(0);
    let has_failure = st.conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match manage_error {
        Some((reason, message)) if !has_failure => st.conditions.push(Condition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(Time(now)),
        }),
        None if has_failure => st.conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        _ => {}
    }
    st
}

/// A pod for `owner` from its template (`GetPodFromTemplate`).
pub fn pod_from_template<K: ReplicaOwner>(owner: &K) -> Pod {
    let t = owner.template().cloned().unwrap_or_default();
    let tm = t.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", owner.name_any())),
            namespace: owner.namespace(),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![controller_ref(owner)]),
            ..Default::default()
        },
        spec: t.spec,
        status: None,
    }
}

/// The message of an API error as Go's `err.Error()` prints a `StatusError`.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

struct Ctl<K: ReplicaOwner> {
    client: Client,
    owners: Store<K>,
    pods: Store<Pod>,
    expectations: Expectations,
    recorder: Recorder,
    queue: Arc<WorkQueue<String>>,
}

/// Runs the controller for `K` (ReplicaSet or ReplicationController).
pub async fn run<K: ReplicaOwner>(shared: Shared) -> anyhow::Result<()> {
    let client = shared.client().clone();
    let queue = WorkQueue::<String>::new();
    let (owners, owner_watch) = watch_to_queue(
        K::CONTROLLER,
        Api::<K>::all(client.clone()),
        watcher::Config::default(),
        queue.clone(),
        |o: &K| Some(key_of(o)),
    );
    // Pod uid → the owner key it counted for, to tell additions from updates and to
    // requeue the previous owner when a controller reference changes.
    let seen: Mutex<HashMap<String, Option<String>>> = Mutex::new(HashMap::new());
    let ctl_slot: Arc<std::sync::OnceLock<Arc<Ctl<K>>>> = Arc::default();
    let slot = ctl_slot.clone();
    let (pods, pod_watch) = shared.cached::<Pod>(move |ev| {
        let Some(c) = slot.get() else { return };
        match ev {
            Event::Apply(p) | Event::InitApply(p) => c.pod_changed(p, &seen),
            Event::Delete(p) => c.pod_deleted(p, &seen),
            Event::Init | Event::InitDone => {}
        }
    });
    let ctl = Arc::new(Ctl {
        client: client.clone(),
        owners,
        pods,
        expectations: Expectations::new(),
        recorder: Recorder::new(client.clone(), K::CONTROLLER),
        queue: queue.clone(),
    });
    let _ = ctl_slot.set(ctl.clone());
    let c = ctl.clone();
    let work = run_workers(K::CONTROLLER, queue, 2, move |key: String| {
        let c = c.clone();
        async move { c.sync(&key).await }
    });
    tokio::join!(owner_watch, pod_watch, work);
    Ok(())
}

impl<K: ReplicaOwner> Ctl<K> {
    /// The key of `p`'s controller if it is a `K` we know.
    fn owner_key(&self, p: &Pod) -> Option<String> {
        let r = controller_of(&p.metadata)?;
        if !refers_to::<K>(r) {
            return None;
        }
        let ns = p.namespace().unwrap_or_default();
        let o = self.owners.get(&ObjectRef::new(&r.name).within(&ns))?;
        (o.uid().as_deref() == Some(r.uid.as_str())).then(|| format!("{ns}/{}", r.name))
    }

    /// Owners in `p`'s namespace whose selector matches it (for orphans).
    fn matching_owners(&self, p: &Pod) -> Vec<String> {
        let ns = p.namespace().unwrap_or_default();
        self.owners
            .state()
            .iter()
            .filter(|o| o.namespace().as_deref() == Some(ns.as_str()))
            .filter(|o| {
                o.pod_selector()
                    .is_ok_and(|s| s.matches(p.metadata.labels.as_ref()))
            })
            .map(|o| key_of(o.as_ref()))
            .collect()
    }

    fn pod_changed(&self, p: &Pod, seen: &Mutex<HashMap<String, Option<String>>>) {
        let uid = p.uid().unwrap_or_default();
        let owner = self.owner_key(p);
        let previous = seen.lock().unwrap().insert(uid, owner.clone());
        let pod_key = key_of(p);
        match &previous {
            None => {
                // A new pod: a creation we may have been waiting for.
                if let Some(k) = &owner {
                    if p.metadata.deletion_timestamp.is_some() {
                        self.expectations.deletion_observed(k, &pod_key);
                    } else {
                        self.expectations.creation_observed(k);
                    }
                }
            }
            Some(prev) => {
                if let Some(k) = &owner {
                    if p.metadata.deletion_timestamp.is_some() {
                        self.expectations.deletion_observed(k, &pod_key);
                    }
                }
                if prev != &owner {
                    if let Some(k) = prev {
                        self.queue.add(k.clone());
                    }
                }
            }
        }
        match owner {
            Some(k) => self.queue.add(k),
            None if controller_of(&p.metadata).is_none() => {
                for k in self.matching_owners(p) {
                    self.queue.add(k);
                }
            }
            None => {}
        }
    }

    fn pod_deleted(&self, p: &Pod, seen: &Mutex<HashMap<String, Option<String>>>) {
        let previous = seen.lock().unwrap().remove(&p.uid().unwrap_or_default());
        if let Some(k) = self.owner_key(p).or(previous.flatten()) {
            self.expectations.deletion_observed(&k, &key_of(p));
            self.queue.add(k);
        }
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Next> {
        let (ns, name) = split_key(key);
        let Some(owner) = self.owners.get(&ObjectRef::new(name).within(ns)) else {
            self.expectations.forget(key);
            return Ok(Next::Done);
        };
        let owner: K = (*owner).clone();
        // Deletions the cache no longer shows (a re-list missed their events) are done.
        for pk in self.expectations.pending_deletions(key) {
            let (pns, pname) = split_key(&pk);
            let gone = self
                .pods
                .get(&ObjectRef::new(pname).within(pns))
                .is_none_or(|p| p.metadata.deletion_timestamp.is_some());
            if gone {
                self.expectations.deletion_observed(key, &pk);
            }
        }
        let needs_sync = self.expectations.satisfied(key);
        let selector = match owner.pod_selector() {
            Ok(s) => s,
            Err(e) => {
                self.recorder
                    .warning(&owner, "InvalidSelector", &format!("invalid selector: {e}"))
                    .await;
                return Ok(Next::Done);
            }
        };
        let all: Vec<Pod> = self
            .pods
            .state()
            .iter()
            .filter(|p| p.namespace().as_deref() == Some(ns) && is_active(p))
            .map(|p| (**p).clone())
            .collect();
        let pods = self.claim_pods(&owner, &selector, all.clone()).await?;

        let mut manage_error = None;
        if needs_sync && owner.meta().deletion_timestamp.is_none() {
            if let Err(msg) = self.manage_replicas(key, &owner, &pods, &all).await {
                let reason = if (pods.len() as i32) < owner.replicas() {
                    "FailedCreate"
                } else {
                    "FailedDelete"
                };
                manage_error = Some((reason, msg));
            }
        }
        let now = Timestamp::now();
        let status = calculate_status(
            &owner,
            &pods,
            manage_error.as_ref().map(|(r, m)| (*r, m.as_str())),
            now,
        );
        if status != owner.replica_status() {
            let api: Api<K> = Api::namespaced(self.client.clone(), ns);
            match api
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(status.to_patch()),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(Next::Done),
                Err(e) => return Err(e.into()),
            }
        }
        if let Some((_, msg)) = manage_error {
            anyhow::bail!("{msg}");
        }
        // Pods ready but not yet available: look again when the first of them will be.
        let min_ready = owner.min_ready_seconds();
        if min_ready > 0 && status.ready_replicas == owner.replicas() {
            let wait = pods
                .iter()
                .filter_map(|p| until_available(p, min_ready, now))
                .filter(|s| *s > 0)
                .min();
            if let Some(s) = wait {
                return Ok(Next::After(Duration::from_secs(s as u64 + 1)));
            }
        }
        Ok(Next::Done)
    }

    /// Adopts and releases (`claimPods`); returns the active pods `owner` controls.
    async fn claim_pods(
        &self,
        owner: &K,
        selector: &Selector,
        candidates: Vec<Pod>,
    ) -> anyhow::Result<Vec<Pod>> {
        let uid = owner.uid().unwrap_or_default();
        let deleting = owner.meta().deletion_timestamp.is_some();
        let ns = owner.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut can_adopt: Option<bool> = None;
        let mut out = Vec::new();
        for p in candidates {
            let matches = selector.matches(p.metadata.labels.as_ref());
            match claim(&uid, deleting, &p.metadata, matches) {
                Claim::Keep => out.push(p),
                Claim::Ignore => {}
                Claim::Release => {
                    controllerref::release(&api, &p, &uid).await?;
                }
                Claim::Adopt => {
                    if can_adopt.is_none() {
                        can_adopt = Some(self.fresh_owner_ok(owner).await?);
                    }
                    if can_adopt != Some(true) {
                        continue;
                    }
                    match controllerref::adopt(&api, &p, controller_ref(owner)).await {
                        Ok(Some(adopted)) => out.push(adopted),
                        Ok(None) => {}
                        Err(kube::Error::Api(s)) if s.is_conflict() => {
                            // Changed meanwhile: the next sync decides again.
                            self.queue.add(key_of(owner));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Upstream's `RecheckDeletionTimestamp`: adopt only if a live read shows the same,
    /// undeleted owner.
    async fn fresh_owner_ok(&self, owner: &K) -> anyhow::Result<bool> {
        let api: Api<K> =
            Api::namespaced(self.client.clone(), &owner.namespace().unwrap_or_default());
        Ok(match api.get_opt(&owner.name_any()).await? {
            Some(fresh) => fresh.uid() == owner.uid() && fresh.meta().deletion_timestamp.is_none(),
            None => false,
        })
    }

    /// Pods related to `owner` for deletion ranking: its own, plus those of owners with
    /// the same controller (a Deployment's other ReplicaSets).
    fn related_pods(&self, owner: &K, pods: &[Pod], all: &[Pod]) -> Vec<Pod> {
        let Some(parent) = controller_of(owner.meta()).map(|r| r.uid.clone()) else {
            return pods.to_vec();
        };
        let siblings: Vec<String> = self
            .owners
            .state()
            .iter()
            .filter(|o| o.namespace() == owner.namespace())
            .filter(|o| controller_of(o.meta()).is_some_and(|r| r.uid == parent))
            .filter_map(|o| o.uid())
            .collect();
        all.iter()
            .filter(|p| controller_of(&p.metadata).is_some_and(|r| siblings.contains(&r.uid)))
            .cloned()
            .collect()
    }

    /// Creates or deletes pods towards `spec.replicas` (`manageReplicas`). The error is the
    /// message for the `ReplicaFailure` condition.
    async fn manage_replicas(
        &self,
        key: &str,
        owner: &K,
        pods: &[Pod],
        all: &[Pod],
    ) -> Result<(), String> {
        let ns = owner.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let diff = pods.len() as i64 - i64::from(owner.replicas().max(0));
        if diff < 0 {
            // Pods that the selector would not match would be released as soon as they
            // were created, and replaced, forever: refuse (the API server validates this
            // for matchLabels; this also covers expressions and RC defaults).
            let template_labels = owner
                .template()
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.as_ref());
            if !owner
                .pod_selector()
                .is_ok_and(|s| s.matches(template_labels))
            {
                let msg = "the pod template's labels do not match the selector".to_string();
                self.recorder
                    .warning(owner, "FailedCreate", &format!("Error creating: {msg}"))
                    .await;
                return Err(msg);
            }
            let n = ((-diff) as usize).min(BURST_REPLICAS);
            self.expectations.expect(key, n, []);
            let pod = pod_from_template(owner);
            let pp = PostParams::default();
            let mut created = 0usize;
            let mut error = None;
            for batch in slow_start_batches(n, 1) {
                let results = join_all((0..batch).map(|_| api.create(&pp, &pod))).await;
                for r in results {
                    match r {
                        Ok(p) => {
                            created += 1;
                            self.recorder
                                .normal(
                                    owner,
                                    "SuccessfulCreate",
                                    &format!("Created pod: {}", p.name_any()),
                                )
                                .await;
                        }
                        Err(e) if namespace_terminating(&e) => {}
                        Err(e) => {
                            let msg = api_message(&e);
                            self.recorder
                                .warning(owner, "FailedCreate", &format!("Error creating: {msg}"))
                                .await;
                            error.get_or_insert(msg);
                        }
                    }
                }
                if error.is_some() {
                    break;
                }
            }
            // The informer will never see the pods that were not created.
            for _ in created..n {
                self.expectations.creation_observed(key);
            }
            return error.map_or(Ok(()), Err);
        }
        if diff > 0 {
            let n = (diff as usize).min(BURST_REPLICAS);
            let related = self.related_pods(owner, pods, all);
            let victims = pods_to_delete(pods, &related, n, Timestamp::now());
            self.expectations.expect(key, 0, victims.iter().map(key_of));
            let dp = DeleteParams::default();
            let (api, dp) = (&api, &dp);
            let results = join_all(
                victims
                    .iter()
                    .map(|p| async move { (p, api.delete(&p.name_any(), dp).await) }),
            )
            .await;
            let mut error = None;
            for (p, r) in results {
                match r {
                    Ok(_) => {
                        self.recorder
                            .normal(
                                owner,
                                "SuccessfulDelete",
                                &format!("Deleted pod: {}", p.name_any()),
                            )
                            .await;
                    }
                    Err(kube::Error::Api(s)) if s.is_not_found() => {
                        self.expectations.deletion_observed(key, &key_of(p));
                    }
                    Err(e) => {
                        self.expectations.deletion_observed(key, &key_of(p));
                        let msg = api_message(&e);
                        self.recorder
                            .warning(owner, "FailedDelete", &format!("Error deleting: {msg}"))
                            .await;
                        error.get_or_insert(msg);
                    }
                }
            }
            return error.map_or(Ok(()), Err);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    fn ts(secs_ago: i64) -> Time {
        Time(Timestamp::from_second(Timestamp::now().as_second() - secs_ago).unwrap())
    }

    fn pod(
        name: &str,
        node: Option<&str>,
        phase: &str,
        ready_ago: Option<i64>,
        created_ago: i64,
    ) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(name.into()),
                creation_timestamp: Some(ts(created_ago)),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(Into::into),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready_ago.is_some() { "True" } else { "False" }.into(),
                    last_transition_time: ready_ago.map(ts),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn slow_start_doubles() {
        assert_eq!(slow_start_batches(0, 1), Vec::<usize>::new());
        assert_eq!(slow_start_batches(1, 1), vec![1]);
        assert_eq!(slow_start_batches(10, 1), vec![1, 2, 4, 3]);
        assert_eq!(slow_start_batches(15, 1), vec![1, 2, 4, 8]);
    }

    #[test]
    fn deletion_ranking_follows_upstream() {
        let now = Timestamp::now();
        let pods = vec![
            pod("running-ready-old", Some("n1"), "Running", Some(5000), 9000),
            pod("unscheduled", None, "Pending", None, 10),
            pod("running-unready", Some("n1"), "Running", None, 100),
            pod("pending", Some("n1"), "Pending", None, 100),
            pod("unknown", Some("n1"), "Unknown", None, 100),
            pod("running-ready-new", Some("n2"), "Running", Some(2), 9000),
        ];
        let order: Vec<String> = pods_to_delete(&pods, &[], 5, now)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(
            order,
            [
                "unscheduled",
                "pending",
                "unknown",
                "running-unready",
                "running-ready-new"
            ]
        );
        // Doubled-up pods go before a lone pod with otherwise equal rank.
        let a = pod("a", Some("n1"), "Running", Some(100), 100);
        let b = pod("b", Some("n2"), "Running", Some(100), 100);
        let c = pod("c", Some("n1"), "Running", Some(100), 100);
        let related = vec![a.clone(), b.clone(), c.clone()];
        let first = pods_to_delete(&[b, a, c], &related, 1, now);
        assert_ne!(first[0].name_any(), "b");
        // Newer pods before older ones.
        let young = pod("young", Some("n1"), "Running", Some(5), 5);
        let old = pod("old", Some("n2"), "Running", Some(5), 100_000);
        let first = pods_to_delete(&[old, young], &[], 1, now);
        assert_eq!(first[0].name_any(), "young");
    }

    #[test]
    fn availability_honours_min_ready_seconds() {
        let now = Timestamp::now();
        let p = pod("p", Some("n"), "Running", Some(3), 10);
        assert!(is_available(&p, 0, now));
        assert!(!is_available(&p, 10, now));
        assert_eq!(until_available(&p, 10, now), Some(7));
        assert_eq!(
            until_available(&pod("q", None, "Pending", None, 1), 10, now),
            None
        );
    }

    #[test]
    fn status_counts_and_failure_condition() {
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                generation: Some(3),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
                replicas: Some(3),
                min_ready_seconds: Some(60),
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels(&[("app", "web"), ("tier", "fe")])),
                        ..Default::default()
                    }),
                    spec: None,
                }),
                ..Default::default()
            }),
            status: None,
        };
        let mut a = pod("a", Some("n"), "Running", Some(600), 700);
        a.metadata.labels = Some(labels(&[("app", "web"), ("tier", "fe")]));
        let b = pod("b", Some("n"), "Running", Some(5), 700);
        let now = Timestamp::now();
        let st = calculate_status(&rs, &[a, b], Some(("FailedCreate", "quota")), now);
        assert_eq!(
            (
                st.replicas,
                st.fully_labeled_replicas,
                st.ready_replicas,
                st.available_replicas
            ),
            (2, 1, 2, 1)
        );
        assert_eq!(st.observed_generation, 3);
        assert_eq!(st.conditions[0].reason.as_deref(), Some("FailedCreate"));
        let patch = st.to_patch();
        assert_eq!(patch["status"]["conditions"][0]["type"], "ReplicaFailure");
        let mut rs2 = rs.clone();
        rs2.status = Some(serde_json::from_value(patch["status"].clone()).unwrap());
        assert!(calculate_status(&rs2, &[], None, now).conditions.is_empty());
    }

    #[test]
    fn pods_come_from_the_template() {
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels(&[("app", "web")])),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec::default()),
                }),
                ..Default::default()
            }),
            status: None,
        };
        let p = pod_from_template(&rs);
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
        let r = &p.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (r.kind.as_str(), r.uid.as_str(), r.controller),
            ("ReplicaSet", "u1", Some(true))
        );
    }
}
