//! The two rollout strategies (upstream's `rolling.go` and `recreate.go`).
//!
//! RollingUpdate grows the new ReplicaSet while the total stays within
//! `replicas + maxSurge`, and shrinks old ones (unhealthy replicas first) while at least
//! `replicas - maxUnavailable` pods stay available. Recreate scales every old ReplicaSet to
//! zero, waits for their pods to be gone, then creates and scales up the new one.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use skiff_client::controllerref::controller_of;

use super::util::{self, *};
use super::Ctl;
use crate::queue::Next;

/// The available replicas a scale-down may count on: the status, but never more than
/// the size. Right after a ReplicaSet was scaled down its status still counts the pods
/// being deleted; upstream counts them and can briefly go below `replicas -
/// maxUnavailable` ready pods; this does not.
fn available_now(rs: &ReplicaSet) -> i32 {
    rs_available(rs).min(rs_replicas(rs))
}

fn active(rss: &[ReplicaSet]) -> Vec<ReplicaSet> {
    rss.iter().filter(|r| rs_replicas(r) > 0).cloned().collect()
}

impl Ctl {
    /// `rolloutRolling`.
    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
    ) -> anyhow::Result<Next> {
        let set = self.rs_set(d, rss, true).await?;
        let new = set.new.clone().expect("created when missing");
        let mut all = set.all();

        // Scale up, if we can.
        let desired = util::replicas(d);
        let current = rs_replicas(&new);
        let target = if current > desired {
            desired
        } else {
            let total: i32 = all.iter().map(rs_replicas).sum();
            new_rs_new_replicas(desired, max_surge(d), total, current)
        };
        if target != current {
            let (scaled, _) = self.scale_rs_event(&new, target, d).await?;
            if scaled {
                return self.sync_rollout_status(d, &all, Some(&new)).await;
            }
        }

        // Scale down, if we can.
        let old_total: i32 = set.old.iter().map(rs_replicas).sum();
        if old_total > 0 {
            let total: i32 = all.iter().map(rs_replicas).sum();
            let budget = max_scaled_down(
                desired,
                max_unavailable(d),
                total,
                rs_replicas(&new),
                available_now(&new),
            );
            if budget > 0 {
                let mut old = active(&set.old);
                old.sort_by(by_creation);
                let nums: Vec<OldRs> = old
                    .iter()
                    .map(|r| OldRs {
                        replicas: rs_replicas(r),
                        available: available_now(r),
                    })
                    .collect();
                let mut scaled_down = 0;
                let sizes = cleanup_unhealthy(&nums, budget);
                for (rs, size) in old.iter_mut().zip(sizes) {
                    if size != rs_replicas(rs) {
                        scaled_down += rs_replicas(rs) - size;
                        let (_, updated) = self.scale_rs_event(rs, size, d).await?;
                        *rs = updated;
                    }
                }
                let mut after: Vec<ReplicaSet> = old.clone();
                after.push(new.clone());
                let available: i32 = after.iter().map(available_now).sum();
                let nums: Vec<OldRs> = old
                    .iter()
                    .map(|r| OldRs {
                        replicas: rs_replicas(r),
                        available: available_now(r),
                    })
                    .collect();
                let sizes = scale_down_old(&nums, available, desired - max_unavailable(d));
                for (rs, size) in old.iter().zip(sizes) {
                    if size != rs_replicas(rs) {
                        scaled_down += rs_replicas(rs) - size;
                        self.scale_rs_event(rs, size, d).await?;
                    }
                }
                if scaled_down > 0 {
                    return self.sync_rollout_status(d, &all, Some(&new)).await;
                }
            }
        }

        if deployment_complete(d, &status(d)) {
            self.cleanup(d, &set.old).await?;
        }
        all.sort_by(by_creation);
        self.sync_rollout_status(d, &all, Some(&new)).await
    }

    /// `rolloutRecreate`.
    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
    ) -> anyhow::Result<Next> {
        // No new ReplicaSet yet: scaling up before the old pods are gone would break the
        // strategy's promise.
        let set = self.rs_set(d, rss, false).await?;
        let mut scaled_down = false;
        for rs in active(&set.old) {
            let (scaled, _) = self.scale_rs_event(&rs, 0, d).await?;
            scaled_down |= scaled;
        }
        if scaled_down {
            return self
                .sync_rollout_status(d, &set.all(), set.new.as_ref())
                .await;
        }
        if self.old_pods_running(set.new.as_ref(), &set.old, d).await? {
            return self
                .sync_rollout_status(d, &set.all(), set.new.as_ref())
                .await;
        }
        let set = match set.new {
            Some(_) => set,
            None => self.rs_set(d, rss, true).await?,
        };
        let mut new = set.new.clone().expect("created when missing");
        let desired = util::replicas(d);
        if rs_replicas(&new) != desired {
            let (_, updated) = self.scale_rs_event(&new, desired, d).await?;
            new = updated;
        }
        if deployment_complete(d, &status(d)) {
            self.cleanup(d, &set.old).await?;
        }
        let mut all = set.old.clone();
        all.push(new.clone());
        self.sync_rollout_status(d, &all, Some(&new)).await
    }

    /// `oldPodsRunning`: old ReplicaSets still report pods, or pods of ReplicaSets other
    /// than the new one are not yet gone (terminating pods count), listed live.
    async fn old_pods_running(
        &self,
        new: Option<&ReplicaSet>,
        old: &[ReplicaSet],
        d: &Deployment,
    ) -> anyhow::Result<bool> {
        if old.iter().map(rs_status_replicas).sum::<i32>() > 0 {
            return Ok(true);
        }
        let Some(selector) = d.spec.as_ref().map(|s| s.selector.clone()) else {
            return Ok(false);
        };
        let selector = kube::core::Selector::try_from(selector)
            .map_err(|e| anyhow::anyhow!("invalid selector: {e}"))?;
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        let pods = api
            .list(&ListParams::default().labels(&selector.to_string()))
            .await?;
        let new_uid = new.and_then(|n| n.metadata.uid.clone());
        let ours: Vec<String> = old.iter().filter_map(|r| r.metadata.uid.clone()).collect();
        Ok(pods.items.iter().any(|p| {
            controller_of(&p.metadata)
                .is_some_and(|r| Some(&r.uid) != new_uid.as_ref() && ours.contains(&r.uid))
                && !matches!(skiff_client::workload::phase(p), "Succeeded" | "Failed")
        }))
    }
}
