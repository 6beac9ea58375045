//! The garbage collector: a graph of `metadata.ownerReferences` over every resource the
//! API serves (found through discovery, refreshed so new CRDs are covered), kept from
//! watches. It implements the three propagation policies:
//!
//! - Background: an object all of whose owners are gone (confirmed with a live read, since
//!   watches of different resources are not ordered) is deleted; references to absent
//!   owners are removed when other owners remain.
//! - Orphan: an owner being deleted with the `orphan` finalizer first has its references
//!   removed from its dependents, then the finalizer.
//! - Foreground: an owner being deleted with the `foregroundDeletion` finalizer has its
//!   dependents deleted; the finalizer goes once no dependent with `blockOwnerDeletion`
//!   remains.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::discovery::{verbs, Discovery, Scope};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use serde_json::json;

use crate::informer::for_each_event;
use crate::queue::{run_workers, Next, WorkQueue};

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

/// How often discovery is re-run to find new resources, besides when CRDs change.
const REDISCOVERY: Duration = Duration::from_secs(30);

type Uid = String;

#[derive(Clone, Debug)]
struct Node {
    ar: ApiResource,
    namespace: Option<String>,
    name: String,
    uid: Uid,
    resource_version: Option<String>,
    owners: Vec<OwnerReference>,
    deleting: bool,
    finalizers: Vec<String>,
}

impl Node {
    fn from_object(ar: &ApiResource, o: &DynamicObject) -> Option<Node> {
        let m = &o.metadata;
        Some(Node {
            ar: ar.clone(),
            namespace: m.namespace.clone(),
            name: m.name.clone()?,
            uid: m.uid.clone()?,
            resource_version: m.resource_version.clone(),
            owners: m.owner_references.clone().unwrap_or_default(),
            deleting: m.deletion_timestamp.is_some(),
            finalizers: m.finalizers.clone().unwrap_or_default(),
        })
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }

    fn api(&self, client: &Client) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.ar),
            None => Api::all_with(client.clone(), &self.ar),
        }
    }
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<Uid, Node>,
    /// owner uid → dependent uids (the owner need not be known).
    dependents: HashMap<Uid, HashSet<Uid>>,
}

impl Graph {
    /// Records `n`; returns the uids that need attention.
    fn upsert(&mut self, n: Node) -> Vec<Uid> {
        let mut todo = Vec::new();
        let old = self.nodes.insert(n.uid.clone(), n.clone());
        let owners_changed = old.as_ref().is_none_or(|o| o.owners != n.owners);
        if let Some(old) = &old {
            if owners_changed {
                for r in &old.owners {
                    self.unlink(&r.uid, &n.uid);
                    // A foreground owner may have been waiting for this reference to go.
                    todo.push(r.uid.clone());
                }
            }
        }
        for r in &n.owners {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(n.uid.clone());
        }
        let deleting_changed = old.as_ref().is_none_or(|o| o.deleting != n.deleting);
        if (!n.owners.is_empty() && (owners_changed || deleting_changed))
            || (n.deleting && (n.has_finalizer(ORPHAN) || n.has_finalizer(FOREGROUND)))
        {
            todo.push(n.uid.clone());
        }
        todo.retain(|u| self.nodes.contains_key(u));
        todo
    }

    /// Forgets `uid`; returns the uids that need attention.
    fn remove(&mut self, uid: &str) -> Vec<Uid> {
        let Some(n) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        let mut todo: Vec<Uid> = Vec::new();
        for r in &n.owners {
            self.unlink(&r.uid, uid);
            if self.nodes.contains_key(&r.uid) {
                todo.push(r.uid.clone());
            }
        }
        if let Some(deps) = self.dependents.get(uid) {
            todo.extend(deps.iter().cloned());
        }
        todo
    }

    fn unlink(&mut self, owner: &str, dependent: &str) {
        if let Some(set) = self.dependents.get_mut(owner) {
            set.remove(dependent);
            if set.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }

    fn dependents_of(&self, uid: &str) -> Vec<Node> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d).cloned())
            .collect()
    }

    fn has_dependents(&self, uid: &str) -> bool {
        self.dependents
            .get(uid)
            .is_some_and(|d| d.iter().any(|d| self.nodes.contains_key(d)))
    }
}

struct Gc {
    client: Client,
    graph: Mutex<Graph>,
    discovery: RwLock<Option<Arc<Discovery>>>,
    /// Asks for discovery to run again now (a CRD changed, or an owner kind is unknown).
    rediscover: tokio::sync::Notify,
    queue: Arc<WorkQueue<Uid>>,
}

