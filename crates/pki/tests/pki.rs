//! The PKI as the API server and an operator see it: files on disk, certificates a TLS
//! client accepts, a kubeconfig kubectl reads.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use skiff_pki::{Pki, PkiError, PkiOptions};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

const FILES: [&str; 8] = [
    "ca.crt",
    "ca.key",
    "apiserver.crt",
    "apiserver.key",
    "admin.crt",
    "admin.key",
    "sa.key",
    "sa.pub",
];

fn opts() -> PkiOptions {
    PkiOptions {
        bind_address: Some("192.0.2.20".parse().unwrap()),
        extra_sans: vec!["skiff.example.com".into(), "192.0.2.10".into()],
        ..PkiOptions::default()
    }
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    fs::read(dir.join("pki").join(name)).unwrap()
}

fn cert_der(pem: &[u8]) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Names and addresses in a certificate's SAN extension.
fn sans(x509: &X509Certificate<'_>) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    let ext = x509
        .subject_alternative_name()
        .unwrap()
        .expect("SAN extension");
    for name in &ext.value.general_names {
        match name {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()))
            }
            GeneralName::IPAddress(b) if b.len() == 16 => {
                ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()))
            }
            _ => {}
        }
    }
    (dns, ips)
}

fn cn(x509: &X509Certificate<'_>) -> String {
    x509.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn init_creates_private_files_with_sane_contents() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_init(tmp.path(), &opts()).unwrap();

    assert_eq!(mode(&tmp.path().join("pki")), 0o700);
    for name in FILES {
        let path = tmp.path().join("pki").join(name);
        assert_eq!(mode(&path), 0o600, "{name}");
    }

    // The CA: self-signed, a CA, ten years, CN skiff-ca.
    let ca_der = cert_der(&read(tmp.path(), "ca.crt"));
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    assert_eq!(cn(&ca), "skiff-ca");
    assert!(ca.basic_constraints().unwrap().unwrap().value.ca);
    ca.verify_signature(None).unwrap();
    let ca_life = ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp();
    assert!(ca_life >= 3650 * 86400, "CA valid for {ca_life}s");
    assert_eq!(pki.ca_cert_der(), &ca_der);

    // The serving certificate: signed by the CA, one year, every required SAN.
    let srv_der = cert_der(&read(tmp.path(), "apiserver.crt"));
    let (_, srv) = X509Certificate::from_der(&srv_der).unwrap();
    assert_eq!(cn(&srv), "kube-apiserver");
    srv.verify_signature(Some(ca.public_key())).unwrap();
    assert!(!srv.basic_constraints().unwrap().is_some_and(|b| b.value.ca));
    let life = srv.validity().not_after.timestamp() - srv.validity().not_before.timestamp();
    assert!((365 * 86400..=366 * 86400).contains(&life), "{life}");
    let (dns, ips) = sans(&srv);
    for want in [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "skiff.example.com",
    ] {
        assert!(
            dns.iter().any(|d| d == want),
            "missing DNS SAN {want}: {dns:?}"
        );
    }
    for want in ["127.0.0.1", "::1", "10.96.0.1", "192.0.2.10", "192.0.2.20"] {
        let want: IpAddr = want.parse().unwrap();
        assert!(ips.contains(&want), "missing IP SAN {want}: {ips:?}");
    }
    let required = opts().required_serving_sans().unwrap();
    for d in &required.dns_names {
        assert!(dns.contains(d), "missing {d}");
    }
    for ip in &required.ips {
        assert!(ips.contains(ip), "missing {ip}");
    }

    // The admin certificate: kubernetes-admin in system:masters, signed by the CA.
    let adm_der = cert_der(&read(tmp.path(), "admin.crt"));
    let (_, adm) = X509Certificate::from_der(&adm_der).unwrap();
    adm.verify_signature(Some(ca.public_key())).unwrap();
    let user = skiff_pki::identity::from_peer_certs(std::slice::from_ref(&adm_der)).unwrap();
    assert_eq!(user.name, "kubernetes-admin");
    assert_eq!(user.groups, vec!["system:masters".to_string()]);

    // The service-account key pair: RSA-2048, the public half matching.
    let sa_pub = SubjectPublicKeyInfoDer::from_pem_slice(&read(tmp.path(), "sa.pub")).unwrap();
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&sa_pub).unwrap();
    match spki.parsed().unwrap() {
        PublicKey::RSA(rsa) => assert_eq!(rsa.key_size(), 2048),
        other => panic!("sa.pub is not RSA: {other:?}"),
    }
    let sa_key = String::from_utf8(read(tmp.path(), "sa.key")).unwrap();
    assert!(
        sa_key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{sa_key:.40}"
    );
    let kp = rcgen::KeyPair::from_pem(&sa_key).unwrap();
    assert_eq!(
        rcgen::PublicKeyData::subject_public_key_info(&kp),
        sa_pub.as_ref()
    );
}

