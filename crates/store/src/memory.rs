//! The in-memory backend: full etcd semantics, no durability. For unit tests and simulation.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::hub::WatchHub;
use crate::snapshot::{self, Snapshot};
use crate::*;

pub struct MemoryStore {
    inner: Mutex<Inner>,
    hub: WatchHub,
}

#[derive(Default)]
struct Inner {
    revision: Revision,
    compacted: Revision,
    /// Per key, its versions in revision order; `None` marks a delete.
    versions: BTreeMap<String, Vec<(Revision, Option<KeyValue>)>>,
    /// Every event since the compacted revision, by revision.
    log: BTreeMap<Revision, Event>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore {
            inner: Mutex::new(Inner {
                revision: 1,
                ..Default::default()
            }),
            hub: WatchHub::new(1),
        }
    }

    /// A store holding the state captured in a snapshot file.
    pub fn restore(path: &Path) -> Result<Self> {
        let snap = snapshot::read(path)?;
        let mut inner = Inner {
            revision: snap.revision,
            compacted: snap.compacted.max(1),
            ..Default::default()
        };
        for kv in snap.kvs {
            validate_key(&kv.key)?;
            inner
                .versions
                .insert(kv.key.clone(), vec![(kv.mod_revision, Some(kv))]);
        }
        Ok(MemoryStore {
            inner: Mutex::new(inner),
            hub: WatchHub::new(snap.revision),
        })
    }

    /// Applies one write under the lock and publishes its event before releasing it, so
    /// watchers see events in exactly revision order.
    fn write(
        &self,
        key: &str,
        f: impl FnOnce(Option<&KeyValue>, Revision) -> Result<Option<KeyValue>>,
    ) -> Result<Event> {
        validate_key(key)?;
        let mut inner = self.inner.lock().unwrap();
        let next = inner.revision + 1;
        let prev = inner.live(key).cloned();
        let new = f(prev.as_ref(), next)?;
        let event = match &new {
            Some(kv) => Event {
                kind: EventType::Put,
                kv: kv.clone(),
                prev_kv: prev,
            },
            None => Event {
                kind: EventType::Delete,
                kv: KeyValue {
                    key: key.to_string(),
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: next,
                },
                prev_kv: prev,
            },
        };
        inner.revision = next;
        inner
            .versions
            .entry(key.to_string())
            .or_default()
            .push((next, new));
        inner.log.insert(next, event.clone());
        self.hub.publish(std::slice::from_ref(&event));
        Ok(event)
    }
}

impl Inner {
    fn live(&self, key: &str) -> Option<&KeyValue> {
        self.at(key, self.revision)
    }

    fn at(&self, key: &str, revision: Revision) -> Option<&KeyValue> {
        self.versions
            .get(key)?
            .iter()
            .rev()
            .find(|(rev, _)| *rev <= revision)?
            .1
            .as_ref()
    }

    fn check_read_revision(&self, revision: Revision) -> Result<Revision> {
        if revision == 0 {
            return Ok(self.revision);
        }
        if revision < self.compacted {
            return Err(StoreError::Compacted {
                requested: revision,
                compacted: self.compacted,
            });
        }
        if revision > self.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        Ok(revision)
    }
}

fn check_expected(key: &str, current: &KeyValue, expected: Option<Revision>) -> Result<()> {
    match expected {
        Some(exp) if exp != current.mod_revision => Err(StoreError::Conflict {
            key: key.to_string(),
            expected: exp,
            actual: current.mod_revision,
        }),
        _ => Ok(()),
    }
}

