//! Informers shared by the control loops of one process, like client-go's
//! SharedInformerFactory: one watch and one cache per object type, however many loops look
//! at that type.
//!
//! Every pod informer of its own costs a watch connection, a decode of every pod event and
//! a copy of every pod in memory; kube-controller-manager has one per type for that reason,
//! and so does Skiff's. A loop asks [`Shared::cached`] for a type and gets the shared store
//! plus a future that calls its handler for each event. A loop that subscribes after the
//! cache has filled first gets every cached object as an `Apply` (client-go's
//! `AddEventHandler` replays the same way), so it misses nothing.
//!
//! Only cluster-wide watches without selectors are shared; a loop that watches a narrower
//! set (say, pods with one label) keeps its own watch.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// The shared informers of one process (cheap to clone). Their watches stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Shared {
    client: Client,
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in self.tasks.get_mut().unwrap().drain(..) {
            t.abort();
        }
    }
}

/// One type's cache and the handlers fed from its watch.
struct Entry<K: Resource + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    hub: Mutex<Hub<K>>,
}

struct Hub<K> {
    subs: Vec<Sub<K>>,
    /// Between a (re-)list's `Init` and its `InitDone`.
    listing: bool,
    /// The first list completed: the store holds every object.
    synced: bool,
}

struct Sub<K> {
    tx: mpsc::UnboundedSender<Arc<Event<K>>>,
    /// Joined during the first list: sent the whole cache when that list completes.
    replay_when_synced: bool,
}

impl Shared {
    pub fn new(client: Client) -> Self {
        Shared {
            client,
            inner: Arc::default(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The shared cache of every `K` in the cluster (without managedFields) and the future
    /// that calls `on_event` for each of its events until the informers stop.
    pub fn cached<K>(
        &self,
        mut on_event: impl FnMut(&Event<K>) + Send,
    ) -> (Store<K>, impl Future<Output = ()> + Send)
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let entry = self.entry::<K>();
        let mut rx = entry.subscribe();
        let store = entry.store.clone();
        (store, async move {
            while let Some(ev) = rx.recv().await {
                on_event(&ev);
            }
        })
    }

    fn entry<K>(&self) -> Arc<Entry<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let mut entries = self.inner.entries.lock().unwrap();
        if let Some(e) = entries.get(&TypeId::of::<K>()) {
            return e
                .clone()
                .downcast::<Entry<K>>()
                .expect("entries are keyed by type");
        }
        let (store, writer) = reflector::store();
        let entry = Arc::new(Entry {
            store,
            hub: Mutex::new(Hub {
                subs: Vec::new(),
                listing: false,
                synced: false,
            }),
        });
        entries.insert(TypeId::of::<K>(), entry.clone());
        let stream = reflector::reflector(
            writer,
            crate::informer::watch(
                Api::<K>::all(self.client.clone()),
                watcher::Config::default(),
            )
            .default_backoff(),
        );
        let feed = entry.clone();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(ev) => feed.publish(ev),
                    Err(e) => tracing::debug!("watching {}: {e}", K::plural(&())),
                }
            }
        });
        self.inner.tasks.lock().unwrap().push(task.abort_handle());
        entry
    }
}

impl<K> Entry<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    fn subscribe(&self) -> mpsc::UnboundedReceiver<Arc<Event<K>>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut hub = self.hub.lock().unwrap();
        if hub.synced {
            // Everything cached so far, then live events (the hub lock keeps the two in
            // order; an event applied to the store just before may arrive twice, which
            // level-triggered loops do not mind).
            for obj in self.store.state() {
                let _ = tx.send(Arc::new(Event::Apply((*obj).clone())));
            }
        }
        let replay_when_synced = !hub.synced && hub.listing;
        hub.subs.push(Sub {
            tx,
            replay_when_synced,
        });
        rx
    }

    fn publish(&self, ev: Event<K>) {
        let mut hub = self.hub.lock().unwrap();
        match &ev {
            Event::Init => hub.listing = true,
            Event::InitDone => {
                hub.listing = false;
                if !hub.synced {
                    hub.synced = true;
                    // Handlers that joined mid-list missed its first objects: send them all.
                    let all = self.store.state();
                    for sub in hub.subs.iter_mut().filter(|s| s.replay_when_synced) {
                        sub.replay_when_synced = false;
                        for obj in &all {
                            let _ = sub.tx.send(Arc::new(Event::InitApply((**obj).clone())));
                        }
                    }
                }
            }
            _ => {}
        }
        let ev = Arc::new(ev);
        hub.subs.retain(|s| s.tx.send(ev.clone()).is_ok());
    }
}
