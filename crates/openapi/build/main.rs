//! Build script of skiff-openapi: turns k8s-openapi's `schemars` schemas into upstream-shaped
//! OpenAPI v3 components, one document per served group-version, plus Rust tables of the
//! merge metadata, all written to `OUT_DIR`.
//!
//! Steps:
//! 1. [`kinds::all`] registers every served kind with a schemars generator configured for
//!    OpenAPI 3 (`$ref: #/components/schemas/<name>`, refs with siblings wrapped in `allOf`).
//! 2. Special types get upstream's v3 shape (`Quantity`, `IntOrString`).
//! 3. [`source::load`] reads k8s-openapi's `DeepMerge` impls; [`merge::derive`] turns them
//!    into `x-kubernetes-list-type` / `-list-map-keys` / `-patch-merge-key` /
//!    `-patch-strategy` / `-map-type`.
//! 4. `*List` kinds are synthesised (k8s-openapi has a generic `List<T>` without a schema)
//!    and every kind gets `x-kubernetes-group-version-kind`.
//! 5. Per group-version: the roots (its kinds, their lists, subresource kinds, the common
//!    meta kinds) and everything they reference, as compact JSON with sorted keys.

mod kinds;
mod merge;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

pub const REF_PREFIX: &str = "#/components/schemas/";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

fn main() {
    println!("cargo::rerun-if-changed=build");
    println!("cargo::rerun-if-env-changed={}", source::SRC_ENV);
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));

    let mut generator = SchemaSettings::openapi3().into_generator();
    let kinds = kinds::all(&mut generator);
    let common = kinds::common(&mut generator);
    let mut defs: BTreeMap<String, Value> = generator.take_definitions(true).into_iter().collect();
    check_names(&defs);
    normalize_special(&mut defs);
    unrequire_metadata(&mut defs);

    let source = source::load(&defs);
    let meta = merge::derive(&defs, &source);
    merge::apply(&mut defs, &meta);

    // Group-versions served (a kind's own group-version lists it as a root).
    let served: BTreeSet<(&str, &str)> = kinds
        .iter()
        .filter(|k| k.docs.contains(&(k.group, k.version)))
        .map(|k| (k.group, k.version))
        .collect();

    let mut list_defs = BTreeMap::new();
    for k in &kinds {
        add_gvk(&mut defs, &k.definition, k.group, k.version, k.kind);
        if let Some(list_kind) = k.list_kind {
            let name = list_definition(&k.definition, list_kind);
            let schema = list_schema(&defs, k, list_kind);
            defs.insert(name.clone(), schema);
            add_gvk(&mut defs, &name, k.group, k.version, list_kind);
            list_defs.insert(k.definition.clone(), name);
        }
    }
    for (group, version, kind, def) in kinds::common_gvks() {
        add_gvk(&mut defs, &def, group, version, kind);
    }
    for (def, kind) in &common.per_group_version {
        for (group, version) in &served {
            add_gvk(&mut defs, def, group, version, kind);
        }
    }
    for schema in defs.values_mut() {
        wrap_refs(schema);
    }
    for (name, schema) in &defs {
        for target in refs(schema) {
            assert!(
                defs.contains_key(&target),
                "{name} refers to missing {target}"
            );
        }
    }

    // One components document per served group-version.
    let components_dir = out_dir.join("components");
    std::fs::create_dir_all(&components_dir).expect("create components dir");
    let mut docs = Vec::new();
    let mut report = String::new();
    for (group, version) in &served {
        let mut roots: BTreeSet<String> = common.definitions.iter().cloned().collect();
        for k in kinds.iter().filter(|k| k.docs.contains(&(group, version))) {
            roots.insert(k.definition.clone());
            if let Some(list) = list_defs.get(&k.definition) {
                roots.insert(list.clone());
            }
        }
        let names = closure(&defs, roots);
        let schemas: Map<String, Value> =
            names.iter().map(|n| (n.clone(), defs[n].clone())).collect();
        let mut text = String::new();
        write_sorted(&json!({ "schemas": schemas }), &mut text);
        let file = components_dir.join(format!(
            "{}_{version}.json",
            if group.is_empty() { "core" } else { group }
        ));
        std::fs::write(&file, &text).expect("write components");
        let _ = writeln!(
            report,
            "{group}/{version}: {} schemas, {} bytes",
            names.len(),
            text.len()
        );
        docs.push((*group, *version, file));
    }

    let rust = rust_tables(&defs, &meta, &docs);
    std::fs::write(out_dir.join("tables.rs"), rust).expect("write tables.rs");

    // A human-readable record of the derived metadata, for review.
    let _ = writeln!(report, "\nk8s-openapi source: {}", source.dir.display());
    for ((def, field), m) in &meta {
        let _ = writeln!(report, "{def}.{field}: {m:?}");
    }
    std::fs::write(out_dir.join("report.txt"), report).expect("write report");
}