#[test]
fn second_start_reuses_everything_and_reissues_only_the_serving_cert_for_new_sans() {
    let tmp = tempfile::tempdir().unwrap();
    Pki::load_or_init(tmp.path(), &opts()).unwrap();
    let before: Vec<Vec<u8>> = FILES.iter().map(|f| read(tmp.path(), f)).collect();

    Pki::load_or_init(tmp.path(), &opts()).unwrap();
    let after: Vec<Vec<u8>> = FILES.iter().map(|f| read(tmp.path(), f)).collect();
    assert_eq!(before, after, "a clean restart must not rewrite anything");

    // A new address is required: the serving certificate is re-issued from the same CA.
    let mut more = opts();
    more.extra_sans.push("198.51.100.7".into());
    Pki::load_or_init(tmp.path(), &more).unwrap();
    for (name, old) in FILES.iter().zip(&before) {
        let new = read(tmp.path(), name);
        if name.starts_with("apiserver") {
            assert_ne!(&new, old, "{name} should be re-issued");
        } else {
            assert_eq!(&new, old, "{name} should be kept");
        }
    }
    let srv = cert_der(&read(tmp.path(), "apiserver.crt"));
    let (_, srv) = X509Certificate::from_der(&srv).unwrap();
    let ca = cert_der(&read(tmp.path(), "ca.crt"));
    let (_, ca) = X509Certificate::from_der(&ca).unwrap();
    srv.verify_signature(Some(ca.public_key())).unwrap();
    assert!(sans(&srv).1.contains(&"198.51.100.7".parse().unwrap()));
    assert_eq!(mode(&tmp.path().join("pki/apiserver.key")), 0o600);
}

#[test]
fn serving_cert_past_two_thirds_of_its_life_is_renewed() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_init(tmp.path(), &opts()).unwrap();
    let sans = opts().required_serving_sans().unwrap();
    // Certificates start 5 minutes in the past, so a 1 s certificate is long past 2/3.
    let (crt, key) = pki
        .issue_serving_cert(
            "kube-apiserver",
            &sans.dns_names,
            &sans.ips,
            Duration::from_secs(1),
        )
        .unwrap();
    fs::write(pki.serving_cert_path(), &crt).unwrap();
    fs::write(pki.serving_key_path(), &key).unwrap();
    let ca_before = read(tmp.path(), "ca.crt");

    let renewed = pki.renew_if_needed().unwrap();
    assert!(renewed.serving && !renewed.admin, "{renewed:?}");
    let new = fs::read_to_string(pki.serving_cert_path()).unwrap();
    assert_ne!(new, crt);
    let der = cert_der(new.as_bytes());
    let (_, x509) = X509Certificate::from_der(&der).unwrap();
    let life = x509.validity().not_after.timestamp() - x509.validity().not_before.timestamp();
    assert!(life > 300 * 86400);
    assert_eq!(read(tmp.path(), "ca.crt"), ca_before);
    assert!(!pki.renew_if_needed().unwrap().any());
}

fn expect_invalid(err: PkiError, file: &str) -> String {
    let msg = err.to_string();
    assert!(
        matches!(err, PkiError::Invalid { .. }),
        "expected Invalid for {file}, got {err:?}"
    );
    assert!(
        err.path().is_some_and(|p| p.ends_with(file)),
        "error should name {file}: {msg}"
    );
    assert!(msg.contains(file), "message should name {file}: {msg}");
    msg
}

#[test]
fn corrupt_ca_is_an_error_naming_the_file_and_the_file_is_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    Pki::load_or_init(tmp.path(), &opts()).unwrap();
    let ca_path = tmp.path().join("pki/ca.crt");

    let garbage =
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    fs::write(&ca_path, garbage).unwrap();
    let err = Pki::load_or_init(tmp.path(), &opts()).unwrap_err();
    expect_invalid(err, "ca.crt");
    assert_eq!(fs::read(&ca_path).unwrap(), garbage);

    fs::write(&ca_path, b"hello").unwrap();
    let err = Pki::load_or_init(tmp.path(), &opts()).unwrap_err();
    expect_invalid(err, "ca.crt");
    assert_eq!(fs::read(&ca_path).unwrap(), b"hello");
}

