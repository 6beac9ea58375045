//! Workload controllers end to end: ReplicaSets, ReplicationControllers and Deployments
//! driven by the real kubectl against the real binary.

mod common;

use common::{eventually, Server};
use serde_json::Value;

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

/// Active pods (not being deleted) matching `selector`.
fn active_pods(s: &Server, selector: &str) -> Vec<Value> {
    items(&s.get_json(&["pods", "-l", selector]))
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn controller_uid(p: &Value) -> Option<String> {
    p["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
        .map(String::from)
}

fn events(s: &Server, name: &str) -> Vec<(String, String)> {
    items(&s.get_json(&[
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
    ]))
    .iter()
    .map(|e| {
        (
            e["reason"].as_str().unwrap_or_default().to_string(),
            e["message"].as_str().unwrap_or_default().to_string(),
        )
    })
    .collect()
}

const RS: &str = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx
"#;

#[test]
fn replicaset_keeps_its_replicas_and_records_events() {
    let s = Server::start();
    let f = s.manifest("rs.yaml", RS);
    s.ok(&["apply", "-f", &f]);
    let rs = s.get_json(&["rs", "web"]);
    let uid = rs["metadata"]["uid"].as_str().unwrap().to_string();

    eventually("3 pods for the ReplicaSet", || {
        active_pods(&s, "app=web").len() == 3
    });
    let pods = active_pods(&s, "app=web");
    for p in &pods {
        let name = p["metadata"]["name"].as_str().unwrap();
        let suffix = name
            .strip_prefix("web-")
            .expect("pods are named web-<suffix>");
        assert_eq!(suffix.len(), 5, "{name}");
        assert_eq!(controller_uid(p).as_deref(), Some(uid.as_str()));
    }
    eventually("status.replicas is 3", || {
        let st = &s.get_json(&["rs", "web"])["status"];
        st["replicas"] == 3 && st["fullyLabeledReplicas"] == 3 && st["observedGeneration"] == 1
    });

    // A deleted pod is replaced.
    let victim = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    s.ok(&["delete", "pod", &victim, "--wait=false"]);
    eventually("the deleted pod is replaced", || {
        let now = active_pods(&s, "app=web");
        now.len() == 3 && now.iter().all(|p| p["metadata"]["name"] != victim.as_str())
    });

    // Scaling down deletes pods.
    s.ok(&["scale", "rs/web", "--replicas=1"]);
    eventually("one pod left", || active_pods(&s, "app=web").len() == 1);
    eventually("status follows the scale down", || {
        s.get_json(&["rs", "web"])["status"]["replicas"] == 1
    });
    eventually("creation and deletion events", || {
        let ev = events(&s, "web");
        ev.iter()
            .any(|(r, m)| r == "SuccessfulCreate" && m.starts_with("Created pod: web-"))
            && ev
                .iter()
                .any(|(r, m)| r == "SuccessfulDelete" && m.starts_with("Deleted pod: web-"))
    });

    // Deleting the ReplicaSet deletes its pods (garbage collection of dependents).
    s.ok(&["delete", "rs", "web"]);
    eventually("pods are gone with their ReplicaSet", || {
        active_pods(&s, "app=web").is_empty()
    });
}

#[test]
fn replicaset_adopts_orphans_and_releases_relabelled_pods() {
    let s = Server::start();
    // An orphan pod that matches: the ReplicaSet adopts it and creates only the rest.
    s.ok(&[
        "run",
        "orphan",
        "--image=nginx",
        "--labels=app=web",
        "--restart=Never",
    ]);
    let f = s.manifest("rs.yaml", RS);
    s.ok(&["apply", "-f", &f]);
    let uid = s.get_json(&["rs", "web"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    eventually("the orphan is adopted", || {
        controller_uid(&s.get_json(&["pod", "orphan"])).as_deref() == Some(uid.as_str())
    });
    eventually("3 pods in all", || active_pods(&s, "app=web").len() == 3);
    assert!(
        active_pods(&s, "app=web")
            .iter()
            .any(|p| p["metadata"]["name"] == "orphan"),
        "the adopted pod counts towards the replicas"
    );

    // A pod relabelled out of the selector is released and replaced.
    s.ok(&["label", "pod", "orphan", "app=other", "--overwrite"]);
    eventually("the relabelled pod is released", || {
        controller_uid(&s.get_json(&["pod", "orphan"])).is_none()
    });
    eventually("a replacement is created", || {
        active_pods(&s, "app=web").len() == 3
    });
    assert!(
        s.exists(&["pod", "orphan"]),
        "released pods are not deleted"
    );
}

#[test]
fn replication_controller_is_the_same_controller() {
    let s = Server::start();
    let f = s.manifest(
        "rc.yaml",
        r#"
apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
spec:
  replicas: 2
  selector: {app: legacy}
  template:
    metadata:
      labels: {app: legacy}
    spec:
      containers:
      - name: nginx
        image: nginx
"#,
    );
    s.ok(&["apply", "-f", &f]);
    eventually("2 pods for the RC", || {
        active_pods(&s, "app=legacy").len() == 2
    });
    let p = &active_pods(&s, "app=legacy")[0];
    let r = &p["metadata"]["ownerReferences"][0];
    assert_eq!(r["kind"], "ReplicationController");
    assert_eq!(r["apiVersion"], "v1");
    assert!(p["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("legacy-"));
    s.ok(&["scale", "rc/legacy", "--replicas=4"]);
    eventually("4 pods after scaling", || {
        active_pods(&s, "app=legacy").len() == 4
    });
    eventually("RC status", || {
        s.get_json(&["rc", "legacy"])["status"]["replicas"] == 4
    });
}
