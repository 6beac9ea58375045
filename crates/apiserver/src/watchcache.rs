//! The watch cache: one store watch per built-in resource, shared by all its watchers.
//!
//! Without it every watch request holds its own store watch and parses every stored object
//! again, then serialises it again, for every event — with a dozen pod informers (the
//! controllers, the scheduler, node agents) that is a dozen decodes and encodes per pod
//! write, and it was the API server's largest cost under load. Here each event is decoded
//! once into a [`CachedEvent`]; its JSON line and protobuf frame are encoded at most once
//! per event type and shared by every watcher that sends the same bytes.
//!
//! A cache starts at the first watch of its resource, from that watch's revision, and keeps
//! a short ring of recent events so that a client re-watching slightly in the past is
//! served from memory. A watch from before the ring (or of a custom resource, whose decoding
//! follows its CRD and may change) is served straight from the store, as before. A cache
//! whose store watch ends (store closed, compaction, falling behind) ends its watchers'
//! streams like the store would and is replaced by a fresh one at the next watch.
//!
//! Lists are still read from the store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Map, Value};
use skiff_api::registry::Resource;
use skiff_store::{Event, EventType, KeyValue, Revision, Store, StoreError};
use tokio::sync::mpsc;

use crate::rest::{decode_stored, list_prefix};

/// Recent events kept per resource for watchers that start slightly in the past.
pub const RING: usize = 1024;
/// Events queued per watcher before it counts as too slow and is disconnected.
pub const QUEUE: usize = 4096;

/// One store event, shared by every watcher of its resource: decoded at most once, and
/// encoded at most once per event type and wire format.
///
/// Watchers without selectors that take JSON (every kube-rs and Python informer) get the
/// stored bytes with `resourceVersion` spliced in, so for them an event is never parsed.
pub struct CachedEvent {
    pub revision: Revision,
    pub key: String,
    pub kind: EventType,
    /// Whether the key existed before (an update rather than a create).
    pub had_prev: bool,
    res: &'static Resource,
    /// What clients see, as stored: the new value of a put, or for a delete the last value
    /// (with the delete's revision as its `mod_revision`, which becomes resourceVersion).
    shown: Option<KeyValue>,
    /// The value before a put, if any (only watches with selectors look at it).
    before: Option<KeyValue>,
    object: OnceLock<Option<Value>>,
    prev: OnceLock<Option<Value>>,
    /// `metadata` alone (what label selectors and metadata clients need), parsed without
    /// building the rest of the object.
    meta: OnceLock<Option<Map<String, Value>>>,
    prev_meta: OnceLock<Option<Map<String, Value>>>,
    /// Encoded bytes by (event type, wire format), made by the first watcher that needs them.
    encoded: [OnceLock<Option<Bytes>>; 3 * WIRES],
}

/// The wire formats whose encodings are shared between watchers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Json,
    Protobuf,
    /// JSON `meta.k8s.io/v1` PartialObjectMetadata.
    Metadata,
}
const WIRES: usize = 3;

/// The part of a stored object a metadata decode keeps.
#[derive(serde::Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: Map<String, Value>,
}

/// `metadata` of a stored object, with `resourceVersion` stamped as reads do.
fn decode_metadata(kv: &KeyValue) -> Option<Map<String, Value>> {
    let mut m = serde_json::from_slice::<MetadataOnly>(&kv.value)
        .ok()?
        .metadata;
    m.insert(
        "resourceVersion".into(),
        Value::String(kv.mod_revision.to_string()),
    );
    Some(m)
}

impl CachedEvent {
    pub fn new(res: &'static Resource, ev: Event) -> CachedEvent {
        let revision = ev.revision();
        let had_prev = ev.prev_kv.is_some();
        let key = ev.kv.key.clone();
        let (shown, before) = match ev.kind {
            EventType::Put => (Some(ev.kv), ev.prev_kv),
            EventType::Delete => (
                ev.prev_kv.map(|kv| KeyValue {
                    mod_revision: revision,
                    ..kv
                }),
                None,
            ),
        };
        CachedEvent {
            revision,
            key,
            kind: ev.kind,
            had_prev,
            res,
            shown,
            before,
            object: OnceLock::new(),
            prev: OnceLock::new(),
            meta: OnceLock::new(),
            prev_meta: OnceLock::new(),
            encoded: Default::default(),
        }
    }