pub async fn run(client: Client) -> anyhow::Result<()> {
    let gc = Arc::new(Gc {
        client: client.clone(),
        graph: Mutex::new(Graph::default()),
        discovery: RwLock::new(None),
        rediscover: tokio::sync::Notify::new(),
        queue: WorkQueue::new(),
    });
    let g = gc.clone();
    let work = run_workers("garbagecollector", gc.queue.clone(), 2, move |uid: Uid| {
        let g = g.clone();
        async move { g.process(&uid).await }
    });
    tokio::join!(gc.clone().discover_and_watch(), work);
    Ok(())
}

/// Resources the garbage collector does not watch (as upstream: events).
fn ignored(ar: &ApiResource) -> bool {
    ar.plural == "events" && (ar.group.is_empty() || ar.group == "events.k8s.io")
}

impl Gc {
    async fn discover_and_watch(self: Arc<Self>) {
        let mut watchers = tokio::task::JoinSet::new();
        let mut watched: HashSet<String> = HashSet::new();
        loop {
            match Discovery::new(self.client.clone()).run().await {
                Ok(d) => {
                    for group in d.groups() {
                        for (ar, caps) in group.recommended_resources() {
                            let key = format!("{}/{}", ar.api_version, ar.plural);
                            if ignored(&ar)
                                || watched.contains(&key)
                                || !caps.supports_operation(verbs::LIST)
                                || !caps.supports_operation(verbs::WATCH)
                                || !caps.supports_operation(verbs::DELETE)
                            {
                                continue;
                            }
                            watched.insert(key);
                            watchers.spawn(self.clone().watch(ar));
                        }
                    }
                    *self.discovery.write().unwrap() = Some(Arc::new(d));
                }
                Err(e) => tracing::warn!("garbage collector: discovery failed: {e}"),
            }
            let _ = tokio::time::timeout(REDISCOVERY, self.rediscover.notified()).await;
            // Coalesce bursts (a CRD is created, then becomes established).
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn watch(self: Arc<Self>, ar: ApiResource) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        let stream =
            skiff_client::informer::watch(api, watcher::Config::default()).default_backoff();
        let what = format!("{}/{}", ar.api_version, ar.plural);
        let mut seen: Option<HashSet<Uid>> = None;
        let crds = ar.group == "apiextensions.k8s.io" && ar.plural == "customresourcedefinitions";
        let this = self.clone();
        for_each_event(&what, stream, move |ev| {
            let todo = {
                let mut g = this.graph.lock().unwrap();
                match ev {
                    Event::Init => {
                        seen = Some(HashSet::new());
                        Vec::new()
                    }
                    Event::InitApply(o) | Event::Apply(o) => match Node::from_object(&ar, &o) {
                        Some(n) => {
                            if let Some(s) = seen.as_mut() {
                                s.insert(n.uid.clone());
                            }
                            g.upsert(n)
                        }
                        None => Vec::new(),
                    },
                    Event::Delete(o) => match o.metadata.uid.as_deref() {
                        Some(uid) => g.remove(uid),
                        None => Vec::new(),
                    },
                    Event::InitDone => {
                        // Objects deleted while the watch was down.
                        let seen = seen.take().unwrap_or_default();
                        let gone: Vec<Uid> = g
                            .nodes
                            .values()
                            .filter(|n| n.ar == ar && !seen.contains(&n.uid))
                            .map(|n| n.uid.clone())
                            .collect();
                        gone.iter().flat_map(|u| g.remove(u)).collect()
                    }
                }
            };
            for uid in todo {
                this.queue.add(uid);
            }
            if crds {
                this.rediscover.notify_one();
            }
        })
        .await
    }

    async fn process(&self, uid: &str) -> anyhow::Result<Next> {
        let Some(node) = self.graph.lock().unwrap().nodes.get(uid).cloned() else {
            return Ok(Next::Done);
        };
        if node.deleting {
            if node.has_finalizer(ORPHAN) {
                return self.orphan_dependents(&node).await;
            }
            if node.has_finalizer(FOREGROUND) {
                return self.delete_dependents(&node).await;
            }
            return Ok(Next::Done);
        }
        if node.owners.is_empty() {
            return Ok(Next::Done);
        }
        let (mut solid, mut waiting, mut absent) = (Vec::new(), Vec::new(), Vec::new());
        for r in &node.owners {
            match self.owner_state(&node, r).await? {
                OwnerState::Solid => solid.push(r),
                OwnerState::Waiting => waiting.push(r),
                OwnerState::Absent => absent.push(r),
            }
        }
        if absent.is_empty() && waiting.is_empty() {
            return Ok(Next::Done);
        }
        if !solid.is_empty() {
            if !absent.is_empty() {
                let gone: HashSet<&str> = absent.iter().map(|r| r.uid.as_str()).collect();
                let keep: Vec<OwnerReference> = node
                    .owners
                    .iter()
                    .filter(|r| !gone.contains(r.uid.as_str()))
                    .cloned()
                    .collect();
                self.set_owner_refs(&node, keep).await?;
            }
            return Ok(Next::Done);
        }
        // No owner remains (or all wait for their dependents): delete this object.
        if !waiting.is_empty() && self.graph.lock().unwrap().has_dependents(uid) {
            self.delete_in_foreground(&node).await?;
            return Ok(Next::Done);
        }
        let policy = if node.has_finalizer(ORPHAN) {
            PropagationPolicy::Orphan
        } else if node.has_finalizer(FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::debug!(
            "garbage collector: deleting {} {}/{} ({policy:?})",
            node.ar.kind,
            node.namespace.as_deref().unwrap_or(""),
            node.name
        );
        self.delete(&node, policy).await?;
        Ok(Next::Done)
    }

    /// Whether the owner `r` of `dep` exists: the graph answers for owners it knows; others
    /// are read from the API, since the owner's watch may lag behind the dependent's.
    async fn owner_state(&self, dep: &Node, r: &OwnerReference) -> anyhow::Result<OwnerState> {
        if let Some(o) = self.graph.lock().unwrap().nodes.get(&r.uid) {
            return Ok(if o.deleting_dependents() {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            });
        }
        let (group, version) = match r.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", r.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &r.kind);
        let resolved = self
            .discovery
            .read()
            .unwrap()
            .as_ref()
            .and_then(|d| d.resolve_gvk(&gvk));
        let Some((ar, caps)) = resolved else {
            self.rediscover.notify_one();
            anyhow::bail!(
                "cannot resolve the owner kind {}/{} of {} {}",
                r.api_version,
                r.kind,
                dep.ar.kind,
                dep.name
            );
        };
        let api: Api<DynamicObject> = match (&caps.scope, &dep.namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            // A namespaced owner of a cluster-scoped object cannot exist.
            (Scope::Namespaced, None) => return Ok(OwnerState::Absent),
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), &ar),
        };
        Ok(match api.get_opt(&r.name).await? {
            Some(o) if o.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
                let deleting = o.metadata.deletion_timestamp.is_some()
                    && o.metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND);
                if deleting {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                }
            }
            _ => OwnerState::Absent,
        })
    }

    async fn orphan_dependents(&self, owner: &Node) -> anyhow::Result<Next> {
        let deps = self.graph.lock().unwrap().dependents_of(&owner.uid);
        for d in deps {
            let keep: Vec<OwnerReference> = d
                .owners
                .iter()
                .filter(|r| r.uid != owner.uid)
                .cloned()
                .collect();
            self.set_owner_refs(&d, keep).await?;
        }
        self.remove_finalizer(owner, ORPHAN).await?;
        Ok(Next::Done)
    }

    async fn delete_dependents(&self, owner: &Node) -> anyhow::Result<Next> {
        let (deps, with_deps): (Vec<Node>, HashSet<Uid>) = {
            let g = self.graph.lock().unwrap();
            let deps = g.dependents_of(&owner.uid);
            let with = deps
                .iter()
                .filter(|d| g.has_dependents(&d.uid))
                .map(|d| d.uid.clone())
                .collect();
            (deps, with)
        };
        let mut blocking = 0;
        for d in &deps {
            if d.uid == owner.uid {
                continue; // a reference to itself cannot block an object's deletion
            }
            let blocks = d
                .owners
                .iter()
                .any(|r| r.uid == owner.uid && r.block_owner_deletion == Some(true));
            if blocks {
                blocking += 1;
            }
            if !d.deleting {
                if with_deps.contains(&d.uid) {
                    self.delete_in_foreground(d).await?;
                } else {
                    self.delete(d, PropagationPolicy::Background).await?;
                }
            }
        }
        if blocking > 0 {
            // Deletions of the dependents bring the owner back; look again now and then
            // in case a dependent is held by a finalizer of its own.
            return Ok(Next::After(Duration::from_secs(10)));
        }
        self.remove_finalizer(owner, FOREGROUND).await?;
        Ok(Next::Done)
    }

    /// Deletes `n`, which has dependents of its own, with Foreground propagation. As
    /// upstream, if one of its dependents is itself waiting for its dependents (a cycle of
    /// owner references), `n`'s references are made non-blocking first so that the cycle
    /// cannot hold every member forever.
    async fn delete_in_foreground(&self, n: &Node) -> anyhow::Result<()> {
        let cycle = self
            .graph
            .lock()
            .unwrap()
            .dependents_of(&n.uid)
            .iter()
            .any(|d| d.deleting_dependents());
        let blocks = n
            .owners
            .iter()
            .any(|r| r.block_owner_deletion == Some(true));
        if cycle && blocks {
            let refs = n
                .owners
                .iter()
                .cloned()
                .map(|mut r| {
                    r.block_owner_deletion = Some(false);
                    r
                })
                .collect();
            self.set_owner_refs(n, refs).await?;
        }
        self.delete(n, PropagationPolicy::Foreground).await
    }

    async fn delete(&self, n: &Node, policy: PropagationPolicy) -> anyhow::Result<()> {
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(n.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match n.api(&self.client).delete(&n.name, &dp).await {
            Ok(_) => Ok(()),
            // Gone, or replaced by a new object of the same name: nothing to delete.
            Err(kube::Error::Api(s)) if s.is_not_found() || s.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces `n`'s ownerReferences (a JSON merge patch pinned to the resourceVersion the
    /// graph saw, as upstream does for types without strategic merge).
    async fn set_owner_refs(&self, n: &Node, refs: Vec<OwnerReference>) -> anyhow::Result<()> {
        let refs = if refs.is_empty() {
            json!(null)
        } else {
            json!(refs)
        };
        let patch = json!({"metadata": {
            "ownerReferences": refs,
            "resourceVersion": n.resource_version,
            "uid": n.uid,
        }});
        self.patch(n, patch).await
    }

    async fn remove_finalizer(&self, n: &Node, f: &str) -> anyhow::Result<()> {
        let rest: Vec<&String> = n.finalizers.iter().filter(|x| *x != f).collect();
        let patch = json!({"metadata": {
            "finalizers": if rest.is_empty() { json!(null) } else { json!(rest) },
            "resourceVersion": n.resource_version,
            "uid": n.uid,
        }});
        self.patch(n, patch).await
    }

    async fn patch(&self, n: &Node, patch: serde_json::Value) -> anyhow::Result<()> {
        match n
            .api(&self.client)
            .patch(&n.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

enum OwnerState {
    /// Exists and is not waiting for its dependents.
    Solid,
    /// Being deleted in the foreground.
    Waiting,
    Absent,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(uid: &str, owners: &[&str]) -> Node {
        Node {
            ar: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
            namespace: Some("ns".into()),
            name: uid.into(),
            uid: uid.into(),
            resource_version: Some("1".into()),
            owners: owners
                .iter()
                .map(|o| OwnerReference {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: o.to_string(),
                    uid: o.to_string(),
                    ..Default::default()
                })
                .collect(),
            deleting: false,
            finalizers: vec![],
        }
    }

    #[test]
    fn graph_tracks_dependents_and_what_to_look_at() {
        let mut g = Graph::default();
        assert!(g.upsert(node("owner", &[])).is_empty());
        // A new dependent is checked.
        assert_eq!(g.upsert(node("dep", &["owner"])), vec!["dep".to_string()]);
        // An unchanged update is not.
        assert!(g.upsert(node("dep", &["owner"])).is_empty());
        assert_eq!(g.dependents_of("owner").len(), 1);
        assert!(g.has_dependents("owner"));
        // Removing the owner points at its dependents.
        assert_eq!(g.remove("owner"), vec!["dep".to_string()]);
        // Removing the dependent points at owners still known (none here).
        assert!(g.remove("dep").is_empty());
        assert!(g.dependents.is_empty());
    }

    #[test]
    fn owners_being_deleted_are_looked_at() {
        let mut g = Graph::default();
        g.upsert(node("dep", &["owner"]));
        let mut o = node("owner", &[]);
        o.deleting = true;
        o.finalizers = vec![FOREGROUND.into()];
        assert_eq!(g.upsert(o), vec!["owner".to_string()]);
        // The dependent going away brings the waiting owner back.
        assert_eq!(g.remove("dep"), vec!["owner".to_string()]);
    }
}
