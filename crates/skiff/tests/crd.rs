//! CustomResourceDefinitions end to end, with the real kubectl against a real server.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wg]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    additionalPrinterColumns:
    - name: Size
      type: string
      jsonPath: .spec.size
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          metadata:
            type: object
            properties:
              name:
                type: string
                maxLength: 20
          spec:
            type: object
            required: [size]
            properties:
              size:
                type: string
                enum: [S, M, L]
              replicas:
                type: integer
                minimum: 0
                default: 1
              color:
                type: string
                default: blue
              extra:
                type: object
                x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            properties:
              replicas:
                type: integer
              phase:
                type: string
              selector:
                type: string
  - name: v1beta1
    served: true
    storage: false
    deprecated: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

const CRS: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata:
  name: alpha
spec:
  size: M
  unknownField: dropped
  extra:
    anything: {goes: here}
---
apiVersion: example.com/v1beta1
kind: Widget
metadata:
  name: beta
spec:
  size: S
  replicas: 3
"#;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn crd_lifecycle_with_kubectl() {
    let mut s = Server::start();
    let crd = s.manifest("crd.yaml", CRD);
    let out = s.ok(&["apply", "-f", &crd]);
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"),
        "{out}"
    );
    // Served soon after the create (bounded poll; how soon is a benchmark, not a test).
    wait_until("widgets served", || {
        s.kubectl(&[
            "get",
            "--raw",
            "/apis/example.com/v1/namespaces/default/widgets",
        ])
        .status
        .success()
    });
    s.ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=10s",
        "crd/widgets.example.com",
    ]);
    let crd_obj = json(&s.ok(&["get", "crd", "widgets.example.com", "-o", "json"]));
    let conds = crd_obj["status"]["conditions"].as_array().unwrap();
    for (t, r) in [
        ("NamesAccepted", "NoConflicts"),
        ("Established", "InitialNamesAccepted"),
    ] {
        assert!(
            conds
                .iter()
                .any(|c| c["type"] == t && c["status"] == "True" && c["reason"] == r),
            "{conds:?}"
        );
    }
    assert_eq!(
        crd_obj["status"]["storedVersions"],
        serde_json::json!(["v1"])
    );
    assert_eq!(crd_obj["status"]["acceptedNames"]["kind"], "Widget");

    // Discovery and OpenAPI.
    let res = s.ok(&["api-resources", "--api-group=example.com"]);
    assert!(
        res.contains("widgets") && res.contains("wg") && res.contains("example.com/v1"),
        "{res}"
    );
    let versions = s.ok(&["api-versions"]);
    assert!(
        versions.contains("example.com/v1\n") && versions.contains("example.com/v1beta1"),
        "{versions}"
    );
    let doc = json(&s.ok(&["get", "--raw", "/openapi/v3/apis/example.com/v1"]));
    assert!(doc["components"]["schemas"]["com.example.v1.Widget"].is_object());
    let explain = s.ok(&["explain", "widgets.spec.size"]);
    assert!(
        explain.contains("KIND:") && explain.contains("Widget"),
        "{explain}"
    );

    // Create through both versions; defaults applied, unknown fields pruned.
    let crs = s.manifest("crs.yaml", CRS);
    // `--validate=false`: unknown fields are pruned silently (Strict would reject them).
    let out = s.ok(&["create", "--validate=false", "-f", &crs]);
    assert!(
        out.contains("widget.example.com/alpha created")
            && out.contains("widget.example.com/beta created"),
        "{out}"
    );
    // kubectl's default (fieldValidation=Strict) refuses the fields pruning would drop;
    // Warn reports them.
    let strict = s.manifest(
        "strict.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: strict}\nspec: {size: S, bogus: 1}\n",
    );
    let err = s.fails(&["create", "-f", &strict]);
    assert!(
        err.contains("strict decoding error: unknown field \"spec.bogus\""),
        "{err}"
    );
    let out = s.kubectl(&["create", "--validate=warn", "-f", &strict]);
    let warn = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && warn.contains("unknown field \"spec.bogus\""),
        "{warn}"
    );
    s.ok(&["delete", "widget", "strict"]);
    // kubectl patch sends no fieldValidation: the default (Warn) warns and prunes.
    let out = s.kubectl(&[
        "patch",
        "widget",
        "alpha",
        "--type=merge",
        "-p",
        r#"{"spec":{"bogus":1}}"#,
    ]);
    let warn = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && warn.contains("unknown field \"spec.bogus\""),
        "{warn}"
    );
    let raw = s.kubectl(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/widgets/alpha",
    ]);
    assert!(!String::from_utf8_lossy(&raw.stdout).contains("bogus"));
    // Strategic merge patches are for built-in kinds only.
    let err = s.fails(&["patch", "widget", "alpha", "-p", r#"{"spec":{"size":"L"}}"#]);
    assert!(err.contains("application/merge-patch+json"), "{err}");
    let alpha = json(&s.ok(&["get", "widget", "alpha", "-o", "json"]));
    assert_eq!(alpha["apiVersion"], "example.com/v1");
    assert_eq!(alpha["spec"]["replicas"], 1);
    assert_eq!(alpha["spec"]["color"], "blue");
    assert!(alpha["spec"].get("unknownField").is_none(), "{alpha}");
    assert_eq!(alpha["spec"]["extra"]["anything"]["goes"], "here");
    assert_eq!(alpha["metadata"]["generation"], 1);
    // v1beta1 preserves everything; read through v1 applies v1's view of the same object.
    let out = s.kubectl(&["get", "widgets.v1beta1.example.com", "beta", "-o", "json"]);
    let warn = String::from_utf8_lossy(&out.stderr);
    assert!(
        warn.contains("Warning: example.com/v1beta1 Widget is deprecated"),
        "{warn}"
    );
    let beta = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(beta["apiVersion"], "example.com/v1beta1");
    assert_eq!(beta["spec"]["replicas"], 3);
    let beta_v1 = json(&s.ok(&["get", "widgets.v1.example.com", "beta", "-o", "json"]));
    assert_eq!(beta_v1["apiVersion"], "example.com/v1");

    // Printer columns.
    let table = s.ok(&["get", "wg"]);
    let header = table.lines().next().unwrap();
    for col in ["NAME", "SIZE", "REPLICAS", "AGE"] {
        assert!(header.contains(col), "{table}");
    }
    let row = table.lines().find(|l| l.starts_with("alpha")).unwrap();
    assert!(row.contains(" M ") && row.contains(" 1 "), "{table}");

    // Validation: upstream's causes.
    let bad = s.manifest(
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec:\n  size: XL\n  replicas: -2\n",
    );
    let err = s.fails(&["create", "-f", &bad]);
    assert!(
        err.contains("Widget \"bad\" is invalid")
            && err.contains("spec.size: Unsupported value: \"XL\": supported values: \"S\", \"M\", \"L\"")
            && err.contains("spec.replicas: Invalid value: -2: spec.replicas in body should be greater than or equal to 0"),
        "{err}"
    );
    let missing = s.manifest(
        "missing.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: missing}\nspec:\n  replicas: 2\n",
    );
    let err = s.fails(&["create", "-f", &missing]);
    assert!(err.contains("spec.size: Required value"), "{err}");
    let long = s.manifest(
        "long.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a-very-long-widget-name}\nspec: {size: S}\n",
    );
    let err = s.fails(&["create", "-f", &long]);
    assert!(
        err.contains("metadata.name: Too long: may not be more than 20 bytes"),
        "{err}"
    );
    let bad_json = s.manifest(
        "bad.json",
        r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"bad"},"spec":{"size":"XL"}}"#,
    );
    let raw = s.kubectl(&[
        "create",
        "--raw",
        "/apis/example.com/v1/namespaces/default/widgets",
        "-f",
        &bad_json,
        "-v=6",
    ]);
    assert!(!raw.status.success());
    let err = String::from_utf8_lossy(&raw.stderr);
    assert!(err.contains("422 Unprocessable Entity"), "{err}");

    // Scale and status subresources.
    s.ok(&["scale", "widget", "alpha", "--replicas=5"]);
    let alpha = json(&s.ok(&["get", "widget", "alpha", "-o", "json"]));
    assert_eq!(alpha["spec"]["replicas"], 5);
    assert_eq!(alpha["metadata"]["generation"], 2);
    let scale = json(&s.ok(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/widgets/alpha/scale",
    ]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 5);
    s.ok(&[
        "patch",
        "widget",
        "alpha",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":5,"phase":"Ready","selector":"app=w","bogus":1}}"#,
    ]);
    let scale = json(&s.ok(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/widgets/alpha/scale",
    ]));
    assert_eq!(scale["status"]["replicas"], 5);
    assert_eq!(scale["status"]["selector"], "app=w");
    // A main-resource write cannot change status.
    s.ok(&[
        "patch",
        "widget",
        "alpha",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Hacked"},"spec":{"size":"L"}}"#,
    ]);
    let alpha = json(&s.ok(&["get", "widget", "alpha", "-o", "json"]));
    assert_eq!(alpha["status"]["phase"], "Ready");
    assert_eq!(alpha["status"]["replicas"], 5);
    assert!(alpha["status"].get("bogus").is_none());
    assert_eq!(alpha["spec"]["size"], "L");

    // Watch prints rows with the printer columns.
    let mut watch = s.watch(33, &["widgets"]);
    watch.wait_for("a row for alpha", |l| l.starts_with("alpha"));
    let gamma = s.manifest(
        "gamma.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: gamma}\nspec: {size: S, replicas: 7}\n",
    );
    s.ok(&["apply", "--server-side", "-f", &gamma]);
    let row = watch.wait_for("a row for gamma", |l| l.starts_with("gamma"));
    assert_eq!(
        row.split_whitespace().take(3).collect::<Vec<_>>(),
        ["gamma", "S", "7"],
        "printer columns: {row}"
    );
    assert!(
        watch.lines[0].starts_with("NAME") && watch.lines[0].contains("REPLICAS"),
        "{:?}",
        watch.lines
    );
    drop(watch);

    // describe, and the `all` category.
    let described = s.ok(&["describe", "widget", "alpha"]);
    assert!(
        described.contains("Name:") && described.contains("alpha") && described.contains("Size:"),
        "{described}"
    );
    let all = s.ok(&["get", "all", "-o", "name"]);
    assert!(all.contains("widget.example.com/alpha"), "{all}");

    // Selectors, all-namespaces listing and deletecollection work as for built-ins.
    let one = s.ok(&[
        "get",
        "widgets",
        "--field-selector",
        "metadata.name=alpha",
        "-o",
        "name",
    ]);
    assert_eq!(one.trim(), "widget.example.com/alpha");
    s.ok(&["label", "widget", "beta", "tier=back"]);
    let labelled = s.ok(&["get", "widgets", "-l", "tier=back", "-o", "name"]);
    assert_eq!(labelled.trim(), "widget.example.com/beta");
    let all = s.ok(&["get", "widgets", "-A"]);
    assert!(
        all.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all}"
    );
    s.ok(&["create", "namespace", "scratch"]);
    let scratch = s.manifest(
        "scratch.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: s1, namespace: scratch}\nspec: {size: S}\n",
    );
    s.ok(&["create", "-f", &scratch]);
    s.ok(&["delete", "widgets", "--all", "-n", "scratch"]);
    let left = s.ok(&["get", "widgets", "-n", "scratch", "-o", "name"]);
    assert!(left.trim().is_empty(), "{left}");

    // A default added later applies to stored objects when they are read.
    s.ok(&[
        "patch",
        "crd",
        "widgets.example.com",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/mode","value":{"type":"string","default":"auto"}}]"#,
    ]);
    wait_until("the new default on read", || {
        let a = json(&s.ok(&["get", "widget", "alpha", "-o", "json"]));
        a["spec"]["mode"] == "auto"
    });

    // A restart keeps the CRD and its objects, served at once.
    s.restart();
    let names = s.ok(&["get", "widgets", "-o", "name"]);
    for n in [
        "widget.example.com/alpha",
        "widget.example.com/beta",
        "widget.example.com/gamma",
    ] {
        assert!(names.contains(n), "{names}");
    }

    // Deleting the CRD deletes its objects, waiting for their finalizers.
    let held = s.manifest(
        "held.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: held, finalizers: [example.com/hold]}\nspec: {size: S}\n",
    );
    s.ok(&["create", "-f", &held]);
    s.ok(&["delete", "crd", "widgets.example.com", "--wait=false"]);
    wait_until("the held object to be terminating", || {
        let h = json(&s.ok(&["get", "widget", "held", "-o", "json"]));
        h["metadata"]["deletionTimestamp"].is_string()
    });
    let names = s.ok(&["get", "widgets", "-o", "name"]);
    assert_eq!(names.trim(), "widget.example.com/held", "{names}");
    let crd_obj = json(&s.ok(&["get", "crd", "widgets.example.com", "-o", "json"]));
    assert!(
        crd_obj["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Terminating" && c["status"] == "True"),
        "{crd_obj}"
    );
    let err = s.fails(&["apply", "-f", &gamma]);
    assert!(
        err.contains("create not allowed while custom resource definition is terminating"),
        "{err}"
    );
    s.ok(&[
        "patch",
        "widget",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_until("the CRD to be gone", || {
        !s.kubectl(&["get", "crd", "widgets.example.com"])
            .status
            .success()
    });
    let err = s.fails(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/widgets",
    ]);
    assert!(
        err.contains("NotFound") || err.contains("not found") || err.contains("404"),
        "{err}"
    );
    // Recreating it finds no leftovers.
    s.ok(&["apply", "-f", &crd]);
    s.ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=10s",
        "crd/widgets.example.com",
    ]);
    wait_until("widgets served again", || {
        s.kubectl(&["get", "--raw", "/apis/example.com/v1/widgets"])
            .status
            .success()
    });
    let list = json(&s.ok(&["get", "--raw", "/apis/example.com/v1/widgets"]));
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
}

