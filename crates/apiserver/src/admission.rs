//! Admission that needs to read other objects (pure defaulting lives in
//! `skiff_api::strategy`). Today: upstream's `Priority` plugin, which turns a pod's
//! `priorityClassName` (or the cluster's `globalDefault` class) into `spec.priority` and
//! `spec.preemptionPolicy`, and refuses unknown classes; plus the system classes every
//! cluster has.

use serde_json::{json, Value};
use skiff_api::registry::{self, Resource};
use skiff_api::status::Status;
use skiff_store::ListRequest;

use crate::rest::{decode_stored, get_object, list_prefix};
use crate::ApiServer;

/// The classes upstream creates at start.
pub const SYSTEM_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

fn priority_classes() -> &'static Resource {
    registry::lookup("scheduling.k8s.io", "v1", "priorityclasses")
        .expect("PriorityClasses are registered")
}

/// Runs the admission steps for a create of `obj` (already defaulted).
pub async fn admit_create(srv: &ApiServer, res: &Resource, obj: &mut Value) -> Result<(), Status> {
    if res.group.is_empty() && res.kind == "Pod" {
        admit_pod_priority(srv, obj).await?;
    }
    Ok(())
}

async fn admit_pod_priority(srv: &ApiServer, pod: &mut Value) -> Result<(), Status> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let class_name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(String::from);
    let class = match &class_name {
        Some(c) => match get_object(srv, priority_classes(), None, c).await {
            Ok((obj, _)) => Some(obj),
            Err(s) if s.code == 404 => {
                return Err(Status::forbidden(format!(
                    "pods \"{name}\" is forbidden: no PriorityClass with name {c} was found"
                )))
            }
            Err(s) => return Err(s),
        },
        None => global_default(srv).await?,
    };
    let (priority, policy) = match &class {
        Some(c) => (
            c.get("value").and_then(Value::as_i64).unwrap_or(0),
            c.get("preemptionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("PreemptLowerPriority")
                .to_string(),
        ),
        None => (0, "PreemptLowerPriority".to_string()),
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
        if given != priority {
            return Err(Status::forbidden(format!(
                "pods \"{name}\" is forbidden: the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            )));
        }
    }
    spec.insert("priority".into(), json!(priority));
    if class_name.is_none() {
        if let Some(c) = class.as_ref().and_then(|c| c.pointer("/metadata/name")) {
            spec.insert("priorityClassName".into(), c.clone());
        }
    }
    if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str) {
        if given != policy {
            return Err(Status::forbidden(format!(
                "pods \"{name}\" is forbidden: the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            )));
        }
    }
    spec.insert("preemptionPolicy".into(), json!(policy));
    Ok(())
}

/// The class marked `globalDefault`, if any (the one with the highest value if several).
async fn global_default(srv: &ApiServer) -> Result<Option<Value>, Status> {
    let res = priority_classes();
    let listed = srv
        .store
        .list(&ListRequest {
            prefix: list_prefix(res, None),
            start_after: None,
            limit: 0,
            revision: 0,
        })
        .await
        .map_err(|e| crate::rest::store_error(res, "", e))?;
    let mut best: Option<Value> = None;
    for kv in &listed.kvs {
        let c = decode_stored(res, kv)?;
        if c.get("globalDefault").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let value = |v: &Value| v.get("value").and_then(Value::as_i64).unwrap_or(0);
        if best.as_ref().is_none_or(|b| value(&c) > value(b)) {
            best = Some(c);
        }
    }
    Ok(best)
}
