//! The scheduler's watches: nodes and pods feed the cache and the queue (one watch each,
//! never per-pod lists), PriorityClasses resolve pod priorities the API server has not
//! filled, PodDisruptionBudgets inform preemption. Cluster events move unschedulable pods
//! back to the active queue.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::runtime::watcher::Event;
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::sync::watch as signal;

use crate::cache::NodeChange;
use crate::framework::PodInfo;
use crate::preemption::Pdb;
use crate::selectors::{Labels, Selector};
use crate::{plugins, Shared};

/// PriorityClass values by name, and the global default.
#[derive(Default, Debug)]
pub struct Priorities {
    classes: HashMap<String, (i32, bool)>,
}

impl Priorities {
    /// upstream's Priority admission: spec.priority if set, else the class's value, else
    /// the globalDefault class's value, else 0.
    pub fn resolve(&self, pod: &Pod) -> i32 {
        let spec = pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.priority) {
            return p;
        }
        if let Some(name) = spec
            .and_then(|s| s.priority_class_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            return self.classes.get(name).map(|c| c.0).unwrap_or(0);
        }
        self.classes
            .values()
            .filter(|c| c.1)
            .map(|c| c.0)
            .max()
            .unwrap_or(0)
    }
}

pub async fn run(client: Client, shared: Arc<Shared>) {
    let (synced_tx, synced_rx) = signal::channel(false);
    tokio::join!(
        priority_classes(client.clone(), shared.clone(), synced_tx),
        nodes(client.clone(), shared.clone()),
        pods(client.clone(), shared.clone(), synced_rx),
        namespaces(client.clone(), shared.clone()),
        pdbs(client, shared),
    );
}

async fn priority_classes(client: Client, shared: Arc<Shared>, synced: signal::Sender<bool>) {
    let stream =
        skiff_client::informer::watch(Api::<PriorityClass>::all(client), Default::default())
            .default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut fresh: Option<HashMap<String, (i32, bool)>> = None;
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::debug!("watching priorityclasses: {e}");
                continue;
            }
        };
        let entry = |pc: &PriorityClass| {
            (
                pc.metadata.name.clone().unwrap_or_default(),
                (pc.value, pc.global_default.unwrap_or(false)),
            )
        };
        match ev {
            Event::Init => fresh = Some(HashMap::new()),
            Event::InitApply(pc) => {
                if let Some(f) = fresh.as_mut() {
                    let (k, v) = entry(&pc);
                    f.insert(k, v);
                }
            }
            Event::InitDone => {
                if let Some(f) = fresh.take() {
                    shared.priorities.lock().unwrap().classes = f;
                }
                let _ = synced.send(true);
            }
            Event::Apply(pc) => {
                let (k, v) = entry(&pc);
                shared.priorities.lock().unwrap().classes.insert(k, v);
            }
            Event::Delete(pc) => {
                let (k, _) = entry(&pc);
                shared.priorities.lock().unwrap().classes.remove(&k);
            }
        }
    }
}

/// Namespace labels for affinity namespaceSelectors. A change can make pods schedulable
/// (or not), so it wakes the unschedulable ones as a pod change would.
async fn namespaces(client: Client, shared: Arc<Shared>) {
    let stream = skiff_client::informer::watch(Api::<Namespace>::all(client), Default::default())
        .default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut fresh: Option<HashMap<String, Labels>> = None;
    let labels = |ns: &Namespace| {
        (
            ns.metadata.name.clone().unwrap_or_default(),
            ns.metadata.labels.clone().unwrap_or_default(),
        )
    };
    while let Some(ev) = stream.next().await {
        match ev {
            Err(e) => tracing::debug!("watching namespaces: {e}"),
            Ok(Event::Init) => fresh = Some(HashMap::new()),
            Ok(Event::InitApply(ns)) => {
                if let Some(f) = fresh.as_mut() {
                    let (k, v) = labels(&ns);
                    f.insert(k, v);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(f) = fresh.take() {
                    shared.namespaces.replace_all(f);
                }
                shared.queue.move_unschedulable(plugins::ON_POD_ADD);
            }
            Ok(Event::Apply(ns)) => {
                let (k, v) = labels(&ns);
                shared.namespaces.set(&k, v);
                shared.queue.move_unschedulable(plugins::ON_POD_ADD);
            }
            Ok(Event::Delete(ns)) => {
                shared
                    .namespaces
                    .remove(ns.metadata.name.as_deref().unwrap_or_default());
            }
        }
    }
}

async fn nodes(client: Client, shared: Arc<Shared>) {
    let stream = skiff_client::informer::watch(Api::<Node>::all(client), Default::default())
        .default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut seen: Option<HashSet<String>> = None;
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::debug!("watching nodes: {e}");
                continue;
            }
        };
        match ev {
            Event::Init => seen = Some(HashSet::new()),
            Event::InitApply(n) | Event::Apply(n) => {
                if let Some(s) = seen.as_mut() {
                    s.insert(n.metadata.name.clone().unwrap_or_default());
                }
                let change = shared.cache.lock().unwrap().set_node(Arc::new(n));
                if change != NodeChange::Irrelevant {
                    shared.queue.move_unschedulable(plugins::ON_NODE_CHANGE);
                }
            }
            Event::InitDone => {
                if let Some(s) = seen.take() {
                    let mut cache = shared.cache.lock().unwrap();
                    for name in cache.node_names() {
                        if !s.contains(&name) {
                            cache.remove_node(&name);
                        }
                    }
                }
            }
            Event::Delete(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                shared.cache.lock().unwrap().remove_node(&name);
            }
        }
    }
}

