//! Per-resource write strategies: what the server sets on create, what an update may
//! change (spec/status split, immutable metadata, generation), and validation.
//!
//! Objects are raw JSON (`serde_json::Value`) so that fields this version of Skiff does not
//! know survive a round trip. The generic parts apply to every resource; the few
//! kind-specific rules are small matches on the kind.

use serde_json::{json, Map, Value};

use crate::names::{
    validate_label_key, validate_label_value, validate_name, validate_service_name,
};
use crate::registry::{NameRule, Resource, Subresource};
use crate::status::{Cause, Status};

/// Values the caller (which owns clocks and randomness) supplies for a create.
pub struct CreateContext<'a> {
    /// The namespace from the URL (None for cluster-scoped resources).
    pub namespace: Option<&'a str>,
    /// RFC 3339 timestamp with second precision, UTC.
    pub now: &'a str,
    pub uid: &'a str,
    /// Five characters from upstream's alphabet, for `generateName`.
    pub random_suffix: &'a str,
}

/// Upstream's `generateName` alphabet (no vowels, no confusable digits).
pub const NAME_SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Metadata fields in the order Go serialises `ObjectMeta`.
const META_ORDER: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.as_object()
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)?.get(field)?.as_str()
}

pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let map = obj.as_object_mut().expect("objects are JSON objects");
    let m = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().unwrap()
}

/// Rebuilds `obj` as kind, apiVersion, metadata (in Go order), then the rest in place.
pub fn normalize(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let mut out = Map::new();
    for k in ["kind", "apiVersion"] {
        if let Some(v) = map.remove(k) {
            out.insert(k.into(), v);
        }
    }
    if let Some(Value::Object(mut m)) = map.remove("metadata") {
        let mut ordered = Map::new();
        for k in META_ORDER {
            if let Some(v) = m.remove(*k) {
                ordered.insert((*k).into(), v);
            }
        }
        ordered.extend(m);
        out.insert("metadata".into(), Value::Object(ordered));
    }
    out.extend(std::mem::take(map));
    *map = out;
}

fn invalid(res: &Resource, name: &str, causes: Vec<Cause>) -> Status {
    Status::invalid(res.group, res.kind, name, causes)
}

fn field_invalid(field: &str, value: &str, msg: &str) -> Cause {
    Cause::new(
        "FieldValueInvalid",
        format!("Invalid value: \"{value}\": {msg}"),
        field,
    )
}

fn field_required(field: &str) -> Cause {
    Cause::new("FieldValueRequired", "Required value", field)
}