#[test]
fn non_structural_schema_and_name_conflicts() {
    let s = Server::start();
    let bad = s.manifest(
        "bad-crd.yaml",
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            properties:
              size: {type: string}
"#,
    );
    let err = s.fails(&["apply", "-f", &bad]);
    assert!(
        err.contains("CustomResourceDefinition \"gadgets.example.com\" is invalid")
            && err.contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"),
        "{err}"
    );
    let bad_json = s.manifest(
        "bad-crd.json",
        r#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
            "metadata":{"name":"gadgets.example.com"},
            "spec":{"group":"example.com","scope":"Namespaced","names":{"plural":"gadgets","kind":"Gadget"},
              "versions":[{"name":"v1","served":true,"storage":true,
                "schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"properties":{}}}}}}]}}"#,
    );
    let raw = s.kubectl(&[
        "create",
        "--raw",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "-f",
        &bad_json,
        "-v=6",
    ]);
    assert!(!raw.status.success());
    let body = String::from_utf8_lossy(&raw.stderr);
    assert!(body.contains("422 Unprocessable Entity"), "{body}");

    // Two CRDs asking for the same kind in one group: the second is not accepted.
    let mk = |plural: &str| {
        format!(
            r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.example.com
spec:
  group: example.com
  scope: Cluster
  names: {{plural: {plural}, kind: Thing}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"#
        )
    };
    let first = s.manifest("first.yaml", &mk("things"));
    s.ok(&["apply", "-f", &first]);
    s.ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=10s",
        "crd/things.example.com",
    ]);
    let second = s.manifest("second.yaml", &mk("otherthings"));
    s.ok(&["apply", "-f", &second]);
    let conflicted = |v: &Value| {
        v["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter().any(|c| {
                c["type"] == "NamesAccepted"
                    && c["status"] == "False"
                    && c["reason"] == "SingularConflict"
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = s.kubectl(&["get", "crd", "otherthings.example.com", "-o", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if conflicted(&v) {
            break;
        }
        assert!(Instant::now() < deadline, "no conflict reported: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = s.kubectl(&["get", "--raw", "/apis/example.com/v1/otherthings"]);
    assert!(!out.status.success(), "a conflicting CRD is not served");
    s.ok(&["get", "--raw", "/apis/example.com/v1/things"]);
}

#[test]
fn deleting_a_namespace_deletes_its_custom_resources() {
    let s = Server::start();
    let crd = s.manifest("crd.yaml", CRD);
    s.ok(&["apply", "-f", &crd]);
    s.ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=10s",
        "crd/widgets.example.com",
    ]);
    s.ok(&["create", "namespace", "doomed"]);
    let w = s.manifest(
        "w.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: doomed}\nspec: {size: S}\n",
    );
    wait_until("the widget to be created", || {
        s.kubectl(&["create", "-f", &w]).status.success()
    });
    // An older kubectl (OpenAPI-driven validation, older discovery) works with CRs too.
    let old = s.manifest(
        "old.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: old, namespace: doomed}\nspec: {size: M}\n",
    );
    s.ok_v(27, &["apply", "-f", &old]);
    let table = s.ok_v(27, &["get", "widgets", "-n", "doomed"]);
    assert!(table.contains("SIZE") && table.contains("old"), "{table}");
    s.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    wait_until("the namespace and its widget to be gone", || {
        !s.kubectl(&["get", "namespace", "doomed"]).status.success()
    });
    let list = json(&s.ok(&["get", "--raw", "/apis/example.com/v1/widgets"]));
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
}
