//! The scheduler inside `skiff server`, driven with real kubectl against Node objects
//! created directly (no kubelets, like upstream's scheduler_perf): placement, upstream's
//! FailedScheduling messages and PodScheduled condition, node selection and affinity,
//! anti-affinity, topology spread, taints, priority preemption and schedulerName.
//! Behaviour is asserted by bounded polling, never timings.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{eventually, Server};
use serde_json::{json, Value};

/// Creates a Node with labels, taints and allocatable cpu/memory (status is set through the
/// status subresource, as a kubelet would report it).
fn node(s: &Server, name: &str, labels: Value, taints: Value, cpu: &str) {
    let mut labels = labels;
    labels["kubernetes.io/hostname"] = json!(name);
    let obj = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints}});
    let f = s.manifest(&format!("node-{name}.json"), &obj.to_string());
    s.ok(&["create", "-f", &f]);
    let res = json!({"cpu": cpu, "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    let status = json!({"status": {"capacity": res, "allocatable": res}});
    s.ok(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

fn nodes(s: &Server, n: usize) {
    for i in 0..n {
        node(s, &format!("node-{i}"), json!({}), json!([]), "4");
    }
}

/// Creates a pod from `spec` (merged over one pause container requesting `cpu`).
fn pod(s: &Server, name: &str, labels: Value, cpu: &str, extra: Value) {
    let mut spec = json!({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": cpu, "memory": "100Mi"}}}]});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    let obj = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels}, "spec": spec});
    let f = s.manifest(&format!("pod-{name}.json"), &obj.to_string());
    s.ok(&["create", "-f", &f]);
}

fn node_of(s: &Server, name: &str) -> Option<String> {
    s.get_json(&["pod", name])["spec"]["nodeName"]
        .as_str()
        .map(str::to_string)
}

fn wait_bound(s: &Server, name: &str) -> String {
    eventually_bound(s, "default", name)
}

fn events_for(s: &Server, name: &str) -> Vec<Value> {
    s.get_json(&["events", "-A"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == json!(name))
        .cloned()
        .collect()
}

fn event_messages(s: &Server, name: &str, reason: &str) -> Vec<String> {
    events_for(s, name)
        .iter()
        .filter(|e| e["reason"] == json!(reason))
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

fn wait_failed_scheduling(s: &Server, name: &str) -> String {
    let mut msg = String::new();
    eventually(
        &format!("FailedScheduling event for {name}"),
        || match event_messages(s, name, "FailedScheduling").pop() {
            Some(m) => {
                msg = m;
                true
            }
            None => false,
        },
    );
    msg
}

fn pod_scheduled_condition(s: &Server, name: &str) -> Option<Value> {
    s.get_json(&["pod", name])["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == json!("PodScheduled"))
        .cloned()
}

#[test]
fn pods_are_spread_over_nodes_and_bound() {
    let s = Server::start();
    nodes(&s, 3);
    for i in 0..6 {
        pod(
            &s,
            &format!("web-{i}"),
            json!({"app": "web"}),
            "500m",
            json!({}),
        );
    }
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..6 {
        *per_node
            .entry(wait_bound(&s, &format!("web-{i}")))
            .or_default() += 1;
    }
    // LeastAllocated spreads equal pods evenly over equal nodes.
    assert_eq!(per_node.len(), 3, "{per_node:?}");
    assert!(per_node.values().all(|n| *n == 2), "{per_node:?}");
    let node0 = node_of(&s, "web-0").unwrap();
    eventually("Scheduled event", || {
        event_messages(&s, "web-0", "Scheduled")
            .contains(&format!("Successfully assigned default/web-0 to {node0}"))
    });
    let cond = pod_scheduled_condition(&s, "web-0").unwrap();
    assert_eq!(cond["status"], json!("True"));
}

#[test]
fn a_pod_too_big_for_every_node_stays_pending_with_upstreams_message() {
    let s = Server::start();
    node(
        &s,
        "control",
        json!({"node-role.kubernetes.io/control-plane": ""}),
        json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
        "4",
    );
    node(&s, "worker-1", json!({}), json!([]), "4");
    node(&s, "worker-2", json!({}), json!([]), "4");
    pod(&s, "big", json!({}), "100", json!({}));
    let want = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    assert_eq!(wait_failed_scheduling(&s, "big"), want);
    let ev = events_for(&s, "big");
    let ev = ev
        .iter()
        .find(|e| e["reason"] == json!("FailedScheduling"))
        .unwrap();
    assert_eq!(ev["type"], json!("Warning"));
    assert_eq!(ev["source"]["component"], json!("default-scheduler"));
    eventually("PodScheduled=False condition", || {
        pod_scheduled_condition(&s, "big").is_some_and(|c| {
            c["status"] == json!("False")
                && c["reason"] == json!("Unschedulable")
                && c["message"] == json!(want)
        })
    });
    assert_eq!(node_of(&s, "big"), None);
    // `kubectl get` shows it Pending.
    assert_eq!(
        s.get_json(&["pod", "big"])["status"]["phase"],
        json!("Pending")
    );

    // A node big enough arrives: the pod is retried on the event and lands there.
    node(&s, "huge", json!({}), json!([]), "128");
    assert_eq!(wait_bound(&s, "big"), "huge");
}

#[test]
fn node_selector_and_node_affinity() {
    let s = Server::start();
    node(
        &s,
        "a",
        json!({"disk": "ssd", "zone": "z1"}),
        json!([]),
        "4",
    );
    node(
        &s,
        "b",
        json!({"disk": "hdd", "zone": "z2"}),
        json!([]),
        "4",
    );
    node(
        &s,
        "c",
        json!({"disk": "hdd", "zone": "z3"}),
        json!([]),
        "4",
    );
    pod(
        &s,
        "fast",
        json!({}),
        "100m",
        json!({"nodeSelector": {"disk": "ssd"}}),
    );
    let affinity = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}]}}}});
    pod(&s, "zoned", json!({}), "100m", affinity);
    let preferred = json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z3"]}]}}]}}});
    pod(&s, "prefers", json!({}), "100m", preferred);
    pod(
        &s,
        "nowhere",
        json!({}),
        "100m",
        json!({"nodeSelector": {"disk": "nvme"}}),
    );
    assert_eq!(wait_bound(&s, "fast"), "a");
    assert_eq!(wait_bound(&s, "zoned"), "b");
    assert_eq!(wait_bound(&s, "prefers"), "c");
    assert_eq!(
        wait_failed_scheduling(&s, "nowhere"),
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[test]
fn required_anti_affinity_puts_one_pod_per_node() {
    let s = Server::start();
    nodes(&s, 3);
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    for i in 0..3 {
        pod(
            &s,
            &format!("db-{i}"),
            json!({"app": "db"}),
            "100m",
            anti.clone(),
        );
    }
    let placed: BTreeSet<String> = (0..3).map(|i| wait_bound(&s, &format!("db-{i}"))).collect();
    assert_eq!(placed.len(), 3, "one per node: {placed:?}");
    pod(&s, "db-3", json!({"app": "db"}), "100m", anti);
    assert_eq!(
        wait_failed_scheduling(&s, "db-3"),
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
    // A plain pod matching their selector is kept off their nodes by *their* anti-affinity.
    pod(&s, "intruder", json!({"app": "db"}), "100m", json!({}));
    assert!(wait_failed_scheduling(&s, "intruder").starts_with(
        "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules."
    ));
    // Deleting one frees its node for the pending pods.
    s.ok(&["delete", "pod", "db-0", "--grace-period=0", "--force"]);
    eventually("a pending pod takes the freed node", || {
        node_of(&s, "db-3").is_some() || node_of(&s, "intruder").is_some()
    });
}

#[test]
fn topology_spread_keeps_zones_within_max_skew() {
    let s = Server::start();
    for (i, zone) in ["z1", "z1", "z2", "z2", "z3", "z3"].iter().enumerate() {
        node(
            &s,
            &format!("n{i}"),
            json!({"topology.kubernetes.io/zone": zone}),
            json!([]),
            "8",
        );
    }
    let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}}}]});
    for i in 0..6 {
        pod(
            &s,
            &format!("s-{i}"),
            json!({"app": "spread"}),
            "100m",
            spread.clone(),
        );
    }
    let zone_of = |node: &str| {
        s.get_json(&["node", node])["metadata"]["labels"]["topology.kubernetes.io/zone"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut per_zone: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..6 {
        let n = wait_bound(&s, &format!("s-{i}"));
        *per_zone.entry(zone_of(&n)).or_default() += 1;
    }
    assert_eq!(
        per_zone.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2]
    );
    // Pods restricted to z1 that still count every zone (nodeAffinityPolicy Ignore): one
    // more fits in z1 (skew 1), the next would make the skew 2.
    let mut c = spread["topologySpreadConstraints"][0].clone();
    c["nodeAffinityPolicy"] = json!("Ignore");
    let only_z1 = json!({"topologySpreadConstraints": [c],
        "nodeSelector": {"topology.kubernetes.io/zone": "z1"}});
    pod(&s, "s-6", json!({"app": "spread"}), "100m", only_z1.clone());
    assert_eq!(zone_of(&wait_bound(&s, "s-6")), "z1");
    pod(&s, "s-7", json!({"app": "spread"}), "100m", only_z1);
    assert_eq!(
        wait_failed_scheduling(&s, "s-7"),
        "0/6 nodes are available: 2 node(s) didn't match pod topology spread constraints, 4 node(s) didn't match Pod's node affinity/selector. preemption: 0/6 nodes are available: 2 No preemption victims found for incoming pod, 4 Preemption is not helpful for scheduling."
    );
}

