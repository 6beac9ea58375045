//! The DaemonSet controller (upstream `pkg/controller/daemon`): one pod per eligible node.
//!
//! A node is eligible when the pod the DaemonSet would create there (its template plus the
//! DaemonSet default tolerations) fits its node selector, required node affinity and
//! NoSchedule/NoExecute taints; a pod stays on a node whose NoExecute taints it tolerates.
//! Pods are not bound here: as upstream, each gets a required node affinity
//! `metadata.name In [<node>]` and the scheduler binds it. Template versions are
//! ControllerRevisions `<ds>-<hash>` whose hash labels the pods
//! (`controller-revision-hash`); `RollingUpdate` replaces old pods within
//! `maxUnavailable`, or surges new ones first within `maxSurge`; `OnDelete` replaces
//! a pod only once someone deletes it.
//!
//! The DaemonSet, its pods, revisions and the nodes are read live at each sync; watches of
//! DaemonSets, their pods and nodes trigger syncs. Not implemented: adoption of orphan pods
//! and revisions.

use skiff_client::shared::Shared;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use skiff_client::controllerref::controller_ref;
use skiff_client::events::Recorder;
use skiff_client::history::{self, Current};
use skiff_client::informer::watch_to_queue;
use skiff_client::nodeaffinity::{required_matches, target_node, NODE_NAME_FIELD};
use skiff_client::queue::{run_workers, Next, WorkQueue};
use skiff_client::selector::Selector;
use skiff_client::taints::{self, NO_EXECUTE, NO_SCHEDULE};
use skiff_client::workload::{self, controller_key, is_controlled_by, phase};

use crate::deployment::util::{compute_hash, scaled_value};

pub use skiff_client::history::REVISION_HASH;
pub const TEMPLATE_GENERATION: &str = "pod-template-generation";
/// The DaemonSet annotation upstream's API server keeps with the template generation.
const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
/// A failed daemon pod on a node is replaced after a backoff growing from 1 s to 15 min.
const FAILED_BACKOFF_BASE: Duration = Duration::from_secs(1);
const FAILED_BACKOFF_MAX: Duration = Duration::from_secs(900);

type Key = (String, String);

struct Ctl {
    client: Client,
    recorder: Recorder,
    /// (DaemonSet uid, node) → (time of the last failed-pod deletion, current delay).
    failed_backoff: Mutex<HashMap<(String, String), (Timestamp, Duration)>>,
    /// Watch-fed caches: syncs that change nothing (most of them: pod status updates)
    /// read only these; a sync that would create or delete pods reads the pods again live
    /// first, so a cache that lags never causes duplicates.
    nodes: Store<Node>,
    pods: Store<Pod>,
}

pub async fn run(shared: Shared) -> anyhow::Result<()> {
    let client = shared.client().clone();
    let queue = WorkQueue::<Key>::new();
    let (dss, ds_watch) = watch_to_queue(
        "daemonsets",
        Api::<DaemonSet>::all(client.clone()),
        watcher::Config::default(),
        queue.clone(),
        |d: &DaemonSet| Some((d.namespace()?, d.name_any())),
    );
    let (pods, pod_watch) = watch_to_queue(
        "daemon pods",
        Api::<Pod>::all(client.clone()),
        // Every pod this controller makes carries the label: cache only those.
        watcher::Config::default().labels(REVISION_HASH),
        queue.clone(),
        |p: &Pod| controller_key(&p.metadata, "apps/v1", "DaemonSet"),
    );
    // Any node change may change where every DaemonSet runs.
    let q = queue.clone();
    let (nodes, node_watch) = shared.cached::<Node>({
        // Only what decides eligibility matters (name, labels, taints), not heartbeats.
        let mut seen: HashMap<String, String> = HashMap::new();
        move |ev: &Event<Node>| match ev {
            Event::Apply(n) | Event::InitApply(n) => {
                let fp = eligibility_fingerprint(n);
                if seen.insert(n.name_any(), fp.clone()).as_ref() != Some(&fp) {
                    enqueue_all(&dss, &q);
                }
            }
            Event::Delete(n) => {
                seen.remove(&n.name_any());
                enqueue_all(&dss, &q);
            }
            Event::InitDone => enqueue_all(&dss, &q),
            Event::Init => {}
        }
    });
    let ctl = Arc::new(Ctl {
        recorder: Recorder::new(client.clone(), "daemonset-controller"),
        client,
        failed_backoff: Mutex::new(HashMap::new()),
        nodes,
        pods,
    });
    let work = run_workers("daemonset", queue, 2, move |key: Key| {
        let ctl = ctl.clone();
        async move { ctl.sync(&key.0, &key.1).await }
    });
    tokio::join!(ds_watch, pod_watch, node_watch, work);
    Ok(())
}

