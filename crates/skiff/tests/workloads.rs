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

// ---- Deployments ----

fn rs_of(s: &Server, deployment: &str) -> Vec<Value> {
    items(&s.get_json(&["rs"]))
        .into_iter()
        .filter(|r| {
            r["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| {
                    o.iter()
                        .any(|o| o["name"] == deployment && o["kind"] == "Deployment")
                })
        })
        .collect()
}

fn image_of(v: &Value) -> String {
    v["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Pod states replayed from a `kubectl get pods -w` stream.
struct PodTally {
    pods: std::collections::BTreeMap<String, PodState>,
}

#[derive(Clone, Copy, Debug)]
struct PodState {
    exists: bool,
    /// Exists and is not being deleted.
    active: bool,
    ready: bool,
}

impl PodTally {
    /// Applies one watch line `TYPE|NAME|DELETION|READY`; returns (active, ready) counts.
    fn apply(&mut self, line: &str) -> (usize, usize) {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() >= 4 {
            let (kind, name, deleting, ready) =
                (f[0].trim(), f[1].trim(), f[2].trim(), f[3].trim());
            let state = PodState {
                exists: kind != "DELETED",
                active: kind != "DELETED" && deleting.is_empty(),
                ready: kind != "DELETED" && deleting.is_empty() && ready == "True",
            };
            self.pods.insert(name.to_string(), state);
        }
        let active = self.pods.values().filter(|p| p.active).count();
        let ready = self.pods.values().filter(|p| p.ready).count();
        (active, ready)
    }
}

const WATCH_COLUMNS: &str = r#"jsonpath={.type}|{.object.metadata.name}|{.object.metadata.deletionTimestamp}|{.object.status.conditions[?(@.type=="Ready")].status}{"\n"}"#;

#[test]
fn deployment_rolls_out_scales_pauses_and_rolls_back() {
    let s = Server::start();
    // Three simulated nodes: the scheduler binds the pods, the agent runs them and makes
    // them Ready, and finishes their graceful deletion.
    let _agent = s.start_agent(&["--simulate", "3"]);
    deployment_flow(&s);
}

fn deployment_flow(s: &Server) {
    s.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.0",
        "--replicas=5",
    ]);
    s.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    let pods = active_pods(s, "app=web");
    assert_eq!(pods.len(), 5);
    assert!(
        pods.iter()
            .all(|p| p["status"]["phase"] == "Running" && p["spec"]["nodeName"].is_string()),
        "5 pods scheduled and Running: {pods:?}"
    );
    let rss = rs_of(s, "web");
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}").as_str());
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash.as_str()
    );
    assert_eq!(
        rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
        hash.as_str()
    );
    let ann = &rs["metadata"]["annotations"];
    assert_eq!(ann["deployment.kubernetes.io/revision"], "1");
    assert_eq!(ann["deployment.kubernetes.io/desired-replicas"], "5");
    assert_eq!(ann["deployment.kubernetes.io/max-replicas"], "7"); // 25% surge of 5, rounded up
    let d = s.get_json(&["deployment", "web"]);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let conds = d["status"]["conditions"].as_array().unwrap();
    let reason = |t: &str| {
        conds
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| c["reason"].as_str().unwrap().to_string())
    };
    assert_eq!(
        reason("Available").as_deref(),
        Some("MinimumReplicasAvailable")
    );
    assert_eq!(
        reason("Progressing").as_deref(),
        Some("NewReplicaSetAvailable")
    );
    assert_eq!(d["status"]["updatedReplicas"], 5);
    assert_eq!(d["status"]["availableReplicas"], 5);

    // A rolling update never has more than 5 + 2 pods nor fewer than 5 - 1 ready ones.
    let mut w = s.watch(
        33,
        &[
            "pods",
            "-l",
            "app=web",
            "--output-watch-events",
            "-o",
            WATCH_COLUMNS,
        ],
    );
    let mut tally = PodTally {
        pods: Default::default(),
    };
    for _ in 0..5 {
        let line = w.wait_for("the initial pods", |_| true);
        tally.apply(&line);
    }
    s.ok(&["set", "image", "deployment/web", "nginx=nginx:2.0"]);
    s.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    let mut max_active = 0;
    let mut min_ready = usize::MAX;
    // Replay everything the watch printed until the old pods were all gone.
    loop {
        let line = w.wait_for("pod changes", |_| true);
        let (active, ready) = tally.apply(&line);
        max_active = max_active.max(active);
        min_ready = min_ready.min(ready);
        let old_left = tally
            .pods
            .iter()
            .any(|(n, p)| p.active && n.starts_with(&format!("web-{hash}-")));
        if !old_left && active == 5 && ready == 5 {
            break;
        }
    }
    assert!(
        max_active <= 7,
        "more than replicas + maxSurge pods: {max_active}; {:?}",
        w.lines
    );
    assert!(
        min_ready >= 4,
        "fewer than replicas - maxUnavailable ready: {min_ready}; {:?}",
        w.lines
    );
    drop(w);
    let rss = rs_of(s, "web");
    assert_eq!(rss.len(), 2);
    let new_rs = rss.iter().find(|r| image_of(r) == "nginx:2.0").unwrap();
    assert_eq!(
        new_rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let old_rs = rss.iter().find(|r| image_of(r) == "nginx:1.0").unwrap();
    assert_eq!(old_rs["spec"]["replicas"], 0);
    eventually("events tell the rollout", || {
        let ev = events(s, "web");
        ev.iter().any(|(r, m)| {
            r == "ScalingReplicaSet"
                && m.starts_with("Scaled up replica set web-")
                && m.ends_with(" from 0 to 5")
        }) && ev
            .iter()
            .any(|(r, m)| r == "ScalingReplicaSet" && m.starts_with("Scaled down replica set web-"))
    });

    // History with a change cause, then undo to the previous template.
    s.ok(&[
        "annotate",
        "deployment",
        "web",
        "kubernetes.io/change-cause=nginx 2.0",
    ]);
    eventually("the change cause reaches the ReplicaSet", || {
        let h = s.ok(&["rollout", "history", "deployment/web"]);
        h.contains("nginx 2.0")
    });
    let history = s.ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    let rev1 = s.ok(&["rollout", "history", "deployment/web", "--revision=1"]);
    assert!(rev1.contains("nginx:1.0"), "{rev1}");

    s.ok(&["rollout", "undo", "deployment/web"]);
    s.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    let d = s.get_json(&["deployment", "web"]);
    assert_eq!(image_of(&d), "nginx:1.0");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    let rss = rs_of(s, "web");
    assert_eq!(rss.len(), 2, "undo reuses the old ReplicaSet");
    let back = rss.iter().find(|r| image_of(r) == "nginx:1.0").unwrap();
    assert_eq!(
        back["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(
        back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert_eq!(back["spec"]["replicas"], 5);
    eventually("pods run the old image again", || {
        let pods = active_pods(s, "app=web");
        pods.len() == 5
            && pods
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "nginx:1.0")
    });

    // rollout restart: a template annotation change is a new revision.
    s.ok(&["rollout", "restart", "deployment/web"]);
    s.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert_eq!(rs_of(s, "web").len(), 3);

    // Scale to zero and back.
    s.ok(&["scale", "deployment/web", "--replicas=0"]);
    eventually("no pods", || active_pods(s, "app=web").is_empty());
    eventually("the status counts no replicas", || {
        let st = &s.get_json(&["deployment", "web"])["status"];
        st["replicas"].as_i64().unwrap_or(0) == 0
    });
    s.ok(&["scale", "deployment/web", "--replicas=3"]);
    s.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    eventually("3 pods again", || active_pods(s, "app=web").len() == 3);

    // Paused: template changes wait, scaling does not.
    s.ok(&["rollout", "pause", "deployment/web"]);
    eventually("Progressing says paused", || {
        let d = s.get_json(&["deployment", "web"]);
        d["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Progressing" && c["reason"] == "DeploymentPaused")
        })
    });
    s.ok(&["set", "image", "deployment/web", "nginx=nginx:3.0"]);
    s.ok(&["scale", "deployment/web", "--replicas=4"]);
    eventually("a paused deployment scales", || {
        active_pods(s, "app=web").len() == 4
    });
    eventually("the scale was observed", || {
        let d = s.get_json(&["deployment", "web"]);
        d["status"]["observedGeneration"] == d["metadata"]["generation"]
    });
    assert!(
        rs_of(s, "web").iter().all(|r| image_of(r) != "nginx:3.0"),
        "no rollout while paused"
    );
    s.ok(&["rollout", "resume", "deployment/web"]);
    s.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    eventually("the resumed rollout runs nginx:3.0", || {
        let pods = active_pods(s, "app=web");
        pods.len() == 4
            && pods
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "nginx:3.0")
    });

    // Deleting the deployment removes its ReplicaSets and pods.
    s.ok(&["delete", "deployment", "web"]);
    eventually("ReplicaSets are gone", || rs_of(s, "web").is_empty());
    eventually("pods are gone", || active_pods(s, "app=web").is_empty());
}

