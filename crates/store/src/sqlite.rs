//! The SQLite backend (the embedded default): a kine-like revision log in one SQLite file.
//!
//! # Schema
//!
//! ```sql
//! -- one row per revision (per successful write)
//! CREATE TABLE log (
//!   rev        INTEGER PRIMARY KEY, -- the revision of the write
//!   key        BLOB NOT NULL,       -- UTF-8 key, stored as a blob so it sorts bytewise
//!   create_rev INTEGER NOT NULL,    -- the key's create_revision (for a delete: the deleted one's)
//!   deleted    INTEGER NOT NULL,    -- 1 for a delete (tombstone)
//!   value      BLOB NOT NULL,       -- empty for a delete
//!   prev_rev   INTEGER              -- the key's previous row (its prev_kv); NULL for a create
//! );
//! CREATE INDEX log_key_rev ON log (key, rev);                      -- reads at older revisions
//! CREATE TABLE current (key BLOB PRIMARY KEY, rev INTEGER NOT NULL) WITHOUT ROWID; -- live keys
//! CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
//!   -- schema_version, base_revision (the revision of an empty or restored log), compacted
//! ```
//!
//! The file carries `PRAGMA application_id` [`APPLICATION_ID`] so a foreign SQLite database
//! is recognised and refused ([`StoreError::Corrupt`]) rather than modified. The current
//! revision is `max(base_revision, max(log.rev))`.
//!
//! # Writes: one writer, group commit
//!
//! A single writer thread owns the only write connection. Writers send their operation over
//! a channel and wait for the answer. The writer takes everything pending (up to
//! [`SqliteOptions::max_batch`]), applies it in one `BEGIN IMMEDIATE` transaction — each
//! operation checks its own precondition against the state left by the ones before it; an
//! operation whose precondition fails writes nothing and takes no revision — and commits.
//! With `journal_mode=WAL` and `synchronous=FULL` the commit returns only after the WAL is
//! fsynced, so concurrent writers share one fsync. Only then are the batch's events
//! published to the [`WatchHub`] (in revision order) and the writers answered. If the
//! transaction fails, it is rolled back and every operation in it fails.
//!
//! # Reads
//!
//! Reads run on a small pool of read-only connections on tokio's blocking pool. WAL gives
//! each read transaction a consistent snapshot without blocking the writer. The latest state
//! comes from `current`; the state at an older revision `R` is, per key, the newest log row
//! with `rev <= R`.
//!
//! # Compaction
//!
//! `compact(r)` deletes the log rows no read or watch at `>= r` can need: every row below
//! `r` that a later row below `r` supersedes, and every tombstone below `r`. The newest row
//! of each key below `r` stays: it is the state at `r` and the previous value of an event
//! at `r`. The store also compacts itself (see [`SqliteOptions::compaction_interval`]): at
//! each tick it compacts to the revision it saw at the previous tick, keeping at least
//! [`SqliteOptions::compaction_keep_revisions`] revisions, like kube-apiserver's compactor.
//!
//! # One process at a time
//!
//! An open store holds an exclusive SQLite lock on a sidecar file `<db>.lock` (SQLite's own
//! POSIX locking, released by the OS if the process dies). A second open — from this process
//! or another — fails with [`StoreError::Unavailable`], as does opening a database another
//! program holds locked.

mod open;
mod read;
#[cfg(test)]
mod tests;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::hub::WatchHub;
use crate::*;

use writer::{Request, WriteOp};

/// `PRAGMA application_id` of a Skiff store ("Skif").
pub const APPLICATION_ID: i32 = 0x536b_6966;
/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

/// Tuning knobs; [`Default`] is what a server wants.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// How often the store compacts itself; `None` disables periodic compaction.
    /// Default: 5 minutes (kube-apiserver's compaction interval).
    pub compaction_interval: Option<Duration>,
    /// Periodic compaction always keeps at least this many recent revisions. Default 1000.
    pub compaction_keep_revisions: i64,
    /// How long an operation waits for a lock held by another connection before failing
    /// with [`StoreError::Unavailable`]. Default 5 s.
    pub busy_timeout: Duration,
    /// Idle read connections kept open. Default 4.
    pub max_idle_readers: usize,
    /// Most operations applied in one transaction. Default 1000.
    pub max_batch: usize,
    /// Run `PRAGMA quick_check` when opening an existing database. Default true.
    pub verify_on_open: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            compaction_interval: Some(Duration::from_secs(300)),
            compaction_keep_revisions: 1000,
            busy_timeout: Duration::from_secs(5),
            max_idle_readers: 4,
            max_batch: 1000,
            verify_on_open: true,
        }
    }
}

/// The SQLite-backed [`Store`]. See the module docs.
pub struct SqliteStore {
    shared: Arc<Shared>,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
}

