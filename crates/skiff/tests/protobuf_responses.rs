//! Responses in `application/vnd.kubernetes.protobuf` for clients that list it first in
//! `Accept` (client-go's typed clients, kubectl's typed commands), with the real kubectl.

mod common;

use common::Server;

/// Runs kubectl with `-v=8` (which logs request and response headers) and returns stderr.
fn verbose(s: &Server, minor: u32, args: &[&str]) -> String {
    let mut a = vec!["-v=8"];
    a.extend_from_slice(args);
    let out = s.kubectl_v(minor, &a);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "kubectl 1.{minor} {args:?} failed: {err}"
    );
    err
}

/// How many responses in a `-v=8` log came back as protobuf (request headers excluded).
fn protobuf_responses(log: &str) -> usize {
    let mut in_response = false;
    let mut n = 0;
    for l in log.lines() {
        if l.contains("\"Response\"") || l.contains("Response Headers") {
            in_response = true;
        } else if l.trim_start().starts_with('>') || l.contains("Request Headers") {
            in_response = false;
        } else if in_response && l.contains("Content-Type: application/vnd.kubernetes.protobuf") {
            n += 1;
        }
    }
    n
}

#[test]
fn typed_clients_get_protobuf_and_tables_stay_json() {
    let s = Server::start();
    // kubectl 1.33's typed create: protobuf body, protobuf answer, decoded and printed.
    let log = verbose(
        &s,
        33,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=2",
        ],
    );
    assert!(protobuf_responses(&log) > 0, "{log}");
    let log = verbose(
        &s,
        33,
        &["create", "secret", "generic", "pw", "--from-literal=a=b"],
    );
    assert!(protobuf_responses(&log) > 0, "{log}");
    // The objects are what was asked for, read back as JSON.
    let d: serde_json::Value =
        serde_json::from_str(&s.ok(&["get", "deploy", "web", "-o", "json"])).unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    // `auth can-i` posts a SelfSubjectAccessReview and decodes the protobuf answer.
    assert_eq!(s.ok(&["auth", "can-i", "get", "pods"]).trim(), "yes");
    // Tables (kubectl get) are JSON.
    let log = verbose(&s, 33, &["get", "deploy"]);
    assert!(log.contains("Content-Type: application/json"), "{log}");
    // kubectl scale reads and writes the Scale subresource through a typed client.
    s.ok(&["scale", "deploy", "web", "--replicas=4"]);
    assert_eq!(
        s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    // Older kubectl (JSON request bodies) still works against protobuf-capable answers.
    s.ok_v(27, &["create", "configmap", "old", "--from-literal=a=b"]);
    s.ok_v(27, &["create", "deployment", "old", "--image=nginx:1.27"]);
}

/// A client-go-style protobuf watch, read with a raw HTTP client and decoded with the
/// reference prost types: length-prefixed `WatchEvent` frames whose objects carry the
/// `k8s\0` envelope.
#[test]
fn watches_stream_protobuf_frames_to_protobuf_clients() {
    use http_body_util::BodyExt;
    use k8s_pb::apimachinery::pkg::apis::meta::v1::WatchEvent;
    use prost::Message as _;

    let s = Server::start();
    s.create_cm("before", &[("a", "1")]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let kc = kube::config::Kubeconfig::read_from(s.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let req = http::Request::get(
            "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=30&fieldSelector=metadata.name%3Dbefore",
        )
        .header("Accept", "application/vnd.kubernetes.protobuf, application/json")
        .body(Vec::new())
        .unwrap();
        let resp = client.send(req.map(kube::client::Body::from)).await.unwrap();
        assert_eq!(
            resp.headers()["content-type"],
            "application/vnd.kubernetes.protobuf;stream=watch"
        );
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        let mut events = Vec::new();
        let mut patched = false;
        while events.len() < 2 {
            let frame = tokio::time::timeout(std::time::Duration::from_secs(60), body.frame())
                .await
                .expect("a watch frame in time")
                .expect("the stream stays open")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
            }
            while buf.len() >= 4 {
                let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                if buf.len() < 4 + len {
                    break;
                }
                let ev = WatchEvent::decode(&buf[4..4 + len]).unwrap();
                buf.drain(..4 + len);
                let raw = ev.object.unwrap().raw.unwrap();
                assert_eq!(&raw[..4], b"k8s\0", "objects carry the protobuf envelope");
                let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(&raw[4..]).unwrap();
                let cm = k8s_pb::api::core::v1::ConfigMap::decode(unknown.raw()).unwrap();
                events.push((ev.r#type.unwrap(), cm.data.get("a").cloned()));
            }
            if !events.is_empty() && !patched {
                patched = true;
                let out = s.kubectl(&["patch", "cm", "before", "--type=merge", "-p", r#"{"data":{"a":"2"}}"#]);
                assert!(out.status.success());
            }
        }
        assert_eq!(
            events,
            [
                ("ADDED".to_string(), Some("1".to_string())),
                ("MODIFIED".to_string(), Some("2".to_string()))
            ]
        );
    });
}
