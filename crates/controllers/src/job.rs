//! The Job controller (upstream `pkg/controller/job`): runs pods until `completions`
//! succeed, `parallelism` at a time, and fails the Job past `backoffLimit`,
//! `activeDeadlineSeconds` or a `podFailurePolicy` FailJob rule.
//!
//! Pods are counted as upstream does since 1.26: every pod carries the
//! `batch.kubernetes.io/job-tracking` finalizer; a finished pod's UID is first written to
//! `status.uncountedTerminatedPods`, then its finalizer is removed, then the UID moves into
//! the `succeeded`/`failed` counters. Terminal conditions come in two steps, as with the
//! `JobPodReplacementPolicy`/`JobManagedBy` gates on (1.33's default): `SuccessCriteriaMet`
//! or `FailureTarget` first, then `Complete` or `Failed` once no pod is terminating and
//! every finished pod is counted.
//!
//! Unlike upstream, the Job and its pods are read live from the API at each sync (watches
//! only trigger syncs), so no expectations are needed to avoid acting on a stale cache.
//! Jobs whose `spec.managedBy` names another controller are left alone. Not implemented:
//! `backoffLimitPerIndex`/`maxFailedIndexes`, `successPolicy`, adoption of orphan pods
//! that match a manual selector.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, PodFailurePolicy};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use skiff_client::controllerref::{controller_of, controller_ref};
use skiff_client::events::Recorder;
use skiff_client::queue::{run_workers, Next, WorkQueue};
use skiff_client::workload::{self, controller_key, is_controlled_by, phase, watch_keys};

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The `spec.managedBy` value that means this controller (as absent does).
pub const MANAGED_BY_SELF: &str = "kubernetes.io/job-controller";
const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Upstream caps the finished pods recorded per status write (`MaxUncountedPods`) and the
/// pods created or deleted per sync (`MaxPodCreateDeletePerSync`).
const MAX_UNCOUNTED: usize = 500;
const MAX_CREATE_DELETE: usize = 500;
/// Replacement pods after failures wait `10s * 2^(failures-1)`, at most 6 minutes.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);

type Key = (String, String);

struct Ctl {
    client: Client,
    recorder: Recorder,
    /// Per Job UID: consecutive failures since the last success and when the last one ended.
    backoff: Mutex<HashMap<String, BackoffRecord>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct BackoffRecord {
    failures: u32,
    last_failure: Option<i64>,
}

pub async fn run(client: Client) -> anyhow::Result<()> {
    let queue = WorkQueue::<Key>::new();
    let jobs = watch_keys(
        "jobs",
        Api::<Job>::all(client.clone()),
        watcher::Config::default(),
        queue.clone(),
        |j: &Job| Some((j.namespace()?, j.name_any())),
    );
    let pods = watch_keys(
        "job pods",
        Api::<Pod>::all(client.clone()),
        // Every pod this controller makes carries the label: watch only those.
        watcher::Config::default().labels(CONTROLLER_UID_LABEL),
        queue.clone(),
        job_key_of_pod,
    );
    let ctl = Arc::new(Ctl {
        recorder: Recorder::new(client.clone(), "job-controller"),
        client,
        backoff: Mutex::new(HashMap::new()),
    });
    let work = run_workers("job", queue, 4, move |key: Key| {
        let ctl = ctl.clone();
        async move { ctl.sync(&key.0, &key.1).await }
    });
    tokio::join!(jobs, pods, work);
    Ok(())
}

// ---------------------------------------------------------------- pure logic

/// The Job's spec with upstream's defaults applied (the API server may not default them).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub parallelism: i32,
    /// `None`: the work-queue pattern (done when any pod succeeds and none is active).
    pub completions: Option<i32>,
    pub backoff_limit: i32,
    pub indexed: bool,
    pub suspend: bool,
    /// `podReplacementPolicy: Failed` (or a pod failure policy): terminating pods are not
    /// replaced until they are gone.
    pub only_replace_failed: bool,
}

impl Params {
    pub fn of(job: &Job) -> Params {
        let spec = job.spec.clone().unwrap_or_default();
        let (parallelism, completions) = match (spec.parallelism, spec.completions) {
            (None, None) => (1, Some(1)),
            (p, c) => (p.unwrap_or(1), c),
        };
        Params {
            parallelism: parallelism.max(0),
            completions,
            backoff_limit: spec.backoff_limit.unwrap_or(6),
            indexed: spec.completion_mode.as_deref() == Some("Indexed"),
            suspend: spec.suspend == Some(true),
            only_replace_failed: spec.pod_failure_policy.is_some()
                || spec.pod_replacement_policy.as_deref() == Some("Failed"),
        }
    }

    /// How many pods should be active (`manageJob`'s `wantActive`).
    pub fn want_active(&self, succeeded: i32, active: i32) -> i32 {
        match self.completions {
            None if succeeded > 0 => active,
            None => self.parallelism,
            Some(c) => (c - succeeded).clamp(0, self.parallelism),
        }
    }

    pub fn complete(&self, succeeded: i32, active: i32) -> bool {
        match self.completions {
            None => succeeded > 0 && active == 0,
            Some(c) => succeeded >= c && active == 0,
        }
    }
}

