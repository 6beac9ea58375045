//! Watch streams (kube's watcher: list, then watch, re-list on 410, with backoff) that feed
//! work queues, optionally through a reflector store for reads.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::queue::WorkQueue;

/// A kube watcher (list, then watch, re-list on 410) whose objects arrive without
/// `metadata.managedFields`, as kube-controller-manager's informers strip them: no control
/// loop reads them, and they are often the larger half of an object held in a cache.
pub fn watch<K>(
    api: Api<K>,
    cfg: watcher::Config,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, cfg).modify(|o: &mut K| o.meta_mut().managed_fields = None)
}

/// Drives `stream`, calling `on_event` for every event; watch errors are logged (the
/// watcher retries them with backoff).
pub async fn for_each_event<K, S>(what: &str, stream: S, mut on_event: impl FnMut(Event<K>))
where
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(ev) => on_event(ev),
            Err(e) => tracing::debug!("watching {what}: {e}"),
        }
    }
}

/// A watch-fed store of `api`'s objects (without managedFields). Returns the store and the
/// future that keeps it current, which calls `on_event` for every event.
pub fn cached<K>(
    what: &'static str,
    api: Api<K>,
    cfg: watcher::Config,
    on_event: impl FnMut(Event<K>) + Send,
) -> (Store<K>, impl std::future::Future<Output = ()> + Send)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watch(api, cfg).default_backoff());
    (reader, for_each_event(what, stream, on_event))
}

/// A watch of `api` that keeps a store of its objects and queues `key(obj)` for every
/// applied or deleted object. Returns the store and the future that drives the watch.
pub fn watch_to_queue<K, Q>(
    what: &'static str,
    api: Api<K>,
    cfg: watcher::Config,
    queue: Arc<WorkQueue<Q>>,
    key: impl Fn(&K) -> Option<Q> + Send + 'static,
) -> (Store<K>, impl std::future::Future<Output = ()> + Send)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    Q: Clone + Eq + Hash + Send + Sync + 'static,
{
    cached(what, api, cfg, move |ev| match ev {
        Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => {
            if let Some(k) = key(&o) {
                queue.add(k);
            }
        }
        Event::Init | Event::InitDone => {}
    })
}

/// The skeleton of controllers that keep one object named `object_name` in every active
/// namespace: namespaces and those objects are watched, and `reconcile(namespace)` runs for
/// every namespace that exists and is not terminating.
pub async fn run_per_namespace<K, F, Fut>(
    name: &'static str,
    client: kube::Client,
    object_name: &'static str,
    reconcile: F,
) -> anyhow::Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<crate::queue::Next>> + Send,
{
    use k8s_openapi::api::core::v1::Namespace;
    use kube::runtime::reflector::ObjectRef;
    use kube::ResourceExt;

    let queue = WorkQueue::<String>::new();
    let (namespaces, ns_watch) = watch_to_queue(
        "namespaces",
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
        queue.clone(),
        |ns: &Namespace| Some(ns.name_any()),
    );
    let (_, obj_watch) = watch_to_queue(
        name,
        Api::<K>::all(client),
        watcher::Config::default().fields(&format!("metadata.name={object_name}")),
        queue.clone(),
        move |o: &K| {
            if o.meta().name.as_deref() == Some(object_name) {
                o.namespace()
            } else {
                None
            }
        },
    );
    let work = crate::queue::run_workers(name, queue, 1, move |ns: String| {
        let namespaces = namespaces.clone();
        let reconcile = reconcile.clone();
        async move {
            match namespaces.get(&ObjectRef::new(&ns)) {
                Some(n) if is_active(&n) => reconcile(ns).await,
                _ => Ok(crate::queue::Next::Done),
            }
        }
    });
    tokio::join!(ns_watch, obj_watch, work);
    Ok(())
}

/// A namespace that exists and is not being deleted.
pub fn is_active(ns: &k8s_openapi::api::core::v1::Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

/// Whether an API error means "the namespace is being terminated" (creation refused) or
/// "it is gone": nothing to do for per-namespace controllers.
pub fn namespace_gone(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => {
            s.is_not_found()
                || (s.is_forbidden() && s.message.contains("because it is being terminated"))
        }
        _ => false,
    }
}
