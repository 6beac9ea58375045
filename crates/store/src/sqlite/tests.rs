use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rusqlite::Connection;

use super::*;
use crate::memory::MemoryStore;

fn opts() -> SqliteOptions {
    SqliteOptions {
        compaction_interval: None,
        busy_timeout: Duration::from_millis(200),
        ..Default::default()
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

struct Dbs {
    dir: tempfile::TempDir,
    n: AtomicUsize,
}

impl Dbs {
    fn new() -> Self {
        Dbs {
            dir: tempfile::tempdir().unwrap(),
            n: AtomicUsize::new(0),
        }
    }
    fn path(&self) -> PathBuf {
        let n = self.n.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("store{n}.db"))
    }
    fn fresh(&self) -> SqliteStore {
        SqliteStore::open_with(&self.path(), opts()).unwrap()
    }
}

fn log_revs(path: &Path) -> Vec<i64> {
    let conn =
        Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn.prepare("SELECT rev FROM log ORDER BY rev").unwrap();
    let revs = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<Vec<i64>>>()
        .unwrap();
    revs
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance() {
    let dbs = Dbs::new();
    crate::conformance::run_all(|| {
        let path = dbs.path();
        async move { SqliteStore::open_with(&path, opts()).unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_cas_16_writers() {
    let dbs = Dbs::new();
    crate::conformance::concurrent_cas(Arc::new(dbs.fresh()), 16, 50).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_restore() {
    let dbs = Dbs::new();
    let store = dbs.fresh();
    let snap = dbs.dir.path().join("snap");
    let target = dbs.path();
    let restored_path = target.clone();
    crate::conformance::snapshot_roundtrip(&store, &snap, |p| async move {
        SqliteStore::restore(&p, &restored_path).unwrap();
        SqliteStore::open_with(&restored_path, opts()).unwrap()
    })
    .await;

    // Restoring over an existing database is refused and leaves it alone.
    let before = std::fs::read(&target).unwrap();
    let err = SqliteStore::restore(&snap, &target).unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("refusing")),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), before);

    // A damaged snapshot is Corrupt and creates nothing.
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&snap, &bytes).unwrap();
    let fresh = dbs.path();
    let err = SqliteStore::restore(&snap, &fresh).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(!fresh.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn reopen_keeps_keys_revisions_and_history() {
    let dbs = Dbs::new();
    let path = dbs.path();
    let (a, a2, del_rev, rev) = {
        let s = SqliteStore::open_with(&path, opts()).unwrap();
        let a = s.create("/registry/r/a", b("1")).await.unwrap();
        let a2 = s
            .update("/registry/r/a", b("2"), Some(a.mod_revision))
            .await
            .unwrap();
        s.create("/registry/r/b", b("1")).await.unwrap();
        s.delete("/registry/r/b", None).await.unwrap();
        let del_rev = s.current_revision().await.unwrap();
        for i in 0..20 {
            s.create(&format!("/registry/r/k{i:02}"), b("v"))
                .await
                .unwrap();
        }
        (a, a2, del_rev, s.current_revision().await.unwrap())
    };
    assert_eq!(rev, 1 + 24);
    let s = SqliteStore::open_with(&path, opts()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), rev);
    assert_eq!(s.get("/registry/r/a").await.unwrap(), Some(a2.clone()));
    assert_eq!(s.get("/registry/r/b").await.unwrap(), None);
    let all = s
        .list(&ListRequest {
            prefix: "/registry/r/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.kvs.len(), 21);
    // Reads at an older revision come from the log.
    let old = s
        .list(&ListRequest {
            prefix: "/registry/r/".into(),
            revision: del_rev - 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<_> = old.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/registry/r/a", "/registry/r/b"]);
    // The hub's ring is empty after a reopen: a watch from the past replays from the log,
    // with previous values and delete events, then continues live.
    let mut w = s.watch("/registry/r/", a.mod_revision).await.unwrap();
    let e1 = next(&mut w).await;
    assert_eq!((e1.kind, &e1.kv, &e1.prev_kv), (EventType::Put, &a, &None));
    let e2 = next(&mut w).await;
    assert_eq!((&e2.kv, &e2.prev_kv), (&a2, &Some(a.clone())));
    let e3 = next(&mut w).await;
    assert_eq!(e3.kind, EventType::Put);
    let e4 = next(&mut w).await;
    assert_eq!(e4.kind, EventType::Delete);
    assert_eq!(e4.revision(), del_rev);
    assert_eq!(e4.prev_kv.as_ref().unwrap().key, "/registry/r/b");
    assert_eq!(
        e4.prev_kv.as_ref().unwrap().mod_revision,
        e3.kv.mod_revision
    );
    for _ in 0..20 {
        next(&mut w).await;
    }
    let c = s.create("/registry/r/live", b("x")).await.unwrap();
    assert_eq!(
        c.mod_revision,
        rev + 1,
        "the revision continues after a reopen"
    );
    assert_eq!(next(&mut w).await.kv, c);
    assert_eq!(log_revs(&path), (2..=rev + 1).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_keeps_what_reads_and_watches_at_the_point_need() {
    let dbs = Dbs::new();
    let path = dbs.path();
    let s = SqliteStore::open_with(&path, opts()).unwrap();
    let k = "/registry/c/k";
    let mut kv = s.create(k, b("0")).await.unwrap();
    for i in 1..10 {
        kv = s.update(k, b(&i.to_string()), None).await.unwrap();
    }
    s.create("/registry/c/gone", b("x")).await.unwrap();
    s.delete("/registry/c/gone", None).await.unwrap();
    let prev = kv.clone();
    let point = s.update(k, b("at-point"), None).await.unwrap();
    let later = s.update(k, b("later"), None).await.unwrap();
    s.compact(point.mod_revision).await.unwrap();
    // Rows left: the previous value of the event at the point, the point, and later.
    assert_eq!(
        log_revs(&path),
        [prev.mod_revision, point.mod_revision, later.mod_revision]
    );
    drop(s);
    // After a reopen (no ring), a watch from the compaction point gets its previous value.
    let s = SqliteStore::open_with(&path, opts()).unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), point.mod_revision);
    let mut w = s.watch("/registry/c/", point.mod_revision).await.unwrap();
    let ev = w.next().await.unwrap().unwrap();
    assert_eq!((ev.kv, ev.prev_kv), (point.clone(), Some(prev)));
    assert_eq!(w.next().await.unwrap().unwrap().kv, later);
    let at = s
        .list(&ListRequest {
            prefix: "/registry/c/".into(),
            revision: point.mod_revision,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(at.kvs, vec![point.clone()]);
    let err = s
        .watch("/registry/c/", point.mod_revision - 1)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    // Compacting again drops the now superseded rows (but keeps the previous value of
    // the event at the new point).
    s.compact(later.mod_revision).await.unwrap();
    assert_eq!(log_revs(&path), [point.mod_revision, later.mod_revision]);
    s.create("/registry/c/other", b("x")).await.unwrap();
    s.compact(later.mod_revision + 1).await.unwrap();
    assert_eq!(
        log_revs(&path),
        [later.mod_revision, later.mod_revision + 1]
    );
    assert_eq!(s.get(k).await.unwrap(), Some(later));
}

#[tokio::test(flavor = "multi_thread")]
async fn periodic_compaction_runs_and_keeps_recent_history() {
    let dbs = Dbs::new();
    let s = SqliteStore::open_with(
        &dbs.path(),
        SqliteOptions {
            compaction_interval: Some(Duration::from_millis(100)),
            compaction_keep_revisions: 5,
            ..opts()
        },
    )
    .unwrap();
    let k = "/registry/p/k";
    s.create(k, b("0")).await.unwrap();
    for i in 0..30 {
        s.update(k, b(&i.to_string()), None).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let compacted = s.compacted_revision().await.unwrap();
        if compacted > 0 {
            let current = s.current_revision().await.unwrap();
            assert!(compacted <= current - 5, "keeps at least 5 revisions");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no periodic compaction"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.get(k).await.unwrap().unwrap().value, b("29"));
}

#[tokio::test(flavor = "multi_thread")]
async fn group_commit_shares_transactions() {
    let dbs = Dbs::new();
    let s = Arc::new(dbs.fresh());
    // Sequential writes: one commit each; failed preconditions commit nothing.
    let c0 = s.commits();
    for i in 0..5 {
        s.create(&format!("/registry/seq/{i}"), b("v"))
            .await
            .unwrap();
    }
    assert!(s.create("/registry/seq/0", b("v")).await.is_err());
    assert_eq!(s.commits() - c0, 5);

    const WRITERS: usize = 32;
    const EACH: usize = 20;
    let c1 = s.commits();
    let r1 = s.current_revision().await.unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    s.create(&format!("/registry/gc/{w}/{i}"), b("v"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let writes = (WRITERS * EACH) as u64;
    let commits = s.commits() - c1;
    assert_eq!(s.current_revision().await.unwrap() - r1, writes as i64);
    assert!(
        commits < writes,
        "{writes} concurrent writes took {commits} commits: no group commit"
    );

    // Racing creates of one key in the same batches: one wins, the rest take no revision.
    let r2 = s.current_revision().await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.create("/registry/gc/same", b("v")).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(kv) => {
                won += 1;
                assert_eq!(kv.mod_revision, r2 + 1);
            }
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(s.current_revision().await.unwrap(), r2 + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn close_ends_watches_and_refuses_work() {
    let dbs = Dbs::new();
    let path = dbs.path();
    let s = SqliteStore::open_with(&path, opts()).unwrap();
    let mut w = s.watch("/registry/", 0).await.unwrap();
    s.create("/registry/x/a", b("1")).await.unwrap();
    s.close();
    assert_eq!(w.next().await.unwrap().unwrap().kv.key, "/registry/x/a");
    assert!(w.next().await.is_none(), "closing ends watch streams");
    assert_eq!(
        s.create("/registry/x/b", b("1")).await,
        Err(StoreError::Closed)
    );
    assert_eq!(s.get("/registry/x/a").await, Err(StoreError::Closed));
    assert!(matches!(
        s.watch("/registry/", 0).await,
        Err(StoreError::Closed)
    ));
    s.close();
    // The database is released: it opens again right away.
    let again = SqliteStore::open_with(&path, opts()).unwrap();
    assert!(again.get("/registry/x/a").await.unwrap().is_some());
}

async fn next(w: &mut WatchStream) -> Event {
    tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("watch stalled")
        .expect("watch ended")
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Bad input

fn assert_corrupt(path: &Path) -> String {
    let before = std::fs::read(path).unwrap();
    let err = match SqliteStore::open_with(path, opts()) {
        Ok(_) => panic!("{path:?} opened"),
        Err(e) => e,
    };
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the file must be left unchanged"
    );
    assert!(
        !with_lock_suffix(path).exists(),
        "nothing is created next to a bad file"
    );
    err.to_string()
}

fn with_lock_suffix(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

async fn filled_store(path: &Path, n: usize) {
    let s = SqliteStore::open_with(path, opts()).unwrap();
    let value = Bytes::from(vec![b'x'; 1000]);
    for i in 0..n {
        s.create(&format!("/registry/fill/{i:04}"), value.clone())
            .await
            .unwrap();
    }
    s.close();
    drop(s);
    std::fs::remove_file(with_lock_suffix(path)).unwrap();
}

#[test]
fn garbage_and_non_sqlite_files_are_corrupt() {
    let dbs = Dbs::new();
    let garbage = dbs.path();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&garbage, &bytes).unwrap();
    assert!(assert_corrupt(&garbage).contains("not a SQLite database"));

    let text = dbs.path();
    std::fs::write(&text, "apiVersion: v1\nkind: Pod\n").unwrap();
    assert_corrupt(&text);

    let dir = dbs.path();
    std::fs::create_dir(&dir).unwrap();
    let err = SqliteStore::open_with(&dir, opts()).err().unwrap();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_and_damaged_databases_are_corrupt() {
    let dbs = Dbs::new();
    let path = dbs.path();
    filled_store(&path, 300).await;
    let good = std::fs::read(&path).unwrap();
    assert!(
        good.len() > 100_000,
        "the store was checkpointed into the file"
    );

    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    assert!(assert_corrupt(&path).contains("truncated"));

    std::fs::write(&path, &good[..60]).unwrap();
    assert_corrupt(&path);

    // Garbage over pages in the middle: caught by the integrity check.
    let mut damaged = good.clone();
    let mid = damaged.len() / 2;
    for (i, byte) in damaged[mid..mid + 8192].iter_mut().enumerate() {
        *byte = (i * 7 + 3) as u8;
    }
    std::fs::write(&path, &damaged).unwrap();
    assert_corrupt(&path);

    // The intact file still opens.
    std::fs::write(&path, &good).unwrap();
    let s = SqliteStore::open_with(&path, opts()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), 301);
}

#[test]
fn foreign_sqlite_databases_are_refused_untouched() {
    let dbs = Dbs::new();
    let path = dbs.path();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO users (name) VALUES ('ada'), ('grace');",
        )
        .unwrap();
    }
    let msg = assert_corrupt(&path);
    assert!(msg.contains("foreign") && msg.contains("users"), "{msg}");

    // The same in WAL mode (its -wal and -shm are gone after a clean close).
    let wal_mode = dbs.path();
    {
        let conn = Connection::open(&wal_mode).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE notes (body TEXT);")
            .unwrap();
    }
    assert!(assert_corrupt(&wal_mode).contains("notes"));

    let other_app = dbs.path();
    {
        let conn = Connection::open(&other_app).unwrap();
        conn.execute_batch("PRAGMA application_id = 1234; CREATE TABLE t (x);")
            .unwrap();
    }
    assert!(assert_corrupt(&other_app).contains("another application"));

    // Our application id but a schema from the future.
    let future = dbs.path();
    drop(SqliteStore::open_with(&future, opts()).unwrap());
    std::fs::remove_file(with_lock_suffix(&future)).unwrap();
    {
        let conn = Connection::open(&future).unwrap();
        conn.execute(
            "UPDATE meta SET value = 99 WHERE name = 'schema_version'",
            [],
        )
        .unwrap();
    }
    assert!(assert_corrupt(&future).contains("schema version 99"));

    // A WAL without its database is not silently turned into a new store.
    let orphan = dbs.path();
    let mut wal = orphan.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::write(&wal, b"stale").unwrap();
    let err = SqliteStore::open_with(&orphan, opts()).err().unwrap();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(!orphan.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_file_becomes_a_new_store() {
    let dbs = Dbs::new();
    let path = dbs.path();
    std::fs::write(&path, b"").unwrap();
    let s = SqliteStore::open_with(&path, opts()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), 1);
    assert_eq!(
        s.create("/registry/a", b("1")).await.unwrap().mod_revision,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn locked_databases_are_unavailable() {
    let dbs = Dbs::new();
    let path = dbs.path();
    let s = SqliteStore::open_with(&path, opts()).unwrap();
    s.create("/registry/l/a", b("1")).await.unwrap();

    // A second store on the same file (here or in another process) is refused.
    let err = SqliteStore::open_with(&path, opts()).err().unwrap();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("in use")),
        "{err:?}"
    );
    // ... and the first one is unaffected.
    assert_eq!(
        s.create("/registry/l/b", b("1"))
            .await
            .unwrap()
            .mod_revision,
        3
    );
    drop(s);

    // Another program holding the write lock.
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = SqliteStore::open_with(&path, opts()).err().unwrap();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    raw.execute_batch("ROLLBACK").unwrap();
    drop(raw);

    let s = SqliteStore::open_with(&path, opts()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), 3);
}

// ---------------------------------------------------------------------------------------
// Differential test against the memory backend

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn drain_until<S: Store>(
    s: &S,
    prefix: &str,
    from: Revision,
    sentinel: &str,
) -> Result<Vec<Event>> {
    let mut w = s.watch(prefix, from).await?;
    let stop = s.create(sentinel, b("s")).await.unwrap().mod_revision;
    let mut out = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .expect("watch stalled")
            .expect("watch ended")?;
        if ev.revision() == stop {
            return Ok(out);
        }
        out.push(ev);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn behaves_exactly_like_the_memory_backend() {
    let dbs = Dbs::new();
    let path = dbs.path();
    let mem = MemoryStore::new();
    let mut sql = SqliteStore::open_with(&path, opts()).unwrap();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let keys: Vec<String> = (0..12)
        .map(|i| format!("/registry/{}/k{i}", ["a", "b", "ab"][i % 3]))
        .collect();
    let prefixes = ["/registry/", "/registry/a/", "/registry/a", "/registry/b/"];
    let mut sentinel = 0;
    for step in 0..800 {
        let key = &keys[rng.below(keys.len() as u64) as usize];
        let current = mem.current_revision().await.unwrap();
        let compacted = mem.compacted_revision().await.unwrap();
        // Mostly readable revisions, sometimes compacted or future ones.
        let some_rev = |rng: &mut Rng| match rng.below(6) {
            0 => 0,
            1 => rng.below(current as u64 + 3) as i64,
            _ => compacted + rng.below((current - compacted + 2) as u64) as i64,
        };
        match rng.below(10) {
            0..=2 => {
                let v = b(&format!("v{step}"));
                assert_eq!(sql.create(key, v.clone()).await, mem.create(key, v).await);
            }
            3..=4 => {
                let v = b(&format!("u{step}"));
                let exp = match rng.below(3) {
                    0 => None,
                    _ => mem
                        .get(key)
                        .await
                        .unwrap()
                        .map(|kv| kv.mod_revision + rng.below(2) as i64),
                };
                assert_eq!(
                    sql.update(key, v.clone(), exp).await,
                    mem.update(key, v, exp).await
                );
            }
            5 => {
                let exp = match rng.below(2) {
                    0 => None,
                    _ => mem.get(key).await.unwrap().map(|kv| kv.mod_revision),
                };
                assert_eq!(sql.delete(key, exp).await, mem.delete(key, exp).await);
            }
            6 => {
                let req = ListRequest {
                    prefix: prefixes[rng.below(4) as usize].into(),
                    start_after: match rng.below(3) {
                        0 => Some(keys[rng.below(keys.len() as u64) as usize].clone()),
                        _ => None,
                    },
                    limit: rng.below(4) as usize,
                    revision: some_rev(&mut rng),
                };
                assert_eq!(sql.list(&req).await, mem.list(&req).await, "{req:?}");
            }
            7 => {
                let rev = if rng.below(4) == 0 {
                    rng.below(current as u64 + 2) as i64
                } else {
                    compacted + 1 + rng.below((current - compacted).max(1) as u64) as i64
                };
                if rng.below(4) == 0 {
                    assert_eq!(
                        sql.compact(rev).await,
                        mem.compact(rev).await,
                        "compact {rev}"
                    );
                }
            }
            8 => {
                let prefix = prefixes[rng.below(4) as usize];
                let from = some_rev(&mut rng).max(1);
                sentinel += 1;
                let s = format!(
                    "{prefix}{}sentinel{sentinel}",
                    if prefix.ends_with('/') { "" } else { "/" }
                );
                let m = drain_until(&mem, prefix, from, &s).await;
                let q = drain_until(&sql, prefix, from, &s).await;
                assert_eq!(q, m, "watch {prefix} from {from}");
            }
            _ => {
                // Reopen: the watch ring is gone, history comes from the log.
                drop(sql);
                sql = SqliteStore::open_with(&path, opts()).unwrap();
            }
        }
        assert_eq!(sql.current_revision().await, mem.current_revision().await);
        assert_eq!(
            sql.compacted_revision().await,
            mem.compacted_revision().await
        );
        for k in &keys {
            assert_eq!(sql.get(k).await, mem.get(k).await, "step {step} key {k}");
        }
    }
}