/// A failed pod as the pod failure policy sees it: `(job failure message, counts towards
/// backoffLimit)`.
pub fn match_failure_policy(
    policy: Option<&PodFailurePolicy>,
    pod: &Pod,
) -> (Option<String>, bool) {
    let Some(policy) = policy else {
        return (None, true);
    };
    let status = pod.status.clone().unwrap_or_default();
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    for (i, rule) in policy.rules.iter().enumerate() {
        if let Some(req) = &rule.on_exit_codes {
            let statuses = status
                .container_statuses
                .iter()
                .flatten()
                .chain(status.init_container_statuses.iter().flatten());
            let hit = statuses.filter_map(|cs| {
                let code = cs.state.as_ref()?.terminated.as_ref()?.exit_code;
                let name_ok = req.container_name.as_ref().is_none_or(|n| *n == cs.name);
                let op_ok = match req.operator.as_str() {
                    "In" => req.values.contains(&code),
                    "NotIn" => !req.values.contains(&code),
                    _ => false,
                };
                (code != 0 && name_ok && op_ok).then(|| (cs.name.clone(), code))
            });
            if let Some((cname, code)) = hit.into_iter().next() {
                match rule.action.as_str() {
                    "Ignore" => return (None, false),
                    "Count" => return (None, true),
                    "FailJob" => {
                        return (
                            Some(format!(
                                "Container {cname} for pod {ns}/{name} failed with exit code {code} matching FailJob rule at index {i}"
                            )),
                            true,
                        )
                    }
                    _ => {}
                }
            }
        } else if let Some(patterns) = &rule.on_pod_conditions {
            let cond = status.conditions.iter().flatten().find(|c| {
                patterns
                    .iter()
                    // The API defaults an omitted status to True.
                    .any(|p| {
                        let want = if p.status.is_empty() {
                            "True"
                        } else {
                            &p.status
                        };
                        p.type_ == c.type_ && want == c.status
                    })
            });
            if let Some(c) = cond {
                match rule.action.as_str() {
                    "Ignore" => return (None, false),
                    "Count" => return (None, true),
                    "FailJob" => {
                        return (
                            Some(format!(
                            "Pod {ns}/{name} has condition {} matching FailJob rule at index {i}",
                            c.type_
                        )),
                            true,
                        )
                    }
                    _ => {}
                }
            }
        }
    }
    (None, true)
}

/// `isPodFailed`: Failed, or (unless only failed pods are replaced) deleted before it
/// succeeded.
pub fn pod_failed(pod: &Pod, p: &Params) -> bool {
    match phase(pod) {
        "Failed" => true,
        _ if p.only_replace_failed => false,
        "Succeeded" => false,
        _ => pod.metadata.deletion_timestamp.is_some(),
    }
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

pub fn completion_index(pod: &Pod) -> Option<i32> {
    pod.annotations()
        .get(COMPLETION_INDEX)
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|i| *i >= 0)
}

/// Parses `status.completedIndexes` ("1,3-5,7"), keeping indexes below `completions`.
pub fn parse_indexes(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        if let (Ok(a), Ok(b)) = (a, b) {
            out.extend((a..=b).filter(|i| *i >= 0 && *i < completions));
        }
    }
    out
}

/// Formats indexes as upstream: ascending, runs of three or more as ranges... in fact
/// upstream writes every run of consecutive indexes as `a-b` (two included).
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end = it.next().unwrap();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// The lowest `n` indexes below `completions` that neither succeeded nor have an active pod.
pub fn pending_indexes(
    n: usize,
    completions: i32,
    succeeded: &BTreeSet<i32>,
    active: &HashSet<i32>,
) -> Vec<i32> {
    (0..completions)
        .filter(|i| !succeeded.contains(i) && !active.contains(i))
        .take(n)
        .collect()
}

/// The delay before replacement pods may be created after `r.failures` consecutive failures.
fn backoff_remaining(r: &BackoffRecord, now: i64) -> Duration {
    let (Some(last), true) = (r.last_failure, r.failures > 0) else {
        return Duration::ZERO;
    };
    let backoff = BACKOFF_BASE
        .checked_mul(1u32 << (r.failures - 1).min(10))
        .unwrap_or(BACKOFF_MAX)
        .min(BACKOFF_MAX);
    let elapsed = Duration::from_secs(now.saturating_sub(last).max(0) as u64);
    backoff.saturating_sub(elapsed)
}

fn finish_time(pod: &Pod) -> Option<i64> {
    let st = pod.status.as_ref()?;
    st.container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0.as_second())
        .max()
}

fn condition<'a>(st: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    st.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// Complete or Failed: nothing more to do for this Job (`IsJobFinished`).
pub fn is_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .is_some_and(|st| condition(st, "Complete").is_some() || condition(st, "Failed").is_some())
}

fn new_condition(type_: &str, status: &str, reason: &str, message: &str) -> JobCondition {
    let now = Time(Timestamp::now());
    JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: (!reason.is_empty()).then(|| reason.into()),
        message: (!message.is_empty()).then(|| message.into()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// `ensureJobConditionStatus`: sets the condition of `type_`, appending it unless it would be
/// a new False one. Returns whether anything changed.
fn ensure_condition(
    st: &mut JobStatus,
    type_: &str,
    status: &str,
    reason: &str,
    msg: &str,
) -> bool {
    let list = st.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = list.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status
            || c.reason.as_deref().unwrap_or("") != reason
            || c.message.as_deref().unwrap_or("") != msg
        {
            *c = new_condition(type_, status, reason, msg);
            return true;
        }
        return false;
    }
    if status != "False" {
        list.push(new_condition(type_, status, reason, msg));
        return true;
    }
    false
}

/// Where the Job is going: the interim condition to write now and the final one.
#[derive(Clone, Debug, PartialEq)]
struct Finish {
    /// `SuccessCriteriaMet` or `FailureTarget`.
    interim: &'static str,
    reason: String,
    message: String,
}

impl Finish {
    fn failure(reason: &str, message: &str) -> Finish {
        Finish {
            interim: "FailureTarget",
            reason: reason.into(),
            message: message.into(),
        }
    }
    fn success() -> Finish {
        Finish {
            interim: "SuccessCriteriaMet",
            reason: "CompletionsReached".into(),
            message: "Reached expected number of succeeded pods".into(),
        }
    }
    fn is_failure(&self) -> bool {
        self.interim == "FailureTarget"
    }
    fn final_type(&self) -> &'static str {
        if self.is_failure() {
            "Failed"
        } else {
            "Complete"
        }
    }
}

