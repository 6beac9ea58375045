//! Graceful shutdown as real HTTP clients see it: a writer creating ConfigMaps in a loop,
//! watchers over HTTP/2 and HTTP/1.1, a readiness prober and a request whose body is still
//! being uploaded when draining begins. After SIGTERM `/readyz` must fail while requests are
//! still served; then watches end cleanly, new connections are refused, the in-flight
//! request completes, the process exits 0, and every write that got a 2xx survives a
//! restart.

mod common;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Server;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

type ReqBody = UnsyncBoxBody<Bytes, Infallible>;

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";
/// Liveness bound for things that should happen within the shutdown delay or drain.
const PATIENCE: Duration = Duration::from_secs(30);

fn body(bytes: impl Into<Bytes>) -> ReqBody {
    Full::new(bytes.into()).boxed_unsync()
}

fn configmap(name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name}, "data": {"k": "v"}
    }))
    .unwrap()
}

#[derive(Clone, Copy)]
enum Proto {
    H1,
    H2,
}

/// An HTTPS client presenting the admin client certificate, like kubectl would.
#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    h1: TlsConnector,
    h2: TlsConnector,
}

/// One connection, either protocol.
enum Conn {
    H1(hyper::client::conn::http1::SendRequest<ReqBody>),
    H2(hyper::client::conn::http2::SendRequest<ReqBody>),
}

impl Conn {
    async fn send(&mut self, req: Request<ReqBody>) -> hyper::Result<Response<Incoming>> {
        match self {
            Conn::H1(s) => s.send_request(req).await,
            Conn::H2(s) => s.send_request(req).await,
        }
    }
}

impl Client {
    fn new(server: &Server) -> Client {
        let pki = server.data_dir().join("pki");
        let read = |f: &str| std::fs::read_to_string(pki.join(f)).unwrap();
        let (ca, cert, key) = (read("ca.crt"), read("admin.crt"), read("admin.key"));
        let config = skiff_pki::tls::client_config(&ca, Some((&cert, &key))).unwrap();
        let mut h1 = config.clone();
        h1.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut h2 = config;
        h2.alpn_protocols = vec![b"h2".to_vec()];
        Client {
            addr: SocketAddr::from(([127, 0, 0, 1], server.port)),
            h1: TlsConnector::from(Arc::new(h1)),
            h2: TlsConnector::from(Arc::new(h2)),
        }
    }

    async fn connect(&self, proto: Proto) -> std::io::Result<Conn> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let connector = match proto {
            Proto::H1 => &self.h1,
            Proto::H2 => &self.h2,
        };
        let tls = TokioIo::new(connector.connect(name, tcp).await?);
        let other = |e: hyper::Error| std::io::Error::other(e);
        Ok(match proto {
            Proto::H1 => {
                let (send, conn) = hyper::client::conn::http1::handshake(tls)
                    .await
                    .map_err(other)?;
                tokio::spawn(conn);
                Conn::H1(send)
            }
            Proto::H2 => {
                let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .handshake(tls)
                    .await
                    .map_err(other)?;
                tokio::spawn(conn);
                Conn::H2(send)
            }
        })
    }

    fn request(&self, method: &str, path: &str, b: ReqBody) -> Request<ReqBody> {
        Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(b)
            .unwrap()
    }
}

/// How a watch stream ended.
#[derive(Debug)]
struct WatchEnd {
    /// ADDED events seen, by object name.
    added: BTreeSet<String>,
    /// `Ok` for a clean end of stream; the error for a reset or a broken chunk.
    end: Result<(), String>,
    /// A trailing partial line (an event cut in the middle).
    leftover: String,
}

async fn watch(client: Client, proto: Proto) -> WatchEnd {
    let mut conn = client.connect(proto).await.expect("connecting the watcher");
    let resp = conn
        .send(client.request("GET", &format!("{CM_PATH}?watch=1"), body("")))
        .await
        .expect("starting the watch");
    assert_eq!(resp.status(), 200, "watch request");
    let mut stream = resp.into_body();
    let mut buf = Vec::new();
    let mut added = BTreeSet::new();
    let end = loop {
        match stream.frame().await {
            None => break Ok(()),
            Some(Err(e)) => break Err(format!("{e:?}")),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let ev: serde_json::Value = serde_json::from_slice(&line)
                        .unwrap_or_else(|e| panic!("watch line is not JSON ({e}): {line:?}"));
                    if ev["type"] == "ADDED" {
                        if let Some(n) = ev["object"]["metadata"]["name"].as_str() {
                            added.insert(n.to_string());
                        }
                    }
                }
            }
        }
    };
    WatchEnd {
        added,
        end,
        leftover: String::from_utf8_lossy(&buf).into_owned(),
    }
}

/// Creates ConfigMaps over HTTP/2 until it can no longer connect; returns each name whose
/// create was acknowledged with a 2xx, with when the acknowledgement arrived.
async fn writer(client: Client, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<(String, Instant)>>>) {
    let mut i = 0u64;
    'connect: while !stop.load(Ordering::Relaxed) {
        let Ok(mut conn) = client.connect(Proto::H2).await else {
            // Refused (or cut during the handshake) once the server stops accepting.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let name = format!("w-{i}");
            let req = client.request("POST", CM_PATH, body(configmap(&name)));
            match conn.send(req).await {
                Ok(resp) => {
                    let ok = resp.status().is_success();
                    // Read the whole response: the write counts once the client has it.
                    let complete = resp.into_body().collect().await.is_ok();
                    if ok && complete {
                        acked.lock().unwrap().push((name, Instant::now()));
                    }
                }
                // GOAWAY or a closed connection: the outcome of this one is unknown, which
                // is fine; only acknowledged writes are promised.
                Err(_) => continue 'connect,
            }
        }
    }
}

