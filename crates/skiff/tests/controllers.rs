//! The controller manager inside `skiff server`, driven with real kubectl: namespace
//! deletion, the default ServiceAccount, the root-CA ConfigMap and garbage collection with
//! the three propagation policies. Behaviour is asserted by bounded polling.

mod common;

use common::{eventually, Server};
use serde_json::{json, Value};

fn uid(s: &Server, args: &[&str]) -> String {
    s.get_json(args)["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn namespaces_get_defaults_and_are_emptied_on_delete() {
    let s = Server::start();
    // The namespaces the server creates get them too.
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        eventually(&format!("default ServiceAccount in {ns}"), || {
            s.exists(&["-n", ns, "serviceaccount", "default"])
        });
        eventually(&format!("kube-root-ca.crt in {ns}"), || {
            s.exists(&["-n", ns, "configmap", "kube-root-ca.crt"])
        });
    }

    s.ok(&["create", "namespace", "team"]);
    eventually("default ServiceAccount in team", || {
        s.exists(&["-n", "team", "serviceaccount", "default"])
    });
    eventually("kube-root-ca.crt in team", || {
        s.exists(&["-n", "team", "configmap", "kube-root-ca.crt"])
    });
    let ca = std::fs::read_to_string(s.data_dir().join("pki/ca.crt")).unwrap();
    let cm = s.get_json(&["-n", "team", "configmap", "kube-root-ca.crt"]);
    assert_eq!(cm["data"]["ca.crt"], json!(ca));

    // Deleted or edited, they come back.
    s.ok(&["-n", "team", "delete", "serviceaccount", "default"]);
    s.ok(&[
        "-n",
        "team",
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"tampered"}}"#,
    ]);
    eventually("default ServiceAccount recreated", || {
        s.exists(&["-n", "team", "serviceaccount", "default"])
    });
    eventually("kube-root-ca.crt restored", || {
        s.get_json(&["-n", "team", "configmap", "kube-root-ca.crt"])["data"]["ca.crt"] == json!(ca)
    });

    // Content of several kinds, then delete the namespace and wait (kubectl's default).
    s.ok(&[
        "-n",
        "team",
        "create",
        "configmap",
        "settings",
        "--from-literal=a=b",
    ]);
    s.ok(&[
        "-n",
        "team",
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=p=q",
    ]);
    s.ok(&["-n", "team", "create", "deployment", "web", "--image=nginx"]);
    s.ok(&["-n", "team", "create", "serviceaccount", "robot"]);
    let out = s.ok(&["delete", "namespace", "team", "--timeout=60s"]);
    assert!(out.contains("namespace \"team\" deleted"), "{out}");
    assert!(!s.exists(&["namespace", "team"]));
    for kind in [
        "configmaps",
        "secrets",
        "deployments.apps",
        "serviceaccounts",
    ] {
        let list = s.get_json(&[kind, "-A", "--field-selector", "metadata.namespace=team"]);
        assert_eq!(list["items"], json!([]), "{kind} left in team");
    }

    // A name can be reused once the namespace is gone, and gets its defaults again.
    s.ok(&["create", "namespace", "team"]);
    eventually("default ServiceAccount in the new team", || {
        s.exists(&["-n", "team", "serviceaccount", "default"])
    });
}

