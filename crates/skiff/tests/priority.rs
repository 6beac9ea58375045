//! Pod priority admission (upstream's `Priority` plugin) through real kubectl: the system
//! classes exist, `priorityClassName` becomes `spec.priority`, unknown classes and
//! contradicting integers are refused with upstream's messages, and a `globalDefault`
//! class applies to pods that name none.

mod common;

use common::Server;

fn pod(s: &Server, name: &str, extra: &str) -> std::process::Output {
    let f = s.manifest(
        &format!("{name}.yaml"),
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers: [{{name: c, image: busybox}}]\n{extra}"),
    );
    s.kubectl(&["create", "-f", &f])
}

fn priority(s: &Server, name: &str) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let p = s.get_json(&["pod", name]);
    (
        p["spec"]["priority"].clone(),
        p["spec"]["priorityClassName"].clone(),
        p["spec"]["preemptionPolicy"].clone(),
    )
}

#[test]
fn priority_classes_resolve_into_pod_priorities() {
    let s = Server::start();
    let classes = s.ok(&["get", "priorityclasses"]);
    assert!(
        classes.contains("system-node-critical") && classes.contains("2000001000"),
        "{classes}"
    );
    assert!(
        classes.contains("system-cluster-critical") && classes.contains("2000000000"),
        "{classes}"
    );

    assert!(pod(&s, "plain", "").status.success());
    assert_eq!(
        priority(&s, "plain"),
        (
            0.into(),
            serde_json::Value::Null,
            "PreemptLowerPriority".into()
        )
    );

    let high = s.manifest(
        "high.yaml",
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\npreemptionPolicy: Never\n",
    );
    s.ok(&["create", "-f", &high]);
    assert!(pod(&s, "important", "  priorityClassName: high\n")
        .status
        .success());
    assert_eq!(
        priority(&s, "important"),
        (1000.into(), "high".into(), "Never".into())
    );
    assert!(pod(
        &s,
        "critical",
        "  priorityClassName: system-node-critical\n"
    )
    .status
    .success());
    assert_eq!(priority(&s, "critical").0, 2_000_001_000i64);

    let out = pod(&s, "unknown", "  priorityClassName: nope\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Forbidden") && err.contains("no PriorityClass with name nope was found"),
        "{err}"
    );
    let out = pod(&s, "liar", "  priorityClassName: high\n  priority: 5\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"), "{err}");
    assert!(!s.exists(&["pod", "unknown"]) && !s.exists(&["pod", "liar"]));

    let default = s.manifest(
        "default.yaml",
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: everyone}\nvalue: 7\nglobalDefault: true\n",
    );
    s.ok(&["create", "-f", &default]);
    assert!(pod(&s, "defaulted", "").status.success());
    assert_eq!(
        priority(&s, "defaulted"),
        (7.into(), "everyone".into(), "PreemptLowerPriority".into())
    );
}
