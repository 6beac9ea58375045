//! `skiff-store`: the key-value store under the Skiff API server, with etcd v3 semantics.
//!
//! # Revision model
//!
//! The store holds one global revision counter. It starts at 1 for an empty store (like
//! etcd, revision 1 is "nothing written yet") and every successful write — create, update
//! or delete of one key — increments it by exactly one. A failed write (conflict, missing
//! key, key already present) does not move it. Each live key carries:
//!
//! * `create_revision`: the revision of the write that created it (a key deleted and created
//!   again gets a new one);
//! * `mod_revision`: the revision of the write that last changed it. The API server exposes
//!   this as `metadata.resourceVersion`, and `update`/`delete` can make it a precondition
//!   (compare-and-swap), which is how optimistic concurrency reaches clients as 409 Conflict.
//!
//! Reads can be made at an older revision (`list` with [`ListRequest::revision`]), and
//! watches can start at an older revision and replay every change since, in revision order,
//! each event carrying the key's previous value. History is kept until [`Store::compact`]:
//! after `compact(r)` reads and watches below `r` fail with [`StoreError::Compacted`],
//! which the API server turns into `410 Gone` so clients re-list.
//!
//! # Keys
//!
//! Keys live under [`KEY_PREFIX`] (`/registry/`). A key is `/`-separated, has no empty,
//! `.` or `..` segments and no control characters; anything else is
//! [`StoreError::InvalidKey`]. Prefixes for `list` and `watch` follow the same rules but may
//! end in `/`.
//!
//! # Backends and their guarantees
//!
//! * [`memory::MemoryStore`]: everything in process memory; for unit tests and simulations.
//!   Nothing survives the process.
//! * `sqlite::SqliteStore` (the embedded default): a revision log in one SQLite file in
//!   WAL mode with `synchronous=FULL`. A write is acknowledged only after its transaction
//!   is durable on disk, so it survives `kill -9` and power loss. One writer thread batches
//!   concurrent writes into one transaction (group commit) so they share an fsync; readers
//!   use their own connections and never block the writer.
//! * `etcd::EtcdStore`: maps each operation one-to-one onto etcd v3 (transactions comparing
//!   `mod_revision`, prefix watches with `prev_kv`, compaction), so its guarantees are
//!   etcd's: linearizable reads and writes, durability by raft quorum.
//!
//! All backends pass the same conformance suite ([`conformance`]).
//!
//! # Watch fan-out
//!
//! Watchers never cost a store read per event: committed events are published once to an
//! in-memory [`hub::WatchHub`] that filters by prefix and pushes into each watcher's bounded
//! queue. A watcher that falls behind by more than its queue is disconnected with
//! [`StoreError::WatcherTooSlow`]; it re-lists and watches again. Memory never grows without
//! bound because of a slow reader.
//!
//! This crate must not know about Kubernetes objects: values are opaque bytes.

pub mod conformance;
pub mod etcd;
pub mod hub;
pub mod memory;
pub mod sqlite;

use std::path::Path;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// A store revision. Revision numbers are positive; 0 in a request means "latest" or "now".
pub type Revision = i64;

/// Every key lives below this prefix.
pub const KEY_PREFIX: &str = "/registry/";

/// One key with its value and revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Put,
    Delete,
}