fn key_of(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn assigned_node(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn on_pod(shared: &Shared, pod: Pod) {
    let key = key_of(&pod);
    if let Some(node) = assigned_node(&pod).map(str::to_string) {
        shared.queue.delete(&key);
        if finished(&pod) {
            if shared.cache.lock().unwrap().remove_pod(&key) {
                shared.queue.move_unschedulable(plugins::ON_POD_DELETE);
            }
            return;
        }
        let prio = shared.priorities.lock().unwrap().resolve(&pod);
        let info = Arc::new(PodInfo::with_namespaces(
            Arc::new(pod),
            prio,
            &shared.namespaces,
        ));
        let labels_changed = {
            let mut cache = shared.cache.lock().unwrap();
            let changed = match cache.pod(&key) {
                Some((n, old)) => n != node || old.pod.metadata.labels != info.pod.metadata.labels,
                None => true,
            };
            let was_assumed = cache.is_assumed(&key);
            cache.add_or_update_pod(info, &node);
            changed && !was_assumed
        };
        if labels_changed {
            shared.queue.move_unschedulable(plugins::ON_POD_ADD);
        }
        return;
    }
    let ours = pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or(crate::DEFAULT_SCHEDULER_NAME)
        == shared.opts.scheduler_name;
    let gated = pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty());
    if !ours || gated || pod.metadata.deletion_timestamp.is_some() || finished(&pod) {
        shared.queue.delete(&key);
        return;
    }
    if shared.cache.lock().unwrap().has_pod(&key) {
        // Assumed: the binding is in flight and the watch has not caught up.
        return;
    }
    let prio = shared.priorities.lock().unwrap().resolve(&pod);
    shared
        .queue
        .add_or_update(Arc::new(PodInfo::with_namespaces(
            Arc::new(pod),
            prio,
            &shared.namespaces,
        )));
}

fn on_pod_deleted(shared: &Shared, key: &str) {
    shared.queue.delete(key);
    let removed = {
        let mut cache = shared.cache.lock().unwrap();
        cache.remove_nominated(key);
        cache.remove_pod(key)
    };
    if removed {
        shared.queue.move_unschedulable(plugins::ON_POD_DELETE);
    }
}

async fn pods(client: Client, shared: Arc<Shared>, mut synced: signal::Receiver<bool>) {
    // Priorities must be known before pods are queued.
    let _ = synced.wait_for(|s| *s).await;
    let stream = skiff_client::informer::watch(Api::<Pod>::all(client), Default::default())
        .default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut seen: Option<HashSet<String>> = None;
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::debug!("watching pods: {e}");
                continue;
            }
        };
        match ev {
            Event::Init => seen = Some(HashSet::new()),
            Event::InitApply(p) | Event::Apply(p) => {
                if let Some(s) = seen.as_mut() {
                    s.insert(key_of(&p));
                }
                on_pod(&shared, p);
            }
            Event::InitDone => {
                if let Some(s) = seen.take() {
                    let stale: Vec<String> = {
                        let cache = shared.cache.lock().unwrap();
                        cache
                            .pod_keys()
                            .into_iter()
                            .filter(|k| !s.contains(k) && !cache.is_assumed(k))
                            .collect()
                    };
                    for k in stale {
                        on_pod_deleted(&shared, &k);
                    }
                    for p in shared.queue.pending() {
                        if !s.contains(&p.key) {
                            shared.queue.delete(&p.key);
                        }
                    }
                }
            }
            Event::Delete(p) => on_pod_deleted(&shared, &key_of(&p)),
        }
    }
}

async fn pdbs(client: Client, shared: Arc<Shared>) {
    let api = Api::<PodDisruptionBudget>::all(client);
    let stream = kube::runtime::reflector::reflector(
        kube::runtime::reflector::store::Writer::default(),
        skiff_client::informer::watch(api, Default::default()).default_backoff(),
    );
    let mut stream = std::pin::pin!(stream);
    let mut all: HashMap<String, Pdb> = HashMap::new();
    let mut fresh: Option<HashMap<String, Pdb>> = None;
    while let Some(ev) = stream.next().await {
        let Ok(ev) = ev else { continue };
        let entry = |p: &PodDisruptionBudget| {
            (
                format!(
                    "{}/{}",
                    p.metadata.namespace.as_deref().unwrap_or(""),
                    p.metadata.name.as_deref().unwrap_or("")
                ),
                Pdb {
                    namespace: p.metadata.namespace.clone().unwrap_or_default(),
                    selector: Selector::from_label_selector(
                        p.spec.as_ref().and_then(|s| s.selector.as_ref()),
                    ),
                    disruptions_allowed: p
                        .status
                        .as_ref()
                        .map(|s| s.disruptions_allowed)
                        .unwrap_or(0),
                },
            )
        };
        match ev {
            Event::Init => fresh = Some(HashMap::new()),
            Event::InitApply(p) => {
                if let Some(f) = fresh.as_mut() {
                    let (k, v) = entry(&p);
                    f.insert(k, v);
                }
            }
            Event::InitDone => {
                if let Some(f) = fresh.take() {
                    all = f;
                }
            }
            Event::Apply(p) => {
                let (k, v) = entry(&p);
                all.insert(k, v);
            }
            Event::Delete(p) => {
                all.remove(&entry(&p).0);
            }
        }
        *shared.pdbs.lock().unwrap() = all.values().cloned().collect();
    }
}
