use super::*;

use serde_json::Value;
use skiff_api::registry::{self, Verbs};
use std::collections::BTreeSet;

/// Kinds a registry row or a subresource may name without an OpenAPI schema. Every
/// resource row has one; only the connect options of `pods/exec`, `pods/attach`,
/// `pods/portforward` and the proxies lack one (they are query parameters upstream too,
/// never definitions).
const NO_SCHEMA: &[&str] = &[
    "PodExecOptions",
    "PodAttachOptions",
    "PodPortForwardOptions",
    "PodProxyOptions",
    "NodeProxyOptions",
    "ServiceProxyOptions",
];

fn doc(group: &str, version: &str) -> Value {
    serde_json::from_slice(components_for(group, version)).expect("components are JSON")
}

fn gvks(schema: &Value) -> Vec<(String, String, String)> {
    schema["x-kubernetes-group-version-kind"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            (
                g["group"].as_str().unwrap().to_string(),
                g["version"].as_str().unwrap().to_string(),
                g["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has_gvk(schema: &Value, group: &str, version: &str, kind: &str) -> bool {
    gvks(schema).contains(&(group.into(), version.into(), kind.into()))
}

#[test]
fn every_registry_row_has_a_schema_with_its_gvk() {
    for r in registry::RESOURCES {
        if NO_SCHEMA.contains(&r.kind) {
            continue;
        }
        let def = definition_for_kind(r.group, r.version, r.kind)
            .unwrap_or_else(|| panic!("no schema for {}/{} {}", r.group, r.version, r.kind));
        let d = doc(r.group, r.version);
        let schema = &d["schemas"][def];
        assert!(schema.is_object(), "{def} missing from {}", r.api_version());
        assert!(
            has_gvk(schema, r.group, r.version, r.kind),
            "{def} lacks its GVK"
        );
        assert!(schema["properties"]["metadata"].is_object(), "{def}");
        if r.verbs != Verbs::CreateOnly {
            let list_kind = format!("{}List", r.kind);
            let list = definition_for_kind(r.group, r.version, &list_kind)
                .unwrap_or_else(|| panic!("no {list_kind}"));
            let list_schema = &d["schemas"][list];
            assert!(has_gvk(list_schema, r.group, r.version, &list_kind));
            assert_eq!(
                list_schema["properties"]["items"]["items"]["$ref"],
                format!("#/components/schemas/{def}")
            );
        }
    }
}

#[test]
fn subresource_kinds_are_in_the_parent_document() {
    for r in registry::RESOURCES {
        let d = doc(r.group, r.version);
        for sub in r.subresources {
            let (g, v, k) = sub.response_kind(r);
            if NO_SCHEMA.contains(&k) {
                continue;
            }
            let def = definition_for_kind(g, v, k).unwrap_or_else(|| {
                panic!("no schema for {g}/{v} {k} ({}/{})", r.plural, sub.name())
            });
            let schema = &d["schemas"][def];
            assert!(
                has_gvk(schema, g, v, k),
                "{def} not in {} for {}/{}",
                r.api_version(),
                r.plural,
                sub.name()
            );
        }
    }
}

#[test]
fn generic_operation_kinds_are_in_every_document() {
    for (g, v) in group_versions() {
        let d = doc(g, v);
        for def in [
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
            "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
            "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
            "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
            "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
        ] {
            assert!(d["schemas"][def].is_object(), "{def} missing from {g}/{v}");
        }
        assert!(has_gvk(
            &d["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"],
            g,
            v,
            "DeleteOptions"
        ));
    }
    assert_eq!(
        definition_for_kind("", "v1", "Status"),
        Some("io.k8s.apimachinery.pkg.apis.meta.v1.Status")
    );
}

/// Every `$ref` string in a schema (structurally: property names are not refs).
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if let ("$ref", Value::String(r)) = (k.as_str(), v) {
                    out.insert(r.clone());
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_ref_resolves_within_its_document() {
    let mut count = 0;
    for (g, v) in group_versions() {
        let d = doc(g, v);
        let obj = d.as_object().unwrap();
        assert_eq!(obj.len(), 1, "only `schemas`");
        let schemas = d["schemas"].as_object().unwrap();
        let mut all = BTreeSet::new();
        refs(&d, &mut all);
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{g}/{v}: foreign $ref {r}"));
            assert!(schemas.contains_key(name), "{g}/{v}: dangling $ref {r}");
            count += 1;
        }
    }
    assert!(count > 500, "{count}");
}

/// Upstream wraps a `$ref` that has siblings (description, extensions) in `allOf`.
#[test]
fn refs_with_siblings_are_wrapped_in_all_of() {
    fn check(v: &Value, path: &str) {
        match v {
            Value::Object(m) => {
                if m.get("$ref").is_some_and(Value::is_string) {
                    assert_eq!(m.len(), 1, "{path}: $ref with siblings");
                }
                for (k, v) in m {
                    check(v, &format!("{path}/{k}"));
                }
            }
            Value::Array(a) => a.iter().for_each(|v| check(v, path)),
            _ => {}
        }
    }
    for (g, v) in group_versions() {
        check(&doc(g, v), &format!("{g}/{v}"));
    }
    let d = doc("", "v1");
    let affinity = &d["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["affinity"];
    assert_eq!(
        affinity["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Affinity"
    );
    assert!(affinity["description"].is_string());
}

#[test]
fn pod_spec_merge_metadata() {
    const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
    let containers = list_field_meta(POD_SPEC, "containers").unwrap();
    assert_eq!(containers.list_type, ListType::Map);
    assert_eq!(containers.map_keys, &["name"]);
    assert_eq!(containers.patch_merge_key, Some("name"));
    assert_eq!(containers.patch_strategy, Some("merge"));
    assert_eq!(
        field_definition(POD_SPEC, "containers"),
        Some("io.k8s.api.core.v1.Container")
    );

    let tolerations = list_field_meta(POD_SPEC, "tolerations").unwrap();
    assert_eq!(tolerations.list_type, ListType::Atomic);
    assert_eq!(tolerations.patch_merge_key, None);
    assert_eq!(tolerations.patch_strategy, None);

    let volumes = list_field_meta(POD_SPEC, "volumes").unwrap();
    assert_eq!(volumes.patch_merge_key, Some("name"));
    assert_eq!(volumes.patch_strategy, Some("merge,retainKeys"));

    let tsc = list_field_meta(POD_SPEC, "topologySpreadConstraints").unwrap();
    assert_eq!(tsc.map_keys, &["topologyKey", "whenUnsatisfiable"]);
    assert_eq!(tsc.patch_merge_key, Some("topologyKey"));

    let node_selector = field(POD_SPEC, "nodeSelector").unwrap();
    assert_eq!(node_selector.shape, Shape::Map);
    assert_eq!(node_selector.map_type, Some(MapType::Atomic));

    // The same facts in the served document.
    let d = doc("", "v1");
    let props = &d["schemas"][POD_SPEC]["properties"];
    assert_eq!(props["containers"]["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(props["containers"]["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(props["containers"]["x-kubernetes-list-type"], "map");
    assert_eq!(
        props["containers"]["x-kubernetes-list-map-keys"],
        serde_json::json!(["name"])
    );
    assert_eq!(props["tolerations"]["x-kubernetes-list-type"], "atomic");
    assert!(props["tolerations"]
        .get("x-kubernetes-patch-strategy")
        .is_none());
}

#[test]
fn known_upstream_merge_keys() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("io.k8s.api.core.v1.Container", "env", "name", &["name"]),
        (
            "io.k8s.api.core.v1.Container",
            "volumeMounts",
            "mountPath",
            &["mountPath"],
        ),
        (
            "io.k8s.api.core.v1.Container",
            "ports",
            "containerPort",
            &["containerPort", "protocol"],
        ),
        (
            "io.k8s.api.core.v1.ServiceSpec",
            "ports",
            "port",
            &["port", "protocol"],
        ),
        (
            "io.k8s.api.core.v1.PodStatus",
            "conditions",
            "type",
            &["type"],
        ),
        (
            "io.k8s.api.apps.v1.DeploymentStatus",
            "conditions",
            "type",
            &["type"],
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "ownerReferences",
            "uid",
            &["uid"],
        ),
        (
            "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
            "webhooks",
            "name",
            &["name"],
        ),
    ];
    for (def, f, key, map_keys) in cases {
        let m = list_field_meta(def, f).unwrap_or_else(|| panic!("{def}.{f}"));
        assert_eq!(m.patch_merge_key, Some(*key), "{def}.{f}");
        assert_eq!(m.patch_strategy, Some("merge"), "{def}.{f}");
        assert_eq!(m.list_type, ListType::Map, "{def}.{f}");
        assert_eq!(m.map_keys, *map_keys, "{def}.{f}");
    }

    let finalizers = list_field_meta(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    )
    .unwrap();
    assert_eq!(finalizers.list_type, ListType::Set);
    assert_eq!(finalizers.patch_strategy, Some("merge"));
    assert_eq!(finalizers.patch_merge_key, None);

    // Map lists without strategic-merge tags: replaced by strategic merge patch.
    let csr = list_field_meta(
        "io.k8s.api.certificates.v1.CertificateSigningRequestStatus",
        "conditions",
    )
    .unwrap();
    assert_eq!(csr.list_type, ListType::Map);
    assert_eq!(csr.patch_strategy, None);

    assert_eq!(
        patch_strategy("io.k8s.api.apps.v1.DeploymentSpec", "strategy"),
        Some("retainKeys")
    );
    assert_eq!(
        patch_strategy("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector"),
        Some("replace")
    );
    assert!(struct_is_atomic(
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"
    ));
    assert!(!struct_is_atomic("io.k8s.api.core.v1.PodSpec"));
}

/// The tables and the served documents must say the same thing about every list.
#[test]
fn tables_match_documents() {
    for (g, v) in group_versions() {
        let d = doc(g, v);
        for (def, schema) in d["schemas"].as_object().unwrap() {
            let Some(props) = schema["properties"].as_object() else {
                continue;
            };
            for (name, prop) in props {
                let info = field(def, name);
                if prop["type"] == "array" {
                    let info = info.unwrap_or_else(|| panic!("{def}.{name} not in the tables"));
                    assert_eq!(info.shape, Shape::List);
                    let list_type = prop["x-kubernetes-list-type"].as_str();
                    match info.list {
                        Some(l) => {
                            let want = match l.list_type {
                                ListType::Atomic => "atomic",
                                ListType::Set => "set",
                                ListType::Map => "map",
                            };
                            assert_eq!(list_type, Some(want), "{def}.{name}");
                            assert_eq!(
                                prop["x-kubernetes-patch-merge-key"].as_str(),
                                l.patch_merge_key,
                                "{def}.{name}"
                            );
                            let keys: Vec<&str> = prop["x-kubernetes-list-map-keys"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|k| k.as_str().unwrap())
                                .collect();
                            assert_eq!(keys, l.map_keys, "{def}.{name}");
                        }
                        None => assert_eq!(list_type, None, "{def}.{name}"),
                    }
                }
                assert_eq!(
                    prop["x-kubernetes-patch-strategy"].as_str(),
                    info.and_then(|i| i.patch_strategy),
                    "{def}.{name}"
                );
            }
        }
    }
}

#[test]
fn walking_a_deployment_reaches_containers() {
    let deployment = definition_for_kind("apps", "v1", "Deployment").unwrap();
    assert_eq!(deployment, "io.k8s.api.apps.v1.Deployment");
    let mut def = deployment;
    for f in ["spec", "template", "spec", "containers"] {
        def = field_definition(def, f).unwrap_or_else(|| panic!("{def}.{f}"));
    }
    assert_eq!(def, "io.k8s.api.core.v1.Container");
    assert_eq!(
        field("io.k8s.api.core.v1.Container", "resources")
            .unwrap()
            .shape,
        Shape::Object
    );
    // Scalar-like definitions are not objects to recurse into.
    let created = field(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "creationTimestamp",
    )
    .unwrap();
    assert_eq!(created.shape, Shape::Scalar);
    assert_eq!(field("io.k8s.api.core.v1.Container", "image"), None);
}

#[test]
fn special_types_have_upstream_shapes() {
    let d = doc("", "v1");
    let ios = &d["schemas"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["format"], "int-or-string");
    assert_eq!(ios["oneOf"].as_array().unwrap().len(), 2);
    let q = &d["schemas"]["io.k8s.apimachinery.pkg.api.resource.Quantity"];
    assert_eq!(q["oneOf"][0]["type"], "string");
    let pod = &d["schemas"]["io.k8s.api.core.v1.Pod"];
    assert!(
        pod.get("required").is_none(),
        "upstream does not require metadata"
    );
}

#[test]
fn lookups_are_consistent() {
    let defs = definitions();
    assert!(defs.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    for r in registry::RESOURCES {
        let def = definition_for_kind(r.group, r.version, r.kind).unwrap();
        assert!(defs.binary_search(&def).is_ok());
    }
    assert_eq!(components_for("example.com", "v1"), br#"{"schemas":{}}"#);
    assert_eq!(definition_for_kind("apps", "v1", "Nope"), None);
    assert_eq!(field("io.k8s.Nope", "spec"), None);
    let gvs: Vec<_> = group_versions().collect();
    assert!(gvs.windows(2).all(|w| w[0] < w[1]));
    for r in registry::RESOURCES {
        assert!(gvs.contains(&(r.group, r.version)));
    }
}