/// One change, as delivered to watchers.
///
/// For a `Put`, `kv` is the new state. For a `Delete`, `kv.key` is the key,
/// `kv.mod_revision` is the revision of the delete, `kv.create_revision` is 0 and
/// `kv.value` is empty — as etcd reports it. `prev_kv` is the state before the change
/// (`None` for a create).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    pub kv: KeyValue,
    pub prev_kv: Option<KeyValue>,
}

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A range read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Keys starting with this string (validated like a key; may end in `/`).
    pub prefix: String,
    /// Return only keys strictly greater than this one (used for paging).
    pub start_after: Option<String>,
    /// At most this many items; 0 means no limit.
    pub limit: usize,
    /// Read the state as of this revision; 0 means the latest.
    pub revision: Revision,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResponse {
    /// In key order.
    pub kvs: Vec<KeyValue>,
    /// The revision the read was served at (the latest revision if none was asked for).
    pub revision: Revision,
    /// True when more keys match beyond `limit`.
    pub more: bool,
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event, StoreError>> + Send>>;

/// Errors every backend reports the same way; the API server maps them to Status codes.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },
    #[error("key {key:?} not found")]
    NotFound { key: String },
    /// The compare-and-swap precondition did not hold.
    #[error("key {key:?} has mod_revision {actual}, expected {expected}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    #[error("required revision {requested} has been compacted (compacted up to {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("required revision {requested} is a future revision (current is {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    /// A watcher did not keep up and was disconnected; it should re-list and watch again.
    #[error("watcher fell too far behind and was disconnected")]
    WatcherTooSlow,
    /// The data on disk is not a Skiff store, or is damaged.
    #[error("store data is corrupt or foreign: {0}")]
    Corrupt(String),
    /// The backend cannot be reached (etcd down, database locked by another process, ...).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
    #[error("store backend error: {0}")]
    Backend(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The operations the API server needs, with etcd v3 semantics. See the crate docs.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The live value of `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys under a prefix, in key order, optionally paged and at an older revision.
    async fn list(&self, req: &ListRequest) -> Result<ListResponse>;

    /// Creates `key`; fails with `AlreadyExists` if it is live.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue>;

    /// Replaces the value of a live key. With `expected`, fails with `Conflict` unless the
    /// key's `mod_revision` equals it. Missing key: `NotFound`.
    async fn update(&self, key: &str, value: Bytes, expected: Option<Revision>)
        -> Result<KeyValue>;

    /// Deletes a live key and returns its last state. With `expected`, fails with
    /// `Conflict` unless the key's `mod_revision` equals it. Missing key: `NotFound`.
    /// The returned value's `mod_revision` is the key's last one; the delete's own revision
    /// is `current_revision()` right after (and the watch event's revision).
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue>;

    /// Every change to keys under `prefix` with revision >= `from`, in revision order, then
    /// live changes. `from == 0` means "changes after now". A `from` below the compacted
    /// revision fails with `Compacted` (either from this call or as the first stream item).
    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream>;

    /// Forgets history below `revision`: reads and watches before it fail with `Compacted`.
    /// The latest state of every key is kept.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The revision of the latest write (1 for an empty store).
    async fn current_revision(&self) -> Result<Revision>;

    /// The lowest revision still readable (history below it was compacted); 0 if never.
    async fn compacted_revision(&self) -> Result<Revision>;

    /// Writes a consistent snapshot of the latest state (every live key with its revisions
    /// and the current revision) to `path`, and returns the revision it captured.
    async fn snapshot(&self, path: &Path) -> Result<Revision>;
}

/// Checks a full key.
pub fn validate_key(key: &str) -> Result<()> {
    validate(key, false)
}

/// Checks a prefix for `list`/`watch`: like a key, but it may end in `/`.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    validate(prefix, true)
}

fn validate(key: &str, prefix: bool) -> Result<()> {
    let bad = |reason: &str| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason: reason.to_string(),
        })
    };
    if prefix && key == KEY_PREFIX {
        return Ok(());
    }
    let Some(rest) = key.strip_prefix(KEY_PREFIX) else {
        return bad("keys must start with /registry/");
    };
    if key.len() > 4096 {
        return bad("keys must be at most 4096 bytes");
    }
    if key.chars().any(|c| c.is_control()) {
        return bad("keys must not contain control characters");
    }
    let rest = if prefix {
        rest.strip_suffix('/').unwrap_or(rest)
    } else {
        rest
    };
    for segment in rest.split('/') {
        match segment {
            "" => return bad("keys must not contain empty segments"),
            "." | ".." => return bad("keys must not contain '.' or '..' segments"),
            _ => {}
        }
    }
    Ok(())
}

/// The smallest string greater than every string starting with `prefix`
/// (exclusive upper bound of a prefix range).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A snapshot file, the same for every backend: a header line, then one record per key.
///
/// Binary framing so values stay opaque bytes: `SKIFFSNAP1\n`, then the current and
/// compacted revisions, then per key: create/mod revisions, key length + bytes,
/// value length + bytes (all integers little-endian u64/i64).
pub mod snapshot {
    use super::*;
    use std::io::{Read, Write};

    pub const MAGIC: &[u8] = b"SKIFFSNAP1\n";

    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct Snapshot {
        pub revision: Revision,
        pub compacted: Revision,
        pub kvs: Vec<KeyValue>,
    }

    pub fn write(path: &Path, snap: &Snapshot) -> Result<()> {
        let io = |e: std::io::Error| StoreError::Backend(format!("writing snapshot: {e}"));
        let tmp = path.with_extension("partial");
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut w = std::io::BufWriter::new(file);
        w.write_all(MAGIC).map_err(io)?;
        w.write_all(&snap.revision.to_le_bytes()).map_err(io)?;
        w.write_all(&snap.compacted.to_le_bytes()).map_err(io)?;
        w.write_all(&(snap.kvs.len() as u64).to_le_bytes())
            .map_err(io)?;
        for kv in &snap.kvs {
            w.write_all(&kv.create_revision.to_le_bytes()).map_err(io)?;
            w.write_all(&kv.mod_revision.to_le_bytes()).map_err(io)?;
            w.write_all(&(kv.key.len() as u64).to_le_bytes())
                .map_err(io)?;
            w.write_all(kv.key.as_bytes()).map_err(io)?;
            w.write_all(&(kv.value.len() as u64).to_le_bytes())
                .map_err(io)?;
            w.write_all(&kv.value).map_err(io)?;
        }
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(())
    }

    pub fn read(path: &Path) -> Result<Snapshot> {
        let bytes = std::fs::read(path)
            .map_err(|e| StoreError::Backend(format!("reading snapshot {path:?}: {e}")))?;
        let corrupt = |what: &str| StoreError::Corrupt(format!("snapshot {path:?}: {what}"));
        let mut r = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| corrupt("not a skiff snapshot (bad magic)"))?;
        let u64_ = |r: &mut &[u8]| -> Result<u64> {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).map_err(|_| corrupt("truncated"))?;
            Ok(u64::from_le_bytes(b))
        };
        let revision = u64_(&mut r)? as i64;
        let compacted = u64_(&mut r)? as i64;
        let n = u64_(&mut r)?;
        let mut kvs = Vec::with_capacity(n.min(1 << 20) as usize);
        for _ in 0..n {
            let create_revision = u64_(&mut r)? as i64;
            let mod_revision = u64_(&mut r)? as i64;
            let klen = u64_(&mut r)? as usize;
            if klen > r.len() {
                return Err(corrupt("truncated key"));
            }
            let key =
                String::from_utf8(r[..klen].to_vec()).map_err(|_| corrupt("key not UTF-8"))?;
            r = &r[klen..];
            let vlen = u64_(&mut r)? as usize;
            if vlen > r.len() {
                return Err(corrupt("truncated value"));
            }
            let value = Bytes::copy_from_slice(&r[..vlen]);
            r = &r[vlen..];
            if mod_revision > revision || create_revision > mod_revision || create_revision < 1 {
                return Err(corrupt("inconsistent revisions"));
            }
            kvs.push(KeyValue {
                key,
                value,
                create_revision,
                mod_revision,
            });
        }
        if !r.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(Snapshot {
            revision,
            compacted,
            kvs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(validate_key("/registry/pods/default/a").is_ok());
        assert!(validate_key("/registry/").is_err());
        assert!(validate_key("/etc/passwd").is_err());
        assert!(validate_key("/registry//a").is_err());
        assert!(validate_key("/registry/../a").is_err());
        assert!(validate_key("/registry/a\n").is_err());
        assert!(validate_prefix("/registry/").is_ok());
        assert!(validate_prefix("/registry/pods/").is_ok());
        assert!(validate_prefix("/other/").is_err());
    }

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end("/registry/a/"), b"/registry/a0".to_vec());
    }

    #[test]
    fn snapshot_roundtrip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("snap");
        let snap = snapshot::Snapshot {
            revision: 9,
            compacted: 3,
            kvs: vec![KeyValue {
                key: "/registry/a".into(),
                value: Bytes::from_static(b"\0\xffv"),
                create_revision: 2,
                mod_revision: 5,
            }],
        };
        snapshot::write(&p, &snap).unwrap();
        assert_eq!(snapshot::read(&p).unwrap(), snap);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.truncate(bytes.len() - 2);
        std::fs::write(&p, &bytes).unwrap();
        assert!(matches!(snapshot::read(&p), Err(StoreError::Corrupt(_))));
        std::fs::write(&p, b"SQLite format 3\0").unwrap();
        assert!(matches!(snapshot::read(&p), Err(StoreError::Corrupt(_))));
    }
}