fn eligibility_fingerprint(n: &Node) -> String {
    let taints = n.spec.as_ref().and_then(|s| s.taints.as_ref());
    serde_json::to_string(&(&n.metadata.labels, taints)).unwrap_or_default()
}

fn enqueue_all(dss: &Store<DaemonSet>, q: &WorkQueue<Key>) {
    for d in dss.state() {
        if let Some(ns) = d.namespace() {
            q.add((ns, d.name_any()));
        }
    }
}

// ---------------------------------------------------------------- pure logic

fn toleration(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    }
}

/// `AddOrUpdateDaemonPodTolerations`: daemon pods tolerate node conditions that would
/// otherwise keep them away (or evict them): not-ready and unreachable (NoExecute), disk,
/// memory and PID pressure and unschedulable (NoSchedule), and, on the host network,
/// network-unavailable.
pub fn add_daemon_tolerations(spec: &mut k8s_openapi::api::core::v1::PodSpec) {
    let mut wanted = vec![
        toleration(taints::NOT_READY, NO_EXECUTE),
        toleration(taints::UNREACHABLE, NO_EXECUTE),
        toleration("node.kubernetes.io/disk-pressure", NO_SCHEDULE),
        toleration("node.kubernetes.io/memory-pressure", NO_SCHEDULE),
        toleration("node.kubernetes.io/pid-pressure", NO_SCHEDULE),
        toleration(taints::UNSCHEDULABLE, NO_SCHEDULE),
    ];
    if spec.host_network == Some(true) {
        wanted.push(toleration(
            "node.kubernetes.io/network-unavailable",
            NO_SCHEDULE,
        ));
    }
    let ts = spec.tolerations.get_or_insert_with(Vec::new);
    for w in wanted {
        // An existing toleration of the same key and effect is replaced, as upstream's
        // AddOrUpdateTolerationInPodSpec does for an equal one.
        match ts
            .iter_mut()
            .find(|t| t.key == w.key && t.effect == w.effect && t.operator == w.operator)
        {
            Some(t) => *t = w,
            None => ts.push(w),
        }
    }
}

/// `NodeShouldRunDaemonPod`: (should run a pod there, may keep a pod running there).
pub fn should_run(node: &Node, ds: &DaemonSet) -> (bool, bool) {
    let mut spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    let name = node.name_any();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != name)
    {
        return (false, false);
    }
    add_daemon_tolerations(&mut spec);
    if !required_matches(&spec, node) {
        return (false, false);
    }
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    let node_taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let untolerated = |effects: &[&str]| {
        node_taints
            .iter()
            .filter(|t| effects.contains(&t.effect.as_str()))
            .any(|t| !taints::tolerated_by(&tolerations, t))
    };
    if untolerated(&[NO_SCHEDULE, NO_EXECUTE]) {
        return (false, !untolerated(&[NO_EXECUTE]));
    }
    (true, true)
}

/// `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes the single
/// term `metadata.name In [node]` (eligibility was judged by the controller).
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let term = NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement {
            key: NODE_NAME_FIELD.into(),
            operator: "In".into(),
            values: Some(vec![node.into()]),
        }]),
    };
    let mut a = affinity.unwrap_or_default();
    let na = a.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
    a
}

fn template_generation(ds: &DaemonSet) -> Option<String> {
    ds.annotations()
        .get(TEMPLATE_GENERATION_ANNOTATION)
        .cloned()
}

