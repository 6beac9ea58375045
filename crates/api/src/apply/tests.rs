use super::*;
use proptest::prelude::*;

const NOW: &str = "2026-01-01T00:00:00Z";

fn w<'a>(ty: Ty<'a>, api_version: &'a str, manager: &'a str) -> Write<'a> {
    Write {
        ty,
        api_version,
        manager,
        scope: Scope::Main {
            status_subresource: true,
        },
        now: NOW,
    }
}

fn cm() -> Ty<'static> {
    Ty::root("", "v1", "ConfigMap")
}

fn deploy() -> Ty<'static> {
    Ty::root("apps", "v1", "Deployment")
}

fn managed(obj: &Value) -> Vec<Entry> {
    decode_managed(obj).unwrap().unwrap_or_default()
}

#[test]
fn fields_v1_of_an_applied_deployment() {
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}});
    let set = Scope::Main {
        status_subresource: true,
    }
    .filter(&to_field_set(deploy(), &cfg));
    assert_eq!(
        set.to_fields_v1(),
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                        ".": {}, "f:containerPort": {}}}}}}}}
        })
    );
    let back = FieldSet::from_fields_v1(&set.to_fields_v1()).unwrap();
    assert_eq!(back, set);
    assert!(set.has(&[
        Pe::Field("spec".into()),
        Pe::Field("template".into()),
        Pe::Field("spec".into()),
        Pe::Field("containers".into()),
        Pe::Key(r#"{"name":"web"}"#.into()),
        Pe::Field("image".into()),
    ]));
}

#[test]
fn create_is_an_update_owning_new_maps_as_a_whole() {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "uid": "u", "annotations": {"a": "b"}}, "data": {"key": "v"}});
    track_update(&w(cm(), "v1", "kubectl-create"), None, &mut obj);
    let e = managed(&obj);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].operation, "Update");
    assert_eq!(e[0].manager, "kubectl-create");
    assert_eq!(e[0].time.as_deref(), Some(NOW));
    assert_eq!(
        e[0].fields.to_fields_v1(),
        json!({"f:data": {".": {}, "f:key": {}},
            "f:metadata": {"f:annotations": {".": {}, "f:a": {}}}})
    );
}

#[test]
fn deployment_create_owns_fields_not_the_go_structs() {
    let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {"metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    track_update(&w(deploy(), "apps/v1", "kubectl-create"), None, &mut obj);
    assert_eq!(
        managed(&obj)[0].fields.to_fields_v1(),
        json!({"f:spec": {"f:replicas": {},
            "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}}, "f:type": {}},
            "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
}

fn live_cm_by(manager: &str, data: Value) -> Value {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"}, "data": data});
    track_update(&w(cm(), "v1", manager), None, &mut obj);
    obj
}

#[test]
fn apply_conflicts_with_an_updater_and_force_takes_over() {
    let live = live_cm_by(
        "kubectl-client-side-apply",
        json!({"key": "a", "other": "o"}),
    );
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"key": "b"}});
    let err = apply(&w(cm(), "v1", "mine"), Some(&live), &cfg, false).unwrap_err();
    assert_eq!(err.code, 409);
    assert_eq!(
        err.message,
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.key"#
    );
    assert_eq!(err.details.causes[0].reason, "FieldManagerConflict");
    assert_eq!(err.details.causes[0].field, ".data.key");

    // The same value is shared ownership, not a conflict.
    let same = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"key": "a"}});
    let shared = apply(&w(cm(), "v1", "mine"), Some(&live), &same, false).unwrap();
    let e = managed(&shared);
    assert_eq!(e.len(), 2);
    assert!(e.iter().all(|e| e
        .fields
        .has(&[Pe::Field("data".into()), Pe::Field("key".into())])));

    let forced = apply(&w(cm(), "v1", "mine"), Some(&live), &cfg, true).unwrap();
    assert_eq!(forced["data"], json!({"key": "b", "other": "o"}));
    let e = managed(&forced);
    let csa = e
        .iter()
        .find(|e| e.manager == "kubectl-client-side-apply")
        .unwrap();
    assert!(!csa
        .fields
        .has(&[Pe::Field("data".into()), Pe::Field("key".into())]));
    assert!(csa
        .fields
        .has(&[Pe::Field("data".into()), Pe::Field("other".into())]));
    let mine = e.iter().find(|e| e.manager == "mine").unwrap();
    assert_eq!(mine.operation, "Apply");
    assert_eq!(mine.fields.to_fields_v1(), json!({"f:data": {"f:key": {}}}));
    // Apply entries sort before Update entries.
    assert_eq!(e[0].operation, "Apply");
}

