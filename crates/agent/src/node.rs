//! The agent's nodes: registration, the node Lease heartbeat and node status, for every node
//! of the process from one scheduler task (so 5,000 nodes cost one task and a heap, and
//! their API writes are spread over the intervals with bounded concurrency).

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, ResourceExt};
use skiff_client::events::Recorder;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::ipam::{Cidr, Ipam};
use crate::Options;

/// A Node with this annotation set to `stopped` gets no Lease renewals, no status updates
/// and no pod status writes or pod deletions from its agent (as if its kubelet hung) until
/// the annotation is removed.
pub const HEARTBEAT_ANNOTATION: &str = "node.skiff.dev/simulate-heartbeat";
/// The label every simulated node carries.
pub const SIMULATED_LABEL: &str = "node.skiff.dev/simulated";
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The kubelet's default `nodeLeaseDurationSeconds`.
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// Concurrent heartbeat writes (leases and statuses) for all nodes of the process.
const HEARTBEAT_CONCURRENCY: usize = 16;
/// Concurrent registrations at start.
const REGISTER_CONCURRENCY: usize = 16;
const KUBELET_PORT: i32 = 10250;

/// One node of this process, shared by the heartbeat task, the node watch and pod workers.
pub struct SimNode {
    pub name: String,
    pub index: usize,
    pub internal_ip: IpAddr,
    pub recorder: Recorder,
    /// Pod addresses from the node's `spec.podCIDRs`.
    pub ipam: Mutex<Ipam>,
    /// The node's pod CIDRs as last seen; pod workers waiting for an address watch it.
    pub cidrs: watch::Sender<Vec<Cidr>>,
    pub heartbeat_stopped: AtomicBool,
    /// The same, for pod workers to wait on: a hung kubelet does not touch its pods either.
    pub paused: watch::Sender<bool>,
    uid: Mutex<Option<String>>,
    /// When the node's conditions last changed (they change only when someone else, e.g.
    /// the node lifecycle controller, marked the node not ready).
    since: Mutex<Timestamp>,
    ready_lost: AtomicBool,
}

impl SimNode {
    fn new(client: &Client, name: String, index: usize) -> SimNode {
        SimNode {
            recorder: Recorder::new(client.clone(), "kubelet").with_host(&name),
            internal_ip: internal_ip(index),
            name,
            index,
            ipam: Mutex::new(Ipam::default()),
            cidrs: watch::channel(Vec::new()).0,
            heartbeat_stopped: AtomicBool::new(false),
            paused: watch::channel(false).0,
            uid: Mutex::new(None),
            since: Mutex::new(Timestamp::now()),
            ready_lost: AtomicBool::new(false),
        }
    }

    /// Takes in what the API says about the node: its UID, pod CIDRs and whether its
    /// heartbeat is stopped. Returns whether the node's status should be posted now.
    pub fn observe(&self, node: &Node) -> bool {
        *self.uid.lock().unwrap() = node.metadata.uid.clone();
        let spec = node.spec.clone().unwrap_or_default();
        let cidrs: Vec<Cidr> = match spec.pod_cidrs.filter(|c| !c.is_empty()) {
            Some(list) => list.iter().filter_map(|c| Cidr::parse(c)).collect(),
            None => spec
                .pod_cidr
                .iter()
                .filter_map(|c| Cidr::parse(c))
                .collect(),
        };
        if *self.cidrs.borrow() != cidrs {
            self.ipam.lock().unwrap().set_cidrs(&cidrs);
            self.cidrs.send_replace(cidrs);
        }
        let stopped = heartbeat_stopped(node);
        let was = self.heartbeat_stopped.swap(stopped, Ordering::Relaxed);
        self.paused
            .send_if_modified(|p| std::mem::replace(p, stopped) != stopped);
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        if !ready && node.status.is_some() {
            self.ready_lost.store(true, Ordering::Relaxed);
        }
        !stopped && (was || (!ready && node.status.is_some()))
    }
}

pub fn heartbeat_stopped(node: &Node) -> bool {
    node.annotations()
        .get(HEARTBEAT_ANNOTATION)
        .is_some_and(|v| v == "stopped")
}