/// The pod the DaemonSet runs on `node` (`CreatePodTemplate` plus the node affinity).
pub fn pod_for(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let tm = template.metadata.unwrap_or_default();
    let mut labels = tm.labels.unwrap_or_default();
    if let Some(g) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION.into(), g);
    }
    labels.insert(REVISION_HASH.into(), hash.into());
    let mut spec = template.spec.unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.name_any())),
            namespace: ds.namespace(),
            labels: Some(labels),
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![controller_ref(ds)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// `IsPodUpdated`: the pod carries the current revision hash (or template generation).
pub fn pod_updated(pod: &Pod, hash: &str, generation: Option<&str>) -> bool {
    let l = pod.labels();
    (!hash.is_empty() && l.get(REVISION_HASH).map(String::as_str) == Some(hash))
        || generation.is_some_and(|g| l.get(TEMPLATE_GENERATION).map(String::as_str) == Some(g))
}

/// Scheduled pods first, then oldest, then by name (`podByCreationTimestampAndPhase`).
fn by_age(a: &&Pod, b: &&Pod) -> std::cmp::Ordering {
    let scheduled = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    scheduled(b)
        .cmp(&scheduled(a))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| a.name_any().cmp(&b.name_any()))
}

/// One node's pods split into the updated and the old one (`findUpdatedPodsOnNode`);
/// `None` if there are two of either (the manage step cleans that up first).
fn updated_and_old<'a>(
    pods: &[&'a Pod],
    hash: &str,
    gen: Option<&str>,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if pod_updated(p, hash, gen) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(*p);
    }
    Some((new, old))
}

/// What one sync does to pods: nodes to create a pod on, pods to delete.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub create_on: Vec<String>,
    pub delete: Vec<String>,
    pub failed: Vec<(String, String)>,
}

pub struct View<'a> {
    pub ds: &'a DaemonSet,
    pub nodes: &'a [Node],
    /// Node name → the DaemonSet's pods there (terminal pods being deleted left out).
    pub by_node: BTreeMap<String, Vec<&'a Pod>>,
    pub hash: &'a str,
    pub now: Timestamp,
}