/// The JSON shape a field must have to decode into upstream's Go type.
#[derive(Clone, Copy)]
enum Shape {
    Str,
    Int,
    Bool,
    /// A struct (`v1.ObjectMeta`, `v1.PodSpec`, ...).
    Struct(&'static str),
    StrMap,
    StrList,
    StructList(&'static str),
}

impl Shape {
    fn go_type(self) -> &'static str {
        match self {
            Shape::Str => "string",
            Shape::Int => "int64",
            Shape::Bool => "bool",
            Shape::Struct(t) | Shape::StructList(t) => t,
            Shape::StrMap => "map[string]string",
            Shape::StrList => "[]string",
        }
    }

    /// The JSON type name Go's decoder reports for the first offending value, if any.
    /// `null` fits every shape (Go decodes it as the zero value).
    fn mismatch(self, v: &Value) -> Option<&'static str> {
        let fits = |v: &Value, ok: fn(&Value) -> bool| v.is_null() || ok(v);
        match self {
            Shape::Str => (!fits(v, Value::is_string)).then(|| json_type(v)),
            Shape::Int => (!fits(v, |v| v.is_i64() || v.is_u64())).then(|| json_type(v)),
            Shape::Bool => (!fits(v, Value::is_boolean)).then(|| json_type(v)),
            Shape::Struct(_) => (!fits(v, Value::is_object)).then(|| json_type(v)),
            Shape::StrMap => match v {
                Value::Null => None,
                Value::Object(m) => m
                    .values()
                    .find(|x| !fits(x, Value::is_string))
                    .map(json_type),
                other => Some(json_type(other)),
            },
            Shape::StrList | Shape::StructList(_) => match v {
                Value::Null => None,
                Value::Array(items) => {
                    let ok: fn(&Value) -> bool = match self {
                        Shape::StrList => Value::is_string,
                        _ => Value::is_object,
                    };
                    items.iter().find(|x| !fits(x, ok)).map(json_type)
                }
                other => Some(json_type(other)),
            },
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks the JSON types of the fields every object has (`kind`, `apiVersion`,
/// `metadata`, `spec`, `status`) and of a few well-known kind fields, as decoding into
/// upstream's Go types would. A string where a map belongs is a decode error upstream and
/// must not reach the store here, where every later reader would trip over it. The error
/// is Go's decoder message, e.g. `json: cannot unmarshal string into Go struct field
/// ConfigMap.data of type map[string]string`.
pub fn check_field_types(res: &Resource, obj: &Value) -> Result<(), String> {
    use Shape::*;
    if !obj.is_object() {
        return Err(format!(
            "json: cannot unmarshal {} into Go value of type v1.{}",
            json_type(obj),
            res.kind
        ));
    }
    let mut fields: Vec<(&str, Shape)> = vec![
        ("kind", Str),
        ("apiVersion", Str),
        ("metadata", Struct("v1.ObjectMeta")),
        ("metadata.name", Str),
        ("metadata.generateName", Str),
        ("metadata.namespace", Str),
        ("metadata.selfLink", Str),
        ("metadata.uid", Str),
        ("metadata.resourceVersion", Str),
        ("metadata.generation", Int),
        ("metadata.creationTimestamp", Str),
        ("metadata.deletionTimestamp", Str),
        ("metadata.deletionGracePeriodSeconds", Int),
        ("metadata.labels", StrMap),
        ("metadata.annotations", StrMap),
        (
            "metadata.ownerReferences",
            StructList("[]v1.OwnerReference"),
        ),
        ("metadata.finalizers", StrList),
        (
            "metadata.managedFields",
            StructList("[]v1.ManagedFieldsEntry"),
        ),
    ];
    // Every built-in kind's spec and status are structs.
    fields.push(("spec", Struct("struct")));
    fields.push(("status", Struct("struct")));
    match (res.group, res.kind) {
        ("", "ConfigMap") => fields.extend([
            ("data", StrMap),
            ("binaryData", StrMap),
            ("immutable", Bool),
        ]),
        ("", "Secret") => fields.extend([
            ("data", StrMap),
            ("stringData", StrMap),
            ("type", Str),
            ("immutable", Bool),
        ]),
        ("", "Pod") => fields.extend([
            ("spec.containers", StructList("[]v1.Container")),
            ("spec.initContainers", StructList("[]v1.Container")),
            ("spec.nodeName", Str),
        ]),
        ("", "Namespace") => fields.push(("spec.finalizers", StrList)),
        ("apps", _) | ("", "ReplicationController") => fields.extend([
            ("spec.replicas", Int),
            ("spec.template", Struct("v1.PodTemplateSpec")),
        ]),
        _ => {}
    }
    for (path, shape) in fields {
        let mut cur = Some(obj);
        for seg in path.split('.') {
            cur = cur.and_then(|v| v.as_object()).and_then(|m| m.get(seg));
        }
        let Some(v) = cur else { continue };
        if let Some(got) = shape.mismatch(v) {
            return Err(format!(
                "json: cannot unmarshal {got} into Go struct field {}.{path} of type {}",
                res.kind,
                shape.go_type()
            ));
        }
    }
    Ok(())
}

/// Sets server-owned metadata and checks the object for a create. The caller has already
/// checked kind/apiVersion and the namespace against the URL.
pub fn prepare_create(res: &Resource, obj: &mut Value, ctx: &CreateContext) -> Result<(), Status> {
    if !obj.is_object() {
        return Err(Status::bad_request("the body must be a JSON object"));
    }
    let m = meta_mut(obj);
    if let Some(ns) = ctx.namespace {
        m.insert("namespace".into(), json!(ns));
    } else {
        m.remove("namespace");
    }
    let has_name = m
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !has_name {
        match m.get("generateName").and_then(Value::as_str) {
            Some(prefix) if !prefix.is_empty() => {
                // Upstream trims the prefix so the result stays within the name limit.
                let max = 58usize;
                let prefix: String = prefix.chars().take(max).collect();
                m.insert(
                    "name".into(),
                    json!(format!("{prefix}{}", ctx.random_suffix)),
                );
            }
            _ => {
                return Err(invalid(
                    res,
                    "",
                    vec![Cause::new(
                        "FieldValueRequired",
                        "Required value: name or generateName is required",
                        "metadata.name",
                    )],
                ))
            }
        }
    }
    if m.get("resourceVersion")
        .is_some_and(|v| v.as_str() != Some(""))
    {
        return Err(Status::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    m.remove("resourceVersion");
    m.insert("uid".into(), json!(ctx.uid));
    m.insert("creationTimestamp".into(), json!(ctx.now));
    m.remove("deletionTimestamp");
    m.remove("deletionGracePeriodSeconds");
    m.remove("selfLink");
    if tracks_generation(obj) {
        meta_mut(obj).insert("generation".into(), json!(1));
    } else {
        meta_mut(obj).remove("generation");
    }
    // The main resource does not set status where a status subresource exists; some
    // kinds start with a defined status.
    if res.subresources.contains(&Subresource::Status) {
        let initial = initial_status(res, obj);
        let map = obj.as_object_mut().unwrap();
        match initial {
            Some(s) => {
                map.insert("status".into(), s);
            }
            None => {
                map.remove("status");
            }
        }
    }
    apply_defaults(res, obj, ctx.namespace);
    match (res.group, res.kind) {
        ("batch", "Job") => generate_job_selector(obj, ctx.uid),
        ("apps", "DaemonSet") => {
            let ann = meta_mut(obj)
                .entry("annotations")
                .or_insert_with(|| json!({}));
            if let Some(a) = ann.as_object_mut() {
                a.insert(DAEMONSET_TEMPLATE_GENERATION.into(), json!("1"));
            }
        }
        _ => {}
    }
    validate(res, obj)?;
    normalize(obj);
    Ok(())
}

/// The annotation upstream's DaemonSet strategy keeps equal to the generation at which
/// the template last changed.
pub const DAEMONSET_TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// upstream's Job `generateSelectorIfNeeded`: unless `manualSelector`, the template gets
/// the controller-uid and job-name labels (current and legacy) and the selector picks the
/// uid.
fn generate_job_selector(obj: &mut Value, uid: &str) {
    let manual = obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true);
    if manual {
        return;
    }
    let name = meta_str(obj, "name").unwrap_or_default().to_string();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if let Some(t) = template.as_object_mut() {
        let meta = t.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("batch.kubernetes.io/controller-uid".into(), json!(uid));
                l.insert("batch.kubernetes.io/job-name".into(), json!(name));
                l.insert("controller-uid".into(), json!(uid));
                l.insert("job-name".into(), json!(name));
            }
        }
    }
    if !spec.get("selector").is_some_and(|s| s.is_object()) {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
    }
}

fn tracks_generation(obj: &Value) -> bool {
    obj.get("spec").is_some()
}

fn initial_status(res: &Resource, obj: &Value) -> Option<Value> {
    match (res.group, res.kind) {
        ("", "Pod") => Some(json!({"phase": "Pending", "qosClass": qos_class(obj)})),
        ("", "Namespace") => Some(json!({"phase": "Active"})),
        ("", "PersistentVolumeClaim") | ("", "PersistentVolume") => {
            Some(json!({"phase": "Pending"}))
        }
        ("", "Service") => Some(json!({"loadBalancer": {}})),
        // The kubelet registers its node with its status; upstream keeps it.
        ("", "Node") => obj.get("status").cloned(),
        _ => None,
    }
}

fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        let full = |m: Option<&Map<String, Value>>| {
            m.is_some_and(|m| m.contains_key("cpu") && m.contains_key("memory"))
        };
        let equal = match (req, lim) {
            (Some(r), Some(l)) => ["cpu", "memory"].iter().all(|k| r.get(*k) == l.get(*k)),
            (None, Some(_)) => true, // requests default to limits
            _ => false,
        };
        if !full(lim) || !equal {
            guaranteed = false;
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The defaults upstream applies that users see in `kubectl get -o yaml`.
fn apply_defaults(res: &Resource, obj: &mut Value, namespace: Option<&str>) {
    let _ = namespace;
    match (res.group, res.kind) {
        ("", "Namespace") => {
            let spec = obj
                .as_object_mut()
                .expect("objects are JSON objects")
                .entry("spec")
                .or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.entry("finalizers")
                    .or_insert_with(|| json!(["kubernetes"]));
            }
            let name = meta_str(obj, "name").unwrap_or_default().to_string();
            let labels = meta_mut(obj).entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        ("", "Pod") => {
            default_pod_spec(obj.get_mut("spec"));
            default_toleration_seconds(obj.get_mut("spec"));
        }
        ("apps", "Deployment") => {
            let spec = obj.get_mut("spec");
            if let Some(spec) = spec.and_then(Value::as_object_mut) {
                spec.entry("replicas").or_insert(json!(1));
                spec.entry("revisionHistoryLimit").or_insert(json!(10));
                spec.entry("progressDeadlineSeconds").or_insert(json!(600));
                let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
                if let Some(st) = strategy.as_object_mut() {
                    st.entry("type").or_insert(json!("RollingUpdate"));
                }
                if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                    if let Some(s) = strategy.as_object_mut() {
                        s.entry("rollingUpdate")
                            .or_insert_with(|| json!({"maxSurge": "25%", "maxUnavailable": "25%"}));
                    }
                }
                default_pod_spec(spec.get_mut("template").and_then(|t| t.get_mut("spec")));
            }
        }
        ("apps", "ReplicaSet") | ("apps", "StatefulSet") | ("", "ReplicationController") => {
            if res.kind == "ReplicationController" {
                default_rc_selector(obj);
            }
            let sts = res.kind == "StatefulSet";
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("replicas").or_insert(json!(1));
                if sts {
                    default_statefulset_spec(spec);
                }
                default_pod_spec(spec.get_mut("template").and_then(|t| t.get_mut("spec")));
            }
        }
        ("batch", "Job") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                default_job_spec(spec);
            }
        }
        ("batch", "CronJob") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("concurrencyPolicy").or_insert(json!("Allow"));
                spec.entry("suspend").or_insert(json!(false));
                spec.entry("successfulJobsHistoryLimit").or_insert(json!(3));
                spec.entry("failedJobsHistoryLimit").or_insert(json!(1));
                default_job_pod_spec(
                    spec.get_mut("jobTemplate")
                        .and_then(|t| t.pointer_mut("/spec/template/spec")),
                );
            }
        }
        ("apps", "DaemonSet") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                default_update_strategy(spec, &[("maxUnavailable", 1), ("maxSurge", 0)]);
                spec.entry("revisionHistoryLimit").or_insert(json!(10));
                default_pod_spec(spec.get_mut("template").and_then(|t| t.get_mut("spec")));
            }
        }
        ("", "Service") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("type").or_insert(json!("ClusterIP"));
                spec.entry("sessionAffinity").or_insert(json!("None"));
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        if let Some(p) = p.as_object_mut() {
                            p.entry("protocol").or_insert(json!("TCP"));
                            if !p.contains_key("targetPort") {
                                if let Some(port) = p.get("port").cloned() {
                                    p.insert("targetPort".into(), port);
                                }
                            }
                        }
                    }
                }
            }
        }
        ("", "Secret") => {
            if let Some(o) = obj.as_object_mut() {
                o.entry("type").or_insert(json!("Opaque"));
            }
        }
        _ => {}
    }
}

