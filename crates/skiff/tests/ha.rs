//! Two `skiff server` processes on one etcd, sharing the cluster's certificates, as a
//! highly available control plane: exactly one controller manager and one scheduler act
//! (client-go-style Lease locks), and when the leader dies the other takes over within the
//! lease duration without creating anything twice.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, Server};
use skiff_store::etcd::testing::EtcdServer;

fn holder(s: &Server, lease: &str) -> String {
    s.get_json(&["-n", "kube-system", "lease", lease])["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The process a leader identity (`<host>_<pid as 8 hex digits><nonce>`) belongs to.
fn pid_of(identity: &str) -> u32 {
    let tail = identity.rsplit('_').next().unwrap();
    u32::from_str_radix(&tail[..8], 16).unwrap()
}

fn count(s: &Server, args: &[&str]) -> usize {
    s.get_json(args)["items"].as_array().map_or(0, Vec::len)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn two_servers_on_one_etcd_run_one_set_of_control_loops() {
    let etcd = EtcdServer::start();
    let args = ["--datastore", "etcd", "--etcd-servers", etcd.endpoint()];
    let mut a = Server::start_with(&args);
    // The second control plane shares the cluster CA and keys, as a joined one would.
    let dir_b = tempfile::tempdir().unwrap();
    copy_dir(&a.data_dir().join("pki"), &dir_b.path().join("pki"));
    let mut b = Server::start_in(dir_b, &args);

    let pids = [
        a.child.as_ref().unwrap().id(),
        b.child.as_ref().unwrap().id(),
    ];
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        eventually(&format!("a holder of {lease}"), || {
            a.exists(&["-n", "kube-system", "lease", lease]) && !holder(&a, lease).is_empty()
        });
        let h = holder(&a, lease);
        assert!(
            pids.contains(&pid_of(&h)),
            "{lease} held by {h}, not one of {pids:?}"
        );
        assert_eq!(holder(&b, lease), h, "both servers read the same Lease");
    }

    // Work done through either server is done once.
    b.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=3",
    ]);
    eventually("3 pods", || count(&a, &["pods", "-l", "app=web"]) == 3);
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            count(&a, &["pods", "-l", "app=web"]),
            3,
            "pods created twice"
        );
        assert_eq!(
            count(&a, &["replicasets", "-l", "app=web"]),
            1,
            "replica sets created twice"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // The leader dies without a word; the other server's loops take over.
    let leader = pid_of(&holder(&a, "kube-controller-manager"));
    let (dead, survivor) = if leader == pids[0] {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    dead.child.as_mut().unwrap().kill().unwrap();
    dead.child.take().unwrap().wait().unwrap();
    let survivor_pid = survivor.child.as_ref().unwrap().id();
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        eventually(&format!("{lease} handed over"), || {
            pid_of(&holder(survivor, lease)) == survivor_pid
        });
    }
    survivor.ok(&["scale", "deployment", "web", "--replicas=5"]);
    eventually("5 pods", || {
        count(survivor, &["pods", "-l", "app=web"]) == 5
    });
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            count(survivor, &["pods", "-l", "app=web"]),
            5,
            "pods created twice"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(count(survivor, &["replicasets", "-l", "app=web"]), 1);
}