#[test]
fn fields_no_longer_applied_are_removed_unless_owned_by_others() {
    let cfg1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"x": "1"}},
        "data": {"a": "1", "b": "2"}});
    let o1 = apply(&w(cm(), "v1", "m"), None, &cfg1, false).unwrap();
    assert_eq!(o1["data"], json!({"a": "1", "b": "2"}));
    let cfg2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"a": "1"}});
    let o2 = apply(&w(cm(), "v1", "m"), Some(&o1), &cfg2, false).unwrap();
    assert_eq!(o2["data"], json!({"a": "1"}));
    assert!(o2["metadata"].get("labels").is_none(), "{o2}");

    // Another applier sharing b keeps it.
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"b": "2"}});
    let o1b = apply(&w(cm(), "v1", "other"), Some(&o1), &other, false).unwrap();
    let o3 = apply(&w(cm(), "v1", "m"), Some(&o1b), &cfg2, false).unwrap();
    assert_eq!(o3["data"], json!({"a": "1", "b": "2"}));
}

#[test]
fn map_lists_merge_by_key_and_removed_items_go() {
    let c1 = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}}});
    let o1 = apply(&w(deploy(), "apps/v1", "m"), None, &c1, false).unwrap();
    // Another manager changes a's image (an update takes ownership).
    let mut o2 = o1.clone();
    o2["spec"]["template"]["spec"]["containers"][0]["image"] = json!("9");
    track_update(&w(deploy(), "apps/v1", "kubectl-edit"), Some(&o1), &mut o2);
    let c2 = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}});
    let o3 = apply(&w(deploy(), "apps/v1", "m"), Some(&o2), &c2, false).unwrap();
    assert_eq!(
        o3["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "9"}])
    );
    // Applying a's image again conflicts with the editor.
    let c3 = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}}});
    let err = apply(&w(deploy(), "apps/v1", "m"), Some(&o3), &c3, false).unwrap_err();
    assert_eq!(
        err.message,
        r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.template.spec.containers[name="a"].image"#
    );
}

#[test]
fn sets_and_atomic_lists() {
    let pod = Ty::root("", "v1", "Pod");
    let live = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"containers": [
        {"name": "c", "args": ["1", "2"]}]}});
    let cfg = json!({"metadata": {"finalizers": ["c", "a"]}, "spec": {"containers": [
        {"name": "c", "args": ["3"]}]}});
    let m = merge(pod, &live, &cfg);
    assert_eq!(m["metadata"]["finalizers"], json!(["c", "a", "b"]));
    assert_eq!(m["spec"]["containers"][0]["args"], json!(["3"]));
    let set = to_field_set(pod, &cfg);
    assert!(set.has(&[
        Pe::Field("metadata".into()),
        Pe::Field("finalizers".into()),
        Pe::Value("\"c\"".into())
    ]));
    assert_eq!(
        path_string(&[
            Pe::Field("metadata".into()),
            Pe::Field("finalizers".into()),
            Pe::Value("\"c\"".into())
        ]),
        r#".metadata.finalizers[="c"]"#
    );
}

#[test]
fn objects_without_managed_fields_belong_to_before_first_apply() {
    let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"k": "old"}});
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"k": "new"}});
    let err = apply(&w(cm(), "v1", "m"), Some(&live), &cfg, false).unwrap_err();
    assert!(
        err.message
            .contains("\"before-first-apply\" using v1: .data.k"),
        "{}",
        err.message
    );
}

#[test]
fn bad_configs_are_4xx() {
    let cfg = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
    let err = apply(&w(deploy(), "apps/v1", "m"), None, &cfg, false).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(
        err.message.contains("omits key field \"name\""),
        "{}",
        err.message
    );
    let dup =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "x"}, {"name": "x"}]}}}});
    assert_eq!(
        apply(&w(deploy(), "apps/v1", "m"), None, &dup, false)
            .unwrap_err()
            .code,
        400
    );
    let unknown = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replica": 1}});
    let err = apply(&w(deploy(), "apps/v1", "m"), None, &unknown, false).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(
        err.message
            .contains(".spec.replica: field not declared in schema"),
        "{}",
        err.message
    );
    let known = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"any": "x"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i",
            "resources": {"limits": {"cpu": "1"}}}]}}}});
    apply(&w(deploy(), "apps/v1", "m"), None, &known, false).unwrap();
    let mf = json!({"metadata": {"managedFields": []}});
    assert_eq!(
        apply(&w(deploy(), "apps/v1", "m"), None, &mf, false)
            .unwrap_err()
            .code,
        400
    );
}

#[test]
fn status_scope_owns_only_status() {
    let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1}, "status": {"replicas": 0}});
    let mut new = live.clone();
    new["status"]["replicas"] = json!(1);
    let mut wr = w(deploy(), "apps/v1", "controller");
    wr.scope = Scope::Status;
    let mut live_t = live.clone();
    track_update(&w(deploy(), "apps/v1", "creator"), None, &mut live_t);
    track_update(&wr, Some(&live_t), &mut new);
    let e = managed(&new);
    let c = e.iter().find(|e| e.manager == "controller").unwrap();
    assert_eq!(c.subresource, "status");
    assert_eq!(
        c.fields.to_fields_v1(),
        json!({"f:status": {"f:replicas": {}}})
    );
    let creator = e.iter().find(|e| e.manager == "creator").unwrap();
    assert!(!creator.fields.to_fields_v1().to_string().contains("status"));
}