#[test]
fn mismatched_and_missing_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_init(tmp.path(), &opts()).unwrap();
    let dir = tmp.path().join("pki");
    let other = tempfile::tempdir().unwrap();
    let foreign = Pki::load_or_init(other.path(), &opts()).unwrap();
    let snapshot: Vec<Vec<u8>> = FILES.iter().map(|f| read(tmp.path(), f)).collect();
    let restore = || {
        for (f, b) in FILES.iter().zip(&snapshot) {
            fs::write(dir.join(f), b).unwrap();
        }
    };

    // The CA key of another CA.
    fs::copy(foreign.ca_key_path(), dir.join("ca.key")).unwrap();
    expect_invalid(
        Pki::load_or_init(tmp.path(), &opts()).unwrap_err(),
        "ca.key",
    );
    restore();

    // A serving certificate (with its key) from another CA.
    fs::copy(foreign.serving_cert_path(), pki.serving_cert_path()).unwrap();
    fs::copy(foreign.serving_key_path(), pki.serving_key_path()).unwrap();
    let msg = expect_invalid(
        Pki::load_or_init(tmp.path(), &opts()).unwrap_err(),
        "apiserver.crt",
    );
    assert!(msg.contains("cluster CA"), "{msg}");
    restore();

    // Our serving certificate with someone else's key.
    fs::copy(foreign.serving_key_path(), pki.serving_key_path()).unwrap();
    expect_invalid(
        Pki::load_or_init(tmp.path(), &opts()).unwrap_err(),
        "apiserver.key",
    );
    restore();

    // The admin key is not a key at all.
    fs::write(
        pki.admin_key_path(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    expect_invalid(
        Pki::load_or_init(tmp.path(), &opts()).unwrap_err(),
        "admin.key",
    );
    restore();

    // sa.pub of another key.
    fs::copy(foreign.sa_pub_path(), pki.sa_pub_path()).unwrap();
    expect_invalid(
        Pki::load_or_init(tmp.path(), &opts()).unwrap_err(),
        "sa.pub",
    );
    restore();

    // A missing CA key is never "fixed" by making a new CA.
    fs::remove_file(pki.ca_key_path()).unwrap();
    expect_invalid(
        Pki::load_or_init(tmp.path(), &opts()).unwrap_err(),
        "ca.key",
    );
    assert_eq!(read(tmp.path(), "ca.crt"), snapshot[0]);
    assert!(!pki.ca_key_path().exists());
    restore();

    // Everything restored: loads again, nothing rewritten.
    Pki::load_or_init(tmp.path(), &opts()).unwrap();
    let now: Vec<Vec<u8>> = FILES.iter().map(|f| read(tmp.path(), f)).collect();
    assert_eq!(now, snapshot);
}

#[test]
fn bad_options_fail_before_touching_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = PkiOptions {
        service_cidr: "10.96.0.0".into(),
        ..PkiOptions::default()
    };
    let err = Pki::load_or_init(&tmp.path().join("data"), &bad).unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::Option {
                option: "service_cidr",
                ..
            }
        ),
        "{err}"
    );
    assert!(!tmp.path().join("data").exists());

    let bad = PkiOptions {
        extra_sans: vec!["not a name".into()],
        ..PkiOptions::default()
    };
    let err = Pki::load_or_init(&tmp.path().join("data"), &bad).unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::Option {
                option: "extra_sans",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn admin_kubeconfig_is_private_and_kubectl_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_init(tmp.path(), &opts()).unwrap();
    let path = pki
        .write_admin_kubeconfig(tmp.path(), "https://127.0.0.1:6443")
        .unwrap();
    assert_eq!(path, tmp.path().join("admin.kubeconfig"));
    assert_eq!(mode(&path), 0o600);
    // Rewriting replaces it in place and keeps the mode.
    pki.write_admin_kubeconfig(tmp.path(), "https://127.0.0.1:6443")
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    let leftovers: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let kubectl = |jsonpath: &str| -> String {
        let out = std::process::Command::new("kubectl")
            .args(["config", "view", "--kubeconfig"])
            .arg(&path)
            .args(["--raw", "-o"])
            .arg(format!("jsonpath={jsonpath}"))
            .output()
            .expect("kubectl must be installed (e.g. /usr/bin/kubectl)");
        assert!(
            out.status.success(),
            "kubectl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(kubectl("{.users[0].name}"), "kubernetes-admin");
    assert_eq!(kubectl("{.current-context}"), "kubernetes-admin@skiff");
    assert_eq!(
        kubectl("{.clusters[0].cluster.server}"),
        "https://127.0.0.1:6443"
    );
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        b64.decode(kubectl("{.users[0].user.client-key-data}"))
            .unwrap(),
        fs::read(pki.admin_key_path()).unwrap()
    );
    assert_eq!(
        b64.decode(kubectl("{.users[0].user.client-certificate-data}"))
            .unwrap(),
        fs::read(pki.admin_cert_path()).unwrap()
    );
    assert_eq!(
        b64.decode(kubectl("{.clusters[0].cluster.certificate-authority-data}"))
            .unwrap(),
        fs::read(pki.ca_cert_path()).unwrap()
    );
}