/// `spec.updateStrategy` of a DaemonSet or StatefulSet: `RollingUpdate` unless set, and
/// for a rolling update each of `rolling`'s fields in `rollingUpdate` unless set.
fn default_update_strategy(spec: &mut Map<String, Value>, rolling: &[(&str, i64)]) {
    let strategy = spec.entry("updateStrategy").or_insert_with(|| json!({}));
    let Some(st) = strategy.as_object_mut() else {
        return;
    };
    st.entry("type").or_insert(json!("RollingUpdate"));
    if st.get("type").and_then(Value::as_str) != Some("RollingUpdate") {
        return;
    }
    let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
    if let Some(ru) = ru.as_object_mut() {
        for (field, value) in rolling {
            ru.entry(*field).or_insert(json!(value));
        }
    }
}

/// upstream's `SetDefaults_StatefulSet`.
fn default_statefulset_spec(spec: &mut Map<String, Value>) {
    spec.entry("podManagementPolicy")
        .or_insert(json!("OrderedReady"));
    default_update_strategy(spec, &[("partition", 0)]);
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    let retention = spec
        .entry("persistentVolumeClaimRetentionPolicy")
        .or_insert_with(|| json!({}));
    if let Some(r) = retention.as_object_mut() {
        r.entry("whenDeleted").or_insert(json!("Retain"));
        r.entry("whenScaled").or_insert(json!("Retain"));
    }
}

