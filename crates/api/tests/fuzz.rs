//! Property tests: the pure logic that sees client input (strategic merge patch,
//! selectors, create/update preparation) never panics on arbitrary input, and selectors
//! print back to what they parse from.

use proptest::prelude::*;
use serde_json::{Map, Value};
use skiff_api::patch::strategic_merge;
use skiff_api::registry::RESOURCES;
use skiff_api::selectors::{FieldSelector, LabelSelector};
use skiff_api::strategy::{self, CreateContext, UpdateKind};

/// Field names that steer generated JSON into the interesting code paths.
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
    "deletionTimestamp",
    "spec",
    "status",
    "containers",
    "initContainers",
    "image",
    "ports",
    "containerPort",
    "port",
    "env",
    "volumes",
    "volumeMounts",
    "mountPath",
    "conditions",
    "type",
    "selector",
    "matchLabels",
    "matchExpressions",
    "template",
    "replicas",
    "data",
    "nodeName",
    "phase",
    "taints",
    "$patch",
    "$retainKeys",
    "$setElementOrder/containers",
    "$setElementOrder/finalizers",
    "$deleteFromPrimitiveList/finalizers",
];

const STRINGS: &[&str] = &[
    "",
    "replace",
    "delete",
    "merge",
    "web",
    "nginx:1.27",
    "Always",
    "v1",
    "Pod",
    "ConfigMap",
    "default",
    "Bad_Name",
    "a.b",
    "..",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(KEYS).prop_map(String::from),
        1 => "[a-z$/.]{0,6}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kvs| Value::Object(kvs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object-shaped value: what reaches the strategies after decoding.
fn object() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), json()), 0..8)
        .prop_map(|kvs| Value::Object(kvs.into_iter().collect::<Map<_, _>>()))
}

fn label_key() -> impl Strategy<Value = String> {
    (
        prop::option::of("[a-z]{1,5}(\\.[a-z]{1,4})?"),
        "[a-z0-9]([-a-z0-9_.]{0,8}[a-z0-9])?",
    )
        .prop_map(|(prefix, name)| match prefix {
            Some(p) => format!("{p}/{name}"),
            None => name,
        })
}

fn label_value() -> impl Strategy<Value = String> {
    "([A-Za-z0-9]([-A-Za-z0-9_.]{0,6}[A-Za-z0-9])?)?"
}

/// One valid selector term, written the way a client might.
fn requirement() -> impl Strategy<Value = String> {
    (
        label_key(),
        0..9u8,
        prop::collection::vec(label_value(), 1..4),
        // Gt/Lt values are integers that are also label values: no sign.
        0..i64::MAX,
    )
        .prop_map(|(k, op, values, n)| match op {
            0 => format!("{k}={}", values[0]),
            1 => format!("{k}=={}", values[0]),
            2 => format!("{k}!={}", values[0]),
            3 => format!("{k} in ({})", values.join(",")),
            4 => format!("{k} notin ({})", values.join(", ")),
            5 => k,
            6 => format!("!{k}"),
            7 => format!("{k}>{n}"),
            _ => format!("{k}<{n}"),
        })
}

fn labels() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((label_key(), label_value()), 0..4)
        .prop_map(|kvs| kvs.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
}

