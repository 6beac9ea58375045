//! The workload controllers inside `skiff server` — Job, CronJob, TTL-after-finished,
//! DaemonSet and StatefulSet — driven with real kubectl. Pod phases come from a simulated
//! node agent (`skiff agent --simulate N`) and the scheduler where the test starts one, or
//! are written by the test through the pod's status subresource. Behaviour is asserted by
//! bounded polling, never by timing.

mod common;

use common::{eventually, Server};
use serde_json::{json, Value};

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn pods(s: &Server, selector: &str) -> Vec<Value> {
    items(&s.get_json(&["pods", "-l", selector]))
}

fn name(v: &Value) -> String {
    v["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn phase(v: &Value) -> &str {
    v["status"]["phase"].as_str().unwrap_or("Pending")
}

fn active(v: &Value) -> bool {
    !matches!(phase(v), "Succeeded" | "Failed") && v["metadata"]["deletionTimestamp"].is_null()
}

/// Writes a pod's phase (and Ready) through the status subresource, as a kubelet would.
fn set_phase(s: &Server, pod: &str, phase: &str, ready: bool) {
    let status = json!({"status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" },
         "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
    s.ok(&[
        "patch",
        "pod",
        pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == "True")
}

fn events_for(s: &Server, name: &str) -> Vec<(String, String)> {
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

fn has_event(s: &Server, name: &str, reason: &str) -> bool {
    events_for(s, name).iter().any(|(r, _)| r == reason)
}

const JOB_LABEL: &str = "batch.kubernetes.io/job-name";

#[test]
fn job_runs_pods_to_completion_counting_through_the_finalizer() {
    let s = Server::start();
    let job = s.manifest(
        "job.yaml",
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: count}
spec:
  completions: 3
  parallelism: 2
  template:
    metadata: {labels: {app: count}}
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
"#,
    );
    s.ok(&["create", "-f", &job]);
    let sel = format!("{JOB_LABEL}=count");
    eventually("two pods", || pods(&s, &sel).len() == 2);
    let first = pods(&s, &sel);
    let uid = s.get_json(&["job", "count"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    for p in &first {
        let m = &p["metadata"];
        assert_eq!(
            m["labels"]["batch.kubernetes.io/controller-uid"],
            json!(uid)
        );
        assert_eq!(m["labels"]["controller-uid"], json!(uid));
        assert_eq!(m["labels"]["job-name"], json!("count"));
        assert_eq!(m["labels"]["app"], json!("count"));
        assert_eq!(m["finalizers"], json!(["batch.kubernetes.io/job-tracking"]));
        assert_eq!(m["ownerReferences"][0]["kind"], json!("Job"));
        assert_eq!(m["ownerReferences"][0]["controller"], json!(true));
        assert!(name(p).starts_with("count-"));
    }
    eventually("status.active 2 and a start time", || {
        let j = s.get_json(&["job", "count"]);
        j["status"]["active"] == json!(2) && j["status"]["startTime"].is_string()
    });

    // One finishes: it is counted once its finalizer is gone, and a third pod starts.
    set_phase(&s, &name(&first[0]), "Succeeded", false);
    eventually("a third pod", || pods(&s, &sel).len() == 3);
    eventually("one succeeded, finalizer released", || {
        let j = s.get_json(&["job", "count"]);
        let p = s.get_json(&["pod", &name(&first[0])]);
        j["status"]["succeeded"] == json!(1)
            && p["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty())
    });
    assert_eq!(pods(&s, &sel).iter().filter(|p| active(p)).count(), 2);

    for p in pods(&s, &sel).iter().filter(|p| active(p)) {
        set_phase(&s, &name(p), "Succeeded", false);
    }
    eventually("Complete", || {
        condition(&s.get_json(&["job", "count"]), "Complete").is_some()
    });
    let j = s.get_json(&["job", "count"]);
    assert_eq!(j["status"]["succeeded"], json!(3));
    assert!(
        j["status"]["active"].is_null(),
        "zero counters are omitted: {j}"
    );
    assert!(j["status"]["completionTime"].is_string());
    let crit = condition(&j, "SuccessCriteriaMet").expect("SuccessCriteriaMet");
    assert_eq!(crit["reason"], json!("CompletionsReached"));
    assert_eq!(pods(&s, &sel).len(), 3, "no pod beyond the completions");
    eventually("events SuccessfulCreate and Completed", || {
        has_event(&s, "count", "SuccessfulCreate") && has_event(&s, "count", "Completed")
    });
    let out = s.ok(&["get", "job", "count"]);
    assert!(out.contains("3/3"), "{out}");
}

#[test]
fn job_fails_past_its_backoff_limit_and_deadline() {
    let s = Server::start();
    let job = s.manifest(
        "job.yaml",
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: flaky}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: slow}
spec:
  activeDeadlineSeconds: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
"#,
    );
    s.ok(&["create", "-f", &job]);
    let sel = format!("{JOB_LABEL}=flaky");
    eventually("a pod", || pods(&s, &sel).len() == 1);
    set_phase(&s, &name(&pods(&s, &sel)[0]), "Failed", false);
    eventually("Failed: BackoffLimitExceeded", || {
        let j = s.get_json(&["job", "flaky"]);
        condition(&j, "Failed").is_some_and(|c| c["reason"] == "BackoffLimitExceeded")
    });
    let j = s.get_json(&["job", "flaky"]);
    assert_eq!(j["status"]["failed"], json!(1));
    assert!(condition(&j, "FailureTarget").is_some());
    assert_eq!(pods(&s, &sel).len(), 1, "no replacement past the limit");
    eventually("BackoffLimitExceeded event", || {
        has_event(&s, "flaky", "BackoffLimitExceeded")
    });

    // The deadline: the running pod is deleted (and counted failed once its finalizer goes).
    eventually("Failed: DeadlineExceeded", || {
        let j = s.get_json(&["job", "slow"]);
        condition(&j, "Failed").is_some_and(|c| {
            c["reason"] == "DeadlineExceeded"
                && c["message"] == "Job was active longer than specified deadline"
        })
    });
    eventually("the slow job's pod is gone", || {
        pods(&s, &format!("{JOB_LABEL}=slow")).is_empty()
    });
}

#[test]
fn indexed_job_and_pod_failure_policy() {
    let s = Server::start();
    let job = s.manifest(
        "job.yaml",
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: idx}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: policy}
spec:
  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions: [{type: DisruptionTarget}]
    - action: FailJob
      onExitCodes: {containerName: main, operator: In, values: [42]}
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
"#,
    );
    s.ok(&["create", "-f", &job]);
    let sel = format!("{JOB_LABEL}=idx");
    eventually("three indexed pods", || pods(&s, &sel).len() == 3);
    let mut seen: Vec<String> = pods(&s, &sel)
        .iter()
        .map(|p| {
            let ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(
                p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
                json!(ix)
            );
            assert_eq!(p["spec"]["hostname"], json!(format!("idx-{ix}")));
            assert!(name(p).starts_with(&format!("idx-{ix}-")));
            ix
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"]);
    for p in pods(&s, &sel) {
        set_phase(&s, &name(&p), "Succeeded", false);
    }
    eventually("indexed Complete", || {
        let j = s.get_json(&["job", "idx"]);
        condition(&j, "Complete").is_some() && j["status"]["completedIndexes"] == "0-2"
    });

    // An evicted pod (DisruptionTarget) is ignored and replaced; exit code 42 fails the Job.
    let sel = format!("{JOB_LABEL}=policy");
    eventually("a policy pod", || pods(&s, &sel).len() == 1);
    let first = name(&pods(&s, &sel)[0]);
    let status = json!({"status": {"phase": "Failed", "conditions": [
        {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}]}});
    s.ok(&[
        "patch",
        "pod",
        &first,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
    eventually("a replacement", || pods(&s, &sel).iter().any(active));
    let j = s.get_json(&["job", "policy"]);
    assert!(j["status"]["failed"].as_i64().unwrap_or(0) == 0, "{j}");
    let second = name(pods(&s, &sel).iter().find(|p| active(p)).unwrap());
    let status = json!({"status": {"phase": "Failed", "containerStatuses": [
        {"name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
         "state": {"terminated": {"exitCode": 42, "reason": "Error"}}}]}});
    s.ok(&[
        "patch",
        "pod",
        &second,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
    eventually("Failed: PodFailurePolicy", || {
        let j = s.get_json(&["job", "policy"]);
        condition(&j, "Failed").is_some_and(|c| {
            c["reason"] == "PodFailurePolicy"
                && c["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("exit code 42")
        })
    });
}

#[test]
fn suspended_job_runs_no_pods_until_resumed() {
    let s = Server::start();
    let job = s.manifest(
        "job.yaml",
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: later}
spec:
  suspend: true
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
"#,
    );
    s.ok(&["create", "-f", &job]);
    let other = s.manifest(
        "other.yaml",
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: elsewhere}
spec:
  managedBy: example.com/batch-controller
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
"#,
    );
    s.ok(&["create", "-f", &other]);
    eventually("Suspended condition", || {
        condition(&s.get_json(&["job", "later"]), "Suspended").is_some()
    });
    assert!(pods(&s, &format!("{JOB_LABEL}=later")).is_empty());
    s.ok(&[
        "patch",
        "job",
        "later",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    eventually("a pod once resumed", || {
        pods(&s, &format!("{JOB_LABEL}=later")).len() == 1
    });
    eventually("Suspended False: JobResumed", || {
        let j = s.get_json(&["job", "later"]);
        j["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"] == "Suspended" && c["status"] == "False" && c["reason"] == "JobResumed"
            })
    });
    assert!(has_event(&s, "later", "Suspended"));
    // A Job managed by another controller got nothing from this one.
    assert!(pods(&s, &format!("{JOB_LABEL}=elsewhere")).is_empty());
    assert!(s.get_json(&["job", "elsewhere"])["status"]["startTime"].is_null());
}

#[test]
fn cronjob_fires_jobs_on_schedule_and_keeps_history() {
    let s = Server::start();
    let cj = s.manifest(
        "cronjob.yaml",
        r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "*/1 * * * *"
  timeZone: Europe/Berlin
  successfulJobsHistoryLimit: 0
  jobTemplate:
    metadata: {labels: {app: tick}}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox}]
"#,
    );
    s.ok(&["create", "-f", &cj]);

    // A schedule that does not parse is refused at admission, as upstream validates it.
    let broken = s.manifest(
        "broken-cron.yaml",
        r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: broken}
spec:
  schedule: "61 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox}]
"#,
    );
    let err = s.fails(&["create", "-f", &broken]);
    assert!(
        err.contains("spec.schedule: Invalid value: \"61 * * * *\"")
            && err.contains("above maximum"),
        "{err}"
    );

    // The next minute boundary fires a Job named after the scheduled minute.
    eventually("a Job from the CronJob", || {
        !items(&s.get_json(&["jobs", "-l", "app=tick"])).is_empty()
    });
    let job = items(&s.get_json(&["jobs", "-l", "app=tick"]))[0].clone();
    let jname = name(&job);
    let minutes: i64 = jname.strip_prefix("tick-").unwrap().parse().unwrap();
    let stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        stamp.ends_with("+01:00") || stamp.ends_with("+02:00"),
        "scheduled time in the CronJob's zone: {stamp}"
    );
    assert_eq!(
        job["metadata"]["ownerReferences"][0]["kind"],
        json!("CronJob")
    );
    // The status follows the Job's creation.
    eventually("the Job in status.active", || {
        s.get_json(&["cronjob", "tick"])["status"]["active"][0]["name"] == json!(jname)
    });
    let cj = s.get_json(&["cronjob", "tick"]);
    let last = cj["status"]["lastScheduleTime"].as_str().unwrap();
    let parsed: Vec<&str> = last.split(['T', ':']).collect();
    assert_eq!(
        parsed[2],
        format!("{:02}", minutes % 60),
        "{last} vs {jname}"
    );
    assert!(has_event(&s, "tick", "SuccessfulCreate"));

    // It completes: seen, recorded as the last success, and (history 0) deleted.
    let sel = format!("{JOB_LABEL}={jname}");
    eventually("the Job's pod", || !pods(&s, &sel).is_empty());
    set_phase(&s, &name(&pods(&s, &sel)[0]), "Succeeded", false);
    eventually("lastSuccessfulTime and the Job deleted", || {
        let cj = s.get_json(&["cronjob", "tick"]);
        cj["status"]["lastSuccessfulTime"].is_string()
            && cj["status"]["active"].is_null()
            && !s.exists(&["job", &jname])
    });
    assert!(has_event(&s, "tick", "SawCompletedJob"));
    assert!(has_event(&s, "tick", "SuccessfulDelete"));
}

#[test]
fn finished_jobs_with_a_ttl_are_deleted_with_their_pods() {
    let s = Server::start();
    let job = s.manifest(
        "job.yaml",
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: brief}
spec:
  ttlSecondsAfterFinished: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: kept}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
"#,
    );
    s.ok(&["create", "-f", &job]);
    for j in ["brief", "kept"] {
        let sel = format!("{JOB_LABEL}={j}");
        eventually("a pod", || pods(&s, &sel).len() == 1);
        set_phase(&s, &name(&pods(&s, &sel)[0]), "Succeeded", false);
    }
    eventually("the Job with a TTL and its pod are gone", || {
        !s.exists(&["job", "brief"]) && pods(&s, &format!("{JOB_LABEL}=brief")).is_empty()
    });
    assert!(condition(&s.get_json(&["job", "kept"]), "Complete").is_some());
    assert_eq!(pods(&s, &format!("{JOB_LABEL}=kept")).len(), 1);
}

fn node_of(p: &Value) -> String {
    p["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn daemonset_runs_one_pod_per_node_and_rolls_updates() {
    let s = Server::start();
    let _agent = s.start_agent(&["--simulate", "3"]);
    eventually("three nodes", || items(&s.get_json(&["nodes"])).len() == 3);
    let ds = s.manifest(
        "ds.yaml",
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: main, image: "agent:1"}]
"#,
    );
    s.ok(&["create", "-f", &ds]);
    eventually("a ready pod on each of the three nodes", || {
        let ps = pods(&s, "app=agent");
        let mut nodes: Vec<String> = ps
            .iter()
            .filter(|p| condition(p, "Ready").is_some())
            .map(node_of)
            .collect();
        nodes.sort();
        ps.len() == 3 && nodes == ["sim-0", "sim-1", "sim-2"]
    });
    for p in pods(&s, "app=agent") {
        // Pinned by affinity (the scheduler bound it), tolerating node trouble, hashed.
        let term = &p["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0];
        assert_eq!(term["matchFields"][0]["key"], json!("metadata.name"));
        assert_eq!(term["matchFields"][0]["values"], json!([node_of(&p)]));
        let tolerations = p["spec"]["tolerations"].to_string();
        assert!(
            tolerations.contains("node.kubernetes.io/unreachable"),
            "{tolerations}"
        );
        assert!(
            tolerations.contains("node.kubernetes.io/unschedulable"),
            "{tolerations}"
        );
        assert!(p["metadata"]["labels"]["controller-revision-hash"].is_string());
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["kind"],
            json!("DaemonSet")
        );
    }
    eventually("status counts three ready", || {
        let st = &s.get_json(&["ds", "agent"])["status"];
        st["desiredNumberScheduled"] == 3
            && st["currentNumberScheduled"] == 3
            && st["numberReady"] == 3
            && st["numberAvailable"] == 3
            && st["updatedNumberScheduled"] == 3
            && st["numberMisscheduled"] == 0
    });
    assert_eq!(items(&s.get_json(&["controllerrevisions"])).len(), 1);

    // A node that joins later gets its pod.
    let _extra = s.start_agent(&["--simulate", "1", "--node-name-prefix", "extra-"]);
    eventually("a ready pod on the new node", || {
        pods(&s, "app=agent")
            .iter()
            .any(|p| node_of(p) == "extra-0" && condition(p, "Ready").is_some())
    });
    eventually("desired 4", || {
        s.get_json(&["ds", "agent"])["status"]["numberReady"] == 4
    });

    // A new template rolls out node by node; a second revision records it.
    s.ok(&["set", "image", "ds/agent", "main=agent:2"]);
    eventually("every pod on the new image and ready", || {
        let ps = pods(&s, "app=agent");
        ps.len() == 4
            && ps.iter().all(|p| {
                p["spec"]["containers"][0]["image"] == "agent:2" && condition(p, "Ready").is_some()
            })
    });
    eventually("updatedNumberScheduled 4", || {
        s.get_json(&["ds", "agent"])["status"]["updatedNumberScheduled"] == 4
    });
    let revs = items(&s.get_json(&["controllerrevisions"]));
    assert_eq!(revs.len(), 2);
    let out = s.ok(&["rollout", "history", "ds/agent"]);
    assert!(out.contains('1') && out.contains('2'), "{out}");
    let out = s.ok(&["rollout", "status", "ds/agent", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");

    // Undo applies the previous revision's template; its revision becomes the newest.
    s.ok(&["rollout", "undo", "ds/agent"]);
    eventually("every pod back on the old image and ready", || {
        let ps = pods(&s, "app=agent");
        ps.len() == 4
            && ps.iter().all(|p| {
                p["spec"]["containers"][0]["image"] == "agent:1" && condition(p, "Ready").is_some()
            })
    });
    let revs = items(&s.get_json(&["controllerrevisions"]));
    assert_eq!(revs.len(), 2, "the old revision is reused, not copied");
    assert!(revs.iter().any(|r| r["revision"] == 3));
    assert!(has_event(&s, "agent", "SuccessfulCreate"));
    assert!(has_event(&s, "agent", "SuccessfulDelete"));
}

/// The index of the first watch line satisfying `f`.
fn first_line(lines: &[String], f: impl Fn(&str) -> bool) -> Option<usize> {
    lines.iter().position(|l| f(l))
}

fn cols(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn statefulset_creates_in_order_scales_down_in_reverse_and_rolls() {
    let s = Server::start();
    let _agent = s.start_agent(&["--simulate", "3"]);
    eventually("three nodes", || items(&s.get_json(&["nodes"])).len() == 3);
    let sts = s.manifest(
        "sts.yaml",
        r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  updateStrategy: {type: RollingUpdate}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: main, image: "web:1"}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#,
    );
    let mut w = s.watch(33, &["pods", "-l", "app=web", "--output-watch-events"]);
    s.ok(&["create", "-f", &sts]);
    eventually("web-2 ready", || {
        s.exists(&["pod", "web-2"]) && condition(&s.get_json(&["pod", "web-2"]), "Ready").is_some()
    });
    w.wait_for("web-2 ready", |l| {
        let c = cols(l);
        c.len() > 2 && c[1] == "web-2" && c[2] == "1/1"
    });
    // Pod N+1 appears only once pod N is Ready.
    for n in 0..2 {
        let ready = first_line(&w.lines, |l| {
            let c = cols(l);
            c.len() > 2 && c[1] == format!("web-{n}") && c[2] == "1/1"
        })
        .unwrap();
        let next = first_line(&w.lines, |l| {
            cols(l).get(1) == Some(&format!("web-{}", n + 1).as_str())
        })
        .unwrap();
        assert!(
            ready < next,
            "web-{} before web-{n} was ready: {:?}",
            n + 1,
            w.lines
        );
    }
    for n in 0..3 {
        let p = s.get_json(&["pod", &format!("web-{n}")]);
        let l = &p["metadata"]["labels"];
        assert_eq!(
            l["statefulset.kubernetes.io/pod-name"],
            json!(format!("web-{n}"))
        );
        assert_eq!(l["apps.kubernetes.io/pod-index"], json!(n.to_string()));
        assert!(l["controller-revision-hash"]
            .as_str()
            .unwrap()
            .starts_with("web-"));
        assert_eq!(p["spec"]["hostname"], json!(format!("web-{n}")));
        assert_eq!(p["spec"]["subdomain"], json!("web"));
        let vol = p["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "data")
            .unwrap()
            .clone();
        assert_eq!(
            vol["persistentVolumeClaim"]["claimName"],
            json!(format!("data-web-{n}"))
        );
        let pvc = s.get_json(&["pvc", &format!("data-web-{n}")]);
        assert_eq!(pvc["metadata"]["labels"]["app"], json!("web"));
    }
    eventually("status: 3 ready, one revision", || {
        let st = &s.get_json(&["sts", "web"])["status"];
        st["replicas"] == 3
            && st["readyReplicas"] == 3
            && st["availableReplicas"] == 3
            && st["currentReplicas"] == 3
            && st["updatedReplicas"] == 3
            && st["currentRevision"].is_string()
            && st["currentRevision"] == st["updateRevision"]
    });

    // A rolling update replaces pods from the highest ordinal down.
    let before = s.get_json(&["sts", "web"])["status"]["currentRevision"].clone();
    s.ok(&["set", "image", "sts/web", "main=web:2"]);
    eventually("rolled out", || {
        let st = &s.get_json(&["sts", "web"])["status"];
        st["updatedReplicas"] == 3
            && st["readyReplicas"] == 3
            && st["currentRevision"] == st["updateRevision"]
            && st["currentRevision"] != before
    });
    for n in 0..3 {
        let p = s.get_json(&["pod", &format!("web-{n}")]);
        assert_eq!(p["spec"]["containers"][0]["image"], json!("web:2"));
    }
    let out = s.ok(&["rollout", "status", "sts/web", "--timeout=60s"]);
    // With the defaulted `rollingUpdate.partition: 0`, kubectl reports it as upstream does.
    assert!(
        out.contains("partitioned roll out complete: 3 new pods have been updated"),
        "{out}"
    );
    let deleted = |name: &str, lines: &[String]| {
        first_line(lines, |l| {
            let c = cols(l);
            c.len() > 1 && c[0] == "DELETED" && c[1] == name
        })
    };
    // The rollout is done, so the watch has the old web-0's deletion coming.
    w.wait_for("the old web-0 deleted", |l| {
        let c = cols(l);
        c.len() > 1 && c[0] == "DELETED" && c[1] == "web-0"
    });
    let d2 = deleted("web-2", &w.lines).unwrap();
    let d1 = deleted("web-1", &w.lines).unwrap();
    let d0 = deleted("web-0", &w.lines).unwrap();
    assert!(d2 < d1 && d1 < d0, "update order: {:?}", w.lines);
    assert_eq!(
        items(&s.get_json(&["controllerrevisions", "-l", "app=web"])).len(),
        2
    );

    // Scale down: the highest ordinal goes first, and its claim stays.
    s.ok(&["scale", "sts/web", "--replicas=1"]);
    eventually("one pod left", || pods(&s, "app=web").len() == 1);
    assert_eq!(name(&pods(&s, "app=web")[0]), "web-0");
    let seen = w.lines.len();
    w.wait_for("web-2 deleted", |l| {
        let c = cols(l);
        c.len() > 1 && c[0] == "DELETED" && c[1] == "web-2"
    });
    w.wait_for("web-1 deleted", |l| {
        let c = cols(l);
        c.len() > 1 && c[0] == "DELETED" && c[1] == "web-1"
    });
    assert!(w.lines.len() > seen);
    let last_d2 = w
        .lines
        .iter()
        .rposition(|l| cols(l).first() == Some(&"DELETED") && cols(l).get(1) == Some(&"web-2"))
        .unwrap();
    let last_d1 = w
        .lines
        .iter()
        .rposition(|l| cols(l).first() == Some(&"DELETED") && cols(l).get(1) == Some(&"web-1"))
        .unwrap();
    assert!(last_d2 < last_d1, "scale-down order: {:?}", w.lines);
    assert!(s.exists(&["pvc", "data-web-2"]));
    assert!(has_event(&s, "web", "SuccessfulCreate"));
    assert!(has_event(&s, "web", "SuccessfulDelete"));
}

#[test]
fn jobs_on_simulated_nodes_respect_parallelism_and_backoff_limit() {
    let s = Server::start();
    let _agent = s.start_agent(&["--simulate", "3"]);
    eventually("three nodes", || items(&s.get_json(&["nodes"])).len() == 3);
    let mut w = s.watch(
        33,
        &[
            "pods",
            "-l",
            "batch.kubernetes.io/job-name=para",
            "--output-watch-events",
            "-o",
            // With watch events, the columns read the WatchEvent around the pod.
            "custom-columns=EVENT:.type,NAME:.object.metadata.name,PHASE:.object.status.phase,DELETING:.object.metadata.deletionTimestamp",
        ],
    );
    let jobs = s.manifest(
        "jobs.yaml",
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: para}
spec:
  completions: 5
  parallelism: 2
  template:
    metadata:
      annotations: {pod.skiff.dev/simulate-run-seconds: "1"}
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: crash}
spec:
  backoffLimit: 1
  template:
    metadata:
      annotations:
        pod.skiff.dev/simulate-run-seconds: "0"
        pod.skiff.dev/simulate-exit-code: "3"
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
"#,
    );
    s.ok(&["create", "-f", &jobs]);
    eventually("para Complete", || {
        condition(&s.get_json(&["job", "para"]), "Complete").is_some()
    });
    let j = s.get_json(&["job", "para"]);
    assert_eq!(j["status"]["succeeded"], json!(5));
    assert_eq!(pods(&s, "batch.kubernetes.io/job-name=para").len(), 5);

    // Replay the watch: never more than two pods active at once.
    let succeeded = std::cell::RefCell::new(std::collections::HashSet::new());
    w.wait_for("five pods seen Succeeded", |l| {
        let c = cols(l);
        if c.len() > 2 && c[2] == "Succeeded" {
            succeeded.borrow_mut().insert(c[1].to_string());
        }
        succeeded.borrow().len() == 5
    });
    let mut state: std::collections::BTreeMap<String, bool> = Default::default();
    let mut most = 0;
    for l in &w.lines {
        let c = cols(l);
        if c.len() < 4 || c[0] == "EVENT" {
            continue;
        }
        let live = c[0] != "DELETED" && !matches!(c[2], "Succeeded" | "Failed") && c[3] == "<none>";
        state.insert(c[1].to_string(), live);
        most = most.max(state.values().filter(|v| **v).count());
    }
    assert_eq!(state.len(), 5, "{:?}", w.lines);
    assert!(most <= 2, "{most} pods active at once: {:?}", w.lines);

    eventually("crash Failed: BackoffLimitExceeded", || {
        let j = s.get_json(&["job", "crash"]);
        condition(&j, "Failed").is_some_and(|c| c["reason"] == "BackoffLimitExceeded")
    });
    let j = s.get_json(&["job", "crash"]);
    assert_eq!(j["status"]["failed"], json!(2));
    assert_eq!(pods(&s, "batch.kubernetes.io/job-name=crash").len(), 2);
}

#[test]
fn deleted_jobs_never_leave_pods_stuck_on_the_tracking_finalizer() {
    let s = Server::start();
    let job = s.manifest(
        "job.yaml",
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: gone}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: orphaned}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
"#,
    );
    s.ok(&["create", "-f", &job]);
    for j in ["gone", "orphaned"] {
        eventually("a pod", || pods(&s, &format!("{JOB_LABEL}={j}")).len() == 1);
    }
    // Cascading delete: the garbage collector deletes the pod, the finalizer is released.
    s.ok(&["delete", "job", "gone"]);
    eventually("the deleted Job's pod is gone", || {
        pods(&s, &format!("{JOB_LABEL}=gone")).is_empty()
    });
    // Orphaning delete: the pod stays, without the Job and without the finalizer.
    s.ok(&["delete", "job", "orphaned", "--cascade=orphan"]);
    eventually("the orphan's finalizer released", || {
        let ps = pods(&s, &format!("{JOB_LABEL}=orphaned"));
        ps.len() == 1
            && ps[0]["metadata"]["ownerReferences"].is_null()
            && ps[0]["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty())
    });
}

#[test]
fn parallel_statefulset_with_claims_deleted_on_scale_down() {
    let s = Server::start();
    let sts = s.manifest(
        "sts.yaml",
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  podManagementPolicy: Parallel
  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Retain}
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: main, image: "db:1"}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#,
    );
    s.ok(&["create", "-f", &sts]);
    // Parallel: all three at once, none of them ready (no nodes here).
    eventually("three pods and claims", || {
        pods(&s, "app=db").len() == 3 && (0..3).all(|n| s.exists(&["pvc", &format!("data-db-{n}")]))
    });
    s.ok(&["scale", "sts/db", "--replicas=1"]);
    eventually("scaled down, claims of removed pods deleted", || {
        pods(&s, "app=db").len() == 1
            && !s.exists(&["pvc", "data-db-1"])
            && !s.exists(&["pvc", "data-db-2"])
    });
    assert!(s.exists(&["pvc", "data-db-0"]));
    assert_eq!(name(&pods(&s, "app=db")[0]), "db-0");
}
