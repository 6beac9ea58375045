//! Server-side apply and managedFields against a real `skiff server` with the real kubectl
//! (1.33 and 1.27) and raw requests.

mod common;

use std::process::Command;

use common::Server;
use serde_json::{json, Value};

fn get_json(s: &Server, args: &[&str]) -> Value {
    let mut a = vec!["get", "-o", "json", "--show-managed-fields"];
    a.extend_from_slice(args);
    serde_json::from_str(&s.ok(&a)).unwrap()
}

fn managers(obj: &Value) -> Vec<(String, String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or_default().to_string(),
                        e["operation"].as_str().unwrap_or_default().to_string(),
                        e["subresource"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == manager))
        .unwrap_or_else(|| panic!("no managedFields entry for {manager}: {obj:#}"))
}

fn cm_yaml(name: &str, data: &[(&str, &str)]) -> String {
    let mut y = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n");
    for (k, v) in data {
        y.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    y
}

/// A raw request with the admin certificate: (status code, body).
fn curl(s: &Server, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let pki = s.data_dir().join("pki");
    let out = s.data_dir().join("curl-out");
    let output = Command::new("curl")
        .args(["-sS", "-X", method, "--cacert"])
        .arg(pki.join("ca.crt"))
        .arg("--cert")
        .arg(pki.join("admin.crt"))
        .arg("--key")
        .arg(pki.join("admin.key"))
        .args(["-H", &format!("Content-Type: {content_type}")])
        .args(["--data-binary", body, "-o"])
        .arg(&out)
        .args(["-w", "%{http_code}"])
        .arg(format!("https://127.0.0.1:{}{path}", s.port))
        .output()
        .expect("running curl");
    let code = String::from_utf8_lossy(&output.stdout).parse().unwrap();
    let body = std::fs::read(&out).unwrap_or_default();
    (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn server_side_apply_owns_merges_conflicts_and_prunes() {
    let s = Server::start();

    // Create, then re-apply with a changed field.
    let f = s.manifest("c1.yaml", &cm_yaml("c", &[("key", "a"), ("key2", "x")]));
    let out = s.ok(&["apply", "--server-side", "-f", &f]);
    assert!(out.contains("configmap/c serverside-applied"), "{out}");
    let obj = get_json(&s, &["cm", "c"]);
    assert_eq!(
        managers(&obj),
        vec![("kubectl".into(), "Apply".into(), String::new())]
    );
    let e = entry(&obj, "kubectl");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(e["apiVersion"], "v1");
    assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        e["fieldsV1"],
        json!({"f:data": {"f:key": {}, "f:key2": {}}})
    );

    let f = s.manifest("c2.yaml", &cm_yaml("c", &[("key", "b"), ("key2", "x")]));
    s.ok(&["apply", "--server-side", "-f", &f]);
    assert_eq!(get_json(&s, &["cm", "c"])["data"]["key"], "b");

    // A second manager changing a field kubectl owns: a conflict in upstream's words.
    let f = s.manifest("c3.yaml", &cm_yaml("c", &[("key2", "y")]));
    let err = s.fails(&["apply", "--server-side", "--field-manager=other", "-f", &f]);
    assert!(
        err.contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .data.key2"#),
        "{err}"
    );
    assert_eq!(get_json(&s, &["cm", "c"])["data"]["key2"], "x");

    // Forcing transfers ownership.
    s.ok(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &f,
    ]);
    let obj = get_json(&s, &["cm", "c"]);
    assert_eq!(obj["data"]["key2"], "y");
    assert_eq!(
        entry(&obj, "other")["fieldsV1"],
        json!({"f:data": {"f:key2": {}}})
    );
    assert_eq!(
        entry(&obj, "kubectl")["fieldsV1"],
        json!({"f:data": {"f:key": {}}})
    );

    // A field kubectl stops applying goes; one another manager owns stays.
    let f = s.manifest("c4.yaml", &cm_yaml("c", &[("key3", "z")]));
    s.ok(&["apply", "--server-side", "-f", &f]);
    let obj = get_json(&s, &["cm", "c"]);
    assert_eq!(obj["data"], json!({"key2": "y", "key3": "z"}));

    // Fields the schema does not declare are refused, as upstream's typed conversion does.
    let f = s.manifest(
        "bad.yaml",
        &format!("{}foo: bar\n", cm_yaml("bad", &[("a", "1")])),
    );
    let err = s.fails(&["apply", "--server-side", "-f", &f]);
    assert!(err.contains(".foo: field not declared in schema"), "{err}");
    s.fails(&["get", "cm", "bad"]);

    // managedFields are hidden unless asked for.
    let plain: Value = serde_json::from_str(&s.ok(&["get", "cm", "c", "-o", "json"])).unwrap();
    assert!(plain["metadata"].get("managedFields").is_none());
    let yaml = s.ok(&["get", "cm", "c", "-o", "yaml", "--show-managed-fields"]);
    assert!(yaml.contains("manager: other"), "{yaml}");

    // kubectl 1.27 applies server-side too. (Its client-side validation needs
    // /openapi/v2, which is not served.)
    let f = s.manifest("c5.yaml", &cm_yaml("old", &[("a", "1")]));
    let out = s.ok_v(
        27,
        &["apply", "--server-side", "--validate=false", "-f", &f],
    );
    assert!(out.contains("serverside-applied"), "{out}");
    let f = s.manifest("c6.yaml", &cm_yaml("old", &[("a", "2")]));
    s.ok_v(
        27,
        &["apply", "--server-side", "--validate=false", "-f", &f],
    );
    assert_eq!(get_json(&s, &["cm", "old"])["data"], json!({"a": "2"}));
}

#[test]
fn updates_are_tracked_and_client_side_apply_migrates() {
    let s = Server::start();

    // Every write records its manager.
    s.ok(&["create", "configmap", "made", "--from-literal=a=b"]);
    let obj = get_json(&s, &["cm", "made"]);
    assert_eq!(
        managers(&obj),
        vec![("kubectl-create".into(), "Update".into(), String::new())]
    );
    assert_eq!(
        entry(&obj, "kubectl-create")["fieldsV1"],
        json!({"f:data": {".": {}, "f:a": {}}})
    );
    s.ok(&["label", "cm", "made", "x=y"]);
    let obj = get_json(&s, &["cm", "made"]);
    assert_eq!(
        entry(&obj, "kubectl-label")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:x": {}}}})
    );

    // Client-side apply, then another manager: the conflict names the client-side applier.
    let f = s.manifest("csa.yaml", &cm_yaml("csa", &[("key", "a"), ("gone", "1")]));
    s.ok(&["apply", "-f", &f]);
    let f2 = s.manifest("ssa-other.yaml", &cm_yaml("csa", &[("key", "b")]));
    let err = s.fails(&["apply", "--server-side", "--field-manager=other", "-f", &f2]);
    assert!(
        err.contains(
            r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.key"#
        ),
        "{err}"
    );

    // `kubectl apply --server-side` after `kubectl apply`: no conflict, and kubectl moves
    // client-side apply's fields to its apply entry, so a later apply can drop them.
    let f3 = s.manifest("ssa.yaml", &cm_yaml("csa", &[("key", "c")]));
    s.ok(&["apply", "--server-side", "-f", &f3]);
    let obj = get_json(&s, &["cm", "csa"]);
    assert_eq!(obj["data"]["key"], "c");
    assert!(
        !managers(&obj)
            .iter()
            .any(|(m, _, _)| m == "kubectl-client-side-apply"),
        "{:?}",
        managers(&obj)
    );
    s.ok(&["apply", "--server-side", "-f", &f3]);
    let obj = get_json(&s, &["cm", "csa"]);
    assert_eq!(obj["data"], json!({"key": "c"}));
}

#[test]
fn deployments_merge_containers_by_name() {
    let s = Server::start();
    let d1 = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox
";
    let f = s.manifest("d1.yaml", d1);
    s.ok(&["apply", "--server-side", "-f", &f]);
    let obj = get_json(&s, &["deployment", "web"]);
    let fields = entry(&obj, "kubectl")["fieldsV1"].to_string();
    assert!(fields.contains(r#""k:{\"name\":\"web\"}""#), "{fields}");
    assert!(
        fields.contains(r#""k:{\"containerPort\":80,\"protocol\":\"TCP\"}""#),
        "{fields}"
    );

    // Another manager edits the image: kubectl's next apply of it conflicts.
    s.ok(&["set", "image", "deployment/web", "web=nginx:2"]);
    let d2 = d1.replace("nginx:1", "nginx:3");
    let f = s.manifest("d2.yaml", &d2);
    let err = s.fails(&["apply", "--server-side", "-f", &f]);
    assert!(
        err.contains(r#"conflict with "kubectl-set" using apps/v1: .spec.template.spec.containers[name="web"].image"#),
        "{err}"
    );
    // Dropping the sidecar removes it; the web container keeps its fields.
    let d3 = d1
        .replace("nginx:1", "nginx:2")
        .replace("      - name: sidecar\n        image: busybox\n", "");
    let f = s.manifest("d3.yaml", &d3);
    s.ok(&["apply", "--server-side", "-f", &f]);
    let obj = get_json(&s, &["deployment", "web"]);
    let containers = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0]["image"], "nginx:2");
    assert_eq!(containers[0]["ports"][0]["containerPort"], 80);

    // kubectl scale records a scale-subresource manager.
    s.ok(&["scale", "deployment/web", "--replicas=3"]);
    let obj = get_json(&s, &["deployment", "web"]);
    assert_eq!(obj["spec"]["replicas"], 3);
    assert!(
        managers(&obj)
            .iter()
            .any(|(_, op, sub)| op == "Update" && sub == "scale"),
        "{:?}",
        managers(&obj)
    );
}

#[test]
fn raw_apply_requests() {
    // The Deployment below stands for any object with /status and /scale: its controller
    // would take part in the ownership this test checks, so it does not run here.
    let s = Server::start_with(&["--controllers", "*,-deployment"]);
    let base = "/api/v1/namespaces/default/configmaps/raw";
    let body =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"raw"},"data":{"a":"1"}}"#;

    // No fieldManager: 422 on PatchOptions.
    let (code, st) = curl(&s, "PATCH", base, "application/apply-patch+yaml", body);
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["details"]["causes"][0]["field"], "fieldManager");

    // A wrong kind: 400.
    let wrong = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"raw"}}"#;
    let (code, st) = curl(
        &s,
        "PATCH",
        &format!("{base}?fieldManager=m"),
        "application/apply-patch+yaml",
        wrong,
    );
    assert_eq!(code, 400, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("invalid object type"),
        "{st}"
    );

    // force on a non-apply patch: 422.
    let (code, _) = curl(
        &s,
        "PATCH",
        &format!("{base}?force=true"),
        "application/merge-patch+json",
        "{}",
    );
    assert_eq!(code, 422);

    // Create-on-apply answers 201, with a YAML body; re-apply answers 200.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: raw\ndata:\n  a: \"1\"\n";
    let (code, obj) = curl(
        &s,
        "PATCH",
        &format!("{base}?fieldManager=m"),
        "application/apply-patch+yaml",
        yaml,
    );
    assert_eq!(code, 201, "{obj}");
    assert_eq!(obj["metadata"]["managedFields"][0]["manager"], "m");
    let (code, obj) = curl(
        &s,
        "PATCH",
        &format!("{base}?fieldManager=m"),
        "application/apply-patch+yaml",
        body,
    );
    assert_eq!(code, 200, "{obj}");

    // Conflict: 409 with FieldManagerConflict causes.
    let other =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"raw"},"data":{"a":"2"}}"#;
    let (code, st) = curl(
        &s,
        "PATCH",
        &format!("{base}?fieldManager=n"),
        "application/apply-patch+yaml",
        other,
    );
    assert_eq!(code, 409, "{st}");
    assert_eq!(st["reason"], "Conflict");
    assert_eq!(
        st["message"],
        r#"Apply failed with 1 conflict: conflict with "m": .data.a"#
    );
    assert_eq!(
        st["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"m\"", "field": ".data.a"}])
    );

    // kubectl's migration step: a JSON patch of managedFields guarded by resourceVersion.
    let (_, cur) = curl(&s, "GET", base, "application/json", "");
    let rv = cur["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut mf = cur["metadata"]["managedFields"].clone();
    mf[0]["manager"] = json!("renamed");
    let patch = json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/metadata/managedFields", "value": mf},
    ]);
    let (code, obj) = curl(
        &s,
        "PATCH",
        base,
        "application/json-patch+json",
        &patch.to_string(),
    );
    assert_eq!(code, 200, "{obj}");
    assert_eq!(obj["metadata"]["managedFields"][0]["manager"], "renamed");
    let (code, _) = curl(
        &s,
        "PATCH",
        base,
        "application/json-patch+json",
        &patch.to_string(),
    );
    assert_eq!(code, 422, "a stale resourceVersion test fails");

    // Status and scale subresources.
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    let dpath = "/apis/apps/v1/namespaces/default/deployments/d";
    let (code, _) = curl(
        &s,
        "PATCH",
        &format!("{dpath}?fieldManager=owner"),
        "application/apply-patch+yaml",
        &dep.to_string(),
    );
    assert_eq!(code, 201);
    let scale = r#"{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"d"},"spec":{"replicas":4}}"#;
    let (code, st) = curl(
        &s,
        "PATCH",
        &format!("{dpath}/scale?fieldManager=scaler"),
        "application/apply-patch+yaml",
        scale,
    );
    assert_eq!(code, 409, "{st}");
    assert_eq!(
        st["message"],
        r#"Apply failed with 1 conflict: conflict with "owner": .spec.replicas"#
    );
    let (code, sc) = curl(
        &s,
        "PATCH",
        &format!("{dpath}/scale?fieldManager=scaler&force=true"),
        "application/apply-patch+yaml",
        scale,
    );
    assert_eq!(code, 200, "{sc}");
    assert_eq!(sc["kind"], "Scale");
    assert_eq!(sc["spec"]["replicas"], 4);
    let status = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"status":{"observedGeneration":7}}"#;
    let (code, obj) = curl(
        &s,
        "PATCH",
        &format!("{dpath}/status?fieldManager=ctrl"),
        "application/apply-patch+yaml",
        status,
    );
    assert_eq!(code, 200, "{obj}");
    assert_eq!(obj["spec"]["replicas"], 4);
    let mf = obj["metadata"]["managedFields"].as_array().unwrap();
    let scaler = mf.iter().find(|e| e["manager"] == "scaler").unwrap();
    assert_eq!(scaler["subresource"], "scale");
    assert_eq!(scaler["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    let ctrl = mf.iter().find(|e| e["manager"] == "ctrl").unwrap();
    assert_eq!(ctrl["subresource"], "status");
    assert_eq!(ctrl["operation"], "Apply");
    let owner = mf.iter().find(|e| e["manager"] == "owner").unwrap();
    assert!(
        !owner["fieldsV1"].to_string().contains("replicas"),
        "{owner}"
    );
}

const GIZMO_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  properties:
                    name: {type: string}
                    port: {type: integer}
              tags:
                type: array
                items: {type: string}
"#;

#[test]
fn custom_resources_follow_their_schema_list_types() {
    let s = Server::start();
    let crd = s.manifest("crd.yaml", GIZMO_CRD);
    s.ok(&["apply", "--server-side", "-f", &crd]);
    s.ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=10s",
        "crd/gizmos.example.com",
    ]);
    let a = "apiVersion: example.com/v1