fn ctx(namespaced: bool) -> CreateContext<'static> {
    CreateContext {
        namespace: namespaced.then_some("default"),
        now: "2026-01-01T00:00:00Z",
        uid: "00000000-0000-0000-0000-000000000001",
        random_suffix: "bcdfg",
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn strategic_merge_never_panics(original in json(), patch in json()) {
        let _ = strategic_merge(Some("io.k8s.api.core.v1.Pod"), &original, &patch);
    }

    #[test]
    fn strategic_merge_of_objects_never_panics_and_empty_patch_is_identity(
        original in object(),
        patch in object(),
    ) {
        let _ = strategic_merge(Some("io.k8s.api.core.v1.Pod"), &original, &patch);
        let same = strategic_merge(Some("io.k8s.api.core.v1.Pod"), &original, &Value::Object(Map::new())).unwrap();
        prop_assert_eq!(same, original);
    }

    #[test]
    fn label_selector_parsing_never_panics(s in any::<String>(), t in "[a-z0-9=!,()<> ./-]{0,30}|[a-z]+ (in|notin) \\([a-z, ]*\\)?") {
        let _ = LabelSelector::parse(&s);
        if let Ok(sel) = LabelSelector::parse(&t) {
            let shown = sel.to_string();
            let again = LabelSelector::parse(&shown)
                .map_err(|e| TestCaseError::fail(format!("{t:?} printed as {shown:?}, which does not parse: {e}")))?;
            prop_assert_eq!(again.to_string(), shown);
        }
    }

    #[test]
    fn valid_label_selectors_round_trip(
        terms in prop::collection::vec(requirement(), 0..5),
        sets in prop::collection::vec(labels(), 1..4),
    ) {
        let written = terms.join(",");
        let sel = LabelSelector::parse(&written)
            .map_err(|e| TestCaseError::fail(format!("{written:?} is valid but failed: {e}")))?;
        let shown = sel.to_string();
        let again = LabelSelector::parse(&shown)
            .map_err(|e| TestCaseError::fail(format!("{written:?} printed as {shown:?}, which does not parse: {e}")))?;
        prop_assert_eq!(again.to_string(), shown.clone());
        prop_assert_eq!(again.requirements.len(), sel.requirements.len());
        for l in &sets {
            prop_assert_eq!(again.matches(l), sel.matches(l), "{} vs {} on {:?}", written, shown, l);
        }
    }

    #[test]
    fn field_selector_parsing_never_panics_and_round_trips(
        s in any::<String>(),
        t in "((metadata\\.name|spec\\.nodeName|status\\.phase)(=|==|!=)[a-z0-9,=\\\\!-]{0,8},?){0,4}",
    ) {
        let _ = FieldSelector::parse(&s);
        for input in [&s, &t] {
            if let Ok(sel) = FieldSelector::parse(input) {
                let shown = sel.to_string();
                let again = FieldSelector::parse(&shown)
                    .map_err(|e| TestCaseError::fail(format!("{input:?} printed as {shown:?}, which does not parse: {e}")))?;
                // The same terms; their order may differ, as `==` prints as `=` and
                // parsing sorts the written terms.
                let key = |t: &skiff_api::selectors::FieldTerm| (t.field.clone(), t.negated, t.value.clone());
                let mut want: Vec<_> = sel.terms.iter().map(key).collect();
                let mut got: Vec<_> = again.terms.iter().map(key).collect();
                want.sort();
                got.sort();
                prop_assert_eq!(got, want, "{:?} printed as {:?}", input, shown);
            }
        }
    }

    #[test]
    fn prepare_create_never_panics(
        which in 0..RESOURCES.len(),
        mut obj in prop_oneof![1 => json(), 4 => object()],
    ) {
        let res = &RESOURCES[which];
        let _ = strategy::check_field_types(res, &obj);
        if strategy::prepare_create(res, &mut obj, &ctx(res.namespaced)).is_ok() {
            let meta = strategy::meta(&obj).expect("a created object has metadata");
            prop_assert!(meta.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty()));
            prop_assert_eq!(strategy::meta_str(&obj, "uid"), Some(ctx(false).uid));
            prop_assert_eq!(strategy::meta_str(&obj, "namespace"), ctx(res.namespaced).namespace);
        }
    }

    #[test]
    fn prepare_update_never_panics(
        which in 0..RESOURCES.len(),
        status in any::<bool>(),
        mut new in prop_oneof![1 => json(), 4 => object()],
        old in prop_oneof![1 => json(), 4 => object()],
    ) {
        let res = &RESOURCES[which];
        let kind = if status { UpdateKind::Status } else { UpdateKind::Main };
        if strategy::prepare_update(res, &mut new, &old, kind).is_ok() {
            // Server-owned metadata comes from the stored object, whatever the client sent.
            prop_assert_eq!(
                strategy::meta(&new).and_then(|m| m.get("uid")),
                strategy::meta(&old).and_then(|m| m.get("uid"))
            );
        }
    }

    #[test]
    fn prepare_create_accepts_what_it_produced(which in 0..RESOURCES.len(), obj in object()) {
        // A created object, sent back unchanged as an update, is still valid.
        let res = &RESOURCES[which];
        let mut created = obj;
        if strategy::prepare_create(res, &mut created, &ctx(res.namespaced)).is_ok() {
            let mut again = created.clone();
            prop_assert!(strategy::prepare_update(res, &mut again, &created, UpdateKind::Main).is_ok());
        }
    }
}
