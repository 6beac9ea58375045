//! Field ownership on every write and server-side apply (`application/apply-patch+yaml`):
//! the request-side glue around `skiff_api::apply`, hooked into the generic handler.

use std::future::Future;
use std::sync::Mutex;

use bytes::Bytes;
use http::request::Parts;
use serde_json::{json, Value};
use skiff_api::apply::{self, Scope, Ty, Write};
use skiff_api::registry::{Resource, Subresource};
use skiff_api::status::{Cause, Status};
use skiff_api::strategy::meta_str;

use crate::negotiate::{self, BodyFormat};
use crate::route::{Query, ResourceRequest};
use crate::ApiServer;

/// Who is writing, for the whole request.
#[derive(Clone, Debug)]
struct Request {
    manager: String,
    /// An apply request: its creates already carry their managedFields.
    apply: bool,
}

tokio::task_local! {
    static REQUEST: Request;
}

/// Runs one request with its field manager: the `fieldManager` parameter, else the first
/// token of the user agent (`kubectl/v1.33.0 (...)` → `kubectl`), as upstream.
pub async fn scope<F: Future>(q: &Query, parts: &Parts, f: F) -> F::Output {
    let manager = match q.field_manager.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .unwrap_or_default()
            .to_string(),
    };
    let apply = negotiate::body_format(
        parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    ) == Ok(BodyFormat::ApplyPatch);
    REQUEST.scope(Request { manager, apply }, f).await
}

fn request() -> Option<Request> {
    REQUEST.try_with(Request::clone).ok()
}

/// Runs `f` with the apply type of `res`: its built-in schema, a custom resource's
/// structural schema, or none.
fn with_ty<R>(res: &Resource, f: impl FnOnce(Ty<'_>) -> R) -> R {
    let crd = crate::crd::version(res);
    match crd.as_ref().and_then(|v| v.schema.as_ref()) {
        Some(schema) => f(Ty::SchemaRoot(schema)),
        None => f(Ty::root(res.group, res.version, res.kind)),
    }
}

fn scope_of(res: &Resource, subresource: Option<&str>) -> Scope {
    match subresource {
        Some("status") => Scope::Status,
        Some("scale") => Scope::Scale {
            replicas: crate::crd::version(res)
                .and_then(|v| v.scale.as_ref().map(|p| p.spec_replicas))
                .unwrap_or("/spec/replicas"),
        },
        Some(_) => Scope::All,
        None => Scope::Main {
            status_subresource: res.subresources.contains(&Subresource::Status),
        },
    }
}

/// Records the creating manager in a new object's managedFields. Writes from inside the
/// server (no request) are not tracked.
pub fn on_create(res: &Resource, obj: &mut Value) {
    let Some(req) = request() else { return };
    if req.apply {
        return;
    }
    let api_version = res.api_version();
    let now = crate::now_timestamp();
    with_ty(res, |ty| {
        let w = Write {
            ty,
            api_version: &api_version,
            manager: &req.manager,
            scope: scope_of(res, None),
            now: &now,
        };
        apply::track_update(&w, None, obj);
    })
}

/// Records an update in `new`'s managedFields, or puts back what an apply computed.
pub fn on_update(
    rr: &ResourceRequest,
    current: &Value,
    new: &mut Value,
    apply: Option<&ApplyPatch>,
) {
    if let Some(a) = apply {
        if let Some(managed) = a.managed.lock().unwrap().clone() {
            skiff_api::strategy::meta_mut(new).insert("managedFields".into(), managed);
        } else {
            skiff_api::strategy::meta_mut(new).remove("managedFields");
        }
        return;
    }
    let Some(req) = request() else { return };
    let res = rr.res;
    let api_version = res.api_version();
    let now = crate::now_timestamp();
    with_ty(res, |ty| {
        let w = Write {
            ty,
            api_version: &api_version,
            manager: &req.manager,
            scope: scope_of(res, rr.subresource.as_deref()),
            now: &now,
        };
        apply::track_update(&w, Some(current), new);
    })
}

/// A decoded apply request.
#[derive(Debug)]
pub struct ApplyPatch {
    config: Value,
    manager: String,
    force: bool,
    /// The managedFields the last attempt computed.
    managed: Mutex<Option<Value>>,
}

/// upstream's ValidatePatchOptions and ValidateFieldManager.
pub fn check_patch_options(fmt: BodyFormat, q: &Query) -> Result<(), Status> {
    let mut causes = Vec::new();
    let manager = q.field_manager.as_deref().unwrap_or("");
    if fmt == BodyFormat::ApplyPatch {
        if manager.is_empty() {
            causes.push(Cause::new(
                "FieldValueRequired",
                "Required value: is required for apply patch",
                "fieldManager",
            ));
        }
    } else if q.force {
        causes.push(Cause::forbidden(
            "force",
            "may not be specified for non-apply patch",
        ));
    }
    if manager.len() > 128 {
        causes.push(Cause::new(
            "FieldValueTooLong",
            "Too long: may not be more than 128 bytes",
            "fieldManager",
        ));
    }
    if manager.chars().any(|c| c.is_control()) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: {manager:?}: must only contain printable characters"),
            "fieldManager",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(Status::invalid_options("PatchOptions", causes))
    }
}