#[test]
fn namespace_deletion_waits_for_finalizers_and_says_why() {
    let s = Server::start();
    s.ok(&["create", "namespace", "held"]);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "held", "namespace": "held", "finalizers": ["example.com/hold"]}});
    let f = s.manifest("held.json", &cm.to_string());
    s.ok(&["create", "-f", &f]);
    s.ok(&["delete", "namespace", "held", "--wait=false"]);

    let condition = |ty: &str| -> Value {
        let ns = s.get_json(&["namespace", "held"]);
        ns["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == ty)
            .cloned()
            .unwrap_or(Value::Null)
    };
    eventually("NamespaceFinalizersRemaining=True", || {
        condition("NamespaceFinalizersRemaining")["status"] == "True"
    });
    let c = condition("NamespaceFinalizersRemaining");
    assert_eq!(c["reason"], "SomeFinalizersRemain");
    assert_eq!(
        c["message"],
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    );
    let c = condition("NamespaceContentRemaining");
    assert_eq!(c["status"], "True");
    assert_eq!(
        c["message"],
        "Some resources are remaining: configmaps has 1 resource instances"
    );
    assert_eq!(
        condition("NamespaceDeletionContentFailure")["status"],
        "False"
    );
    let ns = s.get_json(&["namespace", "held"]);
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    // The rest of the content is gone already.
    eventually("kube-root-ca.crt deleted", || {
        !s.exists(&["-n", "held", "configmap", "kube-root-ca.crt"])
    });

    // Releasing the finalizer lets the namespace go.
    s.ok(&[
        "-n",
        "held",
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    s.ok(&["wait", "--for=delete", "namespace/held", "--timeout=60s"]);
}

/// Creates ConfigMap `name` labelled `gc=<test>`, owned by `owners` (name, uid, block).
fn owned_cm(s: &Server, name: &str, owners: &[(&str, &str, bool)]) {
    let refs: Vec<Value> = owners
        .iter()
        .map(|(n, u, block)| {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": n, "uid": u,
                   "blockOwnerDeletion": block})
        })
        .collect();
    let mut meta = json!({"name": name, "labels": {"gc": "test"}});
    if !refs.is_empty() {
        meta["ownerReferences"] = json!(refs);
    }
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
        "data": {"k": "v"}});
    let f = s.manifest(&format!("{name}.json"), &cm.to_string());
    s.ok(&["create", "-f", &f]);
}

#[test]
fn garbage_collector_background_deletes_dependents() {
    let s = Server::start();
    owned_cm(&s, "owner", &[]);
    let owner = uid(&s, &["cm", "owner"]);
    owned_cm(&s, "child", &[("owner", &owner, false)]);
    let child = uid(&s, &["cm", "child"]);
    owned_cm(&s, "grandchild", &[("child", &child, false)]);
    // A dependent with a second owner that stays keeps existing, minus the dead reference.
    owned_cm(&s, "other", &[]);
    let other = uid(&s, &["cm", "other"]);
    owned_cm(
        &s,
        "shared",
        &[("owner", &owner, false), ("other", &other, false)],
    );

    s.ok(&["delete", "cm", "owner"]); // kubectl's default: --cascade=background
    eventually("child and grandchild collected", || {
        !s.exists(&["cm", "child"]) && !s.exists(&["cm", "grandchild"])
    });
    eventually("the dead owner reference removed from shared", || {
        s.get_json(&["cm", "shared"])["metadata"]["ownerReferences"]
            == json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "other",
                        "uid": other, "blockOwnerDeletion": false}])
    });

    // A dependent whose owner never existed (dangling reference) is collected too.
    owned_cm(
        &s,
        "dangling",
        &[("ghost", "00000000-0000-0000-0000-000000000000", false)],
    );
    eventually("dangling dependent collected", || {
        !s.exists(&["cm", "dangling"])
    });
    assert!(s.exists(&["cm", "other"]));
    assert!(s.exists(&["cm", "shared"]));
}

#[test]
fn garbage_collector_orphan_keeps_dependents() {
    let s = Server::start();
    owned_cm(&s, "owner", &[]);
    let owner = uid(&s, &["cm", "owner"]);
    owned_cm(&s, "child-a", &[("owner", &owner, true)]);
    owned_cm(&s, "child-b", &[("owner", &owner, false)]);

    // kubectl waits for the owner to disappear, which needs the orphan finalizer handled.
    s.ok(&["delete", "cm", "owner", "--cascade=orphan", "--timeout=60s"]);
    assert!(!s.exists(&["cm", "owner"]));
    for child in ["child-a", "child-b"] {
        let cm = s.get_json(&["cm", child]);
        assert_eq!(
            cm["metadata"]["ownerReferences"],
            Value::Null,
            "{child}: {cm}"
        );
    }
}

