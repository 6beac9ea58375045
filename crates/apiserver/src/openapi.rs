//! `/openapi/v3`: the index and one document per group-version.
//!
//! Paths and operations are derived from the registry here; schemas (`components`) come
//! from the schema crate. kubectl reads the PATCH operations: when one carries the
//! resource's `x-kubernetes-group-version-kind` and a `fieldValidation` query parameter,
//! kubectl leaves validation to the server and sends `fieldValidation=Strict`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use skiff_api::registry::{self, Resource, Subresource};

/// One generated document per group-version, with its hash.
struct Doc {
    bytes: Vec<u8>,
    hash: String,
}

fn docs() -> &'static BTreeMap<String, Doc> {
    static DOCS: OnceLock<BTreeMap<String, Doc>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut gvs: Vec<(&str, &str)> = Vec::new();
        for r in registry::RESOURCES {
            if !gvs.contains(&(r.group, r.version)) {
                gvs.push((r.group, r.version));
            }
        }
        gvs.into_iter()
            .map(|(g, v)| {
                let bytes = serde_json::to_vec(&document(g, v)).expect("JSON serialises");
                let hash = format!("{:016X}", fnv1a(&bytes));
                (gv_path(g, v), Doc { bytes, hash })
            })
            .collect()
    })
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

pub fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The `/openapi/v3` index.
pub fn index() -> Value {
    let mut paths: Map<String, Value> = docs()
        .iter()
        .map(|(p, d)| {
            (
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", d.hash)}),
            )
        })
        .collect();
    for (g, v) in crate::crd::group_versions() {
        if let Some((_, hash)) = document_bytes(&g, &v) {
            let p = gv_path(&g, &v);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

/// The document for a group-version and its hash (for ETag), if served. Documents of
/// CustomResourceDefinition group-versions are built on request (they change at runtime).
pub fn document_bytes(group: &str, version: &str) -> Option<(bytes::Bytes, String)> {
    if let Some(d) = docs().get(&gv_path(group, version)) {
        return Some((
            bytes::Bytes::from_static(d.bytes.as_slice()),
            d.hash.clone(),
        ));
    }
    // Cached per group-version until its rows change (a changed CRD gets new rows).
    type Cache = BTreeMap<String, (Vec<usize>, bytes::Bytes, String)>;
    static CACHE: std::sync::Mutex<Cache> = std::sync::Mutex::new(BTreeMap::new());
    let rows: Vec<usize> = registry::dynamic()
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| r as *const Resource as usize)
        .collect();
    if rows.is_empty() {
        return None;
    }
    let path = gv_path(group, version);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((cached_rows, bytes, hash)) = cache.get(&path) {
        if *cached_rows == rows {
            return Some((bytes.clone(), hash.clone()));
        }
    }
    let bytes =
        bytes::Bytes::from(serde_json::to_vec(&document(group, version)).expect("JSON serialises"));
    let hash = format!("{:016X}", fnv1a(&bytes));
    cache.insert(path, (rows, bytes.clone(), hash.clone()));
    Some((bytes, hash))
}

/// The schema name of a kind: the CRD's for custom resources, else the one the schema crate
/// derived from the Kubernetes types (its tests guarantee one for every registry row).
fn definition_name(group: &str, version: &str, kind: &str) -> String {
    crate::crd::definition_name(group, version, kind)
        .or_else(|| skiff_openapi::definition_for_kind(group, version, kind).map(String::from))
        .unwrap_or_else(|| format!("{group}.{version}.{kind}"))
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn response(name: &str) -> Value {
    json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref(name)}}}})
}

fn query(name: &str, kind: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": kind, "uniqueItems": true}})
}

fn write_params() -> Vec<Value> {
    vec![
        query("dryRun", "string", "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed"),
        query("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes."),
        query("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict"),
    ]
}