/// The fake InternalIP of the `index`th node of the process: 10.255.0.2, 10.255.0.3, …
pub fn internal_ip(index: usize) -> IpAddr {
    let base = u32::from(Ipv4Addr::new(10, 255, 0, 0));
    IpAddr::V4(Ipv4Addr::from(base.wrapping_add(index as u32 + 2)))
}

/// The nodes of this process.
pub struct Nodes {
    pub list: Vec<Arc<SimNode>>,
    by_name: HashMap<String, usize>,
}

impl Nodes {
    pub fn new(client: &Client, opts: &Options) -> Nodes {
        let list: Vec<Arc<SimNode>> = (0..opts.nodes)
            .map(|i| {
                Arc::new(SimNode::new(
                    client,
                    format!("{}{i}", opts.node_name_prefix),
                    i,
                ))
            })
            .collect();
        let by_name = list.iter().map(|n| (n.name.clone(), n.index)).collect();
        Nodes { list, by_name }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<SimNode>> {
        self.by_name.get(name).map(|i| &self.list[*i])
    }
}

/// `k=v,k2=v2` (the kubelet's `--node-labels`).
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("invalid label {part:?}: want key=value"))?;
        if k.is_empty() {
            return Err(format!("invalid label {part:?}: empty key"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// `key=value:Effect,key:Effect` (the kubelet's `--register-with-taints`).
pub fn parse_taints(s: &str) -> Result<Vec<Taint>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kv, effect) = part
            .rsplit_once(':')
            .ok_or_else(|| format!("invalid taint {part:?}: want key=value:Effect"))?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(format!(
                "invalid taint effect {effect:?} in {part:?}: want NoSchedule, PreferNoSchedule or NoExecute"
            ));
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (kv, None),
        };
        if key.is_empty() {
            return Err(format!("invalid taint {part:?}: empty key"));
        }
        out.push(Taint {
            key: key.into(),
            value,
            effect: effect.into(),
            time_added: None,
        });
    }
    Ok(out)
}

/// The labels the agent puts on its nodes; the user's `--node-labels` win.
pub fn node_labels(name: &str, opts: &Options) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = [
        ("beta.kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        (SIMULATED_LABEL, "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    l.extend(opts.labels.clone());
    l
}

/// The Node the agent registers (status is posted separately, through `nodes/status`).
pub fn node_object(node: &SimNode, opts: &Options) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(node.name.clone()),
            labels: Some(node_labels(&node.name, opts)),
            annotations: Some(
                [(
                    "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                    "true".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: Some(opts.taints.clone()).filter(|t| !t.is_empty()),
            ..Default::default()
        }),
        status: None,
    }
}

/// The node status the kubelet would post now.
pub fn node_status(
    node: &SimNode,
    opts: &Options,
    runtime_version: &str,
    since: Timestamp,
    now: Timestamp,
) -> NodeStatus {
    let resources: BTreeMap<String, Quantity> = [
        ("cpu", opts.cpu.clone()),
        ("memory", opts.memory.clone()),
        ("pods", opts.pods.to_string()),
        ("ephemeral-storage", opts.ephemeral_storage.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Quantity(v)))
    .collect();
    let cond = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(since)),
    };
    let id = machine_id(&node.name);
    let uuid = |h: &str| {
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    };
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![
            cond(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            cond(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            cond(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            cond(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
            ),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: node.internal_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: node.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: KUBELET_PORT }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            operating_system: "linux".into(),
            // Fixed per node: a simulated node never reboots.
            boot_id: uuid(&machine_id(&format!("{}/boot", node.name))),
            system_uuid: uuid(&id),
            machine_id: id.clone(),
            container_runtime_version: runtime_version.into(),
            kernel_version: "simulated".into(),
            os_image: "Skiff simulated node".into(),
            kubelet_version: opts.kubelet_version.clone(),
            kube_proxy_version: String::new(),
            swap: None,
        }),
        ..Default::default()
    }
}

