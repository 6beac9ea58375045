//! Opening, validating, locking, initialising and restoring a database file.

use std::ffi::OsString;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{read, sql_err, SqliteOptions, APPLICATION_ID, SCHEMA_VERSION};
use crate::*;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

const SCHEMA: &str = "
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE log (
  rev        INTEGER PRIMARY KEY,
  key        BLOB NOT NULL,
  create_rev INTEGER NOT NULL,
  deleted    INTEGER NOT NULL,
  value      BLOB NOT NULL,
  prev_rev   INTEGER
);
CREATE INDEX log_key_rev ON log (key, rev);
CREATE TABLE current (key BLOB PRIMARY KEY, rev INTEGER NOT NULL) WITHOUT ROWID;
";

/// What an existing path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// No file.
    Missing,
    /// An empty file or an empty SQLite database: safe to initialise.
    Empty,
    /// A Skiff store.
    Skiff,
}

pub(super) struct Opened {
    pub conn: Connection,
    pub process_lock: Connection,
    pub revision: Revision,
    pub compacted: Revision,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Opens the writer connection, initialising a new store if needed.
pub(super) fn open(path: &Path, options: &SqliteOptions) -> Result<Opened> {
    // Validate read-only first: a foreign or damaged file is refused before anything
    // (not even a lock file) is created next to it.
    let found = inspect(path, options)?;
    let process_lock = acquire_process_lock(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    conn.busy_timeout(options.busy_timeout).map_err(sql_err)?;
    // Under the lock, look again: another process may have initialised it meanwhile.
    let found = match found {
        Found::Skiff => Found::Skiff,
        Found::Missing | Found::Empty => classify(&conn, path)?,
    };
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(sql_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "{path:?}: cannot switch to WAL mode (journal_mode is {mode})"
        )));
    }
    conn.execute_batch("PRAGMA synchronous=FULL")
        .map_err(sql_err)?;
    // Taking the write lock proves no other program holds the database.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_err)?;
    let revs = (|| {
        if found != Found::Skiff {
            init_schema(&conn, 1, 0).map_err(sql_err)?;
        }
        read::revisions(&conn)
    })();
    let (revision, compacted) = match revs {
        Ok(revs) => {
            conn.execute_batch("COMMIT").map_err(sql_err)?;
            revs
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    };
    if found != Found::Skiff {
        sync_parent_dir(path)?;
    }
    Ok(Opened {
        conn,
        process_lock,
        revision,
        compacted,
    })
}

/// A read-only connection for the reader pool.
pub(super) fn reader(path: &Path, options: &SqliteOptions) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    conn.busy_timeout(options.busy_timeout).map_err(sql_err)?;
    Ok(conn)
}

/// Checks what `path` holds without modifying it.
fn inspect(path: &Path, options: &SqliteOptions) -> Result<Found> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let wal = with_suffix(path, "-wal");
            if wal.exists() {
                return Err(StoreError::Corrupt(format!(
                    "{wal:?} exists but its database {path:?} does not; refusing to guess"
                )));
            }
            return Ok(Found::Missing);
        }
        Err(e) => {
            return Err(StoreError::Unavailable(format!(
                "cannot access {path:?}: {e}"
            )))
        }
    };
    if !meta.is_file() {
        return Err(StoreError::Corrupt(format!(
            "{path:?} is not a regular file"
        )));
    }
    if meta.len() > 0 {
        check_header(path, meta.len())?;
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    conn.busy_timeout(options.busy_timeout).map_err(sql_err)?;
    let found = classify(&conn, path)?;
    if found == Found::Skiff && options.verify_on_open {
        quick_check(&conn, path)?;
    }
    Ok(found)
}

/// Checks the 100-byte SQLite header: magic, application id, and (when there is no WAL
/// that could hold newer pages) that the file is as long as the header says.
fn check_header(path: &Path, len: u64) -> Result<()> {
    let mut header = [0u8; 100];
    let mut file = File::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {path:?}: {e}")))?;
    let mut n = 0;
    while n < header.len() {
        match file.read(&mut header[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot read {path:?}: {e}"
                )))
            }
        }
    }
    if n < header.len() || &header[..16] != SQLITE_MAGIC {
        return Err(StoreError::Corrupt(format!(
            "{path:?} is not a SQLite database (bad header)"
        )));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let app_id = be32(68);
    if app_id != 0 && app_id != APPLICATION_ID as u32 {
        return Err(StoreError::Corrupt(format!(
            "{path:?} is a SQLite database of another application (application_id {app_id:#x}), \
             not a Skiff store"
        )));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536u64,
        n if n >= 512 && n.is_power_of_two() => n as u64,
        n => {
            return Err(StoreError::Corrupt(format!(
                "{path:?}: invalid SQLite page size {n}"
            )))
        }
    };
    let pages = be32(28) as u64;
    let size_valid = pages > 0 && be32(24) == be32(92);
    let wal_len = std::fs::metadata(with_suffix(path, "-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    if size_valid && wal_len == 0 && len < pages * page_size {
        return Err(StoreError::Corrupt(format!(
            "{path:?} is truncated: its header says {pages} pages of {page_size} bytes, \
             the file has {len} bytes"
        )));
    }
    Ok(())
}

/// Is this a Skiff store, an empty database, or something else?
fn classify(conn: &Connection, path: &Path) -> Result<Found> {
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(sql_err)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(sql_err)?;
    if app_id == 0 && tables.is_empty() {
        return Ok(Found::Empty);
    }
    if app_id != APPLICATION_ID as i64 {
        let mut shown = tables
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if tables.len() > 8 {
            shown.push_str(", ...");
        }
        return Err(StoreError::Corrupt(format!(
            "{path:?} is a foreign SQLite database, not a Skiff store \
             (application_id {app_id:#x}, objects: {shown})"
        )));
    }
    for needed in ["current", "log", "log_key_rev", "meta"] {
        if !tables.iter().any(|t| t == needed) {
            return Err(StoreError::Corrupt(format!(
                "{path:?}: Skiff store is missing its {needed:?} table"
            )));
        }
    }
    let version: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql_err)?;
    match version {
        Some(SCHEMA_VERSION) => Ok(Found::Skiff),
        Some(v) => Err(StoreError::Corrupt(format!(
            "{path:?}: Skiff store schema version {v}; this build reads version {SCHEMA_VERSION}"
        ))),
        None => Err(StoreError::Corrupt(format!(
            "{path:?}: Skiff store has no schema version"
        ))),
    }
}