fn list_params() -> Vec<Value> {
    [
        ("allowWatchBookmarks", "boolean"),
        ("continue", "string"),
        ("fieldSelector", "string"),
        ("labelSelector", "string"),
        ("limit", "integer"),
        ("resourceVersion", "string"),
        ("resourceVersionMatch", "string"),
        ("sendInitialEvents", "boolean"),
        ("timeoutSeconds", "integer"),
        ("watch", "boolean"),
    ]
    .iter()
    .map(|(n, t)| query(n, t, ""))
    .collect()
}

fn op(res: &Resource, action: &str, id: &str, def: &str, params: Vec<Value>, body: bool) -> Value {
    let mut o = json!({
        "operationId": id,
        "responses": response(def),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": res.group, "version": res.version, "kind": res.kind},
    });
    if !params.is_empty() {
        o["parameters"] = json!(params);
    }
    if body {
        let content = if action == "patch" {
            json!({
                "application/json-patch+json": {"schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")},
                "application/merge-patch+json": {"schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")},
                "application/strategic-merge-patch+json": {"schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")},
                "application/apply-patch+yaml": {"schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")},
            })
        } else {
            json!({"application/json": {"schema": schema_ref(def)}})
        };
        o["requestBody"] = json!({"content": content, "required": true});
    }
    o
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

fn document(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    for res in registry::all()
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let def = definition_name(res.group, res.version, res.kind);
        let list_def = format!("{def}List");
        let verbs = res.verbs.names();
        let has = |v: &str| verbs.contains(&v);
        let (coll, item) = if res.namespaced {
            (
                format!("{prefix}/namespaces/{{namespace}}/{}", res.plural),
                format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", res.plural),
            )
        } else {
            (
                format!("{prefix}/{}", res.plural),
                format!("{prefix}/{}/{{name}}", res.plural),
            )
        };
        let scope_params = |named: bool| {
            let mut p = Vec::new();
            if named {
                p.push(path_param("name"));
            }
            if res.namespaced {
                p.push(path_param("namespace"));
            }
            p.push(query("pretty", "string", ""));
            p
        };
        let kind = res.kind;
        let mut c = Map::new();
        if has("list") {
            c.insert(
                "get".into(),
                op(
                    res,
                    "list",
                    &format!("list{kind}"),
                    &list_def,
                    list_params(),
                    false,
                ),
            );
        }
        if has("create") {
            c.insert(
                "post".into(),
                op(
                    res,
                    "post",
                    &format!("create{kind}"),
                    &def,
                    write_params(),
                    true,
                ),
            );
        }
        if has("deletecollection") {
            c.insert(
                "delete".into(),
                op(
                    res,
                    "deletecollection",
                    &format!("deleteCollection{kind}"),
                    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
                    list_params(),
                    false,
                ),
            );
        }
        if !c.is_empty() {
            c.insert("parameters".into(), json!(scope_params(false)));
            paths.insert(coll.clone(), Value::Object(c));
        }
        let mut i = Map::new();
        if has("get") {
            i.insert(
                "get".into(),
                op(res, "get", &format!("read{kind}"), &def, vec![], false),
            );
        }
        if has("update") {
            i.insert(
                "put".into(),
                op(
                    res,
                    "put",
                    &format!("replace{kind}"),
                    &def,
                    write_params(),
                    true,
                ),
            );
        }
        if has("patch") {
            let mut params = write_params();
            params.push(query(
                "force",
                "boolean",
                "Force is going to \"force\" Apply requests.",
            ));
            i.insert(
                "patch".into(),
                op(res, "patch", &format!("patch{kind}"), &def, params, true),
            );
        }
        if has("delete") {
            i.insert(
                "delete".into(),
                op(
                    res,
                    "delete",
                    &format!("delete{kind}"),
                    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
                    vec![
                        query("gracePeriodSeconds", "integer", ""),
                        query("propagationPolicy", "string", ""),
                        query("dryRun", "string", ""),
                    ],
                    false,
                ),
            );
        }
        if !i.is_empty() {
            i.insert("parameters".into(), json!(scope_params(true)));
            paths.insert(item.clone(), Value::Object(i));
        }
        for sub in res.subresources {
            let (sub_def, sub_res) = match sub {
                Subresource::Status | Subresource::Approval => (def.clone(), res.clone()),
                Subresource::Scale => (
                    "io.k8s.api.autoscaling.v1.Scale".to_string(),
                    Resource {
                        group: "autoscaling",
                        version: "v1",
                        kind: "Scale",
                        ..res.clone()
                    },
                ),
                _ => continue,
            };
            let mut s = Map::new();
            s.insert(
                "get".into(),
                op(
                    &sub_res,
                    "get",
                    &format!("read{kind}{}", sub.name()),
                    &sub_def,
                    vec![],
                    false,
                ),
            );
            s.insert(
                "put".into(),
                op(
                    &sub_res,
                    "put",
                    &format!("replace{kind}{}", sub.name()),
                    &sub_def,
                    write_params(),
                    true,
                ),
            );
            let mut params = write_params();
            params.push(query("force", "boolean", ""));
            s.insert(
                "patch".into(),
                op(
                    &sub_res,
                    "patch",
                    &format!("patch{kind}{}", sub.name()),
                    &sub_def,
                    params,
                    true,
                ),
            );
            s.insert("parameters".into(), json!(scope_params(true)));
            paths.insert(format!("{item}/{}", sub.name()), Value::Object(s));
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::KUBE_GIT_VERSION},
        "paths": paths,
        "components": components(group, version),
    })
}

