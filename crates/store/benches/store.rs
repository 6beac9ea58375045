//! Storage benchmark for issue 2 (acceptance point 5): the sqlite backend (default options:
//! WAL, `synchronous=FULL`, group commit) against a real local etcd started here (etcd's
//! default fsync durability, data directory on the same disk), in the same run, with the
//! memory backend as a reference line.
//!
//! Run: `cargo bench -p skiff-store --bench store`. Prints a Markdown table with absolute
//! numbers and the sqlite/etcd ratio per row, plus machine information.
//!
//! Workload, per backend, in this order:
//! 1. sequential creates: one writer, [`SEQ_CREATES`] keys with [`VALUE_SIZE`]-byte values;
//! 2. concurrent creates: [`WRITERS`] tasks, [`PAR_CREATES`] keys in total (same prefix, so
//!    the prefix then holds `SEQ_CREATES + PAR_CREATES` = 10,000 keys);
//! 3. point reads of existing keys: sequential ([`SEQ_READS`]) and [`READERS`]-way
//!    ([`PAR_READS`] in total);
//! 4. full list of the 10,000-key prefix: median of [`LIST_RUNS`] (after one warm-up);
//! 5. watch delivery: [`WATCHERS`] watchers on one prefix, [`WATCH_WRITES`] creates spaced
//!    [`WATCH_GAP`] apart; latency = time each watcher receives the event minus the time
//!    the write was issued (and minus the time it was acknowledged), p50/p99 over every
//!    (write, watcher) pair.
//!
//! The workload runs [`ROUNDS`] times with fresh stores, the backends in turn within each
//! round; the main table shows per-row medians, a second table every round, next to the
//! disk's raw fsync latency measured just before each suite.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::etcd::testing::{etcd_binary, EtcdServer};
use skiff_store::etcd::EtcdStore;
use skiff_store::memory::MemoryStore;
use skiff_store::sqlite::SqliteStore;
use skiff_store::{ListRequest, Store};

const VALUE_SIZE: usize = 1024;
const SEQ_CREATES: usize = 2_000;
const WRITERS: usize = 16;
const PAR_CREATES: usize = 8_000;
const SEQ_READS: usize = 4_000;
const READERS: usize = 16;
const PAR_READS: usize = 16_000;
const LIST_RUNS: usize = 7;
const WATCHERS: usize = 1_000;
const WATCH_WRITES: usize = 200;
const WATCH_GAP: Duration = Duration::from_millis(5);
/// The whole workload runs this many times (fresh stores each time, backends interleaved so
/// background load hits them alike); the table shows the median of the rounds.
const ROUNDS: usize = 5;

const ITEMS: &str = "/registry/bench/items/";
const WATCHED: &str = "/registry/bench/watched/";

/// One backend's results, in the order of [`ROWS`].
type Results = Vec<f64>;

/// (label, unit, higher is better)
const ROWS: &[(&str, &str, bool)] = &[
    ("sequential creates (1 writer)", "creates/s", true),
    ("concurrent creates (16 tasks)", "creates/s", true),
    ("point reads, sequential", "gets/s", true),
    ("point reads, 16-way", "gets/s", true),
    ("list 10,000 keys (median)", "ms", false),
    ("start 1,000 watches", "ms", false),
    ("watch delivery p50, from write issue", "ms", false),
    ("watch delivery p99, from write issue", "ms", false),
    ("watch delivery p50, from write ack", "ms", false),
    ("watch delivery p99, from write ack", "ms", false),
];

fn key(i: usize) -> String {
    if i < SEQ_CREATES {
        format!("{ITEMS}seq-{i:06}")
    } else {
        format!("{ITEMS}par-{i:06}")
    }
}

/// A cheap deterministic pseudo-random sequence (for picking keys to read).
fn lcg(state: &mut u64) -> usize {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 33) as usize
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

