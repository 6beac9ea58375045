//! Pod status as the kubelet computes it (`generateAPIPodStatus`, `getPhase`,
//! `convertToAPIContainerStatuses`, the condition generators), from the pod's spec, its
//! current API status and what the runtime reports. Pure: no I/O, no clock of its own.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as ApiContainerStatus, HostIP, Pod, PodCondition, PodIP,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::runtime::{ContainerState, ContainerStatus, PodRuntimeStatus};

pub const PENDING: &str = "Pending";
pub const RUNNING: &str = "Running";
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";

/// The conditions the kubelet owns (upstream `PodConditionByKubelet`).
pub const KUBELET_CONDITIONS: &[&str] = &[
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// What the pod worker knows beyond the pod and the runtime.
pub struct Inputs<'a> {
    pub pod: &'a Pod,
    pub runtime: &'a PodRuntimeStatus,
    /// The runtime's name: the scheme of container ids (`sim://…`).
    pub scheme: &'a str,
    pub host_ips: &'a [IpAddr],
    /// When the kubelet first handled the pod.
    pub start_time: Timestamp,
    /// Containers waiting out a restart back-off, and how long that back-off is.
    pub backoff: &'a BTreeMap<String, Duration>,
    /// The pod is being deleted and all its containers were stopped.
    pub terminal: bool,
    pub now: Timestamp,
}

pub fn is_terminal_phase(phase: Option<&str>) -> bool {
    matches!(phase, Some(SUCCEEDED) | Some(FAILED))
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// A restartable init container (a native sidecar).
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Builds the status the kubelet would write now.
pub fn build(inp: &Inputs) -> PodStatus {
    let pod = inp.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let podref = format!("{name}_{ns}({uid})");

    let inits = spec.init_containers.clone().unwrap_or_default();
    let init_statuses: Vec<ApiContainerStatus> = inits
        .iter()
        .map(|c| container_status(inp, c, true, false, &podref))
        .collect();
    let init_done = inits.iter().zip(&init_statuses).all(|(c, s)| {
        if is_sidecar(c) {
            s.state.as_ref().is_some_and(|st| st.running.is_some())
        } else {
            succeeded(s)
        }
    });
    let statuses: Vec<ApiContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(inp, c, false, !init_done, &podref))
        .collect();

    let mut phase = phase(
        restart_policy(pod),
        &inits,
        &init_statuses,
        &statuses,
        inp.terminal,
    );
    // A pod never goes back from a terminal phase (upstream's status manager enforces it).
    if is_terminal_phase(old.phase.as_deref()) {
        phase = old.phase.clone().unwrap_or(phase);
    }

    let sandbox_ready = inp.runtime.sandbox.as_ref().is_some_and(|s| s.ready);
    let mut conds: Vec<PodCondition> = old
        .conditions
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str()))
        .collect();
    let cond = |type_: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let since = old
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(inp.now));
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            reason: if ok { None } else { reason.map(String::from) },
            message: if ok { None } else { message },
            last_transition_time: Some(since),
            last_probe_time: None,
            observed_generation: None,
        }
    };
    conds.push(cond("PodReadyToStartContainers", sandbox_ready, None, None));
    let incomplete: Vec<String> = inits
        .iter()
        .zip(&init_statuses)
        .filter(|(c, s)| !is_sidecar(c) && !succeeded(s))
        .map(|(c, _)| c.name.clone())
        .collect();
    conds.push(cond(
        "Initialized",
        incomplete.is_empty(),
        Some("ContainersNotInitialized"),
        Some(format!(
            "containers with incomplete status: [{}]",
            incomplete.join(" ")
        )),
    ));
    let (containers_ready, reason, message) = if phase == SUCCEEDED {
        (false, "PodCompleted", String::new())
    } else {
        let unready: Vec<String> = inits
            .iter()
            .zip(&init_statuses)
            .filter(|(c, s)| is_sidecar(c) && !s.ready)
            .map(|(c, _)| c.name.clone())
            .chain(statuses.iter().filter(|s| !s.ready).map(|s| s.name.clone()))
            .collect();
        (
            unready.is_empty(),
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    };
    let msg = Some(message).filter(|m| !m.is_empty());
    let mut ready = (containers_ready, reason, msg.clone());
    if containers_ready {
        if let Some(gate_msg) = readiness_gates_unmet(pod) {
            ready = (false, "ReadinessGatesNotReady", Some(gate_msg));
        }
    }
    conds.push(cond("Ready", ready.0, Some(ready.1), ready.2));
    conds.push(cond("ContainersReady", containers_ready, Some(reason), msg));
    conds.push(cond("PodScheduled", true, None, None));

    let pod_ips: Vec<IpAddr> = match &inp.runtime.sandbox {
        Some(s) if !s.ips.is_empty() => s.ips.clone(),
        // A stopped pod keeps the addresses it had, as the kubelet reports them.
        _ => old
            .pod_ips
            .iter()
            .flatten()
            .filter_map(|p| p.ip.parse().ok())
            .collect(),
    };
    PodStatus {
        phase: Some(phase),
        conditions: Some(conds),
        host_ip: inp.host_ips.first().map(ToString::to_string),
        host_ips: Some(
            inp.host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.to_string() })
                .collect(),
        )
        .filter(|v: &Vec<HostIP>| !v.is_empty()),
        pod_ip: pod_ips.first().map(ToString::to_string),
        pod_ips: Some(
            pod_ips
                .iter()
                .map(|ip| PodIP { ip: ip.to_string() })
                .collect(),
        )
        .filter(|v: &Vec<PodIP>| !v.is_empty()),
        start_time: old.start_time.clone().or(Some(Time(inp.start_time))),
        container_statuses: Some(statuses),
        init_container_statuses: Some(init_statuses).filter(|v| !v.is_empty()),
        qos_class: old.qos_class.clone(),
        nominated_node_name: old.nominated_node_name.clone(),
        ..Default::default()
    }
}

