//! The one generic REST handler: get, list, watch, create, update, patch, delete and
//! deletecollection for every registry row, plus the generic subresources.

use std::future::Future;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{header, request::Parts, Method, StatusCode};
use serde_json::{json, Map, Value};
use skiff_api::registry::{self, Resource, Subresource, Verbs};
use skiff_api::status::Status;
use skiff_api::strategy::{self, meta_str, CreateContext, UpdateKind};
use skiff_store::{KeyValue, ListRequest, StoreError};

use crate::negotiate::{self, BodyFormat, Output};
use crate::route::{Query, ResourceRequest};
use crate::{json_response, status_response, ApiServer, Resp};

/// How many times a read-modify-write retries on a concurrent change before giving up.
const MAX_RETRIES: usize = 16;

pub async fn serve(
    srv: &Arc<ApiServer>,
    rr: ResourceRequest,
    q: Query,
    parts: Parts,
    body: impl Future<Output = Result<Bytes, Status>>,
) -> Resp {
    let directive = q.field_validation.clone();
    crate::fieldvalidation::scope(directive.as_deref(), async move {
        match serve_inner(srv, &rr, &q, &parts, body).await {
            Ok(resp) => resp,
            Err(s) => status_response(&s),
        }
    })
    .await
}

fn pod_node(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

fn header_str(parts: &Parts, name: header::HeaderName) -> Option<&str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

async fn serve_inner(
    srv: &Arc<ApiServer>,
    rr: &ResourceRequest,
    q: &Query,
    parts: &Parts,
    body: impl Future<Output = Result<Bytes, Status>>,
) -> Result<Resp, Status> {
    crate::managed::scope(q, parts, serve_request(srv, rr, q, parts, body)).await
}

async fn serve_request(
    srv: &Arc<ApiServer>,
    rr: &ResourceRequest,
    q: &Query,
    parts: &Parts,
    body: impl Future<Output = Result<Bytes, Status>>,
) -> Result<Resp, Status> {
    let res = rr.res;
    crate::crd::on_request(res);
    // Upstream serves namespaced resources outside a namespace for list and watch only:
    // other methods there have no route (go-restful's 405).
    if res.namespaced && rr.namespace.is_none() && parts.method != Method::GET {
        return Err(Status::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {}): {} are namespaced; use /namespaces/NAMESPACE/{}",
            parts.method, res.plural, res.plural, res.plural
        )));
    }
    // Options validation (upstream's Validate{Create,Update,Patch,Delete}Options) comes
    // before the body is read.
    let options_kind = match parts.method {
        Method::POST => Some("CreateOptions"),
        Method::PUT => Some("UpdateOptions"),
        Method::PATCH => Some("PatchOptions"),
        Method::DELETE => Some("DeleteOptions"),
        _ => None,
    };
    if let Some(kind) = options_kind.filter(|_| !q.invalid_options.is_empty()) {
        let causes = q
            .invalid_options
            .iter()
            .filter(|c| match kind {
                "DeleteOptions" => c.field != "fieldValidation",
                _ => c.field != "propagationPolicy",
            })
            .cloned()
            .collect::<Vec<_>>();
        if !causes.is_empty() {
            return Err(Status::invalid_options(kind, causes));
        }
    }
    // A subresource has its own verbs: no DELETE of pods/x/status deleting the pod, no PUT
    // of pods/x/binding rewriting it. Anything else has no route upstream: 405.
    if let Some(sub) = rr.subresource.as_deref() {
        let verb = match parts.method {
            Method::GET => "get",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        };
        let allowed = res
            .subresources
            .iter()
            .find(|s| s.name() == sub)
            .is_some_and(|s| s.verbs().contains(&verb));
        if !allowed {
            return Err(Status::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({} {}/{sub})",
                parts.method, res.plural
            )));
        }
    }
    if let (Some(sub), Some(name)) = (&rr.subresource, &rr.name) {
        if let Some(Subresource::Connect(_)) = res.subresources.iter().find(|s| s.name() == sub) {
            // As upstream: the object must exist, and a pod must be on a node.
            let (obj, _) = get_object(srv, res, rr.namespace.as_deref(), name).await?;
            let is_pod = res.group.is_empty() && res.kind == "Pod";
            if is_pod && pod_node(&obj).is_none() {
                if sub == "log" {
                    // upstream's LogLocation: no node yet, nothing logged yet.
                    return Ok(http::Response::builder()
                        .status(StatusCode::OK)
                        .header(header::CONTENT_TYPE, "text/plain")
                        .body(crate::full(Bytes::new()))
                        .unwrap());
                }
                return Err(Status::bad_request(format!(
                    "pod {name} does not have a host assigned"
                )));
            }
            return Err(Status::unavailable(format!(
                "{}/{sub} is served by the node agent, which is not available for this object",
                res.plural
            )));
        }
    }
    let out = negotiate::output(header_str(parts, header::ACCEPT))?;
    let watching = q.watch || rr.legacy_watch;
    let verb_ok = |verb: &str| res.verbs.names().contains(&verb);
    let method_not_allowed = || {
        Status::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            parts.method, res.plural
        ))
    };
    match (&parts.method, &rr.name) {
        (&Method::GET, None) if watching => {
            if !verb_ok("watch") {
                return Err(method_not_allowed());
            }
            crate::watch::serve(srv, rr, q, out).await
        }
        (&Method::GET, None) => {
            if !verb_ok("list") {
                return Err(method_not_allowed());
            }
            validate_list_options(q)?;
            list(srv, rr, q, out).await
        }
        (&Method::GET, Some(name)) if watching && rr.subresource.is_none() => {
            // `?watch=true` on a named object: a watch with a name field selector.
            let mut q = q.clone();
            let sel = format!("metadata.name={name}");
            q.field_selector = Some(match &q.field_selector {
                Some(f) if !f.is_empty() => format!("{f},{sel}"),
                _ => sel,
            });
            let mut rr = rr.clone();
            rr.name = None;
            crate::watch::serve(srv, &rr, &q, out).await
        }
        (&Method::GET, Some(name)) => {
            if !verb_ok("get") {
                return Err(method_not_allowed());
            }
            let (obj, _) = get_object(srv, res, rr.namespace.as_deref(), name).await?;
            Ok(object_response(
                res,
                StatusCode::OK,
                &subresource_view(rr, obj)?,
                out,
            ))
        }
        (&Method::POST, None) => {
            if !verb_ok("create") {
                return Err(method_not_allowed());
            }
            let body = body.await?;
            let fmt = negotiate::body_format(header_str(parts, header::CONTENT_TYPE))?;
            let obj = decode_object(res, &body, fmt)?;
            if res.verbs == Verbs::CreateOnly {
                return Ok(object_response(
                    res,
                    StatusCode::CREATED,
                    &review(res, obj),
                    out,
                ));
            }
            let created = create(srv, res, rr.namespace.as_deref(), obj, q.dry_run).await?;
            Ok(object_response(res, StatusCode::CREATED, &created, out))
        }
        (&Method::POST, Some(name)) => {
            let body = body.await?;
            let fmt = negotiate::body_format(header_str(parts, header::CONTENT_TYPE))?;
            match rr.subresource.as_deref() {
                Some("binding") => {
                    let binding = match fmt {
                        BodyFormat::Protobuf => negotiate::decode_protobuf(&body)?,
                        _ => negotiate::decode(&body, fmt == BodyFormat::Yaml)?,
                    };
                    bind_pod(srv, res, rr.namespace.as_deref(), name, &binding).await?;
                    Ok(json_response(
                        StatusCode::CREATED,
                        Status::success_json("", "pods", name, ""),
                    ))
                }
                Some("eviction") => {
                    let opts = eviction_options(&body, fmt, name, q)?;
                    crate::eviction::evict(srv, res, rr.namespace.as_deref(), name, opts).await?;
                    Ok(json_response(
                        StatusCode::CREATED,
                        Status::success_json("policy", "pods", name, ""),
                    ))
                }
                _ => Err(method_not_allowed()),
            }
        }
        (&Method::PUT, Some(name)) => {
            if !verb_ok("update") {
                return Err(method_not_allowed());
            }
            let body = body.await?;
            let fmt = negotiate::body_format(header_str(parts, header::CONTENT_TYPE))?;
            let obj = if rr.subresource.as_deref() == Some("scale") {
                decode_object(scale_resource(), &body, fmt)?
            } else {
                decode_object(res, &body, fmt)?
            };
            let updated = update(srv, rr, name, Change::Replace(obj), q.dry_run).await?;
            Ok(object_response(
                res,
                StatusCode::OK,
                &subresource_view(rr, updated)?,
                out,
            ))
        }
        (&Method::PATCH, Some(name)) => {
            if !verb_ok("patch") {
                return Err(method_not_allowed());
            }
            let body = body.await?;
            let fmt = negotiate::body_format(header_str(parts, header::CONTENT_TYPE))?;
            crate::managed::check_patch_options(fmt, q)?;
            let change = match fmt {
                BodyFormat::Json | BodyFormat::Yaml | BodyFormat::Protobuf => {
                    return Err(Status::unsupported_media_type(
                        header_str(parts, header::CONTENT_TYPE).unwrap_or(""),
                    ))
                }
                BodyFormat::ApplyPatch => Change::Apply(crate::managed::apply_patch(rr, q, &body)?),
                BodyFormat::JsonPatch => Change::JsonPatch(json_patch_doc(&body)?),
                BodyFormat::MergePatch => Change::MergePatch(patch_doc(&body)?),
                BodyFormat::StrategicMergePatch => {
                    crate::crd::check_strategic_patch(res)?;
                    Change::Strategic(patch_doc(&body)?)
                }
            };
            if let Change::Apply(a) = &change {
                let created = crate::managed::create_on_apply(srv, rr, name, a, q.dry_run).await?;
                if let Some(obj) = created {
                    return Ok(object_response(res, StatusCode::CREATED, &obj, out));
                }
            }
            let updated = update(srv, rr, name, change, q.dry_run).await?;
            Ok(object_response(
                res,
                StatusCode::OK,
                &subresource_view(rr, updated)?,
                out,
            ))
        }
        (&Method::DELETE, Some(name)) => {
            if !verb_ok("delete") {
                return Err(method_not_allowed());
            }
            let body = delete_options_json(body.await?, parts)?;
            let opts = DeleteOptions::parse(&body, q)?;
            let obj = delete(srv, res, rr.namespace.as_deref(), name, &opts).await?;
            Ok(object_response(res, StatusCode::OK, &obj, out))
        }
        (&Method::DELETE, None) => {
            if !verb_ok("deletecollection") {
                return Err(method_not_allowed());
            }
            let body = delete_options_json(body.await?, parts)?;
            let opts = DeleteOptions::parse(&body, q)?;
            delete_collection(srv, rr, q, &opts, out).await
        }
        _ => Err(method_not_allowed()),
    }
}

