//! Controller references (`ownerReferences[].controller: true`) and upstream's
//! `ControllerRefManager` claim rules: an owner keeps the objects it controls that its
//! selector still matches, releases those it no longer matches (unless it is being
//! deleted), and adopts matching orphans (never while it or the orphan is being deleted).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

/// The controller reference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to `owner` (`controller` and `blockOwnerDeletion` true).
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// What an owner does with one candidate object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Already controlled by the owner and matched: it is the owner's.
    Keep,
    /// An orphan the owner should adopt.
    Adopt,
    /// Controlled by the owner but no longer matched: release it.
    Release,
    /// Not the owner's business.
    Ignore,
}

/// Upstream's `ClaimObject` decision for `obj` and an owner with `owner_uid`.
pub fn claim(
    owner_uid: &str,
    owner_deleting: bool,
    obj: &ObjectMeta,
    selector_matches: bool,
) -> Claim {
    match controller_of(obj) {
        Some(r) if r.uid != owner_uid => Claim::Ignore,
        Some(_) if selector_matches => Claim::Keep,
        Some(_) if owner_deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if owner_deleting || !selector_matches || obj.deletion_timestamp.is_some() => {
            Claim::Ignore
        }
        None => Claim::Adopt,
    }
}

fn patch_owner_refs<K>(obj: &K, refs: Vec<OwnerReference>) -> serde_json::Value
where
    K: Resource,
{
    // The resourceVersion makes the patch conditional: if the object changed since it was
    // read (another controller adopted it), the write fails with a conflict and the
    // caller's next sync decides again.
    json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.meta().resource_version,
    }})
}

/// Adds `owner` as the controller of `obj`. Returns `Ok(None)` if `obj` is gone.
pub async fn adopt<K>(api: &Api<K>, obj: &K, owner: OwnerReference) -> kube::Result<Option<K>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut refs: Vec<OwnerReference> = obj.meta().owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != owner.uid);
    refs.push(owner);
    let patch = patch_owner_refs(obj, refs);
    not_found_is_none(
        api.patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await,
    )
}

/// Removes the owner with `owner_uid` from `obj`'s references. Returns `Ok(None)` if `obj`
/// is gone.
pub async fn release<K>(api: &Api<K>, obj: &K, owner_uid: &str) -> kube::Result<Option<K>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut refs: Vec<OwnerReference> = obj.meta().owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != owner_uid);
    let patch = patch_owner_refs(obj, refs);
    not_found_is_none(
        api.patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await,
    )
}

fn not_found_is_none<K>(r: kube::Result<K>) -> kube::Result<Option<K>> {
    match r {
        Ok(o) => Ok(Some(o)),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(controller: Option<&str>, deleting: bool) -> ObjectMeta {
        ObjectMeta {
            owner_references: controller.map(|uid| {
                vec![OwnerReference {
                    uid: uid.into(),
                    controller: Some(true),
                    ..Default::default()
                }]
            }),
            deletion_timestamp: deleting.then(|| {
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::now(),
                )
            }),
            ..Default::default()
        }
    }

    #[test]
    fn claim_rules() {
        assert_eq!(
            claim("a", false, &meta(Some("a"), false), true),
            Claim::Keep
        );
        assert_eq!(
            claim("a", false, &meta(Some("a"), false), false),
            Claim::Release
        );
        assert_eq!(
            claim("a", true, &meta(Some("a"), false), false),
            Claim::Ignore
        );
        assert_eq!(
            claim("a", false, &meta(Some("b"), false), true),
            Claim::Ignore
        );
        assert_eq!(claim("a", false, &meta(None, false), true), Claim::Adopt);
        assert_eq!(claim("a", false, &meta(None, false), false), Claim::Ignore);
        assert_eq!(claim("a", true, &meta(None, false), true), Claim::Ignore);
        assert_eq!(claim("a", false, &meta(None, true), true), Claim::Ignore);
    }
}
