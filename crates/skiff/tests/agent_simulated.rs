//! `skiff agent --simulate N` against a real `skiff server`, driven with real kubectl:
//! node registration, Lease and status heartbeats (and stopping them by annotation), pods
//! bound to simulated nodes running, completing, restarting and being deleted, and a clean
//! exit on SIGTERM.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{eventually, Server};
use serde_json::Value;

fn renew_time(s: &Server, node: &str) -> String {
    s.get_json(&["lease", "-n", "kube-node-lease", node])["spec"]["renewTime"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (net, prefix) = cidr.split_once('/').unwrap();
    let net: Ipv4Addr = net.parse().unwrap();
    let prefix: u32 = prefix.parse().unwrap();
    let ip: Ipv4Addr = ip.parse().unwrap();
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

#[test]
fn nodes_register_heartbeat_and_stop_on_annotation() {
    let s = Server::start();
    let mut agent = s.start_agent(&[
        "--simulate",
        "3",
        "--lease-renew-interval",
        "1",
        "--node-status-interval",
        "2",
        "--node-labels",
        "zone=sim-a,tier=test",
        "--register-with-taints",
        "dedicated=sim:NoSchedule",
    ]);
    eventually("kubectl get nodes lists 3 Ready simulated nodes", || {
        let out = s.ok(&["get", "nodes", "--no-headers"]);
        ["sim-0", "sim-1", "sim-2"].iter().all(|n| {
            out.lines().any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.first() == Some(n) && cols.get(1) == Some(&"Ready")
            })
        })
    });

    let node = s.get_json(&["node", "sim-1"]);
    let labels = &node["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/hostname"], "sim-1");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["kubernetes.io/arch"], "amd64");
    assert_eq!(labels["node.skiff.dev/simulated"], "true");
    assert_eq!(labels["zone"], "sim-a");
    assert_eq!(labels["tier"], "test");
    let taints = node["spec"]["taints"].as_array().expect("taints");
    assert!(
        taints
            .iter()
            .any(|t| t["key"] == "dedicated" && t["value"] == "sim" && t["effect"] == "NoSchedule"),
        "{taints:?}"
    );
    let status = &node["status"];
    assert_eq!(status["capacity"]["cpu"], "8");
    assert_eq!(status["capacity"]["memory"], "32Gi");
    assert_eq!(status["capacity"]["pods"], "110");
    assert!(status["allocatable"]["ephemeral-storage"].is_string());
    for c in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert_eq!(condition(&node, c).unwrap()["status"], "False", "{c}");
    }
    assert_eq!(status["nodeInfo"]["operatingSystem"], "linux");
    let ips: Vec<String> = ["sim-0", "sim-1", "sim-2"]
        .iter()
        .map(|n| {
            let addrs = s.get_json(&["node", n])["status"]["addresses"].clone();
            let internal = addrs
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["type"] == "InternalIP")
                .cloned()
                .expect("an InternalIP");
            internal["address"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        ips[0] != ips[1] && ips[1] != ips[2] && ips[0] != ips[2],
        "{ips:?}"
    );

    // The Lease belongs to the node and is renewed; so is the Ready heartbeat.
    let lease = s.get_json(&["lease", "-n", "kube-node-lease", "sim-1"]);
    assert_eq!(lease["spec"]["holderIdentity"], "sim-1");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    let first = renew_time(&s, "sim-1");
    eventually("sim-1's Lease is renewed", || {
        renew_time(&s, "sim-1") != first
    });
    let beat = |s: &Server| {
        condition(&s.get_json(&["node", "sim-1"]), "Ready").unwrap()["lastHeartbeatTime"].clone()
    };
    let first_beat = beat(&s);
    eventually("sim-1's status heartbeat advances", || {
        beat(&s) != first_beat
    });

    // KWOK-style: the annotation stops this node's heartbeats, and only this node's.
    s.ok(&[
        "annotate",
        "node",
        "sim-1",
        "node.skiff.dev/simulate-heartbeat=stopped",
    ]);
    eventually("sim-1's Lease stops being renewed", || {
        let before = renew_time(&s, "sim-1");
        std::thread::sleep(Duration::from_secs(3));
        renew_time(&s, "sim-1") == before
    });
    let other = renew_time(&s, "sim-0");
    eventually("sim-0's Lease is still renewed", || {
        renew_time(&s, "sim-0") != other
    });
    let stopped_at = renew_time(&s, "sim-1");
    s.ok(&[
        "annotate",
        "node",
        "sim-1",
        "node.skiff.dev/simulate-heartbeat-",
    ]);
    eventually("sim-1's Lease is renewed again", || {
        renew_time(&s, "sim-1") != stopped_at
    });

    // A node deleted from the API while its agent runs is registered again.
    let old_uid = s.get_json(&["node", "sim-2"])["metadata"]["uid"].clone();
    s.ok(&["delete", "node", "sim-2"]);
    eventually("sim-2 is registered again", || {
        s.exists(&["node", "sim-2"])
            && s.get_json(&["node", "sim-2"])["metadata"]["uid"] != old_uid
            && condition(&s.get_json(&["node", "sim-2"]), "Ready")
                .is_some_and(|c| c["status"] == "True")
    });

    let status = agent.terminate();
    assert!(
        status.success(),
        "agent exit status {status}; log:\n{}",
        agent.log_text()
    );
    // A stopped kubelet leaves its nodes registered.
    for n in ["sim-0", "sim-1", "sim-2"] {
        assert!(s.exists(&["node", n]), "{n}");
    }

    // A new agent adopts the existing nodes and heartbeats them again.
    let uid = s.get_json(&["node", "sim-1"])["metadata"]["uid"].clone();
    let before = renew_time(&s, "sim-1");
    let _agent = s.start_agent(&["--simulate", "3", "--lease-renew-interval", "1"]);
    eventually("the restarted agent renews sim-1's Lease", || {
        renew_time(&s, "sim-1") != before
    });
    let node = s.get_json(&["node", "sim-1"]);
    assert_eq!(node["metadata"]["uid"], uid, "the same Node object");
    assert_eq!(node["metadata"]["labels"]["zone"], "sim-a", "labels kept");
}