fn succeeded(s: &ApiContainerStatus) -> bool {
    s.state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .is_some_and(|t| t.exit_code == 0)
}

fn readiness_gates_unmet(pod: &Pod) -> Option<String> {
    let gates = pod.spec.as_ref()?.readiness_gates.as_ref()?;
    let conds = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut msgs = Vec::new();
    for g in gates {
        match conds.iter().find(|c| c.type_ == g.condition_type) {
            None => msgs.push(format!(
                "corresponding condition of pod readiness gate \"{}\" does not exist.",
                g.condition_type
            )),
            Some(c) if c.status != "True" => msgs.push(format!(
                "the status of pod readiness gate \"{}\" is not \"True\", but {}",
                g.condition_type, c.status
            )),
            _ => {}
        }
    }
    (!msgs.is_empty()).then(|| msgs.join(", "))
}

fn terminated(scheme: &str, c: &ContainerStatus) -> Option<ContainerStateTerminated> {
    match &c.state {
        ContainerState::Exited { exit_code, reason } => Some(ContainerStateTerminated {
            exit_code: *exit_code,
            reason: Some(reason.clone()),
            started_at: c.started_at.map(Time),
            finished_at: c.finished_at.map(Time),
            container_id: Some(format!("{scheme}://{}", c.id)),
            message: None,
            signal: None,
        }),
        _ => None,
    }
}

fn waiting(reason: &str, message: Option<String>) -> ApiState {
    ApiState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..Default::default()
    }
}

fn container_status(
    inp: &Inputs,
    spec: &Container,
    init: bool,
    initializing: bool,
    podref: &str,
) -> ApiContainerStatus {
    let (cur, prev) = inp.runtime.latest(&spec.name);
    let mut s = ApiContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        started: Some(false),
        restart_count: 0,
        ..Default::default()
    };
    let Some(cur) = cur else {
        let reason = if initializing {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        s.state = Some(waiting(reason, None));
        return s;
    };
    s.image = cur.image.clone();
    s.image_id = cur.image_id.clone();
    s.container_id = Some(format!("{}://{}", inp.scheme, cur.id));
    s.restart_count = cur.attempt as i32;
    s.last_state = Some(ApiState {
        terminated: prev.and_then(|p| terminated(inp.scheme, p)),
        ..Default::default()
    });
    match &cur.state {
        ContainerState::Created => s.state = Some(waiting("ContainerCreating", None)),
        ContainerState::Running => {
            s.state = Some(ApiState {
                running: Some(ContainerStateRunning {
                    started_at: cur.started_at.map(Time),
                }),
                ..Default::default()
            });
            // No readiness probes are simulated: running is ready, unless the pod is ending.
            s.ready = !inp.terminal;
            s.started = Some(true);
        }
        ContainerState::Exited { .. } => {
            if let Some(delay) = inp.backoff.get(&spec.name) {
                s.state = Some(waiting(
                    "CrashLoopBackOff",
                    Some(format!(
                        "back-off {} restarting failed container={} pod={podref}",
                        go_duration(*delay),
                        spec.name
                    )),
                ));
                s.last_state = Some(ApiState {
                    terminated: terminated(inp.scheme, cur),
                    ..Default::default()
                });
            } else {
                s.state = Some(ApiState {
                    terminated: terminated(inp.scheme, cur),
                    ..Default::default()
                });
                // A completed init container counts as ready (upstream does the same).
                s.ready = init && !is_sidecar(spec) && succeeded(&s);
            }
        }
    }
    s
}