/// DeleteOptions may arrive as protobuf; the rest of the handler reads JSON.
fn delete_options_json(body: Bytes, parts: &Parts) -> Result<Bytes, Status> {
    match negotiate::body_format(header_str(parts, header::CONTENT_TYPE)) {
        Ok(BodyFormat::Protobuf) if !body.is_empty() => {
            let v = negotiate::decode_protobuf(&body)?;
            Ok(Bytes::from(
                serde_json::to_vec(&v).expect("JSON values serialise"),
            ))
        }
        _ => Ok(body),
    }
}

/// A JSON patch: not a list of objects is a 400 (upstream's `DecodePatch`); an operation
/// that cannot be applied, unknown ops included, is a 422 as upstream's `Apply` makes it.
fn json_patch_doc(body: &Bytes) -> Result<json_patch::Patch, Status> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Status::bad_request(format!("error decoding JSON patch: {e}")))?;
    if !v
        .as_array()
        .is_some_and(|ops| ops.iter().all(Value::is_object))
    {
        return Err(Status::bad_request(
            "a JSON patch must be a list of operation objects, e.g. [{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":3}]",
        ));
    }
    serde_json::from_value(v).map_err(|e| {
        Status::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })
}

fn patch_doc(body: &Bytes) -> Result<Value, Status> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
    crate::fieldvalidation::patch_body(body);
    if !v.is_object() {
        return Err(Status::bad_request("a merge patch must be a JSON object"));
    }
    Ok(v)
}

/// Decodes a create/update body and checks it is this resource's kind and version.
fn decode_object(res: &Resource, body: &Bytes, fmt: BodyFormat) -> Result<Value, Status> {
    let obj = match fmt {
        BodyFormat::Json | BodyFormat::Yaml => negotiate::decode(body, fmt == BodyFormat::Yaml)?,
        BodyFormat::Protobuf => negotiate::decode_protobuf(body)?,
        _ => {
            return Err(Status::unsupported_media_type(
                "a patch media type on a non-PATCH request",
            ))
        }
    };
    if !obj.is_object() {
        return Err(Status::bad_request("the body must be a JSON object"));
    }
    if obj
        .get("metadata")
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(Status::bad_request("metadata must be an object"));
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != res.kind {
        return Err(Status::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({}) or the kind ({kind}) does not match the expected kind ({})",
            res.api_version(),
            res.kind
        )));
    }
    if !api_version.is_empty() && api_version != res.api_version() {
        return Err(Status::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            res.api_version()
        )));
    }
    crate::fieldvalidation::decoded(res, obj, body, fmt)
}

