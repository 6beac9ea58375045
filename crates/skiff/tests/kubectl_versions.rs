//! Every supported kubectl (1.27 … 1.33) runs the same acceptance script against its own
//! `skiff server`: the operations of `tests/kubectl.rs` (manifests, get in every output
//! form, label/annotate/patch/apply/replace/edit/scale/delete, watch) plus typed creates
//! (`create deployment|secret generic|namespace|configmap`: JSON bodies up to 1.31,
//! protobuf from 1.32), `auth can-i`, `explain`, `diff`, field validation and server-side
//! apply. One test per minor so they run in parallel.

mod common;

use std::process::Command;

use common::Server;
use serde_json::Value;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: web}
data:
  color: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 80
"#;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn script(minor: u32) {
    let s = Server::start();
    let ok = |args: &[&str]| s.ok_v(minor, args);
    let run = |args: &[&str]| s.kubectl_v(minor, args);
    let fails = |args: &[&str]| {
        let out = run(args);
        assert!(
            !out.status.success(),
            "kubectl 1.{minor} {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let get = |args: &[&str]| {
        let mut a = vec!["get", "-o", "json"];
        a.extend_from_slice(args);
        json(&ok(&a))
    };

    // Discovery.
    let table = ok(&["api-resources"]);
    assert!(
        table.contains("deployments") && table.contains("apps/v1"),
        "{table}"
    );
    ok(&["get", "all", "-A"]);

    // Manifests: create, conflict on re-create, get in several forms.
    let file = s.manifest("all.yaml", MANIFESTS);
    let out = ok(&["create", "-f", &file]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let err = fails(&["create", "-f", &file]);
    assert!(err.contains("already exists"), "{err}");
    let t = ok(&["get", "deploy,svc,cm"]);
    assert!(
        t.contains("deployment.apps/web") && t.contains("service/web"),
        "{t}"
    );
    let header = ok(&["get", "cm", "settings"]);
    assert!(
        header.starts_with("NAME") && header.contains("DATA"),
        "{header}"
    );
    assert!(ok(&["get", "cm", "settings", "-o", "yaml"]).contains("color: blue"));
    assert_eq!(
        ok(&["get", "cm", "settings", "-o", "jsonpath={.data.color}"]),
        "blue"
    );
    ok(&["create", "configmap", "other", "--from-literal=a=b"]);
    ok(&["label", "cm", "other", "app=web"]);
    assert_eq!(
        ok(&["get", "cm", "-l", "app=web", "--chunk-size=1", "-o", "name"]),
        "configmap/other\nconfigmap/settings\n"
    );

    // Label, annotate, patches of every type.
    ok(&["label", "cm", "settings", "env=prod"]);
    ok(&["annotate", "cm", "settings", "owner=team"]);
    ok(&[
        "patch",
        "cm",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"size":"L"}}"#,
    ]);
    ok(&[
        "patch",
        "cm",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/data/color","value":"teal"}]"#,
    ]);
    ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}"#,
    ]);
    let cm = get(&["cm", "settings"]);
    assert_eq!(cm["metadata"]["labels"]["env"], "prod");
    assert_eq!(cm["metadata"]["annotations"]["owner"], "team");
    assert_eq!(cm["data"]["size"], "L");
    assert_eq!(cm["data"]["color"], "teal");
    let dep = get(&["deploy", "web"]);
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.28");
    assert_eq!(c["ports"][0]["containerPort"], 80);

    // Client-side apply, replace with optimistic concurrency, edit, scale.
    let applied = MANIFESTS.replace("replicas: 2", "replicas: 3");
    let file2 = s.manifest("applied.yaml", &applied);
    let out = ok(&["apply", "-f", &file2]);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert_eq!(get(&["deploy", "web"])["spec"]["replicas"], 3);
    let mut cm = get(&["cm", "settings"]);
    cm["data"]["color"] = "red".into();
    let cm_file = s.manifest("cm.json", &cm.to_string());
    ok(&["replace", "-f", &cm_file]);
    let err = fails(&["replace", "-f", &cm_file]);
    assert!(err.contains("the object has been modified"), "{err}");
    let editor = s.manifest(
        "editor.sh",
        "#!/bin/sh\nsed -i 's/color: red/color: violet/' \"$1\"\n",
    );
    Command::new("chmod")
        .args(["+x", &editor])
        .status()
        .unwrap();
    let out = Command::new(common::kubectl_bin(minor))
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .args(["edit", "cm", "settings"])
        .env("KUBE_EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl 1.{minor} edit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(get(&["cm", "settings"])["data"]["color"], "violet");
    assert!(ok(&["scale", "deploy", "web", "--replicas=5"]).contains("scaled"));
    assert_eq!(get(&["deploy", "web"])["spec"]["replicas"], 5);

    // Typed creates (protobuf bodies from 1.32 on).
    ok(&["create", "namespace", "team"]);
    ok(&[
        "create",
        "deployment",
        "api",
        "-n",
        "team",
        "--image=nginx:1.27",
        "--replicas=2",
    ]);
    ok(&[
        "create",
        "secret",
        "generic",
        "pw",
        "-n",
        "team",
        "--from-literal=p=q",
    ]);
    ok(&[
        "create",
        "configmap",
        "cfg",
        "-n",
        "team",
        "--from-literal=k=v",
    ]);
    let d = get(&["deploy", "api", "-n", "team"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(get(&["secret", "pw", "-n", "team"])["data"]["p"], "cQ==");

    // auth can-i answers (authorization itself comes later).
    assert_eq!(ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");

    // explain (1.27/1.28 load /openapi/v2 first, then read OpenAPI v3).
    let out = ok(&["explain", "deployment.spec.replicas"]);
    assert!(
        out.contains("replicas") && out.contains("integer"),
        "kubectl 1.{minor} explain: {out}"
    );
    let out = ok(&["explain", "pods", "--recursive"]);
    assert!(out.contains("containers"), "{out}");

    // diff: exit 1 with a unified diff of the server-side dry run; the store is unchanged.
    let file3 = s.manifest(
        "diff.yaml",
        &MANIFESTS.replace("replicas: 2", "replicas: 7"),
    );
    let out = run(&["diff", "-f", &file3]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "kubectl 1.{minor} diff: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("+  replicas: 7"), "{text}");
    assert_eq!(get(&["deploy", "web"])["spec"]["replicas"], 5);

    // Field validation: kubectl's default --validate=strict reaches the server.
    let bad = s.manifest(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata: {a: b}\nbogus: 1\n",
    );
    let err = fails(&["create", "-f", &bad]);
    assert!(
        err.contains(r#"strict decoding error: unknown field "bogus""#),
        "kubectl 1.{minor}: {err}"
    );
    let out = run(&["create", "--validate=warn", "-f", &bad]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"unknown field "bogus""#));

    // Server-side apply, with a conflict against the client-side manager.
    let ssa = s.manifest(
        "ssa.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: one\n",
    );
    let out = ok(&["apply", "--server-side", "-f", &ssa]);
    assert!(out.contains("serverside-applied"), "{out}");
    let cm = get(&["cm", "ssa", "--show-managed-fields"]);
    assert_eq!(cm["data"]["a"], "one");
    assert!(
        cm["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|m| m.iter().any(|e| e["operation"] == "Apply")),
        "{cm}"
    );
    ok(&["patch", "cm", "ssa", "-p", r#"{"data":{"a":"two"}}"#]);
    let err = fails(&["apply", "--server-side", "-f", &ssa]);
    assert!(err.contains("conflict"), "kubectl 1.{minor}: {err}");
    ok(&["apply", "--server-side", "--force-conflicts", "-f", &ssa]);
    assert_eq!(get(&["cm", "ssa"])["data"]["a"], "one");

    // Watch prints rows as objects arrive.
    let mut watch = s.watch(minor, &["configmaps"]);
    watch.wait_for_text("settings");
    s.create_cm("during", &[("a", "b")]);
    watch.wait_for_text("during");
    drop(watch);

    // Delete.
    let out = ok(&["delete", "-f", &file2]);
    assert!(out.contains("\"settings\" deleted"), "{out}");
    let left = ok(&["get", "cm,deploy,svc", "-o", "name"]);
    assert!(
        !left.contains("settings") && !left.contains("/web"),
        "{left}"
    );
    ok(&["delete", "namespace", "team"]);
}

macro_rules! versions {
    ($($name:ident = $minor:expr),* $(,)?) => {
        $(#[test] fn $name() { script($minor); })*
    };
}

versions! {
    kubectl_1_27 = 27,
    kubectl_1_28 = 28,
    kubectl_1_29 = 29,
    kubectl_1_30 = 30,
    kubectl_1_31 = 31,
    kubectl_1_32 = 32,
    kubectl_1_33 = 33,
}