/// upstream's `SetDefaults_Job`.
fn default_job_spec(spec: &mut Map<String, Value>) {
    let unset = |spec: &Map<String, Value>, k: &str| spec.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    if unset(spec, "parallelism") {
        spec.insert("parallelism".into(), json!(1));
    }
    if unset(spec, "backoffLimit") {
        let per_index = !unset(spec, "backoffLimitPerIndex");
        spec.insert(
            "backoffLimit".into(),
            json!(if per_index { i32::MAX as i64 } else { 6 }),
        );
    }
    spec.entry("completionMode").or_insert(json!("NonIndexed"));
    spec.entry("suspend").or_insert(json!(false));
    if unset(spec, "podReplacementPolicy") {
        let policy = if unset(spec, "podFailurePolicy") {
            "TerminatingOrFailed"
        } else {
            "Failed"
        };
        spec.insert("podReplacementPolicy".into(), json!(policy));
    }
    default_job_pod_spec(spec.get_mut("template").and_then(|t| t.get_mut("spec")));
}

/// Pod defaults for a Job's template, except `restartPolicy`, which a Job must choose
/// (Never or OnFailure) and validation asks for.
fn default_job_pod_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec else {
        return;
    };
    let chosen = spec.get("restartPolicy").cloned();
    default_pod_spec(Some(spec));
    if let Some(m) = spec.as_object_mut() {
        match chosen {
            Some(p) => {
                m.insert("restartPolicy".into(), p);
            }
            None => {
                m.remove("restartPolicy");
            }
        }
    }
}

/// upstream's Job spec checks that matter to users: a restart policy a Job can use, and
/// completions for Indexed jobs.
fn validate_job(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec");
    let policy = spec
        .and_then(|s| s.pointer("/template/spec/restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match policy {
        "OnFailure" | "Never" => {}
        "" => causes.push(Cause::new(
            "FieldValueRequired",
            "Required value: valid values: \"OnFailure\", \"Never\"",
            "spec.template.spec.restartPolicy",
        )),
        other => causes.push(Cause::not_supported(
            "spec.template.spec.restartPolicy",
            other,
            &["OnFailure", "Never"],
        )),
    }
    let indexed = spec
        .and_then(|s| s.get("completionMode"))
        .and_then(Value::as_str)
        == Some("Indexed");
    if indexed
        && spec
            .and_then(|s| s.get("completions"))
            .is_none_or(Value::is_null)
    {
        causes.push(Cause::new(
            "FieldValueRequired",
            "Required value: when completion mode is Indexed",
            "spec.completions",
        ));
    }
    validate_pod_spec(
        spec.and_then(|s| s.pointer("/template/spec")),
        "spec.template.spec",
        causes,
    );
}

/// upstream's `SetDefaults_ReplicationController`: an empty selector, and empty labels,
/// come from the template's labels.
fn default_rc_selector(obj: &mut Value) {
    let Some(template_labels) = obj
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
        .cloned()
    else {
        return;
    };
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        let empty = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(|s| s.is_empty());
        if empty {
            spec.insert("selector".into(), Value::Object(template_labels.clone()));
        }
    }
    let labels = meta_mut(obj).entry("labels").or_insert_with(|| json!({}));
    if labels.as_object().is_some_and(|l| l.is_empty()) || labels.is_null() {
        *labels = Value::Object(template_labels);
    }
}