/// Every definition is an upstream name; schemars' de-duplication suffix (`Foo2`) would
/// mean two Rust types claimed one name.
fn check_names(defs: &BTreeMap<String, Value>) {
    for name in defs.keys() {
        assert!(
            name.starts_with("io.k8s."),
            "unexpected definition name {name}"
        );
        let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
        assert!(
            base == name || !defs.contains_key(base),
            "two types share the definition name {base}"
        );
    }
}

/// Upstream's v3 shapes for the types whose Go marshalling is custom.
fn normalize_special(defs: &mut BTreeMap<String, Value>) {
    let description = |defs: &BTreeMap<String, Value>, name: &str| {
        defs.get(name)
            .and_then(|d| d.get("description"))
            .cloned()
            .unwrap_or_else(|| panic!("{name} not generated"))
    };
    let d = description(defs, QUANTITY);
    defs.insert(
        QUANTITY.into(),
        json!({"description": d, "oneOf": [{"type": "string"}, {"type": "number"}]}),
    );
    let d = description(defs, INT_OR_STRING);
    defs.insert(
        INT_OR_STRING.into(),
        json!({
            "description": d,
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        }),
    );
}

/// k8s-openapi marks `metadata` required on every resource (its Rust field is not an
/// `Option`); upstream never does.
fn unrequire_metadata(defs: &mut BTreeMap<String, Value>) {
    for schema in defs.values_mut() {
        let Some(obj) = schema.as_object_mut() else {
            continue;
        };
        let Some(required) = obj.get_mut("required").and_then(Value::as_array_mut) else {
            continue;
        };
        required.retain(|r| r != "metadata");
        if required.is_empty() {
            obj.remove("required");
        }
    }
}

fn add_gvk(defs: &mut BTreeMap<String, Value>, def: &str, group: &str, version: &str, kind: &str) {
    let schema = defs
        .get_mut(def)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no definition {def} for {group}/{version} {kind}"));
    let list = schema
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .expect("gvk list");
    let entry = json!({"group": group, "kind": kind, "version": version});
    if !list.contains(&entry) {
        list.push(entry);
    }
    list.sort_by_key(|e| {
        (
            e["group"].as_str().unwrap_or_default().to_string(),
            e["version"].as_str().unwrap_or_default().to_string(),
            e["kind"].as_str().unwrap_or_default().to_string(),
        )
    });
}

fn list_definition(def: &str, list_kind: &str) -> String {
    let (package, _) = def.rsplit_once('.').expect("dotted definition name");
    format!("{package}.{list_kind}")
}

/// The `*List` schema upstream generates for every listable kind.
fn list_schema(defs: &BTreeMap<String, Value>, k: &kinds::Kind, list_kind: &str) -> Value {
    let item = &defs[&k.definition]["properties"];
    json!({
        "description": format!("{list_kind} is a list of {} objects.", k.kind),
        "properties": {
            "apiVersion": item["apiVersion"].clone(),
            "items": {
                "description": format!("List of {} objects.", k.kind),
                "items": {"$ref": format!("{REF_PREFIX}{}", k.definition)},
                "type": "array",
            },
            "kind": item["kind"].clone(),
            "metadata": {
                "allOf": [{"$ref": format!("{REF_PREFIX}{LIST_META}")}],
                "default": {},
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "required": ["items"],
        "type": "object",
    })
}

/// Upstream's convention: a `$ref` with siblings (description, extensions) becomes
/// `allOf: [{$ref}]` next to them. Walks the schema structure only, so property *names*
/// such as JSONSchemaProps' `$ref` are left alone.
fn wrap_refs(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj.len() > 1 && obj.get("$ref").is_some_and(Value::is_string) {
        let r = obj.remove("$ref").expect("checked");
        let all_of = obj
            .entry("allOf")
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .expect("allOf is an array");
        all_of.insert(0, json!({"$ref": r}));
    }
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(wrap_refs);
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(s) = obj.get_mut(key) {
            wrap_refs(s);
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = obj.get_mut(key).and_then(Value::as_array_mut) {
            list.iter_mut().for_each(wrap_refs);
        }
    }
}

/// The definitions a schema refers to directly.
fn refs(schema: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => {
                            let name = r
                                .strip_prefix(REF_PREFIX)
                                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
                            out.insert(name.to_string());
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, &mut out);
    out
}

fn closure(defs: &BTreeMap<String, Value>, roots: BTreeSet<String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = roots.into_iter().collect();
    while let Some(name) = stack.pop() {
        if seen.insert(name.clone()) {
            let schema = defs
                .get(&name)
                .unwrap_or_else(|| panic!("missing definition {name}"));
            stack.extend(refs(schema).into_iter().filter(|r| !seen.contains(r)));
        }
    }
    seen
}

/// Compact JSON with object keys sorted (as Go's encoder writes maps), independent of
/// whether serde_json's `preserve_order` is enabled somewhere in the build graph.
fn write_sorted(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("string"));
                out.push(':');
                write_sorted(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).expect("scalar")),
    }
}

