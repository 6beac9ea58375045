//! CustomResourceDefinitions: serving the resources they define.
//!
//! Every served version of an established CRD becomes a registry row
//! (`skiff_api::registry::set_dynamic`), so routing, the generic REST handler, watch,
//! discovery and OpenAPI treat it like a built-in row. Rows are `&'static Resource`, made
//! at runtime with `Box::leak`/`String::leak`. A row is built once per distinct CRD spec
//! (cached by the spec's JSON), so the leak is bounded by the number of CRD
//! (re)definitions in the life of the process, not by requests or status updates.
//!
//! The registry follows the store, not the request path: [`start`] loads every CRD before
//! the server reports ready, then watches the CRD key prefix (so a second server process
//! sharing the store sees the same CRDs). The same loop is the in-process controller
//! upstream's apiextensions-apiserver runs: it sets the `NamesAccepted` and `Established`
//! conditions (a CRD whose names clash with another resource of its group is not served),
//! records `storedVersions`, and for a CRD being deleted removes all its objects before
//! dropping the `customresourcecleanup.apiextensions.k8s.io` finalizer.
//!
//! Per-object semantics for custom resources live here too, reached from `rest.rs` through
//! [`admit`]: pruning of unknown fields (unless `x-kubernetes-preserve-unknown-fields`),
//! defaulting, and structural-schema validation with upstream's field causes. Versions are
//! converted with the `None` strategy: objects are stored as written and only `apiVersion`
//! changes on read (`rest::stamp`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Map, Value};
use skiff_api::registry::{self, NameRule, Resource, Subresource, Verbs};
use skiff_api::status::{Cause, Status};
use skiff_api::strategy::meta_str;
use skiff_store::{ListRequest, StoreError};

use crate::ApiServer;

pub const GROUP: &str = "apiextensions.k8s.io";
pub const FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

/// One `additionalPrinterColumns` entry.
#[derive(Clone, Debug)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// What the server needs to know about one served version of a CRD.
#[derive(Debug)]
pub struct Version {
    pub crd_name: String,
    /// `openAPIV3Schema`.
    pub schema: Option<Value>,
    pub columns: Vec<PrinterColumn>,
    /// The `/scale` subresource's paths, as JSON pointers.
    pub scale: Option<ScalePaths>,
    /// The warning every request to a deprecated version gets.
    pub deprecation: Option<String>,
}

/// `subresources.scale` of a CRD version, as JSON pointers (`/spec/replicas`).
#[derive(Clone, Debug)]
pub struct ScalePaths {
    /// Leaked once per CRD definition (like its registry rows), so apply scopes can hold it.
    pub spec_replicas: &'static str,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// `.spec.replicas` to `/spec/replicas`.
fn pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .map(escape)
        .fold(String::new(), |acc, seg| format!("{acc}/{seg}"))
}

/// The `autoscaling/v1` Scale of a custom resource (upstream's scale subresource for
/// CRDs), or None when the row is not a custom resource with a scale subresource.
pub fn scale_view(res: &Resource, obj: &Value) -> Option<Value> {
    let v = version(res)?;
    let p = v.scale.as_ref()?;
    let mut meta = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(x) = obj.pointer(&format!("/metadata/{k}")) {
            meta.insert(k.into(), x.clone());
        }
    }
    let mut status = json!({
        "replicas": obj.pointer(&p.status_replicas).cloned().unwrap_or(json!(0)),
    });
    if let Some(sel) = p
        .label_selector
        .as_ref()
        .and_then(|l| obj.pointer(l))
        .and_then(Value::as_str)
    {
        status["selector"] = json!(sel);
    }
    Some(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj.pointer(p.spec_replicas).cloned().unwrap_or(json!(0))},
        "status": status,
    }))
}

/// Writes a new replica count at the CRD's `specReplicasPath`; false when the row is not a
/// custom resource with a scale subresource.
pub fn set_replicas(res: &Resource, obj: &mut Value, replicas: i64) -> bool {
    let Some(p) = version(res).and_then(|v| v.scale.clone()) else {
        return false;
    };
    let mut cur = obj;
    let segs: Vec<&str> = p.spec_replicas.split('/').skip(1).collect();
    for (i, seg) in segs.iter().enumerate() {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !cur.is_object() {
            *cur = json!({});
        }
        let m = cur.as_object_mut().expect("made an object");
        if i + 1 == segs.len() {
            m.insert(seg, json!(replicas));
            return true;
        }
        cur = m.entry(seg).or_insert_with(|| json!({}));
    }
    true
}

type Rows = Vec<(&'static Resource, Arc<Version>)>;

#[derive(Default)]
struct State {
    /// Served rows (by address) to their version info.
    rows: HashMap<usize, Arc<Version>>,
    /// CRD name -> (fingerprint of its spec, its rows with their infos).
    built: HashMap<String, (String, Rows)>,
    /// Every row built for a CRD (rows are never freed), by CRD name.
    history: HashMap<String, Vec<&'static Resource>>,
    /// CRDs being deleted: their resources take no new objects.
    terminating: std::collections::HashSet<String>,
}

static STATE: LazyLock<RwLock<State>> = LazyLock::new(|| RwLock::new(State::default()));

fn key(res: &Resource) -> usize {
    res as *const Resource as usize
}

/// The CRD version behind a registry row, if the row was made from a CRD.
pub fn version(res: &Resource) -> Option<Arc<Version>> {
    STATE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .rows
        .get(&key(res))
        .cloned()
}

fn terminating(crd_name: &str) -> bool {
    STATE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .terminating
        .contains(crd_name)
}

/// Applies the schema's defaults to an object read from storage, as upstream does, so
/// objects written before a default was added read with it.
pub fn on_read(res: &Resource, obj: &mut Value) {
    if let Some(schema) = version(res).as_ref().and_then(|v| v.schema.as_ref()) {
        apply_defaults(obj, schema);
    }
}

/// Called for every request to a row: deprecated CRD versions answer with a warning.
pub fn on_request(res: &Resource) {
    if let Some(w) = version(res).and_then(|v| v.deprecation.clone()) {
        crate::fieldvalidation::add_warning(w);
    }
}

/// Custom resources take JSON, merge and apply patches only (upstream's crdHandler).
pub fn check_strategic_patch(res: &Resource) -> Result<(), Status> {
    if version(res).is_none() {
        return Ok(());
    }
    Err(Status::new(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    ))
}

fn is_crd_row(res: &Resource) -> bool {
    res.group == GROUP && res.kind == "CustomResourceDefinition"
}

// ---------------------------------------------------------------------------------------
// Admission: create/update of CRDs and of custom resources
// ---------------------------------------------------------------------------------------

/// Called by the REST handler after the generic strategy prepared a create (`old` None) or
/// an update. Prunes, defaults and validates custom resources; validates CRDs.
pub fn admit(res: &Resource, obj: &mut Value, old: Option<&Value>) -> Result<(), Status> {
    if is_crd_row(res) {
        return admit_crd(obj, old);
    }
    let Some(v) = version(res) else {
        return Ok(());
    };
    if old.is_none() && terminating(&v.crd_name) {
        return Err(Status::method_not_allowed(
            "create not allowed while custom resource definition is terminating",
        ));
    }
    let Some(schema) = &v.schema else {
        return Ok(());
    };
    prune(obj, schema, true);
    apply_defaults(obj, schema);
    // Pruned fields changed nothing: the generation the strategy bumped stays as it was.
    if let Some(old) = old {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                for k in ["metadata", "status", "kind", "apiVersion"] {
                    m.remove(k);
                }
            }
            v
        };
        if strip(obj) == strip(old) {
            if let Some(g) = old.pointer("/metadata/generation").cloned() {
                skiff_api::strategy::meta_mut(obj).insert("generation".into(), g);
            }
        }
    }
    let mut causes = Vec::new();
    if let Some(m) = obj.as_object() {
        for (k, child) in m {
            if k == "metadata" {
                // The schema may restrict name and generateName (and nothing else there).
                for f in ["name", "generateName"] {
                    if let (Some(s), Some(val)) = (
                        schema.pointer(&format!("/properties/metadata/properties/{f}")),
                        child.get(f),
                    ) {
                        validate_value(val, s, &format!("metadata.{f}"), &mut causes);
                    }
                }
                continue;
            }
            if matches!(k.as_str(), "apiVersion" | "kind") {
                continue;
            }
            if let Some(s) = schema.pointer(&format!("/properties/{}", escape(k))) {
                validate_value(child, s, k, &mut causes);
            }
        }
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !m.contains_key(r) {
                    causes.push(Cause::new("FieldValueRequired", "Required value", r));
                }
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(Status::invalid(
            res.group,
            res.kind,
            meta_str(obj, "name").unwrap_or_default(),
            causes,
        ))
    }
}

fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Validates and defaults a CRD (upstream's `ValidateCustomResourceDefinition` subset).
fn admit_crd(obj: &mut Value, old: Option<&Value>) -> Result<(), Status> {
    let name = meta_str(obj, "name").unwrap_or_default().to_string();
    // Defaults (upstream's SetDefaults_CustomResourceDefinitionSpec).
    if let Some(names) = obj
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
    {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if names
            .get("singular")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            names.insert("singular".into(), json!(kind.to_ascii_lowercase()));
        }
        if names
            .get("listKind")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && !kind.is_empty()
        {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if !spec.contains_key("conversion") {
            spec.insert("conversion".into(), json!({"strategy": "None"}));
        }
    }
    let mut causes = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let s = |p: &str| {
        spec.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let group = s("/group");
    let plural = s("/names/plural");
    let kind = s("/names/kind");
    if group.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "Required value",
            "spec.group",
        ));
    } else if (group == "k8s.io"
        || group.ends_with(".k8s.io")
        || group == "kubernetes.io"
        || group.ends_with(".kubernetes.io"))
        && obj
            .pointer("/metadata/annotations/api-approved.kubernetes.io")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        causes.push(Cause::new(
            "FieldValueRequired",
            "Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111",
            "metadata.annotations[api-approved.kubernetes.io]",
        ));
    } else if !group.contains('.') {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
            "spec.group",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "Required value",
            "spec.names.plural",
        ));
    }
    if kind.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "Required value",
            "spec.names.kind",
        ));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
            "metadata.name",
        ));
    }
    match s("/scope").as_str() {
        "Namespaced" | "Cluster" => {}
        "" => causes.push(Cause::new(
            "FieldValueRequired",
            "Required value",
            "spec.scope",
        )),
        other => causes.push(Cause::not_supported(
            "spec.scope",
            &format!("{other:?}"),
            &["Cluster", "Namespaced"],
        )),
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if spec.get("preserveUnknownFields") == Some(&json!(true)) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
            "spec.preserveUnknownFields",
        ));
    }
    if !plural.is_empty() && !is_dns_label(&plural) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: {plural:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
            "spec.names.plural",
        ));
    }
    if !kind.is_empty() && kind == s("/names/listKind") {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: {kind:?}: kind and listKind may not be the same"),
            "spec.names.listKind",
        ));
    }
    let mut seen_versions: Vec<&str> = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let n = v.get("name").and_then(Value::as_str).unwrap_or_default();
        if n.is_empty() {
            continue;
        }
        if seen_versions.contains(&n) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!("Invalid value: {n:?}: must be unique"),
                format!("spec.versions[{i}].name"),
            ));
        } else if !is_dns_label(n) || !n.starts_with(|c: char| c.is_ascii_lowercase()) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!("Invalid value: {n:?}: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"),
                format!("spec.versions[{i}].name"),
            ));
        }
        seen_versions.push(n);
    }
    if let Some(stored) = old
        .and_then(|o| o.pointer("/status/storedVersions"))
        .and_then(Value::as_array)
    {
        for (i, sv) in stored.iter().enumerate() {
            let n = sv.as_str().unwrap_or_default();
            if !seen_versions.contains(&n) {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!("Invalid value: {n:?}: must appear in spec.versions"),
                    format!("status.storedVersions[{i}]"),
                ));
            }
        }
    }
    if versions.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "Required value: must have exactly one version marked as storage version",
            "spec.versions",
        ));
    } else {
        let storage = versions
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .count();
        if storage != 1 {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!(
                    "Invalid value: []apiextensions.CustomResourceDefinitionVersion{{...}}: must have exactly one version marked as storage version, found {storage}"
                ),
                "spec.versions",
            ));
        }
        for (i, v) in versions.iter().enumerate() {
            let path = format!("spec.versions[{i}]");
            if v.get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                causes.push(Cause::new(
                    "FieldValueRequired",
                    "Required value",
                    format!("{path}.name"),
                ));
            }
            match v.pointer("/schema/openAPIV3Schema") {
                Some(schema) if schema.is_object() => {
                    let sp = format!("{path}.schema.openAPIV3Schema");
                    let before = causes.len();
                    structural(schema, &sp, true, &mut causes);
                    if causes.len() == before {
                        check_defaults(schema, &sp, &mut causes);
                    }
                }
                _ => causes.push(Cause::new(
                    "FieldValueRequired",
                    "Required value: schemas are required",
                    format!("{path}.schema.openAPIV3Schema"),
                )),
            }
            if let Some(sc) = v.pointer("/subresources/scale") {
                let sp = format!("{path}.subresources.scale");
                for (f, under, required) in [
                    ("specReplicasPath", &[".spec."][..], true),
                    ("statusReplicasPath", &[".status."][..], true),
                    ("labelSelectorPath", &[".spec.", ".status."][..], false),
                ] {
                    match sc.get(f).and_then(Value::as_str) {
                        None | Some("") if required => causes.push(Cause::new(
                            "FieldValueRequired",
                            "Required value",
                            format!("{sp}.{f}"),
                        )),
                        Some(p) if !p.is_empty() && !under.iter().any(|u| p.starts_with(u)) => {
                            causes.push(Cause::new(
                                "FieldValueInvalid",
                                format!(
                                    "Invalid value: {p:?}: should be a json path under {}",
                                    if under.len() > 1 {
                                        "either .spec or .status"
                                    } else {
                                        under[0].trim_end_matches('.')
                                    }
                                ),
                                format!("{sp}.{f}"),
                            ))
                        }
                        _ => {}
                    }
                }
            }
            if let Some(cols) = v.get("additionalPrinterColumns").and_then(Value::as_array) {
                for (j, c) in cols.iter().enumerate() {
                    let cp = format!("{path}.additionalPrinterColumns[{j}]");
                    if let Some(t) = c
                        .get("type")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                    {
                        let types = ["integer", "number", "string", "boolean", "date"];
                        if !types.contains(&t) {
                            causes.push(Cause::not_supported(
                                &format!("{cp}.type"),
                                &format!("{t:?}"),
                                &types,
                            ));
                        }
                    }
                    for f in ["name", "type", "jsonPath"] {
                        if c.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                            causes.push(Cause::new(
                                "FieldValueRequired",
                                "Required value",
                                format!("{cp}.{f}"),
                            ));
                        }
                    }
                }
            }
        }
    }
    match spec.pointer("/conversion/strategy").and_then(Value::as_str) {
        // Webhook conversion is accepted, but served as None (no webhook calls yet).
        None | Some("None") | Some("Webhook") => {}
        Some(other) => causes.push(Cause::not_supported(
            "spec.conversion.strategy",
            &format!("{other:?}"),
            &["None", "Webhook"],
        )),
    }
    if let Some(old) = old {
        if old.pointer("/spec/scope") != spec.get("scope") {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!("Invalid value: {:?}: field is immutable", s("/scope")),
                "spec.scope",
            ));
        }
        if old.pointer("/spec/group") != spec.get("group") {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!("Invalid value: {group:?}: field is immutable"),
                "spec.group",
            ));
        }
    }
    if !causes.is_empty() {
        return Err(Status::invalid(
            GROUP,
            "CustomResourceDefinition",
            &name,
            causes,
        ));
    }
    if old.is_none() {
        // The cleanup finalizer: deleting a CRD first deletes its objects.
        let m = skiff_api::strategy::meta_mut(obj);
        let fins = m.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(a) = fins.as_array_mut() {
            if !a.iter().any(|f| f == FINALIZER) {
                a.push(json!(FINALIZER));
            }
        }
        let storage: Vec<Value> = versions
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .filter_map(|v| v.get("name").cloned())
            .collect();
        obj["status"] = json!({
            "acceptedNames": {"kind": "", "plural": ""},
            "conditions": [],
            "storedVersions": storage,
        });
    }
    Ok(())
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Every `default` must validate against its own schema and survive pruning (upstream's
/// `validateStructuralDefaults`).
fn check_defaults(s: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(m) = s.as_object() else { return };
    if let Some(d) = m.get("default") {
        let dp = format!("{path}.default");
        let mut pruned = d.clone();
        let mut dropped = Vec::new();
        prune_at(&mut pruned, s, false, "", &mut dropped);
        for f in dropped {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!(
                    "Invalid value: {}: must not have unknown fields",
                    go_value(d)
                ),
                format!("{dp}.{f}"),
            ));
        }
        let mut errs = Vec::new();
        validate_value(d, s, &dp, &mut errs);
        for e in errs {
            causes.push(Cause::new(&e.reason, e.message, e.field));
        }
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            check_defaults(p, &format!("{path}.properties[{k}]"), causes);
        }
    }
    if let Some(items) = m.get("items").filter(|i| i.is_object()) {
        check_defaults(items, &format!("{path}.items"), causes);
    }
    if let Some(a) = m.get("additionalProperties").filter(|a| a.is_object()) {
        check_defaults(a, &format!("{path}.additionalProperties"), causes);
    }
}

