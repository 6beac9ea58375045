//! Real TLS handshakes on loopback against the server configuration the API server uses.

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use skiff_pki::identity::{from_peer_certs, UserInfo};
use skiff_pki::tls::{client_config, ServerTls};
use skiff_pki::{Pki, PkiOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the server saw on one connection.
#[derive(Debug)]
struct Seen {
    user: Option<UserInfo>,
    alpn: Option<Vec<u8>>,
}

/// Accept connections forever, taking a fresh config from `tls` for each, and report the
/// authenticated user of each completed handshake.
async fn serve(listener: TcpListener, tls: Arc<ServerTls>, seen: mpsc::UnboundedSender<Seen>) {
    loop {
        let (tcp, _) = listener.accept().await.unwrap();
        let acceptor = tls.acceptor();
        let seen = seen.clone();
        tokio::spawn(async move {
            let Ok(mut stream) = acceptor.accept(tcp).await else {
                return;
            };
            let (_, conn) = stream.get_ref();
            let user = conn.peer_certificates().and_then(from_peer_certs);
            let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
            let _ = seen.send(Seen { user, alpn });
            let _ = stream.write_all(b"ok").await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Connect, read the server's greeting, return the certificate the server presented.
async fn connect(
    addr: std::net::SocketAddr,
    mut config: rustls::ClientConfig,
) -> std::io::Result<CertificateDer<'static>> {
    // A resumed TLS 1.3 session presents no certificate; every connection here must do a
    // full handshake so it shows what the server serves now.
    config.resumption = rustls::client::Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    let mut stream = connector.connect(name, tcp).await?;
    let mut buf = [0u8; 2];
    stream.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ok");
    let (_, conn) = stream.get_ref();
    Ok(conn.peer_certificates().unwrap()[0].clone().into_owned())
}

async fn next_seen(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("server saw no connection")
        .unwrap()
}

#[tokio::test]
async fn handshake_identity_anonymous_and_live_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = PkiOptions {
        detect_host_addresses: false,
        ..PkiOptions::default()
    };
    let pki = Pki::load_or_init(tmp.path(), &opts).unwrap();
    let tls = Arc::new(pki.server_tls().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(serve(listener, tls.clone(), tx));

    let ca = pki.ca_cert_pem().to_string();
    let admin_cert = fs::read_to_string(pki.admin_cert_path()).unwrap();
    let admin_key = fs::read_to_string(pki.admin_key_path()).unwrap();
    let first_serving = CertificateDer::from_pem_file(pki.serving_cert_path()).unwrap();

    // The admin presents its certificate: the server sees kubernetes-admin/system:masters.
    let admin = client_config(&ca, Some((&admin_cert, &admin_key))).unwrap();
    let presented = connect(addr, admin.clone()).await.unwrap();
    assert_eq!(presented, first_serving);
    let seen = next_seen(&mut rx).await;
    assert_eq!(
        seen.user,
        Some(UserInfo {
            name: "kubernetes-admin".into(),
            groups: vec!["system:masters".into()],
        })
    );
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));

    // A client without a certificate still connects, anonymously.
    let mut anon = client_config(&ca, None).unwrap();
    anon.alpn_protocols = vec![b"http/1.1".to_vec()];
    connect(addr, anon.clone()).await.unwrap();
    let seen = next_seen(&mut rx).await;
    assert_eq!(seen.user, None);
    assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));

    // A client certificate from another CA is refused at the handshake.
    let other = tempfile::tempdir().unwrap();
    let stranger = Pki::load_or_init(other.path(), &opts).unwrap();
    let (s_cert, s_key) = stranger
        .issue_client_cert("mallory", &["system:masters"], Duration::from_secs(3600))
        .unwrap();
    let bad = client_config(&ca, Some((&s_cert, &s_key))).unwrap();
    assert!(connect(addr, bad).await.is_err());

    // Certificates issued by the helper authenticate too.
    let (c_cert, c_key) = pki
        .issue_client_cert(
            "system:node:n1",
            &["system:nodes"],
            Duration::from_secs(3600),
        )
        .unwrap();
    connect(addr, client_config(&ca, Some((&c_cert, &c_key))).unwrap())
        .await
        .unwrap();
    let user = next_seen(&mut rx).await.user.unwrap();
    assert_eq!(user.name, "system:node:n1");
    assert_eq!(user.groups, vec!["system:nodes".to_string()]);

    // Re-issue the serving certificate and reload: the next connection gets the new one,
    // without restarting the listener.
    pki.reissue_serving_cert().unwrap();
    let second_serving = CertificateDer::from_pem_file(pki.serving_cert_path()).unwrap();
    assert_ne!(second_serving, first_serving);
    assert_eq!(connect(addr, anon.clone()).await.unwrap(), first_serving);
    tls.reload().unwrap();
    assert_eq!(connect(addr, admin).await.unwrap(), second_serving);
    assert_eq!(connect(addr, anon).await.unwrap(), second_serving);

    server.abort();
}