#[test]
fn taints_and_tolerations() {
    let s = Server::start();
    node(
        &s,
        "gpu",
        json!({"pool": "gpu"}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        "4",
    );
    node(&s, "plain", json!({"pool": "plain"}), json!([]), "4");
    for i in 0..3 {
        pod(&s, &format!("any-{i}"), json!({}), "100m", json!({}));
    }
    for i in 0..3 {
        assert_eq!(wait_bound(&s, &format!("any-{i}")), "plain");
    }
    let tolerant = json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
        "nodeSelector": {"pool": "gpu"}});
    pod(&s, "trainer", json!({}), "100m", tolerant);
    assert_eq!(wait_bound(&s, "trainer"), "gpu");
    // PreferNoSchedule only steers.
    node(
        &s,
        "soft",
        json!({}),
        json!([{"key": "maintenance", "effect": "PreferNoSchedule"}]),
        "64",
    );
    pod(
        &s,
        "steered",
        json!({}),
        "100m",
        json!({"nodeSelector": {"pool": "plain"}}),
    );
    assert_eq!(wait_bound(&s, "steered"), "plain");
    pod(
        &s,
        "selector-on-gpu",
        json!({}),
        "100m",
        json!({"nodeSelector": {"pool": "gpu"}}),
    );
    assert!(wait_failed_scheduling(&s, "selector-on-gpu").starts_with(
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector."
    ));
}

