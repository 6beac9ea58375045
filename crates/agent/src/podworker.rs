//! Pod workers, as the kubelet has them: one watch of the pods bound to any node
//! (`spec.nodeName!=`) feeds every node of the process, filtered in memory by node name; each
//! pod gets a worker task that owns the pod's lifecycle — start the sandbox and containers
//! through the [`Runtime`], restart them per `restartPolicy`, write `pods/status`, stop and
//! finally delete the pod when it is deleted. Workers sleep on their pod's wake-up and never
//! poll; API writes from all workers share one concurrency bound.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, ResourceExt};
use skiff_client::events;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::node::{Nodes, SimNode};
use crate::runtime::{ContainerConfig, ContainerState, Runtime, SandboxConfig};
use crate::status::{self, is_sidecar, is_terminal_phase};

/// Concurrent API writes (status, events, deletes) from all pod workers of the process.
const API_CONCURRENCY: usize = 32;
/// The kubelet's crash-loop back-off: 10s doubling to 5 minutes.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

pub struct Ctx<R> {
    pub client: Client,
    pub nodes: Arc<crate::node::NodeCtx>,
    pub runtime: Arc<R>,
    api: Semaphore,
}

impl<R: Runtime> Ctx<R> {
    pub fn new(client: Client, nodes: Arc<crate::node::NodeCtx>, runtime: Arc<R>) -> Self {
        Ctx {
            client,
            nodes,
            runtime,
            api: Semaphore::new(API_CONCURRENCY),
        }
    }

    fn node_list(&self) -> &Nodes {
        &self.nodes.nodes
    }
}

/// The latest word from the API about a worker's pod.
#[derive(Clone)]
enum Update {
    Pod(Arc<Pod>),
    /// Deleted from the API (or no longer bound here).
    Removed,
}

struct Slot {
    update: Mutex<Update>,
    wake: Notify,
    /// The worker has finished (pod terminal, or deleted by us): further updates are moot.
    done: AtomicBool,
}

/// Runs the pod watch and dispatches to pod workers until dropped.
pub async fn run<R: Runtime>(ctx: Arc<Ctx<R>>) {
    let mut pleg = ctx
        .runtime
        .take_events()
        .expect("the runtime's events are taken once, by the pod workers");
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let cfg = watcher::Config::default().fields("spec.nodeName!=");
    let stream = skiff_client::informer::watch(api, cfg).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut workers: HashMap<String, Arc<Slot>> = HashMap::new();
    // UIDs seen during a (re-)list: workers of pods missing from it are stopped.
    let mut relist: Option<HashSet<String>> = None;
    loop {
        tokio::select! {
            ev = stream.next() => match ev {
                None => return,
                Some(Err(e)) => tracing::debug!("watching pods: {e}"),
                Some(Ok(Event::Init)) => relist = Some(HashSet::new()),
                Some(Ok(Event::InitApply(pod))) => {
                    if let Some(seen) = relist.as_mut() {
                        seen.insert(pod.uid().unwrap_or_default());
                    }
                    dispatch(&ctx, &mut workers, pod);
                }
                Some(Ok(Event::InitDone)) => {
                    if let Some(seen) = relist.take() {
                        workers.retain(|uid, slot| {
                            let keep = seen.contains(uid);
                            if !keep {
                                remove(slot);
                            }
                            keep
                        });
                    }
                }
                Some(Ok(Event::Apply(pod))) => dispatch(&ctx, &mut workers, pod),
                Some(Ok(Event::Delete(pod))) => {
                    if let Some(slot) = workers.remove(&pod.uid().unwrap_or_default()) {
                        remove(&slot);
                    }
                }
            },
            Some(uid) = pleg.recv() => {
                if let Some(slot) = workers.get(&uid) {
                    slot.wake.notify_one();
                }
            }
        }
    }
}

fn remove(slot: &Slot) {
    *slot.update.lock().unwrap() = Update::Removed;
    slot.wake.notify_one();
}

