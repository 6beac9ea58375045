//! `skiff agent`: the node agent process (kubelet). For now only simulated nodes
//! (`--simulate N`); the containerd runtime comes later behind the same pod workers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use k8s_openapi::api::core::v1::Taint;

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// kubeconfig with the API server address and the agent's credentials.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Run N simulated nodes in this process (KWOK-like), over the simulated runtime.
    /// Pods get addresses from each node's podCIDR: beyond 256 nodes, start the server with
    /// a --cluster-cidr larger than its default /16.
    #[arg(long, value_name = "N")]
    pub simulate: Option<usize>,
    /// Simulated nodes are named <prefix>0, <prefix>1, …
    #[arg(long, default_value = "sim-")]
    pub node_name_prefix: String,
    /// CPU capacity of each node.
    #[arg(long, default_value = "8")]
    pub node_cpu: String,
    /// Memory capacity of each node.
    #[arg(long, default_value = "32Gi")]
    pub node_memory: String,
    /// Pod capacity of each node.
    #[arg(long, default_value_t = 110)]
    pub node_pods: u32,
    /// Extra labels for the nodes: key=value,...
    #[arg(long, value_parser = parse_labels, default_value = "")]
    pub node_labels: BTreeMap<String, String>,
    /// Taints for nodes at registration: key=value:Effect,...
    #[arg(long, value_parser = parse_taints, default_value = "")]
    pub register_with_taints: Taints,
    /// Seconds between renewals of each node's Lease.
    #[arg(long, default_value_t = 10.0)]
    pub lease_renew_interval: f64,
    /// Seconds between node status updates (heartbeats in the Node's conditions).
    #[arg(long, default_value_t = 60.0)]
    pub node_status_interval: f64,
}

/// A newtype so clap does not treat the list as a repeated argument.
#[derive(Clone, Debug, Default)]
pub struct Taints(pub Vec<Taint>);

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    skiff_agent::node::parse_labels(s)
}

fn parse_taints(s: &str) -> Result<Taints, String> {
    skiff_agent::node::parse_taints(s).map(Taints)
}

fn seconds(name: &str, v: f64) -> anyhow::Result<Duration> {
    if !v.is_finite() || v <= 0.0 {
        bail!("--{name} must be a positive number of seconds");
    }
    Ok(Duration::from_secs_f64(v))
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let Some(nodes) = args.simulate else {
        bail!("the containerd runtime is not built yet: run simulated nodes with --simulate N");
    };
    if nodes == 0 {
        bail!("--simulate needs at least one node");
    }
    let opts = skiff_agent::Options {
        nodes,
        node_name_prefix: args.node_name_prefix,
        cpu: args.node_cpu,
        memory: args.node_memory,
        pods: args.node_pods,
        labels: args.node_labels,
        taints: args.register_with_taints.0,
        lease_renew_interval: seconds("lease-renew-interval", args.lease_renew_interval)?,
        node_status_interval: seconds("node-status-interval", args.node_status_interval)?,
        kubelet_version: skiff_apiserver::KUBE_GIT_VERSION.to_string(),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let config = skiff_client::config_from_kubeconfig_file(&args.kubeconfig).await?;
        tracing::info!("running {nodes} simulated node(s)");
        skiff_agent::run(
            config,
            opts,
            skiff_agent::sim::SimRuntime::new(),
            shutdown_signal(),
        )
        .await?;
        tracing::info!("shut down cleanly; nodes stay registered");
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
