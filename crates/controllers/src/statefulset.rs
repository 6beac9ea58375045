//! The StatefulSet controller (upstream `pkg/controller/statefulset`): pods with stable
//! identities `<set>-<ordinal>` (hostname = pod name, subdomain = `serviceName`, labels
//! `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`) and stable
//! storage (a PersistentVolumeClaim `<claim>-<set>-<ordinal>` per volumeClaimTemplate,
//! created before its pod, kept on scale-down unless the retention policy says otherwise).
//!
//! `OrderedReady` creates pods one at a time in ordinal order, each once its predecessors
//! are Running and Ready, and removes them from the highest ordinal down, one at a time;
//! `Parallel` does both at once. Templates are versioned as ControllerRevisions; pods
//! carry their revision's name in `controller-revision-hash`. `RollingUpdate` replaces pods
//! from the highest ordinal down to `partition`, one at a time, each once healthy again;
//! `OnDelete` leaves replacement to whoever deletes pods.
//!
//! The set, its pods, claims and revisions are read live at each sync; watches of sets and
//! their pods trigger syncs. `persistentVolumeClaimRetentionPolicy`: `whenDeleted: Delete`
//! makes the set an owner of its claims, `whenScaled: Delete` makes a condemned pod the
//! owner of its claims before it is deleted (the garbage collector does the rest). Not
//! implemented: `maxUnavailable` for rolling updates, adoption of orphans.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use skiff_client::controllerref::controller_ref;
use skiff_client::events::Recorder;
use skiff_client::history::{self, Current, REVISION_HASH};
use skiff_client::queue::{run_workers, Next, WorkQueue};
use skiff_client::selector::Selector;
use skiff_client::workload::{self, controller_key, is_controlled_by, phase, watch_keys};

use crate::deployment::util::compute_hash;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

type Key = (String, String);

struct Ctl {
    client: Client,
    recorder: Recorder,
}

pub async fn run(client: Client) -> anyhow::Result<()> {
    let queue = WorkQueue::<Key>::new();
    let sets = watch_keys(
        "statefulsets",
        Api::<StatefulSet>::all(client.clone()),
        watcher::Config::default(),
        queue.clone(),
        |s: &StatefulSet| Some((s.namespace()?, s.name_any())),
    );
    let pods = watch_keys(
        "stateful pods",
        Api::<Pod>::all(client.clone()),
        // Every pod this controller makes carries the label: watch only those.
        watcher::Config::default().labels(POD_NAME_LABEL),
        queue.clone(),
        |p: &Pod| controller_key(&p.metadata, "apps/v1", "StatefulSet"),
    );
    let ctl = Arc::new(Ctl {
        recorder: Recorder::new(client.clone(), "statefulset-controller"),
        client,
    });
    let work = run_workers("statefulset", queue, 2, move |key: Key| {
        let ctl = ctl.clone();
        async move { ctl.sync(&key.0, &key.1).await }
    });
    tokio::join!(sets, pods, work);
    Ok(())
}

// ---------------------------------------------------------------- pure logic

/// The ordinal in a pod name `<set>-<ordinal>`, if it is one of the set's.
pub fn ordinal(set: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty() || (rest.len() > 1 && rest.starts_with('0')) {
        return None;
    }
    rest.parse::<i32>().ok().filter(|o| *o >= 0)
}

pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

pub fn claim_name(claim: &str, set: &str, ordinal: i32) -> String {
    format!("{claim}-{set}-{ordinal}")
}

fn replicas(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0)
}

fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0)
}

fn parallel(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        == Some("Parallel")
}

fn on_delete(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        == Some("OnDelete")
}

fn partition(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0)
}

fn min_ready(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn claims_deleted_on_scale_down(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref())
        .and_then(|p| p.when_scaled.as_deref())
        == Some("Delete")
}

fn running_and_ready(p: &Pod) -> bool {
    phase(p) == "Running" && workload::is_ready(p)
}

fn healthy(p: &Pod, min_ready: i32, now: Timestamp) -> bool {
    running_and_ready(p)
        && p.metadata.deletion_timestamp.is_none()
        && workload::is_available(p, min_ready, now)
}

fn revision_of(p: &Pod) -> Option<&str> {
    p.labels().get(REVISION_HASH).map(String::as_str)
}

