//! `skiff-load deployment`: a Deployment of N replicas on simulated nodes, from the create
//! request to every replica available (Running and Ready through the agent), with the
//! memory of the control plane (API server, controller manager and scheduler share the
//! `skiff server` process) and of the agent. The baseline measured in the same run is the
//! same number of pods created directly through the API (no controllers, no scheduling,
//! never running): what the Deployment path costs on top of the bare writes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;

use super::{concurrent, create_namespace, ms, proc_status_kib, Client, Server};

#[derive(clap::Args, Debug)]
pub struct DeploymentArgs {
    /// Simulated nodes (one `skiff agent --simulate N` process).
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Replicas of the Deployment.
    #[arg(long, default_value_t = 1000)]
    pub replicas: usize,
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn deployment(replicas: usize) -> Bytes {
    let d = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "bench"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "bench"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}});
    Bytes::from(d.to_string())
}

fn bare_pod(i: usize) -> Bytes {
    let p = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("bare-{i}"), "labels": {"app": "bare"}},
        "spec": {"schedulerName": "none", "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}});
    Bytes::from(p.to_string())
}

pub async fn run(skiff: &Path, datastore: &str, args: &DeploymentArgs) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("skiff-load").tempdir()?;
    eprintln!(
        "skiff-load deployment: {}, datastore {datastore}, {} simulated nodes, {} replicas",
        skiff.display(),
        args.nodes,
        args.replicas
    );
    let (srv, _) = Server::start(skiff, tmp.path(), datastore).await?;
    let client = Client::new(&srv)?;
    let mut conn = client.connect().await?;
    let idle_rss = srv.rss_mib();

    let log = std::fs::File::create(tmp.path().join("agent.log"))?;
    let agent = Agent(
        Command::new(skiff)
            .arg("agent")
            .arg("--kubeconfig")
            .arg(tmp.path().join("admin.kubeconfig"))
            .args(["--simulate", &args.nodes.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting skiff agent")?,
    );
    // Every node registered and Ready.
    let started = Instant::now();
    loop {
        let (code, body) = conn.send("GET", "/api/v1/nodes", Bytes::new()).await?;
        if code == 200 {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            let ready = v["items"].as_array().map_or(0, |ns| {
                ns.iter()
                    .filter(|n| {
                        n["status"]["conditions"].as_array().is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c["type"] == "Ready" && c["status"] == "True")
                        })
                    })
                    .count()
            });
            if ready == args.nodes {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the simulated nodes did not all become Ready");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{} nodes Ready in {:.1} s",
        args.nodes,
        started.elapsed().as_secs_f64()
    );

    // Baseline: the same number of bare pod creates (no controller, no scheduler).
    create_namespace(&mut conn, "bare").await?;
    let t = Instant::now();
    concurrent(&conn, 16, args.replicas, |i| {
        (
            "POST",
            "/api/v1/namespaces/bare/pods".to_string(),
            bare_pod(i),
        )
    })
    .await
    .context("creating bare pods")?;
    let bare_took = t.elapsed();

    create_namespace(&mut conn, "bench").await?;
    let t = Instant::now();
    let (code, body) = conn
        .send(
            "POST",
            "/apis/apps/v1/namespaces/bench/deployments",
            deployment(args.replicas),
        )
        .await?;
    if code != 201 {
        bail!(
            "creating the deployment: {code} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let mut peak_rss: f64 = 0.0;
    loop {
        let (code, body) = conn
            .send(
                "GET",
                "/apis/apps/v1/namespaces/bench/deployments/bench",
                Bytes::new(),
            )
            .await?;
        if code == 200 {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            if v["status"]["availableReplicas"].as_u64() == Some(args.replicas as u64) {
                break;
            }
        }
        peak_rss = peak_rss.max(srv.rss_mib());
        if t.elapsed() > Duration::from_secs(900) {
            bail!("the deployment did not become available");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = t.elapsed();
    let agent_rss = proc_status_kib(agent.0.id(), "VmRSS:") / 1024.0;
    let after_rss = srv.rss_mib();
    println!("| measurement | result |");
    println!("|---|---|");
    println!(
        "| Deployment of {} replicas on {} simulated nodes, create → all available | {:.0} ms ({:.0} pods/s) |",
        args.replicas,
        args.nodes,
        ms(took),
        args.replicas as f64 / took.as_secs_f64()
    );
    println!(
        "| baseline: {} bare pod creates (16 concurrent, no controllers or scheduling) | {:.0} ms |",
        args.replicas,
        ms(bare_took)
    );
    println!(
        "| ratio (deployment path / bare creates) | {:.1}× |",
        took.as_secs_f64() / bare_took.as_secs_f64()
    );
    println!(
        "| control plane RSS (API server + controllers + scheduler): idle / peak during rollout / after | {idle_rss:.0} / {peak_rss:.0} / {after_rss:.0} MiB |"
    );
    println!(
        "| agent RSS ({} simulated nodes, {} pods) | {agent_rss:.0} MiB |",
        args.nodes, args.replicas
    );
    drop(agent);
    srv.stop()?;
    Ok(())
}
