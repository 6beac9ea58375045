//! Crash tests for the SQLite backend, with real processes.
//!
//! The parent re-executes this test binary with `SKIFF_SQLITE_CRASH_CHILD` set, which makes
//! `crash_child` (a no-op otherwise) the child's body: it writes in a loop from several
//! tasks and prints every acknowledged write. The parent SIGKILLs it mid-stream, reopens
//! the database and checks that every acknowledged write is there with its revision and
//! that the log's revisions are contiguous.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rusqlite::{Connection, OpenFlags};
use skiff_store::sqlite::{SqliteOptions, SqliteStore};
use skiff_store::{ListRequest, Store, StoreError};

const CHILD_ENV: &str = "SKIFF_SQLITE_CRASH_CHILD";

fn options() -> SqliteOptions {
    SqliteOptions {
        compaction_interval: None,
        busy_timeout: Duration::from_millis(500),
        ..Default::default()
    }
}

// `u32::is_multiple_of` is newer than the workspace's rust-version (1.85).
#[allow(clippy::manual_is_multiple_of)]
/// The child's body; does nothing unless the parent selected it with `CHILD_ENV`
/// (`write:<round>:<db>` or `hold:<db>`).
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    if let Some(db) = spec.strip_prefix("hold:") {
        let _store = SqliteStore::open_with(Path::new(db), options()).unwrap();
        say("READY");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let (round, db) = spec
        .strip_prefix("write:")
        .and_then(|s| s.split_once(':'))
        .expect("bad child spec");
    let round: u32 = round.parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Arc::new(SqliteStore::open_with(Path::new(db), options()).unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        let tasks: Vec<_> = (0..8)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut i = 0u32;
                    while Instant::now() < deadline {
                        let key = format!("/registry/crash/r{round}/w{w}/k{i:06}");
                        let kv = store
                            .create(&key, Bytes::from(format!("{key}=0")))
                            .await
                            .unwrap();
                        say(&format!("ACK PUT {key} {}", kv.mod_revision));
                        if i % 3 == 0 {
                            let kv = store
                                .update(
                                    &key,
                                    Bytes::from(format!("{key}=1")),
                                    Some(kv.mod_revision),
                                )
                                .await
                                .unwrap();
                            say(&format!("ACK PUT {key} {}", kv.mod_revision));
                        }
                        if i % 5 == 4 {
                            let old = format!("/registry/crash/r{round}/w{w}/k{:06}", i - 2);
                            store.delete(&old, None).await.unwrap();
                            // (A delete does not return its own revision.)
                            say(&format!("ACK DEL {old} 0"));
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// Prints one line with a single write, so a kill never leaves half an acknowledgement.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes()).unwrap();
    out.flush().unwrap();
}

fn spawn_child(spec: &str) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    delete: bool,
    key: String,
    /// The write's revision (0 for a delete: its revision is not returned).
    rev: i64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    // The test harness may print "test crash_child ... " in front of the first line.
    let at = line.find("ACK ")?;
    let mut parts = line[at + 4..].split(' ');
    let delete = match parts.next()? {
        "PUT" => false,
        "DEL" => true,
        _ => return None,
    };
    let key = parts.next()?.to_string();
    let rev = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some(Ack { delete, key, rev })
}

/// One row of the log, as the file holds it.
struct Row {
    key: String,
    deleted: bool,
    value: Vec<u8>,
}

fn read_log(db: &Path) -> BTreeMap<i64, Row> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn
        .prepare("SELECT rev, key, deleted, value FROM log ORDER BY rev")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Row {
                    key: String::from_utf8(r.get(1)?).unwrap(),
                    deleted: r.get(2)?,
                    value: r.get(3)?,
                },
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    let n = rows.len();
    let log: BTreeMap<_, _> = rows.into_iter().collect();
    assert_eq!(log.len(), n, "duplicate revisions in the log");
    log
}

/// Reopens the database and checks every acknowledged write and the log's integrity.
async fn verify(db: &Path, acks: &[Ack]) {
    let store = SqliteStore::open_with(db, options()).unwrap();
    let current = store.current_revision().await.unwrap();
    let log = read_log(db);
    let revs: Vec<i64> = log.keys().copied().collect();
    assert_eq!(
        revs,
        (2..=current).collect::<Vec<_>>(),
        "the log's revisions must run from 2 to the current revision without gaps"
    );
    for ack in acks {
        if ack.delete {
            assert!(
                log.values().any(|row| row.deleted && row.key == ack.key),
                "acknowledged delete of {} is missing",
                ack.key
            );
            assert_eq!(store.get(&ack.key).await.unwrap(), None);
            continue;
        }
        let row = log
            .get(&ack.rev)
            .unwrap_or_else(|| panic!("acknowledged write {ack:?} is missing"));
        assert!(
            row.key == ack.key && !row.deleted,
            "revision {} holds another write than acknowledged {ack:?}",
            ack.rev
        );
    }
    // The live state the store serves equals a replay of the log.
    let mut replay = BTreeMap::new();
    for (rev, row) in &log {
        if row.deleted {
            assert!(
                replay.remove(&row.key).is_some(),
                "delete of a missing key at {rev}"
            );
        } else {
            replay.insert(row.key.clone(), (row.value.clone(), *rev));
        }
    }
    let listed = store
        .list(&ListRequest {
            prefix: "/registry/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let served: BTreeMap<_, _> = listed
        .kvs
        .into_iter()
        .map(|kv| (kv.key, (kv.value.to_vec(), kv.mod_revision)))
        .collect();
    assert_eq!(served, replay, "live state differs from the log");
    // The store keeps working and the revision continues.
    let next = store
        .create("/registry/crash/after", Bytes::from_static(b"x"))
        .await;
    match next {
        Ok(kv) => assert_eq!(kv.mod_revision, current + 1),
        Err(StoreError::AlreadyExists { .. }) => {}
        Err(e) => panic!("{e:?}"),
    }
    store.delete("/registry/crash/after", None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("skiff.db");
    let mut acks: Vec<Ack> = Vec::new();
    for round in 0..4 {
        let (mut child, mut out) = spawn_child(&format!("write:{round}:{}", db.display()));
        let target = 300 + 100 * round;
        let mut seen = 0;
        let mut line = String::new();
        let mut killed = false;
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(ack) = parse_ack(line.trim_end_matches('\n')) {
                acks.push(ack);
                seen += 1;
                if seen == target && !killed {
                    child.kill().unwrap(); // SIGKILL
                    killed = true;
                }
            }
        }
        let status = child.wait().unwrap();
        assert!(
            killed,
            "round {round}: the child exited ({status}) after only {seen} acknowledgements"
        );
        // Everything printed before the kill was acknowledged, so it is checked too.
        verify(&db, &acks).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_held_by_another_process_is_unavailable() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("skiff.db");
    let (mut child, mut out) = spawn_child(&format!("hold:{}", db.display()));
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child failed to open the store"
        );
    }
    let before = std::fs::read(&db).unwrap();
    let err = SqliteStore::open_with(&db, options()).err().unwrap();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the file is left unchanged"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The lock dies with its process.
    let store = SqliteStore::open_with(&db, options()).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 1);
}