fn quick_check(conn: &Connection, path: &Path) -> Result<()> {
    let problems: Vec<String> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(sql_err)?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Corrupt(format!(
        "{path:?} failed its integrity check: {}",
        problems.join("; ")
    )))
}

/// Holds an exclusive SQLite lock on `<db>.lock` for as long as the connection lives, so
/// one store at a time owns the database (across processes and within one).
fn acquire_process_lock(path: &Path) -> Result<Connection> {
    let lock_path = with_suffix(path, ".lock");
    let unavailable = |e: rusqlite::Error| {
        StoreError::Unavailable(format!("cannot use lock file {lock_path:?}: {e}"))
    };
    let conn = Connection::open_with_flags(
        &lock_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unavailable)?;
    conn.busy_timeout(Duration::ZERO).map_err(unavailable)?;
    conn.execute_batch(
        "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=OFF; BEGIN EXCLUSIVE; COMMIT;",
    )
    .map_err(|e| match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Unavailable(format!(
                "{path:?} is in use by another Skiff store (lock {lock_path:?} is held)"
            ))
        }
        _ => unavailable(e),
    })?;
    Ok(conn)
}

/// Creates the tables and meta rows inside the caller's transaction.
fn init_schema(
    conn: &Connection,
    base_revision: Revision,
    compacted: Revision,
) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    conn.execute(
        "INSERT INTO meta (name, value) VALUES ('schema_version', ?1), \
         ('base_revision', ?2), ('compacted', ?3)",
        params![SCHEMA_VERSION, base_revision, compacted],
    )?;
    Ok(())
}

fn sync_parent_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::Backend(format!("syncing directory {dir:?}: {e}")))
}

/// See [`super::SqliteStore::restore`].
pub(super) fn restore(snapshot_path: &Path, db_path: &Path) -> Result<Revision> {
    let snap = snapshot::read(snapshot_path)?;
    let corrupt = |what: String| StoreError::Corrupt(format!("snapshot {snapshot_path:?}: {what}"));
    if snap.revision < 1 {
        return Err(corrupt(format!("invalid revision {}", snap.revision)));
    }
    for kv in &snap.kvs {
        validate_key(&kv.key).map_err(|e| corrupt(e.to_string()))?;
    }
    let refuse = |what: &Path| {
        StoreError::Backend(format!(
            "refusing to restore into {db_path:?}: {what:?} already exists \
             (restore builds a new database; move the old one away first)"
        ))
    };
    for existing in [
        db_path.to_path_buf(),
        with_suffix(db_path, "-wal"),
        with_suffix(db_path, "-journal"),
    ] {
        if std::fs::symlink_metadata(&existing).is_ok() {
            return Err(refuse(&existing));
        }
    }
    // Build it beside the target, then link it into place (which fails if the target
    // appeared meanwhile), so a crash never leaves a half-restored database at db_path.
    let tmp = with_suffix(db_path, ".restoring");
    let io = |what: &str, e: std::io::Error| StoreError::Backend(format!("restore: {what}: {e}"));
    for stale in [tmp.clone(), with_suffix(&tmp, "-journal")] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io(&format!("removing {stale:?}"), e)),
        }
    }
    let build = || -> rusqlite::Result<()> {
        let mut conn = Connection::open(&tmp)?;
        conn.execute_batch("PRAGMA synchronous=FULL")?;
        let tx = conn.transaction()?;
        init_schema(&tx, snap.revision, snap.revision)?;
        {
            let mut log = tx.prepare(
                "INSERT INTO log (rev, key, create_rev, deleted, value, prev_rev) \
                 VALUES (?1, ?2, ?3, 0, ?4, NULL)",
            )?;
            let mut current = tx.prepare("INSERT INTO current (key, rev) VALUES (?1, ?2)")?;
            for kv in &snap.kvs {
                log.execute(params![
                    kv.mod_revision,
                    kv.key.as_bytes(),
                    kv.create_revision,
                    &kv.value[..]
                ])?;
                current.execute(params![kv.key.as_bytes(), kv.mod_revision])?;
            }
        }
        tx.commit()?;
        conn.close().map_err(|(_, e)| e)
    };
    if let Err(e) = build() {
        let _ = std::fs::remove_file(&tmp);
        return Err(match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                corrupt("two keys share a key or a mod_revision".into())
            }
            _ => sql_err(e),
        });
    }
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("syncing the new database", e))?;
    let linked = std::fs::hard_link(&tmp, db_path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(refuse(db_path)),
        Err(e) => return Err(io(&format!("linking {db_path:?}"), e)),
    }
    sync_parent_dir(db_path)?;
    Ok(snap.revision)
}