/// Upstream's structural-schema rules (`structuralschema.ValidateStructural`), the subset
/// that decides whether a schema can drive pruning and defaulting.
fn structural(s: &Value, path: &str, root: bool, causes: &mut Vec<Cause>) {
    let Some(m) = s.as_object() else {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "Invalid value: must be an object",
            path,
        ));
        return;
    };
    let flag = |k: &str| m.get(k).and_then(Value::as_bool) == Some(true);
    let ty = m.get("type").and_then(Value::as_str).unwrap_or_default();
    if ty.is_empty() {
        if root {
            causes.push(Cause::new(
                "FieldValueRequired",
                "Required value: must not be empty at the root",
                format!("{path}.type"),
            ));
        } else if !flag("x-kubernetes-int-or-string")
            && !flag("x-kubernetes-preserve-unknown-fields")
        {
            causes.push(Cause::new(
                "FieldValueRequired",
                "Required value: must not be empty for specified object fields",
                format!("{path}.type"),
            ));
        }
    } else if root && ty != "object" {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: {ty:?}: must be object at the root"),
            format!("{path}.type"),
        ));
    }
    for k in [
        "$ref",
        "$schema",
        "id",
        "additionalItems",
        "patternProperties",
        "dependencies",
        "definitions",
    ] {
        if m.contains_key(k) {
            causes.push(Cause::forbidden(&format!("{path}.{k}"), "must not be set"));
        }
    }
    if m.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(false)) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "Invalid value: false: must be true or undefined",
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
        ));
    }
    if root {
        // The root's metadata is ObjectMeta: only name and generateName may be restricted.
        if let Some(meta) = m
            .get("properties")
            .and_then(|p| p.get("metadata"))
            .and_then(Value::as_object)
        {
            let only_names = meta
                .get("properties")
                .and_then(Value::as_object)
                .is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName"));
            let allowed = ["type", "properties", "description"];
            if !only_names || meta.keys().any(|k| !allowed.contains(&k.as_str())) {
                causes.push(Cause::forbidden(
                    &format!("{path}.properties[metadata]"),
                    "must not specify anything other than name and generateName, but metadata is implicitly specified",
                ));
            }
        }
    }
    if flag("uniqueItems") {
        causes.push(Cause::forbidden(
            &format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let ap = m.get("additionalProperties");
    if m.contains_key("properties") && ap.is_some_and(|a| a != &json!(false)) {
        causes.push(Cause::forbidden(
            &format!("{path}.additionalProperties"),
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    if ty == "array" && !m.contains_key("items") {
        causes.push(Cause::new(
            "FieldValueRequired",
            "Required value: must be specified",
            format!("{path}.items"),
        ));
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            structural(p, &format!("{path}.properties[{k}]"), false, causes);
        }
    }
    if let Some(items) = m.get("items") {
        if items.is_array() {
            causes.push(Cause::forbidden(
                &format!("{path}.items"),
                "items must be a schema object and not an array",
            ));
        } else {
            structural(items, &format!("{path}.items"), false, causes);
        }
    }
    if let Some(a) = ap.filter(|a| a.is_object()) {
        structural(a, &format!("{path}.additionalProperties"), false, causes);
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = m.get(k).and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                // Value validations only: types and defaults must be in the structure.
                if let Some(sm) = sub.as_object() {
                    for f in ["type", "default", "additionalProperties", "nullable"] {
                        if sm.contains_key(f) {
                            causes.push(Cause::forbidden(
                                &format!("{path}.{k}[{i}].{f}"),
                                "must be empty to be structural",
                            ));
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pruning, defaulting, validation of custom resources
// ---------------------------------------------------------------------------------------

fn preserves(s: &Value) -> bool {
    s.get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

/// Drops fields the schema does not specify (upstream's `structuralpruning.Prune`).
fn prune(v: &mut Value, s: &Value, root: bool) {
    prune_at(v, s, root, "", &mut Vec::new());
}

/// The paths of the fields pruning would drop from `obj` (`spec.foo`, `spec.list[0].x`),
/// for strict field validation of custom resources; None when `res` is not one.
pub fn unknown_fields(res: &Resource, obj: &Value) -> Option<Vec<String>> {
    let v = version(res)?;
    let schema = v.schema.as_ref()?;
    let mut copy = obj.clone();
    let mut dropped = Vec::new();
    prune_at(&mut copy, schema, true, "", &mut dropped);
    Some(dropped)
}

fn prune_at(v: &mut Value, s: &Value, root: bool, path: &str, dropped: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            let ap = s.get("additionalProperties");
            let keep_unknown = preserves(s) || ap == Some(&json!(true));
            // Embedded objects keep their type and metadata, as the root does.
            let embedded = root
                || s.get("x-kubernetes-embedded-resource")
                    .and_then(Value::as_bool)
                    == Some(true);
            m.retain(|k, child| {
                if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    return true;
                }
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    prune_at(child, ps, false, &join(k), dropped);
                    return true;
                }
                if let Some(a) = ap.filter(|a| a.is_object()) {
                    prune_at(child, a, false, &join(k), dropped);
                    return true;
                }
                if !keep_unknown {
                    dropped.push(join(k));
                }
                keep_unknown
            });
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items").filter(|i| i.is_object()) {
                for (i, x) in a.iter_mut().enumerate() {
                    prune_at(x, items, false, &format!("{path}[{i}]"), dropped);
                }
            }
        }
        _ => {}
    }
}

/// Sets `default`s of absent fields, outside in (upstream's `structuraldefaulting.Default`).
fn apply_defaults(v: &mut Value, s: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, ps) in props {
                    let absent = m.get(k).is_none_or(|x| {
                        x.is_null() && ps.get("nullable").and_then(Value::as_bool) != Some(true)
                    });
                    if absent {
                        match ps.get("default") {
                            Some(d) => {
                                m.insert(k.clone(), d.clone());
                            }
                            // A null where null is not allowed and nothing defaults it is
                            // dropped (upstream's PruneNonNullableNullsWithoutDefaults).
                            None => {
                                if m.get(k).is_some_and(Value::is_null) {
                                    m.remove(k);
                                }
                            }
                        }
                    }
                }
                for (k, child) in m.iter_mut() {
                    if let Some(ps) = props.get(k) {
                        apply_defaults(child, ps);
                    }
                }
            } else if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
                for child in m.values_mut() {
                    apply_defaults(child, a);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items").filter(|i| i.is_object()) {
                for x in a {
                    apply_defaults(x, items);
                }
            }
        }
        _ => {}
    }
}

/// Go's rendering of a value in a field error (`%q` for strings, `%v` otherwise).
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

/// Whether `s` matches the ECMA-ish `pattern` (None when it does not compile). Compiled
/// patterns are cached; the cache is bounded by the patterns CRDs define.
fn pattern_matches(pattern: &str, s: &str) -> Option<bool> {
    static CACHE: LazyLock<std::sync::Mutex<HashMap<String, Option<regex::Regex>>>> =
        LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() > 4096 {
        cache.clear();
    }
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| regex::Regex::new(pattern).ok())
        .as_ref()
        .map(|re| re.is_match(s))
}

