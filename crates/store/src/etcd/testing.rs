//! Test support: a throwaway etcd server on loopback, in its own data directory, killed on
//! drop. Used by the etcd-backed tests and benchmarks; not part of the API.
//!
//! It panics (with the reason and etcd's last log lines) instead of returning errors: it
//! only runs inside tests, and a missing etcd must fail them loudly, never skip them.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::{EtcdOptions, EtcdTls};

/// Serving TLS for the test server.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// When set, etcd requires client certificates signed by this CA (`--client-cert-auth`).
    pub client_ca_file: Option<PathBuf>,
}

/// A running etcd. Dropping it kills the process and removes its data.
pub struct EtcdServer {
    child: Child,
    /// The wrapper shell kills etcd when this pipe closes: on drop, and also when the test
    /// process dies without running destructors (so no etcd outlives a killed test run).
    stdin: Option<ChildStdin>,
    dir: PathBuf,
    endpoint: String,
    log: Arc<Mutex<VecDeque<String>>>,
}

const LOG_LINES: usize = 40;
const START_TIMEOUT: Duration = Duration::from_secs(30);
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The etcd binary: `$SKIFF_ETCD_BIN`, else `/usr/bin/etcd`, else `etcd` on `PATH`.
pub fn etcd_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SKIFF_ETCD_BIN") {
        return PathBuf::from(bin);
    }
    let debian = Path::new("/usr/bin/etcd");
    if debian.is_file() {
        return debian.to_path_buf();
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("etcd");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "etcd is not installed: the etcd-backed tests need Debian's etcd-server \
         (/usr/bin/etcd). Run scripts/setup.sh (or apt-get install etcd-server), \
         or point SKIFF_ETCD_BIN at an etcd 3.4+ binary."
    )
}

fn free_port() -> u16 {
    // etcd 3.4 cannot bind port 0 and report it, so reserve one here and release it.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free loopback port")
}

impl EtcdServer {
    /// A plain-HTTP etcd.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// An etcd serving TLS (and requiring client certificates if `client_ca_file` is set).
    pub fn start_tls(tls: ServerTls) -> Self {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<ServerTls>) -> Self {
        let bin = etcd_binary();
        let mut last = String::new();
        // A port picked above can be taken by someone else before etcd binds it; retry.
        for _ in 0..5 {
            match Self::try_start(&bin, tls.as_ref()) {
                Ok(server) => return server,
                Err(log) if log.contains("address already in use") => last = log,
                Err(log) => panic!("etcd ({}) failed to start:\n{log}", bin.display()),
            }
        }
        panic!("etcd could not find free ports:\n{last}")
    }

    fn try_start(bin: &Path, tls: Option<&ServerTls>) -> Result<Self, String> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("skiff-etcd-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {dir:?}: {e}"))?;
        let (client_port, peer_port) = (free_port(), free_port());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = format!("{scheme}://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let mut args: Vec<String> = [
            "--name",
            "skiff-test",
            "--data-dir",
            dir.join("data").to_str().expect("temp dir is UTF-8"),
            "--listen-client-urls",
            &endpoint,
            "--advertise-client-urls",
            &endpoint,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &format!("skiff-test={peer}"),
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(tls) = tls {
            let path = |p: &Path| p.to_str().expect("cert path is UTF-8").to_string();
            args.extend([
                "--cert-file".into(),
                path(&tls.cert_file),
                "--key-file".into(),
                path(&tls.key_file),
            ]);
            if let Some(ca) = &tls.client_ca_file {
                args.extend([
                    "--client-cert-auth".into(),
                    "--trusted-ca-file".into(),
                    path(ca),
                ]);
            }
        }
        // sh keeps our stdin pipe on fd 3 and, when it reaches EOF, kills etcd and removes
        // its data (Drop does both too, but it does not run if the test process is killed).
        let script = r#"exec 3<&0
"$0" "$@" 3<&- &
pid=$!
( read line <&3; kill -9 $pid; sleep 1; rm -rf "$SKIFF_ETCD_DIR" ) >/dev/null 2>&1 &
wait $pid"#;
        let mut child = Command::new("sh")
            .env("SKIFF_ETCD_DIR", &dir)
            .arg("-c")
            .arg(script)
            .arg(bin)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                // Keeps draining etcd's log for its whole life so it never blocks on a pipe.
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("serving client traffic")
                        || line.contains("ready to serve client requests")
                    {
                        let _ = ready_tx.send(());
                    }
                    let mut log = log.lock().unwrap();
                    if log.len() == LOG_LINES {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            });
        }
        let mut server = EtcdServer {
            child,
            stdin,
            dir,
            endpoint,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match ready_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(()) => return Ok(server),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = server.child.wait();
                    return Err(server.log_tail());
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                // Give the log reader a moment to collect the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!("etcd exited with {status}\n{}", server.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd did not become ready within {START_TIMEOUT:?}\n{}",
                    server.log_tail()
                ));
            }
        }
    }

    /// The client URL (`http://127.0.0.1:port` or `https://...`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Options to reach this server (add TLS settings for a TLS server).
    pub fn options(&self) -> EtcdOptions {
        EtcdOptions::new([self.endpoint.clone()])
    }

    /// Options with client TLS settings.
    pub fn tls_options(&self, tls: EtcdTls) -> EtcdOptions {
        self.options().with_tls(tls)
    }

    /// etcd's last log lines, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Kills etcd now (to test a lost connection). Idempotent.
    pub fn stop(&mut self) {
        if self.stdin.take().is_some() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
