//! `skiff-load scheduler`: scheduling throughput like upstream's scheduler_perf
//! SchedulingBasic. Node objects with capacity are created directly through the API (no
//! kubelets), then pods; a watch on the pods counts bindings. Reported: pods/s from the
//! first pod create to the last pod seen bound, and the server's resident memory (the
//! scheduler runs inside `skiff server`, so this is the whole process).

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::BodyExt;

use super::{concurrent, create_namespace, ms, Client, Server};

#[derive(clap::Args, Debug)]
pub struct SchedulerArgs {
    /// Node objects created before the pods.
    #[arg(long, default_value_t = 5000)]
    pub nodes: usize,
    /// Pods created and scheduled.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Concurrent create requests (one HTTP/2 connection).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Give the pods this `spec.schedulerName`: anything but `default-scheduler` measures
    /// pod creation alone (the baseline the scheduler competes with for the API server).
    #[arg(long, default_value = "default-scheduler")]
    pub scheduler_name: String,
}

/// scheduler_perf's node-default.yaml: 4 cpu, 32Gi, 110 pods.
fn node(i: usize) -> Bytes {
    let name = format!("node-{i}");
    let n = serde_json::json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
            "topology.kubernetes.io/zone": format!("zone-{}", i % 10)}}});
    Bytes::from(n.to_string())
}

fn node_status() -> Bytes {
    let res = serde_json::json!({"cpu": "4", "memory": "32Gi", "pods": "110"});
    let s = serde_json::json!({"status": {"capacity": res, "allocatable": res,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}});
    Bytes::from(s.to_string())
}

/// scheduler_perf's pod-default.yaml: one pause container requesting 100m and 500Mi.
fn pod(i: usize, scheduler: &str) -> Bytes {
    let p = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i}"), "labels": {"app": "bench"}},
        "spec": {"schedulerName": scheduler, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}});
    Bytes::from(p.to_string())
}

pub async fn run(skiff: &Path, datastore: &str, args: &SchedulerArgs) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("skiff-load").tempdir()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "skiff-load scheduler: {} ({cores} cores), datastore {datastore}, {} nodes, {} pods",
        skiff.display(),
        args.nodes,
        args.pods
    );
    let (srv, _) = Server::start(skiff, tmp.path(), datastore).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = srv.rss_mib();
    let client = Client::new(&srv)?;
    let mut conn = client.connect().await?;
    create_namespace(&mut conn, "bench").await?;

    let started = Instant::now();
    let (rate, _) = concurrent(&conn, args.concurrency, args.nodes, |i| {
        ("POST", "/api/v1/nodes".to_string(), node(i))
    })
    .await
    .context("creating nodes")?;
    let mut patch = conn.clone();
    patch.content_type = "application/merge-patch+json";
    concurrent(&patch, args.concurrency, args.nodes, |i| {
        (
            "PATCH",
            format!("/api/v1/nodes/node-{i}/status"),
            node_status(),
        )
    })
    .await
    .context("setting node status")?;
    eprintln!(
        "{} nodes with status in {:.1} s ({rate:.0} creates/s)",
        args.nodes,
        started.elapsed().as_secs_f64()
    );
    // Let the scheduler's node watch catch up before the clock starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_nodes = srv.rss_mib();

    // Count bindings from a watch of the namespace's pods.
    let total = args.pods;
    let mut wconn = client.connect().await?;
    let resp = wconn
        .send
        .send_request(wconn.request(
            "GET",
            "/api/v1/namespaces/bench/pods?watch=1&allowWatchBookmarks=false",
            Bytes::new(),
        ))
        .await?;
    if resp.status() != 200 {
        bail!("watching pods: {}", resp.status());
    }
    let watcher = tokio::spawn(async move {
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        let mut bound = HashSet::new();
        let mut first: Option<Instant> = None;
        while bound.len() < total {
            let Some(frame) = body.frame().await else {
                bail!("the pod watch ended after {} bindings", bound.len());
            };
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                // Cheap pre-check: only events carrying a nodeName need parsing.
                if !line.windows(11).any(|w| w == b"\"nodeName\":") {
                    continue;
                }
                let ev: serde_json::Value = serde_json::from_slice(&line)?;
                if ev["object"]["spec"]["nodeName"].is_string() {
                    if let Some(name) = ev["object"]["metadata"]["name"].as_str() {
                        if bound.insert(name.to_string()) && first.is_none() {
                            first = Some(Instant::now());
                        }
                    }
                }
            }
        }
        Ok::<_, anyhow::Error>((Instant::now(), first))
    });

    let t0 = Instant::now();
    let scheduler = args.scheduler_name.clone();
    let (create_rate, _) = concurrent(&conn, args.concurrency, total, move |i| {
        (
            "POST",
            "/api/v1/namespaces/bench/pods".to_string(),
            pod(i, &scheduler),
        )
    })
    .await
    .context("creating pods")?;
    let created = t0.elapsed();
    if args.scheduler_name != "default-scheduler" {
        println!(
            "{total} pods for {} created in {:.1} s ({create_rate:.0}/s); RSS {:.0} MiB",
            args.scheduler_name,
            created.as_secs_f64(),
            srv.rss_mib()
        );
        watcher.abort();
        srv.stop()?;
        return Ok(());
    }
    let mut peak = srv.rss_mib();
    let watcher = async {
        let mut watcher = watcher;
        loop {
            tokio::select! {
                r = &mut watcher => return r,
                _ = tokio::time::sleep(Duration::from_millis(200)) => peak = peak.max(srv.rss_mib()),
            }
        }
    };
    let (done, first) = tokio::time::timeout(Duration::from_secs(600), watcher)
        .await
        .context("not every pod was bound within 10 minutes")???;
    let elapsed = done - t0;
    let rss_after = srv.rss_mib();
    let first_ms = first.map(|f| ms(f - t0)).unwrap_or(f64::NAN);
    println!("| measurement | value |");
    println!("| --- | --- |");
    println!("| nodes / pods | {} / {} |", args.nodes, total);
    println!(
        "| pod creates ({} streams) | {:.1} s ({create_rate:.0}/s) |",
        args.concurrency,
        created.as_secs_f64()
    );
    println!("| first pod bound after | {first_ms:.0} ms |");
    println!(
        "| **scheduled pods/s, first create → last bound** | **{:.0}** ({:.2} s) |",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!("| server RSS idle / with nodes / peak while scheduling / after | {idle_rss:.0} / {rss_nodes:.0} / {peak:.0} / {rss_after:.0} MiB |");
    println!(
        "| server peak RSS (VmHWM) | {:.0} MiB |",
        srv.peak_rss_mib()
    );
    srv.stop()?;
    Ok(())
}
