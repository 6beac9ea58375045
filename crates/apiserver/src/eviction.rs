//! `POST pods/{name}/eviction`: a delete that honours PodDisruptionBudgets, as upstream's
//! eviction REST does.
//!
//! - Pods that cannot disrupt anything (Pending, finished, already being deleted) are
//!   deleted at once.
//! - More than one budget selecting the pod is a 500, as upstream.
//! - A budget whose status is not yet observed (`observedGeneration < generation`) or
//!   that allows no disruption answers 429 TooManyRequests with a `DisruptionBudget` cause
//!   ("The disruption budget web needs 2 healthy pods and has 2 currently").
//! - Otherwise `disruptionsAllowed` is decremented and the pod recorded in
//!   `disruptedPods`, compare-and-swap on the budget, before the pod gets a
//!   `DisruptionTarget` condition and is deleted with the request's DeleteOptions.
//! - An unready pod is evicted without spending budget when the budget is already met
//!   (`unhealthyPodEvictionPolicy` IfHealthyBudget, the default) or always (AlwaysAllow).

use serde_json::{json, Value};
use skiff_api::registry::{self, Resource};
use skiff_api::selectors::LabelSelector;
use skiff_api::status::{Cause, Status};
use skiff_store::{ListRequest, StoreError};

use crate::rest::{decode_stored, delete, get_object, list_prefix, object_key, DeleteOptions};
use crate::ApiServer;

const MAX_RETRIES: usize = 16;

/// Upstream's cap on `status.disruptedPods` entries.
const MAX_DISRUPTED_PODS: usize = 2000;

pub async fn evict(
    srv: &ApiServer,
    pods: &Resource,
    ns: Option<&str>,
    name: &str,
    mut opts: DeleteOptions,
) -> Result<(), Status> {
    let namespace = ns.unwrap_or_default();
    let (pod, _) = get_object(srv, pods, ns, name).await?;
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    let ignores_budget = matches!(phase, Some("Pending") | Some("Succeeded") | Some("Failed"))
        || pod.pointer("/metadata/deletionTimestamp").is_some();
    if !ignores_budget {
        check_budget(srv, namespace, name, &pod, opts.dry_run).await?;
    }
    if opts.dry_run {
        return Ok(());
    }
    if !ignores_budget {
        mark_disruption_target(srv, pods, ns, name).await;
    }
    // Only the pod that was looked at is deleted, never a replacement of the same name.
    if opts.precondition_uid.is_none() {
        opts.precondition_uid = pod
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(String::from);
    }
    delete(srv, pods, ns, name, &opts).await.map(|_| ())
}

fn pdb_resource() -> &'static Resource {
    registry::lookup("policy", "v1", "poddisruptionbudgets").expect("PDBs are registered")
}

fn too_many_requests(message: &str, cause: Option<Cause>) -> Status {
    let mut s = Status::new(429, "TooManyRequests", message);
    if let Some(c) = cause {
        s.details.causes = vec![c];
    }
    s
}