#[test]
fn many_updaters_collapse_into_ancient_changes() {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {}});
    for i in 0..13 {
        let before = obj.clone();
        obj["data"][format!("k{i}")] = json!("v");
        let now = format!("2026-01-01T00:00:{i:02}Z");
        let manager = format!("m{i}");
        let wr = Write {
            now: &now,
            ..w(cm(), "v1", &manager)
        };
        track_update(&wr, Some(&before), &mut obj);
    }
    let e = managed(&obj);
    assert_eq!(e.len(), MAX_UPDATE_MANAGERS);
    let ancient = e.iter().find(|e| e.manager == "ancient-changes").unwrap();
    for k in ["k0", "k1", "k2", "k3"] {
        assert!(
            ancient
                .fields
                .has(&[Pe::Field("data".into()), Pe::Field(k.into())]),
            "{k}"
        );
    }
    assert!(e.iter().any(|e| e.manager == "m12"));
}

#[test]
fn custom_resource_schemas_give_list_types() {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "hosts": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "args": {"type": "array", "items": {"type": "string"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "port": {"type": "integer"}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "sel": {"type": "object", "x-kubernetes-map-type": "atomic",
                "properties": {"a": {"type": "string"}}}}}}});
    let ty = Ty::SchemaRoot(&schema);
    let cfg = json!({"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"},
        "spec": {"hosts": ["a"], "args": ["1"], "ports": [{"name": "http", "port": 80}],
            "labels": {"k": "v"}, "sel": {"a": "b"}}});
    let set = Scope::All.filter(&to_field_set(ty, &cfg));
    assert_eq!(
        set.to_fields_v1(),
        json!({"f:spec": {"f:args": {}, "f:hosts": {"v:\"a\"": {}},
            "f:labels": {"f:k": {}},
            "f:ports": {"k:{\"name\":\"http\"}": {".": {}, "f:name": {}, "f:port": {}}},
            "f:sel": {}}})
    );
    let live =
        json!({"spec": {"hosts": ["b"], "args": ["2"], "ports": [{"name": "m", "port": 9}]}});
    let m = merge(ty, &live, &cfg);
    assert_eq!(m["spec"]["hosts"], json!(["b", "a"]));
    assert_eq!(m["spec"]["args"], json!(["1"]));
    assert_eq!(m["spec"]["ports"].as_array().unwrap().len(), 2);
    assert!(validate_config(ty, &json!({"spec": {"ports": [{"port": 1}]}})).is_err());
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(|n| json!(n)),
        "[a-c]{0,2}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("spec".to_string()),
        Just("metadata".to_string()),
        Just("labels".to_string()),
        Just("template".to_string()),
        Just("containers".to_string()),
        Just("name".to_string()),
        Just("image".to_string()),
        Just("ports".to_string()),
        Just("containerPort".to_string()),
        Just("finalizers".to_string()),
        Just("replicas".to_string()),
        "[a-c]".prop_map(String::from),
    ];
    json_leaf().prop_recursive(5, 48, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Arbitrary live objects and configurations never panic, under a rich schema and
    /// without one; a successful apply owns what it applied and holds its leaves.
    #[test]
    fn apply_never_panics(live in json_value(), cfg in json_value(), cfg2 in json_value(), force in any::<bool>()) {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "containers": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name", "image"],
                "items": {"type": "object", "properties": {"name": {"type": "string"},
                    "ports": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}}},
            "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
        for ty in [deploy(), Ty::root("", "v1", "Pod"), Ty::DeducedRoot, Ty::SchemaRoot(&schema)] {
            let wr = w(ty, "apps/v1", "m");
            let mut live_t = live.clone();
            if live_t.is_object() {
                let _ = live_t.as_object_mut().map(|m| m.remove("metadata"));
                track_update(&w(ty, "apps/v1", "u"), None, &mut live_t);
                let mut changed = live_t.clone();
                if let Some(m) = changed.as_object_mut() { m.insert("spec".into(), cfg2.clone()); }
                track_update(&w(ty, "apps/v1", "u2"), Some(&live_t), &mut changed);
                live_t = changed;
            }
            let mut cfg = cfg.clone();
            if let Some(m) = cfg.as_object_mut() { m.remove("metadata"); }
            let _ = to_field_set(ty, &cfg);
            let _ = compare(ty, &live_t, &cfg);
            let _ = merge(ty, &live_t, &cfg);
            if let Ok(out) = apply(&wr, Some(&live_t), &cfg, force) {
                let e = decode_managed(&out).unwrap().unwrap_or_default();
                for e in &e {
                    let round = FieldSet::from_fields_v1(&e.fields.to_fields_v1()).unwrap();
                    prop_assert_eq!(&round, &e.fields);
                }
                if let Ok(again) = apply(&wr, Some(&out), &cfg, false) {
                    let _ = apply(&wr, Some(&again), &cfg2, force);
                }
            }
        }
    }
}