#[test]
fn garbage_collector_foreground_deletes_dependents_first() {
    let s = Server::start();
    owned_cm(&s, "owner", &[]);
    let owner = uid(&s, &["cm", "owner"]);
    owned_cm(&s, "blocking", &[("owner", &owner, true)]);
    owned_cm(&s, "loose", &[("owner", &owner, false)]);
    let blocking = uid(&s, &["cm", "blocking"]);
    owned_cm(&s, "nested", &[("blocking", &blocking, true)]);
    // A finalizer on the nested dependent holds the whole chain.
    s.ok(&[
        "patch",
        "cm",
        "nested",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);

    s.ok(&[
        "delete",
        "cm",
        "owner",
        "--cascade=foreground",
        "--wait=false",
    ]);
    // The owner stays (marked for deletion) while a blocking dependent remains.
    eventually("nested marked for deletion", || {
        s.get_json(&["cm", "nested"])["metadata"]["deletionTimestamp"].is_string()
    });
    let o = s.get_json(&["cm", "owner"]);
    assert!(o["metadata"]["deletionTimestamp"].is_string(), "{o}");
    assert_eq!(o["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    assert!(s.exists(&["cm", "blocking"]));

    s.ok(&[
        "patch",
        "cm",
        "nested",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    s.ok(&["wait", "--for=delete", "cm/owner", "--timeout=60s"]);
    for cm in ["blocking", "nested"] {
        assert!(
            !s.exists(&["cm", cm]),
            "{cm} should be gone before its owner"
        );
    }
    eventually("loose dependent collected", || !s.exists(&["cm", "loose"]));
    let left = s.get_json(&["cm", "-l", "gc=test"]);
    assert_eq!(left["items"], json!([]));
}

fn lease(s: &Server) -> Value {
    s.get_json(&["-n", "kube-system", "lease", "kube-controller-manager"])
}

#[test]
fn controller_manager_holds_a_client_go_style_lease() {
    let mut s = Server::start();
    eventually("the controller manager's Lease", || {
        s.exists(&["-n", "kube-system", "lease", "kube-controller-manager"])
    });
    let l = lease(&s);
    let holder = l["spec"]["holderIdentity"].as_str().unwrap().to_string();
    assert!(!holder.is_empty(), "{l}");
    assert_eq!(l["spec"]["leaseDurationSeconds"], 15);
    let renewed = l["spec"]["renewTime"].clone();
    eventually("the Lease renewed", || {
        lease(&s)["spec"]["renewTime"] != renewed
    });

    // Another holder with a fresh record is respected: this process stops acting...
    let mut foreign = lease(&s);
    foreign["spec"]["holderIdentity"] = json!("elsewhere");
    // Unconditional (no resourceVersion), so a renewal in between cannot make it conflict.
    foreign["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let f = s.manifest("lease.json", &foreign.to_string());
    eventually("the foreign holder written", || {
        let out = s.kubectl(&["replace", "-f", &f]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() || err.contains("Conflict"), "{err}");
        out.status.success()
    });
    eventually("leadership given up", || {
        s.log_text()
            .contains("lost the lease kube-system/kube-controller-manager")
    });
    // ...and takes over once that holder stops renewing (after leaseDurationSeconds).
    eventually("leadership taken back", || {
        lease(&s)["spec"]["holderIdentity"] == json!(holder)
    });
    assert!(lease(&s)["spec"]["leaseTransitions"].as_i64().unwrap() >= 1);
    s.ok(&["create", "namespace", "after-takeover"]);
    eventually("controllers act again", || {
        s.exists(&["-n", "after-takeover", "serviceaccount", "default"])
    });

    // A clean shutdown releases the Lease, so the restarted process leads at once.
    s.restart();
    eventually("a new holder after restart", || {
        let h = lease(&s)["spec"]["holderIdentity"].clone();
        h.is_string() && h != json!(holder)
    });
    s.ok(&["create", "namespace", "after-restart"]);
    eventually("controllers act after restart", || {
        s.exists(&["-n", "after-restart", "serviceaccount", "default"])
    });
}

/// Sets the ownerReferences of ConfigMap `name` (a JSON merge patch).
fn set_owners(s: &Server, name: &str, owners: &[(&str, &str, bool)]) {
    let refs: Vec<Value> = owners
        .iter()
        .map(|(n, u, block)| {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": n, "uid": u,
                   "blockOwnerDeletion": block})
        })
        .collect();
    let patch = json!({"metadata": {"ownerReferences": refs}}).to_string();
    s.ok(&["patch", "cm", name, "--type=merge", "-p", &patch]);
}

#[test]
fn garbage_collector_survives_owner_cycles() {
    let s = Server::start();
    // a and b own each other, both blocking: a foreground deletion must still finish.
    owned_cm(&s, "a", &[]);
    let a = uid(&s, &["cm", "a"]);
    owned_cm(&s, "b", &[("a", &a, true)]);
    let b = uid(&s, &["cm", "b"]);
    set_owners(&s, "a", &[("b", &b, true)]);
    // c owns itself.
    owned_cm(&s, "c", &[]);
    let c = uid(&s, &["cm", "c"]);
    set_owners(&s, "c", &[("c", &c, true)]);
    // Nothing is collected while every owner exists.
    owned_cm(&s, "marker", &[("a", &a, false)]);

    assert!(s.exists(&["cm", "b"]) && s.exists(&["cm", "marker"]));
    s.ok(&["delete", "cm", "a", "--cascade=foreground", "--timeout=60s"]);
    eventually("the cycle collected", || {
        !s.exists(&["cm", "b"]) && !s.exists(&["cm", "marker"])
    });
    s.ok(&["delete", "cm", "c", "--cascade=foreground", "--timeout=60s"]);

    // Background deletion of a member of a cycle collects the rest.
    owned_cm(&s, "x", &[]);
    let x = uid(&s, &["cm", "x"]);
    owned_cm(&s, "y", &[("x", &x, true)]);
    let y = uid(&s, &["cm", "y"]);
    set_owners(&s, "x", &[("y", &y, true)]);
    s.ok(&["delete", "cm", "x"]);
    eventually("y collected", || !s.exists(&["cm", "y"]));
    let left = s.get_json(&["cm", "-l", "gc=test"]);
    assert_eq!(left["items"], json!([]));
    assert!(!s.log_text().contains("panicked"));
}

fn pod_cidr(s: &Server, node: &str) -> Option<String> {
    s.get_json(&["node", node])["spec"]["podCIDR"]
        .as_str()
        .map(String::from)
}

#[test]
fn nodes_get_distinct_pod_cidrs_from_the_cluster_range() {
    let s = Server::start_with(&[
        "--cluster-cidr",
        "10.77.0.0/22",
        "--node-cidr-mask-size",
        "24",
    ]);
    // One subnet is already taken by hand; the controller must not hand it out again.
    let taken = s.manifest(
        "taken.yaml",
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: taken\nspec:\n  podCIDR: 10.77.1.0/24\n  podCIDRs: [10.77.1.0/24]\n",
    );
    s.ok(&["create", "-f", &taken]);
    let mut cidrs = vec!["10.77.1.0/24".to_string()];
    for n in ["a", "b", "c"] {
        let m = s.manifest(
            &format!("{n}.yaml"),
            &format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n"),
        );
        s.ok(&["create", "-f", &m]);
        eventually(&format!("a pod CIDR on node {n}"), || {
            pod_cidr(&s, n).is_some()
        });
        let c = pod_cidr(&s, n).unwrap();
        assert_eq!(
            s.get_json(&["node", n])["spec"]["podCIDRs"],
            json!([c.clone()])
        );
        assert!(!cidrs.contains(&c), "{c} handed out twice: {cidrs:?}");
        cidrs.push(c);
    }
    cidrs.sort();
    assert_eq!(
        cidrs,
        [
            "10.77.0.0/24",
            "10.77.1.0/24",
            "10.77.2.0/24",
            "10.77.3.0/24"
        ]
    );
    // The range is full: a fifth node waits, with an event saying why.
    let m = s.manifest(
        "d.yaml",
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: d\n",
    );
    s.ok(&["create", "-f", &m]);
    eventually("a CIDRNotAvailable event", || {
        s.ok(&["get", "events", "--field-selector", "involvedObject.name=d"])
            .contains("CIDRNotAvailable")
    });
    assert_eq!(pod_cidr(&s, "d"), None);
    // Deleting a node frees its subnet.
    s.ok(&["delete", "node", "a"]);
    eventually("node d gets the freed subnet", || {
        pod_cidr(&s, "d").is_some()
    });
}

#[test]
fn a_bad_cluster_cidr_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["server", "--datastore", "memory", "--secure-port", "0"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--cluster-cidr", "10.0.0.0/33"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--cluster-cidr") && err.contains("prefix length"),
        "{err}"
    );
}

/// Posts a Ready heartbeat for `node`, as a kubelet would. The controller only looks at
/// whether the heartbeat time changes, so a stamp that changes every second is enough.
fn heartbeat(s: &Server, node: &str) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stamp = format!("2026-01-01T00:00:{:02}Z", t % 60);
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
        "reason": "KubeletReady", "message": "kubelet is posting ready status",
        "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}]}});
    s.ok(&[
        "patch",
        "node",
        node,
        "--subresource=status",
        "--type=strategic",
        "-p",
        &patch.to_string(),
    ]);
}

fn deleting(s: &Server, pod: &str) -> bool {
    match s.kubectl(&["get", "pod", pod, "-o", "json"]) {
        out if out.status.success() => {
            let p: Value = serde_json::from_slice(&out.stdout).unwrap();
            p["metadata"]["deletionTimestamp"].is_string()
        }
        _ => true,
    }
}

#[test]
fn silent_nodes_become_unreachable_and_their_pods_are_evicted_after_their_toleration() {
    let s = Server::start_with(&["--node-monitor-grace-period", "3"]);
    for n in ["n1", "n2"] {
        let m = s.manifest(
            &format!("{n}.yaml"),
            &format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n"),
        );
        s.ok(&["create", "-f", &m]);
        heartbeat(&s, n);
    }
    let pod = |name: &str, node: &str, tolerations: &str| {
        let m = s.manifest(
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  containers: [{{name: c, image: busybox}}]\n  tolerations: {tolerations}\n"
            ),
        );
        s.ok(&["create", "-f", &m]);
    };
    pod("short", "n1", "[{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}]");
    pod("default", "n1", "[]");
    pod("forever", "n1", "[{operator: Exists}]");
    pod("victim", "n2", "[]");
    pod(
        "tolerant",
        "n2",
        "[{key: dedicated, operator: Equal, value: db, effect: NoExecute}]",
    );

    // n2 keeps heartbeating; n1 goes silent.
    eventually("n1 unreachable", || {
        heartbeat(&s, "n2");
        let n1 = s.get_json(&["node", "n1"]);
        n1["status"]["conditions"][0]["status"] == "Unknown"
    });
    let n1 = s.get_json(&["node", "n1"]);
    assert_eq!(n1["status"]["conditions"][0]["reason"], "NodeStatusUnknown");
    assert_eq!(
        n1["status"]["conditions"][0]["message"],
        "Kubelet stopped posting node status."
    );
    eventually("unreachable taints on n1", || {
        heartbeat(&s, "n2");
        let t = s.taint_keys("n1");
        t.contains(&"node.kubernetes.io/unreachable:NoSchedule".to_string())
            && t.contains(&"node.kubernetes.io/unreachable:NoExecute".to_string())
    });
    eventually("the pod tolerating 2 s is evicted", || {
        heartbeat(&s, "n2");
        deleting(&s, "short")
    });
    let ev = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=short",
    ]);
    assert!(
        ev.contains("TaintManagerEviction")
            && ev.contains("Marking for deletion Pod default/short"),
        "{ev}"
    );
    // Pods tolerating longer (the 300 s default) or forever stay; so does everything on n2.
    for p in ["default", "forever", "victim", "tolerant"] {
        assert!(!deleting(&s, p), "{p} was evicted");
    }
    assert!(s.taint_keys("n2").is_empty(), "{:?}", s.taint_keys("n2"));

    // A NoExecute taint by hand evicts what does not tolerate it, at once.
    s.ok(&["taint", "node", "n2", "dedicated=db:NoExecute"]);
    eventually("victim evicted", || deleting(&s, "victim"));
    assert!(!deleting(&s, "tolerant"));

    // Cordon adds the unschedulable taint; heartbeats again clear the unreachable ones.
    s.ok(&["cordon", "n1"]);
    eventually("n1 ready and cordoned", || {
        heartbeat(&s, "n1");
        s.taint_keys("n1") == ["node.kubernetes.io/unschedulable:NoSchedule"]
    });
    s.ok(&["uncordon", "n1"]);
    eventually("n1 untainted", || {
        heartbeat(&s, "n1");
        s.taint_keys("n1").is_empty()
    });
}