/// The string formats kube-openapi checks (`strfmt`); unknown formats pass.
fn format_ok(format: &str, s: &str) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let digits = |x: &str, n: usize| x.len() == n && x.bytes().all(|b| b.is_ascii_digit());
    match format {
        "date-time" | "datetime" => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
        }
        "date" => {
            let p: Vec<&str> = s.split('-').collect();
            p.len() == 3
                && digits(p[0], 4)
                && digits(p[1], 2)
                && digits(p[2], 2)
                && time::Month::try_from(p[1].parse::<u8>().unwrap_or(0))
                    .ok()
                    .and_then(|m| {
                        time::Date::from_calendar_date(
                            p[0].parse().unwrap_or(0),
                            m,
                            p[2].parse().unwrap_or(0),
                        )
                        .ok()
                    })
                    .is_some()
        }
        "uuid" => s.len() == 36 && uuid::Uuid::parse_str(s).is_ok(),
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(ip, bits)| {
            let max = match ip.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => 32,
                Ok(IpAddr::V6(_)) => 128,
                Err(_) => return false,
            };
            bits.parse::<u8>().is_ok_and(|b| b <= max) && !bits.starts_with('+')
        }),
        "byte" => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s).is_ok(),
        "hostname" => {
            !s.is_empty()
                && s.len() <= 253
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                })
        }
        "email" => s
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.contains('@')),
        "mac" => {
            let p: Vec<&str> = s.split([':', '-']).collect();
            matches!(p.len(), 6 | 8 | 20)
                && p.iter()
                    .all(|x| x.len() == 2 && x.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        _ => true,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn invalid(path: &str, v: &Value, msg: String) -> Cause {
    Cause::new(
        "FieldValueInvalid",
        format!("Invalid value: {}: {msg}", go_value(v)),
        path,
    )
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn fmt_num(n: &Value) -> String {
    n.to_string()
}

/// The OpenAPI v3 value validations of kube-openapi, with the causes
/// `apiextensions-apiserver`'s `kubeOpenAPIResultToFieldErrors` makes of them.
fn validate_value(v: &Value, s: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(sm) = s.as_object() else { return };
    let flag = |k: &str| sm.get(k).and_then(Value::as_bool) == Some(true);
    if v.is_null() && (flag("nullable") || sm.get("type").is_none()) {
        return;
    }
    if flag("x-kubernetes-int-or-string") {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                format!(
                    "Invalid value: {}: {path} in body must be of type integer,string: {:?}",
                    go_value(v),
                    type_name(v)
                ),
                path,
            ));
            return;
        }
    } else if let Some(ty) = sm.get("type").and_then(Value::as_str) {
        let got = type_name(v);
        let ok = match ty {
            "integer" => {
                got == "integer"
                    || v.as_f64()
                        .is_some_and(|f| f.fract() == 0.0 && got == "number")
            }
            "number" => got == "integer" || got == "number",
            t => t == got,
        };
        if !ok {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                format!(
                    "Invalid value: {}: {path} in body must be of type {ty}: {got:?}",
                    go_value(v)
                ),
                path,
            ));
            return;
        }
    }
    if let Some(e) = sm.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            let supported: Vec<String> = e.iter().map(go_value).collect();
            causes.push(Cause::new(
                "FieldValueNotSupported",
                format!(
                    "Unsupported value: {}: supported values: {}",
                    go_value(v),
                    supported.join(", ")
                ),
                path,
            ));
        }
    }
    if let (Some(f), Some(n)) = (sm.get("format").and_then(Value::as_str), v.as_f64()) {
        let (lo, hi) = match f {
            "int32" => (i32::MIN as f64, i32::MAX as f64),
            "int64" => (i64::MIN as f64, i64::MAX as f64),
            _ => (f64::MIN, f64::MAX),
        };
        if n < lo || n > hi {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                format!(
                    "Invalid value: {}: {path} in body must be of type {f}: {:?}",
                    go_value(v),
                    v.to_string()
                ),
                path,
            ));
        }
    }
    if let Some(x) = num(v).filter(|_| v.is_number()) {
        let excl = |k: &str| flag(k);
        if let Some(min) = sm.get("minimum").filter(|m| m.is_number()) {
            let m = min.as_f64().unwrap_or_default();
            if excl("exclusiveMinimum") && x <= m {
                causes.push(invalid(
                    path,
                    v,
                    format!("{path} in body should be greater than {}", fmt_num(min)),
                ));
            } else if x < m {
                causes.push(invalid(
                    path,
                    v,
                    format!(
                        "{path} in body should be greater than or equal to {}",
                        fmt_num(min)
                    ),
                ));
            }
        }
        if let Some(max) = sm.get("maximum").filter(|m| m.is_number()) {
            let m = max.as_f64().unwrap_or_default();
            if excl("exclusiveMaximum") && x >= m {
                causes.push(invalid(
                    path,
                    v,
                    format!("{path} in body should be less than {}", fmt_num(max)),
                ));
            } else if x > m {
                causes.push(invalid(
                    path,
                    v,
                    format!(
                        "{path} in body should be less than or equal to {}",
                        fmt_num(max)
                    ),
                ));
            }
        }
        if let Some(mult) = sm.get("multipleOf").and_then(Value::as_f64) {
            if mult != 0.0 && (x / mult).fract() != 0.0 {
                causes.push(invalid(
                    path,
                    v,
                    format!("{path} in body should be a multiple of {mult}"),
                ));
            }
        }
    }
    if let Some(st) = v.as_str() {
        let len = st.chars().count() as u64;
        if let Some(min) = sm.get("minLength").and_then(Value::as_u64) {
            if len < min {
                causes.push(invalid(
                    path,
                    v,
                    format!("{path} in body should be at least {min} chars long"),
                ));
            }
        }
        if let Some(max) = sm.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                causes.push(Cause::new(
                    "FieldValueTooLong",
                    format!("Too long: may not be more than {max} bytes"),
                    path,
                ));
            }
        }
        if let Some(p) = sm.get("pattern").and_then(Value::as_str) {
            if pattern_matches(p, st) == Some(false) {
                causes.push(invalid(
                    path,
                    v,
                    format!("{path} in body should match '{p}'"),
                ));
            }
        }
        if let Some(f) = sm.get("format").and_then(Value::as_str) {
            if !format_ok(f, st) {
                causes.push(Cause::new(
                    "FieldValueTypeInvalid",
                    format!(
                        "Invalid value: {}: {path} in body must be of type {f}: {}",
                        go_value(v),
                        go_value(v)
                    ),
                    path,
                ));
            }
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(min) = sm.get("minItems").and_then(Value::as_u64) {
            if (a.len() as u64) < min {
                causes.push(invalid(
                    path,
                    v,
                    format!("{path} in body should have at least {min} items"),
                ));
            }
        }
        if let Some(max) = sm.get("maxItems").and_then(Value::as_u64) {
            if a.len() as u64 > max {
                causes.push(Cause::new(
                    "FieldValueTooMany",
                    format!("Too many: {}: must have at most {max} items", a.len()),
                    path,
                ));
            }
        }
        if let Some(items) = sm.get("items") {
            for (i, x) in a.iter().enumerate() {
                validate_value(x, items, &format!("{path}[{i}]"), causes);
            }
        }
        // x-kubernetes-list-type: set and map lists hold no duplicates.
        match sm.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => {
                for (i, x) in a.iter().enumerate() {
                    if a[..i].contains(x) {
                        causes.push(Cause::new(
                            "FieldValueDuplicate",
                            format!("Duplicate value: {}", go_value(x)),
                            format!("{path}[{i}]"),
                        ));
                    }
                }
            }
            Some("map") => {
                let keys: Vec<&str> = sm
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|k| k.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let key_of = |x: &Value| -> Vec<Value> {
                    keys.iter()
                        .map(|k| x.get(*k).cloned().unwrap_or(Value::Null))
                        .collect()
                };
                for (i, x) in a.iter().enumerate() {
                    let k = key_of(x);
                    if a[..i].iter().any(|y| key_of(y) == k) {
                        let shown: Vec<String> = keys
                            .iter()
                            .zip(&k)
                            .map(|(n, v)| format!("{n:?}:{}", go_value(v)))
                            .collect();
                        causes.push(Cause::new(
                            "FieldValueDuplicate",
                            format!(
                                "Duplicate value: map[string]interface {{}}{{{}}}",
                                shown.join(", ")
                            ),
                            format!("{path}[{i}]"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(o) = v.as_object() {
        if let Some(req) = sm.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !o.contains_key(r) {
                    causes.push(Cause::new(
                        "FieldValueRequired",
                        "Required value",
                        format!("{path}.{r}"),
                    ));
                }
            }
        }
        if let Some(max) = sm.get("maxProperties").and_then(Value::as_u64) {
            if o.len() as u64 > max {
                causes.push(Cause::new(
                    "FieldValueTooMany",
                    format!("Too many: {}: must have at most {max} items", o.len()),
                    path,
                ));
            }
        }
        if let Some(min) = sm.get("minProperties").and_then(Value::as_u64) {
            if (o.len() as u64) < min {
                causes.push(invalid(
                    path,
                    v,
                    format!("{path} in body should have at least {min} properties"),
                ));
            }
        }
        let props = sm.get("properties").and_then(Value::as_object);
        let ap = sm.get("additionalProperties").filter(|a| a.is_object());
        for (k, child) in o {
            if let Some(ps) = props.and_then(|p| p.get(k)) {
                validate_value(child, ps, &format!("{path}.{k}"), causes);
            } else if let Some(a) = ap {
                validate_value(child, a, &format!("{path}[{k}]"), causes);
            }
        }
    }
    if let Some(all) = sm.get("allOf").and_then(Value::as_array) {
        for sub in all {
            validate_value(v, sub, path, causes);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------

impl Version {
    /// The Table columns: Name, then the printer columns (Age when none are defined).
    pub fn column_defs(&self) -> Vec<Value> {
        let mut out = vec![json!({"name": "Name", "type": "string", "format": "name",
            "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
            "priority": 0})];
        for c in &self.columns {
            out.push(json!({"name": c.name, "type": c.type_, "format": c.format,
                "description": c.description, "priority": c.priority}));
        }
        out
    }

    pub fn cells(&self, obj: &Value, now_unix_secs: i64) -> Vec<Value> {
        let mut out = vec![json!(meta_str(obj, "name").unwrap_or_default())];
        for c in &self.columns {
            let v = json_path(obj, &c.json_path);
            out.push(match (v, c.type_.as_str()) {
                (None, _) | (Some(Value::Null), _) => Value::Null,
                (Some(Value::String(s)), "date") => match skiff_api::printers::parse_time(&s) {
                    Some((secs, _)) => {
                        json!(skiff_api::printers::human_duration(now_unix_secs - secs))
                    }
                    None => json!(s),
                },
                (Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))), _) => v,
                (Some(v), _) => json!(v.to_string()),
            });
        }
        out
    }
}

/// A simple JSONPath (`.spec.replicas`, `.status.conditions[0].type`, `{.a.b}`).
fn json_path(obj: &Value, path: &str) -> Option<Value> {
    let p = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut cur = obj;
    for seg in p.split('.').filter(|s| !s.is_empty()) {
        let (name, idx) = match seg.find('[') {
            Some(i) => (&seg[..i], Some(&seg[i..])),
            None => (seg, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(idx) = idx {
            for part in idx.split('[').filter(|s| !s.is_empty()) {
                let n: usize = part.trim_end_matches(']').parse().ok()?;
                cur = cur.get(n)?;
            }
        }
    }
    Some(cur.clone())
}

// ---------------------------------------------------------------------------------------
// OpenAPI
// ---------------------------------------------------------------------------------------

/// Group-versions served from CRDs.
pub fn group_versions() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in registry::dynamic() {
        let gv = (r.group.to_string(), r.version.to_string());
        if !out.contains(&gv) {
            out.push(gv);
        }
    }
    out
}

fn is_dynamic_gv(group: &str, version: &str) -> bool {
    registry::dynamic()
        .iter()
        .any(|r| r.group == group && r.version == version)
}

/// Upstream's definition name for a CRD kind: the reversed group, e.g.
/// `com.example.stable.v1.CronTab`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> Option<String> {
    let dynamic = registry::dynamic()
        .iter()
        .any(|r| r.group == group && r.version == version && r.kind == kind);
    if !dynamic {
        return None;
    }
    let rev: Vec<&str> = group.split('.').rev().collect();
    Some(format!("{}.{version}.{kind}", rev.join(".")))
}

/// `components` of a CRD group-version document: each kind's schema (with `apiVersion`,
/// `kind` and `metadata` added, as upstream publishes it) and its list, plus the meta types.
pub fn components(group: &str, version: &str) -> Option<Value> {
    if !is_dynamic_gv(group, version) {
        return None;
    }
    let mut schemas = Map::new();
    let meta: Value =
        serde_json::from_slice(skiff_openapi::components_for(GROUP, "v1")).unwrap_or_default();
    if let Some(all) = meta.get("schemas").and_then(Value::as_object) {
        for (k, v) in all {
            if k.starts_with("io.k8s.apimachinery") {
                schemas.insert(k.clone(), v.clone());
            }
        }
    }
    for r in registry::dynamic()
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let Some(info) = version_of(r) else { continue };
        let name = definition_name(r.group, r.version, r.kind).unwrap_or_default();
        let gvk = json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
        let mut s = info.schema.clone().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        if let Some(m) = s.as_object_mut() {
            let props = m.entry("properties").or_insert_with(|| json!({}));
            if let Some(p) = props.as_object_mut() {
                p.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
                p.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
                p.insert("metadata".into(), json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}], "description": "Standard object's metadata."}));
            }
            m.insert("x-kubernetes-group-version-kind".into(), gvk);
        }
        schemas.insert(name.clone(), s);
        schemas.insert(
            format!("{name}List"),
            json!({
                "type": "object",
                "required": ["items"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"}]},
                    "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{name}")}},
                },
                "x-kubernetes-group-version-kind": [{"group": r.group, "version": r.version, "kind": format!("{}List", r.kind)}],
            }),
        );
    }
    Some(json!({"schemas": schemas}))
}