kind: Gizmo
metadata:
  name: g
spec:
  ports:
  - name: http
    port: 80
  tags: [a]
";
    let b = "apiVersion: example.com/v1
kind: Gizmo
metadata:
  name: g
spec:
  ports:
  - name: metrics
    port: 9090
";
    let fa = s.manifest("a.yaml", a);
    let fb = s.manifest("b.yaml", b);
    s.ok(&["apply", "--server-side", "--field-manager=a", "-f", &fa]);
    s.ok(&["apply", "--server-side", "--field-manager=b", "-f", &fb]);
    // A map list merges by key: both managers' items are there.
    let obj = get_json(&s, &["gizmo", "g"]);
    let names: Vec<&str> = obj["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["http", "metrics"], "{obj:#}");
    assert_eq!(
        entry(&obj, "b")["fieldsV1"],
        json!({"f:spec": {"f:ports": {"k:{\"name\":\"metrics\"}": {".": {}, "f:name": {}, "f:port": {}}}}})
    );
    // An atomic list conflicts as a whole.
    let c = format!("{b}  tags: [b]\n");
    let fc = s.manifest("c.yaml", &c);
    let err = s.fails(&["apply", "--server-side", "--field-manager=b", "-f", &fc]);
    assert!(err.contains(r#"conflict with "a": .spec.tags"#), "{err}");
}

/// An apply to a custom resource's /scale lands at the CRD's `specReplicasPath`, owned by
/// the applier with subresource `scale`.
#[test]
fn apply_to_custom_scale_uses_the_replicas_path() {
    let s = Server::start();
    let crd = s.manifest(
        "crd.yaml",
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: pools.example.com}
spec:
  group: example.com
  names: {kind: Pool, plural: pools, singular: pool}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      scale: {specReplicasPath: .spec.size, statusReplicasPath: .status.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}, flavour: {type: string}}}
          status: {type: object, properties: {size: {type: integer}}}
"#,
    );
    s.ok(&["apply", "-f", &crd]);
    common::eventually("pools served", || {
        s.kubectl(&["get", "pools"]).status.success()
    });
    let path = "/apis/example.com/v1/namespaces/default/pools/p";
    let pool = r#"{"apiVersion":"example.com/v1","kind":"Pool","metadata":{"name":"p"},"spec":{"size":1,"flavour":"small"}}"#;
    let (code, _) = curl(
        &s,
        "PATCH",
        &format!("{path}?fieldManager=owner"),
        "application/apply-patch+yaml",
        pool,
    );
    assert_eq!(code, 201);
    let scale = r#"{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"p"},"spec":{"replicas":5}}"#;
    let (code, st) = curl(
        &s,
        "PATCH",
        &format!("{path}/scale?fieldManager=hpa"),
        "application/apply-patch+yaml",
        scale,
    );
    assert_eq!(code, 409, "{st}");
    assert_eq!(
        st["message"],
        r#"Apply failed with 1 conflict: conflict with "owner": .spec.size"#
    );
    let (code, sc) = curl(
        &s,
        "PATCH",
        &format!("{path}/scale?fieldManager=hpa&force=true"),
        "application/apply-patch+yaml",
        scale,
    );
    assert_eq!(code, 200, "{sc}");
    assert_eq!(sc["kind"], "Scale");
    assert_eq!(sc["spec"]["replicas"], 5);
    let obj: Value =
        serde_json::from_str(&s.ok(&["get", "pool", "p", "-o", "json", "--show-managed-fields"]))
            .unwrap();
    assert_eq!(obj["spec"], json!({"size": 5, "flavour": "small"}));
    assert!(obj["spec"].get("replicas").is_none());
    let mf = obj["metadata"]["managedFields"].as_array().unwrap();
    let hpa = mf.iter().find(|e| e["manager"] == "hpa").unwrap();
    assert_eq!(hpa["subresource"], "scale");
    assert_eq!(hpa["fieldsV1"], json!({"f:spec": {"f:size": {}}}));
    let owner = mf.iter().find(|e| e["manager"] == "owner").unwrap();
    assert_eq!(owner["fieldsV1"]["f:spec"], json!({"f:flavour": {}}));
}