/// Pod restarts past the backoff limit for `restartPolicy: OnFailure`.
fn past_backoff_on_failure(job: &Job, pods: &[Pod], limit: i32) -> bool {
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return false;
    }
    let restarts: i32 = pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum();
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

// ---------------------------------------------------------------- the sync

impl Ctl {
    async fn sync(&self, ns: &str, name: &str) -> anyhow::Result<Next> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let Some(mut job) = jobs.get_opt(name).await? else {
            self.release_orphans(&pods_api, name).await?;
            return Ok(Next::Done);
        };
        // A Job another controller manages (`spec.managedBy`) is left to it, pods and all.
        if job
            .spec
            .as_ref()
            .and_then(|s| s.managed_by.as_deref())
            .is_some_and(|m| m != MANAGED_BY_SELF)
        {
            return Ok(Next::Done);
        }
        let uid = job.uid().unwrap_or_default();
        // By name, not UID: pods of an earlier Job of the same name (deleted, so its
        // controller is gone) are seen too, and lose the tracking finalizer.
        let (pods, stale): (Vec<Pod>, Vec<Pod>) = pods_api
            .list(&ListParams::default().labels(&format!("{JOB_NAME_LABEL}={name}")))
            .await?
            .items
            .into_iter()
            .filter(job_or_orphan)
            .partition(|p| is_controlled_by(&p.metadata, &uid));
        for p in stale.iter().filter(|p| has_finalizer(p)) {
            remove_finalizer(&pods_api, p).await?;
        }
        if is_finished(&job) {
            // Pods left with the finalizer (e.g. created while the status was written).
            for p in pods.iter().filter(|p| has_finalizer(p)) {
                remove_finalizer(&pods_api, p).await?;
            }
            self.backoff.lock().unwrap().remove(&uid);
            return Ok(Next::Done);
        }
        if let Some(mode) = job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) {
            if mode != "Indexed" && mode != "NonIndexed" {
                self.recorder
                    .warning(
                        &job,
                        "UnknownCompletionMode",
                        "Skipped Job sync because completion mode is unknown",
                    )
                    .await;
                return Ok(Next::Done);
            }
        }
        let p = Params::of(&job);
        let policy = job.spec.as_ref().and_then(|s| s.pod_failure_policy.clone());
        let mut status = job.status.clone().unwrap_or_default();
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let unc_succeeded: HashSet<String> = uncounted
            .succeeded
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let unc_failed: HashSet<String> = uncounted
            .failed
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let valid_index = |pod: &Pod| {
            !p.indexed || completion_index(pod).is_some_and(|i| i < p.completions.unwrap_or(0))
        };

        let active_pods: Vec<&Pod> = pods.iter().filter(|x| workload::is_active(x)).collect();
        let mut active = active_pods.len() as i32;
        let mut ready = active_pods.iter().filter(|x| workload::is_ready(x)).count() as i32;
        let mut terminating = pods
            .iter()
            .filter(|x| {
                x.metadata.deletion_timestamp.is_some()
                    && !matches!(phase(x), "Succeeded" | "Failed")
            })
            .count() as i32;
        let counted = |x: &&Pod| {
            let u = x.uid().unwrap_or_default();
            has_finalizer(x) && !unc_succeeded.contains(&u) && !unc_failed.contains(&u)
        };
        let new_succeeded: Vec<&Pod> = pods
            .iter()
            .filter(counted)
            .filter(|x| valid_index(x) && phase(x) == "Succeeded")
            .collect();
        let new_failed: Vec<&Pod> = pods
            .iter()
            .filter(counted)
            .filter(|x| valid_index(x) && pod_failed(x, &p))
            .collect();
        let mut succeeded =
            status.succeeded.unwrap_or(0) + new_succeeded.len() as i32 + unc_succeeded.len() as i32;
        let failed = status.failed.unwrap_or(0)
            + new_failed
                .iter()
                .filter(|x| match_failure_policy(policy.as_ref(), x).1)
                .count() as i32
            + unc_failed.len() as i32;

        if status.start_time.is_none() && !p.suspend {
            status.start_time = Some(Time(Timestamp::now()));
        }
        let now = Timestamp::now().as_second();
        let record = self.next_backoff(&uid, &new_succeeded, &new_failed, now);
        let mut next = Next::Done;

        let mut finish: Option<Finish> = None;
        if condition(&status, "SuccessCriteriaMet").is_some() {
            finish = Some(Finish::success());
        } else if let Some(c) = condition(&status, "FailureTarget") {
            finish = Some(Finish::failure(
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or(""),
            ));
        } else if let Some(msg) = pods
            .iter()
            .filter(|x| pod_failed(x, &p))
            .find_map(|x| match_failure_policy(policy.as_ref(), x).0)
        {
            finish = Some(Finish::failure("PodFailurePolicy", &msg));
        }
        if finish.is_none() {
            let deadline = job.spec.as_ref().and_then(|s| s.active_deadline_seconds);
            let started = status.start_time.as_ref().map(|t| t.0.as_second());
            if failed > p.backoff_limit || past_backoff_on_failure(&job, &pods, p.backoff_limit) {
                finish = Some(Finish::failure(
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ));
            } else if let (Some(d), Some(s), false) = (deadline, started, p.suspend) {
                if now - s >= d {
                    finish = Some(Finish::failure(
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                    ));
                } else {
                    next = Next::After(Duration::from_secs((s + d - now).max(1) as u64));
                }
            }
        }

        let completions = p.completions.unwrap_or(0);
        let prev_indexes = if p.indexed {
            parse_indexes(
                status.completed_indexes.as_deref().unwrap_or(""),
                completions,
            )
        } else {
            BTreeSet::new()
        };
        let mut succeeded_indexes = prev_indexes.clone();
        if p.indexed {
            succeeded_indexes.extend(
                pods.iter()
                    .filter(|x| phase(x) == "Succeeded")
                    .filter_map(completion_index)
                    .filter(|i| *i < completions),
            );
            succeeded = succeeded_indexes.len() as i32;
        }

        let mut suspend_changed = false;
        let mut first_err: Option<anyhow::Error> = None;
        if finish.is_some() {
            let (deleted, deleted_ready) =
                self.delete_pods(&job, &pods_api, &active_pods, false).await;
            if deleted != active {
                finish = None;
            }
            active -= deleted;
            terminating += deleted;
            ready -= deleted_ready;
        } else {
            let mut managed = false;
            if job.metadata.deletion_timestamp.is_none() {
                managed = true;
                match self
                    .manage(
                        &job,
                        &pods_api,
                        &p,
                        &active_pods,
                        succeeded,
                        &succeeded_indexes,
                        terminating,
                        &record,
                        now,
                    )
                    .await
                {
                    Ok(m) => {
                        active = m.active;
                        terminating += m.deleted;
                        ready -= m.deleted_ready;
                        if let Some(d) = m.retry_after {
                            next = earliest(next, d);
                        }
                    }
                    Err(e) => first_err = Some(e),
                }
            }
            if p.complete(succeeded, active) {
                finish = Some(Finish::success());
            } else if managed {
                if p.suspend {
                    if ensure_condition(
                        &mut status,
                        "Suspended",
                        "True",
                        "JobSuspended",
                        "Job suspended",
                    ) {
                        suspend_changed = true;
                        self.recorder
                            .normal(&job, "Suspended", "Job suspended")
                            .await;
                    }
                } else if ensure_condition(
                    &mut status,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                ) {
                    suspend_changed = true;
                    self.recorder.normal(&job, "Resumed", "Job resumed").await;
                    status.start_time = Some(Time(Timestamp::now()));
                }
            }
        }

        let mut needs_flush = suspend_changed
            || status.active.unwrap_or(0) != active
            || status.ready != Some(ready)
            || status.terminating != Some(terminating)
            || job.status.as_ref().and_then(|s| s.start_time.as_ref())
                != status.start_time.as_ref();
        status.active = Some(active);
        status.ready = Some(ready);
        status.terminating = Some(terminating);

        // trackJobStatusAndRemoveFinalizers
        let mut with_finalizer: HashSet<String> = pods
            .iter()
            .filter(|x| has_finalizer(x))
            .filter_map(|x| x.uid())
            .collect();
        if clean_uncounted(&mut status, &with_finalizer) {
            needs_flush = true;
        }
        let mut unc = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let mut unc_s = unc.succeeded.take().unwrap_or_default();
        let mut unc_f = unc.failed.take().unwrap_or_default();
        let mut to_release: Vec<&Pod> = Vec::new();
        let mut new_indexes = Vec::new();
        let mut capped = false;
        let mut sorted: Vec<&Pod> = pods.iter().collect();
        if p.indexed {
            sorted.sort_by_key(|x| completion_index(x).unwrap_or(i32::MAX));
        }
        for pod in sorted {
            if !has_finalizer(pod) {
                continue;
            }
            let uid = pod.uid().unwrap_or_default();
            let considered_failed = pod_failed(pod, &p);
            let can_release = job.metadata.deletion_timestamp.is_some()
                || finish.is_some()
                || phase(pod) == "Succeeded"
                || considered_failed;
            if !can_release {
                continue;
            }
            to_release.push(pod);
            if phase(pod) == "Succeeded" && !unc_f.contains(&uid) {
                if p.indexed {
                    if let Some(ix) = completion_index(pod).filter(|i| *i < completions) {
                        if !prev_indexes.contains(&ix) {
                            new_indexes.push(ix);
                            needs_flush = true;
                        }
                    }
                } else if !unc_s.contains(&uid) {
                    unc_s.push(uid);
                    needs_flush = true;
                }
            } else if (considered_failed || finish.as_ref().is_some_and(Finish::is_failure))
                && !unc_f.contains(&uid)
                && valid_index(pod)
                && match_failure_policy(policy.as_ref(), pod).1
            {
                unc_f.push(uid);
                needs_flush = true;
            }
            if new_indexes.len() + unc_s.len() + unc_f.len() >= MAX_UNCOUNTED {
                capped = true;
                break;
            }
        }
        status.uncounted_terminated_pods =
            Some(k8s_openapi::api::batch::v1::UncountedTerminatedPods {
                succeeded: Some(unc_s),
                failed: Some(unc_f),
            });
        if p.indexed {
            succeeded_indexes.extend(new_indexes);
            let s = format_indexes(&succeeded_indexes);
            if status.completed_indexes.as_deref().unwrap_or("") != s {
                needs_flush = true;
            }
            status.succeeded = Some(succeeded_indexes.len() as i32);
            status.completed_indexes = Some(s);
        }
        let mut final_finish = None;
        if let Some(f) = &finish {
            if condition(&status, f.interim).is_none() {
                status
                    .conditions
                    .get_or_insert_with(Vec::new)
                    .push(new_condition(f.interim, "True", &f.reason, &f.message));
                needs_flush = true;
            }
            final_finish = Some(f.clone());
        }

        // Flush the uncounted UIDs before their pods lose the finalizer, so no pod is lost
        // if this process stops in between.
        if needs_flush {
            job = self.write_status(&jobs, &job, &status).await?;
            self.backoff.lock().unwrap().insert(uid.clone(), record);
            needs_flush = false;
        }
        for pod in to_release {
            match remove_finalizer(&pods_api, pod).await {
                Ok(()) => {
                    with_finalizer.remove(&pod.uid().unwrap_or_default());
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if clean_uncounted(&mut status, &with_finalizer) {
            needs_flush = true;
        }
        let mut finished_now = None;
        if let Some(f) = final_finish.filter(|_| !capped) {
            let unc = status.uncounted_terminated_pods.clone().unwrap_or_default();
            let pending =
                unc.succeeded.iter().flatten().count() + unc.failed.iter().flatten().count();
            if pending == 0 && terminating == 0 {
                ensure_condition(&mut status, f.final_type(), "True", &f.reason, &f.message);
                if !f.is_failure() {
                    status.completion_time =
                        condition(&status, "Complete").and_then(|c| c.last_transition_time.clone());
                }
                needs_flush = true;
                finished_now = Some(f);
            } else if terminating > 0 {
                // Pods still terminating: look again soon even if no event arrives.
                next = earliest(next, Duration::from_secs(5));
            }
        }
        if needs_flush {
            job = self.write_status(&jobs, &job, &status).await?;
        }
        if let Some(f) = finished_now {
            self.backoff.lock().unwrap().remove(&uid);
            if f.is_failure() {
                self.recorder.warning(&job, &f.reason, &f.message).await;
            } else {
                if p.completions
                    .is_some_and(|c| status.succeeded.unwrap_or(0) > c)
                {
                    self.recorder
                        .warning(
                            &job,
                            "TooManySucceededPods",
                            "Too many succeeded pods running after completion count reached",
                        )
                        .await;
                }
                self.recorder
                    .normal(&job, "Completed", "Job completed")
                    .await;
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(next),
        }
    }

    /// `newBackoffRecord`: failures since the last success, updated with pods that just
    /// finished (taken into account once written to the status).
    fn next_backoff(
        &self,
        uid: &str,
        succeeded: &[&Pod],
        failed: &[&Pod],
        now: i64,
    ) -> BackoffRecord {
        let mut r = self
            .backoff
            .lock()
            .unwrap()
            .get(uid)
            .copied()
            .unwrap_or_default();
        let last_success = succeeded
            .iter()
            .map(|p| finish_time(p).unwrap_or(now))
            .max();
        let last_failure = failed.iter().map(|p| finish_time(p).unwrap_or(now)).max();
        match (last_success, last_failure) {
            (None, None) => {}
            (Some(s), f) if f.is_none_or(|f| s >= f) => {
                r = BackoffRecord::default();
            }
            (s, Some(f)) => {
                let after = failed
                    .iter()
                    .filter(|p| s.is_none_or(|s| finish_time(p).unwrap_or(now) > s))
                    .count() as u32;
                if s.is_some() {
                    r.failures = after;
                } else {
                    r.failures += after;
                }
                r.last_failure = Some(f.max(r.last_failure.unwrap_or(0)));
            }
            _ => {}
        }
        r
    }

    async fn write_status(
        &self,
        jobs: &Api<Job>,
        job: &Job,
        status: &JobStatus,
    ) -> anyhow::Result<Job> {
        let mut j = job.clone();
        let mut status = status.clone();
        // Empty lists are omitted on the wire, as Go's omitempty does.
        if status.conditions.as_ref().is_some_and(Vec::is_empty) {
            status.conditions = None;
        }
        if let Some(u) = status.uncounted_terminated_pods.as_mut() {
            u.succeeded = u.succeeded.take().filter(|v| !v.is_empty());
            u.failed = u.failed.take().filter(|v| !v.is_empty());
        }
        if status.completed_indexes.as_deref() == Some("") {
            status.completed_indexes = None;
        }
        // So are zero counters (`ready` and `terminating` are pointers upstream: kept).
        for c in [
            &mut status.active,
            &mut status.succeeded,
            &mut status.failed,
        ] {
            if *c == Some(0) {
                *c = None;
            }
        }
        j.status = Some(status);
        j.metadata.managed_fields = None;
        Ok(jobs
            .replace_status(&job.name_any(), &PostParams::default(), &j)
            .await?)
    }

    /// Deletes pods (removing the tracking finalizer first when `release`); returns how many
    /// were deleted and how many of those were ready.
    async fn delete_pods(
        &self,
        job: &Job,
        api: &Api<Pod>,
        pods: &[&Pod],
        release: bool,
    ) -> (i32, i32) {
        let mut deleted = 0;
        let mut ready = 0;
        for pod in pods {
            if release && remove_finalizer(api, pod).await.is_err() {
                continue;
            }
            match api.delete(&pod.name_any(), &DeleteParams::default()).await {
                Ok(_) => {
                    self.recorder
                        .normal(
                            job,
                            "SuccessfulDelete",
                            &format!("Deleted pod: {}", pod.name_any()),
                        )
                        .await;
                }
                Err(e) if workload::is_not_found(&e) => {}
                Err(e) => {
                    self.recorder
                        .warning(job, "FailedDelete", &format!("Error deleting: {e}"))
                        .await;
                    continue;
                }
            }
            deleted += 1;
            if workload::is_ready(pod) {
                ready += 1;
            }
        }
        (deleted, ready)
    }

    #[allow(clippy::too_many_arguments)]
    async fn manage(
        &self,
        job: &Job,
        api: &Api<Pod>,
        p: &Params,
        active_pods: &[&Pod],
        succeeded: i32,
        succeeded_indexes: &BTreeSet<i32>,
        terminating: i32,
        record: &BackoffRecord,
        now: i64,
    ) -> anyhow::Result<Managed> {
        let active = active_pods.len() as i32;
        let mut out = Managed {
            active,
            ..Default::default()
        };
        if p.suspend {
            let (d, r) = self.delete_pods(job, api, active_pods, true).await;
            out.active -= d;
            out.deleted = d;
            out.deleted_ready = r;
            return Ok(out);
        }
        let want = p.want_active(succeeded, active);
        let rm_at_least = (active - want).max(0) as usize;
        let mut to_delete: Vec<&Pod> = Vec::new();
        let mut left: Vec<&Pod> = Vec::new();
        if p.indexed {
            // Pods with a repeated, missing or out-of-range index go first.
            let mut seen = HashSet::new();
            let completions = p.completions.unwrap_or(0);
            let mut sorted = active_pods.to_vec();
            sorted.sort_by_key(|x| std::cmp::Reverse(workload::deletion_rank(x)));
            for x in sorted {
                match completion_index(x) {
                    Some(i) if i < completions && seen.insert(i) => left.push(x),
                    _ => to_delete.push(x),
                }
            }
        } else {
            left = active_pods.to_vec();
        }
        if to_delete.len() < rm_at_least {
            left.sort_by_key(|x| workload::deletion_rank(x));
            let n = rm_at_least - to_delete.len();
            to_delete.extend(left.into_iter().take(n));
        }
        to_delete.truncate(MAX_CREATE_DELETE);
        if !to_delete.is_empty() {
            let (d, r) = self.delete_pods(job, api, &to_delete, true).await;
            out.active -= d;
            out.deleted = d;
            out.deleted_ready = r;
            return Ok(out);
        }
        let waiting = if p.only_replace_failed {
            terminating
        } else {
            0
        };
        let diff = want - waiting - active;
        if diff <= 0 {
            return Ok(out);
        }
        let remaining = backoff_remaining(record, now);
        if !remaining.is_zero() {
            out.retry_after = Some(remaining);
            return Ok(out);
        }
        let mut diff = (diff as usize).min(MAX_CREATE_DELETE);
        let indexes: Vec<Option<i32>> = if p.indexed {
            let active_ix: HashSet<i32> = active_pods
                .iter()
                .filter_map(|x| completion_index(x))
                .collect();
            let ix = pending_indexes(
                diff,
                p.completions.unwrap_or(0),
                succeeded_indexes,
                &active_ix,
            );
            diff = ix.len();
            ix.into_iter().map(Some).collect()
        } else {
            vec![None; diff]
        };
        let template = job
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        // Slow start, as upstream: batches of 1, 2, 4, ... stop at the first failing batch.
        let mut batch = 1usize;
        let mut done = 0usize;
        while done < diff {
            let end = (done + batch).min(diff);
            let creates = indexes[done..end]
                .iter()
                .map(|ix| self.create_pod(job, api, &template, *ix));
            let results = futures::future::join_all(creates).await;
            let mut err = None;
            for r in results {
                match r {
                    Ok(true) => out.active += 1,
                    Ok(false) => {}
                    Err(e) => {
                        err.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = err {
                return Err(e);
            }
            done = end;
            batch *= 2;
        }
        Ok(out)
    }

    /// Creates one pod; `Ok(false)` when the namespace is terminating.
    async fn create_pod(
        &self,
        job: &Job,
        api: &Api<Pod>,
        template: &PodTemplateSpec,
        index: Option<i32>,
    ) -> anyhow::Result<bool> {
        let pod = pod_from_template(job, template, index);
        match api.create(&PostParams::default(), &pod).await {
            Ok(created) => {
                self.recorder
                    .normal(
                        job,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", created.name_any()),
                    )
                    .await;
                Ok(true)
            }
            Err(e) if workload::namespace_terminating(&e) => Ok(false),
            Err(e) => {
                self.recorder
                    .warning(job, "FailedCreate", &format!("Error creating: {e}"))
                    .await;
                Err(e.into())
            }
        }
    }

    /// The Job is gone: its pods must not keep the tracking finalizer.
    async fn release_orphans(&self, api: &Api<Pod>, job_name: &str) -> anyhow::Result<()> {
        let pods = api
            .list(&ListParams::default().labels(&format!("{JOB_NAME_LABEL}={job_name}")))
            .await?;
        for pod in pods
            .items
            .iter()
            .filter(|p| has_finalizer(p) && job_or_orphan(p))
        {
            remove_finalizer(api, pod).await?;
        }
        Ok(())
    }
}

/// The Job a pod event concerns: its controller, or, for a pod orphaned with the tracking
/// finalizer still on (its Job deleted with `propagationPolicy: Orphan`), the Job its
/// labels name, whose sync releases it (`syncOrphanPod`).
fn job_key_of_pod(p: &Pod) -> Option<Key> {
    controller_key(&p.metadata, "batch/v1", "Job").or_else(|| {
        let orphan = has_finalizer(p) && controller_of(&p.metadata).is_none();
        orphan.then(|| Some((p.namespace()?, p.labels().get(JOB_NAME_LABEL)?.clone())))?
    })
}

/// Controlled by a Job, or by nothing: a pod whose tracking finalizer is this controller's
/// to manage (pods of other controllers are left alone).
fn job_or_orphan(p: &Pod) -> bool {
    controller_of(&p.metadata).is_none_or(|r| r.kind == "Job" && r.api_version == "batch/v1")
}

fn earliest(next: Next, d: Duration) -> Next {
    match next {
        Next::After(x) if x <= d => Next::After(x),
        _ => Next::After(d),
    }
}

#[derive(Default)]
struct Managed {
    active: i32,
    deleted: i32,
    deleted_ready: i32,
    retry_after: Option<Duration>,
}

/// `cleanUncountedPodsWithoutFinalizers`: UIDs whose pods lost the finalizer move into the
/// counters. Returns whether the status changed.
fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let unc = status
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    let mut changed = false;
    let s = unc.succeeded.take().unwrap_or_default();
    let keep_s: Vec<String> = s
        .iter()
        .filter(|u| with_finalizer.contains(*u))
        .cloned()
        .collect();
    let moved_s = (s.len() - keep_s.len()) as i32;
    unc.succeeded = Some(keep_s);
    let f = unc.failed.take().unwrap_or_default();
    let keep_f: Vec<String> = f
        .iter()
        .filter(|u| with_finalizer.contains(*u))
        .cloned()
        .collect();
    let moved_f = (f.len() - keep_f.len()) as i32;
    unc.failed = Some(keep_f);
    if moved_s > 0 {
        status.succeeded = Some(status.succeeded.unwrap_or(0) + moved_s);
        changed = true;
    }
    if moved_f > 0 {
        status.failed = Some(status.failed.unwrap_or(0) + moved_f);
        changed = true;
    }
    changed
}

/// Removes the tracking finalizer with a JSON patch that tests its position first, so a
/// concurrent change to the finalizers makes the patch fail instead of removing another.
async fn remove_finalizer(api: &Api<Pod>, pod: &Pod) -> anyhow::Result<()> {
    let Some(i) = pod
        .finalizers()
        .iter()
        .position(|f| f == TRACKING_FINALIZER)
    else {
        return Ok(());
    };
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": format!("/metadata/finalizers/{i}"), "value": TRACKING_FINALIZER},
        {"op": "remove", "path": format!("/metadata/finalizers/{i}")},
    ]))?;
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if workload::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The pod a Job creates from its template (`CreatePodsWithGenerateName` plus the Job's
/// additions: labels, tracking finalizer, completion index).
pub fn pod_from_template(job: &Job, template: &PodTemplateSpec, index: Option<i32>) -> Pod {
    let name = job.name_any();
    let uid = job.uid().unwrap_or_default();
    let tm = template.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = tm.labels.clone().unwrap_or_default();
    for (k, v) in [
        (CONTROLLER_UID_LABEL, &uid),
        (JOB_NAME_LABEL, &name),
        (LEGACY_CONTROLLER_UID_LABEL, &uid),
        (LEGACY_JOB_NAME_LABEL, &name),
    ] {
        labels.insert(k.to_string(), v.clone());
    }
    let mut annotations = tm.annotations.clone().unwrap_or_default();
    let mut finalizers = tm.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.into());
    }
    let mut spec = template.spec.clone().unwrap_or_default();
    let generate_name = match index {
        Some(ix) => {
            annotations.insert(COMPLETION_INDEX.into(), ix.to_string());
            labels.insert(COMPLETION_INDEX.into(), ix.to_string());
            spec.hostname = Some(format!("{name}-{ix}"));
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                let env = c.env.get_or_insert_with(Vec::new);
                if !env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
                    env.push(EnvVar {
                        name: COMPLETION_INDEX_ENV.into(),
                        value_from: Some(EnvVarSource {
                            field_ref: Some(ObjectFieldSelector {
                                field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
            }
            // Upstream keeps the prefix short enough for the random suffix.
            format!(
                "{}-{ix}-",
                truncate(&name, 63 - 6 - ix.to_string().len() - 2)
            )
        }
        None => format!("{}-", truncate(&name, 58)),
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.namespace(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![controller_ref(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn truncate(s: &str, n: usize) -> &str {
    if s.len() <= n {
        s
    } else {
        &s[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        JobSpec, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
        PodFailurePolicyRule,
    };
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodCondition, PodStatus,
    };

    fn job(spec: JobSpec) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    #[test]
    fn defaults_and_wanted_pods() {
        let p = Params::of(&job(JobSpec::default()));
        assert_eq!(
            (p.parallelism, p.completions, p.backoff_limit),
            (1, Some(1), 6)
        );
        let p = Params::of(&job(JobSpec {
            completions: Some(5),
            parallelism: Some(2),
            ..Default::default()
        }));
        assert_eq!(p.want_active(0, 0), 2);
        assert_eq!(p.want_active(4, 1), 1);
        assert_eq!(p.want_active(5, 0), 0);
        assert!(p.complete(5, 0));
        assert!(!p.complete(5, 1));
        // Work queue: parallelism without completions.
        let p = Params::of(&job(JobSpec {
            parallelism: Some(3),
            ..Default::default()
        }));
        assert_eq!(p.completions, None);
        assert_eq!(p.want_active(0, 0), 3);
        assert_eq!(p.want_active(1, 2), 2);
        assert!(p.complete(1, 0));
    }

    #[test]
    fn indexes_round_trip() {
        let s = parse_indexes("0,2-4,7,9-10", 10);
        assert_eq!(
            s.iter().copied().collect::<Vec<_>>(),
            vec![0, 2, 3, 4, 7, 9]
        );
        assert_eq!(format_indexes(&s), "0,2-4,7,9");
        let s: BTreeSet<i32> = [1, 2].into();
        assert_eq!(format_indexes(&s), "1-2");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
        let active: HashSet<i32> = [0].into();
        assert_eq!(pending_indexes(2, 5, &[1].into(), &active), vec![2, 3]);
    }

    fn failed_pod(code: i32, conds: &[&str]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("pi-x".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "main".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: code,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                conditions: Some(
                    conds
                        .iter()
                        .map(|c| PodCondition {
                            type_: c.to_string(),
                            status: "True".into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn pod_failure_policy_rules() {
        let policy = PodFailurePolicy {
            rules: vec![
                PodFailurePolicyRule {
                    action: "Ignore".into(),
                    on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                        type_: "DisruptionTarget".into(),
                        status: "True".into(),
                    }]),
                    ..Default::default()
                },
                PodFailurePolicyRule {
                    action: "FailJob".into(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: Some("main".into()),
                        operator: "In".into(),
                        values: vec![42],
                    }),
                    ..Default::default()
                },
                PodFailurePolicyRule {
                    action: "Count".into(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: None,
                        operator: "NotIn".into(),
                        values: vec![42],
                    }),
                    ..Default::default()
                },
            ],
        };
        let (msg, count) = match_failure_policy(Some(&policy), &failed_pod(42, &[]));
        assert_eq!(
            msg.as_deref(),
            Some("Container main for pod default/pi-x failed with exit code 42 matching FailJob rule at index 1")
        );
        assert!(count);
        assert_eq!(
            match_failure_policy(Some(&policy), &failed_pod(42, &["DisruptionTarget"])),
            (None, false)
        );
        assert_eq!(
            match_failure_policy(Some(&policy), &failed_pod(1, &[])),
            (None, true)
        );
        assert_eq!(
            match_failure_policy(None, &failed_pod(42, &[])),
            (None, true)
        );
    }

    #[test]
    fn created_pods_carry_labels_finalizer_and_index() {
        let mut j = job(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(3),
            ..Default::default()
        });
        j.spec.as_mut().unwrap().template.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![Default::default()],
            ..Default::default()
        });
        let t = j.spec.as_ref().unwrap().template.clone();
        let pod = pod_from_template(&j, &t, Some(2));
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[CONTROLLER_UID_LABEL], "u1");
        assert_eq!(labels[JOB_NAME_LABEL], "pi");
        assert_eq!(labels["job-name"], "pi");
        assert_eq!(labels[COMPLETION_INDEX], "2");
        assert_eq!(
            pod.metadata.annotations.as_ref().unwrap()[COMPLETION_INDEX],
            "2"
        );
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-2-"));
        assert_eq!(pod.spec.as_ref().unwrap().hostname.as_deref(), Some("pi-2"));
        assert_eq!(
            pod.metadata.finalizers.as_ref().unwrap(),
            &vec![TRACKING_FINALIZER.to_string()]
        );
        let env = pod.spec.as_ref().unwrap().containers[0]
            .env
            .as_ref()
            .unwrap();
        assert_eq!(env[0].name, "JOB_COMPLETION_INDEX");
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
    }

    #[test]
    fn uncounted_pods_move_to_counters_once_released() {
        let mut st = JobStatus {
            succeeded: Some(1),
            uncounted_terminated_pods: Some(k8s_openapi::api::batch::v1::UncountedTerminatedPods {
                succeeded: Some(vec!["a".into(), "b".into()]),
                failed: Some(vec!["c".into()]),
            }),
            ..Default::default()
        };
        let with: HashSet<String> = ["b".to_string()].into();
        assert!(clean_uncounted(&mut st, &with));
        assert_eq!(st.succeeded, Some(2));
        assert_eq!(st.failed, Some(1));
        let u = st.uncounted_terminated_pods.unwrap();
        assert_eq!(u.succeeded.unwrap(), vec!["b".to_string()]);
        assert!(u.failed.unwrap().is_empty());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let r = BackoffRecord {
            failures: 1,
            last_failure: Some(100),
        };
        assert_eq!(backoff_remaining(&r, 100), Duration::from_secs(10));
        assert_eq!(backoff_remaining(&r, 105), Duration::from_secs(5));
        assert_eq!(backoff_remaining(&r, 200), Duration::ZERO);
        let r = BackoffRecord {
            failures: 3,
            last_failure: Some(0),
        };
        assert_eq!(backoff_remaining(&r, 0), Duration::from_secs(40));
        let r = BackoffRecord {
            failures: 30,
            last_failure: Some(0),
        };
        assert_eq!(backoff_remaining(&r, 0), BACKOFF_MAX);
        assert_eq!(
            backoff_remaining(&BackoffRecord::default(), 0),
            Duration::ZERO
        );
    }
}