/// Runs the workload; with `commits` (sqlite), also returns creates per transaction in the
/// concurrent phase.
async fn run_suite(
    name: &str,
    store: Arc<dyn Store>,
    commits: Option<&(dyn Fn() -> u64 + Sync)>,
) -> (Results, Option<f64>) {
    let value = Bytes::from(vec![b'x'; VALUE_SIZE]);
    let mut out = Vec::new();
    eprintln!("[{name}] warming up");
    for i in 0..20 {
        let k = format!("/registry/bench/warmup/{i}");
        store
            .create(&k, value.clone())
            .await
            .expect("warm-up create");
        store.get(&k).await.expect("warm-up get");
    }

    // 1. Sequential creates.
    let start = Instant::now();
    for i in 0..SEQ_CREATES {
        store.create(&key(i), value.clone()).await.expect("create");
    }
    let d = start.elapsed();
    eprintln!("[{name}] {SEQ_CREATES} sequential creates in {d:?}");
    out.push(per_sec(SEQ_CREATES, d));

    // 2. Concurrent creates.
    let commits_before = commits.map(|c| c());
    let mut per_commit = None;
    let start = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let value = value.clone();
            tokio::spawn(async move {
                let mut i = SEQ_CREATES + w;
                while i < SEQ_CREATES + PAR_CREATES {
                    store.create(&key(i), value.clone()).await.expect("create");
                    i += WRITERS;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer task");
    }
    let d = start.elapsed();
    eprintln!("[{name}] {PAR_CREATES} creates from {WRITERS} tasks in {d:?}");
    if let (Some(before), Some(c)) = (commits_before, commits) {
        let n = c() - before;
        let per = PAR_CREATES as f64 / n as f64;
        eprintln!("[{name}] group commit: {n} transactions for {PAR_CREATES} creates ({per:.1} per fsync)");
        per_commit = Some(per);
    }
    out.push(per_sec(PAR_CREATES, d));
    let total = SEQ_CREATES + PAR_CREATES;

    // 3. Point reads.
    let mut rng = 42u64;
    let start = Instant::now();
    for _ in 0..SEQ_READS {
        let k = key(lcg(&mut rng) % total);
        assert!(store.get(&k).await.expect("get").is_some());
    }
    let d = start.elapsed();
    eprintln!("[{name}] {SEQ_READS} sequential gets in {d:?}");
    out.push(per_sec(SEQ_READS, d));

    let start = Instant::now();
    let tasks: Vec<_> = (0..READERS)
        .map(|r| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut rng = 1000 + r as u64;
                for _ in 0..PAR_READS / READERS {
                    let k = key(lcg(&mut rng) % total);
                    assert!(store.get(&k).await.expect("get").is_some());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("reader task");
    }
    let d = start.elapsed();
    eprintln!("[{name}] {PAR_READS} gets from {READERS} tasks in {d:?}");
    out.push(per_sec(PAR_READS, d));

    // 4. Full list of the prefix.
    let req = ListRequest {
        prefix: ITEMS.to_string(),
        ..Default::default()
    };
    let mut times = Vec::new();
    for run in 0..=LIST_RUNS {
        let start = Instant::now();
        let resp = store.list(&req).await.expect("list");
        let d = start.elapsed();
        assert_eq!(resp.kvs.len(), total);
        assert!(!resp.more);
        if run > 0 {
            times.push(ms(d));
        }
    }
    times.sort_by(f64::total_cmp);
    eprintln!("[{name}] list of {total} keys: {times:?} ms");
    out.push(times[times.len() / 2]);

    // 5. Watch delivery with many watchers on one prefix.
    out.extend(watch_latency(name, &store, &value).await);
    (out, per_commit)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Per row, the median over rounds.
fn medians(rounds: &[Results]) -> Results {
    (0..ROWS.len())
        .map(|i| median(rounds.iter().map(|r| r[i]).collect()))
        .collect()
}

/// [start ms, p50 from issue, p99 from issue, p50 from ack, p99 from ack]
async fn watch_latency(name: &str, store: &Arc<dyn Store>, value: &Bytes) -> Vec<f64> {
    let start = Instant::now();
    let streams = futures::stream::iter(0..WATCHERS)
        .map(|_| {
            let store = store.clone();
            async move { store.watch(WATCHED, 0).await.expect("watch") }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let setup = start.elapsed();
    eprintln!("[{name}] {WATCHERS} watches started in {setup:?}");

    let watchers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut seen = Vec::with_capacity(WATCH_WRITES);
                while seen.len() < WATCH_WRITES {
                    match stream.next().await {
                        Some(Ok(ev)) => seen.push((ev.revision(), Instant::now())),
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Err("stream ended".to_string()),
                    }
                }
                Ok(seen)
            })
        })
        .collect();

    // revision -> (issued, acknowledged)
    let mut writes = std::collections::HashMap::new();
    for i in 0..WATCH_WRITES {
        let k = format!("{WATCHED}w-{i:04}");
        let issued = Instant::now();
        let kv = store.create(&k, value.clone()).await.expect("create");
        writes.insert(kv.mod_revision, (issued, Instant::now()));
        tokio::time::sleep(WATCH_GAP).await;
    }

    let mut from_issue = Vec::with_capacity(WATCHERS * WATCH_WRITES);
    let mut from_ack = Vec::with_capacity(WATCHERS * WATCH_WRITES);
    let mut failed = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for w in watchers {
        match tokio::time::timeout_at(deadline, w).await {
            Ok(Ok(Ok(seen))) => {
                for (rev, at) in seen {
                    let (issued, acked) = writes[&rev];
                    from_issue.push(ms(at.saturating_duration_since(issued)));
                    // The embedded backends publish to watchers before answering the
                    // writer, so this can be "negative": counted as 0.
                    from_ack.push(ms(at.saturating_duration_since(acked)));
                }
            }
            Ok(Ok(Err(e))) => {
                failed += 1;
                eprintln!("[{name}] watcher failed: {e}");
            }
            Ok(Err(e)) => panic!("watcher task panicked: {e}"),
            Err(_) => {
                failed += 1;
                eprintln!("[{name}] watcher did not receive every event within 60 s");
            }
        }
    }
    assert_eq!(failed, 0, "[{name}] {failed} of {WATCHERS} watchers failed");
    from_issue.sort_by(f64::total_cmp);
    from_ack.sort_by(f64::total_cmp);
    let r = vec![
        ms(setup),
        percentile(&from_issue, 0.50),
        percentile(&from_issue, 0.99),
        percentile(&from_ack, 0.50),
        percentile(&from_ack, 0.99),
    ];
    eprintln!(
        "[{name}] watch delivery over {} events: p50 {:.2} ms, p99 {:.2} ms from issue; \
         p50 {:.2} ms, p99 {:.2} ms from ack; max {:.2} ms from issue",
        from_issue.len(),
        r[1],
        r[2],
        r[3],
        r[4],
        from_issue.last().copied().unwrap_or(f64::NAN)
    );
    r
}

/// The disk's fsync latency right now (p50 of 200 fsyncs, each after overwriting 4 KiB of a
/// preallocated file, in `dir`): the floor under every durable write, and on a shared VM it
/// drifts, so each round records it next to its results.
fn fsync_p50(dir: &std::path::Path) -> f64 {
    use std::os::unix::fs::FileExt;
    let path = dir.join("fsync-probe");
    let file = std::fs::File::create(&path).expect("fsync probe file");
    let block = [0x5a_u8; 4096];
    for i in 0..200 {
        file.write_all_at(&block, i * 4096).expect("probe write");
    }
    file.sync_all().expect("probe fsync");
    let mut times: Vec<f64> = (0..200)
        .map(|i| {
            file.write_all_at(&block, i * 4096).expect("probe write");
            let start = Instant::now();
            file.sync_all().expect("probe fsync");
            ms(start.elapsed())
        })
        .collect();
    drop(file);
    let _ = std::fs::remove_file(&path);
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn fmt_num(v: f64) -> String {
    if v >= 1000.0 {
        // Thousands separators, no decimals.
        let s = format!("{:.0}", v);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn command_output(cmd: &std::path::Path, arg: &str) -> String {
    std::process::Command::new(cmd)
        .arg(arg)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("({e})"))
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn main() {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let etcd_version = command_output(&etcd_binary(), "--version")
        .lines()
        .next()
        .unwrap_or("unknown")
        .to_string();
    let load_before = read_trim("/proc/loadavg");
    let wall = Instant::now();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (mut memory, mut sqlite, mut etcd) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_commit = Vec::new();
    // Per round: raw fsync p50 just before the sqlite and just before the etcd suite.
    let mut fsyncs: Vec<(f64, f64)> = Vec::new();
    rt.block_on(async {
        for round in 1..=ROUNDS {
            eprintln!("=== round {round} of {ROUNDS}");
            memory.push(
                run_suite("memory", Arc::new(MemoryStore::new()), None)
                    .await
                    .0,
            );

            let dir = tempfile::tempdir().expect("temp dir");
            let before_sqlite = fsync_p50(dir.path());
            let store = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).expect("open"));
            let commits = {
                let store = store.clone();
                move || store.commits()
            };
            let (results, per) = run_suite("sqlite", store.clone(), Some(&commits)).await;
            sqlite.push(results);
            per_commit.extend(per);
            drop(commits);
            store.close();
            drop(store);

            let before_etcd = fsync_p50(dir.path());
            fsyncs.push((before_sqlite, before_etcd));
            eprintln!("raw fsync p50: {before_sqlite:.2} ms before sqlite, {before_etcd:.2} ms before etcd");
            let server = EtcdServer::start();
            let store = EtcdStore::connect(server.options())
                .await
                .unwrap_or_else(|e| panic!("connecting to etcd: {e}\n{}", server.log_tail()));
            etcd.push(run_suite("etcd", Arc::new(store), None).await.0);
            drop(server);
        }
    });
    let load_after = read_trim("/proc/loadavg");

    println!(
        "Machine: {nproc} CPUs ({cpu}), kernel {}",
        read_trim("/proc/sys/kernel/osrelease")
    );
    println!("etcd: {etcd_version} (default durability: fsync per commit), data dir in {:?}, same disk as the sqlite database", std::env::temp_dir());
    println!(
        "Load average before / after: {load_before} / {load_after}; wall time {:.0?}",
        wall.elapsed()
    );
    println!(
        "Counts: {SEQ_CREATES} sequential + {PAR_CREATES} concurrent ({WRITERS} tasks) creates of \
         {VALUE_SIZE}-byte values; {SEQ_READS} sequential + {PAR_READS} {READERS}-way gets; \
         list median of {LIST_RUNS}; {WATCHERS} watchers x {WATCH_WRITES} writes {WATCH_GAP:?} apart; \
         {ROUNDS} rounds, fresh stores each round"
    );
    println!();
    println!(
        "sqlite group commit in the 16-task create phase: {:.1} creates per transaction (fsync), median",
        median(per_commit)
    );
    println!();
    let all = (memory, sqlite, etcd);
    let (memory, sqlite, etcd) = (medians(&all.0), medians(&all.1), medians(&all.2));
    println!("Median of {ROUNDS} rounds:");
    println!();
    println!("| measurement | unit | memory (reference) | sqlite | etcd | sqlite/etcd |");
    println!("|---|---|---:|---:|---:|---:|");
    for (i, (label, unit, higher_better)) in ROWS.iter().enumerate() {
        let ratio = sqlite[i] / etcd[i];
        let better = if (ratio > 1.0) == *higher_better {
            "sqlite better"
        } else {
            "etcd better"
        };
        println!(
            "| {label} | {unit} | {} | {} | {} | {:.2} ({better}) |",
            fmt_num(memory[i]),
            fmt_num(sqlite[i]),
            fmt_num(etcd[i]),
            ratio
        );
    }
    println!();
    println!("Every round (sqlite / etcd):");
    println!();
    println!(
        "| measurement | {} |",
        (1..=ROUNDS)
            .map(|r| format!("round {r}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---:|".repeat(ROUNDS));
    let cells: Vec<String> = fsyncs
        .iter()
        .map(|(a, b)| format!("{} / {}", fmt_num(*a), fmt_num(*b)))
        .collect();
    println!(
        "| raw disk fsync p50, 4 KiB overwrite, just before each suite (ms) | {} |",
        cells.join(" | ")
    );
    for (i, (label, unit, _)) in ROWS.iter().enumerate() {
        let cells: Vec<String> = (0..ROUNDS)
            .map(|r| format!("{} / {}", fmt_num(all.1[r][i]), fmt_num(all.2[r][i])))
            .collect();
        println!("| {label} ({unit}) | {} |", cells.join(" | "));
    }
}
