//! `skiff-load`: starts a real `skiff server` process on a free loopback port with a
//! temporary data directory and measures what `docs/benchmarks.md` reports: start to
//! `/readyz` (empty and with objects stored), resident memory, create and get throughput
//! over one HTTP/2 connection with concurrent streams, list time and watch delivery
//! latency.
//!
//! `skiff-load scheduler` measures scheduling throughput instead (see [`scheduler`]).
//!
//! It is a measuring tool, not a test: it asserts nothing about timings and is not run by
//! the test suite. It talks to the server only over HTTPS with the admin client
//! certificate, like any other client; it must not link the server's crates (only
//! `skiff-pki`, for the TLS client configuration).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

mod deployment;
mod scheduler;

#[derive(Parser, Debug)]
#[command(name = "skiff-load", about = "Load and measure a real `skiff server`")]
struct Args {
    /// The skiff binary (default: `skiff` next to this binary, else target/release/skiff).
    #[arg(long)]
    skiff: Option<PathBuf>,
    /// Datastore passed to `skiff server`.
    #[arg(long, default_value = "sqlite")]
    datastore: String,
    /// ConfigMaps created (half of them in the namespace that is listed).
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Gets issued for the gets/s measurement.
    #[arg(long, default_value_t = 10_000)]
    gets: usize,
    /// Concurrent HTTP/2 streams on one connection for creates and gets.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Watchers, each on its own connection.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Writes observed by the watchers.
    #[arg(long, default_value_t = 200)]
    watch_writes: usize,
    /// Times each start-up is measured (the median is reported).
    #[arg(long, default_value_t = 3)]
    starts: usize,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(clap::Subcommand, Debug)]
