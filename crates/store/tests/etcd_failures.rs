//! The etcd backend when things go wrong: unreachable etcd, a connection lost under a
//! watch, compaction by someone else, and TLS with client certificates (required, missing,
//! or signed by the wrong CA). Real etcd servers on loopback; never skipped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::etcd::testing::{EtcdServer, ServerTls};
use skiff_store::etcd::{EtcdOptions, EtcdStore, EtcdTls};
use skiff_store::{EventType, ListRequest, Store, StoreError};

const SHORT: Duration = Duration::from_secs(2);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn unreachable_etcd_is_unavailable_within_the_timeout() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // released: nothing listens there now
    let endpoint = format!("http://127.0.0.1:{port}");
    let opts = EtcdOptions::new([endpoint.clone()]).with_timeouts(SHORT, SHORT);
    let started = Instant::now();
    let err = match EtcdStore::connect(opts).await {
        Ok(_) => panic!("connecting to a closed port succeeded"),
        Err(e) => e,
    };
    let elapsed = started.elapsed();
    let StoreError::Unavailable(msg) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    eprintln!("unreachable etcd: {msg} (after {elapsed:?})");
    assert!(
        msg.contains(&endpoint),
        "the error names the endpoint: {msg}"
    );
    assert!(
        msg.to_lowercase().contains("refused"),
        "the error says why (connection refused): {msg}"
    );
    // Bounded by the connect timeout plus a short TCP probe; generous for a loaded machine.
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");

    let none = EtcdStore::connect(EtcdOptions::new(Vec::<String>::new())).await;
    assert!(
        matches!(none, Err(StoreError::Backend(_))),
        "no endpoints is a config error"
    );
}

