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
