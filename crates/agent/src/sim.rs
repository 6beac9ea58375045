//! The simulated runtime: sandboxes and containers that exist only in memory, for
//! `skiff agent --simulate N` (KWOK-like scale tests). Images are always "already present";
//! containers run until stopped, or for the time the pod's annotations ask for:
//!
//! - [`RUN_SECONDS`] (`pod.skiff.dev/simulate-run-seconds`): regular containers exit this
//!   many seconds (a decimal number) after they start; absent, they run until stopped.
//! - [`EXIT_CODE`] (`pod.skiff.dev/simulate-exit-code`): their exit code (default 0).
//!
//! Init containers complete at once with exit code 0. A stopped container exits with 0.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::runtime::{
    ContainerConfig, ContainerState, ContainerStatus, ImageRef, PodRuntimeStatus, Result, Runtime,
    RuntimeError, SandboxConfig, SandboxStatus,
};

pub const RUN_SECONDS: &str = "pod.skiff.dev/simulate-run-seconds";
pub const EXIT_CODE: &str = "pod.skiff.dev/simulate-exit-code";

/// How the pod's containers behave, from its annotations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Behaviour {
    pub run_for: Option<Duration>,
    pub exit_code: i32,
}

/// Reads [`RUN_SECONDS`] and [`EXIT_CODE`]; values that do not parse are ignored (logged),
/// as a kubelet ignores annotations it does not understand.
pub fn behaviour<'a>(mut annotation: impl FnMut(&str) -> Option<&'a str>) -> Behaviour {
    let run_for = annotation(RUN_SECONDS).and_then(|v| match v.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s.min(1e9))),
        _ => {
            tracing::warn!("ignoring {RUN_SECONDS}={v:?}: not a non-negative number");
            None
        }
    });
    let exit_code = annotation(EXIT_CODE)
        .and_then(|v| match v.trim().parse::<i32>() {
            Ok(c) => Some(c),
            Err(_) => {
                tracing::warn!("ignoring {EXIT_CODE}={v:?}: not an integer");
                None
            }
        })
        .unwrap_or(0);
    Behaviour { run_for, exit_code }
}

struct SimContainer {
    uid: String,
    status: ContainerStatus,
    init: bool,
    /// When a running container exits on its own.
    exits_at: Option<(Instant, Timestamp)>,
}

struct SimPod {
    sandbox: SandboxStatus,
    behaviour: Behaviour,
    containers: Vec<String>,
}

#[derive(Default)]
struct State {
    pods: HashMap<String, SimPod>,
    containers: HashMap<String, SimContainer>,
}

pub struct SimRuntime {
    state: Mutex<State>,
    events: mpsc::UnboundedSender<String>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    ids: AtomicU64,
    salt: std::collections::hash_map::RandomState,
}

impl Default for SimRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl SimRuntime {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        SimRuntime {
            state: Mutex::new(State::default()),
            events: tx,
            events_rx: Mutex::new(Some(rx)),
            ids: AtomicU64::new(0),
            salt: Default::default(),
        }
    }

    /// 64 hex digits, unique in this process, like containerd's ids.
    fn new_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        (0..4u64)
            .map(|i| {
                let mut h = self.salt.build_hasher();
                h.write_u64(n);
                h.write_u64(i);
                format!("{:016x}", h.finish())
            })
            .collect()
    }
}

/// Settles containers whose run time is over.
fn settle(c: &mut SimContainer, exit_code: i32) {
    if c.status.state == ContainerState::Running {
        if let Some((at, ts)) = c.exits_at {
            if Instant::now() >= at {
                c.status.state = exited(exit_code);
                c.status.finished_at = Some(ts);
                c.exits_at = None;
            }
        }
    }
}

fn exited(exit_code: i32) -> ContainerState {
    ContainerState::Exited {
        exit_code,
        reason: if exit_code == 0 { "Completed" } else { "Error" }.into(),
    }
}

impl Runtime for SimRuntime {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn version(&self) -> String {
        format!("sim://{}", env!("CARGO_PKG_VERSION"))
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.events_rx.lock().unwrap().take()
    }