/// The DefaultTolerationSeconds admission plugin: pods tolerate a node being not ready or
/// unreachable for 300 s before taint-based eviction, unless they say otherwise.
fn default_toleration_seconds(spec: Option<&mut Value>) {
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = list.iter().any(|t| {
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            let tkey = t.get("key").and_then(Value::as_str).unwrap_or("");
            let exists = t.get("operator").and_then(Value::as_str) == Some("Exists");
            (effect.is_empty() || effect == "NoExecute")
                && (tkey == key || (tkey.is_empty() && exists))
        });
        if !tolerated {
            list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
}

fn default_pod_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("restartPolicy").or_insert(json!("Always"));
    spec.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    spec.entry("securityContext").or_insert(json!({}));
    spec.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                if let Some(c) = c.as_object_mut() {
                    let latest = c
                        .get("image")
                        .and_then(Value::as_str)
                        .is_some_and(|i| !i.contains(':') || i.ends_with(":latest"));
                    c.entry("imagePullPolicy").or_insert(json!(if latest {
                        "Always"
                    } else {
                        "IfNotPresent"
                    }));
                    c.entry("terminationMessagePath")
                        .or_insert(json!("/dev/termination-log"));
                    c.entry("terminationMessagePolicy").or_insert(json!("File"));
                    c.entry("resources").or_insert(json!({}));
                }
            }
        }
    }
}