/// The claims a pod of the set mounts: one per template, named for the ordinal.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let spec = set.spec.clone().unwrap_or_default();
    let set_name = set.name_any();
    let delete_with_set = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_deleted.as_deref())
        == Some("Delete");
    spec.volume_claim_templates
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let tname = t.metadata.name.clone().unwrap_or_default();
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(spec.selector.match_labels.clone().unwrap_or_default());
            let owners = delete_with_set.then(|| {
                // An owner, not the controller: the claim outlives scale-down.
                vec![OwnerReference {
                    controller: None,
                    ..controller_ref(set)
                }]
            });
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&tname, &set_name, ordinal)),
                    namespace: set.namespace(),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    owner_references: owners,
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// The pod for `ordinal` from `template` at `revision` (`newVersionedStatefulSetPod`).
pub fn pod_for(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let spec = set.spec.clone().unwrap_or_default();
    let name = pod_name(&set.name_any(), ordinal);
    let tm = template.metadata.clone().unwrap_or_default();
    let mut labels = tm.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_HASH.into(), revision.into());
    let mut pspec = template.spec.clone().unwrap_or_default();
    pspec.hostname = Some(name.clone());
    pspec.subdomain = spec.service_name.clone().filter(|s| !s.is_empty());
    let volumes = pspec.volumes.get_or_insert_with(Vec::new);
    for claim in spec.volume_claim_templates.iter().flatten() {
        let cname = claim.metadata.name.clone().unwrap_or_default();
        let v = Volume {
            name: cname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&cname, &set.name_any(), ordinal),
                read_only: None,
            }),
            ..Default::default()
        };
        match volumes.iter_mut().find(|x| x.name == cname) {
            Some(x) => *x = v,
            None => volumes.push(v),
        }
    }
    if volumes.is_empty() {
        pspec.volumes = None;
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.namespace(),
            labels: Some(labels),
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![controller_ref(set)]),
            ..Default::default()
        },
        spec: Some(pspec),
        status: None,
    }
}

/// One step the controller takes in a sync.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the pod (and its claims) for the ordinal from the current or update revision.
    Create {
        ordinal: i32,
        update: bool,
    },
    Delete(String),
}

/// The set's pods by ordinal, the ones to keep (`replicas`) and to remove (`condemned`).
pub struct Plan<'a> {
    pub set: &'a StatefulSet,
    /// Ordinal → pod.
    pub pods: BTreeMap<i32, &'a Pod>,
    pub current_revision: &'a str,
    pub update_revision: &'a str,
    pub now: Timestamp,
}

