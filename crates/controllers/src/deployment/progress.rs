//! Deployment status (upstream's `calculateStatus`, `syncRolloutStatus`,
//! `checkPausedConditions`, `requeueStuckDeployment`): replica counts summed over the
//! ReplicaSets, the `Available` condition against `replicas - maxUnavailable`, and the
//! `Progressing` condition that tells `kubectl rollout status` whether a rollout finished,
//! is moving, or exceeded `progressDeadlineSeconds`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{json, Value};

use super::util::{self, *};
use super::Ctl;
use crate::queue::Next;

fn sum(rss: &[ReplicaSet], f: impl Fn(&ReplicaSet) -> i32) -> i32 {
    rss.iter().map(f).sum()
}

/// `calculateStatus`: counts from the ReplicaSets, conditions carried over, `Available`
/// set from the available count.
pub fn calculate_status(
    all: &[ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
) -> DeploymentStatus {
    let available = sum(all, rs_available);
    let total = sum(all, rs_replicas);
    let old = status(d);
    let mut st = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sum(all, rs_status_replicas)),
        updated_replicas: Some(new.map(rs_status_replicas).unwrap_or(0)),
        ready_replicas: Some(sum(all, rs_ready)),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= util::replicas(d) - max_unavailable(d) {
        set_condition(
            &mut st,
            new_condition(
                AVAILABLE,
                "True",
                MIN_AVAILABLE,
                "Deployment has minimum availability.",
            ),
        );
    } else {
        set_condition(
            &mut st,
            new_condition(
                AVAILABLE,
                "False",
                MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.",
            ),
        );
    }
    st
}

/// The status as a merge patch body: every field present (`null` removes it), zero
/// counts omitted as Go's `omitempty` does.
pub fn status_patch(st: &DeploymentStatus) -> Value {
    let nz = |v: Option<i32>| match v {
        Some(0) | None => Value::Null,
        Some(n) => json!(n),
    };
    json!({"status": {
        "observedGeneration": st.observed_generation.filter(|g| *g != 0),
        "replicas": nz(st.replicas),
        "updatedReplicas": nz(st.updated_replicas),
        "readyReplicas": nz(st.ready_replicas),
        "availableReplicas": nz(st.available_replicas),
        "unavailableReplicas": nz(st.unavailable_replicas),
        "terminatingReplicas": st.terminating_replicas,
        "collisionCount": st.collision_count,
        "conditions": st.conditions.as_ref().filter(|c| !c.is_empty()),
    }})
}

/// Two statuses are the same if they would be written the same.
pub fn same_status(a: &DeploymentStatus, b: &DeploymentStatus) -> bool {
    status_patch(a) == status_patch(b)
}

fn progressing_message(d: &Deployment, new: Option<&ReplicaSet>, what: &str) -> String {
    match new {
        Some(rs) => format!("ReplicaSet {:?} {what}", rs.name_any()),
        None => format!("Deployment {:?} {what}", d.name_any()),
    }
}

/// The new status of a rollout (`syncRolloutStatus` without the write).
pub fn rollout_status(
    all: &[ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let mut st = calculate_status(all, new, d);
    if progress_deadline(d).is_none() {
        remove_condition(&mut st, PROGRESSING);
    }
    let current: Option<DeploymentCondition> = condition(&status(d), PROGRESSING).cloned();
    let complete_before = st.replicas == st.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
    if progress_deadline(d).is_some() && !complete_before {
        if deployment_complete(d, &st) {
            let msg = progressing_message(d, new, "has successfully progressed.");
            set_condition(
                &mut st,
                new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, &msg),
            );
        } else if deployment_progressing(d, &st) {
            let msg = progressing_message(d, new, "is progressing.");
            let mut c = new_condition(PROGRESSING, "True", RS_UPDATED, &msg);
            // Progress refreshes lastUpdateTime even when the reason stays the same.
            if let Some(cur) = &current {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut st, PROGRESSING);
            }
            set_condition(&mut st, c);
        } else if deployment_timed_out(d, &st, now) {
            let msg = progressing_message(d, new, "has timed out progressing.");
            set_condition(
                &mut st,
                new_condition(PROGRESSING, "False", TIMED_OUT, &msg),
            );
        }
    }
    // The first ReplicaFailure condition of the ReplicaSets (new one first).
    let failure = new
        .into_iter()
        .chain(all.iter())
        .filter_map(|rs| {
            rs.status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == REPLICA_FAILURE && c.status == "True")
        })
        .next();
    match failure {
        Some(f) => set_condition(
            &mut st,
            DeploymentCondition {
                type_: REPLICA_FAILURE.into(),
                status: f.status.clone(),
                reason: f.reason.clone(),
                message: f.message.clone(),
                last_update_time: f.last_transition_time.clone(),
                last_transition_time: f.last_transition_time.clone(),
            },
        ),
        None => remove_condition(&mut st, REPLICA_FAILURE),
    }
    st
}

/// `requeueStuckDeployment`: when a rollout that is still progressing should be looked at
/// again to notice its deadline passing.
pub fn stuck_requeue(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let old = status(d);
    let c = condition(&old, PROGRESSING)?;
    if deployment_complete(d, new) || c.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let from = c.last_update_time.as_ref()?.0.as_second();
    let after = from + i64::from(deadline) - now.as_second();
    Some(Duration::from_secs(after.max(0) as u64 + 1))
}

