//! Revisions (upstream's `getNewReplicaSet`, `SetDeploymentRevision`, `cleanupDeployment`):
//! the ReplicaSet for the current template is found or created as
//! `<deployment>-<pod-template-hash>`, carries the highest revision (the previous one moves
//! to `revision-history` when an old ReplicaSet comes back, as on `kubectl rollout undo`),
//! and old ReplicaSets scaled to zero beyond `revisionHistoryLimit` are deleted.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use skiff_client::controllerref::{controller_of, controller_ref};

use super::util::{self, *};
use super::Ctl;
use crate::replicaset::api_message;

/// The ReplicaSets of a rollout: the one for the current template, if any, and the others.
pub struct RsSet {
    pub new: Option<ReplicaSet>,
    pub old: Vec<ReplicaSet>,
}

impl RsSet {
    /// Old and new together (`append(oldRSs, newRS)`).
    pub fn all(&self) -> Vec<ReplicaSet> {
        let mut v = self.old.clone();
        v.extend(self.new.clone());
        v
    }
}

fn template_labels_with_hash(
    d: &Deployment,
    hash: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut labels = d
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(POD_TEMPLATE_HASH.into(), hash.into());
    labels
}

impl Ctl {
    /// `getAllReplicaSetsAndSyncRevision`.
    pub(super) async fn rs_set(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
        create: bool,
    ) -> anyhow::Result<RsSet> {
        let new_name = find_new_rs(d, rss).and_then(|r| r.metadata.name.clone());
        let old: Vec<ReplicaSet> = rss
            .iter()
            .filter(|r| r.metadata.name != new_name || new_name.is_none())
            .cloned()
            .collect();
        let new = self.new_rs(d, rss, &old, create).await?;
        Ok(RsSet { new, old })
    }

    /// `getNewReplicaSet`: syncs the existing new ReplicaSet's annotations, or creates it.
    async fn new_rs(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
        old: &[ReplicaSet],
        create: bool,
    ) -> anyhow::Result<Option<ReplicaSet>> {
        let ns = d.namespace().unwrap_or_default();
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        let new_revision = max_revision(old) + 1;
        if let Some(existing) = find_new_rs(d, rss) {
            let mut annotations = existing.metadata.annotations.clone().unwrap_or_default();
            let changed = set_new_rs_annotations(d, &mut annotations, new_revision, true);
            let min_ready = util::min_ready_seconds(d);
            let rs_min_ready = existing
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0);
            if changed || rs_min_ready != min_ready {
                let patch = json!({
                    "metadata": {"annotations": annotations},
                    "spec": {"minReadySeconds": min_ready},
                });
                let rs = api
                    .patch(
                        &existing.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await?;
                return Ok(Some(rs));
            }
            let rev = annotations.get(REVISION).cloned().unwrap_or_default();
            self.set_deployment_revision(d, &rev).await?;
            let mut st = status(d);
            if progress_deadline(d).is_some() && condition(&st, PROGRESSING).is_none() {
                let msg = format!("Found new replica set {:?}", existing.name_any());
                set_condition(
                    &mut st,
                    new_condition(PROGRESSING, "True", FOUND_NEW_RS, &msg),
                );
                self.write_status(d, st).await?;
            }
            return Ok(Some(existing.clone()));
        }
        if !create {
            return Ok(None);
        }

        let spec = d.spec.clone().unwrap_or_default();
        let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&spec.template, collision_count);
        let name = format!("{}-{hash}", d.name_any());
        let labels = template_labels_with_hash(d, &hash);
        let mut template = spec.template.clone();
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels = Some(labels.clone());
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut all: Vec<i32> = old.iter().map(rs_replicas).collect();
        all.push(0);
        let total: i32 = all.iter().sum();
        let replicas = if is_recreate(d) {
            util::replicas(d)
        } else {
            new_rs_new_replicas(util::replicas(d), max_surge(d), total, 0)
        };
        let mut annotations = Default::default();
        set_new_rs_annotations(d, &mut annotations, new_revision, false);
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references: Some(vec![controller_ref(d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let created = match api.create(&PostParams::default(), &rs).await {
            Ok(created) => {
                if replicas > 0 {
                    let msg = format!("Scaled up replica set {name} from 0 to {replicas}");
                    self.recorder.normal(d, "ScalingReplicaSet", &msg).await;
                }
                created
            }
            Err(kube::Error::Api(s)) if s.is_already_exists() => {
                // Ours already (a stale cache), or a hash collision: then bump the
                // collision count so the next sync computes another name.
                let existing = api.get(&name).await?;
                let ours = controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
                let same = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| equal_ignore_hash(t, &spec.template));
                if ours && same {
                    self.set_deployment_revision(d, &new_revision.to_string())
                        .await?;
                    return Ok(Some(existing));
                }
                let mut st = status(d);
                st.collision_count = Some(collision_count.unwrap_or(0) + 1);
                self.write_status(d, st).await?;
                anyhow::bail!(
                    "replica set {name} already exists with another template (hash collision)"
                );
            }
            Err(e)
                if crate::replicaset::api_message(&e)
                    .contains("because it is being terminated") =>
            {
                return Err(e.into());
            }
            Err(e) => {
                let msg = format!(
                    "Failed to create new replica set {name:?}: {}",
                    api_message(&e)
                );
                if progress_deadline(d).is_some() {
                    let mut st = status(d);
                    set_condition(
                        &mut st,
                        new_condition(PROGRESSING, "False", FAILED_RS_CREATE, &msg),
                    );
                    self.write_status(d, st).await?;
                }
                self.recorder.warning(d, FAILED_RS_CREATE, &msg).await;
                anyhow::bail!("{msg}");
            }
        };
        self.set_deployment_revision(d, &new_revision.to_string())
            .await?;
        if progress_deadline(d).is_some() {
            let mut st = status(d);
            let msg = format!("Created new replica set {:?}", created.name_any());
            set_condition(
                &mut st,
                new_condition(PROGRESSING, "True", NEW_RS_CREATED, &msg),
            );
            self.write_status(d, st).await?;
        }
        Ok(Some(created))
    }

    /// `SetDeploymentRevision`: the Deployment's revision annotation follows its new
    /// ReplicaSet's. (Upstream writes it with the status; here status writes cannot change
    /// metadata, so it is a metadata patch, which does not bump the generation.)
    pub(super) async fn set_deployment_revision(
        &self,
        d: &mut Deployment,
        revision: &str,
    ) -> anyhow::Result<()> {
        let current = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .map(String::as_str);
        if current == Some(revision) || revision.is_empty() {
            return Ok(());
        }
        let api: Api<Deployment> =
            Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        let patch = json!({"metadata": {"annotations": {REVISION: revision}}});
        let fresh = api
            .patch(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        d.metadata = fresh.metadata;
        Ok(())
    }

    /// `cleanupDeployment`: deletes the oldest revisions beyond `revisionHistoryLimit`
    /// that are scaled to zero and settled.
    pub(super) async fn cleanup(&self, d: &Deployment, old: &[ReplicaSet]) -> anyhow::Result<()> {
        let Some(limit) = revision_history_limit(d) else {
            return Ok(());
        };
        let mut alive: Vec<&ReplicaSet> = old
            .iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = alive.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return Ok(());
        }
        alive.sort_by(|a, b| by_revision(a, b));
        let api: Api<ReplicaSet> =
            Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        for rs in alive.into_iter().take(diff as usize) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if rs_status_replicas(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            match api.delete(&rs.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