#[test]
fn recreate_never_overlaps_old_and_new_pods() {
    let s = Server::start();
    let f = s.manifest(
        "recreate.yaml",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: db
spec:
  replicas: 3
  strategy: {type: Recreate}
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: postgres:15
"#,
    );
    let _agent = s.start_agent(&["--simulate", "3"]);
    s.ok(&["apply", "-f", &f]);
    s.ok(&["rollout", "status", "deployment/db", "--timeout=90s"]);
    let mut w = s.watch(
        33,
        &[
            "pods",
            "-l",
            "app=db",
            "--output-watch-events",
            "-o",
            WATCH_COLUMNS,
        ],
    );
    let mut tally = PodTally {
        pods: Default::default(),
    };
    for _ in 0..3 {
        tally.apply(&w.wait_for("the initial pods", |_| true));
    }
    let old: Vec<String> = tally.pods.keys().cloned().collect();
    s.ok(&["set", "image", "deployment/db", "db=postgres:16"]);
    s.ok(&["rollout", "status", "deployment/db", "--timeout=90s"]);
    loop {
        let line = w.wait_for("pod changes", |_| true);
        tally.apply(&line);
        // Recreate waits until the old pods are gone, not just terminating.
        let old_exist = tally.pods.iter().any(|(n, p)| p.exists && old.contains(n));
        let new_seen = tally.pods.keys().any(|n| !old.contains(n));
        assert!(
            !(old_exist && new_seen),
            "old and new pods at once: {:?}",
            w.lines
        );
        let new_ready = tally
            .pods
            .iter()
            .filter(|(n, p)| p.ready && !old.contains(n))
            .count();
        if new_ready == 3 {
            break;
        }
    }
}

