//! The CronJob controller (upstream `pkg/controller/cronjob`, the v2 controller): creates a
//! Job `<cronjob>-<scheduled time in minutes since the epoch>` at each scheduled time of a
//! standard cron schedule, in `spec.timeZone` (an IANA zone) or the process's zone; honours
//! `concurrencyPolicy`, `suspend` and `startingDeadlineSeconds`; keeps `status.active`,
//! `lastScheduleTime`, `lastSuccessfulTime`; and deletes finished Jobs beyond the history
//! limits. A schedule or zone that cannot be used is reported as a Warning event and the
//! CronJob is left alone until it changes — never retried in a loop.
//!
//! The CronJob and its Jobs are read live at each sync; watches of both (and a timer for the
//! next scheduled time) trigger syncs.

pub use skiff_api::cron as schedule;

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use skiff_client::controllerref::controller_ref;
use skiff_client::events::Recorder;
use skiff_client::queue::{run_workers, Next, WorkQueue};
use skiff_client::workload::{self, controller_key, is_controlled_by, watch_keys};

use crate::job::is_finished;
use schedule::Schedule;

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Syncs land this long after the scheduled time, so the clock has surely passed it.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);
/// More missed start times than this are reported (upstream's threshold).
const TOO_MANY_MISSED: usize = 100;

type Key = (String, String);

struct Ctl {
    client: Client,
    recorder: Recorder,
}

pub async fn run(client: Client) -> anyhow::Result<()> {
    let queue = WorkQueue::<Key>::new();
    let cronjobs = watch_keys(
        "cronjobs",
        Api::<CronJob>::all(client.clone()),
        watcher::Config::default(),
        queue.clone(),
        |c: &CronJob| Some((c.namespace()?, c.name_any())),
    );
    let jobs = watch_keys(
        "cronjob jobs",
        Api::<Job>::all(client.clone()),
        watcher::Config::default(),
        queue.clone(),
        |j: &Job| controller_key(&j.metadata, "batch/v1", "CronJob"),
    );
    let ctl = Arc::new(Ctl {
        recorder: Recorder::new(client.clone(), "cronjob-controller"),
        client,
    });
    let work = run_workers("cronjob", queue, 2, move |key: Key| {
        let ctl = ctl.clone();
        async move { ctl.sync(&key.0, &key.1).await }
    });
    tokio::join!(cronjobs, jobs, work);
    Ok(())
}

/// The zone schedules are read in: `spec.timeZone`, else this process's.
fn zone(cj: &CronJob) -> Result<TimeZone, (String, String)> {
    match cj.spec.as_ref().and_then(|s| s.time_zone.as_deref()) {
        Some(name) => TimeZone::get(name).map_err(|e| (name.to_string(), e.to_string())),
        None => Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC)),
    }
}

/// The most recent scheduled time in `(earliest, now]` and how many were missed.
pub fn most_recent(
    sched: &Schedule,
    tz: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
) -> (Option<Timestamp>, usize) {
    let Some(mut t) = sched.next(earliest, tz).filter(|t| *t <= now) else {
        return (None, 0);
    };
    let mut missed = 1;
    loop {
        let Some(n) = sched.next(t, tz).filter(|n| *n <= now) else {
            return (Some(t), missed);
        };
        missed += 1;
        if missed > TOO_MANY_MISSED {
            // Jump close to `now` by the last interval, then walk the remaining times.
            let step = (n.as_second() - t.as_second()).max(1);
            let k = (now.as_second() - n.as_second()) / step;
            missed += k as usize;
            let from =
                Timestamp::from_second(n.as_second() + (k - 1).max(0) * step - 1).unwrap_or(n);
            t = n;
            let mut c = sched.next(from, tz);
            while let Some(x) = c.filter(|x| *x <= now) {
                t = t.max(x);
                c = sched.next(x, tz);
            }
            return (Some(t), missed);
        }
        t = n;
    }
}

/// The Job a CronJob creates for `scheduled` (`getJobFromTemplate2`).
pub fn job_for(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tm = template.metadata.unwrap_or_default();
    let mut annotations = tm.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), schedule::rfc3339(scheduled, tz));
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&cj.name_any(), scheduled)),
            namespace: cj.namespace(),
            labels: tm.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(cj)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

fn job_ref(j: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: j.metadata.name.clone(),
        namespace: j.metadata.namespace.clone(),
        uid: j.metadata.uid.clone(),
        resource_version: j.metadata.resource_version.clone(),
        field_path: None,
    }
}

fn finished_type(j: &Job) -> Option<&str> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

/// Oldest first by start time (Jobs not started last), names breaking ties.
fn by_start_time(a: &Job, b: &Job) -> Ordering {
    let sa = a
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0);
    let sb = b
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0);
    match (sa, sb) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => a.name_any().cmp(&b.name_any()),
    }
}