impl Plan<'_> {
    /// Whether a new pod at `ordinal` gets the current (not the update) revision: below the
    /// partition of a rolling update.
    fn uses_current(&self, ordinal: i32) -> bool {
        !on_delete(self.set) && ordinal - start_ordinal(self.set) < partition(self.set)
    }

    /// `updateStatefulSet`'s decisions, in order; in OrderedReady mode it stops at the
    /// first pod that is not healthy (and takes at most one destructive step).
    pub fn actions(&self) -> Vec<Action> {
        let mut out = Vec::new();
        let monotonic = !parallel(self.set);
        let start = start_ordinal(self.set);
        let end = start + replicas(self.set);
        let min_ready = min_ready(self.set);
        let in_range = |o: i32| o >= start && o < end;

        // Replicas: replace failed or finished pods, create missing ones, in order.
        let mut first_unhealthy: Option<i32> = None;
        for o in start..end {
            match self.pods.get(&o) {
                None => {
                    out.push(Action::Create {
                        ordinal: o,
                        update: !self.uses_current(o),
                    });
                    if monotonic {
                        return out;
                    }
                }
                Some(p) => {
                    let terminating = p.metadata.deletion_timestamp.is_some();
                    if !terminating && matches!(phase(p), "Failed" | "Succeeded") {
                        out.push(Action::Delete(p.name_any()));
                        if monotonic {
                            return out;
                        }
                        continue;
                    }
                    if !healthy(p, min_ready, self.now) {
                        first_unhealthy.get_or_insert(o);
                        if monotonic {
                            return out;
                        }
                    }
                }
            }
        }

        // Condemned: from the highest ordinal down; in order mode one at a time, and only
        // the first unhealthy pod when any is unhealthy.
        let mut condemned: Vec<(&i32, &&Pod)> =
            self.pods.iter().filter(|(o, _)| !in_range(**o)).collect();
        condemned.sort_by_key(|(o, _)| std::cmp::Reverse(**o));
        let first_unhealthy_condemned = self
            .pods
            .iter()
            .filter(|(o, _)| !in_range(**o))
            .find(|(_, p)| !healthy(p, min_ready, self.now))
            .map(|(o, _)| *o);
        for (o, p) in condemned {
            if p.metadata.deletion_timestamp.is_some() {
                if monotonic {
                    return out;
                }
                continue;
            }
            if monotonic
                && !running_and_ready(p)
                && Some(*o) != first_unhealthy_condemned.or(first_unhealthy)
            {
                return out;
            }
            out.push(Action::Delete(p.name_any()));
            if monotonic {
                return out;
            }
        }

        // Rolling update: the highest ordinal not at the update revision goes, down to the
        // partition, once everything above it is healthy again.
        if on_delete(self.set) {
            return out;
        }
        let update_min = start + partition(self.set);
        for o in (update_min.max(start)..end).rev() {
            let Some(p) = self.pods.get(&o) else {
                continue;
            };
            if revision_of(p) != Some(self.update_revision)
                && p.metadata.deletion_timestamp.is_none()
            {
                out.push(Action::Delete(p.name_any()));
                return out;
            }
            if !healthy(p, min_ready, self.now) {
                return out;
            }
        }
        out
    }

    /// `computeReplicaStatus` plus the revisions.
    pub fn status(&self, old: &StatefulSetStatus) -> StatefulSetStatus {
        let min_ready = min_ready(self.set);
        let mut st = StatefulSetStatus {
            observed_generation: self.set.metadata.generation,
            collision_count: old.collision_count,
            conditions: old.conditions.clone(),
            current_revision: Some(self.current_revision.to_string()),
            update_revision: Some(self.update_revision.to_string()),
            ..Default::default()
        };
        let (mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0);
        for p in self.pods.values() {
            st.replicas += 1;
            if running_and_ready(p) {
                ready += 1;
                if workload::is_available(p, min_ready, self.now) {
                    available += 1;
                }
            }
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if revision_of(p) == Some(self.current_revision) {
                current += 1;
            }
            if revision_of(p) == Some(self.update_revision) {
                updated += 1;
            }
        }
        // A finished rolling update: the update revision becomes the current one.
        if !on_delete(self.set) && updated == st.replicas && ready == st.replicas {
            st.current_revision = st.update_revision.clone();
            current = updated;
        }
        st.ready_replicas = Some(ready);
        st.available_replicas = Some(available);
        st.current_replicas = Some(current);
        st.updated_replicas = Some(updated);
        st
    }
}

// ---------------------------------------------------------------- the sync