impl Ctl {
    /// Writes `st` as the Deployment's status and keeps `d` in step.
    pub(super) async fn write_status(
        &self,
        d: &mut Deployment,
        st: DeploymentStatus,
    ) -> anyhow::Result<()> {
        let api: Api<Deployment> =
            Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        api.patch_status(
            &d.name_any(),
            &PatchParams::default(),
            &Patch::Merge(status_patch(&st)),
        )
        .await?;
        d.status = Some(st);
        Ok(())
    }

    /// `syncRolloutStatus`.
    pub(super) async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        all: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> anyhow::Result<Next> {
        let now = Timestamp::now();
        let st = rollout_status(all, new, d, now);
        if same_status(&status(d), &st) {
            return Ok(match stuck_requeue(d, &st, now) {
                Some(after) => Next::After(after),
                None => Next::Done,
            });
        }
        let requeue = stuck_requeue(d, &st, now);
        self.write_status(d, st).await?;
        Ok(requeue.map_or(Next::Done, Next::After))
    }

    /// `syncDeploymentStatus` (scaling and paused syncs: no progress estimation).
    pub(super) async fn sync_deployment_status(
        &self,
        d: &mut Deployment,
        all: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> anyhow::Result<Next> {
        let st = calculate_status(all, new, d);
        if !same_status(&status(d), &st) {
            self.write_status(d, st).await?;
        }
        Ok(Next::Done)
    }

    /// `checkPausedConditions`: `Progressing` is Unknown/DeploymentPaused while paused and
    /// Unknown/DeploymentResumed right after, so a paused rollout never times out.
    pub(super) async fn check_paused_conditions(&self, d: &mut Deployment) -> anyhow::Result<()> {
        if progress_deadline(d).is_none() {
            return Ok(());
        }
        let mut st = status(d);
        let reason = condition(&st, PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = reason.as_deref() == Some(PAUSED);
        if util::paused(d) && !paused_cond {
            set_condition(
                &mut st,
                new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused"),
            );
        } else if !util::paused(d) && paused_cond {
            set_condition(
                &mut st,
                new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed"),
            );
        } else {
            return Ok(());
        }
        self.write_status(d, st).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec, ReplicaSetStatus};
    use kube::api::ObjectMeta;

    fn rs(name: &str, replicas: i32, status: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas: status,
                ready_replicas: Some(available),
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    fn deploy(replicas: i32) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                generation: Some(2),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                progress_deadline_seconds: Some(600),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn counts_and_conditions() {
        let d = deploy(5);
        let new = rs("web-new", 2, 2, 0);
        let old = rs("web-old", 4, 4, 4);
        let now = Timestamp::now();
        let st = rollout_status(&[old.clone(), new.clone()], Some(&new), &d, now);
        assert_eq!(st.replicas, Some(6));
        assert_eq!(st.updated_replicas, Some(2));
        assert_eq!(st.available_replicas, Some(4));
        assert_eq!(st.unavailable_replicas, Some(2));
        assert_eq!(st.observed_generation, Some(2));
        // maxUnavailable 25% of 5 = 1: 4 available is enough.
        assert_eq!(
            condition(&st, AVAILABLE).unwrap().reason.as_deref(),
            Some(MIN_AVAILABLE)
        );
        let p = condition(&st, PROGRESSING).unwrap();
        assert_eq!(p.reason.as_deref(), Some(RS_UPDATED));
        assert_eq!(
            p.message.as_deref(),
            Some("ReplicaSet \"web-new\" is progressing.")
        );

        // Complete: everything updated and available.
        let mut d2 = d.clone();
        d2.status = Some(st);
        let done = rs("web-new", 5, 5, 5);
        let st = rollout_status(std::slice::from_ref(&done), Some(&done), &d2, now);
        let p = condition(&st, PROGRESSING).unwrap();
        assert_eq!(p.reason.as_deref(), Some(NEW_RS_AVAILABLE));
        assert_eq!(
            p.message.as_deref(),
            Some("ReplicaSet \"web-new\" has successfully progressed.")
        );
        assert!(stuck_requeue(&d2, &st, now).is_none());
    }

    #[test]
    fn deadline_exceeded_without_progress() {
        let mut d = deploy(3);
        let mut st = DeploymentStatus::default();
        let mut c = new_condition(PROGRESSING, "True", RS_UPDATED, "x");
        let long_ago = Timestamp::from_second(Timestamp::now().as_second() - 3600).unwrap();
        c.last_update_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            long_ago,
        ));
        set_condition(&mut st, c);
        st.replicas = Some(3);
        st.updated_replicas = Some(3);
        d.status = Some(st);
        let stuck = rs("web-new", 3, 3, 0);
        let st = rollout_status(
            std::slice::from_ref(&stuck),
            Some(&stuck),
            &d,
            Timestamp::now(),
        );
        let p = condition(&st, PROGRESSING).unwrap();
        assert_eq!(
            (p.status.as_str(), p.reason.as_deref()),
            ("False", Some(TIMED_OUT))
        );
        assert_eq!(condition(&st, AVAILABLE).unwrap().status, "False");
        assert!(status_patch(&st)["status"]["readyReplicas"].is_null());
    }
}