enum Mode {
    /// Scheduling throughput: N nodes, then M pods, timed to the last binding.
    Scheduler(scheduler::SchedulerArgs),
    /// A Deployment of N replicas on simulated nodes, timed to every replica available.
    Deployment(deployment::DeploymentArgs),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let skiff = match &args.skiff {
        Some(p) => p.clone(),
        None => {
            let beside = std::env::current_exe()?.with_file_name("skiff");
            if beside.exists() {
                beside
            } else {
                PathBuf::from("target/release/skiff")
            }
        }
    };
    if !skiff.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p skiff` or pass --skiff",
            skiff.display()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match &args.mode {
        Some(Mode::Scheduler(s)) => rt.block_on(scheduler::run(&skiff, &args.datastore, s)),
        Some(Mode::Deployment(d)) => rt.block_on(deployment::run(&skiff, &args.datastore, d)),
        None => rt.block_on(run(&args, &skiff)),
    }
}

/// A running `skiff server`.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    /// Starts the server and returns it with the time from spawn to the first `/readyz` ok.
    async fn start(
        skiff: &Path,
        dir: &Path,
        datastore: &str,
    ) -> anyhow::Result<(Server, Duration)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))?;
        let started = Instant::now();
        let child = Command::new(skiff)
            .arg("server")
            .arg("--data-dir")
            .arg(dir)
            .args(["--bind-address", "127.0.0.1"])
            .args(["--secure-port", &port.to_string()])
            .args(["--datastore", datastore])
            .args(["--shutdown-delay", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", skiff.display()))?;
        let mut srv = Server {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        loop {
            if let Some(status) = srv.child.try_wait()? {
                bail!(
                    "skiff server exited with {status}; log:\n{}",
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                );
            }
            if let Ok(client) = Client::new(&srv) {
                if let Ok(mut conn) = client.connect().await {
                    if let Ok((200, _)) = conn.send("GET", "/readyz", Bytes::new()).await {
                        return Ok((srv, started.elapsed()));
                    }
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("skiff server not ready after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn rss_mib(&self) -> f64 {
        proc_status_kib(self.child.id(), "VmRSS:") / 1024.0
    }

    fn peak_rss_mib(&self) -> f64 {
        proc_status_kib(self.child.id(), "VmHWM:") / 1024.0
    }

    /// SIGTERM and wait for the exit.
    fn stop(mut self) -> anyhow::Result<()> {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?
            .success();
        if !ok {
            bail!("could not signal the server");
        }
        let status = self.child.wait()?;
        if !status.success() {
            bail!("skiff server exited with {status}");
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn proc_status_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// HTTPS with the admin client certificate; HTTP/2 only.
#[derive(Clone)]
struct Client {
    connector: TlsConnector,
    port: u16,
}

#[derive(Clone)]
struct Conn {
    send: SendRequest<Full<Bytes>>,
    authority: String,
    /// Media type of request bodies (JSON unless a protobuf run asks otherwise).
    content_type: &'static str,
}

impl Client {
    fn new(srv: &Server) -> anyhow::Result<Client> {
        let pki = srv.dir.join("pki");
        let read = |f: &str| std::fs::read_to_string(pki.join(f));
        let (ca, cert, key) = (read("ca.crt")?, read("admin.crt")?, read("admin.key")?);
        let mut config = skiff_pki::tls::client_config(&ca, Some((&cert, &key)))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Client {
            connector: TlsConnector::from(Arc::new(config)),
            port: srv.port,
        })
    }

    async fn connect(&self) -> anyhow::Result<Conn> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        tcp.set_nodelay(true)?;
        let tls = self
            .connector
            .connect(ServerName::try_from("127.0.0.1")?, tcp)
            .await?;
        // Large windows, as h2load uses, so flow control does not throttle big lists.
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_stream_window_size(16 << 20)
            .initial_connection_window_size(64 << 20)
            .max_frame_size(1 << 20)
            .handshake(TokioIo::new(tls))
            .await?;
        tokio::spawn(conn);
        Ok(Conn {
            send,
            authority: format!("127.0.0.1:{}", self.port),
            content_type: "application/json",
        })
    }
}

impl Conn {
    fn request(&self, method: &str, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(format!("https://{}{path}", self.authority))
            .header("content-type", self.content_type)
            .header("accept", "application/json")
            .body(Full::new(body))
            .expect("valid request")
    }

    /// One request; the status and the whole response body.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<(u16, Bytes)> {
        let resp = self
            .send
            .send_request(self.request(method, path, body))
            .await?;
        let code = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((code, body))
    }
}

fn configmap(name: &str, extra: Option<(&str, String)>) -> Bytes {
    let mut data = serde_json::Map::new();
    for k in 0..10 {
        data.insert(
            format!("key-{k}"),
            format!("value-{k}-{name}-0123456789abcdef0123456789abcdef").into(),
        );
    }
    if let Some((k, v)) = extra {
        data.insert(k.into(), v.into());
    }
    let cm = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "load", "tier": "bench"}},
        "data": data,
    });
    Bytes::from(serde_json::to_vec(&cm).expect("JSON"))
}

/// The same ConfigMap as a Kubernetes protobuf body (what kubectl 1.32+ and client-go send).
fn configmap_protobuf(name: &str) -> Bytes {
    let json: serde_json::Value = serde_json::from_slice(&configmap(name, None)).expect("JSON");
    Bytes::from(skiff_proto::encode(&json).expect("ConfigMaps encode"))
}

/// Time from creating a CRD to the first successful list of its resource, `n` times.
async fn crd_to_served(conn: &mut Conn, n: usize) -> anyhow::Result<Samples> {
    let mut samples = Vec::new();
    for i in 0..n {
        let plural = format!("widgets{i}");
        let crd = serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.bench.example.com")},
            "spec": {"group": "bench.example.com", "scope": "Namespaced",
                "names": {"plural": plural, "singular": format!("widget{i}"), "kind": format!("Widget{i}")},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
        });
        let started = Instant::now();
        let (code, body) = conn
            .send(
                "POST",
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                Bytes::from(serde_json::to_vec(&crd)?),
            )
            .await?;
        if code != 201 {
            bail!("creating a CRD: {code} {}", String::from_utf8_lossy(&body));
        }
        let path = format!("/apis/bench.example.com/v1/namespaces/load-a/{plural}");
        while conn.send("GET", &path, Bytes::new()).await?.0 != 200 {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("{plural} was not served 30 s after its CRD was created");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(started.elapsed());
    }
    Ok(Samples::new(samples))
}

/// Sorted samples.
struct Samples(Vec<Duration>);

impl Samples {
    fn new(mut v: Vec<Duration>) -> Samples {
        v.sort();
        Samples(v)
    }
    fn pct(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.0.len() as f64 * p).ceil() as usize).clamp(1, self.0.len()) - 1;
        self.0[i]
    }
    fn median(&self) -> Duration {
        self.pct(0.5)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `total` requests from `concurrency` tasks sharing one connection; returns the
/// rate and per-request latencies. Any non-2xx answer is an error.
async fn concurrent<F>(
    conn: &Conn,
    concurrency: usize,
    total: usize,
    make: F,
) -> anyhow::Result<(f64, Samples)>
where
    F: Fn(usize) -> (&'static str, String, Bytes) + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, make, mut conn) = (next.clone(), make.clone(), conn.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let (method, path, body) = make(i);
                let t = Instant::now();
                let (code, resp) = conn.send(method, &path, body).await?;
                lat.push(t.elapsed());
                if !(200..300).contains(&code) {
                    bail!("{method} {path}: {code} {}", String::from_utf8_lossy(&resp));
                }
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed();
    Ok((total as f64 / elapsed.as_secs_f64(), Samples::new(all)))
}

async fn create_namespace(conn: &mut Conn, name: &str) -> anyhow::Result<()> {
    let body =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let (code, resp) = conn
        .send("POST", "/api/v1/namespaces", Bytes::from(body.to_string()))
        .await?;
    if code != 201 {
        bail!(
            "creating namespace {name}: {code} {}",
            String::from_utf8_lossy(&resp)
        );
    }
    Ok(())
}

/// Watch delivery latency: `watchers` watches (one connection each) on an empty
/// namespace, then `writes` paced creates; each event's latency is receipt time minus the
/// time its create was sent (carried in the object).
async fn watch_latency(client: &Client, watchers: usize, writes: usize) -> anyhow::Result<Samples> {
    let mut conn = client.connect().await?;
    create_namespace(&mut conn, "watched").await?;
    let base = Instant::now();
    let path = "/api/v1/namespaces/watched/configmaps?watch=1&resourceVersion=0";
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(watchers);
    for _ in 0..watchers {
        let mut wconn = client.connect().await?;
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let resp = wconn
                .send
                .send_request(wconn.request("GET", path, Bytes::new()))
                .await?;
            if resp.status() != 200 {
                bail!("watch: {}", resp.status());
            }
            ready.send(()).await?;
            drop(ready);
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            let mut lat = Vec::with_capacity(writes);
            while lat.len() < writes {
                let Some(frame) = body.frame().await else {
                    bail!("watch ended after {} events", lat.len())
                };
                let received = base.elapsed();
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let ev: serde_json::Value = serde_json::from_slice(&line)?;
                    if let Some(sent) = ev["object"]["data"]["sent-ns"]
                        .as_str()
                        .and_then(|s| s.parse::<u64>().ok())
                    {
                        lat.push(received.saturating_sub(Duration::from_nanos(sent)));
                    }
                }
            }
            Ok(lat)
        }));
    }
    drop(ready_tx);
    for _ in 0..watchers {
        ready_rx.recv().await.context("a watcher failed to start")?;
    }
    for i in 0..writes {
        let sent = base.elapsed().as_nanos().to_string();
        let body = configmap(&format!("w-{i}"), Some(("sent-ns", sent)));
        let (code, resp) = conn
            .send("POST", "/api/v1/namespaces/watched/configmaps", body)
            .await?;
        if code != 201 {
            bail!("watched create: {code} {}", String::from_utf8_lossy(&resp));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut all = Vec::with_capacity(watchers * writes);
    for t in tasks {
        all.extend(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .context("watchers did not receive every event")???,
        );
    }
    Ok(Samples::new(all))
}

struct Row {
    what: String,
    value: String,
    reference: &'static str,
    ratio: String,
}

async fn run(args: &Args, skiff: &Path) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("skiff-load").tempdir()?;
    let mut rows = Vec::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "skiff-load: {} ({} cores), datastore {}",
        skiff.display(),
        cores,
        args.datastore
    );

    // Start-up on an empty data directory (certificates are generated on first start).
    let mut empty_starts = Vec::new();
    for i in 0..args.starts.max(1) {
        let dir = tmp.path().join(format!("empty-{i}"));
        std::fs::create_dir_all(&dir)?;
        let (srv, took) = Server::start(skiff, &dir, &args.datastore).await?;
        empty_starts.push(took);
        srv.stop()?;
    }
    let empty_start = Samples::new(empty_starts);
    eprintln!("ready (empty): {:.0} ms", ms(empty_start.median()));

    let dir = tmp.path().join("main");
    std::fs::create_dir_all(&dir)?;
    let (srv, _) = Server::start(skiff, &dir, &args.datastore).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = srv.rss_mib();
    let client = Client::new(&srv)?;
    let mut conn = client.connect().await?;
    create_namespace(&mut conn, "load-a").await?;
    create_namespace(&mut conn, "load-b").await?;

    let ns_of = |i: usize| ["load-a", "load-b"][i % 2];
    let (creates, create_lat) = concurrent(&conn, args.concurrency, args.objects, move |i| {
        let ns = ns_of(i);
        (
            "POST",
            format!("/api/v1/namespaces/{ns}/configmaps"),
            configmap(&format!("cm-{i}"), None),
        )
    })
    .await?;
    eprintln!("creates: {creates:.0}/s");
    let rss_objects = srv.rss_mib();

    let objects = args.objects;
    let (gets, get_lat) = concurrent(&conn, args.concurrency, args.gets, move |i| {
        // A fixed stride through the objects so every get hits a different one.
        let n = (i * 7919) % objects;
        (
            "GET",
            format!("/api/v1/namespaces/{}/configmaps/cm-{n}", ns_of(n)),
            Bytes::new(),
        )
    })
    .await?;
    eprintln!("gets: {gets:.0}/s");

    let rss_gets = srv.rss_mib();

    let listed_count = objects.div_ceil(2);
    let mut list_times = Vec::new();
    let mut list_heads = Vec::new();
    let mut list_bytes = 0;
    let mut list_items = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let resp = conn
            .send
            .send_request(conn.request("GET", "/api/v1/namespaces/load-a/configmaps", Bytes::new()))
            .await?;
        // Response headers: the server has built the list (its body is sent in one piece).
        list_heads.push(t.elapsed());
        let code = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        list_times.push(t.elapsed());
        list_bytes = body.len();
        if code != 200 {
            bail!("list: {code}");
        }
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let items = v["items"].as_array().map_or(&[][..], Vec::as_slice);
        // The controller manager adds objects of its own (kube-root-ca.crt).
        let ours = items
            .iter()
            .filter(|i| {
                i["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("cm-"))
            })
            .count();
        if ours != listed_count {
            bail!("list returned {ours} of our ConfigMaps, expected {listed_count}");
        }
        list_items = items.len();
    }
    let list = Samples::new(list_times);
    let list_head = Samples::new(list_heads);
    eprintln!("list {listed_count}: {:.0} ms", ms(list.median()));
    let rss_lists = srv.rss_mib();

    let watch = watch_latency(&client, args.watchers, args.watch_writes).await?;
    eprintln!(
        "watch: p50 {:.1} ms, p99 {:.1} ms",
        ms(watch.pct(0.5)),
        ms(watch.pct(0.99))
    );
    drop(conn);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_loaded = srv.rss_mib();
    let peak = srv.peak_rss_mib();

    // Request body encodings, back to back on the loaded server: JSON, then protobuf.
    let mut conn = client.connect().await?;
    let batch = (objects / 2).max(1);
    let (json_creates, json_lat) = concurrent(&conn, args.concurrency, batch, move |i| {
        (
            "POST",
            format!("/api/v1/namespaces/{}/configmaps", ns_of(i)),
            configmap(&format!("json-{i}"), None),
        )
    })
    .await?;
    let pb_conn = Conn {
        content_type: "application/vnd.kubernetes.protobuf",
        ..conn.clone()
    };
    let (pb_creates, pb_lat) = concurrent(&pb_conn, args.concurrency, batch, move |i| {
        (
            "POST",
            format!("/api/v1/namespaces/{}/configmaps", ns_of(i)),
            configmap_protobuf(&format!("pb-{i}")),
        )
    })
    .await?;
    eprintln!("creates: JSON {json_creates:.0}/s, protobuf {pb_creates:.0}/s");
    let crd = crd_to_served(&mut conn, 3).await?;
    eprintln!("CRD → served: {:.0} ms", ms(crd.median()));
    drop(conn);
    srv.stop()?;

    // Start-up with the objects stored.
    let mut full_starts = Vec::new();
    let mut rss_restarted = f64::NAN;
    for _ in 0..args.starts.max(1) {
        let (srv, took) = Server::start(skiff, &dir, &args.datastore).await?;
        full_starts.push(took);
        rss_restarted = srv.rss_mib();
        srv.stop()?;
    }
    let full_start = Samples::new(full_starts);
    eprintln!(
        "ready ({objects} objects): {:.0} ms",
        ms(full_start.median())
    );

    let ratio_lower = |value: f64, reference_lo: f64, reference_hi: f64| {
        format!(
            "{:.1}–{:.1}× less",
            reference_lo / value,
            reference_hi / value
        )
    };
    let ratio_higher = |value: f64, reference_lo: f64, reference_hi: f64| {
        format!("{:.1}–{:.1}×", value / reference_hi, value / reference_lo)
    };
    rows.push(Row {
        what: "start → /readyz, empty data dir (median)".into(),
        value: format!("{:.0} ms", ms(empty_start.median())),
        reference: "2.8 s",
        ratio: format!("{:.0}× faster", 2800.0 / ms(empty_start.median())),
    });
    rows.push(Row {
        what: format!("start → /readyz, {objects} ConfigMaps stored (median)"),
        value: format!("{:.0} ms", ms(full_start.median())),
        reference: "2.8 s",
        ratio: format!("{:.0}× faster", 2800.0 / ms(full_start.median())),
    });
    rows.push(Row {
        what: "idle RSS after ready".into(),
        value: format!("{idle_rss:.1} MiB"),
        reference: "—",
        ratio: "—".into(),
    });
    rows.push(Row {
        what: format!("RSS after creating {objects} ConfigMaps"),
        value: format!("{rss_objects:.1} MiB"),
        reference: "—",
        ratio: "—".into(),
    });
    rows.push(Row {
        what: format!("RSS after {} gets", args.gets),
        value: format!("{rss_gets:.1} MiB"),
        reference: "—",
        ratio: "—".into(),
    });
    rows.push(Row {
        what: "RSS after 5 lists".into(),
        value: format!("{rss_lists:.1} MiB"),
        reference: "—",
        ratio: "—".into(),
    });
    rows.push(Row {
        what: "RSS after the watch run: the whole load (peak VmHWM in brackets)".into(),
        value: format!("{rss_loaded:.1} MiB ({peak:.1} MiB)"),
        reference: "410–490 MiB + ~100 MiB etcd",
        ratio: ratio_lower(rss_loaded, 510.0, 590.0),
    });
    rows.push(Row {
        what: format!("RSS after restart with {objects} ConfigMaps"),
        value: format!("{rss_restarted:.1} MiB"),
        reference: "—",
        ratio: "—".into(),
    });
    rows.push(Row {
        what: format!(
            "creates/s, {} streams on one HTTP/2 connection",
            args.concurrency
        ),
        value: format!(
            "{creates:.0} (p50 {:.1} ms, p99 {:.1} ms)",
            ms(create_lat.median()),
            ms(create_lat.pct(0.99))
        ),
        reference: "1,600–1,700",
        ratio: ratio_higher(creates, 1600.0, 1700.0),
    });
    rows.push(Row {
        what: format!(
            "gets/s, {} streams on one HTTP/2 connection",
            args.concurrency
        ),
        value: format!(
            "{gets:.0} (p50 {:.1} ms, p99 {:.1} ms)",
            ms(get_lat.median()),
            ms(get_lat.pct(0.99))
        ),
        reference: "3,100–3,800",
        ratio: ratio_higher(gets, 3100.0, 3800.0),
    });
    rows.push(Row {
        what: format!("list {list_items} ConfigMaps, JSON (median of 5)"),
        value: format!(
            "{:.0} ms (min {:.0}, max {:.0}; headers after {:.0} ms; {:.1} MiB)",
            ms(list.median()),
            ms(list.pct(0.0)),
            ms(list.pct(1.0)),
            ms(list_head.median()),
            list_bytes as f64 / (1024.0 * 1024.0)
        ),
        reference: "235–260 ms",
        ratio: ratio_lower(ms(list.median()), 235.0, 260.0),
    });
    rows.push(Row {
        what: format!("watch delivery latency, {} watchers", args.watchers),
        value: format!(
            "p50 {:.1} ms, p99 {:.1} ms ({} events)",
            ms(watch.pct(0.5)),
            ms(watch.pct(0.99)),
            watch.0.len()
        ),
        reference: "—",
        ratio: "—".into(),
    });

    for (what, rate, lat) in [
        ("JSON", json_creates, &json_lat),
        ("protobuf", pb_creates, &pb_lat),
    ] {
        rows.push(Row {
            what: format!("creates/s with {what} bodies, {batch} more on the loaded server"),
            value: format!(
                "{rate:.0} (p50 {:.1} ms, p99 {:.1} ms)",
                ms(lat.median()),
                ms(lat.pct(0.99))
            ),
            reference: "—",
            ratio: if what == "protobuf" {
                format!("{:.2}× JSON", pb_creates / json_creates)
            } else {
                "—".into()
            },
        });
    }
    rows.push(Row {
        what: "CRD created → its resource served (median of 3)".into(),
        value: format!(
            "{:.0} ms (max {:.0} ms)",
            ms(crd.median()),
            ms(crd.pct(1.0))
        ),
        reference: "—",
        ratio: "—".into(),
    });

    println!("| measurement | skiff | kube-apiserver v1.28.7 + etcd 3.4 | ratio |");
    println!("| --- | --- | --- | --- |");
    for r in rows {
        println!(
            "| {} | {} | {} | {} |",
            r.what, r.value, r.reference, r.ratio
        );
    }
    Ok(())
}