#[test]
fn deployment_without_progress_exceeds_its_deadline() {
    let s = Server::start();
    let f = s.manifest(
        "stuck.yaml",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
spec:
  replicas: 2
  progressDeadlineSeconds: 2
  selector:
    matchLabels: {app: stuck}
  template:
    metadata:
      labels: {app: stuck}
    spec:
      containers:
      - name: c
        image: busybox
"#,
    );
    s.ok(&["apply", "-f", &f]);
    // Nothing makes the pods ready.
    eventually("ProgressDeadlineExceeded", || {
        let d = s.get_json(&["deployment", "stuck"]);
        d["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "Progressing"
                    && c["status"] == "False"
                    && c["reason"] == "ProgressDeadlineExceeded"
            })
        })
    });
    let out = s.kubectl(&["rollout", "status", "deployment/stuck", "--timeout=30s"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exceeded its progress deadline"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = s.get_json(&["deployment", "stuck"]);
    let avail = d["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Available")
        .unwrap()
        .clone();
    assert_eq!(avail["reason"], "MinimumReplicasUnavailable");
}

#[test]
fn invalid_deployments_are_refused_or_reported() {
    let s = Server::start();
    let f = s.manifest(
        "mismatch.yaml",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
  selector:
    matchLabels: {app: one}
  template:
    metadata:
      labels: {app: two}
    spec:
      containers:
      - name: c
        image: busybox
"#,
    );
    let err = s.fails(&["create", "-f", &f]);
    assert!(
        err.contains("is invalid") && err.contains("selector"),
        "{err}"
    );
}

fn rs_sizes(s: &Server, deployment: &str) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = rs_of(s, deployment)
        .iter()
        .map(|r| (image_of(r), r["spec"]["replicas"].as_i64().unwrap_or(-1)))
        .collect();
    v.sort();
    v
}

#[test]
fn scaling_mid_rollout_is_proportional() {
    let s = Server::start();
    let _agent = s.start_agent(&["--simulate", "3"]);
    let f = s.manifest(
        "prop.yaml",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: prop
spec:
  replicas: 10
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 3, maxUnavailable: 0}
  selector:
    matchLabels: {app: prop}
  template:
    metadata:
      labels: {app: prop}
    spec:
      containers:
      - name: c
        image: app:1
"#,
    );
    s.ok(&["apply", "-f", &f]);
    s.ok(&["rollout", "status", "deployment/prop", "--timeout=90s"]);
    // The new template's pods can never be scheduled: the rollout stops at the surge.
    let patch = r#"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"app:2"}],"nodeSelector":{"skiff.test/nowhere":"true"}}}}}"#;
    s.ok(&["patch", "deployment", "prop", "-p", patch]);
    eventually("the rollout is stuck at 10 old + 3 new", || {
        rs_sizes(&s, "prop") == vec![("app:1".to_string(), 10), ("app:2".to_string(), 3)]
    });
    // 10 → 20 mid-rollout: 10 more replicas (23 allowed), shared as upstream shares them:
    // old 10·23/13 ≈ 18, new 3·23/13 ≈ 5.
    s.ok(&["scale", "deployment/prop", "--replicas=20"]);
    eventually("replica sets scaled in proportion", || {
        rs_sizes(&s, "prop") == vec![("app:1".to_string(), 18), ("app:2".to_string(), 5)]
    });
    eventually("the old pods follow", || {
        active_pods(&s, "app=prop").len() == 23
    });
}

