//! The TTL-after-finished controller (upstream `pkg/controller/ttlafterfinished`): a Job with
//! `spec.ttlSecondsAfterFinished` is deleted that many seconds after its Complete or Failed
//! condition became True. As upstream, the TTL is checked again on a fresh read before the
//! delete, which is conditional on the Job's UID and cascades in the foreground (the Job
//! goes once the garbage collector has deleted its pods).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use skiff_client::queue::{run_workers, Next, WorkQueue};
use skiff_client::workload::{self, watch_keys};

type Key = (String, String);

pub async fn run(client: Client) -> anyhow::Result<()> {
    let queue = WorkQueue::<Key>::new();
    // Only finished Jobs with a TTL matter; the key function filters the rest out.
    let jobs = watch_keys(
        "ttl jobs",
        Api::<Job>::all(client.clone()),
        watcher::Config::default(),
        queue.clone(),
        |j: &Job| {
            needs_cleanup(j)
                .then(|| Some((j.namespace()?, j.name_any())))
                .flatten()
        },
    );
    let client = Arc::new(client);
    let work = run_workers("ttl-after-finished", queue, 2, move |key: Key| {
        let client = client.clone();
        async move { sync(&client, &key.0, &key.1).await }
    });
    tokio::join!(jobs, work);
    Ok(())
}

/// A finished Job with a TTL that is not already being deleted.
pub fn needs_cleanup(j: &Job) -> bool {
    j.metadata.deletion_timestamp.is_none()
        && j.spec
            .as_ref()
            .is_some_and(|s| s.ttl_seconds_after_finished.is_some())
        && finish_time(j).is_some()
}

/// When the Complete or Failed condition became True.
pub fn finish_time(j: &Job) -> Option<Timestamp> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// Time left before the Job expires (zero or negative: expired); `None` if it never does.
pub fn time_left(j: &Job, now: Timestamp) -> Option<i64> {
    if !needs_cleanup(j) {
        return None;
    }
    let ttl = i64::from(j.spec.as_ref()?.ttl_seconds_after_finished?);
    let expire = finish_time(j)?.as_millisecond() + ttl * 1000;
    Some(expire - now.as_millisecond())
}

async fn sync(client: &Client, ns: &str, name: &str) -> anyhow::Result<Next> {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    let Some(job) = api.get_opt(name).await? else {
        return Ok(Next::Done);
    };
    match time_left(&job, Timestamp::now()) {
        None => return Ok(Next::Done),
        Some(ms) if ms > 0 => return Ok(Next::After(Duration::from_millis(ms as u64))),
        Some(_) => {}
    }
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: job.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    tracing::debug!(namespace = ns, job = name, "TTL expired: deleting the Job");
    match api.delete(name, &dp).await {
        Ok(_) => Ok(Next::Done),
        Err(e) if workload::is_not_found(&e) || workload::is_conflict(&e) => Ok(Next::Done),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn job(ttl: Option<i32>, finished: Option<&str>) -> Job {
        Job {
            spec: Some(JobSpec {
                ttl_seconds_after_finished: ttl,
                ..Default::default()
            }),
            status: Some(JobStatus {
                conditions: finished.map(|t| {
                    vec![JobCondition {
                        type_: "Complete".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(t.parse().unwrap())),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn expiry_counts_from_the_finished_condition() {
        let now: Timestamp = "2024-01-01T00:01:00Z".parse().unwrap();
        assert_eq!(
            time_left(&job(Some(100), Some("2024-01-01T00:00:00Z")), now),
            Some(40_000)
        );
        assert_eq!(
            time_left(&job(Some(0), Some("2024-01-01T00:00:00Z")), now),
            Some(-60_000)
        );
        assert_eq!(
            time_left(&job(None, Some("2024-01-01T00:00:00Z")), now),
            None
        );
        assert_eq!(time_left(&job(Some(10), None), now), None);
    }
}
