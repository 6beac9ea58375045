//! Deriving upstream's list, map and patch extensions from k8s-openapi's merge strategies.
//!
//! k8s-openapi's generator folds upstream's extensions into one merge strategy per field:
//! a `x-kubernetes-patch-merge-key` replaces the list-map keys, `patch-strategy: merge`
//! turns a list into `map` (with a key) or `set` (without), `retainKeys` and `replace` are
//! dropped. Reading it back:
//!
//! | k8s-openapi strategy       | emitted                                                        |
//! |----------------------------|----------------------------------------------------------------|
//! | `list::atomic`             | `x-kubernetes-list-type: atomic`                               |
//! | `list::set`                | `list-type: set` (+ `patch-strategy: merge` for [`SET_MERGE`]) |
//! | `list::map` with ≥ 2 keys  | `list-type: map`, `list-map-keys` (no patch key can exist)     |
//! | `list::map` with 1 key `K` | `list-type: map`, `list-map-keys: [K]`, `patch-merge-key: K`,  |
//! |                            | `patch-strategy: merge` — except [`NOT_PATCHED`]               |
//! | `map::atomic`              | `x-kubernetes-map-type: atomic`                                |
//!
//! The single-key rule is right for every strategic-merge list of the served groups; the
//! exceptions are lists upstream marks `+listType=map` without patch tags (mostly
//! `metav1.Condition` lists of newer APIs), listed in [`NOT_PATCHED`]. What the strategy
//! cannot carry at all — extra list-map keys behind a patch key, `retainKeys`, `replace`,
//! patch keys on `atomic` lists, struct-level `x-kubernetes-map-type: atomic` — is in the
//! override tables below, each entry checked against the generated schemas so a stale
//! entry fails the build.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::source::{Source, Strategy};
use crate::REF_PREFIX;

/// Upstream extensions for one property.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldMeta {
    pub list_type: Option<&'static str>,
    pub map_keys: Vec<String>,
    pub patch_merge_key: Option<String>,
    pub patch_strategy: Option<String>,
    pub map_type: Option<&'static str>,
}

/// Single-key map lists that upstream does not tag for strategic merge (`+listType=map`,
/// `+listMapKey=...` only): strategic merge patch replaces them wholesale.
const NOT_PATCHED: &[(&str, &str)] = &[
    (
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyStatus",
        "conditions",
    ),
    (
        "io.k8s.api.certificates.v1.CertificateSigningRequestStatus",
        "conditions",
    ),
    ("io.k8s.api.core.v1.ResourceRequirements", "claims"),
    ("io.k8s.api.core.v1.ResourceStatus", "resources"),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        "conditions",
    ),
];

/// Sets that upstream also marks `patchStrategy: merge` (merged as a union by strategic
/// merge patch; other sets are replaced).
const SET_MERGE: &[(&str, &str)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs"),
];

/// Full `x-kubernetes-list-map-keys` where the patch merge key is only the first of them.
const MAP_KEYS: &[(&str, &str, &[&str])] = &[
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        &["containerPort", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        &["containerPort", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        &["port", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        &["topologyKey", "whenUnsatisfiable"],
    ),
];

/// `x-kubernetes-list-type` where upstream's differs from what the strategy implies
/// (patch-merged lists that are `atomic` for server-side apply; k8s-openapi's own fix-up
/// keying `volumeClaimTemplates` by `metadata.name`).
const LIST_TYPE: &[(&str, &str, &str)] = &[
    ("io.k8s.api.batch.v1.JobStatus", "conditions", "atomic"),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", "atomic"),
    (
        "io.k8s.api.apps.v1.StatefulSetSpec",
        "volumeClaimTemplates",
        "atomic",
    ),
];

/// `x-kubernetes-patch-strategy` values the strategies cannot carry.
const PATCH_STRATEGY: &[(&str, &str, &str)] = &[
    ("io.k8s.api.core.v1.PodSpec", "volumes", "merge,retainKeys"),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        "merge,retainKeys",
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        "merge,retainKeys",
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        "selector",
        "replace",
    ),
];

/// Definitions upstream marks `x-kubernetes-map-type: atomic` (`+structType=atomic`):
/// server-side apply treats them as one value.
pub const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.api.admissionregistration.v1.MatchResources",
    "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1.ParamKind",
    "io.k8s.api.admissionregistration.v1.ParamRef",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
];

/// The definition a property's value, items or map values refer to.
pub fn ref_target(schema: &Value) -> Option<&str> {
    let direct = schema
        .get("$ref")
        .and_then(Value::as_str)
        .or_else(|| schema.get("allOf")?.get(0)?.get("$ref")?.as_str());
    direct.and_then(|r| r.strip_prefix(REF_PREFIX))
}