/// Decodes an apply body (YAML or JSON) and checks it names the resource's kind.
pub fn apply_patch(rr: &ResourceRequest, q: &Query, body: &Bytes) -> Result<ApplyPatch, Status> {
    let config = if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        serde_json::from_slice(body)
            .map_err(|e| Status::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        negotiate::decode(body, true)?
    };
    if !config.is_object() {
        return Err(Status::bad_request(
            "error decoding YAML: the apply configuration must be an object",
        ));
    }
    let (group, version, kind) = match rr.subresource.as_deref() {
        Some("scale") => ("autoscaling", "v1", "Scale"),
        _ => (rr.res.group, rr.res.version, rr.res.kind),
    };
    let api_version = config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let got_kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
    let (got_group, got_version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    if got_kind != kind || got_group != group || got_version != version {
        return Err(Status::bad_request(format!(
            "invalid object type: {got_group}/{got_version}, Kind={got_kind}"
        )));
    }
    if config
        .get("metadata")
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(Status::bad_request("metadata must be an object"));
    }
    Ok(ApplyPatch {
        config,
        manager: q.field_manager.clone().unwrap_or_default(),
        force: q.force,
        managed: Mutex::new(None),
    })
}

impl ApplyPatch {
    /// Applies to `current` (the stored object), leaving the result in `new`. On `/scale`
    /// the Scale's `spec.replicas` is applied to the object's (for custom resources, at the
    /// CRD's `specReplicasPath`).
    pub fn run(
        &self,
        rr: &ResourceRequest,
        current: &Value,
        new: &mut Value,
    ) -> Result<(), Status> {
        let res = rr.res;
        let api_version = res.api_version();
        let now = crate::now_timestamp();
        let config = match rr.subresource.as_deref() {
            Some("scale") => {
                let mut c = json!({"apiVersion": api_version, "kind": res.kind, "metadata": {}});
                if let Some(m) = self.config.get("metadata").filter(|m| m.is_object()) {
                    c["metadata"] = m.clone();
                }
                if let Some(r) = self.config.pointer("/spec/replicas") {
                    // A custom resource's replicas live at its CRD's specReplicasPath.
                    let at_path = r
                        .as_i64()
                        .is_some_and(|n| crate::crd::set_replicas(res, &mut c, n));
                    if !at_path {
                        c["spec"] = json!({"replicas": r});
                    }
                }
                c
            }
            _ => self.config.clone(),
        };
        let mut merged = with_ty(res, |ty| {
            let w = Write {
                ty,
                api_version: &api_version,
                manager: &self.manager,
                scope: scope_of(res, rr.subresource.as_deref()),
                now: &now,
            };
            apply::apply(&w, Some(current), &config, self.force)
        })?;
        let managed = merged
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .and_then(|m| m.remove("managedFields"));
        *self.managed.lock().unwrap() = managed;
        *new = merged;
        Ok(())
    }
}

/// Create-on-apply: when the object does not exist, an apply creates it (201). `None` when
/// it exists (the caller updates it).
pub async fn create_on_apply(
    srv: &ApiServer,
    rr: &ResourceRequest,
    name: &str,
    a: &ApplyPatch,
    dry_run: bool,
) -> Result<Option<Value>, Status> {
    if rr.subresource.is_some() {
        return Ok(None);
    }
    let res = rr.res;
    match crate::rest::get_object(srv, res, rr.namespace.as_deref(), name).await {
        Ok(_) => return Ok(None),
        Err(s) if s.code == 404 => {}
        Err(s) => return Err(s),
    }
    if let Some(n) = meta_str(&a.config, "name").filter(|n| !n.is_empty() && *n != name) {
        return Err(Status::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let api_version = res.api_version();
    let now = crate::now_timestamp();
    let mut obj = with_ty(res, |ty| {
        let w = Write {
            ty,
            api_version: &api_version,
            manager: &a.manager,
            scope: scope_of(res, None),
            now: &now,
        };
        apply::apply(&w, None, &a.config, a.force)
    })?;
    skiff_api::strategy::meta_mut(&mut obj).insert("name".into(), json!(name));
    match crate::rest::create(srv, res, rr.namespace.as_deref(), obj, dry_run).await {
        Ok(created) => Ok(Some(created)),
        // Created concurrently: apply to it instead.
        Err(s) if s.reason == "AlreadyExists" => Ok(None),
        Err(s) => Err(s),
    }
}
