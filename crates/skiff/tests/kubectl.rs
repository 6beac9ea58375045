//! Real kubectl (1.33 and 1.32) against a real `skiff server` process.

mod common;

use std::process::Command;

use common::Server;
use serde_json::Value;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: web, tier: front}
data:
  color: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
type: Opaque
stringData:
  password: hunter2
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  labels: {app: web}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
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
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
"#;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn api_resources_and_get_every_resource() {
    let s = Server::start();
    let table = s.ok(&["api-resources"]);
    for line in [
        "pods  ",
        "deployments",
        "apps/v1",
        "customresourcedefinitions",
        "leases",
    ] {
        assert!(
            table.contains(line),
            "api-resources lacks {line:?}:\n{table}"
        );
    }
    let pods_line = table.lines().find(|l| l.starts_with("pods ")).unwrap();
    assert!(
        pods_line.contains(" po ") && pods_line.contains("true") && pods_line.contains("Pod"),
        "{pods_line}"
    );

    let names = s.ok(&["api-resources", "--verbs=list", "-o", "name"]);
    let names: Vec<&str> = names.lines().collect();
    assert!(
        names.len() > 40,
        "expected every built-in list resource, got {names:?}"
    );
    for name in names {
        s.ok(&["get", name, "-A"]);
    }
    let ns = s.ok(&["get", "namespaces", "-o", "name"]);
    for want in [
        "namespace/default",
        "namespace/kube-system",
        "namespace/kube-public",
        "namespace/kube-node-lease",
    ] {
        assert!(ns.contains(want), "{ns}");
    }
}

#[test]
fn create_apply_replace_delete_manifests() {
    let s = Server::start();
    let file = s.manifest("all.yaml", MANIFESTS);
    let out = s.ok(&["create", "-f", &file]);
    for want in [
        "configmap/settings created",
        "secret/creds created",
        "pod/solo created",
        "deployment.apps/web created",
        "service/web created",
        "role.rbac.authorization.k8s.io/reader created",
    ] {
        assert!(out.contains(want), "{out}");
    }
    // Creating again is a conflict, reported per object.
    let err = s.fails(&["create", "-f", &file]);
    assert!(
        err.contains("AlreadyExists") || err.contains("already exists"),
        "{err}"
    );

    let pod = json(&s.ok(&["get", "pod", "solo", "-o", "json"]));
    assert_eq!(pod["status"]["phase"], "Pending");
    assert!(pod["metadata"]["uid"]
        .as_str()
        .is_some_and(|u| u.len() == 36));
    assert_eq!(pod["spec"]["restartPolicy"], "Always", "defaults applied");
    let secret = json(&s.ok(&["get", "secret", "creds", "-o", "json"]));
    assert_eq!(secret["type"], "Opaque");
    let dep = json(&s.ok(&["get", "deploy", "web", "-o", "json"]));
    assert_eq!(dep["metadata"]["generation"], 1);
    assert_eq!(dep["spec"]["strategy"]["type"], "RollingUpdate");

    // Client-side apply: an update through a strategic merge patch.
    let applied = MANIFESTS
        .replace("color: blue", "color: green")
        .replace("replicas: 2", "replicas: 3");
    let file2 = s.manifest("applied.yaml", &applied);
    let out = s.ok(&["apply", "-f", &file2]);
    assert!(out.contains("configmap/settings configured"), "{out}");
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert_eq!(
        s.ok(&["get", "cm", "settings", "-o", "jsonpath={.data.color}"]),
        "green"
    );
    let dep = json(&s.ok(&["get", "deploy", "web", "-o", "json"]));
    assert_eq!(dep["spec"]["replicas"], 3);
    assert_eq!(
        dep["metadata"]["generation"], 2,
        "a spec change bumps generation"
    );
    // Applying the same file again changes nothing.
    let out = s.ok(&["apply", "-f", &file2]);
    assert!(out.contains("configmap/settings unchanged"), "{out}");

    // Replace with a body from get (carries resourceVersion: optimistic concurrency).
    let mut cm = json(&s.ok(&["get", "cm", "settings", "-o", "json"]));
    cm["data"]["color"] = "red".into();
    let cm_file = s.manifest("cm.json", &cm.to_string());
    s.ok(&["replace", "-f", &cm_file]);
    assert_eq!(
        s.ok(&["get", "cm", "settings", "-o", "jsonpath={.data.color}"]),
        "red"
    );
    // The same stale body again is a conflict.
    let err = s.fails(&["replace", "-f", &cm_file]);
    assert!(err.contains("the object has been modified"), "{err}");

    let out = s.ok(&["delete", "-f", &file2]);
    assert!(out.contains("configmap \"settings\" deleted"), "{out}");
    let left = s.ok(&["get", "cm,secret,deploy,svc,role", "-o", "name"]);
    assert!(
        !left.contains("settings") && !left.contains("creds") && !left.contains("web"),
        "{left}"
    );
}