impl View<'_> {
    fn min_ready(&self) -> i32 {
        self.ds
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn available(&self, p: &Pod) -> bool {
        workload::is_available(p, self.min_ready(), self.now)
    }

    fn surge_allowed(&self) -> bool {
        self.rolling()
            && self.max_surge_setting().is_some_and(|s| {
                !matches!(
                    s,
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0)
                )
            })
    }

    fn rolling(&self) -> bool {
        let t = self
            .ds
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|u| u.type_.as_deref());
        t.is_none_or(|t| t == "RollingUpdate")
    }

    fn max_surge_setting(
        &self,
    ) -> Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString> {
        self.ds
            .spec
            .as_ref()?
            .update_strategy
            .as_ref()?
            .rolling_update
            .as_ref()?
            .max_surge
            .clone()
    }

    /// `podsShouldBeOnNode` for every node, and pods on nodes that no longer exist.
    pub fn manage(&self) -> Plan {
        let mut plan = Plan::default();
        let node_names: HashSet<String> = self.nodes.iter().map(|n| n.name_any()).collect();
        for node in self.nodes {
            let name = node.name_any();
            let (run, keep) = should_run(node, self.ds);
            let pods: &[&Pod] = self.by_node.get(&name).map(Vec::as_slice).unwrap_or(&[]);
            let exists = !pods.is_empty();
            if run && !exists {
                plan.create_on.push(name);
            } else if keep {
                let mut running: Vec<&Pod> = Vec::new();
                for p in pods
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                {
                    match phase(p) {
                        "Failed" | "Succeeded" => plan.failed.push((name.clone(), p.name_any())),
                        _ => running.push(p),
                    }
                }
                running.sort_by(by_age);
                if !self.surge_allowed() {
                    plan.delete
                        .extend(running.iter().skip(1).map(|p| p.name_any()));
                    continue;
                }
                // With surge, a node may briefly run the oldest new and oldest old pod.
                let (mut oldest_new, mut oldest_old) = (None, None);
                for p in running {
                    let slot = if pod_updated(p, self.hash, template_generation(self.ds).as_deref())
                    {
                        &mut oldest_new
                    } else {
                        &mut oldest_old
                    };
                    if slot.is_none() {
                        *slot = Some(p);
                    } else {
                        plan.delete.push(p.name_any());
                    }
                }
                if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
                    if !workload::is_ready(old) || self.available(new) {
                        plan.delete.push(old.name_any());
                    }
                }
            } else if exists {
                plan.delete.extend(
                    pods.iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .map(|p| p.name_any()),
                );
            }
        }
        for (node, pods) in &self.by_node {
            if !node_names.contains(node) {
                plan.delete.extend(
                    pods.iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .map(|p| p.name_any()),
                );
            }
        }
        plan
    }

    /// `updatedDesiredNodeCounts`: (maxSurge, maxUnavailable) against the nodes that should
    /// run a pod; both zero means one may be unavailable.
    fn budgets(&self) -> (i32, i32) {
        let desired = self
            .nodes
            .iter()
            .filter(|n| should_run(n, self.ds).0)
            .count() as i32;
        let ru = self
            .ds
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|u| u.rolling_update.clone())
            .unwrap_or_default();
        let default_unavailable = k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1);
        let unavailable = scaled_value(
            Some(ru.max_unavailable.as_ref().unwrap_or(&default_unavailable)),
            desired,
            true,
        )
        .unwrap_or(1);
        let surge = scaled_value(ru.max_surge.as_ref(), desired, true).unwrap_or(0);
        if surge == 0 && unavailable == 0 {
            (0, 1)
        } else {
            (surge, unavailable)
        }
    }

    /// `rollingUpdate`: old pods to delete (no surge), or nodes to surge a new pod onto.
    pub fn rolling_update(&self) -> Plan {
        let mut plan = Plan::default();
        if !self.rolling() {
            return plan;
        }
        let gen = template_generation(self.ds);
        let (max_surge, max_unavailable) = self.budgets();
        if max_surge == 0 {
            let mut unavailable = 0;
            let mut allowed = Vec::new();
            let mut candidates = Vec::new();
            for pods in self.by_node.values() {
                let Some((new, old)) = updated_and_old(pods, self.hash, gen.as_deref()) else {
                    unavailable += 1;
                    continue;
                };
                match (new, old) {
                    (None, None) | (Some(_), Some(_)) => unavailable += 1,
                    (Some(new), None) => {
                        if !self.available(new) {
                            unavailable += 1;
                        }
                    }
                    (None, Some(old)) => {
                        if !self.available(old) {
                            allowed.push(old.name_any());
                        } else if unavailable < max_unavailable {
                            candidates.push(old.name_any());
                        }
                    }
                }
            }
            let remaining = ((max_unavailable - unavailable).max(0) as usize).min(candidates.len());
            plan.delete = allowed;
            plan.delete.extend(candidates.into_iter().take(remaining));
            return plan;
        }
        let mut surging = 0;
        let mut allowed = Vec::new();
        let mut candidates = Vec::new();
        for (node, pods) in &self.by_node {
            let Some((new, old)) = updated_and_old(pods, self.hash, gen.as_deref()) else {
                continue;
            };
            match (new, old) {
                (_, None) => {}
                (None, Some(old)) => {
                    if !self.available(old) {
                        allowed.push(node.clone());
                    } else if surging < max_surge {
                        candidates.push(node.clone());
                    }
                }
                (Some(new), Some(old)) => {
                    if !self.available(new) {
                        surging += 1;
                    } else {
                        plan.delete.push(old.name_any());
                    }
                }
            }
        }
        let remaining = ((max_surge - surging).max(0) as usize).min(candidates.len());
        plan.create_on = allowed;
        plan.create_on
            .extend(candidates.into_iter().take(remaining));
        plan
    }

    /// `updateDaemonSetStatus`'s counts.
    pub fn status(&self, old: &DaemonSetStatus) -> DaemonSetStatus {
        let gen = template_generation(self.ds);
        let mut st = DaemonSetStatus {
            collision_count: old.collision_count,
            conditions: old.conditions.clone(),
            observed_generation: self.ds.metadata.generation,
            ..Default::default()
        };
        let mut available = 0;
        let mut updated = 0;
        for node in self.nodes {
            let (run, _) = should_run(node, self.ds);
            let mut pods: Vec<&Pod> = self
                .by_node
                .get(&node.name_any())
                .cloned()
                .unwrap_or_default();
            let scheduled = !pods.is_empty();
            if run {
                st.desired_number_scheduled += 1;
                if !scheduled {
                    continue;
                }
                st.current_number_scheduled += 1;
                pods.sort_by(by_age);
                let p = pods[0];
                if workload::is_ready(p) {
                    st.number_ready += 1;
                    if self.available(p) {
                        available += 1;
                    }
                }
                if pod_updated(p, self.hash, gen.as_deref()) {
                    updated += 1;
                }
            } else if scheduled {
                st.number_misscheduled += 1;
            }
        }
        // Zeros omitted, as Go's omitempty does for these two.
        st.number_available = (available > 0).then_some(available);
        st.updated_number_scheduled = (updated > 0).then_some(updated);
        let unavailable = st.desired_number_scheduled - available;
        st.number_unavailable = (unavailable > 0).then_some(unavailable);
        st
    }
}