    /// The object clients see (decoded on first use). `None` when the stored bytes do not
    /// decode, or a delete came without the last value.
    pub fn object(&self) -> Option<&Value> {
        self.object
            .get_or_init(|| {
                let kv = self.shown.as_ref()?;
                decode_stored(self.res, kv).ok()
            })
            .as_ref()
    }

    /// The previous state of a put (decoded on first use). `None` for creates and deletes.
    pub fn prev(&self) -> Option<&Value> {
        self.prev
            .get_or_init(|| {
                self.before
                    .as_ref()
                    .and_then(|kv| decode_stored(self.res, kv).ok())
            })
            .as_ref()
    }

    /// The shown object's `metadata` (parsed on first use, alone).
    pub fn metadata(&self) -> Option<&Map<String, Value>> {
        match self.object.get() {
            Some(Some(obj)) => obj.get("metadata").and_then(Value::as_object),
            _ => self
                .meta
                .get_or_init(|| decode_metadata(self.shown.as_ref()?))
                .as_ref(),
        }
    }

    /// The previous state's `metadata` of a put (parsed on first use, alone).
    pub fn prev_metadata(&self) -> Option<&Map<String, Value>> {
        match self.prev.get() {
            Some(Some(obj)) => obj.get("metadata").and_then(Value::as_object),
            _ => self
                .prev_meta
                .get_or_init(|| decode_metadata(self.before.as_ref()?))
                .as_ref(),
        }
    }

    /// The encoding of this event as `kind` (`ADDED`, `MODIFIED` or `DELETED`) in `wire`,
    /// made once by `make`; `None` if it cannot be encoded.
    pub fn encoded(
        &self,
        kind: &str,
        wire: Wire,
        make: impl FnOnce() -> Option<Bytes>,
    ) -> Option<Bytes> {
        let k = match kind {
            "ADDED" => 0,
            "MODIFIED" => 1,
            _ => 2,
        };
        self.encoded[k * WIRES + wire as usize]
            .get_or_init(make)
            .clone()
    }

    /// `{"type":kind,"object":...}` and a newline, from the stored bytes when they have the
    /// stored shape (no parse), else from the decoded object.
    pub fn json_line(&self, kind: &str) -> Option<Bytes> {
        let kv = self.shown.as_ref()?;
        let prefix = crate::rest::stored_prefix(self.res);
        let mut line = format!("{{\"type\":\"{kind}\",\"object\":").into_bytes();
        match crate::rest::splice_resource_version(&kv.value, prefix.as_bytes(), kv.mod_revision) {
            Some(obj) => line.extend_from_slice(&obj),
            None => serde_json::to_writer(&mut line, self.object()?).ok()?,
        }
        line.extend_from_slice(b"}\n");
        Some(Bytes::from(line))
    }
}

/// A stream of cached events; ends with `Err` when the watcher fell behind or the
/// cache's store watch failed.
pub type CachedStream = BoxStream<'static, Result<Arc<CachedEvent>, StoreError>>;