/// A create-only review object (TokenReview, SubjectAccessReview, ...). Until
/// authorization lands, the only users are `system:masters`, who may do everything.
fn review(res: &Resource, mut obj: Value) -> Value {
    let status = match res.kind {
        "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            json!({"allowed": true, "reason": "skiff: members of system:masters may do everything"})
        }
        "SelfSubjectReview" => {
            json!({"userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}})
        }
        _ => json!({}),
    };
    obj["status"] = status;
    obj["kind"] = json!(res.kind);
    obj["apiVersion"] = json!(res.api_version());
    obj
}

pub fn object_key(res: &Resource, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if res.namespaced => format!("{}{ns}/{name}", res.key_prefix()),
        _ => format!("{}{name}", res.key_prefix()),
    }
}

pub fn list_prefix(res: &Resource, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if res.namespaced => format!("{}{ns}/", res.key_prefix()),
        _ => res.key_prefix(),
    }
}

/// Turns a stored value into the object clients see.
pub fn decode_stored(res: &Resource, kv: &KeyValue) -> Result<Value, Status> {
    let mut obj: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        Status::internal(format!("stored object {} is not valid JSON: {e}", kv.key))
    })?;
    stamp(res, &mut obj, kv.mod_revision);
    crate::crd::on_read(res, &mut obj);
    Ok(obj)
}

fn stamp(res: &Resource, obj: &mut Value, revision: i64) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("kind".into(), json!(res.kind));
        map.insert("apiVersion".into(), json!(res.api_version()));
    }
    strategy::meta_mut(obj).insert("resourceVersion".into(), json!(revision.to_string()));
    strategy::normalize(obj);
}

pub fn store_error(res: &Resource, name: &str, e: StoreError) -> Status {
    match e {
        StoreError::NotFound { .. } => Status::not_found(res.group, res.plural, name),
        StoreError::AlreadyExists { .. } => Status::already_exists(res.group, res.plural, name),
        StoreError::Conflict { .. } => Status::conflict(
            res.group,
            res.plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ),
        StoreError::Compacted { requested, compacted } => Status::gone(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StoreError::FutureRevision { requested, current } => {
            Status::too_large_resource_version(requested, current)
        }
        StoreError::InvalidKey { reason, .. } => {
            Status::bad_request(format!("invalid object name {name:?}: {reason}"))
        }
        StoreError::Unavailable(m) | StoreError::Backend(m) | StoreError::Corrupt(m) => {
            Status::unavailable(format!("storage is unavailable: {m}"))
        }
        StoreError::Closed => Status::unavailable("the server is shutting down"),
        StoreError::WatcherTooSlow => Status::gone("watch fell behind; re-list"),
    }
}

pub async fn get_object(
    srv: &ApiServer,
    res: &Resource,
    namespace: Option<&str>,
    name: &str,
) -> Result<(Value, i64), Status> {
    let key = object_key(res, namespace, name);
    match srv.store.get(&key).await {
        Ok(Some(kv)) => Ok((decode_stored(res, &kv)?, kv.mod_revision)),
        Ok(None) => Err(Status::not_found(res.group, res.plural, name)),
        Err(e) => Err(store_error(res, name, e)),
    }
}

fn random_suffix() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let alphabet = strategy::NAME_SUFFIX_ALPHABET;
    bytes[..5]
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

fn storage_bytes(obj: &Value) -> Bytes {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    Bytes::from(serde_json::to_vec(&o).expect("JSON values serialise"))
}

/// Checks the namespace of a create exists and is not terminating.
/// Upstream's NamespaceLifecycle admission: the error names the object being created
/// (its name, else its generateName, else "Unknown").
async fn check_namespace(
    srv: &ApiServer,
    res: &Resource,
    ns: &str,
    obj: &Value,
) -> Result<(), Status> {
    let nsres = registry::lookup("", "v1", "namespaces").expect("namespaces are registered");
    let (ns_obj, _) = get_object(srv, nsres, None, ns).await?;
    let terminating = ns_obj.pointer("/metadata/deletionTimestamp").is_some()
        || ns_obj.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
    if terminating {
        let name = [meta_str(obj, "name"), meta_str(obj, "generateName")]
            .into_iter()
            .flatten()
            .find(|n| !n.is_empty())
            .unwrap_or("Unknown");
        let mut s = Status::forbidden(format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            skiff_api::status::qualified(res.group, res.plural)
        ));
        s.details.name = name.into();
        s.details.group = res.group.into();
        s.details.kind = res.plural.into();
        s.details.causes = vec![skiff_api::status::Cause::new(
            "NamespaceTerminating",
            format!("namespace {ns} is being terminated"),
            "metadata.namespace",
        )];
        return Err(s);
    }
    Ok(())
}

pub async fn create(
    srv: &ApiServer,
    res: &Resource,
    namespace: Option<&str>,
    mut obj: Value,
    dry_run: bool,
) -> Result<Value, Status> {
    strategy::check_field_types(res, &obj).map_err(|e| cannot_decode(res, &e))?;
    if let (Some(ns), Some(body_ns)) = (namespace, meta_str(&obj, "namespace")) {
        if !body_ns.is_empty() && body_ns != ns {
            return Err(Status::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    if let Some(ns) = namespace.filter(|_| res.namespaced) {
        check_namespace(srv, res, ns, &obj).await?;
    }
    let generated = meta_str(&obj, "name").is_none_or(str::is_empty);
    let template = obj.clone();
    let mut name = String::new();
    for attempt in 0..8 {
        if attempt > 0 {
            obj = template.clone();
        }
        let now = crate::now_timestamp();
        let uid = uuid::Uuid::new_v4().to_string();
        let suffix = random_suffix();
        strategy::prepare_create(
            res,
            &mut obj,
            &CreateContext {
                namespace: namespace.filter(|_| res.namespaced),
                now: &now,
                uid: &uid,
                random_suffix: &suffix,
            },
        )?;
        crate::crd::admit(res, &mut obj, None)?;
        crate::admission::admit_create(srv, res, &mut obj).await?;
        obj["kind"] = json!(res.kind);
        obj["apiVersion"] = json!(res.api_version());
        strategy::normalize(&mut obj);
        crate::managed::on_create(res, &mut obj);
        name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let key = object_key(res, namespace, &name);
        if dry_run {
            // As upstream's dry-run storage: an existing object is still a conflict.
            return match srv.store.get(&key).await {
                Ok(Some(_)) => Err(store_error(res, &name, StoreError::AlreadyExists { key })),
                Ok(None) => Ok(obj),
                Err(e) => Err(store_error(res, &name, e)),
            };
        }
        match srv.store.create(&key, storage_bytes(&obj)).await {
            Ok(kv) => {
                stamp(res, &mut obj, kv.mod_revision);
                return Ok(obj);
            }
            Err(StoreError::AlreadyExists { .. }) if generated => continue,
            Err(e) => return Err(store_error(res, &name, e)),
        }
    }
    // upstream's NewGenerateNameConflict.
    let mut s = Status::already_exists(res.group, res.plural, &name);
    s.message = format!(
        "{} \"{name}\" already exists, the server was not able to generate a unique name for the object",
        skiff_api::status::qualified(res.group, res.plural)
    );
    s.details.retry_after_seconds = Some(1);
    Err(s)
}

/// A body whose fields do not have the types of the resource's schema: upstream's decode
/// error (400), e.g. `ConfigMap in version "v1" cannot be handled as a ConfigMap: ...`.
fn cannot_decode(res: &Resource, why: &str) -> Status {
    Status::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: {why}",
        res.kind, res.version, res.kind
    ))
}

/// A create from inside the server (bootstrap); an existing object is fine.
pub async fn create_internal(
    srv: &ApiServer,
    group: &str,
    plural: &str,
    namespace: Option<&str>,
    obj: Value,
) -> Result<(), Status> {
    let res = registry::RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural && r.storage)
        .ok_or_else(|| Status::internal(format!("no resource {group}/{plural}")))?;
    match create(srv, res, namespace, obj, false).await {
        Ok(_) => Ok(()),
        Err(s) if s.reason == "AlreadyExists" => Ok(()),
        Err(s) => Err(s),
    }
}

