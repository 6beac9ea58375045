//! Test harness: runs the real `skiff` binary on a free loopback port with a temporary data
//! directory, and drives it with the real kubectl.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

/// The kubectl binary of a given minor version (27..=33).
pub fn kubectl_bin(minor: u32) -> PathBuf {
    let p = PathBuf::from(format!("{KUBECTL_DIR}/kubectl.1.{minor}"));
    assert!(
        p.exists(),
        "{} is missing: the tests need the kubectl builds under {KUBECTL_DIR}",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub child: Option<Child>,
    pub log: PathBuf,
    extra: Vec<String>,
}

impl Server {
    /// Starts `skiff server` and waits until `/readyz` answers ok.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), extra)
    }

    /// Starts `skiff server` on a data directory prepared by the caller (for example with
    /// another server's certificates copied in).
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        let mut s = Server {
            log: dir.path().join("server.log"),
            dir,
            port: free_port(),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.launch();
        s
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }

    pub fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_skiff"))
            .arg("server")
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["--bind-address", "127.0.0.1"])
            .args(["--secure-port", &self.port.to_string()])
            .args(&self.extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting skiff server");
        self.child = Some(child);
        self.wait_ready();
    }

    pub fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "skiff server exited with {status}; log:\n{}",
                        self.log_text()
                    );
                }
            }
            if self.kubeconfig().exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
                    return;
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "skiff server not ready after 30s; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        unsafe_kill(child.id(), "TERM");
        child.wait().unwrap()
    }

    /// Stops (SIGTERM) and starts again on the same data directory and port.
    pub fn restart(&mut self) {
        let status = self.terminate();
        assert!(
            status.success(),
            "server exit status {status}; log:\n{}",
            self.log_text()
        );
        self.launch();
    }

    /// Runs kubectl (the 1.33 build unless `KUBECTL_MINOR` says otherwise) with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_v(33, args)
    }

    pub fn kubectl_v(&self, minor: u32, args: &[&str]) -> Output {
        Command::new(kubectl_bin(minor))
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running kubectl")
    }

    /// Runs kubectl and returns stdout, failing the test with stderr if it did not succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_v(33, args)
    }

    pub fn ok_v(&self, minor: u32, args: &[&str]) -> String {
        let out = self.kubectl_v(minor, args);
        assert!(
            out.status.success(),
            "kubectl 1.{minor} {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed but printed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Writes a manifest into the data dir and returns its path.
    pub fn manifest(&self, name: &str, yaml: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, yaml).unwrap();
        p.to_string_lossy().into_owned()
    }
}

fn unsafe_kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    /// Creates a ConfigMap through `kubectl create -f` (a JSON body).
    pub fn create_cm(&self, name: &str, data: &[(&str, &str)]) {
        let data: serde_json::Map<String, serde_json::Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name}, "data": data});
        let file = self.manifest(&format!("cm-{name}.json"), &cm.to_string());
        self.ok(&["create", "-f", &file]);
    }
}

/// A running `kubectl get ... -w`, its output lines collected as they arrive.
pub struct Watch {
    child: Child,
    rx: std::sync::mpsc::Receiver<String>,
    /// Every line read so far.
    pub lines: Vec<String>,
    minor: u32,
}

impl Server {
    /// Starts `kubectl.1.<minor> get <args> -w`.
    pub fn watch(&self, minor: u32, args: &[&str]) -> Watch {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(kubectl_bin(minor))
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("get")
            .args(args)
            .arg("-w")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("running kubectl get -w");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            rx,
            lines: Vec::new(),
            minor,
        }
    }
}

impl Watch {
    /// Reads lines until one satisfies `found` (bounded: 20 s), and returns it.
    pub fn wait_for(&mut self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(line) = self.rx.recv_timeout(Duration::from_millis(100)) {
                let hit = found(&line);
                self.lines.push(line.clone());
                if hit {
                    return line;
                }
            }
        }
        panic!(
            "kubectl 1.{} watch never printed {what}; got {:?}",
            self.minor, self.lines
        );
    }

    /// Waits for a line containing `needle`.
    pub fn wait_for_text(&mut self, needle: &str) -> String {
        self.wait_for(&format!("{needle:?}"), |l| l.contains(needle))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long [`eventually`] waits: generous, because tests assert behaviour, not timings.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// Polls `cond` until it holds; fails the test with `what` after [`PATIENCE`].
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Server {
    /// `kubectl get <args> -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Whether `kubectl get <args>` finds the object (any error but NotFound fails the test).
    pub fn exists(&self, args: &[&str]) -> bool {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "name"]);
        let out = self.kubectl(&a);
        if out.status.success() {
            return true;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("NotFound"), "kubectl {a:?}: {err}");
        false
    }

    /// A node's taints as `key:Effect`, in order.
    pub fn taint_keys(&self, node: &str) -> Vec<String> {
        self.get_json(&["node", node])["spec"]["taints"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        format!(
                            "{}:{}",
                            t["key"].as_str().unwrap(),
                            t["effect"].as_str().unwrap()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Starts `skiff agent --kubeconfig <admin.kubeconfig> <args>` (for example
    /// `["--simulate", "3"]`); the process is killed when the returned [`Agent`] drops.
    pub fn start_agent(&self, args: &[&str]) -> Agent {
        let n = AGENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.path().join(format!("agent-{n}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_skiff"))
            .arg("agent")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("starting skiff agent");
        Agent {
            child: Some(child),
            log,
        }
    }
}

static AGENTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A running `skiff agent`.
pub struct Agent {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Agent {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent running");
        unsafe_kill(child.id(), "TERM");
        child.wait().unwrap()
    }

    /// SIGKILL: the nodes stop heartbeating at once, as when a machine dies.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}