fn components(group: &str, version: &str) -> Value {
    if let Some(c) = crate::crd::components(group, version) {
        return c;
    }
    serde_json::from_slice(skiff_openapi::components_for(group, version))
        .expect("the schema crate embeds valid JSON")
}

/// The protobuf media type clients ask `/openapi/v2` for (a gnostic `openapi_v2.Document`),
/// and the one upstream's kube-openapi handler answers with (`@` is not a token character,
/// so Go's `mime.ParseMediaType` would reject it in a `Content-Type`).
const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
const OPENAPI_V2_PROTOBUF_RESPONSE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `/openapi/v2`. Skiff publishes its schemas as OpenAPI v3 only; clients that still load
/// the v2 document before using v3 (kubectl 1.27 and 1.28 `explain`, whose `Complete`
/// fetches it unconditionally and fails on a 404) get an empty protobuf `Document` — a
/// valid message with no definitions, which makes them fall back to their built-in types
/// where they would have used v2 models. JSON (`swagger.json`) stays a 404: an empty
/// JSON document would not be a valid Swagger 2.0 document.
pub fn v2_response(headers: &http::HeaderMap) -> crate::Resp {
    let wants_protobuf = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|a| a.contains(OPENAPI_V2_PROTOBUF) || a.contains(OPENAPI_V2_PROTOBUF_RESPONSE));
    if !wants_protobuf {
        return crate::status_response(&skiff_api::status::Status::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    http::Response::builder()
        .status(http::StatusCode::OK)
        .header(http::header::CONTENT_TYPE, OPENAPI_V2_PROTOBUF_RESPONSE)
        .body(crate::full(bytes::Bytes::new()))
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_carry_gvk_and_field_validation() {
        let (bytes, hash) = document_bytes("apps", "v1").unwrap();
        assert_eq!(hash.len(), 16);
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        assert!(index()["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/api/v1?hash="));
        assert_eq!(
            definition_name("rbac.authorization.k8s.io", "v1", "Role"),
            "io.k8s.api.rbac.v1.Role"
        );
        assert_eq!(definition_name("", "v1", "Pod"), "io.k8s.api.core.v1.Pod");
        assert_eq!(
            definition_name("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema"),
            "io.k8s.api.flowcontrol.v1.FlowSchema"
        );
    }
}