#[tokio::test]
async fn client_ca_bundle_reload_swaps_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = PkiOptions {
        detect_host_addresses: false,
        ..PkiOptions::default()
    };
    let pki = Pki::load_or_init(tmp.path(), &opts).unwrap();
    let tls = pki.server_tls().unwrap();
    let before = tls.config();
    assert!(
        !tls.reload_client_ca().unwrap(),
        "unchanged bundle keeps the config"
    );
    assert!(Arc::ptr_eq(&before, &tls.config()));

    // Trust expanded to a second CA: a new config for new connections.
    let other = tempfile::tempdir().unwrap();
    let second = Pki::load_or_init(other.path(), &opts).unwrap();
    let bundle = format!("{}{}", pki.ca_cert_pem(), second.ca_cert_pem());
    fs::write(pki.ca_cert_path(), bundle).unwrap();
    assert!(tls.reload_client_ca().unwrap());
    assert!(!Arc::ptr_eq(&before, &tls.config()));

    // A broken bundle is refused and the working config stays.
    let current = tls.config();
    fs::write(pki.ca_cert_path(), "garbage").unwrap();
    let err = tls.reload_client_ca().unwrap_err();
    assert!(err.to_string().contains("ca.crt"), "{err}");
    assert!(Arc::ptr_eq(&current, &tls.config()));

    // A serving key that does not match its certificate is refused too.
    fs::copy(second.serving_key_path(), pki.serving_key_path()).unwrap();
    let err = tls.reload_cert().unwrap_err();
    assert!(err.to_string().contains("apiserver.key"), "{err}");
}

#[test]
fn from_peer_certs_rejects_nothing_and_garbage() {
    assert_eq!(from_peer_certs(&[]), None);
    assert_eq!(
        from_peer_certs(&[CertificateDer::from(vec![1, 2, 3])]),
        None
    );
}

/// kubectl (Go's TLS stack) accepts the serving certificate, sends the admin client
/// certificate from the kubeconfig, and the server maps it to kubernetes-admin.
#[tokio::test]
async fn kubectl_authenticates_with_the_admin_kubeconfig() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = PkiOptions {
        detect_host_addresses: false,
        ..PkiOptions::default()
    };
    let pki = Pki::load_or_init(tmp.path(), &opts).unwrap();
    let tls = pki.server_tls().unwrap();
    // This test server only speaks HTTP/1.1, so offer only that; the rest of the config is
    // exactly what the API server gets.
    let mut config = (*tls.config()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let user = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(from_peer_certs);
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let body = match user {
                    Some(u) => format!("{{\"user\":\"{}\",\"groups\":{:?}}}", u.name, u.groups),
                    None => "{\"user\":null}".to_string(),
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });

    let kubeconfig = pki
        .write_admin_kubeconfig(tmp.path(), &format!("https://{addr}"))
        .unwrap();
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "--raw", "/whoami"])
        .output()
        .await
        .expect("kubectl must be installed (e.g. /usr/bin/kubectl)");
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"user":"kubernetes-admin","groups":["system:masters"]}"#
    );

    // Through the name every in-cluster client uses, too (resolved to loopback here).
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg(format!("--server=https://localhost:{}", addr.port()))
        .args(["get", "--raw", "/whoami"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl via localhost failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.abort();
}