impl Ctl {
    async fn sync(&self, ns: &str, name: &str) -> anyhow::Result<Next> {
        let api: Api<CronJob> = Api::namespaced(self.client.clone(), ns);
        let jobs_api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let Some(cj) = api.get_opt(name).await? else {
            return Ok(Next::Done);
        };
        let uid = cj.uid().unwrap_or_default();
        let jobs: Vec<Job> = jobs_api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|j| is_controlled_by(&j.metadata, &uid))
            .collect();
        let mut status = cj.status.clone().unwrap_or_default();
        let (next, result) = self.sync_cronjob(&cj, &jobs, &jobs_api, &mut status).await;
        if cj.metadata.deletion_timestamp.is_none() {
            self.cleanup_finished(&cj, &jobs, &jobs_api, &mut status)
                .await;
        }
        if Some(&status) != cj.status.as_ref() {
            let mut c = cj.clone();
            c.status = Some(status);
            c.metadata.managed_fields = None;
            api.replace_status(name, &PostParams::default(), &c).await?;
        }
        result?;
        Ok(match next {
            Some(d) => Next::After(d),
            None => Next::Done,
        })
    }

    /// `syncCronJob`: returns when to look again and any error (after `status` changes).
    async fn sync_cronjob(
        &self,
        cj: &CronJob,
        jobs: &[Job],
        jobs_api: &Api<Job>,
        status: &mut CronJobStatus,
    ) -> (Option<Duration>, anyhow::Result<()>) {
        let mut active = status.active.take().unwrap_or_default();
        let r = self
            .sync_active(cj, jobs, jobs_api, status, &mut active)
            .await;
        status.active = (!active.is_empty()).then_some(active);
        r
    }

    async fn sync_active(
        &self,
        cj: &CronJob,
        jobs: &[Job],
        jobs_api: &Api<Job>,
        status: &mut CronJobStatus,
        active: &mut Vec<ObjectReference>,
    ) -> (Option<Duration>, anyhow::Result<()>) {
        let now = Timestamp::now();
        let children: HashSet<String> = jobs.iter().filter_map(|j| j.uid()).collect();
        for j in jobs {
            let juid = j.uid().unwrap_or_default();
            let found = active.iter().any(|r| r.uid.as_deref() == Some(&juid));
            if !found && !is_finished(j) {
                self.recorder
                    .warning(
                        cj,
                        "UnexpectedJob",
                        &format!(
                            "Saw a job that the controller did not create or forgot: {}",
                            j.name_any()
                        ),
                    )
                    .await;
            } else if found && is_finished(j) {
                active.retain(|r| r.uid.as_deref() != Some(&juid));
                self.recorder
                    .normal(
                        cj,
                        "SawCompletedJob",
                        &format!(
                            "Saw completed job: {}, status: {}",
                            j.name_any(),
                            finished_type(j).unwrap_or_default()
                        ),
                    )
                    .await;
            }
            if finished_type(j) == Some("Complete") {
                let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
                if let Some(done) = done {
                    if status
                        .last_successful_time
                        .as_ref()
                        .is_none_or(|t| done.0 > t.0)
                    {
                        status.last_successful_time = Some(done);
                    }
                }
            }
        }
        let mut missing = Vec::new();
        for r in active.iter() {
            if r.uid.as_ref().is_some_and(|u| children.contains(u)) {
                continue;
            }
            let name = r.name.clone().unwrap_or_default();
            match jobs_api.get_opt(&name).await {
                Ok(None) => missing.push(r.uid.clone()),
                Ok(Some(_)) => {}
                Err(e) => return (None, Err(e.into())),
            }
        }
        for uid in missing {
            let name = active
                .iter()
                .find(|r| r.uid == uid)
                .and_then(|r| r.name.clone())
                .unwrap_or_default();
            self.recorder
                .normal(
                    cj,
                    "MissingJob",
                    &format!("Active job went missing: {name}"),
                )
                .await;
            active.retain(|r| r.uid != uid);
        }
        if cj.metadata.deletion_timestamp.is_some() {
            return (None, Ok(()));
        }
        let spec = cj.spec.clone().unwrap_or_default();
        let tz = match zone(cj) {
            Ok(tz) => tz,
            Err((name, e)) => {
                self.recorder
                    .warning(
                        cj,
                        "UnknownTimeZone",
                        &format!("invalid timeZone: {name:?}: {e}"),
                    )
                    .await;
                return (None, Ok(()));
            }
        };
        if spec.suspend == Some(true) {
            return (None, Ok(()));
        }
        if spec.schedule.contains("TZ") {
            self.recorder
                .warning(
                    cj,
                    "UnsupportedSchedule",
                    &format!(
                        "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                        spec.schedule
                    ),
                )
                .await;
        }
        let sched = match schedule::parse(&spec.schedule) {
            Ok(s) => s,
            Err(e) => {
                self.recorder
                    .warning(
                        cj,
                        "UnparseableSchedule",
                        &format!("unparseable schedule: {:?} : {e}", spec.schedule),
                    )
                    .await;
                return (None, Ok(()));
            }
        };
        let until_next = |now: Timestamp| {
            sched.next(now, &tz).map(|t| {
                let ms = (t.as_millisecond() - now.as_millisecond()).max(0) as u64;
                Duration::from_millis(ms) + NEXT_SCHEDULE_DELTA
            })
        };
        let created = cj
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(now);
        let mut earliest = status
            .last_schedule_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(created);
        if let Some(sds) = spec.starting_deadline_seconds {
            if let Ok(deadline) = Timestamp::from_second(now.as_second() - sds) {
                earliest = earliest.max(deadline);
            }
        }
        let (scheduled, missed) = if earliest > now {
            (None, 0)
        } else {
            most_recent(&sched, &tz, earliest, now)
        };
        if missed > TOO_MANY_MISSED {
            self.recorder
                .warning(
                    cj,
                    "TooManyMissedTimes",
                    &format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"),
                )
                .await;
        }
        let Some(scheduled) = scheduled else {
            if sched.next(now, &tz).is_none() {
                self.recorder
                    .warning(
                        cj,
                        "InvalidSchedule",
                        &format!(
                            "invalid schedule: {} : the schedule never fires",
                            spec.schedule
                        ),
                    )
                    .await;
            }
            return (until_next(now), Ok(()));
        };
        if let Some(sds) = spec.starting_deadline_seconds {
            if scheduled.as_second() + sds < now.as_second() {
                let when = scheduled.to_zoned(TimeZone::UTC);
                self.recorder
                    .warning(
                        cj,
                        "MissSchedule",
                        &format!(
                            "Missed scheduled time to start a job: {}",
                            when.strftime("%a, %d %b %Y %H:%M:%S %z")
                        ),
                    )
                    .await;
                return (until_next(now), Ok(()));
            }
        }
        let name = job_name(&cj.name_any(), scheduled);
        if active.iter().any(|r| r.name.as_deref() == Some(&name))
            || status.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled)
        {
            return (until_next(now), Ok(()));
        }
        let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
        if policy == "Forbid" && !active.is_empty() {
            self.recorder
                .normal(
                    cj,
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid",
                )
                .await;
            return (until_next(now), Ok(()));
        }
        if policy == "Replace" {
            for r in active.clone() {
                let jname = r.name.clone().unwrap_or_default();
                let job = match jobs_api.get_opt(&jname).await {
                    Ok(Some(j)) => j,
                    Ok(None) => {
                        active.retain(|x| x.uid != r.uid);
                        continue;
                    }
                    Err(e) => {
                        self.recorder
                            .warning(cj, "FailedGet", &format!("Get job: {e}"))
                            .await;
                        return (None, Err(e.into()));
                    }
                };
                if !self.delete_job(cj, &job, jobs_api).await {
                    return (
                        None,
                        Err(anyhow::anyhow!(
                            "could not replace job {ns}/{jname}",
                            ns = cj.namespace().unwrap_or_default()
                        )),
                    );
                }
                active.retain(|x| x.uid != r.uid);
            }
        }
        let req = job_for(cj, scheduled, &tz);
        let job = match jobs_api.create(&PostParams::default(), &req).await {
            Ok(j) => {
                self.recorder
                    .normal(
                        cj,
                        "SuccessfulCreate",
                        &format!("Created job {}", j.name_any()),
                    )
                    .await;
                j
            }
            Err(e) if workload::namespace_terminating(&e) => return (None, Ok(())),
            Err(e) if workload::is_already_exists(&e) => match jobs_api.get_opt(&name).await {
                Ok(Some(j)) => {
                    let ours = is_controlled_by(&j.metadata, &cj.uid().unwrap_or_default());
                    let listed = active.iter().any(|r| r.uid == j.uid());
                    if !ours || listed {
                        return (None, Ok(()));
                    }
                    j
                }
                Ok(None) => return (None, Err(anyhow::anyhow!("job {name} vanished"))),
                Err(e) => return (None, Err(e.into())),
            },
            Err(e) => {
                self.recorder
                    .warning(cj, "FailedCreate", &format!("Error creating job: {e}"))
                    .await;
                return (None, Err(e.into()));
            }
        };
        active.push(job_ref(&job));
        status.last_schedule_time = Some(Time(scheduled));
        (until_next(now), Ok(()))
    }

    /// Deletes a Job and its pods (background propagation).
    async fn delete_job(&self, cj: &CronJob, job: &Job, api: &Api<Job>) -> bool {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        match api.delete(&job.name_any(), &dp).await {
            Ok(_) => {}
            Err(e) if workload::is_not_found(&e) => {}
            Err(e) => {
                self.recorder
                    .warning(cj, "FailedDelete", &format!("Deleted job: {e}"))
                    .await;
                return false;
            }
        }
        self.recorder
            .normal(
                cj,
                "SuccessfulDelete",
                &format!("Deleted job {}", job.name_any()),
            )
            .await;
        true
    }

    /// Keeps at most `successfulJobsHistoryLimit` (default 3) Complete and
    /// `failedJobsHistoryLimit` (default 1) Failed Jobs, deleting the oldest.
    async fn cleanup_finished(
        &self,
        cj: &CronJob,
        jobs: &[Job],
        api: &Api<Job>,
        status: &mut CronJobStatus,
    ) {
        let spec = cj.spec.clone().unwrap_or_default();
        for (kind, limit) in [
            ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
            ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
        ] {
            let mut done: Vec<&Job> = jobs
                .iter()
                .filter(|j| finished_type(j) == Some(kind))
                .filter(|j| j.metadata.deletion_timestamp.is_none())
                .collect();
            let extra = done.len().saturating_sub(limit.max(0) as usize);
            if extra == 0 {
                continue;
            }
            done.sort_by(|a, b| by_start_time(a, b));
            for j in done.into_iter().take(extra) {
                if self.delete_job(cj, j, api).await {
                    if let Some(a) = status.active.as_mut() {
                        a.retain(|r| r.uid != j.uid());
                    }
                }
            }
        }
        if status.active.as_ref().is_some_and(Vec::is_empty) {
            status.active = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobTemplateSpec};
    use std::collections::BTreeMap;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn job_names_and_scheduled_timestamp() {
        let cj = CronJob {
            metadata: ObjectMeta {
                name: Some("hello".into()),
                namespace: Some("default".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(CronJobSpec {
                schedule: "*/1 * * * *".into(),
                time_zone: Some("Europe/Berlin".into()),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(BTreeMap::from([("app".into(), "hello".into())])),
                        ..Default::default()
                    }),
                    spec: Some(Default::default()),
                },
                ..Default::default()
            }),
            status: None,
        };
        let tz = zone(&cj).unwrap();
        let t = ts("2024-01-15T10:05:00Z");
        let j = job_for(&cj, t, &tz);
        assert_eq!(j.metadata.name.as_deref(), Some("hello-28421885"));
        assert_eq!(
            j.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP],
            "2024-01-15T11:05:00+01:00"
        );
        assert_eq!(j.metadata.labels.as_ref().unwrap()["app"], "hello");
        let owner = &j.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("CronJob", Some(true))
        );
        assert_eq!(schedule::rfc3339(t, &TimeZone::UTC), "2024-01-15T10:05:00Z");
    }

    #[test]
    fn most_recent_time_and_missed_count() {
        let s = schedule::parse("*/5 * * * *").unwrap();
        let tz = TimeZone::UTC;
        let (t, n) = most_recent(
            &s,
            &tz,
            ts("2024-01-01T00:00:00Z"),
            ts("2024-01-01T00:04:59Z"),
        );
        assert_eq!((t, n), (None, 0));
        let (t, n) = most_recent(
            &s,
            &tz,
            ts("2024-01-01T00:00:00Z"),
            ts("2024-01-01T00:17:00Z"),
        );
        assert_eq!((t, n), (Some(ts("2024-01-01T00:15:00Z")), 3));
        // Days of missed minutes: counted without walking each one, and the last is exact.
        let s = schedule::parse("* * * * *").unwrap();
        let (t, n) = most_recent(
            &s,
            &tz,
            ts("2024-01-01T00:00:00Z"),
            ts("2024-01-03T00:00:30Z"),
        );
        assert_eq!(t, Some(ts("2024-01-03T00:00:00Z")));
        assert!(n > TOO_MANY_MISSED, "{n}");
    }

    #[test]
    fn history_sorts_oldest_first_unstarted_last() {
        let job = |name: &str, start: Option<&str>| Job {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: None,
            status: Some(k8s_openapi::api::batch::v1::JobStatus {
                start_time: start.map(|s| Time(ts(s))),
                ..Default::default()
            }),
        };
        let mut v = [
            job("c", None),
            job("b", Some("2024-01-01T00:02:00Z")),
            job("a", Some("2024-01-01T00:01:00Z")),
        ];
        v.sort_by(by_start_time);
        let names: Vec<String> = v.iter().map(|j| j.name_any()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