// ---------------------------------------------------------------- the sync

impl Ctl {
    async fn sync(&self, ns: &str, name: &str) -> anyhow::Result<Next> {
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let Some(ds) = api.get_opt(name).await? else {
            return Ok(Next::Done);
        };
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(Next::Done);
        }
        let spec = ds.spec.clone().unwrap_or_default();
        let selector = match Selector::from_label_selector(Some(&spec.selector)) {
            Ok(s) if !s.is_everything() => s,
            Ok(_) => {
                self.recorder
                    .warning(
                        &ds,
                        "SelectingAll",
                        "This daemon set is selecting all pods. A non-empty selector is required.",
                    )
                    .await;
                return Ok(Next::Done);
            }
            Err(e) => {
                tracing::debug!(namespace = ns, daemonset = name, "invalid selector: {e}");
                return Ok(Next::Done);
            }
        };
        let uid = ds.uid().unwrap_or_default();
        self.nodes.wait_until_ready().await?;
        self.pods.wait_until_ready().await?;
        let nodes: Vec<Node> = self.nodes.state().iter().map(|n| (**n).clone()).collect();
        let owned = |p: &Pod| {
            p.metadata.namespace.as_deref() == Some(ns)
                && is_controlled_by(&p.metadata, &uid)
                && selector.matches(p.metadata.labels.as_ref())
        };
        let mut pods: Vec<Pod> = self
            .pods
            .state()
            .iter()
            .filter(|p| owned(p))
            .map(|p| (**p).clone())
            .collect();
        let (hash, mut status) = self.sync_history(&ds, &selector, &pods).await?;
        let now = Timestamp::now();
        let (mut plan, mut view_status) = compute(&ds, &nodes, &pods, &hash, now, &status);
        if !plan.is_empty() {
            pods = pods_api
                .list(&workload::list_params(&spec.selector))
                .await?
                .items
                .into_iter()
                .filter(|p| owned(p))
                .collect();
            (plan, view_status) = compute(&ds, &nodes, &pods, &hash, now, &status);
        }
        let mut next = Next::Done;
        for (node, pod) in std::mem::take(&mut plan.failed) {
            match self.failed_pod_allowed(&uid, &node, now) {
                Ok(()) => {
                    let msg = format!(
                        "Found failed daemon pod {ns}/{pod} on node {node}, will try to kill it"
                    );
                    self.recorder.warning(&ds, "FailedDaemonPod", &msg).await;
                    plan.delete.push(pod);
                }
                Err(wait) => next = earliest(next, wait),
            }
        }
        status = view_status;
        let result = self.apply_plan(&ds, &pods_api, &plan, &hash).await;