#[test]
fn pods_on_simulated_nodes_run_complete_restart_and_delete() {
    let s = Server::start();
    let _agent = s.start_agent(&["--simulate", "3", "--lease-renew-interval", "2"]);
    eventually("sim-1 gets a podCIDR", || {
        s.exists(&["node", "sim-1"])
            && s.get_json(&["node", "sim-1"])["spec"]["podCIDR"].is_string()
    });
    let cidr = s.get_json(&["node", "sim-1"])["spec"]["podCIDR"]
        .as_str()
        .unwrap()
        .to_string();

    let web = s.manifest(
        "web.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  nodeName: sim-1\n  \
         initContainers:\n  - name: setup\n    image: busybox\n  containers:\n  - name: nginx\n    image: nginx\n",
    );
    s.ok(&["create", "-f", &web]);
    eventually("web is Running and Ready", || {
        let p = s.get_json(&["pod", "web"]);
        p["status"]["phase"] == "Running"
            && condition(&p, "Ready").is_some_and(|c| c["status"] == "True")
    });
    let p = s.get_json(&["pod", "web"]);
    let st = &p["status"];
    let ip = st["podIP"].as_str().expect("podIP");
    assert!(in_cidr(ip, &cidr), "podIP {ip} outside sim-1's {cidr}");
    assert_eq!(st["podIPs"][0]["ip"], ip);
    let node = s.get_json(&["node", "sim-1"]);
    let host_ip = node["status"]["addresses"][0]["address"].clone();
    assert_eq!(st["hostIP"], host_ip);
    assert!(st["startTime"].is_string());
    for c in [
        "PodScheduled",
        "Initialized",
        "ContainersReady",
        "Ready",
        "PodReadyToStartContainers",
    ] {
        let cond = condition(&p, c).unwrap_or_else(|| panic!("no {c} condition"));
        assert_eq!(cond["status"], "True", "{c}");
        assert!(cond["lastTransitionTime"].is_string(), "{c}");
    }
    let cs = &st["containerStatuses"][0];
    assert_eq!(cs["name"], "nginx");
    assert_eq!(cs["ready"], true);
    assert_eq!(cs["started"], true);
    assert_eq!(cs["restartCount"], 0);
    assert!(cs["state"]["running"]["startedAt"].is_string());
    assert!(cs["containerID"].as_str().unwrap().starts_with("sim://"));
    assert!(cs["imageID"].as_str().unwrap().contains("@sha256:"));
    let init = &st["initContainerStatuses"][0]["state"]["terminated"];
    assert_eq!(init["reason"], "Completed");
    assert_eq!(init["exitCode"], 0);
    // kubectl's own view agrees.
    let wide = s.ok(&["get", "pod", "web", "-o", "wide", "--no-headers"]);
    assert!(wide.contains("Running") && wide.contains(ip), "{wide}");

    // Events as the kubelet records them, from the node.
    eventually("Pulled, Created and Started events from sim-1", || {
        let evs = s.get_json(&["events", "--field-selector", "involvedObject.name=web"]);
        let items = evs["items"].as_array().cloned().unwrap_or_default();
        ["Pulled", "Created", "Started"].iter().all(|r| {
            items.iter().any(|e| {
                e["reason"] == *r
                    && e["source"]["host"] == "sim-1"
                    && e["involvedObject"]["fieldPath"] == "spec.containers{nginx}"
            })
        }) && items.iter().any(|e| {
            e["reason"] == "Pulled"
                && e["message"] == "Container image \"nginx\" already present on machine"
        })
    });

    // Run to completion: Succeeded (exit 0) or Failed (exit code from the annotation).
    let once = |name: &str, code: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations:\n    \
             pod.skiff.dev/simulate-run-seconds: \"1\"\n    pod.skiff.dev/simulate-exit-code: \"{code}\"\n\
             spec:\n  nodeName: sim-2\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: busybox\n"
        )
    };
    let f = s.manifest("ok.yaml", &once("job-ok", "0"));
    s.ok(&["create", "-f", &f]);
    let f = s.manifest("bad.yaml", &once("job-bad", "3"));
    s.ok(&["create", "-f", &f]);
    eventually("job-ok Succeeded", || {
        s.get_json(&["pod", "job-ok"])["status"]["phase"] == "Succeeded"
    });
    let t =
        &s.get_json(&["pod", "job-ok"])["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["reason"], "Completed");
    eventually("job-bad Failed", || {
        s.get_json(&["pod", "job-bad"])["status"]["phase"] == "Failed"
    });
    let t =
        &s.get_json(&["pod", "job-bad"])["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["reason"], "Error");
    assert_eq!(t["exitCode"], 3);

    // spec.activeDeadlineSeconds: the kubelet fails the pod when it runs out.
    let f = s.manifest(
        "deadline.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: deadline\nspec:\n  nodeName: sim-2\n  \
         activeDeadlineSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n",
    );
    s.ok(&["create", "-f", &f]);
    eventually("deadline Failed with DeadlineExceeded", || {
        let st = &s.get_json(&["pod", "deadline"])["status"];
        st["phase"] == "Failed" && st["reason"] == "DeadlineExceeded"
    });

    // Host-network pods get the node's address and need no pod CIDR.
    let f = s.manifest(
        "hostnet.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hostnet\nspec:\n  nodeName: sim-1\n  \
         hostNetwork: true\n  containers:\n  - name: main\n    image: busybox\n",
    );
    s.ok(&["create", "-f", &f]);
    eventually("hostnet Running", || {
        s.get_json(&["pod", "hostnet"])["status"]["phase"] == "Running"
    });
    let st = &s.get_json(&["pod", "hostnet"])["status"];
    assert_eq!(st["podIP"], st["hostIP"]);
    assert_eq!(st["podIP"], host_ip);

    // restartPolicy Always: the container is restarted.
    let f = s.manifest(
        "loop.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: loop\n  annotations:\n    \
         pod.skiff.dev/simulate-run-seconds: \"1\"\nspec:\n  nodeName: sim-0\n  containers:\n  - name: main\n    image: busybox\n",
    );
    s.ok(&["create", "-f", &f]);
    eventually("loop's container restarts", || {
        s.get_json(&["pod", "loop"])["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0)
            >= 1
    });
    assert_eq!(s.get_json(&["pod", "loop"])["status"]["phase"], "Running");
    eventually("a BackOff warning once loop crash-loops", || {
        let evs = s.get_json(&[
            "events",
            "--field-selector",
            "involvedObject.name=loop,reason=BackOff",
        ]);
        evs["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|e| e["type"] == "Warning"))
    });

    // A node whose heartbeat is stopped is a hung kubelet: its deleted pods stay
    // Terminating until it comes back.
    s.ok(&[
        "annotate",
        "node",
        "sim-0",
        "node.skiff.dev/simulate-heartbeat=stopped",
    ]);
    eventually("sim-0's Lease stops being renewed", || {
        let before = renew_time(&s, "sim-0");
        std::thread::sleep(Duration::from_secs(5));
        renew_time(&s, "sim-0") == before
    });
    s.ok(&["delete", "pod", "loop", "--wait=false"]);
    std::thread::sleep(Duration::from_secs(3));
    let stuck = s.get_json(&["pod", "loop"]);
    assert!(stuck["metadata"]["deletionTimestamp"].is_string());
    s.ok(&[
        "annotate",
        "node",
        "sim-0",
        "node.skiff.dev/simulate-heartbeat-",
    ]);
    eventually("loop is gone once sim-0 is back", || {
        !s.exists(&["pod", "loop"])
    });

    // Graceful deletion completes: the agent stops the pod and deletes it for good.
    s.ok(&["delete", "pod", "web", "--wait=true"]);
    assert!(!s.exists(&["pod", "web"]));
    eventually("a Killing event for web", || {
        let evs = s.get_json(&[
            "events",
            "--field-selector",
            "involvedObject.name=web,reason=Killing",
        ]);
        evs["items"].as_array().is_some_and(|i| !i.is_empty())
    });
    s.ok(&[
        "delete",
        "pod",
        "job-ok",
        "job-bad",
        "deadline",
        "hostnet",
        "--wait=true",
    ]);
    assert!(!s.exists(&["pod", "job-ok"]));
}

#[test]
fn agent_without_simulate_explains_the_missing_runtime() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["agent", "--kubeconfig", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("containerd runtime is not built yet") && err.contains("--simulate"),
        "{err}"
    );
}