/// Checks an object (after defaults). The error is a 422 with one cause per problem.
pub fn validate(res: &Resource, obj: &Value) -> Result<(), Status> {
    let name = meta_str(obj, "name").unwrap_or_default();
    let mut causes = Vec::new();
    let name_errors = if name.is_empty() {
        vec!["name or generateName is required".to_string()]
    } else if res.group.is_empty() && res.kind == "Service" {
        validate_service_name(name, false)
    } else {
        validate_name(res.name_rule, name)
    };
    for msg in name_errors {
        causes.push(field_invalid("metadata.name", name, &msg));
    }
    if let Some(labels) = meta(obj).and_then(|m| m.get("labels")) {
        match labels.as_object() {
            Some(labels) => {
                for (k, v) in labels {
                    for msg in validate_label_key(k) {
                        causes.push(field_invalid("metadata.labels", k, &msg));
                    }
                    match v.as_str() {
                        Some(v) => {
                            for msg in validate_label_value(v) {
                                causes.push(field_invalid("metadata.labels", v, &msg));
                            }
                        }
                        None => causes.push(field_invalid(
                            "metadata.labels",
                            &v.to_string(),
                            "label values must be strings",
                        )),
                    }
                }
            }
            None if labels.is_null() => {}
            None => causes.push(field_invalid("metadata.labels", "", "must be a map")),
        }
    }
    match (res.group, res.kind) {
        ("", "Pod") => validate_pod_spec(obj.get("spec"), "spec", &mut causes),
        ("apps", "Deployment")
        | ("apps", "ReplicaSet")
        | ("apps", "DaemonSet")
        | ("apps", "StatefulSet") => {
            validate_workload(obj, &mut causes);
            if res.kind == "Deployment" {
                validate_deployment_strategy(obj, &mut causes);
            }
        }
        ("", "ReplicationController") => validate_replication_controller(obj, &mut causes),
        ("batch", "CronJob") => validate_cronjob(obj, &mut causes),
        ("batch", "Job") => validate_job(obj, &mut causes),
        ("policy", "PodDisruptionBudget") => {
            if let Some(sel) = obj.pointer("/spec/selector").filter(|s| s.is_object()) {
                validate_label_selector(sel, "spec.selector", &mut causes);
            }
        }
        ("", "ConfigMap") => {
            for field in ["data", "binaryData"] {
                if let Some(data) = obj.get(field).and_then(Value::as_object) {
                    for k in data.keys() {
                        if !valid_config_key(k) {
                            causes.push(field_invalid(field, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(res, name, causes))
    }
}

fn valid_config_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k != "."
        && k != ".."
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn validate_pod_spec(spec: Option<&Value>, path: &str, causes: &mut Vec<Cause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => causes.push(field_required(&format!("{path}.containers"))),
        Some(cs) if cs.is_empty() => causes.push(field_required(&format!("{path}.containers"))),
        Some(cs) => {
            for (i, c) in cs.iter().enumerate() {
                let cname = c.get("name").and_then(Value::as_str).unwrap_or_default();
                if cname.is_empty() {
                    causes.push(field_required(&format!("{path}.containers[{i}].name")));
                } else {
                    for msg in validate_name(NameRule::Label, cname) {
                        causes.push(field_invalid(
                            &format!("{path}.containers[{i}].name"),
                            cname,
                            &msg,
                        ));
                    }
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                {
                    causes.push(field_required(&format!("{path}.containers[{i}].image")));
                }
            }
        }
    }
}

fn validate_workload(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec");
    let selector = spec.and_then(|s| s.get("selector"));
    let Some(selector) = selector.filter(|s| s.is_object()) else {
        causes.push(field_required("spec.selector"));
        return;
    };
    let template_labels = spec
        .and_then(|s| s.pointer("/template/metadata/labels"))
        .and_then(Value::as_object);
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    let exprs = selector.get("matchExpressions").and_then(Value::as_array);
    if match_labels.is_none_or(|m| m.is_empty()) && exprs.is_none_or(|e| e.is_empty()) {
        causes.push(field_invalid(
            "spec.selector",
            "",
            "empty selector is invalid for deployment",
        ));
    }
    let before = causes.len();
    validate_label_selector(selector, "spec.selector", causes);
    if causes.len() == before {
        let sel = crate::selectors::LabelSelector::from_label_selector_object(selector);
        let empty = serde_json::Map::new();
        let labels = template_labels.unwrap_or(&empty);
        if sel.is_ok_and(|sel| !sel.matches(labels)) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!(
                    "Invalid value: {}: `selector` does not match template `labels`",
                    serde_json::to_string(&template_labels).unwrap_or_default()
                ),
                "spec.template.metadata.labels",
            ));
        }
    }
    validate_pod_spec(
        spec.and_then(|s| s.pointer("/template/spec")),
        "spec.template.spec",
        causes,
    );
}

/// upstream's CronJob checks: the schedule parses as `cron.ParseStandard` does, a time zone
/// is named in the IANA database, and not both that and a `TZ=` prefix.
fn validate_cronjob(obj: &Value, causes: &mut Vec<Cause>) {
    let schedule = obj
        .pointer("/spec/schedule")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if schedule.is_empty() {
        causes.push(field_required("spec.schedule"));
    } else if let Err(e) = crate::cron::parse(schedule) {
        causes.push(field_invalid("spec.schedule", schedule, &e));
    }
    let zone = obj.pointer("/spec/timeZone").and_then(Value::as_str);
    if let Some(tz) = zone {
        if schedule.contains("TZ") {
            causes.push(field_invalid(
                "spec.schedule",
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        }
        if tz.contains(' ') || jiff::tz::TimeZone::get(tz).is_err() {
            causes.push(field_invalid(
                "spec.timeZone",
                tz,
                &format!("unknown time zone {tz}"),
            ));
        }
    }
}

/// upstream's `ValidateLabelSelector`: label syntax in `matchLabels`, and operators with
/// values that fit them in `matchExpressions`.
fn validate_label_selector(sel: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            for msg in validate_label_key(k) {
                causes.push(field_invalid(&format!("{path}.matchLabels"), k, &msg));
            }
            for msg in validate_label_value(v.as_str().unwrap_or_default()) {
                causes.push(field_invalid(
                    &format!("{path}.matchLabels"),
                    v.as_str().unwrap_or_default(),
                    &msg,
                ));
            }
        }
    }
    for (i, e) in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}.matchExpressions[{i}]");
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let op = e
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match op {
            "In" | "NotIn" if values == 0 => causes.push(Cause::new(
                "FieldValueRequired",
                "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                format!("{at}.values"),
            )),
            "Exists" | "DoesNotExist" if values > 0 => causes.push(Cause::new(
                "FieldValueForbidden",
                "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                format!("{at}.values"),
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => causes.push(field_invalid(
                &format!("{at}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        for msg in validate_label_key(key) {
            causes.push(field_invalid(&format!("{at}.key"), key, &msg));
        }
    }
}

/// What kind of write an update is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    /// PUT/PATCH on the main resource: status changes are ignored where a status
    /// subresource exists.
    Main,
    /// PUT/PATCH on `/status`: only status (and labels/annotations... no: only status) changes.
    Status,
}

/// Carries server-owned fields over from `old`, enforces the spec/status split and bumps
/// `generation` when anything but metadata and status changed.
pub fn prepare_update(
    res: &Resource,
    new: &mut Value,
    old: &Value,
    kind: UpdateKind,
) -> Result<(), Status> {
    if !new.is_object() || !old.is_object() {
        return Err(Status::bad_request("the body must be a JSON object"));
    }
    let name = meta_str(old, "name").unwrap_or_default().to_string();
    if meta_str(new, "name").is_some_and(|n| n != name) {
        return Err(Status::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta_str(new, "name").unwrap_or_default()
        )));
    }
    if !new.is_object() {
        return Err(Status::bad_request("the body must be a JSON object"));
    }
    let has_status_sub = res.subresources.contains(&Subresource::Status);
    match kind {
        UpdateKind::Status => {
            // Everything but status comes from the stored object.
            let status = new.get("status").cloned();
            let mut merged = old.clone();
            let m = merged.as_object_mut().unwrap();
            match status {
                Some(s) => {
                    m.insert("status".into(), s);
                }
                None => {
                    m.remove("status");
                }
            }
            // Upstream lets status writes change labels/annotations? It does not; keep old.
            *new = merged;
        }
        UpdateKind::Main => {
            if has_status_sub {
                let m = new.as_object_mut().unwrap();
                match old.get("status") {
                    Some(s) => {
                        m.insert("status".into(), s.clone());
                    }
                    None => {
                        m.remove("status");
                    }
                }
            }
        }
    }
    {
        let old_meta = meta(old).cloned().unwrap_or_default();
        let m = meta_mut(new);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "generation",
        ] {
            match old_meta.get(k) {
                Some(v) => {
                    m.insert(k.into(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        m.insert("name".into(), Value::String(name.clone()));
        m.remove("resourceVersion");
        m.remove("selfLink");
    }
    let spec_changed = strip_for_generation(new) != strip_for_generation(old);
    if spec_changed && tracks_generation(new) {
        let g = meta(old)
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(new).insert("generation".into(), json!(g + 1));
    }
    if (res.group, res.kind) == ("apps", "DaemonSet")
        && new.pointer("/spec/template") != old.pointer("/spec/template")
    {
        let g = meta(new)
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let ann = meta_mut(new)
            .entry("annotations")
            .or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.insert(DAEMONSET_TEMPLATE_GENERATION.into(), json!(g.to_string()));
        }
    }
    if kind == UpdateKind::Main {
        apply_defaults(res, new, None);
    }
    validate(res, new)?;
    validate_update(res, new, old)?;
    normalize(new);
    Ok(())
}

/// What may not change on update, as upstream's `ValidateUpdate`s.
fn validate_update(res: &Resource, new: &Value, old: &Value) -> Result<(), Status> {
    let immutable_selector = matches!(
        (res.group, res.kind),
        ("apps", "Deployment")
            | ("apps", "ReplicaSet")
            | ("apps", "DaemonSet")
            | ("apps", "StatefulSet")
    );
    if immutable_selector {
        let sel = new.pointer("/spec/selector");
        if sel != old.pointer("/spec/selector") {
            let name = meta_str(new, "name").unwrap_or_default();
            let shown = go_label_selector(sel.unwrap_or(&Value::Null));
            return Err(invalid(
                res,
                name,
                vec![Cause::new(
                    "FieldValueInvalid",
                    format!("Invalid value: {shown}: field is immutable"),
                    "spec.selector",
                )],
            ));
        }
    }
    Ok(())
}

/// A LabelSelector as Go's `%#v` prints it in upstream's messages.
fn go_label_selector(sel: &Value) -> String {
    let labels = match sel.get("matchLabels").and_then(Value::as_object) {
        Some(m) => {
            let mut kv: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or_default()))
                .collect();
            kv.sort();
            format!("map[string]string{{{}}}", kv.join(", "))
        }
        None => "map[string]string(nil)".into(),
    };
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        Some(es) => {
            let items: Vec<String> =
                es.iter()
                    .map(|e| {
                        let values = match e.get("values").and_then(Value::as_array) {
                            Some(vs) => format!(
                                "[]string{{{}}}",
                                vs.iter()
                                    .map(|v| format!("{:?}", v.as_str().unwrap_or_default()))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            None => "[]string(nil)".into(),
                        };
                        format!(
                        "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:{values}}}",
                        e.get("key").and_then(Value::as_str).unwrap_or_default(),
                        e.get("operator").and_then(Value::as_str).unwrap_or_default()
                    )
                    })
                    .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
        None => "[]v1.LabelSelectorRequirement(nil)".into(),
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")
}

/// An IntOrString as Go's `%#v` prints it in upstream's messages.
fn go_int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{s:?}}}"),
        other => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            other.as_i64().unwrap_or(0)
        ),
    }
}

/// The number an IntOrString stands for, percentages as their number (upstream's
/// `getIntOrPercentValue`); `None` if a string is not a percentage.
fn int_or_percent(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.strip_suffix('%')?.parse().ok(),
        other => other.as_i64(),
    }
}