/// Gives a pod an IP and a Ready condition, as its node's agent would.
fn run_pod(s: &Server, pod: &str, ip: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": status}]}});
    s.ok(&[
        "patch",
        "pod",
        pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
}

#[test]
fn services_get_endpoints_and_endpoint_slices_from_ready_pods() {
    let s = Server::start();
    let m = s.manifest(
        "web.yaml",
        r#"
apiVersion: v1
kind: Service
metadata: {name: web, labels: {tier: front}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: manual}
spec:
  ports: [{port: 80}]
"#,
    );
    s.ok(&["apply", "-f", &m]);
    for (name, port) in [("a", 8080), ("b", 8080), ("c", 9090)] {
        let p = s.manifest(
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: web}}}}\nspec:\n  nodeName: n1\n  containers: [{{name: c, image: nginx, ports: [{{name: http, containerPort: {port}}}]}}]\n"
            ),
        );
        s.ok(&["create", "-f", &p]);
    }
    run_pod(&s, "a", "10.42.0.10", true);
    run_pod(&s, "b", "10.42.0.11", false);
    run_pod(&s, "c", "10.42.0.12", true);
    eventually("endpoints for web", || {
        s.kubectl(&["get", "endpoints", "web", "-o", "json"])
            .status
            .success()
            && s.get_json(&["endpoints", "web"])["subsets"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
    });
    let ep = s.get_json(&["endpoints", "web"]);
    assert_eq!(ep["metadata"]["labels"]["tier"], "front");
    let subsets = &ep["subsets"];
    assert_eq!(
        subsets[0]["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(subsets[0]["addresses"][0]["ip"], "10.42.0.10");
    assert_eq!(subsets[0]["addresses"][0]["targetRef"]["name"], "a");
    assert_eq!(subsets[0]["notReadyAddresses"][0]["ip"], "10.42.0.11");
    assert_eq!(subsets[1]["ports"][0]["port"], 9090);
    let printed = s.ok(&["get", "endpoints", "web"]);
    assert!(
        printed.contains("10.42.0.10:8080") && printed.contains("10.42.0.12:9090"),
        "{printed}"
    );
    // A service without a selector is left to its owner.
    assert!(!s.exists(&["endpoints", "manual"]));

    let slices = || {
        s.get_json(&["endpointslices", "-l", "kubernetes.io/service-name=web"])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    eventually("two endpoint slices for web", || slices().len() == 2);
    let all = slices();
    let svc_uid = s.get_json(&["service", "web"])["metadata"]["uid"].clone();
    for sl in &all {
        assert_eq!(sl["addressType"], "IPv4");
        assert_eq!(
            sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        assert_eq!(sl["metadata"]["ownerReferences"][0]["uid"], svc_uid);
    }
    let b = all
        .iter()
        .flat_map(|sl| sl["endpoints"].as_array().unwrap().iter())
        .find(|e| e["targetRef"]["name"] == "b")
        .unwrap();
    assert_eq!(
        b["conditions"],
        json!({"ready": false, "serving": false, "terminating": false})
    );

    // Readiness changes and deletions follow; the service's deletion takes everything.
    run_pod(&s, "b", "10.42.0.11", true);
    eventually("b ready in endpoints", || {
        s.get_json(&["endpoints", "web"])["subsets"][0]["addresses"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    });
    s.ok(&["delete", "pod", "c", "--grace-period=0", "--force"]);
    eventually("one slice left", || slices().len() == 1);
    s.ok(&["delete", "service", "web"]);
    eventually("endpoints gone", || !s.exists(&["endpoints", "web"]));
    eventually("slices gone", || slices().is_empty());
}

fn evict(s: &Server, pod: &str) -> std::process::Output {
    let body = json!({"apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": pod, "namespace": "default"}});
    let f = s.manifest(&format!("evict-{pod}.json"), &body.to_string());
    s.kubectl(&[
        "create",
        "--raw",
        &format!("/api/v1/namespaces/default/pods/{pod}/eviction"),
        "-f",
        &f,
    ])
}

#[test]
fn disruption_budgets_are_kept_and_honoured_by_evictions() {
    let s = Server::start();
    for name in ["a", "b", "c"] {
        let p = s.manifest(
            &format!("{name}.yaml"),
            &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: db}}}}\nspec:\n  nodeName: n1\n  containers: [{{name: c, image: postgres}}]\n"),
        );
        s.ok(&["create", "-f", &p]);
        run_pod(&s, name, &format!("10.42.0.{}", name.as_bytes()[0]), true);
    }
    let pdb = s.manifest(
        "pdb.yaml",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: db}\nspec:\n  minAvailable: 2\n  selector: {matchLabels: {app: db}}\n",
    );
    s.ok(&["create", "-f", &pdb]);
    eventually("the budget's status", || {
        let st = &s.get_json(&["pdb", "db"])["status"];
        st["currentHealthy"] == 3 && st["disruptionsAllowed"] == 1
    });
    let st = s.get_json(&["pdb", "db"])["status"].clone();
    assert_eq!(st["desiredHealthy"], 2);
    assert_eq!(st["expectedPods"], 3);
    assert_eq!(st["observedGeneration"], 1);
    assert_eq!(st["conditions"][0]["type"], "DisruptionAllowed");
    assert_eq!(st["conditions"][0]["status"], "True");
    assert_eq!(st["conditions"][0]["reason"], "SufficientPods");
    let printed = s.ok(&["get", "pdb", "db"]);
    assert!(printed.contains("ALLOWED DISRUPTIONS"), "{printed}");

    // One eviction fits the budget...
    let out = evict(&s, "a");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = s.get_json(&["pod", "a"]);
    assert!(a["metadata"]["deletionTimestamp"].is_string(), "{a:#}");
    let conds = a["status"]["conditions"].as_array().unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "DisruptionTarget" && c["reason"] == "EvictionByEvictionAPI"),
        "{conds:?}"
    );
    // ...a second one would break it: 429 with the budget named.
    let out = evict(&s, "b");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TooManyRequests")
            && err.contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{err}"
    );
    assert!(!s.get_json(&["pod", "b"])["metadata"]["deletionTimestamp"].is_string());
    eventually("the budget sees a go", || {
        let st = &s.get_json(&["pdb", "db"])["status"];
        st["currentHealthy"] == 2
            && st["disruptionsAllowed"] == 0
            && st["conditions"][0]["reason"] == "InsufficientPods"
    });

    // A pod that is not running yet can always go.
    let p = s.manifest("pending.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: pending, labels: {app: db}}\nspec:\n  containers: [{name: c, image: postgres}]\n");
    s.ok(&["create", "-f", &p]);
    let out = evict(&s, "pending");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("pending pod gone", || !s.exists(&["pod", "pending"]));

    // Two budgets over one pod: upstream refuses with a 500.
    let pdb2 = s.manifest(
        "pdb2.yaml",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: db2}\nspec:\n  maxUnavailable: 1\n  selector: {matchLabels: {app: db}}\n",
    );
    s.ok(&["create", "-f", &pdb2]);
    let err = String::from_utf8_lossy(&evict(&s, "c").stderr).into_owned();
    assert!(err.contains("more than one PodDisruptionBudget"), "{err}");
    // db2 needs the pods' controllers for maxUnavailable; these pods have none.
    eventually("db2 reports why it cannot count", || {
        let st = &s.get_json(&["pdb", "db2"])["status"];
        st["conditions"][0]["reason"] == "SyncFailed" && st["disruptionsAllowed"] == 0
    });
}