#[test]
fn a_high_priority_pod_preempts_a_lower_one() {
    let s = Server::start();
    node(&s, "only", json!({}), json!([]), "1");
    for (name, value) in [("low", 10), ("high", 1000)] {
        let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value});
        let f = s.manifest(&format!("pc-{name}.json"), &pc.to_string());
        s.ok(&["create", "-f", &f]);
    }
    pod(
        &s,
        "victim",
        json!({}),
        "800m",
        json!({"priorityClassName": "low", "terminationGracePeriodSeconds": 0}),
    );
    assert_eq!(wait_bound(&s, "victim"), "only");
    let victim_uid = s.get_json(&["pod", "victim"])["metadata"]["uid"].clone();
    pod(
        &s,
        "vip",
        json!({}),
        "800m",
        json!({"priorityClassName": "high"}),
    );
    let vip_uid = s.get_json(&["pod", "vip"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(wait_bound(&s, "vip"), "only");
    eventually("victim deleted", || {
        !s.exists(&["pod", "victim"])
            || s.get_json(&["pod", "victim"])["metadata"]["uid"] != victim_uid
    });
    let preempted: Vec<String> = s.get_json(&["events"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == json!("Preempted") && e["involvedObject"]["uid"] == victim_uid)
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        preempted,
        vec![format!("Preempted by pod {vip_uid} on node only")]
    );

    // preemptionPolicy Never waits instead, with upstream's reason.
    let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "polite"}, "value": 5000, "preemptionPolicy": "Never"});
    let f = s.manifest("pc-polite.json", &pc.to_string());
    s.ok(&["create", "-f", &f]);
    pod(
        &s,
        "polite",
        json!({}),
        "800m",
        json!({"priorityClassName": "polite", "preemptionPolicy": "Never"}),
    );
    assert_eq!(
        wait_failed_scheduling(&s, "polite"),
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    );
    assert_eq!(node_of(&s, "vip").as_deref(), Some("only"));
}

