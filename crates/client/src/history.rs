//! ControllerRevisions as the DaemonSet and StatefulSet controllers keep them (upstream
//! `pkg/controller/history` and the controllers' `getPatch`): each revision stores a patch
//! replacing `spec.template` (what `kubectl rollout undo` applies), is named
//! `<owner>-<hash>`, is labelled with the hash, and carries a revision number; the revision
//! matching the current template is created, or renumbered to be the newest; old revisions
//! nothing uses are pruned beyond the owner's history limit.

use std::collections::HashSet;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::{json, Value};

use crate::controllerref::controller_ref;
use crate::workload::is_controlled_by;

/// The label with the revision's hash.
pub const REVISION_HASH: &str = "controller-revision-hash";

/// The data of a revision of `template`: `{"spec":{"template":{..., "$patch":"replace"}}}`.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The template a revision records.
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// The outcome of [`sync_current`].
pub enum Current {
    Revision(Box<ControllerRevision>),
    /// `<owner>-<hash>` exists with other data: the caller bumps its collision count.
    Collision,
}

/// Finds or makes the revision of `template` among `owned` (the owner's revisions) and
/// makes it the newest.
pub async fn sync_current<K: Resource<DynamicType = ()>>(
    api: &Api<ControllerRevision>,
    owner: &K,
    owned: &[ControllerRevision],
    template: &PodTemplateSpec,
    hash: &str,
) -> kube::Result<Current> {
    let data = template_patch(template);
    let max = owned.iter().map(|r| r.revision).max().unwrap_or(0);
    let existing = owned
        .iter()
        .filter(|r| r.data.as_ref().map(|d| &d.0) == Some(&data))
        .max_by_key(|r| r.revision);
    if let Some(cur) = existing {
        if cur.revision < max {
            let patch = json!({"revision": max + 1});
            let r = api
                .patch(
                    &cur.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            return Ok(Current::Revision(Box::new(r)));
        }
        return Ok(Current::Revision(Box::new(cur.clone())));
    }
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH.into(), hash.into());
    let name = format!(
        "{}-{hash}",
        owner.meta().name.as_deref().unwrap_or_default()
    );
    let rev = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: owner.meta().namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![controller_ref(owner)]),
            ..Default::default()
        },
        data: Some(RawExtension(data.clone())),
        revision: max + 1,
    };
    match api.create(&PostParams::default(), &rev).await {
        Ok(r) => Ok(Current::Revision(Box::new(r))),
        Err(kube::Error::Api(s)) if s.is_already_exists() => {
            let found = api.get(&name).await?;
            let uid = owner.meta().uid.clone().unwrap_or_default();
            if found.data.as_ref().map(|d| &d.0) == Some(&data)
                && is_controlled_by(&found.metadata, &uid)
            {
                Ok(Current::Revision(Box::new(found)))
            } else {
                Ok(Current::Collision)
            }
        }
        Err(e) => Err(e),
    }
}

/// Deletes the oldest of `owned` not named in `live` until at most `limit` such remain.
pub async fn truncate(
    api: &Api<ControllerRevision>,
    owned: &[ControllerRevision],
    live: &HashSet<String>,
    limit: usize,
) -> kube::Result<()> {
    let mut old: Vec<&ControllerRevision> = owned
        .iter()
        .filter(|r| !live.contains(&r.name_any()))
        .collect();
    if old.len() <= limit {
        return Ok(());
    }
    old.sort_by_key(|r| r.revision);
    let extra = old.len() - limit;
    for r in old.into_iter().take(extra) {
        match api.delete(&r.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    #[test]
    fn revision_data_round_trips_the_template() {
        let t = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some("nginx".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let data = template_patch(&t);
        assert_eq!(data["spec"]["template"]["$patch"], json!("replace"));
        let rev = ControllerRevision {
            data: Some(RawExtension(data)),
            ..Default::default()
        };
        assert_eq!(template_of(&rev), Some(t));
    }
}