#[test]
fn pod_gc_removes_pods_of_vanished_nodes_and_old_finished_pods() {
    let s = Server::start_with(&["--terminated-pod-gc-threshold", "2"]);
    let pod = |name: &str, node: &str| {
        let p = s.manifest(
            &format!("{name}.yaml"),
            &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  containers: [{{name: c, image: busybox}}]\n"),
        );
        s.ok(&["create", "-f", &p]);
    };
    let n = s.manifest(
        "n1.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n",
    );
    s.ok(&["create", "-f", &n]);
    pod("orphan", "ghost");
    pod("kept", "n1");
    for name in ["done-1", "done-2", "done-3", "done-4"] {
        pod(name, "n1");
        s.ok(&[
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Succeeded"}}"#,
        ]);
        // Distinct creation times order the deletions.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    eventually("the two oldest finished pods are collected", || {
        !s.exists(&["pod", "done-1"]) && !s.exists(&["pod", "done-2"])
    });
    assert!(s.exists(&["pod", "done-3"]) && s.exists(&["pod", "done-4"]));
    // Upstream's timing: a 40 s quarantine checked every 20 s, so this takes about a minute.
    let start = std::time::Instant::now();
    while s.exists(&["pod", "orphan"]) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(180),
            "the pod of a node that does not exist was not collected"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(s.exists(&["pod", "kept"]), "pods of live nodes stay");
}