/// Derives the extensions of every property the strategies (and overrides) describe.
pub fn derive(
    defs: &BTreeMap<String, Value>,
    source: &Source,
) -> BTreeMap<(String, String), FieldMeta> {
    let mut out: BTreeMap<(String, String), FieldMeta> = BTreeMap::new();
    for (def, schema) in defs {
        let Some(parsed) = source.types.get(def) else {
            continue;
        };
        for (rust_field, strategy) in &parsed.strategies {
            let json_field = &parsed.json_of_rust[rust_field];
            let prop = &schema["properties"][json_field.as_str()];
            if prop.is_null() {
                panic!("{def}: strategy for missing property {json_field}");
            }
            let mut meta = FieldMeta::default();
            match strategy {
                Strategy::ListAtomic => meta.list_type = Some("atomic"),
                Strategy::ListSet => meta.list_type = Some("set"),
                Strategy::MapAtomic => meta.map_type = Some("atomic"),
                Strategy::MapGranular => continue,
                Strategy::ListMap(paths) => {
                    let item = prop.get("items").and_then(ref_target).unwrap_or_else(|| {
                        panic!("{def}.{json_field}: map list without item definition")
                    });
                    let keys: Vec<String> = paths
                        .iter()
                        .map(|p| json_path(defs, source, item, p))
                        .collect();
                    meta.list_type = Some("map");
                    // A patch merge key is a top-level field of the item; k8s-openapi's
                    // own `metadata.name` key for volumeClaimTemplates is not one.
                    if keys.len() == 1
                        && !keys[0].contains('.')
                        && !NOT_PATCHED.contains(&(def.as_str(), json_field.as_str()))
                    {
                        meta.patch_merge_key = Some(keys[0].clone());
                        meta.patch_strategy = Some("merge".into());
                    }
                    meta.map_keys = keys;
                }
            }
            out.insert((def.clone(), json_field.clone()), meta);
        }
    }

    let mut stale = Vec::new();
    fn field<'a>(
        out: &'a mut BTreeMap<(String, String), FieldMeta>,
        def: &str,
        name: &str,
    ) -> Option<&'a mut FieldMeta> {
        out.get_mut(&(def.to_string(), name.to_string()))
    }
    for (def, name) in NOT_PATCHED {
        // A not-patched list must be a single-key map list without a patch key.
        match field(&mut out, def, name) {
            Some(m) if m.list_type == Some("map") && m.patch_merge_key.is_none() => {}
            _ => stale.push(format!("NOT_PATCHED {def}.{name}")),
        }
    }
    for (def, name) in SET_MERGE {
        match field(&mut out, def, name) {
            Some(m) if m.list_type == Some("set") => m.patch_strategy = Some("merge".into()),
            _ => stale.push(format!("SET_MERGE {def}.{name}")),
        }
    }
    for (def, name, keys) in MAP_KEYS {
        match field(&mut out, def, name) {
            Some(m)
                if m.list_type == Some("map")
                    && m.map_keys.first().map(String::as_str) == keys.first().copied() =>
            {
                m.map_keys = keys.iter().map(|k| k.to_string()).collect();
            }
            _ => stale.push(format!("MAP_KEYS {def}.{name}")),
        }
    }
    for (def, name, list_type) in LIST_TYPE {
        match field(&mut out, def, name) {
            Some(m) if m.list_type.is_some() => {
                m.list_type = Some(list_type);
                if *list_type != "map" {
                    m.map_keys.clear();
                }
            }
            _ => stale.push(format!("LIST_TYPE {def}.{name}")),
        }
    }
    for (def, name, strategy) in PATCH_STRATEGY {
        let exists = defs
            .get(*def)
            .is_some_and(|d| !d["properties"][*name].is_null());
        if !exists {
            stale.push(format!("PATCH_STRATEGY {def}.{name}"));
            continue;
        }
        let m = out.entry((def.to_string(), name.to_string())).or_default();
        if strategy.starts_with("merge") && m.patch_merge_key.is_none() {
            stale.push(format!("PATCH_STRATEGY {def}.{name} (no merge key)"));
        }
        m.patch_strategy = Some(strategy.to_string());
    }
    for def in ATOMIC_STRUCTS {
        if !defs.contains_key(*def) {
            stale.push(format!("ATOMIC_STRUCTS {def}"));
        }
    }
    assert!(
        stale.is_empty(),
        "override entries that no longer match the k8s-openapi schemas: {stale:?}"
    );
    out
}

/// `container_port` → `containerPort`; nested paths (`metadata.name`) follow references.
fn json_path(
    defs: &BTreeMap<String, Value>,
    source: &Source,
    item: &str,
    rust_path: &str,
) -> String {
    let mut def = item.to_string();
    let mut parts = Vec::new();
    for segment in rust_path.split('.') {
        let parsed = source
            .types
            .get(&def)
            .unwrap_or_else(|| panic!("no source for {def} (key path {rust_path})"));
        let json = parsed
            .json_of_rust
            .get(segment)
            .unwrap_or_else(|| panic!("{def}: no field {segment} (key path {rust_path})"))
            .clone();
        if let Some(next) = defs
            .get(&def)
            .and_then(|d| d["properties"].get(json.as_str()))
            .and_then(ref_target)
        {
            def = next.to_string();
        }
        parts.push(json);
    }
    parts.join(".")
}

/// Writes the extensions into the property schemas and the struct-level map types.
pub fn apply(defs: &mut BTreeMap<String, Value>, meta: &BTreeMap<(String, String), FieldMeta>) {
    for ((def, field), m) in meta {
        let prop = defs
            .get_mut(def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field.as_str()))
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{def}.{field} vanished"));
        if let Some(t) = m.list_type {
            prop.insert("x-kubernetes-list-type".into(), t.into());
        }
        if !m.map_keys.is_empty() && m.list_type == Some("map") {
            prop.insert(
                "x-kubernetes-list-map-keys".into(),
                m.map_keys.clone().into(),
            );
        }
        if let Some(k) = &m.patch_merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), k.clone().into());
        }
        if let Some(s) = &m.patch_strategy {
            prop.insert("x-kubernetes-patch-strategy".into(), s.clone().into());
        }
        if let Some(t) = m.map_type {
            prop.insert("x-kubernetes-map-type".into(), t.into());
        }
    }
    let atomic: BTreeSet<&str> = ATOMIC_STRUCTS.iter().copied().collect();
    for (name, schema) in defs.iter_mut() {
        if atomic.contains(name.as_str()) {
            schema
                .as_object_mut()
                .expect("definition is an object")
                .insert("x-kubernetes-map-type".into(), "atomic".into());
        }
    }
}
