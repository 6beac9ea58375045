//! Skiff's node agent: the kubelet's job for one or many nodes — register the Node, keep its
//! Lease and status fresh, and run the pods bound to it through a container [`Runtime`].
//! `skiff agent --simulate N` runs N nodes in one process over the simulated runtime
//! ([`sim`], KWOK-like, for scale tests); a CRI/containerd runtime plugs into the same pod
//! workers later.
//!
//! It is an ordinary API client (kube-rs over HTTPS): it must never touch the store or depend
//! on the apiserver crate, and it must stay cheap at 5,000 nodes per process — one pod watch
//! and one node watch for all nodes, one heartbeat task, bounded API concurrency, no per-node
//! polling loops.
//!
//! Knobs tests and benchmarks use, on API objects:
//! - Node annotation `node.skiff.dev/simulate-heartbeat: "stopped"` ([`node::HEARTBEAT_ANNOTATION`]):
//!   the agent stops renewing that node's Lease and updating its status, and leaves its
//!   pods as they are in the API (no status writes, deleted pods stay Terminating), as if
//!   its kubelet hung; removing the annotation resumes all of it at once.
//! - Pod annotation `pod.skiff.dev/simulate-run-seconds` ([`sim::RUN_SECONDS`]): the pod's
//!   containers exit after that many seconds (absent: they run until the pod is deleted).
//!   `restartPolicy: Never`/`OnFailure` pods then complete (`Succeeded` when every exit code
//!   is 0, else `Failed`, except that `OnFailure` restarts failed containers); `Always`
//!   restarts them with the kubelet's crash-loop back-off (`restartCount` grows).
//! - Pod annotation `pod.skiff.dev/simulate-exit-code` ([`sim::EXIT_CODE`]): the exit code
//!   of those containers (default 0).
//!
//! Simulated nodes carry the label `node.skiff.dev/simulated=true`, a fake InternalIP
//! (10.255.x.y, unique per node of the process) and pod addresses from their
//! `spec.podCIDRs` (assigned by the node IPAM controller; pods stay Pending until then —
//! with a /24 per node, the default `--cluster-cidr` 10.42.0.0/16 of `skiff server` covers
//! 256 nodes: simulate more with a larger one, e.g. 10.0.0.0/8).
//! A node deleted from the API while the agent runs is registered again.

pub mod ipam;
pub mod node;
pub mod podworker;
pub mod runtime;
pub mod sim;
pub mod status;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;

pub use runtime::Runtime;

/// How the agent's nodes look and how often they report.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many nodes this process runs.
    pub nodes: usize,
    /// Nodes are named `<prefix><i>`, i = 0..nodes.
    pub node_name_prefix: String,
    /// Capacity (and allocatable) quantities.
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    pub ephemeral_storage: String,
    /// Extra node labels (`--node-labels`).
    pub labels: BTreeMap<String, String>,
    /// Taints set when a node is first registered (`--register-with-taints`).
    pub taints: Vec<Taint>,
    pub lease_renew_interval: Duration,
    pub node_status_interval: Duration,
    /// `nodeInfo.kubeletVersion`: the Kubernetes version the agent speaks.
    pub kubelet_version: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 1,
            node_name_prefix: "sim-".into(),
            cpu: "8".into(),
            memory: "32Gi".into(),
            pods: 110,
            ephemeral_storage: "100Gi".into(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            lease_renew_interval: Duration::from_secs(10),
            node_status_interval: Duration::from_secs(60),
            kubelet_version: "v1.33.0".into(),
        }
    }
}

/// Runs the agent's nodes over `runtime` until `shutdown` completes. Nodes stay registered
/// afterwards, as a stopped kubelet leaves its Node behind.
pub async fn run<R: Runtime>(
    config: kube::Config,
    opts: Options,
    runtime: R,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = skiff_client::identify(config, "kubelet");
    let client = kube::Client::try_from(config)?;
    let count = opts.nodes;
    let ctx = Arc::new(node::NodeCtx::new(client.clone(), opts, runtime.version()));
    let mut shutdown = std::pin::pin!(shutdown);
    let started = std::time::Instant::now();
    let (beats, beats_rx) = tokio::sync::mpsc::unbounded_channel();
    // Dropping the set at the end stops every task.
    let mut tasks = tokio::task::JoinSet::new();
    let c = ctx.clone();
    tasks.spawn(async move { c.heartbeats(beats_rx).await });
    let c = ctx.clone();
    let now = beats.clone();
    tasks.spawn(async move { c.watch_nodes(now).await });
    let pods = Arc::new(podworker::Ctx::new(client, ctx.clone(), Arc::new(runtime)));
    tasks.spawn(podworker::run(pods));
    tokio::select! {
        _ = ctx.register_all(beats) => {
            tracing::info!("registered {count} node(s) in {:.1?}", started.elapsed());
            shutdown.await;
        }
        _ = &mut shutdown => {}
    }
    tasks.abort_all();
    Ok(())
}