/// State shared by the store handle, the writer thread and read tasks.
struct Shared {
    path: PathBuf,
    options: SqliteOptions,
    hub: WatchHub,
    readers: Mutex<Vec<Connection>>,
    /// The latest committed revision (updated by the writer after each commit).
    revision: AtomicI64,
    /// The compacted revision (updated by the writer after each commit).
    compacted: AtomicI64,
    /// Transactions committed that wrote something (each one fsync).
    commits: AtomicU64,
    closed: AtomicBool,
    /// The exclusive lock on `<db>.lock`, held while the store is open.
    process_lock: Mutex<Option<Connection>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Maps a SQLite error to the store's typed errors.
fn sql_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            C::DatabaseCorrupt | C::NotADatabase => {
                StoreError::Corrupt(format!("sqlite database is damaged: {e}"))
            }
            C::DatabaseBusy | C::DatabaseLocked => StoreError::Unavailable(format!(
                "sqlite database is locked by another process or connection: {e}"
            )),
            C::CannotOpen | C::PermissionDenied | C::ReadOnly | C::FileLockingProtocolFailed => {
                StoreError::Unavailable(format!("cannot use sqlite database: {e}"))
            }
            _ => StoreError::Backend(format!("sqlite: {e}")),
        },
        _ => StoreError::Backend(format!("sqlite: {e}")),
    }
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` with default options.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (or creates) the store at `path`.
    ///
    /// A missing or empty file becomes a new store at revision 1. A file that is not a
    /// SQLite database, a SQLite database of another program, or a damaged one is refused
    /// with [`StoreError::Corrupt`] and left untouched; a database locked by another
    /// process (or already open in this one) gives [`StoreError::Unavailable`].
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self> {
        let opened = open::open(path, &options)?;
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            hub: WatchHub::new(opened.revision),
            readers: Mutex::new(Vec::new()),
            revision: AtomicI64::new(opened.revision),
            compacted: AtomicI64::new(opened.compacted),
            commits: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            process_lock: Mutex::new(Some(opened.process_lock)),
            options,
        });
        let (tx, rx) = mpsc::channel();
        let writer = writer::Writer::new(
            opened.conn,
            shared.clone(),
            rx,
            opened.revision,
            opened.compacted,
        );
        let handle = thread::Builder::new()
            .name("skiff-sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Backend(format!("starting the sqlite writer: {e}")))?;
        Ok(SqliteStore {
            shared,
            requests: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Builds a new database at `db_path` holding the state captured in `snapshot` (a file
    /// written by any backend's [`Store::snapshot`]) and returns its revision. Refuses to
    /// overwrite an existing database. History before the snapshot is not in the file, so
    /// the restored store's compacted revision is the snapshot's revision.
    pub fn restore(snapshot: &Path, db_path: &Path) -> Result<Revision> {
        open::restore(snapshot, db_path)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Number of write transactions committed (each one fsync) since the store was opened.
    /// With concurrent writers this is lower than the number of writes (group commit).
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Acquire)
    }

    /// Stops the writer thread (finishing the batch in progress), ends every watch stream
    /// and releases the database. Later operations fail with [`StoreError::Closed`].
    /// Called by `Drop`; idempotent.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        // Readers first, so the writer's connection is the last one and checkpoints the
        // WAL into the database file when it closes.
        lock(&self.shared.readers).clear();
        if let Some(tx) = lock(&self.requests).take() {
            let _ = tx.send(Request::Shutdown);
        }
        if let Some(handle) = lock(&self.writer).take() {
            if handle.join().is_err() {
                tracing::error!("sqlite writer thread panicked");
            }
        }
        self.shared.hub.close();
        lock(&self.shared.process_lock).take();
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Write { op, reply })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn send(&self, req: Request) -> Result<()> {
        let guard = lock(&self.requests);
        let tx = guard.as_ref().ok_or(StoreError::Closed)?;
        tx.send(req).map_err(|_| StoreError::Closed)
    }

    /// Runs `f` on a pooled read connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.with_reader(f))
            .await
            .map_err(|e| StoreError::Backend(format!("sqlite read task failed: {e}")))?
    }
}

impl Shared {
    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open::reader(&self.path, &self.options)?,
        };
        let result = f(&conn);
        if !self.closed.load(Ordering::Acquire) {
            let mut pool = lock(&self.readers);
            if pool.len() < self.options.max_idle_readers {
                pool.push(conn);
            }
        }
        result
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        validate_key(key)?;
        let key = key.to_string();
        self.read(move |conn| read::get(conn, &key)).await
    }

    async fn list(&self, req: &ListRequest) -> Result<ListResponse> {
        validate_prefix(&req.prefix)?;
        let req = req.clone();
        self.read(move |conn| read::list(conn, &req)).await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        validate_key(key)?;
        self.write(WriteOp::Create {
            key: key.to_string(),
            value,
        })
        .await
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> Result<KeyValue> {
        validate_key(key)?;
        self.write(WriteOp::Update {
            key: key.to_string(),
            value,
            expected,
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        validate_key(key)?;
        self.write(WriteOp::Delete {
            key: key.to_string(),
            expected,
        })
        .await
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream> {
        validate_prefix(prefix)?;
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let compacted = self.shared.compacted.load(Ordering::Acquire);
        if from != 0 && from < compacted {
            return Err(StoreError::Compacted {
                requested: from,
                compacted,
            });
        }
        if from == 0 {
            // Live only: the hub never needs history.
            return self
                .shared
                .hub
                .subscribe(prefix, 0, &mut |_, _| Ok(Vec::new()));
        }
        let shared = self.shared.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            shared.hub.subscribe(&prefix, from, &mut |lo, hi| {
                shared.with_reader(|conn| read::history(conn, &prefix, lo, hi))
            })
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite watch task failed: {e}")))?
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Compact { revision, reply })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.shared.compacted.load(Ordering::Acquire))
    }

    async fn snapshot(&self, path: &Path) -> Result<Revision> {
        let snap = self.read(read::snapshot).await?;
        let path = path.to_path_buf();
        let revision = snap.revision;
        tokio::task::spawn_blocking(move || snapshot::write(&path, &snap))
            .await
            .map_err(|e| StoreError::Backend(format!("snapshot task failed: {e}")))??;
        Ok(revision)
    }
}