#[test]
fn pods_for_another_scheduler_are_left_alone() {
    let s = Server::start();
    nodes(&s, 1);
    pod(&s, "mine", json!({}), "100m", json!({}));
    pod(
        &s,
        "theirs",
        json!({}),
        "100m",
        json!({"schedulerName": "other-scheduler"}),
    );
    wait_bound(&s, "mine");
    // Once a later pod of ours is bound, the other one has certainly been seen and skipped.
    pod(&s, "mine-2", json!({}), "100m", json!({}));
    wait_bound(&s, "mine-2");
    assert_eq!(node_of(&s, "theirs"), None);
    assert!(events_for(&s, "theirs").is_empty());
}

/// Affinity terms with a `namespaceSelector` count pods in the namespaces whose labels it
/// matches, judged on the namespaces' current labels.
#[test]
fn affinity_namespace_selectors_follow_namespace_labels() {
    let s = Server::start();
    nodes(&s, 3);
    for (ns, team) in [("team-a", "a"), ("team-b", "b")] {
        s.ok(&["create", "namespace", ns]);
        s.ok(&["label", "namespace", ns, &format!("team={team}")]);
    }
    let create = |name: &str, ns: &str, labels: Value, spec: Value| {
        let mut full = json!({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}}]});
        for (k, v) in spec.as_object().unwrap() {
            full[k] = v.clone();
        }
        let obj = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": full});
        let f = s.manifest(&format!("pod-{ns}-{name}.json"), &obj.to_string());
        s.ok(&["create", "-f", &f]);
    };
    let term = |team: &str| {
        json!([{"labelSelector": {"matchLabels": {"app": "db"}},
                "namespaceSelector": {"matchLabels": {"team": team}},
                "topologyKey": "kubernetes.io/hostname"}])
    };
    create("db", "team-a", json!({"app": "db"}), json!({}));
    let db_node = eventually_bound(&s, "team-a", "db");

    let near = json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term("a")}}});
    let far = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term("a")}}});
    let other_team = json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": term("b")}}});
    create("near", "default", json!({}), near);
    create("far", "default", json!({}), far);
    create("other-team", "default", json!({}), other_team);
    assert_eq!(eventually_bound(&s, "default", "near"), db_node);
    assert_ne!(eventually_bound(&s, "default", "far"), db_node);
    // No db pod in a namespace labelled team=b: nowhere fits.
    assert!(
        wait_failed_scheduling(&s, "other-team")
            .starts_with("0/3 nodes are available: 3 node(s) didn't match pod affinity rules."),
        "{:?}",
        event_messages(&s, "other-team", "FailedScheduling")
    );
    // Relabelling team-a as team=b makes its db pod count for that term.
    s.ok(&["label", "namespace", "team-a", "team=b", "--overwrite"]);
    assert_eq!(eventually_bound(&s, "default", "other-team"), db_node);
}

fn eventually_bound(s: &Server, ns: &str, name: &str) -> String {
    let mut node = None;
    eventually(&format!("pod {ns}/{name} bound"), || {
        node = s.get_json(&["pod", "-n", ns, name])["spec"]["nodeName"]
            .as_str()
            .map(str::to_string);
        node.is_some()
    });
    node.unwrap()
}