/// upstream's `ValidateDeploymentStrategy` and `ValidateRollingUpdateDeployment`.
fn validate_deployment_strategy(obj: &Value, causes: &mut Vec<Cause>) {
    let Some(strategy) = obj.pointer("/spec/strategy") else {
        return;
    };
    let ty = strategy
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ru = strategy.get("rollingUpdate").filter(|r| !r.is_null());
    if ty == "Recreate" && ru.is_some() {
        causes.push(Cause::new(
            "FieldValueForbidden",
            "Forbidden: may not be specified when strategy `type` is 'Recreate'",
            "spec.strategy.rollingUpdate",
        ));
    }
    let Some(ru) = ru.filter(|_| ty == "RollingUpdate") else {
        return;
    };
    let path = "spec.strategy.rollingUpdate";
    let mut values = [None, None];
    for (i, field) in ["maxUnavailable", "maxSurge"].into_iter().enumerate() {
        let Some(v) = ru.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        match int_or_percent(v) {
            None => causes.push(Cause::new(
                "FieldValueInvalid",
                format!("Invalid value: {:?}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')", v.as_str().unwrap_or_default()),
                format!("{path}.{field}"),
            )),
            Some(n) if n < 0 => causes.push(Cause::new(
                "FieldValueInvalid",
                format!("Invalid value: {n}: must be greater than or equal to 0"),
                format!("{path}.{field}"),
            )),
            Some(n) => {
                if field == "maxUnavailable" && v.is_string() && n > 100 {
                    causes.push(Cause::new(
                        "FieldValueInvalid",
                        format!("Invalid value: {:?}: must not be greater than 100%", v.as_str().unwrap_or_default()),
                        format!("{path}.{field}"),
                    ));
                }
                values[i] = Some((n, v.clone()));
            }
        }
    }
    if let (Some((0, unavailable)), Some((0, _))) = (&values[0], &values[1]) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!(
                "Invalid value: {}: may not be 0 when `maxSurge` is 0",
                go_int_or_string(unavailable)
            ),
            format!("{path}.maxUnavailable"),
        ));
    }
}