    async fn run_pod_sandbox(&self, cfg: &SandboxConfig) -> Result<String> {
        let id = self.new_id();
        let b = behaviour(|k| cfg.annotations.get(k).map(String::as_str));
        let mut s = self.state.lock().unwrap();
        if let Some(old) = s.pods.remove(&cfg.uid) {
            for c in old.containers {
                s.containers.remove(&c);
            }
        }
        s.pods.insert(
            cfg.uid.clone(),
            SimPod {
                sandbox: SandboxStatus {
                    id: id.clone(),
                    ready: true,
                    ips: cfg.ips.clone(),
                    created_at: Timestamp::now(),
                },
                behaviour: b,
                containers: Vec::new(),
            },
        );
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, uid: &str) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        let State { pods, containers } = &mut *s;
        let Some(pod) = pods.get_mut(uid) else {
            return Ok(());
        };
        pod.sandbox.ready = false;
        for id in &pod.containers {
            if let Some(c) = containers.get_mut(id) {
                settle(c, pod.behaviour.exit_code);
                stop(c);
            }
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, uid: &str) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        if let Some(pod) = s.pods.remove(uid) {
            for c in pod.containers {
                s.containers.remove(&c);
            }
        }
        Ok(())
    }

    async fn pull_image(&self, image: &str) -> Result<ImageRef> {
        let image = normalize_image(image);
        let image_id = image_id(&image);
        Ok(ImageRef {
            image,
            image_id,
            already_present: true,
        })
    }

    async fn create_container(
        &self,
        uid: &str,
        cfg: &ContainerConfig,
        image: &ImageRef,
    ) -> Result<String> {
        let id = self.new_id();
        let mut s = self.state.lock().unwrap();
        let State { pods, containers } = &mut *s;
        let pod = pods
            .get_mut(uid)
            .ok_or_else(|| RuntimeError::SandboxNotFound(uid.into()))?;
        // Keep only the previous instance of a restarted container (for lastState), as
        // the kubelet's container garbage collection does.
        pod.containers.retain(|old| match containers.get(old) {
            Some(c) if c.status.name == cfg.name && c.status.attempt + 1 < cfg.attempt => {
                containers.remove(old);
                false
            }
            _ => true,
        });
        pod.containers.push(id.clone());
        containers.insert(
            id.clone(),
            SimContainer {
                uid: uid.into(),
                init: cfg.init,
                exits_at: None,
                status: ContainerStatus {
                    id: id.clone(),
                    name: cfg.name.clone(),
                    attempt: cfg.attempt,
                    state: ContainerState::Created,
                    image: image.image.clone(),
                    image_id: image.image_id.clone(),
                    created_at: Timestamp::now(),
                    started_at: None,
                    finished_at: None,
                },
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        let State { pods, containers } = &mut *s;
        let c = containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::ContainerNotFound(id.into()))?;
        let b = pods
            .get(&c.uid)
            .map(|p| p.behaviour)
            .ok_or_else(|| RuntimeError::SandboxNotFound(c.uid.clone()))?;
        let now = Timestamp::now();
        c.status.started_at = Some(now);
        if c.init {
            c.status.state = exited(0);
            c.status.finished_at = Some(now);
            return Ok(());
        }
        c.status.state = ContainerState::Running;
        if let Some(d) = b.run_for {
            let at = Instant::now() + d;
            let ts = now
                .checked_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
                .unwrap_or(now);
            c.exits_at = Some((at, ts));
            let events = self.events.clone();
            let uid = c.uid.clone();
            // The PLEG event that makes the pod worker look again once the container exited.
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let _ = events.send(uid);
            });
        }
        Ok(())
    }

    async fn stop_container(&self, id: &str, _grace: Duration) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        let State { pods, containers } = &mut *s;
        let c = containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::ContainerNotFound(id.into()))?;
        let code = pods.get(&c.uid).map_or(0, |p| p.behaviour.exit_code);
        settle(c, code);
        stop(c);
        Ok(())
    }

    async fn pod_status(&self, uid: &str) -> Result<PodRuntimeStatus> {
        let mut s = self.state.lock().unwrap();
        let State { pods, containers } = &mut *s;
        let Some(pod) = pods.get(uid) else {
            return Ok(PodRuntimeStatus::default());
        };
        let mut out = PodRuntimeStatus {
            sandbox: Some(pod.sandbox.clone()),
            containers: Vec::with_capacity(pod.containers.len()),
        };
        for id in &pod.containers {
            if let Some(c) = containers.get_mut(id) {
                settle(c, pod.behaviour.exit_code);
                out.containers.push(c.status.clone());
            }
        }
        Ok(out)
    }
}

/// A simulated process exits promptly (code 0) on SIGTERM.
fn stop(c: &mut SimContainer) {
    match c.status.state {
        ContainerState::Running => {
            c.status.state = exited(0);
            c.status.finished_at = Some(Timestamp::now());
            c.exits_at = None;
        }
        ContainerState::Created => {
            c.status.state = ContainerState::Exited {
                exit_code: 0,
                reason: "Completed".into(),
            };
        }
        ContainerState::Exited { .. } => {}
    }
}