fn version_of(res: &Resource) -> Option<Arc<Version>> {
    version(res)
}

// ---------------------------------------------------------------------------------------
// The controller: registry rows, conditions, cleanup
// ---------------------------------------------------------------------------------------

/// Kubernetes' version ordering: GA > beta > alpha, higher numbers first.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let (major, tail) = rest.split_at(
        rest.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len()),
    );
    let major: u32 = major.parse().unwrap_or(0);
    let (stability, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (stability, major, minor)
}

fn leak_strs(v: Option<&Value>) -> &'static [&'static str] {
    let list: Vec<&'static str> = v
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| &*s.to_string().leak())
                .collect()
        })
        .unwrap_or_default();
    Vec::leak(list)
}

/// Builds (leaks) the rows of a CRD's served versions, preferred version first.
fn build_rows(name: &str, crd: &Value) -> Rows {
    let spec = &crd["spec"];
    let s = |p: &str| spec.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let group: &'static str = s("/group").to_string().leak();
    let kind: &'static str = s("/names/kind").to_string().leak();
    let plural: &'static str = s("/names/plural").to_string().leak();
    let singular = match s("/names/singular") {
        "" => kind.to_ascii_lowercase(),
        x => x.to_string(),
    };
    let singular: &'static str = singular.leak();
    let short_names = leak_strs(spec.pointer("/names/shortNames"));
    let categories = leak_strs(spec.pointer("/names/categories"));
    let namespaced = s("/scope") != "Cluster";
    let mut versions: Vec<&Value> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|v| {
        let n = v.get("name").and_then(Value::as_str).unwrap_or_default();
        (std::cmp::Reverse(version_priority(n)), n.to_string())
    });
    versions
        .into_iter()
        .map(|v| {
            let mut subs = Vec::new();
            if v.pointer("/subresources/status").is_some() {
                subs.push(Subresource::Status);
            }
            if v.pointer("/subresources/scale").is_some() {
                subs.push(Subresource::Scale);
            }
            let row: &'static Resource = Box::leak(Box::new(Resource {
                group,
                version: v["name"].as_str().unwrap_or_default().to_string().leak(),
                kind,
                plural,
                singular,
                short_names,
                categories,
                namespaced,
                verbs: Verbs::All,
                subresources: Vec::leak(subs),
                name_rule: NameRule::Subdomain,
                storage: v.get("storage").and_then(Value::as_bool) == Some(true),
            }));
            let mut columns: Vec<PrinterColumn> = v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .map(|cols| {
                    cols.iter()
                        .map(|c| {
                            let f = |k: &str| {
                                c.get(k)
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_string()
                            };
                            PrinterColumn {
                                name: f("name"),
                                type_: f("type"),
                                format: f("format"),
                                description: f("description"),
                                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                                json_path: f("jsonPath"),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            if v.get("additionalPrinterColumns").is_none() {
                columns.push(PrinterColumn {
                    name: "Age".into(),
                    type_: "date".into(),
                    format: String::new(),
                    description: String::new(),
                    priority: 0,
                    json_path: ".metadata.creationTimestamp".into(),
                });
            }
            let info = Arc::new(Version {
                crd_name: name.to_string(),
                schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                columns,
                scale: v.pointer("/subresources/scale").map(|sc| {
                    let f = |k: &str| sc.get(k).and_then(Value::as_str).map(pointer);
                    ScalePaths {
                        spec_replicas: match f("specReplicasPath") {
                            Some(path) if path != "/spec/replicas" => {
                                Box::leak(path.into_boxed_str())
                            }
                            _ => "/spec/replicas",
                        },
                        status_replicas: f("statusReplicasPath")
                            .unwrap_or_else(|| "/status/replicas".into()),
                        label_selector: f("labelSelectorPath"),
                    }
                }),
                deprecation: (v.get("deprecated").and_then(Value::as_bool) == Some(true)).then(
                    || match v.get("deprecationWarning").and_then(Value::as_str) {
                        Some(w) => w.to_string(),
                        None => format!(
                            "{group}/{} {kind} is deprecated",
                            v["name"].as_str().unwrap_or_default()
                        ),
                    },
                ),
            });
            (row, info)
        })
        .collect()
}

fn names_of(crd: &Value) -> Vec<(&'static str, String)> {
    let n = |p: &str| {
        crd.pointer(&format!("/spec/names/{p}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let kind = n("kind");
    let singular = match n("singular") {
        s if s.is_empty() => kind.to_ascii_lowercase(),
        s => s,
    };
    let list_kind = match n("listKind") {
        s if s.is_empty() => format!("{kind}List"),
        s => s,
    };
    let mut out = vec![
        ("Plural", n("plural")),
        ("Singular", singular),
        ("Kind", kind),
        ("ListKind", list_kind),
    ];
    if let Some(a) = crd
        .pointer("/spec/names/shortNames")
        .and_then(Value::as_array)
    {
        for s in a.iter().filter_map(Value::as_str) {
            out.push(("ShortNames", s.to_string()));
        }
    }
    out
}

fn condition(type_: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": if status { "True" } else { "False" },
           "reason": reason, "message": message})
}

/// Conditions as upstream's naming and establishing controllers set them.
fn desired_status(crd: &Value, conflict: Option<(&str, String)>) -> Value {
    let mut status = crd.get("status").cloned().unwrap_or_else(|| json!({}));
    if !status.is_object() {
        status = json!({});
    }
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let mut conds = Vec::new();
    let was_established = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    match &conflict {
        None => {
            let mut accepted = names.clone();
            if let Some(m) = accepted.as_object_mut() {
                let kind = m
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                m.entry("singular")
                    .or_insert_with(|| json!(kind.to_ascii_lowercase()));
                m.entry("listKind")
                    .or_insert_with(|| json!(format!("{kind}List")));
            }
            status["acceptedNames"] = accepted;
            conds.push(condition(
                "NamesAccepted",
                true,
                "NoConflicts",
                "no conflicts found",
            ));
            conds.push(condition(
                "Established",
                true,
                "InitialNamesAccepted",
                "the initial names have been accepted",
            ));
        }
        Some((what, name)) => {
            if status.get("acceptedNames").is_none() {
                status["acceptedNames"] = json!({"kind": "", "plural": ""});
            }
            conds.push(condition(
                "NamesAccepted",
                false,
                &format!("{what}Conflict"),
                &format!("{name:?} is already in use"),
            ));
            conds.push(if was_established {
                condition(
                    "Established",
                    true,
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                )
            } else {
                condition(
                    "Established",
                    false,
                    "NotAccepted",
                    "not all names are accepted",
                )
            });
        }
    }
    if crd.pointer("/metadata/deletionTimestamp").is_some() {
        conds.push(condition(
            "Terminating",
            true,
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        ));
    }
    // Keep lastTransitionTime of conditions whose status did not change.
    let old: Vec<Value> = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let now = crate::now_timestamp();
    for c in &mut conds {
        let t = old
            .iter()
            .find(|o| o["type"] == c["type"] && o["status"] == c["status"])
            .and_then(|o| o.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now));
        c["lastTransitionTime"] = t;
    }
    status["conditions"] = json!(conds);
    let mut stored: Vec<Value> = status
        .get("storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(vs) = crd.pointer("/spec/versions").and_then(Value::as_array) {
        for v in vs {
            if v.get("storage").and_then(Value::as_bool) == Some(true) {
                if let Some(n) = v.get("name") {
                    if !stored.contains(n) {
                        stored.push(n.clone());
                    }
                }
            }
        }
    }
    status["storedVersions"] = json!(stored);
    status
}

fn strip_times(s: &Value) -> Value {
    let mut s = s.clone();
    if let Some(cs) = s.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in cs {
            if let Some(m) = c.as_object_mut() {
                m.remove("lastTransitionTime");
            }
        }
    }
    s
}

/// One pass: reads every CRD, decides names, serves the accepted ones, writes conditions
/// and finishes deletions. Returns the store revision it read at.
async fn sync(srv: &ApiServer) -> Result<i64, StoreError> {
    let listed = srv
        .store
        .list(&ListRequest {
            prefix: CRD_PREFIX.into(),
            ..Default::default()
        })
        .await?;
    let mut crds: Vec<(skiff_store::KeyValue, Value)> = listed
        .kvs
        .into_iter()
        .filter_map(|kv| {
            let v: Value = serde_json::from_slice(&kv.value).ok()?;
            Some((kv, v))
        })
        .collect();
    // Names already accepted keep precedence; then the oldest CRD wins.
    crds.sort_by_key(|(kv, v)| {
        let accepted = v
            .pointer("/status/acceptedNames/plural")
            .and_then(Value::as_str)
            .is_some_and(|p| !p.is_empty());
        (!accepted, kv.create_revision)
    });
    let mut taken: Vec<(String, &'static str, String)> = Vec::new(); // (group, what, name)
    for r in registry::RESOURCES {
        for (what, n) in [
            ("Plural", r.plural),
            ("Singular", r.singular),
            ("Kind", r.kind),
        ] {
            taken.push((r.group.to_string(), what, n.to_string()));
        }
        for s in r.short_names {
            taken.push((r.group.to_string(), "ShortNames", s.to_string()));
        }
    }
    let mut rows: Vec<&'static Resource> = Vec::new();
    let mut infos: HashMap<usize, Arc<Version>> = HashMap::new();
    let mut writes: Vec<(skiff_store::KeyValue, Value)> = Vec::new();
    let mut cleanups: Vec<(skiff_store::KeyValue, Value)> = Vec::new();
    {
        let mut state = STATE.write().unwrap_or_else(|e| e.into_inner());
        let mut live = Vec::new();
        for (kv, crd) in &crds {
            let name = meta_str(crd, "name").unwrap_or_default().to_string();
            let group = crd
                .pointer("/spec/group")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let names = names_of(crd);
            // Plural, singular, short names and kinds share one namespace per group (the
            // RESTMapper's), except kind and listKind which are matched among themselves.
            let conflict = names.iter().find_map(|(what, n)| {
                if n.is_empty() {
                    return None;
                }
                let kindish = matches!(*what, "Kind" | "ListKind");
                taken
                    .iter()
                    .any(|(g, w, t)| {
                        g == &group && t == n && (matches!(*w, "Kind" | "ListKind") == kindish)
                    })
                    .then(|| (*what, n.clone()))
            });
            let status = desired_status(crd, conflict.clone());
            let established = status["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
            if conflict.is_none() {
                for (what, n) in &names {
                    taken.push((group.clone(), what, n.clone()));
                }
            }
            if strip_times(&status) != strip_times(crd.get("status").unwrap_or(&Value::Null)) {
                let mut updated = crd.clone();
                updated["status"] = status;
                writes.push((kv.clone(), updated));
            }
            if crd.pointer("/metadata/deletionTimestamp").is_some() {
                cleanups.push((kv.clone(), crd.clone()));
            }
            if !established || conflict.is_some() {
                continue;
            }
            let fingerprint = crd["spec"].to_string();
            let entry = match state.built.get(&name) {
                Some((f, built)) if *f == fingerprint => built.clone(),
                _ => {
                    let built = build_rows(&name, crd);
                    state
                        .built
                        .insert(name.clone(), (fingerprint, built.clone()));
                    state
                        .history
                        .entry(name.clone())
                        .or_default()
                        .extend(built.iter().map(|(r, _)| *r));
                    built
                }
            };
            // Rows of earlier definitions still held by open watches and requests see the
            // current definition of their version.
            for old in state.history.get(&name).into_iter().flatten() {
                if let Some((_, info)) = entry.iter().find(|(r, _)| r.version == old.version) {
                    infos.insert(key(old), info.clone());
                }
            }
            for (row, info) in entry {
                infos.insert(key(row), info);
                rows.push(row);
            }
            live.push(name);
        }
        state.built.retain(|n, _| live.contains(n));
        state.history.retain(|n, _| live.contains(n));
        state.terminating = crds
            .iter()
            .filter(|(_, c)| c.pointer("/metadata/deletionTimestamp").is_some())
            .filter_map(|(_, c)| meta_str(c, "name").map(String::from))
            .collect();
        state.rows = infos;
        // Discovery lists CRD groups by name after the built-in groups, as upstream does
        // for groups of equal priority.
        rows.sort_by_key(|r| r.group);
        registry::set_dynamic(rows);
    }
    for (kv, updated) in writes {
        let bytes = bytes::Bytes::from(serde_json::to_vec(&updated).expect("JSON serialises"));
        match srv
            .store
            .update(&kv.key, bytes, Some(kv.mod_revision))
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    for (kv, crd) in cleanups {
        // Re-read: the status write above may have moved the revision.
        let _ = kv;
        cleanup(srv, &crd).await?;
    }
    Ok(listed.revision)
}

/// Deletes every object of a CRD being deleted, then drops the cleanup finalizer (the CRD
/// goes away when no finalizer is left).
async fn cleanup(srv: &ApiServer, crd: &Value) -> Result<(), StoreError> {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = meta_str(crd, "name").unwrap_or_default().to_string();
    let mut remaining = 0usize;
    if !group.is_empty() && !plural.is_empty() {
        let prefix = format!("/registry/{group}/{plural}/");
        let mut start_after = None;
        loop {
            let page = srv
                .store
                .list(&ListRequest {
                    prefix: prefix.clone(),
                    limit: 500,
                    start_after: start_after.clone(),
                    ..Default::default()
                })
                .await?;
            for kv in &page.kvs {
                let obj: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
                let has_finalizers = obj
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
                if !has_finalizers {
                    match srv.store.delete(&kv.key, Some(kv.mod_revision)).await {
                        Ok(_) | Err(StoreError::NotFound { .. }) => {}
                        Err(StoreError::Conflict { .. }) => remaining += 1,
                        Err(e) => return Err(e),
                    }
                    continue;
                }
                // As a delete through the API: the object waits for its finalizers.
                remaining += 1;
                if obj.pointer("/metadata/deletionTimestamp").is_none() {
                    let mut obj = obj;
                    obj["metadata"]["deletionTimestamp"] = json!(crate::now_timestamp());
                    obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                    let bytes =
                        bytes::Bytes::from(serde_json::to_vec(&obj).expect("JSON serialises"));
                    match srv
                        .store
                        .update(&kv.key, bytes, Some(kv.mod_revision))
                        .await
                    {
                        Ok(_) | Err(StoreError::NotFound { .. } | StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            if !page.more {
                break;
            }
            start_after = page.kvs.last().map(|kv| kv.key.clone());
        }
    }
    if remaining > 0 {
        // Retried by the controller loop while the CRD is terminating.
        return Ok(());
    }
    let key = format!("{CRD_PREFIX}{name}");
    for _ in 0..8 {
        let Some(kv) = srv.store.get(&key).await? else {
            return Ok(());
        };
        let mut cur: Value = match serde_json::from_slice(&kv.value) {
            Ok(v) => v,
            Err(_) => return Ok(()),
        };
        let fins: Vec<Value> = cur
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter(|f| *f != FINALIZER).cloned().collect())
            .unwrap_or_default();
        let result = if fins.is_empty() {
            srv.store
                .delete(&key, Some(kv.mod_revision))
                .await
                .map(|_| ())
        } else {
            cur["metadata"]["finalizers"] = json!(fins);
            let bytes = bytes::Bytes::from(serde_json::to_vec(&cur).expect("JSON serialises"));
            srv.store
                .update(&key, bytes, Some(kv.mod_revision))
                .await
                .map(|_| ())
        };
        match result {
            Ok(()) | Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn any_terminating() -> bool {
    !STATE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .terminating
        .is_empty()
}

/// Loads every CRD (so they are served before the server reports ready), then follows the
/// store in the background.
pub async fn start(srv: Arc<ApiServer>) -> Result<(), Status> {
    let mut rev = sync(&srv)
        .await
        .map_err(|e| Status::unavailable(format!("loading CustomResourceDefinitions: {e}")))?;
    tokio::spawn(async move {
        loop {
            match srv.store.watch(CRD_PREFIX, rev + 1).await {
                Ok(mut stream) => {
                    loop {
                        // While a CRD is terminating, its objects' finalizers are polled.
                        let next = if any_terminating() {
                            match tokio::time::timeout(Duration::from_secs(1), stream.next()).await
                            {
                                Ok(ev) => ev,
                                Err(_) => {
                                    if let Err(e) = sync(&srv).await {
                                        tracing::warn!("syncing CRDs: {e}");
                                    }
                                    continue;
                                }
                            }
                        } else {
                            stream.next().await
                        };
                        match next {
                            Some(Ok(_)) => match sync(&srv).await {
                                Ok(r) => rev = r,
                                Err(e) => tracing::warn!("syncing CRDs: {e}"),
                            },
                            Some(Err(e)) => {
                                tracing::debug!("CRD watch ended: {e}");
                                break;
                            }
                            None => break,
                        }
                    }
                }
                Err(StoreError::Closed) => return,
                Err(e) => tracing::debug!("CRD watch: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            match sync(&srv).await {
                Ok(r) => rev = r,
                Err(StoreError::Closed) => return,
                Err(e) => tracing::warn!("syncing CRDs: {e}"),
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "string", "enum": ["S", "M"]},
                "replicas": {"type": "integer", "minimum": 0, "default": 1},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            }},
        }})
    }

    #[test]
    fn prune_default_validate() {
        let s = schema();
        let mut o = json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"},
            "spec": {"size": "S", "junk": 1, "extra": {"anything": {"goes": true}}}, "top": 1});
        let mut dropped = Vec::new();
        prune_at(&mut o.clone(), &s, true, "", &mut dropped);
        assert_eq!(dropped, vec!["spec.junk".to_string(), "top".to_string()]);
        prune(&mut o, &s, true);
        apply_defaults(&mut o, &s);
        assert_eq!(
            o,
            json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"},
                "spec": {"size": "S", "replicas": 1, "extra": {"anything": {"goes": true}}}})
        );
        let mut causes = Vec::new();
        validate_value(
            &json!({"size": "XL", "replicas": "two"}),
            &s["properties"]["spec"],
            "spec",
            &mut causes,
        );
        let msgs: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert!(msgs.contains(
            &"spec.size: Unsupported value: \"XL\": supported values: \"S\", \"M\"".to_string()
        ));
        assert!(msgs.contains(
            &"spec.replicas: Invalid value: \"two\": spec.replicas in body must be of type integer: \"string\"".to_string()
        ));
        let mut causes = Vec::new();
        validate_value(
            &json!({"replicas": -1}),
            &s["properties"]["spec"],
            "spec",
            &mut causes,
        );
        assert_eq!(causes[0].field, "spec.size");
        assert_eq!(causes[0].message, "Required value");
        assert_eq!(
            causes[1].message,
            "Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
        );
    }

    #[test]
    fn list_types_reject_duplicates() {
        let set =
            json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}});
        let mut causes = Vec::new();
        validate_value(&json!(["a", "b", "a"]), &set, "spec.tags", &mut causes);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.tags[2]");
        assert_eq!(causes[0].message, "Duplicate value: \"a\"");
        let map = json!({"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}}}});
        let mut causes = Vec::new();
        validate_value(
            &json!([{"name": "x"}, {"name": "y"}, {"name": "x"}]),
            &map,
            "spec.ports",
            &mut causes,
        );
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].reason, "FieldValueDuplicate");
    }

    #[test]
    fn defaults_must_validate() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"replicas": {"type": "integer", "minimum": 0, "default": -1}}}}});
        let mut causes = Vec::new();
        check_defaults(&schema, "s", &mut causes);
        assert_eq!(causes.len(), 1);
        assert_eq!(
            causes[0].field,
            "s.properties[spec].properties[replicas].default"
        );
    }

    #[test]
    fn nulls_and_int_formats() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "string"}, "b": {"type": "string", "nullable": true},
            "c": {"type": "string", "default": "x"},
            "n": {"type": "integer", "format": "int32"}}});
        let mut o = json!({"a": null, "b": null, "c": null});
        apply_defaults(&mut o, &s);
        assert_eq!(o, json!({"b": null, "c": "x"}));
        let mut causes = Vec::new();
        validate_value(&json!({"n": 3_000_000_000u64}), &s, "spec", &mut causes);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.n");
    }

    #[test]
    fn formats() {
        assert!(format_ok("date-time", "2024-01-02T03:04:05Z"));
        assert!(!format_ok("date-time", "yesterday"));
        assert!(format_ok("date", "2024-02-29"));
        assert!(!format_ok("date", "2023-02-29"));
        assert!(format_ok("cidr", "10.0.0.0/8"));
        assert!(!format_ok("cidr", "10.0.0.0/33"));
        assert!(format_ok("uuid", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(!format_ok("ipv4", "1.2.3"));
        assert!(format_ok("whatever", "x"));
        assert_eq!(pattern_matches("^a+$", "aaa"), Some(true));
        assert_eq!(pattern_matches("(", "x"), None);
        let mut causes = Vec::new();
        validate_value(
            &json!("nope"),
            &json!({"type": "string", "format": "date-time"}),
            "spec.when",
            &mut causes,
        );
        assert_eq!(
            causes[0].message,
            "Invalid value: \"nope\": spec.when in body must be of type date-time: \"nope\""
        );
    }

    fn crd(group: &str) -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("things.{group}")},
            "spec": {"group": group, "scope": "Cluster",
                "names": {"plural": "things", "kind": "Thing"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn crd_admission() {
        let mut ok = crd("example.com");
        admit_crd(&mut ok, None).unwrap();
        assert_eq!(ok["spec"]["names"]["listKind"], "ThingList");
        assert_eq!(ok["spec"]["names"]["singular"], "thing");
        assert_eq!(ok["metadata"]["finalizers"], json!([FINALIZER]));
        assert_eq!(ok["status"]["storedVersions"], json!(["v1"]));
        let err = admit_crd(&mut crd("foo.k8s.io"), None).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(
            err.details.causes[0].field,
            "metadata.annotations[api-approved.kubernetes.io]"
        );
        let mut two = crd("example.com");
        two["spec"]["versions"][0]["storage"] = json!(false);
        let err = admit_crd(&mut two, None).unwrap_err();
        assert!(err
            .message
            .contains("must have exactly one version marked as storage version"));
    }

    #[test]
    fn structural_rules() {
        let mut causes = Vec::new();
        structural(
            &json!({"type": "object", "properties": {"spec": {"properties": {}}}}),
            "s",
            true,
            &mut causes,
        );
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "s.properties[spec].type");
        assert_eq!(
            causes[0].message,
            "Required value: must not be empty for specified object fields"
        );
    }

    #[test]
    fn version_order() {
        let mut v = vec!["v1beta1", "v1", "v2alpha1", "v2"];
        v.sort_by_key(|n| std::cmp::Reverse(version_priority(n)));
        assert_eq!(v, vec!["v2", "v1", "v1beta1", "v2alpha1"]);
    }
}