/// Spends one disruption of the budget covering the pod, or says why it cannot.
async fn check_budget(
    srv: &ApiServer,
    ns: &str,
    pod_name: &str,
    pod: &Value,
    dry_run: bool,
) -> Result<(), Status> {
    let res = pdb_resource();
    let labels = pod
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for _ in 0..MAX_RETRIES {
        let listed = srv
            .store
            .list(&ListRequest {
                prefix: list_prefix(res, Some(ns)),
                start_after: None,
                limit: 0,
                revision: 0,
            })
            .await
            .map_err(|e| crate::rest::store_error(res, "", e))?;
        let mut matching = Vec::new();
        for kv in &listed.kvs {
            let pdb = decode_stored(res, kv)?;
            let Some(sel) = pdb.pointer("/spec/selector") else {
                continue;
            };
            // A budget with a bad selector selects nothing; in policy/v1 an empty one
            // selects every pod of the namespace.
            let Ok(sel) = LabelSelector::from_label_selector_object(sel) else {
                continue;
            };
            if sel.matches(&labels) {
                matching.push((pdb, kv.mod_revision));
            }
        }
        let (mut pdb, rev) = match matching.len() {
            0 => return Ok(()),
            1 => matching.pop().expect("one budget"),
            _ => {
                return Err(Status::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ))
            }
        };
        let pdb_name = pdb
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let status_num = |p: &Value, f: &str| {
            p.pointer(&format!("/status/{f}"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        let generation = pdb
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let observed = status_num(&pdb, "observedGeneration");
        if observed < generation {
            return Err(too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                Some(Cause::new(
                    "DisruptionBudget",
                    format!(
                        "The disruption budget {pdb_name} is still being processed by the server."
                    ),
                    "",
                )),
            ));
        }
        let healthy = status_num(&pdb, "currentHealthy");
        let desired = status_num(&pdb, "desiredHealthy");
        if !pod_ready(pod) {
            let policy = pdb
                .pointer("/spec/unhealthyPodEvictionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("IfHealthyBudget");
            if policy == "AlwaysAllow" || (healthy >= desired && desired > 0) {
                return Ok(());
            }
        }
        let allowed = status_num(&pdb, "disruptionsAllowed");
        if allowed < 0 {
            return Err(Status::forbidden("pdb disruptions allowed is negative"));
        }
        let disrupted = pdb
            .pointer("/status/disruptedPods")
            .and_then(Value::as_object)
            .map_or(0, |m| m.len());
        if disrupted > MAX_DISRUPTED_PODS {
            return Err(Status::forbidden(
                "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
            ));
        }
        if allowed == 0 {
            return Err(too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                Some(Cause::new(
                    "DisruptionBudget",
                    format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"),
                    "",
                )),
            ));
        }
        if dry_run {
            return Ok(());
        }
        let status = pdb
            .as_object_mut()
            .expect("objects are JSON objects")
            .entry("status")
            .or_insert_with(|| json!({}));
        status["disruptionsAllowed"] = json!(allowed - 1);
        let map = status
            .as_object_mut()
            .expect("status is an object")
            .entry("disruptedPods")
            .or_insert_with(|| json!({}));
        if let Some(m) = map.as_object_mut() {
            m.insert(pod_name.into(), json!(crate::now_timestamp()));
        }
        let key = object_key(res, Some(ns), &pdb_name);
        let mut stored = pdb;
        if let Some(m) = stored.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        let bytes = bytes::Bytes::from(serde_json::to_vec(&stored).expect("JSON values serialise"));
        match srv.store.update(&key, bytes, Some(rev)).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(crate::rest::store_error(res, &pdb_name, e)),
        }
    }
    Err(too_many_requests(
        "Cannot evict pod: the disruption budget keeps changing; try again",
        None,
    ))
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// Adds the `DisruptionTarget` condition (best effort: the eviction goes ahead anyway).
async fn mark_disruption_target(srv: &ApiServer, pods: &Resource, ns: Option<&str>, name: &str) {
    let key = object_key(pods, ns, name);
    for _ in 0..MAX_RETRIES {
        let Ok((mut pod, rev)) = get_object(srv, pods, ns, name).await else {
            return;
        };
        let Some(status) = pod.get_mut("status").and_then(Value::as_object_mut) else {
            return;
        };
        let conditions = status.entry("conditions").or_insert_with(|| json!([]));
        let Some(list) = conditions.as_array_mut() else {
            return;
        };
        list.retain(|c| c.get("type").and_then(Value::as_str) != Some("DisruptionTarget"));
        list.push(json!({
            "type": "DisruptionTarget", "status": "True", "lastProbeTime": null,
            "lastTransitionTime": crate::now_timestamp(),
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
        }));
        if let Some(m) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        let bytes = bytes::Bytes::from(serde_json::to_vec(&pod).expect("JSON values serialise"));
        match srv.store.update(&key, bytes, Some(rev)).await {
            Err(StoreError::Conflict { .. }) => continue,
            _ => return,
        }
    }
}