fn not_found(key: &str) -> StoreError {
    StoreError::NotFound {
        key: key.to_string(),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        validate_key(key)?;
        Ok(self.inner.lock().unwrap().live(key).cloned())
    }

    async fn list(&self, req: &ListRequest) -> Result<ListResponse> {
        validate_prefix(&req.prefix)?;
        let inner = self.inner.lock().unwrap();
        let revision = inner.check_read_revision(req.revision)?;
        let lower = match &req.start_after {
            Some(after) if after.as_str() >= req.prefix.as_str() => Bound::Excluded(after.clone()),
            _ => Bound::Included(req.prefix.clone()),
        };
        let mut kvs = Vec::new();
        let mut more = false;
        for (key, _) in inner.versions.range((lower, Bound::Unbounded)) {
            if !key.starts_with(&req.prefix) {
                break;
            }
            if let Some(kv) = inner.at(key, revision) {
                if req.limit > 0 && kvs.len() == req.limit {
                    more = true;
                    break;
                }
                kvs.push(kv.clone());
            }
        }
        Ok(ListResponse {
            kvs,
            revision,
            more,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let ev = self.write(key, |prev, rev| match prev {
            Some(_) => Err(StoreError::AlreadyExists {
                key: key.to_string(),
            }),
            None => Ok(Some(KeyValue {
                key: key.to_string(),
                value,
                create_revision: rev,
                mod_revision: rev,
            })),
        })?;
        Ok(ev.kv)
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> Result<KeyValue> {
        let ev = self.write(key, |prev, rev| {
            let prev = prev.ok_or_else(|| not_found(key))?;
            check_expected(key, prev, expected)?;
            Ok(Some(KeyValue {
                key: key.to_string(),
                value,
                create_revision: prev.create_revision,
                mod_revision: rev,
            }))
        })?;
        Ok(ev.kv)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let ev = self.write(key, |prev, _| {
            let prev = prev.ok_or_else(|| not_found(key))?;
            check_expected(key, prev, expected)?;
            Ok(None)
        })?;
        Ok(ev.prev_kv.expect("a delete has a previous value"))
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream> {
        validate_prefix(prefix)?;
        // Holding the lock keeps writers (who publish under it) out while we register, so
        // the backlog and the live stream meet exactly.
        let inner = self.inner.lock().unwrap();
        if from != 0 && from < inner.compacted {
            return Err(StoreError::Compacted {
                requested: from,
                compacted: inner.compacted,
            });
        }
        self.hub.subscribe(prefix, from, &mut |lo, hi| {
            Ok(inner
                .log
                .range(lo..=hi)
                .map(|(_, e)| e)
                .filter(|e| e.kv.key.starts_with(prefix))
                .cloned()
                .collect())
        })
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut inner = self.inner.lock().unwrap();
        if revision > inner.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: inner.revision,
            });
        }
        if revision <= inner.compacted {
            return Err(StoreError::Compacted {
                requested: revision,
                compacted: inner.compacted,
            });
        }
        inner.compacted = revision;
        inner.log = inner.log.split_off(&revision);
        inner.versions.retain(|_, versions| {
            // Keep the newest version at or below the compaction point (the state there)
            // and everything after it; a key whose state there is "deleted" and that has
            // no later versions disappears.
            let keep_from = versions
                .iter()
                .rposition(|(rev, _)| *rev <= revision)
                .unwrap_or(0);
            versions.drain(..keep_from);
            if versions.len() == 1 && versions[0].1.is_none() && versions[0].0 <= revision {
                return false;
            }
            true
        });
        self.hub.compact(revision);
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.lock().unwrap().revision)
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.inner.lock().unwrap().compacted)
    }

    async fn snapshot(&self, path: &Path) -> Result<Revision> {
        let snap = {
            let inner = self.inner.lock().unwrap();
            Snapshot {
                revision: inner.revision,
                compacted: inner.compacted,
                kvs: inner
                    .versions
                    .keys()
                    .filter_map(|k| inner.live(k).cloned())
                    .collect(),
            }
        };
        snapshot::write(path, &snap)?;
        Ok(snap.revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        crate::conformance::run_all(|| async { MemoryStore::new() }).await;
    }

    #[tokio::test]
    async fn snapshot_restore() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap");
        let store = MemoryStore::new();
        crate::conformance::snapshot_roundtrip(&store, &path, |p| async move {
            MemoryStore::restore(&p).unwrap()
        })
        .await;
    }
}