/// Whether values of a definition are objects to recurse into (not strings, numbers or
/// one-of unions such as `IntOrString` and `Quantity`).
fn is_object_definition(defs: &BTreeMap<String, Value>, name: &str) -> bool {
    let d = &defs[name];
    d.get("properties").is_some() || d.get("type").and_then(Value::as_str) == Some("object")
}

fn rust_tables(
    defs: &BTreeMap<String, Value>,
    meta: &BTreeMap<(String, String), merge::FieldMeta>,
    docs: &[(&str, &str, PathBuf)],
) -> String {
    let mut out = String::from("// @generated by crates/openapi/build/main.rs — do not edit.\n\n");

    out.push_str("pub(crate) static COMPONENTS: &[(&str, &str, &[u8])] = &[\n");
    for (group, version, file) in docs {
        let file_name = Path::new(file)
            .file_name()
            .expect("file name")
            .to_string_lossy();
        let _ = writeln!(
            out,
            "    ({group:?}, {version:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), {:?}))),",
            format!("/components/{file_name}")
        );
    }
    out.push_str("];\n\n");

    let mut kinds: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for (name, schema) in defs {
        for gvk in schema["x-kubernetes-group-version-kind"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let key = (
                gvk["group"].as_str().expect("group").to_string(),
                gvk["version"].as_str().expect("version").to_string(),
                gvk["kind"].as_str().expect("kind").to_string(),
            );
            if let Some(prev) = kinds.insert(key.clone(), name.clone()) {
                panic!("{key:?} claimed by both {prev} and {name}");
            }
        }
    }
    out.push_str("pub(crate) static KINDS: &[(&str, &str, &str, &str)] = &[\n");
    for ((g, v, k), def) in &kinds {
        let _ = writeln!(out, "    ({g:?}, {v:?}, {k:?}, {def:?}),");
    }
    out.push_str("];\n\n");

    out.push_str("pub(crate) static DEFINITIONS: &[&str] = &[\n");
    for name in defs.keys() {
        let _ = writeln!(out, "    {name:?},");
    }
    out.push_str("];\n\n");

    let mut atomic: Vec<&str> = merge::ATOMIC_STRUCTS.to_vec();
    atomic.sort();
    out.push_str("pub(crate) static ATOMIC_STRUCTS: &[&str] = &[\n");
    for name in atomic {
        let _ = writeln!(out, "    {name:?},");
    }
    out.push_str("];\n\n");

    out.push_str("pub(crate) static FIELDS: &[(&str, &str, FieldInfo)] = &[\n");
    for (def, schema) in defs {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let mut names: Vec<&String> = props.keys().collect();
        names.sort();
        for field in names {
            let prop = &props[field];
            let m = meta.get(&(def.clone(), field.clone()));
            let ty = prop.get("type").and_then(Value::as_str);
            let (shape, target) = if ty == Some("array") {
                ("List", prop.get("items").and_then(merge::ref_target))
            } else if ty == Some("object") && prop.get("additionalProperties").is_some() {
                (
                    "Map",
                    prop.get("additionalProperties").and_then(merge::ref_target),
                )
            } else if let Some(t) = merge::ref_target(prop) {
                (
                    if is_object_definition(defs, t) {
                        "Object"
                    } else {
                        "Scalar"
                    },
                    Some(t),
                )
            } else if ty == Some("object") {
                ("Object", None)
            } else {
                ("Scalar", None)
            };
            if shape == "Scalar" && target.is_none() && m.is_none() {
                continue;
            }
            let list = match m.and_then(|m| m.list_type.map(|t| (m, t))) {
                Some((m, t)) => format!(
                    "Some(ListMeta {{ list_type: ListType::{}, map_keys: &{:?}, patch_merge_key: {}, patch_strategy: {} }})",
                    match t {
                        "atomic" => "Atomic",
                        "set" => "Set",
                        "map" => "Map",
                        other => panic!("list type {other}"),
                    },
                    m.map_keys,
                    opt(&m.patch_merge_key),
                    opt(&m.patch_strategy),
                ),
                None => "None".into(),
            };
            let map_type = match m.and_then(|m| m.map_type) {
                Some("atomic") => "Some(MapType::Atomic)",
                Some("granular") => "Some(MapType::Granular)",
                Some(other) => panic!("map type {other}"),
                None => "None",
            };
            let _ = writeln!(
                out,
                "    ({def:?}, {field:?}, FieldInfo {{ shape: Shape::{shape}, definition: {}, list: {list}, map_type: {map_type}, patch_strategy: {} }}),",
                opt(&target.map(str::to_string)),
                opt(&m.and_then(|m| m.patch_strategy.clone())),
            );
        }
    }
    out.push_str("];\n");
    out
}

fn opt(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("Some({s:?})"),
        None => "None".into(),
    }
}
