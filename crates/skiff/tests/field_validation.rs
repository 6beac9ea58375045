//! `fieldValidation` (Ignore, Warn, Strict) and `dryRun=All` for every write verb, and
//! `kubectl diff`, with the real kubectl against a real `skiff server`.

mod common;

use common::Server;
use serde_json::Value;

const DEPLOYMENT_WITH_UNKNOWN: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: NAME
spec:
  foo: 1
  replicas: 1
  selector:
    matchLabels: {app: NAME}
  template:
    metadata:
      labels: {app: NAME}
    spec:
      containers:
      - name: main
        image: nginx:1.27
        bogus: true
"#;

fn deployment(name: &str) -> String {
    DEPLOYMENT_WITH_UNKNOWN.replace("NAME", name)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn get_json(s: &Server, args: &[&str]) -> Value {
    let mut a = vec!["get", "-o", "json"];
    a.extend_from_slice(args);
    serde_json::from_str(&s.ok(&a)).unwrap()
}

#[test]
fn strict_warn_and_ignore_for_creates_updates_and_patches() {
    let s = Server::start();

    // kubectl's default --validate=strict: a 400 with upstream's strict decoding error.
    let f = s.manifest("strict.yaml", &deployment("strict"));
    let err = s.fails(&["create", "-f", &f]);
    assert!(
        err.contains(r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.foo", unknown field "spec.template.spec.containers[0].bogus""#),
        "{err}"
    );
    assert!(err.contains("BadRequest"), "{err}");
    s.fails(&["get", "deployment", "strict"]);

    // Warn: created, kubectl prints the server's warnings, unknown fields are dropped.
    let f = s.manifest("warn.yaml", &deployment("warn"));
    let out = s.kubectl(&["create", "--validate=warn", "-f", &f]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains(r#"Warning: unknown field "spec.foo""#), "{e}");
    assert!(
        e.contains(r#"Warning: unknown field "spec.template.spec.containers[0].bogus""#),
        "{e}"
    );
    let d = get_json(&s, &["deployment", "warn"]);
    assert!(d["spec"].get("foo").is_none(), "{d}");
    assert!(d["spec"]["template"]["spec"]["containers"][0]
        .get("bogus")
        .is_none());

    // Ignore: created silently, unknown fields dropped.
    let f = s.manifest("ignore.yaml", &deployment("ignore"));
    let out = s.kubectl(&["create", "--validate=false", "-f", &f]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Warning"), "{}", stderr(&out));
    assert!(get_json(&s, &["deployment", "ignore"])["spec"]
        .get("foo")
        .is_none());

    // Update (replace) follows the same rules.
    let f = s.manifest("warn2.yaml", &deployment("warn"));
    let err = s.fails(&["replace", "-f", &f]);
    assert!(
        err.contains(r#"strict decoding error: unknown field "spec.foo""#),
        "{err}"
    );
    let out = s.kubectl(&["replace", "--validate=warn", "-f", &f]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(r#"Warning: unknown field "spec.foo""#));

    // Patches (kubectl apply on an existing object sends a strategic merge patch with
    // the directive): unknown fields of the patched object.
    let plain = |replicas: u32, extra: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: applied\nspec:\n  replicas: {replicas}\n{extra}  selector:\n    matchLabels: {{app: a}}\n  template:\n    metadata:\n      labels: {{app: a}}\n    spec:\n      containers:\n      - name: main\n        image: nginx:1.27\n"
        )
    };
    s.ok(&["apply", "-f", &s.manifest("applied.yaml", &plain(1, ""))]);
    let f = s.manifest("applied2.yaml", &plain(3, "  nope: 1\n"));
    let err = s.fails(&["apply", "-f", &f]);
    assert!(
        err.contains(r#"strict decoding error: unknown field "spec.nope""#),
        "{err}"
    );
    assert_eq!(
        get_json(&s, &["deployment", "applied"])["spec"]["replicas"],
        1
    );
    let out = s.kubectl(&["apply", "--validate=warn", "-f", &f]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(r#"Warning: unknown field "spec.nope""#),
        "{}",
        stderr(&out)
    );
    let d = get_json(&s, &["deployment", "applied"]);
    assert_eq!(d["spec"]["replicas"], 3);
    assert!(d["spec"].get("nope").is_none());

    // Duplicate fields in a raw JSON body: Strict refuses, Warn warns (the last one wins).
    let dup = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup"},"data":{"a":"1","a":"2"},"extra":1}"#;
    let f = s.manifest("dup.json", dup);
    let out = s.kubectl(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
        "-f",
        &f,
    ]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains(r#"ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: duplicate field \"metadata.name\", duplicate field \"data.a\", unknown field \"extra\""#)
            || e.contains(r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.name", duplicate field "data.a", unknown field "extra""#),
        "{e}"
    );
    // No parameter means Warn, as upstream.
    let out = s.kubectl(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        &f,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains(r#"Warning: duplicate field "metadata.name""#),
        "{e}"
    );
    assert!(e.contains(r#"Warning: unknown field "extra""#), "{e}");
    assert_eq!(get_json(&s, &["configmap", "dup"])["data"]["a"], "2");
}

#[test]
fn dry_run_runs_every_verb_and_persists_nothing() {
    let s = Server::start();
    let cm = |name: &str, v: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{set: dry}}\ndata:\n  k: {v}\n")
    };
    let f = s.manifest("a.yaml", &cm("a", "one"));
    s.ok(&["create", "-f", &f]);
    let rv = get_json(&s, &["configmap", "a"])["metadata"]["resourceVersion"].clone();

    // create: validated and admitted, not stored; an existing name is still a conflict.
    let f2 = s.manifest("b.yaml", &cm("b", "two"));
    let out = s.ok(&["create", "--dry-run=server", "-f", &f2, "-o", "json"]);
    let b: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(b["metadata"]["name"], "b");
    assert!(b["metadata"]["uid"].is_string(), "{b}");
    s.fails(&["get", "configmap", "b"]);
    let err = s.fails(&["create", "--dry-run=server", "-f", &f]);
    assert!(err.contains("AlreadyExists"), "{err}");
    let err = s.fails(&["create", "--dry-run=server", "-n", "nowhere", "-f", &f2]);
    assert!(err.contains("NotFound"), "{err}");
    let err = s.fails(&[
        "create",
        "configmap",
        "Bad_Name",
        "--dry-run=server",
        "--from-literal=a=b",
    ]);
    assert!(err.contains("Invalid"), "{err}");

    // update (replace), patch, label: the answer shows the change, the store does not.
    let f3 = s.manifest("a2.yaml", &cm("a", "changed"));
    let out = s.ok(&["replace", "--dry-run=server", "-f", &f3, "-o", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["data"]["k"],
        "changed"
    );
    let out = s.ok(&[
        "patch",
        "configmap",
        "a",
        "--dry-run=server",
        "-p",
        r#"{"data":{"k":"patched"}}"#,
        "-o",
        "json",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["data"]["k"],
        "patched"
    );
    s.ok(&["label", "configmap", "a", "x=y", "--dry-run=server"]);
    let a = get_json(&s, &["configmap", "a"]);
    assert_eq!(a["data"]["k"], "one");
    assert!(a["metadata"]["labels"].get("x").is_none());
    assert_eq!(a["metadata"]["resourceVersion"], rv);

    // server-side apply: create-on-apply and an apply to an existing object.
    let out = s.ok(&["apply", "--server-side", "--dry-run=server", "-f", &f2]);
    assert!(out.contains("serverside-applied (server dry run)"), "{out}");
    s.fails(&["get", "configmap", "b"]);
    s.ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
        "-f",
        &f3,
    ]);
    assert_eq!(get_json(&s, &["configmap", "a"])["data"]["k"], "one");

    // delete and deletecollection.
    let out = s.ok(&["delete", "configmap", "a", "--dry-run=server"]);
    assert!(out.contains("deleted (server dry run)"), "{out}");
    let out = s.ok(&[
        "delete",
        "--raw",
        "/api/v1/namespaces/default/configmaps?dryRun=All&labelSelector=set%3Ddry",
    ]);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let a = get_json(&s, &["configmap", "a"]);
    assert_eq!(a["metadata"]["resourceVersion"], rv);
    assert!(a["metadata"].get("deletionTimestamp").is_none());
    // A namespace being dry-run deleted is not terminating.
    s.ok(&["create", "namespace", "keep"]);
    s.ok(&["delete", "namespace", "keep", "--dry-run=server"]);
    let ns = get_json(&s, &["namespace", "keep"]);
    assert_eq!(ns["status"]["phase"], "Active", "{ns}");
}

#[test]
fn kubectl_diff_shows_server_side_changes() {
    let s = Server::start();
    let dep = |replicas: u32, image: &str| {
        format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: main
        image: {image}
"#
        )
    };
    // Not there yet: the whole object is new.
    let f = s.manifest("web.yaml", &dep(1, "nginx:1.27"));
    let out = s.kubectl(&["diff", "-f", &f]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("+  name: web"), "{text}");
    s.fails(&["get", "deployment", "web"]);

    s.ok(&["apply", "-f", &f]);
    let out = s.kubectl(&["diff", "-f", &f]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );

    let f = s.manifest("web2.yaml", &dep(3, "nginx:1.28"));
    let out = s.kubectl(&["diff", "-f", &f]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("-  replicas: 1"), "{text}");
    assert!(text.contains("+  replicas: 3"), "{text}");
    assert!(text.contains("image: nginx:1.28"), "{text}");
    // diff changed nothing.
    let d = get_json(&s, &["deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 1);
}