#[tokio::test]
async fn silent_etcd_times_out_as_unavailable() {
    // Something accepts TCP connections (the kernel completes them into the backlog) but
    // never answers: connect must give up after its timeout, not hang.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let opts = EtcdOptions::new([endpoint.clone()]).with_timeouts(SHORT, SHORT);
    let started = Instant::now();
    let err = EtcdStore::connect(opts)
        .await
        .err()
        .expect("nobody answered");
    let elapsed = started.elapsed();
    eprintln!("silent etcd: {err} (after {elapsed:?})");
    let StoreError::Unavailable(msg) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(
        msg.contains(&endpoint) && msg.contains("did not answer"),
        "{msg}"
    );
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connection_ends_watches_and_fails_requests_as_unavailable() {
    let mut server = EtcdServer::start();
    let store = EtcdStore::connect(server.options().with_timeouts(SHORT, SHORT))
        .await
        .unwrap();
    let mut w = store.watch("/registry/pods/", 0).await.unwrap();
    let kv = store.create("/registry/pods/a", b("1")).await.unwrap();
    let ev = w.next().await.unwrap().unwrap();
    assert_eq!((ev.kind, ev.kv), (EventType::Put, kv));

    server.stop();

    match tokio::time::timeout(Duration::from_secs(30), w.next()).await {
        Ok(Some(Err(StoreError::Unavailable(msg)))) => eprintln!("watch ended with: {msg}"),
        other => panic!("a broken watch must end with Unavailable, got {other:?}"),
    }
    let started = Instant::now();
    let err = store.get("/registry/pods/a").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    // Invalid keys are rejected before any network call, even with etcd gone.
    let bad = store.get("/etc/passwd").await.unwrap_err();
    assert!(matches!(bad, StoreError::InvalidKey { .. }), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_by_another_client_is_observed() {
    let server = EtcdServer::start();
    let a = EtcdStore::connect(server.options()).await.unwrap();
    let other = EtcdStore::connect(server.options()).await.unwrap();
    assert_eq!(
        other.compacted_revision().await.unwrap(),
        0,
        "never compacted"
    );
    for i in 0..40 {
        a.create(&format!("/registry/k/{i:02}"), b("v"))
            .await
            .unwrap();
    }
    a.compact(23).await.unwrap();
    // `other` never compacted: it must learn the point from etcd itself.
    assert_eq!(other.compacted_revision().await.unwrap(), 23);
    let err = other
        .list(&ListRequest {
            prefix: "/registry/k/".into(),
            revision: 22,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Compacted {
            requested: 22,
            compacted: 23
        }
    );
    a.compact(30).await.unwrap();
    assert_eq!(other.compacted_revision().await.unwrap(), 30);
    let at = other
        .list(&ListRequest {
            prefix: "/registry/k/".into(),
            revision: 30,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(at.kvs.len(), 29, "keys 00..=28 existed at revision 30");
}

struct Certs {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
    rogue_client: (PathBuf, PathBuf),
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl (the TLS tests generate certificates with the openssl CLI)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

fn make_leaf(dir: &Path, ca: &str, name: &str, ext: &str) -> (PathBuf, PathBuf) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-days",
            "2",
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_ca(d, "ca");
    make_ca(d, "rogue-ca");
    let leaf = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n";
    let server = make_leaf(
        d,
        "ca",
        "etcd",
        &format!("{leaf}extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"),
    );
    let client = make_leaf(
        d,
        "ca",
        "apiserver",
        &format!("{leaf}extendedKeyUsage=clientAuth\n"),
    );
    let rogue_client = make_leaf(
        d,
        "rogue-ca",
        "intruder",
        &format!("{leaf}extendedKeyUsage=clientAuth\n"),
    );
    Certs {
        ca: d.join("ca.crt"),
        _dir: dir,
        server,
        client,
        rogue_client,
    }
}

fn tls_server(c: &Certs) -> EtcdServer {
    EtcdServer::start_tls(ServerTls {
        cert_file: c.server.0.clone(),
        key_file: c.server.1.clone(),
        client_ca_file: Some(c.ca.clone()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificate() {
    let c = certs();
    let server = tls_server(&c);
    let opts = server.tls_options(EtcdTls {
        ca_file: Some(c.ca.clone()),
        cert_file: Some(c.client.0.clone()),
        key_file: Some(c.client.1.clone()),
        server_name: None,
    });
    let store = EtcdStore::connect(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail()));
    let mut w = store.watch("/registry/secrets/", 0).await.unwrap();
    let created = store.create("/registry/secrets/s", b("x")).await.unwrap();
    let updated = store
        .update("/registry/secrets/s", b("y"), Some(created.mod_revision))
        .await
        .unwrap();
    assert_eq!(
        store.get("/registry/secrets/s").await.unwrap(),
        Some(updated.clone())
    );
    let list = store
        .list(&ListRequest {
            prefix: "/registry/secrets/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.kvs, vec![updated.clone()]);
    assert_eq!(w.next().await.unwrap().unwrap().kv, created);
    let ev = w.next().await.unwrap().unwrap();
    assert_eq!((ev.kv, ev.prev_kv), (updated, Some(created)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_rejects_missing_or_foreign_client_certificates() {
    let c = certs();
    let server = tls_server(&c);
    let connect = |tls: EtcdTls| {
        let opts = server.tls_options(tls).with_timeouts(SHORT, SHORT);
        async move {
            match EtcdStore::connect(opts).await {
                Ok(_) => panic!("connection should have been rejected"),
                Err(StoreError::Unavailable(msg)) => msg,
                Err(e) => panic!("expected Unavailable, got {e:?}"),
            }
        }
    };

    let no_cert = connect(EtcdTls {
        ca_file: Some(c.ca.clone()),
        ..Default::default()
    })
    .await;
    eprintln!("without a client certificate: {no_cert}");
    assert!(no_cert.contains(server.endpoint()), "{no_cert}");
    assert!(no_cert.to_lowercase().contains("certificate"), "{no_cert}");

    let rogue = connect(EtcdTls {
        ca_file: Some(c.ca.clone()),
        cert_file: Some(c.rogue_client.0.clone()),
        key_file: Some(c.rogue_client.1.clone()),
        server_name: None,
    })
    .await;
    eprintln!("with a certificate from another CA: {rogue}");
    assert!(rogue.to_lowercase().contains("certificate"), "{rogue}");

    // The client side checks etcd too: a server certificate from an unknown CA is refused.
    let untrusted = connect(EtcdTls {
        ca_file: Some(c._dir.path().join("rogue-ca.crt")),
        cert_file: Some(c.client.0.clone()),
        key_file: Some(c.client.1.clone()),
        server_name: None,
    })
    .await;
    eprintln!("not trusting etcd's CA: {untrusted}");
    assert!(
        untrusted.to_lowercase().contains("certificate"),
        "{untrusted}"
    );

    // Half a client identity is a configuration error, caught before connecting.
    let half = EtcdStore::connect(server.tls_options(EtcdTls {
        cert_file: Some(c.client.0.clone()),
        ..Default::default()
    }))
    .await;
    assert!(matches!(half, Err(StoreError::Backend(_))));
}