#[test]
fn output_formats_sorting_chunking_labels() {
    let s = Server::start();
    for (name, size) in [("bravo", "3"), ("alpha", "1"), ("charlie", "2")] {
        s.create_cm(name, &[("size", size)]);
        s.ok(&["label", "cm", name, &format!("letter={name}")]);
    }
    let table = s.ok(&["get", "cm"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("DATA") && header.contains("AGE"),
        "{table}"
    );
    assert!(table.contains("alpha"), "{table}");
    let wide = s.ok(&["get", "pods", "-o", "wide", "-A"]);
    assert!(wide.is_empty() || wide.starts_with("NAMESPACE"), "{wide}");
    let yaml = s.ok(&["get", "cm", "alpha", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: ConfigMap") && yaml.contains("size: \"1\""),
        "{yaml}"
    );
    let names = s.ok(&["get", "cm", "-l", "letter", "-o", "name"]);
    assert_eq!(
        names,
        "configmap/alpha\nconfigmap/bravo\nconfigmap/charlie\n"
    );
    let sorted = s.ok(&[
        "get",
        "cm",
        "-l",
        "letter",
        "--sort-by=.data.size",
        "-o",
        "name",
    ]);
    assert_eq!(
        sorted,
        "configmap/alpha\nconfigmap/charlie\nconfigmap/bravo\n"
    );
    let chunked = s.ok(&["get", "cm", "-l", "letter", "--chunk-size=1", "-o", "name"]);
    assert_eq!(
        chunked, names,
        "paging with continue tokens returns everything once"
    );
    let jp = s.ok(&[
        "get",
        "cm",
        "-l",
        "letter in (alpha,charlie)",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(jp, "alpha charlie");
    let cc = s.ok(&[
        "get",
        "cm",
        "bravo",
        "-o",
        "custom-columns=N:.metadata.name,S:.data.size",
    ]);
    assert_eq!(cc, "N       S\nbravo   3\n");
    let labels = s.ok(&["get", "cm", "alpha", "--show-labels"]);
    assert!(
        labels.lines().next().unwrap().contains("LABELS") && labels.contains("letter=alpha"),
        "{labels}"
    );
    let field = s.ok(&[
        "get",
        "cm",
        "--field-selector",
        "metadata.name!=alpha",
        "-l",
        "letter",
        "-o",
        "name",
    ]);
    assert_eq!(field, "configmap/bravo\nconfigmap/charlie\n");
    let err = s.fails(&["get", "cm", "-l", "a in (b"]);
    assert!(
        err.contains("unable to parse requirement")
            || err.contains("BadRequest")
            || err.contains("selector"),
        "{err}"
    );
}

#[test]
fn label_annotate_patch_edit_scale_delete() {
    let s = Server::start();
    let file = s.manifest("all.yaml", MANIFESTS);
    s.ok(&["create", "-f", &file]);

    s.ok(&["label", "cm", "settings", "env=prod"]);
    s.ok(&["annotate", "cm", "settings", "owner=team-a"]);
    let cm = json(&s.ok(&["get", "cm", "settings", "-o", "json"]));
    assert_eq!(cm["metadata"]["labels"]["env"], "prod");
    assert_eq!(cm["metadata"]["annotations"]["owner"], "team-a");
    s.ok(&["label", "cm", "settings", "env-"]);
    let err = s.fails(&["label", "cm", "settings", "tier=back"]);
    assert!(err.contains("already has a value"), "{err}");

    s.ok(&[
        "patch",
        "cm",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"size":"L"}}"#,
    ]);
    s.ok(&[
        "patch",
        "cm",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/data/color","value":"teal"}]"#,
    ]);
    s.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}"#,
    ]);
    let cm = json(&s.ok(&["get", "cm", "settings", "-o", "json"]));
    assert_eq!(cm["data"]["size"], "L");
    assert_eq!(cm["data"]["color"], "teal");
    let dep = json(&s.ok(&["get", "deploy", "web", "-o", "json"]));
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.28");
    assert_eq!(
        c["ports"][0]["containerPort"], 80,
        "strategic merge keeps unpatched fields"
    );
    let err = s.fails(&[
        "patch",
        "cm",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/data/color","value":"red"}]"#,
    ]);
    assert!(!err.is_empty());

    // Scripted EDITOR: kubectl edit round-trips through a file.
    let editor = s.manifest(
        "editor.sh",
        "#!/bin/sh\nsed -i 's/color: teal/color: violet/' \"$1\"\n",
    );
    Command::new("chmod")
        .args(["+x", &editor])
        .status()
        .unwrap();
    let out = Command::new(common::kubectl_bin(33))
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .args(["edit", "cm", "settings"])
        .env("KUBE_EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        s.ok(&["get", "cm", "settings", "-o", "jsonpath={.data.color}"]),
        "violet"
    );

    let out = s.ok(&["scale", "deploy", "web", "--replicas=5"]);
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    assert_eq!(
        s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );
    let scale = json(&s.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 5);

    let out = s.ok(&["delete", "cm", "settings", "--wait"]);
    assert!(out.contains("deleted"), "{out}");
    let err = s.fails(&["get", "cm", "settings"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    // An unscheduled pod is deleted at once.
    s.ok(&["delete", "pod", "solo", "--wait", "--timeout=20s"]);
}

#[test]
fn watch_prints_table_rows() {
    let s = Server::start();
    s.create_cm("before", &[]);
    let mut watch = s.watch(33, &["configmaps"]);
    watch.wait_for_text("before");
    s.create_cm("during", &[("a", "b")]);
    watch.wait_for_text("during");
    let lines = std::mem::take(&mut watch.lines);
    drop(watch);
    assert!(lines[0].starts_with("NAME"), "a header first: {lines:?}");
    let during = lines.iter().find(|l| l.starts_with("during")).unwrap();
    let cols: Vec<&str> = during.split_whitespace().collect();
    assert_eq!(cols[1], "1", "DATA column of the new row: {during}");
}

#[test]
fn kubectl_1_32_works_too() {
    let s = Server::start();
    let file = s.manifest("all.yaml", MANIFESTS);
    let out = s.ok_v(32, &["apply", "-f", &file]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let table = s.ok_v(32, &["get", "deploy,svc,cm"]);
    assert!(
        table.contains("deployment.apps/web") && table.contains("service/web"),
        "{table}"
    );
    s.ok_v(32, &["delete", "-f", &file]);
}

#[test]
fn restart_keeps_objects_and_revision_continues() {
    let mut s = Server::start();
    s.create_cm("keep", &[("k", "v")]);
    let rv_before: i64 = s
        .ok(&[
            "get",
            "cm",
            "keep",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    let uid = s.ok(&["get", "cm", "keep", "-o", "jsonpath={.metadata.uid}"]);
    s.restart();
    assert_eq!(
        s.ok(&["get", "cm", "keep", "-o", "jsonpath={.metadata.uid}"]),
        uid
    );
    s.create_cm("after", &[]);
    let rv_after: i64 = s
        .ok(&[
            "get",
            "cm",
            "after",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    assert!(
        rv_after > rv_before,
        "revision continues: {rv_after} > {rv_before}"
    );
}

#[test]
fn typed_creates_send_protobuf_and_explain_reads_openapi() {
    let s = Server::start();
    // kubectl 1.32+ sends these bodies as application/vnd.kubernetes.protobuf.
    for (minor, suffix) in [(33, "a"), (32, "b")] {
        let ns = format!("team-{suffix}");
        let ok = |args: &[&str]| s.ok_v(minor, args);
        assert!(ok(&["create", "namespace", &ns]).contains("created"));
        ok(&[
            "create",
            "configmap",
            "cfg",
            "-n",
            &ns,
            "--from-literal=k=v",
        ]);
        ok(&[
            "create",
            "secret",
            "generic",
            "pw",
            "-n",
            &ns,
            "--from-literal=p=q",
        ]);
        ok(&[
            "create",
            "deployment",
            "web",
            "-n",
            &ns,
            "--image=nginx:1.27",
            "--replicas=3",
        ]);
        ok(&[
            "create",
            "job",
            "once",
            "-n",
            &ns,
            "--image=busybox",
            "--",
            "echo",
            "hi",
        ]);
        ok(&["create", "serviceaccount", "bot", "-n", &ns]);
        ok(&[
            "create",
            "role",
            "reader",
            "-n",
            &ns,
            "--verb=get",
            "--resource=pods",
        ]);
        let dep = json(&ok(&["get", "deploy", "web", "-n", &ns, "-o", "json"]));
        assert_eq!(dep["spec"]["replicas"], 3);
        assert_eq!(
            dep["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
        assert_eq!(
            dep["spec"]["strategy"]["type"], "RollingUpdate",
            "defaults apply to protobuf bodies"
        );
        assert!(dep["spec"]["template"]["metadata"]
            .get("creationTimestamp")
            .is_none_or(|t| t.is_null()));
        let cm = json(&ok(&["get", "cm", "cfg", "-n", &ns, "-o", "json"]));
        assert_eq!(cm["data"]["k"], "v");
        let secret = json(&ok(&["get", "secret", "pw", "-n", &ns, "-o", "json"]));
        assert_eq!(
            secret["data"]["p"], "cQ==",
            "bytes survive protobuf as base64"
        );
        assert_eq!(ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    }
    let explain = s.ok(&["explain", "pod.spec.containers"]);
    assert!(
        explain.contains("FIELD: containers <[]Container>"),
        "{explain}"
    );
    assert!(
        explain.contains("List of containers belonging to the pod"),
        "{explain}"
    );
    let recursive = s.ok(&["explain", "deployment.spec", "--recursive"]);
    assert!(
        recursive.contains("maxSurge") && recursive.contains("progressDeadlineSeconds"),
        "{recursive}"
    );
}

#[test]
fn explain_recursive_works_for_every_resource() {
    let s = Server::start();
    let versions = s.ok(&["api-versions"]);
    let names = s.ok(&["api-resources", "-o", "name"]);
    let mut explained = 0;
    for name in names.lines() {
        // `plural.group` names are explained with --api-version (kubectl reads dots after the
        // resource as a field path).
        let out = match name.split_once('.') {
            None => s.ok(&["explain", name, "--recursive"]),
            Some((plural, group)) => {
                let gv = versions
                    .lines()
                    .find(|v| v.rsplit_once('/').is_some_and(|(g, _)| g == group))
                    .unwrap_or_else(|| panic!("no api-version for {group}: {versions}"));
                s.ok(&["explain", plural, "--api-version", gv, "--recursive"])
            }
        };
        assert!(
            out.contains("KIND:") && out.contains("FIELDS:"),
            "{name}: {out}"
        );
        explained += 1;
    }
    assert!(explained > 50, "explained only {explained} resources");
}