fn dispatch<R: Runtime>(ctx: &Arc<Ctx<R>>, workers: &mut HashMap<String, Arc<Slot>>, mut pod: Pod) {
    let Some(node) = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .and_then(|n| ctx.node_list().get(n))
        .cloned()
    else {
        return;
    };
    let Some(uid) = pod.uid() else { return };
    // Workers keep their pod for its lifetime: drop what they never read.
    pod.metadata.managed_fields = None;
    if let Some(slot) = workers.get(&uid) {
        if !slot.done.load(Ordering::Relaxed) {
            *slot.update.lock().unwrap() = Update::Pod(Arc::new(pod));
            slot.wake.notify_one();
        }
        return;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if is_terminal_phase(phase) {
        // Finished pods are left alone, as the kubelet does.
        return;
    }
    let name = pod.name_any();
    let namespace = pod.namespace().unwrap_or_default();
    let slot = Arc::new(Slot {
        update: Mutex::new(Update::Pod(Arc::new(pod))),
        wake: Notify::new(),
        done: AtomicBool::new(false),
    });
    workers.insert(uid.clone(), slot.clone());
    let worker = Worker {
        ctx: ctx.clone(),
        node,
        slot,
        uid,
        name,
        namespace,
        start_time: Timestamp::now(),
        last: None,
        backoff: BTreeMap::new(),
        backoff_announced: HashSet::new(),
        deleted: false,
    };
    tokio::spawn(worker.run());
}

/// What a sync asks the worker loop to do next.
enum Next {
    /// Sleep until woken (pod update, runtime event), or until the instant given.
    Wait(Option<Instant>),
    /// Sleep until the node has a pod CIDR.
    WaitForCidr,
    /// The pod is finished; the worker ends.
    Finished,
}

/// How a container ended up after [`Worker::ensure`].
#[derive(PartialEq, Eq)]
enum Outcome {
    Running,
    Exited(i32),
    /// Not running yet: being created or in restart back-off.
    Waiting,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Init,
    Sidecar,
    Regular,
}

struct Worker<R> {
    ctx: Arc<Ctx<R>>,
    node: Arc<SimNode>,
    slot: Arc<Slot>,
    uid: String,
    name: String,
    namespace: String,
    start_time: Timestamp,
    /// The status this worker last wrote, the base for the next one (the watch may lag).
    last: Option<PodStatus>,
    /// Containers in restart back-off and the back-off they wait out.
    backoff: BTreeMap<String, Duration>,
    /// (container, attempt) whose back-off already has its BackOff event.
    backoff_announced: HashSet<(String, u32)>,
    /// The final delete was issued; only the pod's removal is awaited.
    deleted: bool,
}

impl<R: Runtime> Worker<R> {
    async fn run(mut self) {
        let mut retry = Duration::from_millis(500);
        loop {
            let update = self.slot.update.lock().unwrap().clone();
            let mut paused = self.node.paused.subscribe();
            if *paused.borrow_and_update() && !matches!(update, Update::Removed) {
                // The node's kubelet "hung": leave the pod as the API has it until it
                // resumes (runtime state goes on, and is reported then).
                tokio::select! {
                    _ = self.slot.wake.notified() => {}
                    _ = paused.wait_for(|p| !*p) => {}
                }
                continue;
            }
            let mut cidrs = self.node.cidrs.subscribe();
            let next = match update {
                Update::Removed => {
                    self.cleanup().await;
                    break;
                }
                Update::Pod(pod) => match self.sync(&pod).await {
                    Ok(n) => {
                        retry = Duration::from_millis(500);
                        n
                    }
                    Err(e) => {
                        tracing::warn!(pod = %format!("{}/{}", self.namespace, self.name), node = %self.node.name, "sync failed: {e:#}");
                        let at = Instant::now() + retry;
                        retry = (retry * 2).min(Duration::from_secs(30));
                        Next::Wait(Some(at))
                    }
                },
            };
            match next {
                Next::Finished => {
                    self.slot.done.store(true, Ordering::Relaxed);
                    break;
                }
                Next::Wait(until) => {
                    tokio::select! {
                        _ = self.slot.wake.notified() => {}
                        _ = sleep_until(until) => {}
                    }
                }
                Next::WaitForCidr => {
                    tokio::select! {
                        _ = self.slot.wake.notified() => {}
                        _ = cidrs.changed() => {}
                    }
                }
            }
        }
    }

    /// The pod as the status builder should see it: our last write of what the kubelet owns
    /// is newer than what the watch may have delivered so far; conditions others own (e.g.
    /// DisruptionTarget) are taken from the API as it is.
    fn view(&self, pod: &Pod) -> Pod {
        let mut p = pod.clone();
        if let Some(last) = &self.last {
            let st = p.status.get_or_insert_with(Default::default);
            let owned = |t: &str| status::KUBELET_CONDITIONS.contains(&t);
            let mut conds: Vec<_> = st
                .conditions
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| !owned(&c.type_))
                .collect();
            conds.extend(
                last.conditions
                    .iter()
                    .flatten()
                    .filter(|c| owned(&c.type_))
                    .cloned(),
            );
            st.conditions = Some(conds);
            st.start_time = last.start_time.clone();
            st.pod_ips = last.pod_ips.clone().or(st.pod_ips.take());
            if is_terminal_phase(last.phase.as_deref()) {
                st.phase = last.phase.clone();
            }
        }
        p
    }

    async fn sync(&mut self, pod: &Pod) -> anyhow::Result<Next> {
        if pod.metadata.deletion_timestamp.is_some() {
            if !self.deleted {
                self.terminate(pod).await?;
            }
            return Ok(Next::Wait(None));
        }
        let rt = self.ctx.runtime.pod_status(&self.uid).await?;
        let api_phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if rt.sandbox.is_none() {
            if is_terminal_phase(api_phase) {
                return Ok(Next::Finished);
            }
            let spec = pod.spec.clone().unwrap_or_default();
            let ips = if spec.host_network == Some(true) {
                // Host-network pods share the node's address and need no pod CIDR.
                vec![self.node.internal_ip]
            } else {
                match self.allocate(pod) {
                    Some(ips) => ips,
                    None => return Ok(Next::WaitForCidr),
                }
            };
            let cfg = SandboxConfig {
                uid: self.uid.clone(),
                name: self.name.clone(),
                namespace: self.namespace.clone(),
                hostname: spec.hostname.unwrap_or_else(|| self.name.clone()),
                annotations: pod.annotations().clone(),
                ips,
            };
            self.ctx.runtime.run_pod_sandbox(&cfg).await?;
        }

        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .as_deref()
            .unwrap_or("Always")
            .to_string();
        let mut wake: Option<Instant> = None;
        if let Some(limit) = spec.active_deadline_seconds {
            let started = self
                .view(pod)
                .status
                .and_then(|s| s.start_time)
                .map_or(self.start_time, |t| t.0);
            let deadline_ms = started.as_millisecond() + limit.saturating_mul(1000);
            let now_ms = Timestamp::now().as_millisecond();
            if now_ms >= deadline_ms {
                return self.deadline_exceeded(pod).await;
            }
            wake = Some(Instant::now() + Duration::from_millis((deadline_ms - now_ms) as u64));
        }
        self.backoff.clear();
        let mut initialized = true;
        for c in spec.init_containers.iter().flatten() {
            let kind = if is_sidecar(c) {
                Kind::Sidecar
            } else {
                Kind::Init
            };
            let got = self.ensure(pod, c, kind, &policy, &mut wake).await?;
            let ok = match kind {
                Kind::Sidecar => got == Outcome::Running,
                _ => got == Outcome::Exited(0),
            };
            if !ok {
                initialized = false;
                break;
            }
        }
        if initialized {
            for c in &spec.containers {
                self.ensure(pod, c, Kind::Regular, &policy, &mut wake)
                    .await?;
            }
        }

        let rt = self.ctx.runtime.pod_status(&self.uid).await?;
        let view = self.view(pod);
        let st = status::build(&status::Inputs {
            pod: &view,
            runtime: &rt,
            scheme: self.ctx.runtime.name(),
            host_ips: &[self.node.internal_ip],
            start_time: self.start_time,
            backoff: &self.backoff,
            terminal: false,
            now: Timestamp::now(),
        });
        let terminal = is_terminal_phase(st.phase.as_deref());
        self.post(pod, st).await?;
        if terminal {
            // Finished: the sandbox goes (its address is free again); the status keeps it.
            self.ctx.runtime.stop_pod_sandbox(&self.uid).await?;
            self.ctx.runtime.remove_pod_sandbox(&self.uid).await?;
            self.node.ipam.lock().unwrap().release(&self.uid);
            return Ok(Next::Finished);
        }
        Ok(Next::Wait(wake))
    }

    /// The pod's addresses: those its status already shows (after an agent restart), else
    /// new ones from the node's pod CIDRs.
    fn allocate(&self, pod: &Pod) -> Option<Vec<std::net::IpAddr>> {
        let mut ipam = self.node.ipam.lock().unwrap();
        if !ipam.has_cidrs() {
            return None;
        }
        let known: Vec<std::net::IpAddr> = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ips.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|p| p.ip.parse().ok())
            .collect();
        if !known.is_empty() {
            ipam.reserve(&self.uid, &known);
        }
        ipam.allocate(&self.uid)
    }

    /// Makes one container what the restart policy wants it to be; returns its state.
    async fn ensure(
        &mut self,
        pod: &Pod,
        c: &Container,
        kind: Kind,
        policy: &str,
        wake: &mut Option<Instant>,
    ) -> anyhow::Result<Outcome> {
        let rt = self.ctx.runtime.pod_status(&self.uid).await?;
        let (cur, _) = rt.latest(&c.name);
        let attempt = match cur {
            None => 0,
            Some(cur) => match &cur.state {
                ContainerState::Running => return Ok(Outcome::Running),
                ContainerState::Created => {
                    let id = cur.id.clone();
                    self.ctx.runtime.start_container(&id).await?;
                    self.event(
                        pod,
                        c,
                        kind,
                        "Started",
                        &format!("Started container {}", c.name),
                    )
                    .await;
                    return self.state_of(&c.name).await;
                }
                ContainerState::Exited { exit_code, .. } => {
                    let code = *exit_code;
                    let restart = match kind {
                        Kind::Sidecar => true,
                        Kind::Init => code != 0 && policy != "Never",
                        Kind::Regular => policy == "Always" || (policy == "OnFailure" && code != 0),
                    };
                    if !restart {
                        return Ok(Outcome::Exited(code));
                    }
                    let delay = crash_backoff(cur.attempt);
                    let finished = cur.finished_at.unwrap_or_else(Timestamp::now);
                    let elapsed_ms = (Timestamp::now().as_millisecond() - finished.as_millisecond())
                        .max(0) as u64;
                    let left = delay.saturating_sub(Duration::from_millis(elapsed_ms));
                    if !left.is_zero() {
                        self.backoff.insert(c.name.clone(), delay);
                        self.backoff_announced
                            .retain(|(n, a)| *n != c.name || *a >= cur.attempt);
                        if self.backoff_announced.insert((c.name.clone(), cur.attempt)) {
                            let msg = format!(
                                "Back-off restarting failed container {} in pod {}_{}({})",
                                c.name, self.name, self.namespace, self.uid
                            );
                            self.warning(pod, c, kind, "BackOff", &msg).await;
                        }
                        let at = Instant::now() + left;
                        *wake = Some(wake.map_or(at, |w| w.min(at)));
                        return Ok(Outcome::Waiting);
                    }
                    cur.attempt + 1
                }
            },
        };
        self.start(pod, c, kind, attempt).await?;
        self.state_of(&c.name).await
    }

    async fn state_of(&self, name: &str) -> anyhow::Result<Outcome> {
        let rt = self.ctx.runtime.pod_status(&self.uid).await?;
        Ok(match rt.latest(name).0.map(|c| &c.state) {
            Some(ContainerState::Running) => Outcome::Running,
            Some(ContainerState::Exited { exit_code, .. }) => Outcome::Exited(*exit_code),
            _ => Outcome::Waiting,
        })
    }

    async fn start(
        &self,
        pod: &Pod,
        c: &Container,
        kind: Kind,
        attempt: u32,
    ) -> anyhow::Result<()> {
        let rt = &self.ctx.runtime;
        let image = c.image.clone().unwrap_or_default();
        let img = rt.pull_image(&image).await?;
        let pulled = if img.already_present {
            format!("Container image \"{image}\" already present on machine")
        } else {
            format!("Successfully pulled image \"{image}\"")
        };
        self.event(pod, c, kind, "Pulled", &pulled).await;
        let cfg = ContainerConfig {
            name: c.name.clone(),
            image,
            attempt,
            init: kind == Kind::Init,
        };
        let id = rt.create_container(&self.uid, &cfg, &img).await?;
        self.event(
            pod,
            c,
            kind,
            "Created",
            &format!("Created container: {}", c.name),
        )
        .await;
        rt.start_container(&id).await?;
        self.event(
            pod,
            c,
            kind,
            "Started",
            &format!("Started container {}", c.name),
        )
        .await;
        Ok(())
    }

    async fn warning(&self, pod: &Pod, c: &Container, kind: Kind, reason: &str, msg: &str) {
        self.record(pod, c, kind, events::WARNING, reason, msg)
            .await
    }

    async fn event(&self, pod: &Pod, c: &Container, kind: Kind, reason: &str, msg: &str) {
        self.record(pod, c, kind, events::NORMAL, reason, msg).await
    }

    async fn record(
        &self,
        pod: &Pod,
        c: &Container,
        kind: Kind,
        type_: &str,
        reason: &str,
        msg: &str,
    ) {
        let mut r = events::reference(pod);
        r.field_path = Some(match kind {
            Kind::Regular => format!("spec.containers{{{}}}", c.name),
            _ => format!("spec.initContainers{{{}}}", c.name),
        });
        let _permit = self.ctx.api.acquire().await;
        self.node.recorder.record(&r, type_, reason, msg).await;
    }

    async fn post(&mut self, pod: &Pod, st: PodStatus) -> anyhow::Result<()> {
        if self.last.as_ref() == Some(&st) || pod.status.as_ref() == Some(&st) {
            self.last = Some(st);
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        // The UID makes the write a precondition on this pod, not a namesake created since
        // (upstream derives a UID precondition from the body, as the kubelet relies on).
        let patch = serde_json::json!({ "metadata": {"uid": self.uid}, "status": st });
        let _permit = self.ctx.api.acquire().await;
        match api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            // Gone: the watch will tell the worker.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        self.last = Some(st);
        Ok(())
    }

    /// The pod is being deleted: stop its containers, report them terminated, release its
    /// resources and delete it for good (grace 0, pinned to its UID), as the kubelet's
    /// status manager does once a pod can be deleted.
    async fn terminate(&mut self, pod: &Pod) -> anyhow::Result<()> {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30);
        let rt = self.stop_containers(pod, grace).await?;
        if rt.sandbox.is_some() {
            let rt = self.ctx.runtime.pod_status(&self.uid).await?;
            let view = self.view(pod);
            let st = status::build(&status::Inputs {
                pod: &view,
                runtime: &rt,
                scheme: self.ctx.runtime.name(),
                host_ips: &[self.node.internal_ip],
                start_time: self.start_time,
                backoff: &BTreeMap::new(),
                terminal: true,
                now: Timestamp::now(),
            });
            self.post(pod, st).await?;
        }
        self.ctx.runtime.remove_pod_sandbox(&self.uid).await?;
        self.node.ipam.lock().unwrap().release(&self.uid);
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        let _permit = self.ctx.api.acquire().await;
        match api.delete(&self.name, &dp).await {
            Ok(_) => {}
            // Gone already, or a new pod of the same name: ours is gone either way.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        self.deleted = true;
        Ok(())
    }

    /// Stops the pod's running containers (a Killing event each) and its sandbox; returns
    /// what the runtime had before.
    async fn stop_containers(
        &self,
        pod: &Pod,
        grace_seconds: i64,
    ) -> anyhow::Result<crate::runtime::PodRuntimeStatus> {
        let rt = self.ctx.runtime.pod_status(&self.uid).await?;
        let grace = Duration::from_secs(grace_seconds.max(0) as u64);
        let spec = pod.spec.clone().unwrap_or_default();
        let all: Vec<(Kind, &Container)> = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| (Kind::Init, c))
            .chain(spec.containers.iter().map(|c| (Kind::Regular, c)))
            .collect();
        for (kind, c) in all {
            if let (Some(cur), _) = rt.latest(&c.name) {
                if cur.state == ContainerState::Running {
                    self.event(
                        pod,
                        c,
                        kind,
                        "Killing",
                        &format!("Stopping container {}", c.name),
                    )
                    .await;
                    self.ctx.runtime.stop_container(&cur.id, grace).await?;
                }
            }
        }
        self.ctx.runtime.stop_pod_sandbox(&self.uid).await?;
        Ok(rt)
    }

    /// `spec.activeDeadlineSeconds` ran out: the kubelet kills the pod and fails it.
    async fn deadline_exceeded(&mut self, pod: &Pod) -> anyhow::Result<Next> {
        const MESSAGE: &str = "Pod was active on the node longer than the specified deadline";
        {
            let _permit = self.ctx.api.acquire().await;
            self.node
                .recorder
                .record(
                    &events::reference(pod),
                    events::WARNING,
                    "DeadlineExceeded",
                    MESSAGE,
                )
                .await;
        }
        let grace = pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        self.stop_containers(pod, grace).await?;
        let rt = self.ctx.runtime.pod_status(&self.uid).await?;
        let view = self.view(pod);
        let mut st = status::build(&status::Inputs {
            pod: &view,
            runtime: &rt,
            scheme: self.ctx.runtime.name(),
            host_ips: &[self.node.internal_ip],
            start_time: self.start_time,
            backoff: &BTreeMap::new(),
            terminal: true,
            now: Timestamp::now(),
        });
        st.phase = Some(status::FAILED.into());
        st.reason = Some("DeadlineExceeded".into());
        st.message = Some(MESSAGE.into());
        self.post(pod, st).await?;
        self.ctx.runtime.remove_pod_sandbox(&self.uid).await?;
        self.node.ipam.lock().unwrap().release(&self.uid);
        Ok(Next::Finished)
    }

    /// The pod left the API without us (force-deleted): drop its runtime state.
    async fn cleanup(&mut self) {
        let _ = self.ctx.runtime.stop_pod_sandbox(&self.uid).await;
        let _ = self.ctx.runtime.remove_pod_sandbox(&self.uid).await;
        self.node.ipam.lock().unwrap().release(&self.uid);
    }
}

/// The delay before restarting a container that exited after `restarts` restarts: none the
/// first time, then 10s doubling up to 5 minutes (the kubelet's CrashLoopBackOff).
pub fn crash_backoff(restarts: u32) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    BACKOFF_BASE
        .checked_mul(1 << (restarts - 1).min(16))
        .unwrap_or(BACKOFF_MAX)
        .min(BACKOFF_MAX)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_backoff_like_the_kubelet() {
        assert_eq!(crash_backoff(0), Duration::ZERO);
        assert_eq!(crash_backoff(1), Duration::from_secs(10));
        assert_eq!(crash_backoff(2), Duration::from_secs(20));
        assert_eq!(crash_backoff(6), Duration::from_secs(300));
        assert_eq!(crash_backoff(60), Duration::from_secs(300));
    }
}