pub enum Change {
    Replace(Value),
    JsonPatch(json_patch::Patch),
    MergePatch(Value),
    Strategic(Value),
    /// Server-side apply; the merge runs in `crate::managed`.
    Apply(crate::managed::ApplyPatch),
}

impl Change {
    /// Applies the change to `current`, whose schema is `definition`.
    fn apply(&self, current: &Value, definition: Option<&str>) -> Result<Value, Status> {
        match self {
            Change::Replace(v) => Ok(v.clone()),
            Change::JsonPatch(p) => {
                let mut doc = current.clone();
                json_patch::patch(&mut doc, p).map_err(|e| {
                    Status::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?;
                Ok(doc)
            }
            Change::MergePatch(p) => {
                let mut doc = current.clone();
                json_patch::merge(&mut doc, p);
                Ok(doc)
            }
            Change::Strategic(p) => skiff_api::patch::strategic_merge(definition, current, p)
                .map_err(|e| Status::bad_request(format!("invalid strategic merge patch: {e}"))),
            Change::Apply(_) => Ok(current.clone()),
        }
    }

    fn is_replace(&self) -> bool {
        matches!(self, Change::Replace(_))
    }
}

/// Read-modify-write of one object, retrying on concurrent changes unless the client
/// pinned a resourceVersion.
pub async fn update(
    srv: &ApiServer,
    rr: &ResourceRequest,
    name: &str,
    change: Change,
    dry_run: bool,
) -> Result<Value, Status> {
    let res = rr.res;
    let ns = rr.namespace.as_deref();
    let key = object_key(res, ns, name);
    for _ in 0..MAX_RETRIES {
        let (current, rev) = get_object(srv, res, ns, name).await?;
        // Patches to a view apply to the view (a Scale), then the view to the object.
        let base = match rr.subresource.as_deref() {
            Some("scale") => scale_view(res, &current)?,
            _ => current.clone(),
        };
        let definition = match rr.subresource.as_deref() {
            Some("scale") => skiff_openapi::definition_for_kind("autoscaling", "v1", "Scale"),
            _ => skiff_openapi::definition_for_kind(res.group, res.version, res.kind),
        };
        let mut new = change.apply(&base, definition)?;
        // An apply merges into the whole object (even through /scale): check that against
        // the resource's own schema, not the view's.
        let mut definition = definition;
        if let Change::Apply(a) = &change {
            a.run(rr, &current, &mut new)?;
            definition = skiff_openapi::definition_for_kind(res.group, res.version, res.kind);
        }
        if !change.is_replace() {
            crate::fieldvalidation::patched(definition, &mut new)?;
            if !matches!(change, Change::Apply(_)) {
                crate::fieldvalidation::patched_custom_resource(res, &new)?;
            }
        }
        if !new.is_object() {
            return Err(Status::bad_request("the result must be a JSON object"));
        }
        match rr.subresource.as_deref() {
            Some("scale") => {
                // An apply has already merged into the whole object: read its Scale back.
                let scale = match &change {
                    Change::Apply(_) => scale_view(res, &new)?,
                    _ => new,
                };
                new = apply_scale(res, &current, &scale)?
            }
            // namespaces/finalize changes only spec.finalizers.
            Some("finalize") => {
                let finalizers = new
                    .pointer("/spec/finalizers")
                    .cloned()
                    .unwrap_or(json!([]));
                new = current.clone();
                new["spec"]["finalizers"] = finalizers;
            }
            _ => {}
        }
        // What would not decode into the Go type upstream must not be stored: a bad PUT
        // body is a decode error (400); a patch that breaks a type is a 422 on `patch`.
        if let Err(e) = strategy::check_field_types(res, &new) {
            return Err(if change.is_replace() {
                cannot_decode(res, &e)
            } else {
                Status::invalid(
                    res.group,
                    res.kind,
                    name,
                    vec![skiff_api::status::Cause::new(
                        "FieldValueInvalid",
                        format!("Invalid value: the patched object does not decode: {e}"),
                        "patch",
                    )],
                )
            });
        }
        // A resourceVersion in the body (replace, or a patch that sets it) is a precondition.
        let pinned = match meta_str(&new, "resourceVersion") {
            Some(rv)
                if change.is_replace() || meta_str(&current, "resourceVersion") != Some(rv) =>
            {
                let rv: i64 = rv.parse().map_err(|_| {
                    Status::bad_request(format!(
                        "invalid resourceVersion {rv:?}: must be an integer"
                    ))
                })?;
                if rv != rev {
                    return Err(store_error(
                        res,
                        name,
                        StoreError::Conflict {
                            key: key.clone(),
                            expected: rv,
                            actual: rev,
                        },
                    ));
                }
                true
            }
            _ => false,
        };
        if let (Some(k), Some(a)) = (
            new.get("kind").and_then(Value::as_str),
            new.get("apiVersion").and_then(Value::as_str),
        ) {
            if k != res.kind || a != res.api_version() {
                return Err(Status::bad_request(format!(
                    "the API version in the data ({a}) does not match the expected API version ({}) or the kind ({k}) does not match the expected kind ({})",
                    res.api_version(), res.kind
                )));
            }
        }
        if let Some(body_ns) = meta_str(&new, "namespace") {
            if ns.is_some_and(|n| n != body_ns) && !body_ns.is_empty() {
                return Err(Status::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        let kind = match rr.subresource.as_deref() {
            Some("status") | Some("approval") => UpdateKind::Status,
            _ => UpdateKind::Main,
        };
        // A uid in the body is a precondition, as upstream's update.
        if let Some(uid) = meta_str(&new, "uid").filter(|u| !u.is_empty()) {
            let stored = meta_str(&current, "uid").unwrap_or_default();
            if uid != stored {
                return Err(Status::conflict(
                    res.group,
                    res.plural,
                    name,
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {stored}"),
                ));
            }
        }
        strategy::prepare_update(res, &mut new, &current, kind)?;
        crate::crd::admit(res, &mut new, Some(&current))?;
        new["kind"] = json!(res.kind);
        new["apiVersion"] = json!(res.api_version());
        strategy::normalize(&mut new);
        let applied = match &change {
            Change::Apply(a) => Some(a),
            _ => None,
        };
        crate::managed::on_update(rr, &current, &mut new, applied);
        if dry_run {
            stamp(res, &mut new, rev);
            return Ok(new);
        }
        // An object being deleted whose last finalizer is gone is deleted now.
        let finalizers_empty = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty());
        if new.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers_empty
            && !waits_for_graceful_termination(res, &new)
        {
            return match srv.store.delete(&key, Some(rev)).await {
                Ok(_) => {
                    stamp(res, &mut new, rev);
                    Ok(new)
                }
                Err(StoreError::Conflict { .. }) if !pinned => continue,
                Err(e) => Err(store_error(res, name, e)),
            };
        }
        match srv.store.update(&key, storage_bytes(&new), Some(rev)).await {
            Ok(kv) => {
                stamp(res, &mut new, kv.mod_revision);
                return Ok(new);
            }
            Err(StoreError::Conflict { .. }) if !pinned => continue,
            Err(e) => return Err(store_error(res, name, e)),
        }
    }
    Err(Status::conflict(
        res.group,
        res.plural,
        name,
        "too many concurrent modifications; try again",
    ))
}

fn waits_for_graceful_termination(res: &Resource, obj: &Value) -> bool {
    if res.group.is_empty() && res.kind == "Namespace" {
        return obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    }
    res.group.is_empty()
        && res.kind == "Pod"
        && obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_some_and(|g| g > 0)
}

/// What a request on a subresource returns: the Scale view for `/scale`, else the object.
fn subresource_view(rr: &ResourceRequest, obj: Value) -> Result<Value, Status> {
    match rr.subresource.as_deref() {
        Some("scale") => scale_view(rr.res, &obj),
        _ => Ok(obj),
    }
}

/// A registry-shaped description of `autoscaling/v1` Scale, for decoding scale bodies.
fn scale_resource() -> &'static Resource {
    static SCALE: std::sync::OnceLock<Resource> = std::sync::OnceLock::new();
    SCALE.get_or_init(|| Resource {
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        plural: "scale",
        singular: "scale",
        short_names: &[],
        categories: &[],
        namespaced: true,
        verbs: Verbs::All,
        subresources: &[],
        name_rule: skiff_api::registry::NameRule::Subdomain,
        storage: false,
    })
}

/// The `autoscaling/v1` Scale view of a scalable object.
fn scale_view(res: &Resource, obj: &Value) -> Result<Value, Status> {
    if let Some(scale) = crate::crd::scale_view(res, obj) {
        return Ok(scale);
    }
    let m = strategy::meta(obj).cloned().unwrap_or_default();
    let selector = obj
        .pointer("/spec/selector")
        .map(|s| match s {
            Value::Object(o)
                if o.contains_key("matchLabels") || o.contains_key("matchExpressions") =>
            {
                selector_string(s)
            }
            Value::Object(o) => o
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        })
        .unwrap_or_default();
    let _ = res;
    let mut meta = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            meta.insert(k.into(), v.clone());
        }
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        }
    }))
}