/// Group, version and plural.
type ResourceId = (&'static str, &'static str, &'static str);

/// The caches of an API server, one per built-in resource (group, version, plural).
#[derive(Default)]
pub struct WatchCaches {
    /// Held across a cache's start so that a resource never gets two.
    caches: tokio::sync::Mutex<HashMap<ResourceId, Arc<Cache>>>,
}

impl WatchCaches {
    /// A stream of the events of `res` under `namespace` with revision >= `from`, or `None`
    /// when the cache cannot serve it (custom resource, or older than the cache's ring) and
    /// the store must.
    pub async fn watch(
        &self,
        store: &Arc<dyn Store>,
        res: &'static Resource,
        namespace: Option<&str>,
        from: Revision,
    ) -> Option<CachedStream> {
        if crate::crd::version(res).is_some() || from < 1 {
            return None;
        }
        let prefix = list_prefix(res, namespace);
        let id = (res.group, res.version, res.plural);
        let mut caches = self.caches.lock().await;
        if let Some(cache) = caches.get(&id) {
            match cache.subscribe(&prefix, from) {
                Subscribe::Ok(s) => return Some(s),
                Subscribe::TooOld => return None,
                Subscribe::Broken => {
                    caches.remove(&id);
                }
            }
        }
        // Start a cache at this watch's revision.
        let stream = store.watch(&list_prefix(res, None), from).await.ok()?;
        let cache = Arc::new(Cache {
            inner: Mutex::new(Inner {
                ring: VecDeque::new(),
                complete_from: from,
                subs: Vec::new(),
                broken: false,
            }),
        });
        let Subscribe::Ok(mine) = cache.subscribe(&prefix, from) else {
            return None;
        };
        caches.insert(id, cache.clone());
        tokio::spawn(feed(cache, res, stream));
        Some(mine)
    }

    /// Number of resources with a cache (for tests and metrics).
    pub async fn resources(&self) -> usize {
        self.caches.lock().await.len()
    }
}

struct Cache {
    inner: Mutex<Inner>,
}

struct Inner {
    ring: VecDeque<Arc<CachedEvent>>,
    /// Every event with revision >= this is in the ring or not yet published.
    complete_from: Revision,
    subs: Vec<Sub>,
    /// The store watch ended: no new subscribers.
    broken: bool,
}

struct Sub {
    prefix: String,
    from: Revision,
    tx: mpsc::Sender<Arc<CachedEvent>>,
    /// Why the stream ends, when it ends with an error.
    ending: Arc<OnceLock<StoreError>>,
}

enum Subscribe {
    Ok(CachedStream),
    TooOld,
    Broken,
}

impl Cache {
    fn subscribe(&self, prefix: &str, from: Revision) -> Subscribe {
        let mut inner = self.inner.lock().unwrap();
        if inner.broken {
            return Subscribe::Broken;
        }
        if from < inner.complete_from {
            return Subscribe::TooOld;
        }
        let backlog: Vec<Arc<CachedEvent>> = inner
            .ring
            .iter()
            .filter(|e| e.revision >= from && e.key.starts_with(prefix))
            .cloned()
            .collect();
        let (tx, rx) = mpsc::channel(QUEUE);
        let ending = Arc::new(OnceLock::new());
        inner.subs.push(Sub {
            prefix: prefix.to_string(),
            from,
            tx,
            ending: ending.clone(),
        });
        let live = stream::unfold(Some((rx, ending)), |state| async move {
            let (mut rx, ending) = state?;
            match rx.recv().await {
                Some(ev) => Some((Ok(ev), Some((rx, ending)))),
                None => ending.get().map(|e| (Err(e.clone()), None)),
            }
        });
        Subscribe::Ok(
            stream::iter(backlog.into_iter().map(Ok))
                .chain(live)
                .boxed(),
        )
    }

    fn publish(&self, ev: Arc<CachedEvent>) {
        let mut inner = self.inner.lock().unwrap();
        if inner.ring.len() == RING {
            if let Some(old) = inner.ring.pop_front() {
                inner.complete_from = old.revision + 1;
            }
        }
        inner.ring.push_back(ev.clone());
        inner.subs.retain(|sub| {
            if ev.revision < sub.from || !ev.key.starts_with(&sub.prefix) {
                return !sub.tx.is_closed();
            }
            match sub.tx.try_send(ev.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let _ = sub.ending.set(StoreError::WatcherTooSlow);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    fn unwatched(&self) -> bool {
        let mut inner = self.inner.lock().unwrap();
        inner.subs.retain(|s| !s.tx.is_closed());
        inner.subs.is_empty()
    }

    /// The store watch ended: with its error, which watchers get after the events they
    /// have (so they re-list or re-watch), or cleanly (the store is closing).
    fn end(&self, error: Option<StoreError>) {
        let mut inner = self.inner.lock().unwrap();
        inner.broken = true;
        for sub in inner.subs.drain(..) {
            if let Some(e) = &error {
                let _ = sub.ending.set(e.clone());
            }
        }
        inner.ring.clear();
    }
}

/// How often a cache checks whether anyone still watches it; one unwatched for two checks
/// in a row stops (the next watch of its resource starts a fresh one).
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// Decodes the store's events once each and hands them to the cache's watchers.
async fn feed(cache: Arc<Cache>, res: &'static Resource, mut stream: skiff_store::WatchStream) {
    let mut check = tokio::time::interval_at(tokio::time::Instant::now() + IDLE_CHECK, IDLE_CHECK);
    let mut idle = false;
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(ev)) => cache.publish(Arc::new(CachedEvent::new(res, ev))),
                Some(Err(e)) => return cache.end(Some(e)),
                None => return cache.end(None),
            },
            _ = check.tick() => {
                let unwatched = cache.unwatched();
                if idle && unwatched {
                    return cache.end(None);
                }
                idle = unwatched;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use skiff_store::memory::MemoryStore;

    fn pods() -> &'static Resource {
        skiff_api::registry::lookup("", "v1", "pods").unwrap()
    }

    fn pod(ns: &str, name: &str, uid: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"{ns}","uid":"{uid}"}},"spec":{{}}}}"#
        ))
    }

    async fn next(s: &mut CachedStream) -> Arc<CachedEvent> {
        tokio::time::timeout(std::time::Duration::from_secs(5), s.next())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("no error")
    }

    #[tokio::test]
    async fn watchers_share_one_store_watch_and_one_encoding() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let caches = WatchCaches::default();
        let from = store.current_revision().await.unwrap() + 1;
        let mut all = caches.watch(&store, pods(), None, from).await.unwrap();
        let mut ns_a = caches.watch(&store, pods(), Some("a"), from).await.unwrap();
        assert_eq!(caches.resources().await, 1);

        store
            .create("/registry/core/pods/b/x", pod("b", "x", "u1"))
            .await
            .unwrap();
        let kv = store
            .create("/registry/core/pods/a/y", pod("a", "y", "u2"))
            .await
            .unwrap();
        let first = next(&mut all).await;
        assert_eq!(first.key, "/registry/core/pods/b/x");
        let (seen_all, seen_a) = (next(&mut all).await, next(&mut ns_a).await);
        assert!(
            Arc::ptr_eq(&seen_all, &seen_a),
            "one decoded event for both watchers"
        );
        assert_eq!(seen_a.key, "/registry/core/pods/a/y");

        let line = |e: &CachedEvent| {
            e.encoded("ADDED", Wire::Json, || e.json_line("ADDED"))
                .unwrap()
        };
        let (l1, l2) = (line(&seen_all), line(&seen_a));
        assert_eq!(l1.as_ptr(), l2.as_ptr(), "encoded once");
        let v: Value = serde_json::from_slice(&l1).unwrap();
        assert_eq!(v["type"], "ADDED");
        assert_eq!(
            v["object"]["metadata"]["resourceVersion"],
            kv.mod_revision.to_string()
        );
        assert_eq!(v["object"]["metadata"]["name"], "y");
        assert_eq!(
            &v["object"],
            seen_a.object().unwrap(),
            "splice equals decoding"
        );
        // Metadata alone, parsed alone, agrees with the full decode.
        let meta = seen_all.metadata().unwrap();
        assert_eq!(meta["resourceVersion"], kv.mod_revision.to_string());
        assert_eq!(meta["uid"], "u2");
    }

    #[tokio::test]
    async fn late_watchers_get_the_ring_and_older_ones_the_store() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let caches = WatchCaches::default();
        let start = store.current_revision().await.unwrap() + 1;
        let _first = caches.watch(&store, pods(), None, start).await.unwrap();
        let created = store
            .create("/registry/core/pods/a/p", pod("a", "p", "u"))
            .await
            .unwrap();
        let deleted = store.delete("/registry/core/pods/a/p", None).await.unwrap();
        // From the create's revision: both events, from memory.
        let mut late = caches
            .watch(&store, pods(), Some("a"), created.mod_revision)
            .await
            .unwrap();
        assert_eq!(next(&mut late).await.kind, EventType::Put);
        let gone = next(&mut late).await;
        assert_eq!(gone.kind, EventType::Delete);
        // A delete shows the last state at the delete's revision.
        let obj = gone.object().unwrap();
        assert_eq!(obj["metadata"]["name"], "p");
        assert!(
            obj["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > deleted.mod_revision
        );
        // Before the cache began: not served from it.
        assert!(caches
            .watch(&store, pods(), None, start - 1)
            .await
            .is_none());
    }

    #[tokio::test]
    async fn a_watcher_that_does_not_read_is_cut_off_with_too_slow() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let caches = WatchCaches::default();
        let from = store.current_revision().await.unwrap() + 1;
        let mut slow = caches.watch(&store, pods(), None, from).await.unwrap();
        let mut reader = caches.watch(&store, pods(), None, from).await.unwrap();
        let key = "/registry/core/pods/a/p";
        store.create(key, pod("a", "p", "u")).await.unwrap();
        for _ in 0..QUEUE + 10 {
            store.update(key, pod("a", "p", "u"), None).await.unwrap();
            next(&mut reader).await;
        }
        let mut got = 0;
        let end = loop {
            match slow.next().await {
                Some(Ok(_)) => got += 1,
                Some(Err(e)) => break e,
                None => panic!("ended without an error"),
            }
        };
        assert_eq!(end, StoreError::WatcherTooSlow);
        assert_eq!(got, QUEUE);
    }
}