/// A stable 32-hex-digit machine id per node name (like /etc/machine-id).
fn machine_id(name: &str) -> String {
    let h = |seed: u64| {
        let mut x = 0xcbf29ce484222325u64 ^ seed;
        for b in name.bytes() {
            x ^= u64::from(b);
            x = x.wrapping_mul(0x100000001b3);
        }
        x
    };
    format!("{:016x}{:016x}", h(1), h(2))
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// What the heartbeat and registration code needs.
pub struct NodeCtx {
    pub client: Client,
    pub opts: Options,
    pub nodes: Nodes,
    pub runtime_version: String,
    /// How far (ms) the heartbeat task is behind schedule: registration waits while it is
    /// far behind, since keeping registered nodes alive matters more than adding nodes.
    lag_ms: AtomicU64,
    lag_warned: Mutex<Option<std::time::Instant>>,
}

impl NodeCtx {
    pub fn new(client: Client, opts: Options, runtime_version: String) -> NodeCtx {
        NodeCtx {
            nodes: Nodes::new(&client, &opts),
            client,
            opts,
            runtime_version,
            lag_ms: AtomicU64::new(0),
            lag_warned: Mutex::new(None),
        }
    }

    /// Creates the node (or adopts the existing one: our labels are re-applied, taints
    /// are left as they are, as the kubelet does), then posts its status and Lease.
    pub async fn register(&self, node: &SimNode) -> anyhow::Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut obj = node_object(node, &self.opts);
        let now = Timestamp::now();
        // The kubelet registers with its status in the create body (upstream keeps a
        // Node's status on create).
        obj.status = Some(node_status(
            node,
            &self.opts,
            &self.runtime_version,
            now,
            now,
        ));
        let mut status_posted = false;
        match api.create(&PostParams::default(), &obj).await {
            Ok(created) => {
                *node.since.lock().unwrap() = now;
                status_posted = created
                    .status
                    .as_ref()
                    .is_some_and(|s| s.conditions.is_some());
                node.observe(&created);
                node.ready_lost.store(false, Ordering::Relaxed);
            }
            Err(e) if is_status(&e, 409) => {
                let patch = serde_json::json!({"metadata": {
                    "labels": obj.metadata.labels,
                    "annotations": obj.metadata.annotations,
                }});
                let existing = api
                    .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                if let Some(t) = existing
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
                    .and_then(|c| c.last_transition_time.clone())
                {
                    *node.since.lock().unwrap() = t.0;
                }
                node.observe(&existing);
                node.ready_lost.store(false, Ordering::Relaxed);
            }
            Err(e) => return Err(e.into()),
        }
        if !node.heartbeat_stopped.load(Ordering::Relaxed) {
            if !status_posted {
                self.post_status(node).await?;
            }
            self.renew_lease_create_first(node).await?;
        }
        Ok(())
    }

    pub async fn post_status(&self, node: &SimNode) -> anyhow::Result<()> {
        let now = Timestamp::now();
        if node.ready_lost.swap(false, Ordering::Relaxed) {
            *node.since.lock().unwrap() = now;
        }
        let since = *node.since.lock().unwrap();
        let status = node_status(node, &self.opts, &self.runtime_version, since, now);
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = serde_json::json!({ "status": status });
        match api
            .patch_status(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(n) => {
                node.observe(&n);
                Ok(())
            }
            Err(e) if is_status(&e, 404) => {
                // Deleted from the API while we run: the agent keeps its N nodes, so it
                // registers the node again.
                tracing::warn!(node = %node.name, "node was deleted; registering it again");
                Box::pin(self.register(node)).await
            }
            Err(e) => Err(e.into()),
        }
    }

    fn lease_spec(node: &SimNode) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(node.name.clone()),
            lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..Default::default()
        }
    }

    /// Renews the node's Lease (one merge patch), creating it if it is missing.
    pub async fn renew_lease(&self, node: &SimNode) -> anyhow::Result<()> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let patch = serde_json::json!({ "spec": Self::lease_spec(node) });
        match api
            .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => match self.create_lease(node).await {
                Err(e) if is_status(&e, 409) => Ok(()),
                r => Ok(r?),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// At registration the Lease usually does not exist yet: create first, renew if it does.
    async fn renew_lease_create_first(&self, node: &SimNode) -> anyhow::Result<()> {
        match self.create_lease(node).await {
            Err(e) if is_status(&e, 409) => self.renew_lease(node).await,
            r => Ok(r?),
        }
    }

    async fn create_lease(&self, node: &SimNode) -> Result<(), kube::Error> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let uid = node.uid.lock().unwrap().clone();
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(node.name.clone()),
                namespace: Some(LEASE_NAMESPACE.into()),
                // Owned by the Node, so the garbage collector removes it with the node.
                owner_references: uid.map(|uid| {
                    vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: node.name.clone(),
                        uid,
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            spec: Some(Self::lease_spec(node)),
        };
        api.create(&PostParams::default(), &lease).await.map(|_| ())
    }

    /// Registers every node, `REGISTER_CONCURRENCY` at a time, retrying failures until
    /// they succeed (the API server may still be starting), and hands each to the
    /// heartbeat task as soon as it is registered: with thousands of nodes, registration
    /// outlasts a Lease.
    pub async fn register_all(&self, beats: mpsc::UnboundedSender<Beat>) {
        let beats = &beats;
        futures::stream::iter(self.nodes.list.iter())
            .for_each_concurrent(REGISTER_CONCURRENCY, |n| async move {
                self.wait_for_heartbeats().await;
                let mut delay = Duration::from_millis(200);
                loop {
                    match self.register(n).await {
                        Ok(()) => {
                            let _ = beats.send(Beat::Registered(n.index));
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(node = %n.name, "registering: {e:#}; retrying");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(10));
                        }
                    }
                }
            })
            .await;
    }

    /// Waits while heartbeats lag by more than a quarter of the Lease renewal interval
    /// (at least 2s): an API server too slow for more nodes gets no more.
    async fn wait_for_heartbeats(&self) {
        let limit = (self.opts.lease_renew_interval / 4).max(Duration::from_secs(2));
        loop {
            let lag = Duration::from_millis(self.lag_ms.load(Ordering::Relaxed));
            if lag <= limit {
                return;
            }
            {
                let mut warned = self.lag_warned.lock().unwrap();
                if warned.is_none_or(|w| w.elapsed() > Duration::from_secs(30)) {
                    tracing::warn!(
                        "node heartbeats are {lag:.1?} behind schedule; registering more nodes waits"
                    );
                    *warned = Some(std::time::Instant::now());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Watches Nodes (one watch for the whole process) and takes in changes to ours;
    /// asks the heartbeat task for an immediate status post when one is due out of turn.
    pub async fn watch_nodes(&self, now: mpsc::UnboundedSender<Beat>) {
        let api: Api<Node> = Api::all(self.client.clone());
        let stream =
            skiff_client::informer::watch(api, watcher::Config::default()).default_backoff();
        skiff_client::informer::for_each_event("nodes", stream, |ev| match ev {
            watcher::Event::Apply(n) | watcher::Event::InitApply(n) => {
                if let Some(node) = self.nodes.get(&n.name_any()) {
                    if node.observe(&n) {
                        let _ = now.send(Beat::Now(node.index));
                    }
                }
            }
            watcher::Event::Delete(n) => {
                if let Some(node) = self.nodes.get(&n.name_any()) {
                    if !node.heartbeat_stopped.load(Ordering::Relaxed) {
                        let _ = now.send(Beat::Now(node.index));
                    }
                }
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        })
        .await
    }

    /// Renews every registered node's Lease every `lease_renew_interval` and posts its
    /// status every `node_status_interval`, each node in its own slot of the interval (so
    /// writes are spread evenly, not bursts), at most `HEARTBEAT_CONCURRENCY` at a time.
    /// Nodes whose heartbeat is stopped are skipped.
    pub async fn heartbeats(&self, mut beats: mpsc::UnboundedReceiver<Beat>) {
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        enum Kind {
            Lease,
            Status,
        }
        let n = self.nodes.list.len().max(1);
        let intervals = [
            self.opts
                .lease_renew_interval
                .max(Duration::from_millis(100)),
            self.opts
                .node_status_interval
                .max(Duration::from_millis(100)),
        ];
        let start = Instant::now();
        // due[kind][node]: the one live schedule entry; heap entries that disagree are stale.
        let mut due: [Vec<Option<Instant>>; 2] = [vec![None; n], vec![None; n]];
        let mut busy: [Vec<bool>; 2] = [vec![false; n], vec![false; n]];
        let mut again = busy.clone();
        let mut heap: BinaryHeap<std::cmp::Reverse<(Instant, Kind, usize)>> = BinaryHeap::new();
        let mut inflight = FuturesUnordered::new();
        loop {
            let t = Instant::now();
            let lag = heap
                .peek()
                .map_or(Duration::ZERO, |r| t.saturating_duration_since(r.0 .0));
            self.lag_ms.store(lag.as_millis() as u64, Ordering::Relaxed);
            while inflight.len() < HEARTBEAT_CONCURRENCY {
                let Some(std::cmp::Reverse((at, kind, i))) = heap.peek().copied() else {
                    break;
                };
                if at > t {
                    break;
                }
                heap.pop();
                let k = kind as usize;
                if due[k][i] != Some(at) || busy[k][i] {
                    continue;
                }
                let node = &self.nodes.list[i];
                if node.heartbeat_stopped.load(Ordering::Relaxed) {
                    let next = at + intervals[k];
                    due[k][i] = Some(next);
                    heap.push(std::cmp::Reverse((next, kind, i)));
                    continue;
                }
                busy[k][i] = true;
                inflight.push(async move {
                    let r = match kind {
                        Kind::Lease => self.renew_lease(node).await,
                        Kind::Status => self.post_status(node).await,
                    };
                    (kind, i, r)
                });
            }
            let next = heap.peek().map(|r| r.0 .0);
            tokio::select! {
                Some((kind, i, r)) = inflight.next(), if !inflight.is_empty() => {
                    let k = kind as usize;
                    busy[k][i] = false;
                    let t = Instant::now();
                    let prev = due[k][i].unwrap_or(t);
                    let next = match r {
                        // Served out of turn: back to the node's own slot.
                        Ok(()) if prev == start => {
                            slot_after(start, intervals[k], i, n, t + intervals[k] / 2)
                        }
                        Ok(()) => (prev + intervals[k]).max(t),
                        Err(e) => {
                            tracing::warn!(node = %self.nodes.list[i].name, "heartbeat: {e:#}");
                            t + Duration::from_secs(1).min(intervals[k])
                        }
                    };
                    // A request for "now" that arrived meanwhile is served first.
                    let next = if std::mem::take(&mut again[k][i]) { start } else { next };
                    due[k][i] = Some(next);
                    heap.push(std::cmp::Reverse((next, kind, i)));
                }
                Some(beat) = beats.recv() => {
                    let t = Instant::now();
                    for kind in [Kind::Lease, Kind::Status] {
                        let k = kind as usize;
                        let at = match beat {
                            Beat::Registered(i) if i < n => {
                                // Just written by registration: next in the node's slot.
                                (i, slot_after(start, intervals[k], i, n, t + intervals[k] / 2))
                            }
                            // Ahead of everything scheduled: when heartbeats lag, this
                            // node is the one being marked not ready. (Re-scheduling it
                            // at "now" instead would starve it behind the backlog.)
                            Beat::Now(i) if i < n && due[k][i].is_some() => (i, start),
                            _ => continue,
                        };
                        let (i, at) = at;
                        if busy[k][i] {
                            again[k][i] = true;
                        } else {
                            due[k][i] = Some(at);
                            heap.push(std::cmp::Reverse((at, kind, i)));
                        }
                    }
                }
                _ = sleep_until_opt(next), if inflight.len() < HEARTBEAT_CONCURRENCY => {}
            }
        }
    }
}

/// What the heartbeat task is told about a node.
#[derive(Clone, Copy, Debug)]
pub enum Beat {
    /// Registered (status and Lease just written): heartbeat it from now on.
    Registered(usize),
    /// Post status and renew the Lease now (heartbeat resumed, or someone marked the node
    /// not ready).
    Now(usize),
}

/// The first time at or after `after` in node `i`'s slot: slots of the `n` nodes are
/// spread evenly over the interval, counted from `start`.
fn slot_after(start: Instant, interval: Duration, i: usize, n: usize, after: Instant) -> Instant {
    let iv = interval.as_nanos().max(1);
    let offset = iv * i as u128 / n.max(1) as u128;
    let since = after.saturating_duration_since(start).as_nanos();
    let rounds = (since.saturating_sub(offset)).div_ceil(iv);
    let at = offset + rounds * iv;
    start + Duration::from_nanos(at.min(u64::MAX as u128) as u64)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            labels: parse_labels("zone=a, kubernetes.io/os=windows").unwrap(),
            taints: parse_taints("dedicated=infra:NoSchedule,gpu:NoExecute").unwrap(),
            ..Options::default()
        }
    }

    #[test]
    fn labels_and_taints_parse() {
        let o = opts();
        assert_eq!(o.labels["zone"], "a");
        assert_eq!(o.taints.len(), 2);
        assert_eq!(o.taints[0].key, "dedicated");
        assert_eq!(o.taints[0].value.as_deref(), Some("infra"));
        assert_eq!(o.taints[1].value, None);
        assert_eq!(o.taints[1].effect, "NoExecute");
        assert!(parse_taints("a=b:Sometimes").is_err());
        assert!(parse_taints("a=b").is_err());
        assert!(parse_labels("novalue").is_err());
        assert!(parse_labels("").unwrap().is_empty());
    }

    #[tokio::test]
    async fn nodes_look_like_kubelet_registrations() {
        let o = opts();
        let client_free = test_node("sim-3", 3);
        let n = node_object(&client_free, &o);
        let labels = n.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "sim-3");
        assert_eq!(labels[SIMULATED_LABEL], "true");
        assert_eq!(labels["kubernetes.io/os"], "windows", "user labels win");
        assert_eq!(n.spec.unwrap().taints.unwrap().len(), 2);

        let since = Timestamp::from_second(1000).unwrap();
        let now = Timestamp::from_second(2000).unwrap();
        let s = node_status(&client_free, &o, "sim://0.1.0", since, now);
        assert_eq!(s.capacity.as_ref().unwrap()["pods"].0, "110");
        assert_eq!(s.allocatable.as_ref().unwrap()["memory"].0, "32Gi");
        let conds = s.conditions.unwrap();
        let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.last_heartbeat_time, Some(Time(now)));
        assert_eq!(ready.last_transition_time, Some(Time(since)));
        assert_eq!(conds.len(), 4);
        let addrs = s.addresses.unwrap();
        assert_eq!(addrs[0].type_, "InternalIP");
        assert_eq!(addrs[0].address, "10.255.0.5");
        let info = s.node_info.unwrap();
        assert_eq!(info.machine_id.len(), 32);
        assert_eq!(info.system_uuid.len(), 36);
        assert_ne!(machine_id("sim-1"), machine_id("sim-2"));
    }

    #[test]
    fn heartbeat_slots_spread_over_the_interval() {
        let start = Instant::now();
        let iv = Duration::from_secs(10);
        let slots: Vec<Duration> = (0..4)
            .map(|i| slot_after(start, iv, i, 4, start + Duration::from_secs(5)) - start)
            .collect();
        let secs: Vec<f64> = slots.iter().map(Duration::as_secs_f64).collect();
        assert_eq!(secs, vec![10.0, 12.5, 5.0, 7.5]);
        let later = slot_after(start, iv, 1, 4, start + Duration::from_secs(13));
        assert_eq!(later - start, Duration::from_millis(22500));
    }

    #[test]
    fn internal_ips_are_unique() {
        let ips: std::collections::HashSet<IpAddr> = (0..5000).map(internal_ip).collect();
        assert_eq!(ips.len(), 5000);
        assert_eq!(internal_ip(0).to_string(), "10.255.0.2");
        assert_eq!(internal_ip(300).to_string(), "10.255.1.46");
    }

    #[tokio::test]
    async fn heartbeat_annotation_and_cidrs_are_observed() {
        let node = test_node("sim-0", 0);
        let mut n: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "sim-0", "uid": "u1",
                         "annotations": {HEARTBEAT_ANNOTATION: "stopped"}},
            "spec": {"podCIDR": "10.42.7.0/24", "podCIDRs": ["10.42.7.0/24"]},
        }))
        .unwrap();
        assert!(!node.observe(&n));
        assert!(node.heartbeat_stopped.load(Ordering::Relaxed));
        assert!(*node.paused.borrow());
        assert_eq!(node.cidrs.borrow().len(), 1);
        assert!(node.ipam.lock().unwrap().has_cidrs());
        n.metadata.annotations = None;
        assert!(node.observe(&n), "resuming posts status at once");
        assert!(!node.heartbeat_stopped.load(Ordering::Relaxed));
    }

    /// A SimNode whose client points nowhere (its recorder is never used here).
    fn test_node(name: &str, index: usize) -> SimNode {
        let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        SimNode::new(&client, name.into(), index)
    }
}