/// `/readyz` over a fresh connection each time, as a load balancer probes: the status
/// code, or `None` when no connection could be made.
async fn probe_readyz(client: &Client) -> Option<u16> {
    let mut conn = client.connect(Proto::H1).await.ok()?;
    let resp = conn
        .send(client.request("GET", "/readyz", body("")))
        .await
        .ok()?;
    let code = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Some(code)
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_and_keeps_every_acknowledged_write() {
    let mut server = Server::start_with(&["--shutdown-delay", "3"]);
    let client = Client::new(&server);
    assert_eq!(probe_readyz(&client).await, Some(200));

    let watch_h2 = tokio::spawn(watch(client.clone(), Proto::H2));
    let watch_h1 = tokio::spawn(watch(client.clone(), Proto::H1));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writing = tokio::spawn(writer(client.clone(), stop.clone(), acked.clone()));
    wait_for("the writer's first acknowledged creates", || {
        acked.lock().unwrap().len() >= 20
    })
    .await;

    let pid = server.child.as_ref().unwrap().id();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // /readyz fails at once, answered by a server that is still serving.
    let start = Instant::now();
    let not_ready_at = loop {
        match probe_readyz(&client).await {
            Some(200) => {}
            Some(code) => break (code, Instant::now()),
            None => panic!("connection refused before /readyz ever failed"),
        }
        assert!(start.elapsed() < PATIENCE, "/readyz still ok after SIGTERM");
    };
    assert_eq!(not_ready_at.0, 500, "/readyz after SIGTERM");
    let not_ready_at = not_ready_at.1;

    // A create whose body is still uploading when the server stops accepting: in flight,
    // so it must be drained, not cut.
    let mut slow_conn = client
        .connect(Proto::H1)
        .await
        .expect("new connections are accepted during the shutdown delay");
    let (body_tx, mut body_rx) = mpsc::channel::<Bytes>(1);
    let stream = futures::stream::poll_fn(move |cx| {
        body_rx
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok::<_, Infallible>(Frame::data(b))))
    });
    let slow_body = configmap("slow-drained");
    let (head, tail) = slow_body.split_at(slow_body.len() / 2);
    let (head, tail) = (Bytes::copy_from_slice(head), Bytes::copy_from_slice(tail));
    let mut slow_req = client.request("POST", CM_PATH, StreamBody::new(stream).boxed_unsync());
    slow_req
        .headers_mut()
        .insert("content-length", slow_body.len().into());
    body_tx.send(head).await.unwrap();
    let slow = tokio::spawn(async move {
        let resp = slow_conn.send(slow_req).await?;
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((code, bytes))
    });

    // Writes keep succeeding while /readyz fails (the shutdown delay).
    wait_for("a write acknowledged after /readyz failed", || {
        acked
            .lock()
            .unwrap()
            .iter()
            .any(|(_, at)| *at > not_ready_at)
    })
    .await;

    // After the delay the watches end: a clean end of stream, not a reset or a cut chunk.
    for (proto, task) in [("HTTP/2", watch_h2), ("HTTP/1.1", watch_h1)] {
        let end = tokio::time::timeout(PATIENCE, task)
            .await
            .unwrap_or_else(|_| panic!("the {proto} watch did not end"))
            .unwrap();
        assert_eq!(end.end, Ok(()), "{proto} watch must end cleanly");
        assert_eq!(end.leftover, "", "{proto} watch ended mid-event");
        assert!(
            end.added.contains("w-1"),
            "{proto} watch saw no writes: {:?}",
            end.added.iter().take(5).collect::<Vec<_>>()
        );
    }

    // Watches end once the listener is closed: new connections are refused now, while the
    // slow request still holds the process in its drain.
    let refused = TcpStream::connect(client.addr).await;
    assert_eq!(
        refused.as_ref().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "a new connection after the delay: {refused:?}"
    );
    assert!(
        server.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the server exited while a request was in flight; log:\n{}",
        server.log_text()
    );

    // The in-flight request completes.
    body_tx.send(tail).await.unwrap();
    drop(body_tx);
    let (code, resp) = tokio::time::timeout(PATIENCE, slow)
        .await
        .expect("the in-flight create was not answered")
        .unwrap()
        .expect("the in-flight create was cut");
    assert_eq!(
        code,
        201,
        "in-flight create: {}",
        String::from_utf8_lossy(&resp)
    );

    // And the process exits 0.
    let mut child = server.child.take().unwrap();
    let status = tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || child.wait().unwrap()),
    )
    .await
    .expect("the server did not exit after draining")
    .unwrap();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        server.log_text()
    );
    stop.store(true, Ordering::Relaxed);
    writing.await.unwrap();

    // No acknowledged write is lost.
    let acked = acked.lock().unwrap().clone();
    let during_delay = acked.iter().filter(|(_, at)| *at > not_ready_at).count();
    eprintln!(
        "{} creates acknowledged, {during_delay} of them after /readyz failed",
        acked.len()
    );
    let mut expected: BTreeSet<String> = acked.into_iter().map(|(n, _)| n).collect();
    expected.insert("slow-drained".into());
    server.launch();
    let listed = server.ok(&["get", "configmaps", "-n", "default", "-o", "name"]);
    let stored: BTreeSet<String> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("configmap/"))
        .map(String::from)
        .collect();
    let lost: Vec<_> = expected.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates are missing after restart: {:?}",
        lost.len(),
        expected.len(),
        lost.iter().take(10).collect::<Vec<_>>()
    );
}