        // Pods ready but not yet available for minReadySeconds: look again then.
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        if min_ready > 0 && status.number_ready > status.number_available.unwrap_or(0) {
            next = earliest(next, Duration::from_secs(min_ready as u64));
        }
        if Some(&status) != ds.status.as_ref() {
            let mut d = ds.clone();
            d.status = Some(status);
            d.metadata.managed_fields = None;
            api.replace_status(name, &PostParams::default(), &d).await?;
        }
        result?;
        Ok(next)
    }

    /// Replacement of a failed pod on a node waits for a growing backoff.
    fn failed_pod_allowed(&self, uid: &str, node: &str, now: Timestamp) -> Result<(), Duration> {
        let mut b = self.failed_backoff.lock().unwrap();
        let key = (uid.to_string(), node.to_string());
        match b.get(&key).copied() {
            Some((at, delay)) => {
                let since = Duration::from_millis(
                    (now.as_millisecond() - at.as_millisecond()).max(0) as u64,
                );
                if since < delay {
                    return Err(delay - since);
                }
                let next = if since > 2 * FAILED_BACKOFF_MAX {
                    FAILED_BACKOFF_BASE
                } else {
                    (delay * 2).min(FAILED_BACKOFF_MAX)
                };
                b.insert(key, (now, next));
            }
            None => {
                b.insert(key, (now, FAILED_BACKOFF_BASE));
            }
        }
        Ok(())
    }

    async fn apply_plan(
        &self,
        ds: &DaemonSet,
        api: &Api<Pod>,
        plan: &Plan,
        hash: &str,
    ) -> anyhow::Result<()> {
        let mut first_err: Option<anyhow::Error> = None;
        // Slow start, as upstream: batches of 1, 2, 4, ... stop at the first failing batch.
        let mut batch = 1usize;
        let mut i = 0;
        while i < plan.create_on.len() {
            let end = (i + batch).min(plan.create_on.len());
            let creates = plan.create_on[i..end].iter().map(|node| async move {
                let pod = pod_for(ds, node, hash);
                api.create(&PostParams::default(), &pod).await
            });
            let mut failed = false;
            for r in futures::future::join_all(creates).await {
                match r {
                    Ok(p) => {
                        self.recorder
                            .normal(
                                ds,
                                "SuccessfulCreate",
                                &format!("Created pod: {}", p.name_any()),
                            )
                            .await;
                    }
                    Err(e) if workload::namespace_terminating(&e) => return Ok(()),
                    Err(e) => {
                        self.recorder
                            .warning(ds, "FailedCreate", &format!("Error creating: {e}"))
                            .await;
                        failed = true;
                        first_err.get_or_insert(e.into());
                    }
                }
            }
            if failed {
                break;
            }
            i = end;
            batch *= 2;
        }
        let deletes = plan
            .delete
            .iter()
            .map(|name| async move { (name, api.delete(name, &DeleteParams::default()).await) });
        for (name, r) in futures::future::join_all(deletes).await {
            match r {
                Ok(_) => {
                    self.recorder
                        .normal(ds, "SuccessfulDelete", &format!("Deleted pod: {name}"))
                        .await;
                }
                Err(e) if workload::is_not_found(&e) => {}
                Err(e) => {
                    self.recorder
                        .warning(ds, "FailedDelete", &format!("Error deleting: {e}"))
                        .await;
                    first_err.get_or_insert(e.into());
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `constructHistory` and `cleanupHistory`: the current revision (created, or renumbered
    /// to be the newest), old ones beyond `revisionHistoryLimit` that no pod uses deleted.
    /// Returns the current hash and the status with any collision count bump.
    async fn sync_history(
        &self,
        ds: &DaemonSet,
        selector: &Selector,
        pods: &[Pod],
    ) -> anyhow::Result<(String, DaemonSetStatus)> {
        let ns = ds.namespace().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        let uid = ds.uid().unwrap_or_default();
        let selector_params = ds
            .spec
            .as_ref()
            .map(|s| workload::list_params(&s.selector))
            .unwrap_or_default();
        let revs: Vec<ControllerRevision> = api
            .list(&selector_params)
            .await?
            .items
            .into_iter()
            .filter(|r| is_controlled_by(&r.metadata, &uid))
            .filter(|r| selector.matches(r.metadata.labels.as_ref()))
            .collect();
        let mut status = ds.status.clone().unwrap_or_default();
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let hash = compute_hash(&template, status.collision_count);
        let current = match history::sync_current(&api, ds, &revs, &template, &hash).await? {
            Current::Revision(r) => r,
            Current::Collision => {
                // The next sync hashes with a new count.
                status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                let mut d = ds.clone();
                d.status = Some(status);
                d.metadata.managed_fields = None;
                Api::<DaemonSet>::namespaced(self.client.clone(), &ns)
                    .replace_status(&ds.name_any(), &PostParams::default(), &d)
                    .await?;
                anyhow::bail!("hash collision for the revision {}-{hash}", ds.name_any());
            }
        };
        let hash = current
            .labels()
            .get(REVISION_HASH)
            .cloned()
            .unwrap_or_default();
        let used: HashSet<&String> = pods
            .iter()
            .filter_map(|p| p.labels().get(REVISION_HASH))
            .collect();
        let live: HashSet<String> = revs
            .iter()
            .filter(|r| {
                r.uid() == current.uid()
                    || r.labels()
                        .get(REVISION_HASH)
                        .is_some_and(|h| used.contains(h))
            })
            .map(|r| r.name_any())
            .collect();
        let limit = ds
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0) as usize;
        history::truncate(&api, &revs, &live, limit).await?;
        Ok((hash, status))
    }
}

/// The sync's plan (manage, then the rolling update) and the status, from one view of the
/// nodes and the DaemonSet's pods.
fn compute(
    ds: &DaemonSet,
    nodes: &[Node],
    pods: &[Pod],
    hash: &str,
    now: Timestamp,
    old: &DaemonSetStatus,
) -> (Plan, DaemonSetStatus) {
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in pods {
        let terminal = matches!(phase(p), "Succeeded" | "Failed");
        if terminal && p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        // A pod with no node at all cannot be a daemon pod: it is replaced.
        let node = p.spec.as_ref().and_then(target_node).unwrap_or_default();
        by_node.entry(node).or_default().push(p);
    }
    let view = View {
        ds,
        nodes,
        by_node,
        hash,
        now,
    };
    let mut plan = view.manage();
    let rolling = view.rolling_update();
    for n in rolling.create_on {
        if !plan.create_on.contains(&n) {
            plan.create_on.push(n);
        }
    }
    for p in rolling.delete {
        if !plan.delete.contains(&p) {
            plan.delete.push(p);
        }
    }
    (plan, view.status(old))
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.create_on.is_empty() && self.delete.is_empty() && self.failed.is_empty()
    }
}

fn earliest(next: Next, d: Duration) -> Next {
    match next {
        Next::After(x) if x <= d => Next::After(x),
        _ => Next::After(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
    };
    use k8s_openapi::api::core::v1::{
        NodeSpec, PodCondition, PodSpec, PodStatus, PodTemplateSpec, Taint,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(k, e)| Taint {
                            key: k.to_string(),
                            effect: e.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn ds(node_selector: Option<(&str, &str)>, tolerations: Vec<Toleration>) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                name: Some("agent".into()),
                namespace: Some("kube-system".into()),
                uid: Some("d1".into()),
                ..Default::default()
            },
            spec: Some(DaemonSetSpec {
                selector: LabelSelector {
                    match_labels: Some([("app".to_string(), "agent".to_string())].into()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_string(), "agent".to_string())].into()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        node_selector: node_selector
                            .map(|(k, v)| [(k.to_string(), v.to_string())].into()),
                        tolerations: Some(tolerations),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn eligibility_follows_selectors_taints_and_default_tolerations() {
        let d = ds(Some(("role", "edge")), vec![]);
        assert_eq!(
            should_run(&node("a", &[("role", "edge")], &[]), &d),
            (true, true)
        );
        assert_eq!(should_run(&node("b", &[], &[]), &d), (false, false));
        // Default tolerations: cordoned or not-ready nodes still get daemon pods.
        let cordoned = node(
            "c",
            &[("role", "edge")],
            &[
                (taints::UNSCHEDULABLE, NO_SCHEDULE),
                (taints::NOT_READY, NO_EXECUTE),
            ],
        );
        assert_eq!(should_run(&cordoned, &d), (true, true));
        // A NoSchedule taint keeps new pods away but lets a running one stay; NoExecute does not.
        let dedicated = node("d", &[("role", "edge")], &[("dedicated", NO_SCHEDULE)]);
        assert_eq!(should_run(&dedicated, &d), (false, true));
        let evicting = node("e", &[("role", "edge")], &[("dedicated", NO_EXECUTE)]);
        assert_eq!(should_run(&evicting, &d), (false, false));
        let tolerant = ds(
            Some(("role", "edge")),
            vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            }],
        );
        assert_eq!(should_run(&evicting, &tolerant), (true, true));
    }

    #[test]
    fn pods_are_pinned_by_affinity_and_carry_tolerations_and_hash() {
        let d = ds(None, vec![]);
        let p = pod_for(&d, "node-1", "abc");
        let spec = p.spec.unwrap();
        assert!(spec.node_name.is_none());
        assert_eq!(target_node(&spec_with(&spec)).as_deref(), Some("node-1"));
        let keys: Vec<_> = spec
            .tolerations
            .unwrap()
            .iter()
            .map(|t| format!("{}:{}", t.key.clone().unwrap(), t.effect.clone().unwrap()))
            .collect();
        assert_eq!(
            keys,
            [
                "node.kubernetes.io/not-ready:NoExecute",
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/disk-pressure:NoSchedule",
                "node.kubernetes.io/memory-pressure:NoSchedule",
                "node.kubernetes.io/pid-pressure:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule",
            ]
        );
        let labels = p.metadata.labels.unwrap();
        assert_eq!(labels[REVISION_HASH], "abc");
        assert_eq!(labels["app"], "agent");
        assert_eq!(p.metadata.generate_name.as_deref(), Some("agent-"));
    }

    fn spec_with(s: &PodSpec) -> PodSpec {
        s.clone()
    }

    fn pod(name: &str, node: &str, hash: &str, ready: bool, age: i64) -> Pod {
        let d = ds(None, vec![]);
        let mut p = pod_for(&d, node, hash);
        p.metadata.name = Some(name.into());
        p.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::from_second(1_700_000_000 + age).unwrap(),
        ));
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    #[test]
    fn manage_creates_missing_and_removes_extra_and_misscheduled() {
        let d = ds(Some(("role", "edge")), vec![]);
        let nodes = vec![
            node("a", &[("role", "edge")], &[]),
            node("b", &[("role", "edge")], &[]),
            node("c", &[], &[]),
        ];
        let pods = [
            pod("a-1", "a", "h", true, 1),
            pod("a-2", "a", "h", true, 2),
            pod("c-1", "c", "h", true, 1),
            pod("gone-1", "gone", "h", true, 1),
        ];
        let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
        for p in &pods {
            by_node
                .entry(target_node(p.spec.as_ref().unwrap()).unwrap())
                .or_default()
                .push(p);
        }
        let view = View {
            ds: &d,
            nodes: &nodes,
            by_node,
            hash: "h",
            now: Timestamp::now(),
        };
        let plan = view.manage();
        assert_eq!(plan.create_on, ["b"]);
        let mut del = plan.delete.clone();
        del.sort();
        assert_eq!(del, ["a-2", "c-1", "gone-1"]);
        let st = view.status(&DaemonSetStatus::default());
        assert_eq!(
            (
                st.desired_number_scheduled,
                st.current_number_scheduled,
                st.number_misscheduled,
                st.number_ready
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(st.updated_number_scheduled, Some(1));
        assert_eq!(st.number_unavailable, Some(1));
    }

    #[test]
    fn rolling_update_respects_max_unavailable_and_surge() {
        let mut d = ds(None, vec![]);
        let nodes = vec![
            node("a", &[], &[]),
            node("b", &[], &[]),
            node("c", &[], &[]),
        ];
        let pods = [
            pod("a-old", "a", "old", true, 1),
            pod("b-old", "b", "old", true, 1),
            pod("c-old", "c", "old", false, 1),
        ];
        fn by_node(pods: &[Pod]) -> BTreeMap<String, Vec<&Pod>> {
            let mut m: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
            for p in pods {
                m.entry(target_node(p.spec.as_ref().unwrap()).unwrap())
                    .or_default()
                    .push(p);
            }
            m
        }
        let view = View {
            ds: &d,
            nodes: &nodes,
            by_node: by_node(&pods),
            hash: "new",
            now: Timestamp::now(),
        };
        // maxUnavailable 1: the unavailable old pod goes, plus one available one.
        let plan = view.rolling_update();
        assert_eq!(plan.delete, ["c-old", "a-old"]);
        assert!(plan.create_on.is_empty());

        d.spec.as_mut().unwrap().update_strategy = Some(DaemonSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDaemonSet {
                max_surge: Some(IntOrString::Int(1)),
                max_unavailable: Some(IntOrString::Int(0)),
            }),
        });
        let pods = [
            pod("a-old", "a", "old", true, 1),
            pod("a-new", "a", "new", true, 2),
            pod("b-old", "b", "old", true, 1),
            pod("c-old", "c", "old", true, 1),
        ];
        let view = View {
            ds: &d,
            nodes: &nodes,
            by_node: by_node(&pods),
            hash: "new",
            now: Timestamp::now(),
        };
        let plan = view.rolling_update();
        // a's new pod is available: its old one goes; one more node surges.
        assert_eq!(plan.delete, ["a-old"]);
        assert_eq!(plan.create_on, ["b"]);
        // OnDelete: nothing rolls.
        d.spec.as_mut().unwrap().update_strategy = Some(DaemonSetUpdateStrategy {
            type_: Some("OnDelete".into()),
            rolling_update: None,
        });
        let view = View {
            ds: &d,
            nodes: &nodes,
            by_node: by_node(&pods),
            hash: "new",
            now: Timestamp::now(),
        };
        assert_eq!(view.rolling_update(), Plan::default());
    }
}
