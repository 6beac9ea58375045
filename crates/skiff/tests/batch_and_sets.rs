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
    assert_eq!(j["status"]["active"], json!(0));
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
    let j = s.get_json(&["job", "later"]);
    let c = j["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Suspended")
        .unwrap()
        .clone();
    assert_eq!(c["status"], json!("False"));
    assert_eq!(c["reason"], json!("JobResumed"));
    assert!(has_event(&s, "later", "Suspended"));
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
        err.contains("spec.schedule: Invalid value: \"61 * * * *\"") && err.contains("above maximum"),
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
    let cj = s.get_json(&["cronjob", "tick"]);
    assert_eq!(cj["status"]["active"][0]["name"], json!(jname));
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
