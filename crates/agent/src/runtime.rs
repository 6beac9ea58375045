//! The container runtime seen by the pod workers, shaped like CRI (sandboxes, images,
//! containers, their status) so that the simulated runtime of today and a containerd runtime
//! of tomorrow sit behind the same pod-worker code. The kubelet logic (what to start, when
//! to restart, which status to report) lives in the pod workers, never in a runtime.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("pod sandbox for pod {0} not found")]
    SandboxNotFound(String),
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// What a runtime needs to create a pod sandbox (CRI `PodSandboxConfig`).
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub uid: String,
    pub name: String,
    pub namespace: String,
    pub hostname: String,
    /// The pod's annotations, as CRI passes them to the runtime.
    pub annotations: BTreeMap<String, String>,
    /// The addresses the pod network gives the pod (one per family).
    pub ips: Vec<IpAddr>,
}

/// What a runtime needs to create one container (CRI `ContainerConfig`).
#[derive(Clone, Debug)]
pub struct ContainerConfig {
    pub name: String,
    pub image: String,
    /// How many times this container was created before in this pod (the restart count).
    pub attempt: u32,
    /// A run-to-completion init container (not a restartable sidecar). A real runtime
    /// ignores this; the simulated one finishes such containers at once.
    pub init: bool,
}

/// The result of making an image available (CRI `PullImage`).
#[derive(Clone, Debug)]
pub struct ImageRef {
    /// The normalized name the runtime reports, e.g. `docker.io/library/nginx:latest`.
    pub image: String,
    /// The digest reference, e.g. `docker.io/library/nginx@sha256:…`.
    pub image_id: String,
    /// No pull was needed.
    pub already_present: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited {
        exit_code: i32,
        /// `Completed`, `Error`, `OOMKilled`, … as the kubelet reports them.
        reason: String,
    },
}

/// One container as the runtime knows it (CRI `ContainerStatus`).
#[derive(Clone, Debug)]
pub struct ContainerStatus {
    /// The runtime's id, without the `<runtime>://` scheme.
    pub id: String,
    pub name: String,
    pub attempt: u32,
    pub state: ContainerState,
    pub image: String,
    pub image_id: String,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// A pod sandbox as the runtime knows it.
#[derive(Clone, Debug)]
pub struct SandboxStatus {
    pub id: String,
    pub ready: bool,
    pub ips: Vec<IpAddr>,
    pub created_at: Timestamp,
}

/// Everything the runtime knows of one pod; no sandbox means the runtime has never seen
/// the pod or has removed it.
#[derive(Clone, Debug, Default)]
pub struct PodRuntimeStatus {
    pub sandbox: Option<SandboxStatus>,
    pub containers: Vec<ContainerStatus>,
}

impl PodRuntimeStatus {
    /// The newest container named `name` (highest attempt) and the one before it.
    pub fn latest(&self, name: &str) -> (Option<&ContainerStatus>, Option<&ContainerStatus>) {
        let mut all: Vec<&ContainerStatus> =
            self.containers.iter().filter(|c| c.name == name).collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.attempt));
        (all.first().copied(), all.get(1).copied())
    }
}

/// A container runtime. Calls are per pod UID, so one runtime serves every node of the
/// process. Methods return `impl Future + Send` so pod workers can run on any thread.
pub trait Runtime: Send + Sync + 'static {
    /// The scheme of container ids in pod status (`containerd`, `sim`).
    fn name(&self) -> &'static str;
    /// `nodeInfo.containerRuntimeVersion`, e.g. `containerd://1.7.0`.
    fn version(&self) -> String;
    /// Pod lifecycle events (PLEG): the UID of a pod whose containers changed state on
    /// their own (exited, were killed). Can be taken once.
    fn take_events(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>>;

    fn run_pod_sandbox(&self, cfg: &SandboxConfig) -> impl Future<Output = Result<String>> + Send;
    /// Stops every container of the pod and tears down its network.
    fn stop_pod_sandbox(&self, uid: &str) -> impl Future<Output = Result<()>> + Send;
    fn remove_pod_sandbox(&self, uid: &str) -> impl Future<Output = Result<()>> + Send;
    fn pull_image(&self, image: &str) -> impl Future<Output = Result<ImageRef>> + Send;
    fn create_container(
        &self,
        uid: &str,
        cfg: &ContainerConfig,
        image: &ImageRef,
    ) -> impl Future<Output = Result<String>> + Send;
    fn start_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Stops a container, giving it `grace` to exit after SIGTERM.
    fn stop_container(&self, id: &str, grace: Duration) -> impl Future<Output = Result<()>> + Send;
    fn pod_status(&self, uid: &str) -> impl Future<Output = Result<PodRuntimeStatus>> + Send;
}