fn selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str) {
                Some("In") => parts.push(format!("{key} in ({})", values.join(","))),
                Some("NotIn") => parts.push(format!("{key} notin ({})", values.join(","))),
                Some("Exists") => parts.push(key.to_string()),
                Some("DoesNotExist") => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

/// Applies a (possibly patched) Scale to the underlying object.
fn apply_scale(res: &Resource, current: &Value, scale: &Value) -> Result<Value, Status> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            Status::invalid(
                "autoscaling",
                "Scale",
                "",
                vec![skiff_api::status::Cause::new(
                    "FieldValueRequired",
                    "Required value",
                    "spec.replicas",
                )],
            )
        })?;
    if replicas < 0 {
        return Err(Status::invalid(
            "autoscaling",
            "Scale",
            meta_str(current, "name").unwrap_or_default(),
            vec![skiff_api::status::Cause::new(
                "FieldValueInvalid",
                format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                "spec.replicas",
            )],
        ));
    }
    let _ = res;
    let mut new = current.clone();
    if !crate::crd::set_replicas(res, &mut new, replicas) {
        new["spec"]["replicas"] = json!(replicas);
    }
    if let Some(rv) = meta_str(scale, "resourceVersion") {
        strategy::meta_mut(&mut new).insert("resourceVersion".into(), json!(rv));
    }
    Ok(new)
}

async fn bind_pod(
    srv: &ApiServer,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    binding: &Value,
) -> Result<(), Status> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Status::invalid(
                "",
                "Binding",
                name,
                vec![skiff_api::status::Cause::new(
                    "FieldValueRequired",
                    "Required value",
                    "target.name",
                )],
            )
        })?
        .to_string();
    let key = object_key(res, ns, name);
    for _ in 0..MAX_RETRIES {
        let (mut pod, rev) = get_object(srv, res, ns, name).await?;
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(Status::conflict(
                "",
                "pods",
                name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        if let Some(existing) = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(Status::conflict(
                "",
                "pods",
                name,
                &format!("pod {name} is already assigned to node \"{existing}\""),
            ));
        }
        pod["spec"]["nodeName"] = json!(node);
        let conditions = pod["status"]
            .as_object_mut()
            .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
        if let Some(Value::Array(c)) = conditions {
            c.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            c.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": crate::now_timestamp()}));
        }
        match srv.store.update(&key, storage_bytes(&pod), Some(rev)).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(res, name, e)),
        }
    }
    Err(Status::conflict(
        "",
        "pods",
        name,
        "too many concurrent modifications",
    ))
}