/// The fully qualified reference containerd reports for an image: `nginx` →
/// `docker.io/library/nginx:latest`.
pub fn normalize_image(image: &str) -> String {
    let (first, rest) = match image.split_once('/') {
        Some((f, r)) if f.contains('.') || f.contains(':') || f == "localhost" => {
            (f.to_string(), r.to_string())
        }
        Some(_) => ("docker.io".into(), image.to_string()),
        None => ("docker.io".into(), format!("library/{image}")),
    };
    let last = rest.rsplit('/').next().unwrap_or("");
    let tag = if last.contains(':') || last.contains('@') {
        ""
    } else {
        ":latest"
    };
    format!("{first}/{rest}{tag}")
}

/// A stable pseudo digest reference for a normalized image (the same image gets the same
/// imageID on every node, as a real registry digest would).
pub fn image_id(normalized: &str) -> String {
    let repo = match normalized.split_once('@') {
        Some((r, _)) => r.to_string(),
        None => {
            let slash = normalized.rfind('/').map_or(0, |i| i + 1);
            match normalized[slash..].rfind(':') {
                Some(c) => normalized[..slash + c].to_string(),
                None => normalized.to_string(),
            }
        }
    };
    let digest: String = (0..4u64)
        .map(|i| format!("{:016x}", fnv1a(normalized.as_bytes(), i)))
        .collect();
    format!("{repo}@sha256:{digest}")
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf29ce484222325u64 ^ seed.wrapping_mul(0x100000001b3);
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn annotations_parse() {
        let a: BTreeMap<&str, &str> = [(RUN_SECONDS, "1.5"), (EXIT_CODE, "3")].into();
        let b = behaviour(|k| a.get(k).copied());
        assert_eq!(b.run_for, Some(Duration::from_millis(1500)));
        assert_eq!(b.exit_code, 3);
        let none = behaviour(|_| None);
        assert_eq!(
            none,
            Behaviour {
                run_for: None,
                exit_code: 0
            }
        );
        let bad: BTreeMap<&str, &str> = [(RUN_SECONDS, "-1"), (EXIT_CODE, "x")].into();
        assert_eq!(behaviour(|k| bad.get(k).copied()), none);
    }

    #[test]
    fn images_normalize_like_containerd() {
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            normalize_image("nginx:1.27"),
            "docker.io/library/nginx:1.27"
        );
        assert_eq!(normalize_image("foo/bar"), "docker.io/foo/bar:latest");
        assert_eq!(
            normalize_image("registry.k8s.io/pause:3.10"),
            "registry.k8s.io/pause:3.10"
        );
        assert_eq!(
            normalize_image("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        let id = image_id("docker.io/library/nginx:latest");
        assert!(id.starts_with("docker.io/library/nginx@sha256:"), "{id}");
        assert_eq!(id.len(), "docker.io/library/nginx@sha256:".len() + 64);
        assert_eq!(id, image_id("docker.io/library/nginx:latest"));
        assert_eq!(
            image_id("localhost:5000/app:v1").split('@').next(),
            Some("localhost:5000/app")
        );
    }

    #[tokio::test]
    async fn containers_exit_after_their_run_time() {
        let rt = SimRuntime::new();
        let mut events = rt.take_events().unwrap();
        let cfg = SandboxConfig {
            uid: "u1".into(),
            name: "p".into(),
            namespace: "default".into(),
            hostname: "p".into(),
            annotations: [
                (RUN_SECONDS.to_string(), "0.05".to_string()),
                (EXIT_CODE.to_string(), "2".to_string()),
            ]
            .into(),
            ips: vec![],
        };
        rt.run_pod_sandbox(&cfg).await.unwrap();
        let img = rt.pull_image("busybox").await.unwrap();
        assert!(img.already_present);
        let init = ContainerConfig {
            name: "init".into(),
            image: "busybox".into(),
            attempt: 0,
            init: true,
        };
        let id = rt.create_container("u1", &init, &img).await.unwrap();
        rt.start_container(&id).await.unwrap();
        let main = ContainerConfig {
            name: "main".into(),
            init: false,
            ..init
        };
        let id = rt.create_container("u1", &main, &img).await.unwrap();
        rt.start_container(&id).await.unwrap();
        let st = rt.pod_status("u1").await.unwrap();
        assert!(matches!(
            st.latest("init").0.unwrap().state,
            ContainerState::Exited { exit_code: 0, .. }
        ));
        assert_eq!(st.latest("main").0.unwrap().state, ContainerState::Running);
        assert_eq!(events.recv().await.as_deref(), Some("u1"));
        let st = rt.pod_status("u1").await.unwrap();
        assert_eq!(
            st.latest("main").0.unwrap().state,
            ContainerState::Exited {
                exit_code: 2,
                reason: "Error".into()
            }
        );
        rt.remove_pod_sandbox("u1").await.unwrap();
        assert!(rt.pod_status("u1").await.unwrap().sandbox.is_none());
    }
}