#[test]
fn old_revisions_beyond_the_history_limit_are_deleted() {
    let s = Server::start();
    let _agent = s.start_agent(&["--simulate", "2"]);
    let f = s.manifest(
        "hist.yaml",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hist
spec:
  replicas: 2
  revisionHistoryLimit: 1
  selector:
    matchLabels: {app: hist}
  template:
    metadata:
      labels: {app: hist}
    spec:
      containers:
      - name: c
        image: app:1
"#,
    );
    s.ok(&["apply", "-f", &f]);
    s.ok(&["rollout", "status", "deployment/hist", "--timeout=90s"]);
    for v in 2..=4 {
        s.ok(&["set", "image", "deployment/hist", &format!("c=app:{v}")]);
        s.ok(&["rollout", "status", "deployment/hist", "--timeout=90s"]);
    }
    eventually("the current and one old ReplicaSet remain", || {
        rs_sizes(&s, "hist") == vec![("app:3".to_string(), 0), ("app:4".to_string(), 2)]
    });
    let history = s.ok(&["rollout", "history", "deployment/hist"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(revisions, ["3", "4"], "{history}");
}

#[test]
fn pods_count_as_available_after_min_ready_seconds() {
    let s = Server::start();
    let _agent = s.start_agent(&["--simulate", "2"]);
    let f = s.manifest(
        "slow.yaml",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: slow
spec:
  replicas: 2
  minReadySeconds: 5
  selector:
    matchLabels: {app: slow}
  template:
    metadata:
      labels: {app: slow}
    spec:
      containers:
      - name: c
        image: app:1
"#,
    );
    let mut w = s.watch(
        33,
        &[
            "rs",
            "-l",
            "app=slow",
            "-o",
            "jsonpath={.status.readyReplicas}/{.status.availableReplicas}{\"\\n\"}",
        ],
    );
    s.ok(&["apply", "-f", &f]);
    // Ready first, available only once the pods have been ready for minReadySeconds
    // (nothing else happens meanwhile: the controller must come back by itself).
    eventually("both pods available", || {
        s.get_json(&["deployment", "slow"])["status"]["availableReplicas"] == 2
    });
    w.wait_for("the ReplicaSet's 2/2", |l| l == "2/2");
    assert!(
        w.lines.iter().any(|l| l.starts_with("2/") && l != "2/2"),
        "ready before available: {:?}",
        w.lines
    );
}

#[test]
fn deleting_deployments_cascades_foreground_or_orphans() {
    let s = Server::start();
    let _agent = s.start_agent(&["--simulate", "2"]);
    for name in ["front", "keep"] {
        s.ok(&[
            "create",
            "deployment",
            name,
            "--image=nginx",
            "--replicas=2",
        ]);
    }
    eventually("both deployments running", || {
        active_pods(&s, "app=front").len() == 2 && active_pods(&s, "app=keep").len() == 2
    });
    eventually("pods running", || {
        items(&s.get_json(&["pods"]))
            .iter()
            .all(|p| p["status"]["phase"] == "Running")
    });

    // Foreground: kubectl returns once the deployment is gone, which is only after its
    // ReplicaSet, which is only after the pods (the agent confirms their deletion).
    s.ok(&[
        "delete",
        "deployment",
        "front",
        "--cascade=foreground",
        "--timeout=90s",
    ]);
    assert!(!s.exists(&["deployment", "front"]));
    assert!(rs_of(&s, "front").is_empty());
    let left: Vec<Value> = items(&s.get_json(&["pods", "-l", "app=front"]));
    assert!(
        left.is_empty(),
        "pods outlived their foreground-deleted deployment: {left:?}"
    );

    // Orphan: the ReplicaSet and pods stay, without an owner.
    let rs = rs_of(&s, "keep");
    assert_eq!(rs.len(), 1);
    let rs_name = rs[0]["metadata"]["name"].as_str().unwrap().to_string();
    s.ok(&[
        "delete",
        "deployment",
        "keep",
        "--cascade=orphan",
        "--timeout=60s",
    ]);
    assert!(!s.exists(&["deployment", "keep"]));
    eventually("the ReplicaSet released", || {
        s.get_json(&["rs", &rs_name])["metadata"]["ownerReferences"].is_null()
    });
    let pods = active_pods(&s, "app=keep");
    assert_eq!(pods.len(), 2);
    let rs_uid = s.get_json(&["rs", &rs_name])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pods
        .iter()
        .all(|p| controller_uid(p) == Some(rs_uid.clone())));
}