/// The DeleteOptions inside a `policy/v1` (or v1beta1) Eviction body.
fn eviction_options(
    body: &Bytes,
    fmt: BodyFormat,
    name: &str,
    q: &Query,
) -> Result<DeleteOptions, Status> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return DeleteOptions::parse(&Bytes::new(), q);
    }
    let eviction = match fmt {
        BodyFormat::Protobuf => negotiate::decode_protobuf(body)?,
        _ => negotiate::decode(body, fmt == BodyFormat::Yaml)?,
    };
    if let Some(n) = eviction.pointer("/metadata/name").and_then(Value::as_str) {
        if n != name {
            return Err(Status::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
    }
    let opts = match eviction.get("deleteOptions").filter(|o| !o.is_null()) {
        Some(o) => Bytes::from(o.to_string()),
        None => Bytes::new(),
    };
    DeleteOptions::parse(&opts, q)
}

#[derive(Default, Debug)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub(crate) fn parse(body: &Bytes, q: &Query) -> Result<Self, Status> {
        let mut o = DeleteOptions {
            grace_period: q.grace_period_seconds,
            propagation: q.propagation_policy.clone(),
            dry_run: q.dry_run,
            ..Default::default()
        };
        if q.orphan_dependents == Some(true) && o.propagation.is_none() {
            o.propagation = Some("Orphan".into());
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(o);
        }
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| Status::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        if !v.is_object() {
            return Err(Status::bad_request(
                "error decoding DeleteOptions: the body must be a JSON object",
            ));
        }
        // upstream's ValidateDeleteOptions: a 422 on DeleteOptions, one cause per problem.
        let mut causes = Vec::new();
        if let Some(g) = v.get("gracePeriodSeconds").and_then(Value::as_i64) {
            o.grace_period = Some(g);
        }
        let set = |k: &str| v.get(k).is_some_and(|x| !x.is_null());
        if let Some(p) = v.get("propagationPolicy").filter(|p| !p.is_null()) {
            match p.as_str() {
                Some(p @ ("Orphan" | "Background" | "Foreground")) => {
                    o.propagation = Some(p.into())
                }
                _ => causes.push(crate::route::unsupported_propagation_policy(&p.to_string())),
            }
            if set("orphanDependents") {
                causes.push(skiff_api::status::Cause::new(
                    "FieldValueInvalid",
                    format!("Invalid value: {p}: orphanDependents and deletionPropagation cannot be both set"),
                    "propagationPolicy",
                ));
            }
        }
        if v.get("orphanDependents").and_then(Value::as_bool) == Some(true)
            && o.propagation.is_none()
        {
            o.propagation = Some("Orphan".into());
        }
        if let Some(dr) = v.get("dryRun").filter(|d| !d.is_null()) {
            let values = dr.as_array().map(Vec::as_slice).unwrap_or_default();
            if dr.is_array() && values.iter().all(|d| d == "All") {
                o.dry_run |= !values.is_empty();
            } else {
                let shown: Vec<String> = values.iter().map(Value::to_string).collect();
                causes.push(skiff_api::status::Cause::not_supported(
                    "dryRun",
                    &format!("[]string{{{}}}", shown.join(", ")),
                    &["All"],
                ));
            }
        }
        if !causes.is_empty() {
            return Err(Status::invalid_options("DeleteOptions", causes));
        }
        o.precondition_uid = v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from);
        o.precondition_rv = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from);
        Ok(o)
    }
}

pub async fn delete(
    srv: &ApiServer,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Value, Status> {
    let key = object_key(res, ns, name);
    for _ in 0..MAX_RETRIES {
        let (mut obj, rev) = get_object(srv, res, ns, name).await?;
        if let Some(uid) = &opts.precondition_uid {
            if meta_str(&obj, "uid") != Some(uid.as_str()) {
                // upstream's BeforeDelete names the Kind here, not the resource.
                return Err(Status::conflict(
                    res.group,
                    res.kind,
                    name,
                    &format!(
                        "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                        meta_str(&obj, "uid").unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some(want) = &opts.precondition_rv {
            if *want != rev.to_string() {
                return Err(Status::conflict(res.group, res.kind, name, &format!(
                    "the ResourceVersion in the precondition ({want}) does not match the ResourceVersion in record ({rev}). The object might have been modified"
                )));
            }
        }
        let mut finalizers: Vec<Value> = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        match opts.propagation.as_deref() {
            Some("Foreground") if !finalizers.contains(&json!("foregroundDeletion")) => {
                finalizers.push(json!("foregroundDeletion"))
            }
            Some("Orphan") if !finalizers.contains(&json!("orphan")) => {
                finalizers.push(json!("orphan"))
            }
            _ => {}
        }
        let is_pod = res.group.is_empty() && res.kind == "Pod";
        let is_ns = res.group.is_empty() && res.kind == "Namespace";
        let grace = if is_pod {
            let scheduled = obj
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            let finished = matches!(
                obj.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded") | Some("Failed")
            );
            let default = obj
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            if !scheduled || finished {
                0
            } else {
                opts.grace_period.unwrap_or(default).max(0)
            }
        } else {
            0
        };
        let ns_finalizers = is_ns
            && obj
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
        let already = obj.pointer("/metadata/deletionTimestamp").is_some();
        if !finalizers.is_empty() || grace > 0 || ns_finalizers {
            // Deletion is recorded and completes when finalizers / the kubelet are done.
            if already && grace == 0 && !is_pod {
                return Ok(obj);
            }
            let m = strategy::meta_mut(&mut obj);
            let when = time::OffsetDateTime::now_utc() + time::Duration::seconds(grace);
            if !already || is_pod {
                m.insert("deletionTimestamp".into(), json!(crate::timestamp(when)));
            }
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            m.insert("finalizers".into(), json!(finalizers));
            if finalizers.is_empty() {
                m.remove("finalizers");
            }
            if is_ns {
                obj["status"]["phase"] = json!("Terminating");
            }
            if opts.dry_run {
                return Ok(obj);
            }
            match srv.store.update(&key, storage_bytes(&obj), Some(rev)).await {
                Ok(kv) => {
                    stamp(res, &mut obj, kv.mod_revision);
                    return Ok(obj);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(res, name, e)),
            }
        }
        if opts.dry_run {
            return Ok(obj);
        }
        match srv.store.delete(&key, Some(rev)).await {
            Ok(_) => return Ok(obj),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(res, name, e)),
        }
    }
    Err(Status::conflict(
        res.group,
        res.plural,
        name,
        "too many concurrent modifications",
    ))
}

async fn delete_collection(
    srv: &ApiServer,
    rr: &ResourceRequest,
    q: &Query,
    opts: &DeleteOptions,
    out: Output,
) -> Result<Resp, Status> {
    let res = rr.res;
    let filter = crate::watch::Filter::new(res, q)?;
    let items = srv
        .store
        .list(&ListRequest {
            prefix: list_prefix(res, rr.namespace.as_deref()),
            ..Default::default()
        })
        .await
        .map_err(|e| store_error(res, "", e))?;
    let mut deleted = Vec::new();
    for kv in &items.kvs {
        let obj = decode_stored(res, kv)?;
        if !filter.matches(&obj) {
            continue;
        }
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let ns = meta_str(&obj, "namespace").map(String::from);
        match delete(srv, res, ns.as_deref(), &name, opts).await {
            Ok(o) => deleted.push(o),
            Err(s) if s.code == 404 => {}
            Err(s) => return Err(s),
        }
    }
    let list = json!({
        "kind": format!("{}List", res.kind),
        "apiVersion": res.api_version(),
        "metadata": {"resourceVersion": items.revision.to_string()},
        "items": deleted,
    });
    let (body, ct) = negotiate::encode(
        &list,
        if out == Output::Yaml {
            out
        } else {
            Output::Json
        },
    );
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, ct)
        .body(crate::full(body))
        .unwrap())
}

/// The continue token: upstream's shape, base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"..."}`.
fn encode_continue(rv: i64, start: &str) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(raw.to_string())
}

fn decode_continue(token: &str) -> Result<(i64, String), Status> {
    let bad = || Status::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad());
    }
    let rv = v
        .get("rv")
        .and_then(Value::as_i64)
        .filter(|r| *r > 0)
        .ok_or_else(bad)?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rv, start))
}