/// upstream's `ValidateReplicationControllerSpec`: a selector (defaulted from the template's
/// labels) that the template's labels match.
fn validate_replication_controller(obj: &Value, causes: &mut Vec<Cause>) {
    let selector = obj.pointer("/spec/selector").and_then(Value::as_object);
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        causes.push(field_required("spec.selector"));
        return;
    };
    let empty = Map::new();
    let labels = obj
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if selector.iter().any(|(k, v)| labels.get(k) != Some(v)) {
        let mut kv: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or_default()))
            .collect();
        kv.sort();
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!(
                "Invalid value: map[string]string{{{}}}: `selector` does not match template `labels`",
                kv.join(", ")
            ),
            "spec.template.metadata.labels",
        ));
    }
    validate_pod_spec(
        obj.pointer("/spec/template/spec"),
        "spec.template.spec",
        causes,
    );
}

fn strip_for_generation(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("kind");
        m.remove("apiVersion");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Verbs;

    fn pods() -> Resource {
        Resource {
            group: "",
            version: "v1",
            kind: "Pod",
            plural: "pods",
            singular: "pod",
            short_names: &["po"],
            categories: &["all"],
            namespaced: true,
            verbs: Verbs::All,
            subresources: &[Subresource::Status],
            name_rule: NameRule::Subdomain,
            storage: true,
        }
    }

    fn ctx() -> CreateContext<'static> {
        CreateContext {
            namespace: Some("default"),
            now: "2026-01-01T00:00:00Z",
            uid: "u-1",
            random_suffix: "abcde",
        }
    }

    #[test]
    fn create_sets_server_fields_and_defaults() {
        let mut pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-"},
            "spec":{"containers":[{"name":"c","image":"nginx"}]},"status":{"phase":"Running"}});
        prepare_create(&pods(), &mut pod, &ctx()).unwrap();
        assert_eq!(meta_str(&pod, "name"), Some("web-abcde"));
        assert_eq!(meta_str(&pod, "namespace"), Some("default"));
        assert_eq!(pod["metadata"]["generation"], 1);
        assert_eq!(
            pod["status"]["phase"], "Pending",
            "clients cannot set status on create"
        );
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        let keys: Vec<_> = pod["metadata"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            [
                "name",
                "generateName",
                "namespace",
                "uid",
                "generation",
                "creationTimestamp"
            ]
        );
    }

    #[test]
    fn pods_tolerate_unready_nodes_for_300s_unless_they_say_otherwise() {
        let mut pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
            "spec":{"containers":[{"name":"c","image":"nginx"}],
                "tolerations":[{"key":"node.kubernetes.io/unreachable","operator":"Exists",
                    "effect":"NoExecute","tolerationSeconds":5}]}});
        prepare_create(&pods(), &mut pod, &ctx()).unwrap();
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":5},
                {"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}
            ])
        );
        let mut all = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
            "spec":{"containers":[{"name":"c","image":"nginx"}],"tolerations":[{"operator":"Exists"}]}});
        prepare_create(&pods(), &mut all, &ctx()).unwrap();
        assert_eq!(all["spec"]["tolerations"], json!([{"operator":"Exists"}]));
    }

    #[test]
    fn invalid_pod_lists_every_cause() {
        let mut pod = json!({"metadata":{"name":"Bad_Name"},"spec":{"containers":[{"name":""}]}});
        let err = prepare_create(&pods(), &mut pod, &ctx()).unwrap_err();
        assert_eq!(err.code, 422);
        let fields: Vec<_> = err
            .details
            .causes
            .iter()
            .map(|c| c.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "spec.containers[0].name",
                "spec.containers[0].image"
            ]
        );
    }

    #[test]
    fn update_keeps_status_and_bumps_generation_on_spec_change() {
        let mut old = json!({"metadata":{"name":"p","uid":"u","generation":1},
            "spec":{"containers":[{"name":"c","image":"a"}]},"status":{"phase":"Running"}});
        normalize(&mut old);
        let mut new = old.clone();
        new["status"]["phase"] = json!("Failed");
        new["metadata"]["uid"] = json!("hijack");
        prepare_update(&pods(), &mut new, &old, UpdateKind::Main).unwrap();
        assert_eq!(new["status"]["phase"], "Running");
        assert_eq!(new["metadata"]["uid"], "u");
        assert_eq!(new["metadata"]["generation"], 1, "metadata-only change");
        new["spec"]["containers"][0]["image"] = json!("b");
        let old2 = new.clone();
        let mut newer = new.clone();
        newer["spec"]["containers"][0]["image"] = json!("c");
        prepare_update(&pods(), &mut newer, &old2, UpdateKind::Main).unwrap();
        assert_eq!(newer["metadata"]["generation"], 2);
        let mut st = old.clone();
        st["status"]["phase"] = json!("Succeeded");
        st["spec"] = json!({"containers":[]});
        prepare_update(&pods(), &mut st, &old, UpdateKind::Status).unwrap();
        assert_eq!(st["status"]["phase"], "Succeeded");
        assert_eq!(st["spec"], old["spec"], "status writes cannot change spec");
    }
}