/// `10s`, `1m20s`, `5m0s`, as Go prints a `time.Duration`.
fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

/// The pod phase from container states (upstream `getPhase`).
pub fn phase(
    restart_policy: &str,
    inits: &[Container],
    init_statuses: &[ApiContainerStatus],
    statuses: &[ApiContainerStatus],
    terminal: bool,
) -> String {
    let mut pending_init = false;
    let mut failed_init = false;
    for (c, s) in inits.iter().zip(init_statuses) {
        let st = s.state.clone().unwrap_or_default();
        if is_sidecar(c) {
            if st.running.is_none() {
                pending_init = true;
            }
            continue;
        }
        match (&st.terminated, &st.waiting) {
            (Some(t), _) if t.exit_code == 0 => {}
            (Some(_), _) => failed_init = true,
            (None, Some(_))
                if s.last_state
                    .as_ref()
                    .and_then(|l| l.terminated.as_ref())
                    .is_some_and(|t| t.exit_code != 0) =>
            {
                failed_init = true;
                pending_init = true;
            }
            _ => pending_init = true,
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(t) = &st.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .is_some()
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if failed_init && restart_policy == "Never" {
        return FAILED.into();
    }
    let p = if (pending_init || waiting > 0) && !terminal {
        PENDING
    } else if running > 0 {
        RUNNING
    } else if stopped > 0 && waiting == 0 {
        if terminal {
            if stopped == succeeded {
                SUCCEEDED
            } else {
                FAILED
            }
        } else if restart_policy == "Always" {
            RUNNING
        } else if stopped == succeeded {
            SUCCEEDED
        } else if restart_policy == "Never" {
            FAILED
        } else {
            RUNNING
        }
    } else if terminal {
        // Deleted before anything ran.
        FAILED
    } else {
        PENDING
    };
    p.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SandboxStatus;
    use serde_json::json;

    fn pod(restart: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"restartPolicy": restart,
                     "initContainers": [{"name": "init", "image": "busybox"}],
                     "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "nginx"}]},
            "status": {"phase": "Pending", "qosClass": "BestEffort",
                       "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
                                      {"type": "DisruptionTarget", "status": "False"}]}
        }))
        .unwrap()
    }

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn ctr(name: &str, attempt: u32, state: ContainerState) -> ContainerStatus {
        ContainerStatus {
            id: format!("{name}{attempt}"),
            name: name.into(),
            attempt,
            finished_at: matches!(state, ContainerState::Exited { .. }).then(|| ts(200)),
            state,
            image: "docker.io/library/nginx:latest".into(),
            image_id: "docker.io/library/nginx@sha256:00".into(),
            created_at: ts(100),
            started_at: Some(ts(100)),
        }
    }

    fn exited(code: i32) -> ContainerState {
        ContainerState::Exited {
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
        }
    }

    fn rt(containers: Vec<ContainerStatus>) -> PodRuntimeStatus {
        PodRuntimeStatus {
            sandbox: Some(SandboxStatus {
                id: "s".into(),
                ready: true,
                ips: vec!["10.42.1.2".parse().unwrap()],
                created_at: ts(90),
            }),
            containers,
        }
    }

    fn build_with(p: &Pod, r: &PodRuntimeStatus, terminal: bool) -> PodStatus {
        let backoff = BTreeMap::new();
        build(&Inputs {
            pod: p,
            runtime: r,
            scheme: "sim",
            host_ips: &["10.255.0.2".parse().unwrap()],
            start_time: ts(80),
            backoff: &backoff,
            terminal,
            now: ts(300),
        })
    }

    fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == t)
            .unwrap()
    }

    #[test]
    fn running_pod_is_ready_with_addresses_and_kept_conditions() {
        let p = pod("Always");
        let r = rt(vec![
            ctr("init", 0, exited(0)),
            ctr("a", 0, ContainerState::Running),
            ctr("b", 0, ContainerState::Running),
        ]);
        let s = build_with(&p, &r, false);
        assert_eq!(s.phase.as_deref(), Some(RUNNING));
        assert_eq!(s.pod_ip.as_deref(), Some("10.42.1.2"));
        assert_eq!(s.host_ip.as_deref(), Some("10.255.0.2"));
        assert_eq!(s.start_time, Some(Time(ts(80))));
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
        for t in [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
        ] {
            assert_eq!(cond(&s, t).status, "True", "{t}");
            assert_eq!(cond(&s, t).last_transition_time, Some(Time(ts(300))));
        }
        // Unchanged conditions keep their transition time; others' conditions are kept.
        assert_eq!(
            cond(&s, "PodScheduled").last_transition_time,
            Some(Time(ts(1577836800)))
        );
        assert_eq!(cond(&s, "DisruptionTarget").status, "False");
        let a = &s.container_statuses.as_ref().unwrap()[0];
        assert!(a.ready);
        assert_eq!(a.started, Some(true));
        assert_eq!(a.container_id.as_deref(), Some("sim://a0"));
        assert_eq!(a.image_id, "docker.io/library/nginx@sha256:00");
        let init = &s.init_container_statuses.as_ref().unwrap()[0];
        let t = init.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    }

    #[test]
    fn pending_while_initializing() {
        let p = pod("Always");
        let s = build_with(&p, &rt(vec![]), false);
        assert_eq!(s.phase.as_deref(), Some(PENDING));
        let c = cond(&s, "Initialized");
        assert_eq!(c.status, "False");
        assert_eq!(
            c.message.as_deref(),
            Some("containers with incomplete status: [init]")
        );
        let a = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            a.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("PodInitializing")
        );
        assert_eq!(
            cond(&s, "Ready").message.as_deref(),
            Some("containers with unready status: [a b]")
        );
    }

    #[test]
    fn completion_by_restart_policy() {
        let done = |a, b| {
            rt(vec![
                ctr("init", 0, exited(0)),
                ctr("a", 0, exited(a)),
                ctr("b", 0, exited(b)),
            ])
        };
        let phase_of =
            |policy: &str, a, b| build_with(&pod(policy), &done(a, b), false).phase.unwrap();
        assert_eq!(phase_of("Never", 0, 0), SUCCEEDED);
        assert_eq!(phase_of("Never", 0, 1), FAILED);
        assert_eq!(phase_of("OnFailure", 0, 0), SUCCEEDED);
        assert_eq!(phase_of("OnFailure", 1, 0), RUNNING);
        assert_eq!(phase_of("Always", 0, 0), RUNNING);
        let s = build_with(&pod("Never"), &done(0, 0), false);
        assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
        // Deleted pods end in a terminal phase whatever their restart policy.
        assert_eq!(
            build_with(&pod("Always"), &done(0, 0), true)
                .phase
                .as_deref(),
            Some(SUCCEEDED)
        );
        assert_eq!(
            build_with(&pod("Always"), &rt(vec![]), true)
                .phase
                .as_deref(),
            Some(FAILED)
        );
    }

    #[test]
    fn crash_loop_back_off_shows_waiting_with_last_state() {
        let p = pod("Always");
        let r = rt(vec![
            ctr("init", 0, exited(0)),
            ctr("a", 0, exited(1)),
            ctr("a", 1, exited(1)),
            ctr("b", 0, ContainerState::Running),
        ]);
        let backoff: BTreeMap<String, Duration> = [("a".into(), Duration::from_secs(20))].into();
        let s = build(&Inputs {
            pod: &p,
            runtime: &r,
            scheme: "sim",
            host_ips: &[],
            start_time: ts(80),
            backoff: &backoff,
            terminal: false,
            now: ts(300),
        });
        let a = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(a.restart_count, 1);
        let w = a.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
        assert_eq!(
            w.message.as_deref(),
            Some("back-off 20s restarting failed container=a pod=p_default(u)")
        );
        let last = a.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(last.container_id.as_deref(), Some("sim://a1"));
        assert_eq!(s.phase.as_deref(), Some(RUNNING));
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }

    #[test]
    fn failed_init_with_never_fails_the_pod() {
        let p = pod("Never");
        let s = build_with(&p, &rt(vec![ctr("init", 0, exited(2))]), false);
        assert_eq!(s.phase.as_deref(), Some(FAILED));
    }
}