impl Ctl {
    async fn sync(&self, ns: &str, name: &str) -> anyhow::Result<Next> {
        let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let Some(set) = api.get_opt(name).await? else {
            return Ok(Next::Done);
        };
        let spec = set.spec.clone().unwrap_or_default();
        let selector = match Selector::from_label_selector(Some(&spec.selector)) {
            Ok(s) if !s.is_everything() => s,
            _ => {
                self.recorder
                    .warning(
                        &set,
                        "InvalidSelector",
                        "the StatefulSet's selector is empty or invalid",
                    )
                    .await;
                return Ok(Next::Done);
            }
        };
        let uid = set.uid().unwrap_or_default();
        let pods: Vec<Pod> = pods_api
            .list(&workload::list_params(&spec.selector))
            .await?
            .items
            .into_iter()
            .filter(|p| is_controlled_by(&p.metadata, &uid))
            .filter(|p| selector.matches(p.metadata.labels.as_ref()))
            .collect();
        let by_ordinal: BTreeMap<i32, &Pod> = pods
            .iter()
            .filter_map(|p| Some((ordinal(name, &p.name_any())?, p)))
            .collect();

        // Revisions: the update revision is the current template's; the current revision is
        // the one the status names, while it exists.
        let rev_api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), ns);
        let revs: Vec<ControllerRevision> = rev_api
            .list(&workload::list_params(&spec.selector))
            .await?
            .items
            .into_iter()
            .filter(|r| is_controlled_by(&r.metadata, &uid))
            .collect();
        let mut status = set.status.clone().unwrap_or_default();
        let hash = compute_hash(&spec.template, status.collision_count);
        let update =
            match history::sync_current(&rev_api, &set, &revs, &spec.template, &hash).await? {
                Current::Revision(r) => *r,
                Current::Collision => {
                    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                    self.write_status(&api, &set, status).await?;
                    anyhow::bail!("hash collision for the revision {name}-{hash}");
                }
            };
        let update_name = update.name_any();
        let current = status
            .current_revision
            .as_ref()
            .and_then(|c| revs.iter().find(|r| r.name_any() == *c))
            .cloned()
            .unwrap_or_else(|| update.clone());
        let current_name = current.name_any();
        let current_template =
            history::template_of(&current).unwrap_or_else(|| spec.template.clone());

        let now = Timestamp::now();
        let plan = Plan {
            set: &set,
            pods: by_ordinal,
            current_revision: &current_name,
            update_revision: &update_name,
            now,
        };
        let actions = if set.metadata.deletion_timestamp.is_some() {
            Vec::new()
        } else {
            plan.actions()
        };
        let new_status = plan.status(&status);
        let mut first_err = None;
        for a in actions {
            let r = match a {
                Action::Create { ordinal, update } => {
                    let (template, rev) = if update {
                        (&spec.template, &update_name)
                    } else {
                        (&current_template, &current_name)
                    };
                    self.create(&set, &pods_api, template, ordinal, rev).await
                }
                Action::Delete(pod) => {
                    let condemned = ordinal(name, &pod).is_some_and(|o| {
                        o < start_ordinal(&set) || o >= start_ordinal(&set) + replicas(&set)
                    });
                    let owner = pods.iter().find(|p| p.name_any() == pod);
                    match owner {
                        Some(p) if condemned && claims_deleted_on_scale_down(&set) => {
                            match self.hand_claims_to(&set, p).await {
                                Ok(()) => self.delete(&set, &pods_api, &pod).await,
                                Err(e) => Err(e),
                            }
                        }
                        _ => self.delete(&set, &pods_api, &pod).await,
                    }
                }
            };
            if let Err(e) = r {
                first_err = Some(e);
                break;
            }
        }

        // Old revisions nothing uses, beyond the history limit.
        let mut live: HashSet<String> = [current_name.clone(), update_name.clone()].into();
        live.extend(pods.iter().filter_map(|p| revision_of(p).map(String::from)));
        let limit = spec.revision_history_limit.unwrap_or(10).max(0) as usize;
        history::truncate(&rev_api, &revs, &live, limit).await?;

        if Some(&new_status) != set.status.as_ref() {
            self.write_status(&api, &set, new_status.clone()).await?;
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let mr = min_ready(&set);
        if mr > 0 && new_status.ready_replicas > new_status.available_replicas {
            return Ok(Next::After(Duration::from_secs(mr as u64)));
        }
        Ok(Next::Done)
    }

    async fn write_status(
        &self,
        api: &Api<StatefulSet>,
        set: &StatefulSet,
        status: StatefulSetStatus,
    ) -> anyhow::Result<()> {
        let mut s = set.clone();
        s.status = Some(status);
        s.metadata.managed_fields = None;
        api.replace_status(&set.name_any(), &PostParams::default(), &s)
            .await?;
        Ok(())
    }

    /// Creates the pod's missing claims, then the pod (`CreateStatefulPod`).
    async fn create(
        &self,
        set: &StatefulSet,
        api: &Api<Pod>,
        template: &PodTemplateSpec,
        ordinal: i32,
        revision: &str,
    ) -> anyhow::Result<()> {
        let ns = set.namespace().unwrap_or_default();
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let pod = pod_for(set, template, ordinal, revision);
        let pname = pod.name_any();
        let sname = set.name_any();
        for claim in claims_for(set, ordinal) {
            let cname = claim.name_any();
            if pvcs.get_opt(&cname).await?.is_some() {
                continue;
            }
            match pvcs.create(&PostParams::default(), &claim).await {
                Ok(_) => {
                    self.recorder
                        .normal(
                            set,
                            "SuccessfulCreate",
                            &format!(
                                "create Claim {cname} Pod {pname} in StatefulSet {sname} success"
                            ),
                        )
                        .await
                }
                Err(e) if workload::is_already_exists(&e) => {}
                Err(e) => {
                    self.recorder
                        .warning(
                            set,
                            "FailedCreate",
                            &format!("create Claim {cname} for Pod {pname} in StatefulSet {sname} failed error: {e}"),
                        )
                        .await;
                    return Err(e.into());
                }
            }
        }
        match api.create(&PostParams::default(), &pod).await {
            Ok(_) => {
                self.recorder
                    .normal(
                        set,
                        "SuccessfulCreate",
                        &format!("create Pod {pname} in StatefulSet {sname} successful"),
                    )
                    .await;
                Ok(())
            }
            Err(e) if workload::is_already_exists(&e) || workload::namespace_terminating(&e) => {
                Ok(())
            }
            Err(e) => {
                self.recorder
                    .warning(
                        set,
                        "FailedCreate",
                        &format!("create Pod {pname} in StatefulSet {sname} failed error: {e}"),
                    )
                    .await;
                Err(e.into())
            }
        }
    }

    /// `whenScaled: Delete`: before a condemned pod goes, its claims get it as an owner, so
    /// the garbage collector deletes them after it.
    async fn hand_claims_to(&self, set: &StatefulSet, pod: &Pod) -> anyhow::Result<()> {
        let Some(o) = ordinal(&set.name_any(), &pod.name_any()) else {
            return Ok(());
        };
        let pvcs: Api<PersistentVolumeClaim> =
            Api::namespaced(self.client.clone(), &set.namespace().unwrap_or_default());
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: pod.name_any(),
            uid: pod.uid().unwrap_or_default(),
            controller: None,
            block_owner_deletion: None,
        };
        for claim in claims_for(set, o) {
            let Some(existing) = pvcs.get_opt(&claim.name_any()).await? else {
                continue;
            };
            let mut refs = existing
                .metadata
                .owner_references
                .clone()
                .unwrap_or_default();
            if refs.iter().any(|r| r.uid == owner.uid) {
                continue;
            }
            refs.push(owner.clone());
            let patch = serde_json::json!({"metadata": {
                "ownerReferences": refs,
                "resourceVersion": existing.metadata.resource_version,
            }});
            pvcs.patch(
                &claim.name_any(),
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await?;
        }
        Ok(())
    }

    async fn delete(&self, set: &StatefulSet, api: &Api<Pod>, pod: &str) -> anyhow::Result<()> {
        let sname = set.name_any();
        match api.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {
                self.recorder
                    .normal(
                        set,
                        "SuccessfulDelete",
                        &format!("delete Pod {pod} in StatefulSet {sname} successful"),
                    )
                    .await;
                Ok(())
            }
            Err(e) if workload::is_not_found(&e) => Ok(()),
            Err(e) => {
                self.recorder
                    .warning(
                        set,
                        "FailedDelete",
                        &format!("delete Pod {pod} in StatefulSet {sname} failed error: {e}"),
                    )
                    .await;
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        RollingUpdateStatefulSetStrategy, StatefulSetSpec, StatefulSetUpdateStrategy,
    };
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn set(replicas: i32, policy: &str) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("s1".into()),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                replicas: Some(replicas),
                pod_management_policy: Some(policy.into()),
                service_name: Some("nginx".into()),
                selector: LabelSelector {
                    match_labels: Some([("app".to_string(), "web".to_string())].into()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_string(), "web".to_string())].into()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec::default()),
                },
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn pod(s: &StatefulSet, o: i32, rev: &str, ready: bool) -> Pod {
        let mut p = pod_for(s, &s.spec.as_ref().unwrap().template, o, rev);
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    fn plan<'a>(s: &'a StatefulSet, pods: &'a [Pod], cur: &'a str, upd: &'a str) -> Plan<'a> {
        Plan {
            set: s,
            pods: pods
                .iter()
                .map(|p| (ordinal("web", &p.name_any()).unwrap(), p))
                .collect(),
            current_revision: cur,
            update_revision: upd,
            now: Timestamp::now(),
        }
    }

    #[test]
    fn ordinals_parse_only_the_sets_names() {
        assert_eq!(ordinal("web", "web-0"), Some(0));
        assert_eq!(ordinal("web", "web-12"), Some(12));
        assert_eq!(ordinal("web", "web-01"), None);
        assert_eq!(ordinal("web", "webx-1"), None);
        assert_eq!(ordinal("web", "web-"), None);
        assert_eq!(ordinal("web-a", "web-a-3"), Some(3));
    }

    #[test]
    fn pods_have_identity_and_storage() {
        let s = set(3, "OrderedReady");
        let p = pod_for(&s, &s.spec.as_ref().unwrap().template, 2, "web-abc");
        assert_eq!(p.name_any(), "web-2");
        let l = p.labels();
        assert_eq!(l[POD_NAME_LABEL], "web-2");
        assert_eq!(l[POD_INDEX_LABEL], "2");
        assert_eq!(l[REVISION_HASH], "web-abc");
        let spec = p.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let v = &spec.volumes.unwrap()[0];
        assert_eq!(v.name, "data");
        assert_eq!(
            v.persistent_volume_claim.as_ref().unwrap().claim_name,
            "data-web-2"
        );
        let c = &claims_for(&s, 2)[0];
        assert_eq!(c.name_any(), "data-web-2");
        assert_eq!(c.labels()["app"], "web");
    }

    #[test]
    fn ordered_ready_creates_in_order_and_removes_in_reverse() {
        let s = set(3, "OrderedReady");
        let none: Vec<Pod> = vec![];
        assert_eq!(
            plan(&s, &none, "r", "r").actions(),
            [Action::Create {
                ordinal: 0,
                update: true
            }]
        );
        // web-0 not ready yet: wait.
        let pods = vec![pod(&s, 0, "r", false)];
        assert!(plan(&s, &pods, "r", "r").actions().is_empty());
        let pods = vec![pod(&s, 0, "r", true)];
        assert_eq!(
            plan(&s, &pods, "r", "r").actions(),
            [Action::Create {
                ordinal: 1,
                update: true
            }]
        );
        // Parallel: everything at once.
        let p = set(3, "Parallel");
        assert_eq!(
            plan(&p, &none, "r", "r").actions(),
            [
                Action::Create {
                    ordinal: 0,
                    update: true
                },
                Action::Create {
                    ordinal: 1,
                    update: true
                },
                Action::Create {
                    ordinal: 2,
                    update: true
                }
            ]
        );
        // Scale 3 → 1: web-2 goes first, alone.
        let s1 = set(1, "OrderedReady");
        let pods = vec![
            pod(&s1, 0, "r", true),
            pod(&s1, 1, "r", true),
            pod(&s1, 2, "r", true),
        ];
        assert_eq!(
            plan(&s1, &pods, "r", "r").actions(),
            [Action::Delete("web-2".into())]
        );
        let p1 = set(1, "Parallel");
        assert_eq!(
            plan(&p1, &pods, "r", "r").actions(),
            [
                Action::Delete("web-2".into()),
                Action::Delete("web-1".into())
            ]
        );
    }

    #[test]
    fn rolling_update_goes_down_to_the_partition() {
        let mut s = set(3, "OrderedReady");
        let pods = vec![
            pod(&s, 0, "old", true),
            pod(&s, 1, "old", true),
            pod(&s, 2, "old", true),
        ];
        assert_eq!(
            plan(&s, &pods, "old", "new").actions(),
            [Action::Delete("web-2".into())]
        );
        let pods2 = vec![
            pod(&s, 0, "old", true),
            pod(&s, 1, "old", true),
            pod(&s, 2, "new", false),
        ];
        assert!(
            plan(&s, &pods2, "old", "new").actions().is_empty(),
            "waits for web-2"
        );
        s.spec.as_mut().unwrap().update_strategy = Some(StatefulSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateStatefulSetStrategy {
                partition: Some(2),
                max_unavailable: None,
            }),
        });
        let pods3 = vec![
            pod(&s, 0, "old", true),
            pod(&s, 1, "old", true),
            pod(&s, 2, "new", true),
        ];
        assert!(
            plan(&s, &pods3, "old", "new").actions().is_empty(),
            "partition holds 0 and 1"
        );
        // Below the partition a recreated pod keeps the current revision.
        let pods4 = vec![pod(&s, 0, "old", true), pod(&s, 2, "new", true)];
        assert_eq!(
            plan(&s, &pods4, "old", "new").actions(),
            [Action::Create {
                ordinal: 1,
                update: false
            }]
        );
        let st = plan(&s, &pods3, "old", "new").status(&Default::default());
        assert_eq!(
            (
                st.replicas,
                st.ready_replicas,
                st.current_replicas,
                st.updated_replicas
            ),
            (3, Some(3), Some(2), Some(1))
        );
        // All updated and ready: the update revision becomes current.
        let pods5 = vec![
            pod(&s, 0, "new", true),
            pod(&s, 1, "new", true),
            pod(&s, 2, "new", true),
        ];
        let st = plan(&s, &pods5, "old", "new").status(&Default::default());
        assert_eq!(st.current_revision.as_deref(), Some("new"));
        assert_eq!(st.current_replicas, Some(3));
    }
}
