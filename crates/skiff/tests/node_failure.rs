//! Node failures with simulated nodes, the scheduler and the controllers together, driven
//! by real kubectl: a NoExecute taint evicts a node's pods and their Deployment replaces
//! them elsewhere; a node whose heartbeats stop becomes NotReady (Unknown), is tainted
//! unreachable, and loses its pods once their toleration runs out.

mod common;

use common::{eventually, Server};
use serde_json::Value;

fn pods(s: &Server) -> Vec<Value> {
    s.get_json(&["pods", "-l", "app=web"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn node_of(p: &Value) -> &str {
    p["spec"]["nodeName"].as_str().unwrap_or_default()
}

fn running_ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
        && p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Live (not terminating) pods that run and are ready, by node.
fn live_nodes(s: &Server) -> Vec<String> {
    let mut v: Vec<String> = pods(s)
        .iter()
        .filter(|p| running_ready(p))
        .map(|p| node_of(p).to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn tainted_and_silent_nodes_lose_their_pods_to_healthy_ones() {
    let s = Server::start_with(&["--node-monitor-grace-period", "5"]);
    let _agent = s.start_agent(&["--simulate", "3", "--lease-renew-interval", "1"]);
    eventually("3 ready nodes", || {
        s.get_json(&["nodes"])["items"]
            .as_array()
            .is_some_and(|ns| {
                ns.len() == 3
                    && ns.iter().all(|n| {
                        n["status"]["conditions"].as_array().is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c["type"] == "Ready" && c["status"] == "True")
                        })
                    })
            })
    });
    let web = s.manifest(
        "web.yaml",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 3}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 3}
      containers: [{name: web, image: nginx, resources: {requests: {cpu: 100m}}}]
"#,
    );
    s.ok(&["apply", "-f", &web]);
    eventually("6 pods running over the nodes", || {
        live_nodes(&s).len() == 6
    });
    let spread = live_nodes(&s);
    assert!(spread.contains(&"sim-0".to_string()), "{spread:?}");

    // A NoExecute taint the pods do not tolerate: sim-0 is emptied, the pods come back elsewhere.
    s.ok(&["taint", "node", "sim-0", "maintenance=now:NoExecute"]);
    eventually("no pod left on sim-0 and 6 running elsewhere", || {
        pods(&s).iter().all(|p| node_of(p) != "sim-0") && live_nodes(&s).len() == 6
    });
    let ev = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=TaintManagerEviction",
    ]);
    assert!(ev.contains("Marking for deletion Pod default/web-"), "{ev}");

    // sim-1 stops heartbeating: Unknown, unreachable taints, its pods evicted after 3 s.
    s.ok(&[
        "annotate",
        "node",
        "sim-1",
        "node.skiff.dev/simulate-heartbeat=stopped",
    ]);
    eventually("sim-1 Unknown", || {
        let n = s.get_json(&["node", "sim-1"]);
        n["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "Unknown")
        })
    });
    eventually("unreachable taints on sim-1", || {
        let t = s.taint_keys("sim-1");
        t.contains(&"node.kubernetes.io/unreachable:NoExecute".to_string())
            && t.contains(&"node.kubernetes.io/unreachable:NoSchedule".to_string())
    });
    let printed = s.ok(&["get", "nodes"]);
    assert!(printed.contains("NotReady"), "{printed}");
    // The silent node cannot confirm deletions (its pods stay Terminating, as with a hung
    // kubelet), but the replacements run on the one healthy node.
    eventually("6 pods running on sim-2", || {
        live_nodes(&s) == vec!["sim-2".to_string(); 6]
    });
    for p in pods(&s).iter().filter(|p| node_of(p) == "sim-1") {
        assert!(p["metadata"]["deletionTimestamp"].is_string(), "{p:#}");
    }

    // Heartbeats resume: the node is Ready again and its taints go.
    s.ok(&[
        "annotate",
        "node",
        "sim-1",
        "node.skiff.dev/simulate-heartbeat-",
    ]);
    eventually("sim-1 ready and untainted", || {
        s.taint_keys("sim-1").is_empty()
    });
}

#[test]
fn drain_honours_disruption_budgets() {
    let s = Server::start();
    let _agent = s.start_agent(&["--simulate", "3"]);
    let web = s.manifest(
        "web.yaml",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:
      # Honor: a cordoned node stops counting as a domain, so the spread allows the move.
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, nodeTaintsPolicy: Honor, labelSelector: {matchLabels: {app: web}}}
      containers: [{name: web, image: nginx}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 3
  selector: {matchLabels: {app: web}}
"#,
    );
    s.ok(&["apply", "-f", &web]);
    eventually("one pod on each node", || {
        live_nodes(&s) == ["sim-0", "sim-1", "sim-2"]
    });
    eventually("the budget counts 3 healthy pods", || {
        s.get_json(&["pdb", "web"])["status"]["currentHealthy"] == 3
    });
    // No disruption allowed: drain gives up, saying why; the pod stays.
    let out = s.kubectl(&["drain", "sim-0", "--ignore-daemonsets", "--timeout=8s"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{err}"
    );
    assert!(live_nodes(&s).contains(&"sim-0".to_string()));
    // With one disruption allowed, drain evicts the pod; it comes back on another node
    // (sim-0 is cordoned by the drain).
    s.ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":2}}"#,
    ]);
    eventually("one disruption allowed", || {
        s.get_json(&["pdb", "web"])["status"]["disruptionsAllowed"] == 1
    });
    let out = s.ok(&["drain", "sim-0", "--ignore-daemonsets", "--timeout=60s"]);
    assert!(out.contains("evicted") && out.contains("drained"), "{out}");
    eventually("3 pods running off sim-0", || {
        let n = live_nodes(&s);
        n.len() == 3 && !n.contains(&"sim-0".to_string())
    });
    assert!(s
        .taint_keys("sim-0")
        .contains(&"node.kubernetes.io/unschedulable:NoSchedule".to_string()));
}