/// upstream's ValidateListOptions for a list (watches check their own): a 422 on
/// `ListOptions` with one cause per problem; then the storage layer's check that a continue
/// token, which carries its own revision, is not combined with a resourceVersion.
fn validate_list_options(q: &Query) -> Result<(), Status> {
    use skiff_api::status::Cause;
    let mut causes = Vec::new();
    if let Some(m) = q.resource_version_match.as_deref() {
        if q.resource_version.is_none() {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if q.continue_token.is_some() {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            causes.push(Cause::not_supported(
                "resourceVersionMatch",
                &format!("{m:?}"),
                &["Exact", "NotOlderThan", ""],
            ));
        }
        if m == "Exact" && q.resource_version.as_deref() == Some("0") {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if q.send_initial_events.is_some() {
        causes.push(Cause::forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    if !causes.is_empty() {
        return Err(Status::invalid_options("ListOptions", causes));
    }
    if q.continue_token.is_some() && q.resource_version.as_deref().is_some_and(|rv| rv != "0") {
        return Err(Status::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    Ok(())
}

/// Resolves `resourceVersion`/`resourceVersionMatch` of a list to the revision to read at.
async fn list_revision(srv: &ApiServer, res: &Resource, q: &Query) -> Result<i64, Status> {
    let rv = match q.resource_version.as_deref() {
        None => {
            if q.resource_version_match.is_some() {
                return Err(Status::bad_request(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            return Ok(0);
        }
        Some(rv) => rv.parse::<i64>().map_err(|_| {
            Status::bad_request(format!(
                "invalid resourceVersion {rv:?}: must be an integer"
            ))
        })?,
    };
    match q.resource_version_match.as_deref() {
        Some("Exact") => {
            if rv == 0 {
                return Err(Status::bad_request(
                    "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
            Ok(rv)
        }
        Some("NotOlderThan") | None => {
            let current = srv.store.current_revision().await.map_err(|e| store_error(res, "", e))?;
            if rv > current {
                return Err(Status::too_large_resource_version(rv, current));
            }
            Ok(0)
        }
        Some(other) => Err(Status::bad_request(format!(
            "invalid resourceVersionMatch {other:?}: valid values are \"Exact\" and \"NotOlderThan\""
        ))),
    }
}

pub struct ListResult<T = Value> {
    pub items: Vec<T>,
    pub revision: i64,
    pub continue_token: Option<String>,
}

/// Lists with selectors and paging. Pages are filled even when selectors skip items.
pub async fn list_objects(
    srv: &ApiServer,
    rr: &ResourceRequest,
    q: &Query,
) -> Result<ListResult, Status> {
    let res = rr.res;
    let filter = crate::watch::Filter::new(res, q)?;
    list_paged(srv, rr, q, |kv| {
        let obj = decode_stored(res, kv)?;
        Ok(filter.matches(&obj).then_some(obj))
    })
    .await
}

/// The paging loop of every list: `item` turns a stored key into a result item, or skips
/// it (selectors). Pages are filled even when items are skipped.
async fn list_paged<T>(
    srv: &ApiServer,
    rr: &ResourceRequest,
    q: &Query,
    mut item: impl FnMut(&KeyValue) -> Result<Option<T>, Status>,
) -> Result<ListResult<T>, Status> {
    let res = rr.res;
    let prefix = list_prefix(res, rr.namespace.as_deref());
    let (mut revision, mut start_after) = match &q.continue_token {
        Some(token) => {
            let (rv, start) = decode_continue(token)?;
            (rv, Some(format!("{prefix}{start}")))
        }
        None => (list_revision(srv, res, q).await?, None),
    };
    let limit = q.limit.unwrap_or(0);
    let mut items = Vec::new();
    loop {
        let page = srv
            .store
            .list(&ListRequest {
                prefix: prefix.clone(),
                start_after: start_after.clone(),
                limit: if limit == 0 { 0 } else { (limit - items.len()).max(1) },
                revision,
            })
            .await
            .map_err(|e| match e {
                StoreError::Compacted { .. } if q.continue_token.is_some() => Status::gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ),
                e => store_error(res, "", e),
            })?;
        revision = page.revision;
        let last_key = page.kvs.last().map(|kv| kv.key.clone());
        for kv in &page.kvs {
            if let Some(i) = item(kv)? {
                items.push(i);
            }
        }
        if !page.more {
            return Ok(ListResult {
                items,
                revision,
                continue_token: None,
            });
        }
        start_after = last_key;
        if limit > 0 && items.len() >= limit {
            let start = start_after
                .as_deref()
                .and_then(|k| k.strip_prefix(&prefix))
                .unwrap_or_default();
            // The store's start_after is exclusive, so the last key is where to resume.
            return Ok(ListResult {
                items,
                revision,
                continue_token: Some(encode_continue(revision, start)),
            });
        }
    }
}

async fn list(
    srv: &ApiServer,
    rr: &ResourceRequest,
    q: &Query,
    out: Output,
) -> Result<Resp, Status> {
    let res = rr.res;
    let unfiltered = q
        .label_selector
        .as_deref()
        .is_none_or(|s| s.trim().is_empty())
        && q.field_selector
            .as_deref()
            .is_none_or(|s| s.trim().is_empty());
    if out == Output::Json && unfiltered && is_builtin(res) {
        return list_json_raw(srv, rr, q).await;
    }
    let result = list_objects(srv, rr, q).await?;
    let rv = result.revision.to_string();
    let meta = crate::watch::list_metadata(Some(&rv), result.continue_token.as_deref());
    let body = match out {
        Output::Table { v1beta1 } => crate::watch::table(
            res,
            &result.items,
            q,
            v1beta1,
            Some(&rv),
            result.continue_token.as_deref(),
        ),
        Output::Metadata { v1beta1 } => {
            let items: Vec<Value> = result
                .items
                .iter()
                .map(|o| crate::watch::partial_metadata(o, v1beta1))
                .collect();
            json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": crate::watch::meta_api_version(v1beta1),
                "metadata": meta,
                "items": items,
            })
        }
        _ => json!({
            "kind": format!("{}List", res.kind),
            "apiVersion": res.api_version(),
            "metadata": meta,
            "items": result.items,
        }),
    };
    let (bytes, ct) = negotiate::encode(&body, out);
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, ct)
        .body(crate::full(bytes))
        .unwrap())
}

/// Built-in resources are stored exactly as served (custom resources get defaults on read).
fn is_builtin(res: &Resource) -> bool {
    registry::RESOURCES.iter().any(|r| std::ptr::eq(r, res))
}

/// A JSON list built from the stored bytes without parsing them: each stored object is
/// normalized JSON that starts with kind, apiVersion and metadata, so the only change a
/// read makes — adding `metadata.resourceVersion` — is a splice. Objects that do not have
/// that shape take the parsing path.
async fn list_json_raw(srv: &ApiServer, rr: &ResourceRequest, q: &Query) -> Result<Resp, Status> {
    let res = rr.res;
    let prefix = stored_prefix(res);
    let result = list_paged(srv, rr, q, |kv| {
        Ok(Some(
            match splice_resource_version(&kv.value, prefix.as_bytes(), kv.mod_revision) {
                Some(bytes) => bytes,
                None => {
                    serde_json::to_vec(&decode_stored(res, kv)?).expect("JSON values serialise")
                }
            },
        ))
    })
    .await?;
    let meta = crate::watch::list_metadata(
        Some(&result.revision.to_string()),
        result.continue_token.as_deref(),
    );
    let head = json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": meta});
    let head = serde_json::to_vec(&head).expect("JSON values serialise");
    let size: usize = result.items.iter().map(|i| i.len() + 1).sum();
    let mut body = Vec::with_capacity(head.len() + size + 16);
    body.extend_from_slice(&head[..head.len() - 1]); // drop the closing brace
    body.extend_from_slice(b",\"items\":[");
    for (i, item) in result.items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"]}\n");
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(crate::full(body))
        .unwrap())
}

/// How every stored object of a built-in resource begins:
/// `{"kind":..,"apiVersion":..,"metadata":{`.
pub(crate) fn stored_prefix(res: &Resource) -> String {
    format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{{",
        serde_json::to_string(res.kind).expect("strings serialise"),
        serde_json::to_string(&res.api_version()).expect("strings serialise"),
    )
}

/// Inserts `"resourceVersion":"N"` into a stored object that starts with `prefix`
/// (`{"kind":..,"apiVersion":..,"metadata":{`): after the uid when present (upstream's
/// field order), else first in metadata.
pub(crate) fn splice_resource_version(
    stored: &[u8],
    prefix: &[u8],
    revision: i64,
) -> Option<Vec<u8>> {
    if !stored.starts_with(prefix) {
        return None;
    }
    let rv = format!("\"resourceVersion\":\"{revision}\"");
    let mut out = Vec::with_capacity(stored.len() + rv.len() + 1);
    // Names, namespaces and generateName cannot contain quotes, so the first `"uid":"`
    // after the metadata opening is the uid.
    let meta = &stored[prefix.len()..];
    let uid_at = find(meta, b"\"uid\":\"").filter(|at| !meta[..*at].contains(&b'{'));
    match uid_at.and_then(|at| {
        let value = at + 7;
        meta[value..]
            .iter()
            .position(|b| *b == b'"')
            .map(|end| value + end + 1)
    }) {
        Some(after_uid) => {
            let cut = prefix.len() + after_uid;
            out.extend_from_slice(&stored[..cut]);
            out.push(b',');
            out.extend_from_slice(rv.as_bytes());
            out.extend_from_slice(&stored[cut..]);
        }
        None => {
            out.extend_from_slice(prefix);
            out.extend_from_slice(rv.as_bytes());
            if meta.first() != Some(&b'}') {
                out.push(b',');
            }
            out.extend_from_slice(meta);
        }
    }
    Some(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn object_response(res: &Resource, code: StatusCode, obj: &Value, out: Output) -> Resp {
    let body = match out {
        Output::Table { v1beta1 } if obj.get("kind").and_then(Value::as_str) == Some(res.kind) => {
            crate::watch::table(
                res,
                std::slice::from_ref(obj),
                &Query::default(),
                v1beta1,
                meta_str(obj, "resourceVersion"),
                None,
            )
        }
        Output::Metadata { v1beta1 }
            if obj.get("kind").and_then(Value::as_str) == Some(res.kind) =>
        {
            crate::watch::partial_metadata(obj, v1beta1)
        }
        _ => obj.clone(),
    };
    let (bytes, ct) = negotiate::encode(&body, out);
    http::Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, ct)
        .body(crate::full(bytes))
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_version_splice_matches_parsing() {
        let prefix = br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"#;
        let stored = br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","namespace":"d","uid":"u-1","creationTimestamp":"t"},"data":{"uid":"x"}}"#;
        let out = splice_resource_version(stored, prefix, 42).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "42");
        let keys: Vec<_> = v["metadata"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "creationTimestamp"
            ]
        );
        assert_eq!(v["data"]["uid"], "x");
        let bare = br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{}}"#;
        let v: Value =
            serde_json::from_slice(&splice_resource_version(bare, prefix, 7).unwrap()).unwrap();
        assert_eq!(v["metadata"], json!({"resourceVersion": "7"}));
        assert!(splice_resource_version(br#"{"apiVersion":"v1"}"#, prefix, 1).is_none());
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "default/web");
        assert_eq!(decode_continue(&t).unwrap(), (42, "default/web".into()));
        assert_eq!(decode_continue("!!!").unwrap_err().code, 400);
        let evil = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../../etc"}"#);
        assert_eq!(decode_continue(&evil).unwrap_err().code, 400);
    }
}
