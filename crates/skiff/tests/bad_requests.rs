//! Bad input against a real `skiff server`: raw HTTPS requests (the `curl` CLI with the
//! admin client certificate) that must each come back as a `Status` with upstream's code,
//! reason and field order, a message that says what is wrong, and no partial write.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Server;
use serde_json::{json, Value};

struct Resp {
    code: u16,
    content_type: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// Sends requests with `curl`, as the admin (client certificate) or anonymously.
struct Curl {
    base: String,
    pki: PathBuf,
    scratch: PathBuf,
    n: std::cell::Cell<u32>,
}

impl Curl {
    fn new(s: &Server) -> Curl {
        let scratch = s.data_dir().join("bad-requests");
        std::fs::create_dir_all(&scratch).unwrap();
        Curl {
            base: format!("https://127.0.0.1:{}", s.port),
            pki: s.data_dir().join("pki"),
            scratch,
            n: std::cell::Cell::new(0),
        }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&[u8]>,
        anonymous: bool,
    ) -> Resp {
        let n = self.n.get() + 1;
        self.n.set(n);
        let out = self.scratch.join(format!("resp-{n}"));
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--path-as-is", "--max-time", "30", "-X", method])
            .arg("--cacert")
            .arg(self.pki.join("ca.crt"))
            .arg("-o")
            .arg(&out)
            .args(["-w", "%{http_code} %{content_type}"]);
        if !anonymous {
            cmd.arg("--cert")
                .arg(self.pki.join("admin.crt"))
                .arg("--key")
                .arg(self.pki.join("admin.key"));
        }
        for h in headers {
            cmd.args(["-H", h]);
        }
        if let Some(body) = body {
            let file = self.scratch.join(format!("body-{n}"));
            std::fs::write(&file, body).unwrap();
            // curl would otherwise label a body as a form.
            if !headers
                .iter()
                .any(|h| h.to_ascii_lowercase().starts_with("content-type:"))
            {
                cmd.args(["-H", "Content-Type: application/json"]);
            }
            cmd.arg("--data-binary").arg(format!("@{}", file.display()));
        }
        cmd.arg(format!("{}{path}", self.base));
        let output = cmd.output().expect("running curl");
        let written = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "curl {method} {path} failed: {written} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (code, content_type) = written.split_once(' ').unwrap_or((&written, ""));
        Resp {
            code: code
                .parse()
                .unwrap_or_else(|_| panic!("curl wrote {written:?}")),
            content_type: content_type.to_string(),
            body: String::from_utf8_lossy(&std::fs::read(&out).unwrap_or_default()).into_owned(),
        }
    }

    /// A setup request that must succeed.
    fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let r = self.send(method, path, &[], Some(body.to_string().as_bytes()), false);
        assert!(
            (200..300).contains(&r.code),
            "{method} {path}: {} {}",
            r.code,
            r.body
        );
        r.json()
    }

    fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None, false)
    }
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<&'static str>,
    body: Option<Vec<u8>>,
    anonymous: bool,
    code: u16,
    reason: &'static str,
    /// A piece of the message that tells the client what to fix.
    message: &'static str,
    /// The field the first cause must name (422s).
    cause_field: Option<&'static str>,
    /// The whole response body, byte for byte, where upstream's is known.
    exact: Option<String>,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: impl Into<String>,
    body: Option<Vec<u8>>,
    code: u16,
    reason: &'static str,
    message: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        headers: Vec::new(),
        body,
        anonymous: false,
        code,
        reason,
        message,
        cause_field: None,
        exact: None,
    }
}

impl Case {
    fn header(mut self, h: &'static str) -> Self {
        self.headers.push(h);
        self
    }
    fn cause(mut self, field: &'static str) -> Self {
        self.cause_field = Some(field);
        self
    }
    fn exact(mut self, body: &str) -> Self {
        self.exact = Some(body.to_string());
        self
    }
    fn anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }
}

/// Everything a failure response must be; returns what is wrong, if anything.
fn check(c: &Case, r: &Resp) -> Result<(), String> {
    if r.code != c.code {
        return Err(format!("code {} (want {}): {}", r.code, c.code, r.body));
    }
    if r.code >= 500 {
        return Err(format!("a 5xx for bad input: {}", r.body));
    }
    if r.content_type != "application/json" {
        return Err(format!("content type {:?}", r.content_type));
    }
    if let Some(exact) = &c.exact {
        if r.body != *exact {
            return Err(format!("body\n  {:?}\nwant\n  {exact:?}", r.body));
        }
    }
    // Go's field order, compact, newline-terminated.
    if !r.body.starts_with(
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":""#,
    ) || !r.body.ends_with(&format!(",\"code\":{}}}\n", c.code))
    {
        return Err(format!(
            "not a Status in upstream's field order: {}",
            r.body
        ));
    }
    let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("{e}: {}", r.body))?;
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "kind",
        "apiVersion",
        "metadata",
        "status",
        "message",
        "reason",
    ];
    if v.get("details").is_some() {
        want.push("details");
    }
    want.push("code");
    if keys != want {
        return Err(format!("keys {keys:?}"));
    }
    if v["reason"] != c.reason {
        return Err(format!("reason {} (want {})", v["reason"], c.reason));
    }
    let message = v["message"].as_str().unwrap_or_default();
    if message.is_empty() || !message.contains(c.message) {
        return Err(format!("message {message:?} lacks {:?}", c.message));
    }
    if let Some(field) = c.cause_field {
        let first = &v["details"]["causes"][0];
        if first["field"] != field || first["message"].as_str().is_none_or(str::is_empty) {
            return Err(format!("first cause {first} (want field {field:?})"));
        }
    }
    Ok(())
}

const NS: &str = "/api/v1/namespaces/default";

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
}

fn raw(b: &[u8]) -> Option<Vec<u8>> {
    Some(b.to_vec())
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    Some(v.to_string().into_bytes())
}

#[test]
fn bad_requests_get_upstream_statuses_and_change_nothing() {
    let s = Server::start();
    let api = Curl::new(&s);

    // What the failing writes aim at; each must be left as it is.
    api.ok("POST", &format!("{NS}/configmaps"), cm("keep"));
    let keep_before = api.get(&format!("{NS}/configmaps/keep")).json();
    let keep_uid = keep_before["metadata"]["uid"].as_str().unwrap().to_string();
    // A scheduler of its own name keeps the default scheduler from touching it meanwhile.
    api.ok(
        "POST",
        &format!("{NS}/pods"),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
               "spec": {"schedulerName": "nobody", "containers": [{"name": "web", "image": "nginx:1.27"}]}}),
    );
    let web_before = api.get(&format!("{NS}/pods/web")).json();
    // A namespace whose content is held by a finalizer stays Terminating after a delete
    // (the namespace controller cannot empty it).
    api.ok(
        "POST",
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}),
    );
    api.ok(
        "POST",
        "/api/v1/namespaces/doomed/secrets",
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    );
    let r = api.send("DELETE", "/api/v1/namespaces/doomed", &[], None, false);
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(
        api.get("/api/v1/namespaces/doomed").json()["status"]["phase"],
        "Terminating"
    );

    let keep = format!("{NS}/configmaps/keep");
    let cms = format!("{NS}/configmaps");
    let mut big =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":""#
            .to_vec();
    big.extend(std::iter::repeat_n(b'x', 3 * 1024 * 1024));
    big.extend(br#""}}"#);
    let deep = "[".repeat(100_000);
    let mut alias_bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        alias_bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let stale = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "keep", "resourceVersion": "1"}, "data": {"a": "2"}});

    let cases = vec![
        // Decoding.
        case("malformed JSON", "POST", &cms, raw(b"{\"apiVersion\": \"v1\", nope"), 400, "BadRequest", "could not be decoded as JSON"),
        case("malformed YAML", "POST", &cms, raw(b"apiVersion: v1\nkind: [ConfigMap\n"), 400, "BadRequest", "error decoding YAML")
            .header("Content-Type: application/yaml"),
        case("JSON array body", "POST", &cms, raw(b"[1, 2]"), 400, "BadRequest", "must be a JSON object"),
        case("JSON string body", "POST", &cms, raw(b"\"a configmap\""), 400, "BadRequest", "must be a JSON object"),
        case("empty body", "POST", &cms, raw(b""), 400, "BadRequest", "could not be decoded as JSON"),
        case("invalid UTF-8", "POST", &cms, raw(b"{\"metadata\":{\"name\":\"\xff\"}}"), 400, "BadRequest", "could not be decoded as JSON"),
        case("JSON nested past the limit", "POST", &cms, raw(deep.as_bytes()), 400, "BadRequest", "recursion limit"),
        case("YAML alias bomb", "POST", &cms, raw(alias_bomb.as_bytes()), 400, "BadRequest", "error decoding YAML")
            .header("Content-Type: application/yaml"),
        case("wrong kind", "POST", &cms, bytes(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}})), 400, "BadRequest", "does not match the expected kind (ConfigMap)"),
        case("wrong apiVersion", "POST", &cms, bytes(json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "v"}})), 400, "BadRequest", "does not match the expected API version (v1)"),
        case("field of the wrong type", "POST", &cms, bytes(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"}, "data": {"a": 1}})), 400, "BadRequest", "cannot unmarshal number into Go struct field ConfigMap.data"),
        case("metadata not an object", "POST", &cms, bytes(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "m"})), 400, "BadRequest", "metadata must be an object"),
        case("body over 3 MiB", "POST", &cms, raw(&big), 413, "RequestEntityTooLarge", "limit is 3145728")
            .exact("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Request entity too large: limit is 3145728\",\"reason\":\"RequestEntityTooLarge\",\"code\":413}\n"),
        // Body against URL.
        case("namespace mismatch on create", "POST", &cms, bytes(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n", "namespace": "kube-system"}})), 400, "BadRequest", "namespace of the provided object does not match"),
        case("name mismatch on PUT", "PUT", &keep, bytes(cm("other")), 400, "BadRequest", "does not match the name on the URL (keep)"),
        case("uid mismatch on PUT", "PUT", &keep, bytes(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep", "uid": "not-the-uid"}})), 409, "Conflict", "Precondition failed: UID in precondition: not-the-uid, UID in object meta: "),
        case("namespace mismatch on PUT", "PUT", &keep, bytes(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep", "namespace": "kube-system"}})), 400, "BadRequest", "namespace of the provided object does not match"),
        case("wrong type on PUT", "PUT", &keep, bytes(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep", "labels": ["a"]}})), 400, "BadRequest", "cannot unmarshal array into Go struct field ConfigMap.metadata.labels"),
        // Query parameters.
        case("unknown query parameter", "GET", format!("{cms}?lables=app"), None, 400, "BadRequest", "unknown query parameter \"lables\""),
        case("bad labelSelector", "GET", format!("{cms}?labelSelector=app%20in%20(web"), None, 400, "BadRequest", "unable to parse requirement"),
        case("unsupported fieldSelector field", "GET", format!("{cms}?fieldSelector=spec.nodeName%3Dn1"), None, 400, "BadRequest", "field label not supported: spec.nodeName"),
        case("bad limit", "GET", format!("{cms}?limit=ten"), None, 400, "BadRequest", "limit"),
        case("bad resourceVersion", "GET", format!("{cms}?resourceVersion=latest"), None, 400, "BadRequest", "resourceVersion"),
        case("resourceVersionMatch without resourceVersion", "GET", format!("{cms}?resourceVersionMatch=NotOlderThan"), None, 422, "Invalid", "resourceVersionMatch is forbidden unless resourceVersion is provided")
            .cause("resourceVersionMatch"),
        case("resourceVersionMatch Exact at 0", "GET", format!("{cms}?resourceVersion=0&resourceVersionMatch=Exact"), None, 422, "Invalid", "forbidden for resourceVersion \"0\"")
            .cause("resourceVersionMatch"),
        case("sendInitialEvents on a list", "GET", format!("{cms}?sendInitialEvents=true"), None, 422, "Invalid", "sendInitialEvents is forbidden for list")
            .cause("sendInitialEvents"),
        case("bad continue token", "GET", format!("{cms}?limit=1&continue=not-a-token"), None, 400, "BadRequest", "continue"),
        case("continue with a resourceVersion", "GET", format!("{cms}?limit=1&continue=x&resourceVersion=5"), None, 400, "BadRequest", "not allowed when using continue"),
        case("bad boolean", "GET", format!("{cms}?watch=maybe"), None, 400, "BadRequest", "not a boolean"),
        case("watch from an invalid resourceVersion", "GET", format!("{cms}?watch=true&resourceVersion=abc"), None, 400, "BadRequest", "resourceVersion"),
        case("deployment selector that does not match its template", "POST", "/apis/apps/v1/namespaces/default/deployments",
            bytes(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mismatch"},
                "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
                    "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})),
            422, "Invalid", "`selector` does not match template `labels`")
            .cause("spec.template.metadata.labels"),
        case("selector with an unknown operator", "POST", "/apis/apps/v1/namespaces/default/replicasets",
            bytes(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "badop"},
                "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["web"]}]},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})),
            422, "Invalid", "not a valid selector operator")
            .cause("spec.selector.matchExpressions[0].operator"),
        case("rolling update that may neither surge nor go unavailable", "POST", "/apis/apps/v1/namespaces/default/deployments",
            bytes(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "stuck"},
                "spec": {"selector": {"matchLabels": {"app": "s"}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
                    "template": {"metadata": {"labels": {"app": "s"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})),
            422, "Invalid", "may not be 0 when `maxSurge` is 0")
            .cause("spec.strategy.rollingUpdate.maxUnavailable"),
        case("replication controller selector that does not match its template", "POST", "/api/v1/namespaces/default/replicationcontrollers",
            bytes(json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rcmismatch"},
                "spec": {"selector": {"app": "web"},
                    "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})),
            422, "Invalid", "`selector` does not match template `labels`")
            .cause("spec.template.metadata.labels"),
        case("cron schedule that does not parse", "POST", "/apis/batch/v1/namespaces/default/cronjobs",
            bytes(json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "badcron"},
                "spec": {"schedule": "every tuesday", "jobTemplate": {"spec": {"template": {"spec": {
                    "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}})),
            422, "Invalid", "spec.schedule: Invalid value: \"every tuesday\"")
            .cause("spec.schedule"),
        case("cron time zone that does not exist", "POST", "/apis/batch/v1/namespaces/default/cronjobs",
            bytes(json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "badzone"},
                "spec": {"schedule": "*/5 * * * *", "timeZone": "Mars/Olympus_Mons", "jobTemplate": {"spec": {"template": {"spec": {
                    "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}})),
            422, "Invalid", "unknown time zone Mars/Olympus_Mons")
            .cause("spec.timeZone"),
        case("budget selector In without values", "POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            bytes(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "novalues"},
                "spec": {"minAvailable": 1, "selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}})),
            422, "Invalid", "must be specified when `operator` is 'In' or 'NotIn'")
            .cause("spec.selector.matchExpressions[0].values"),
        case("dryRun invalid", "POST", format!("{cms}?dryRun=Some"), bytes(cm("dry")), 422, "Invalid", "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value")
            .cause("dryRun"),
        case("fieldValidation invalid", "PATCH", format!("{keep}?fieldValidation=Loose"), raw(b"{}"), 422, "Invalid", "PatchOptions.meta.k8s.io")
            .header("Content-Type: application/merge-patch+json")
            .cause("fieldValidation"),
        case("propagationPolicy invalid", "DELETE", format!("{keep}?propagationPolicy=Cascade"), None, 422, "Invalid", "supported values: \"Foreground\", \"Background\", \"Orphan\"")
            .cause("propagationPolicy"),
        case("propagationPolicy invalid in DeleteOptions", "DELETE", &keep, bytes(json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Cascade"})), 422, "Invalid", "DeleteOptions.meta.k8s.io")
            .cause("propagationPolicy"),
        // Validation.
        case("invalid name", "POST", &cms, bytes(cm("Bad_Name")), 422, "Invalid", "a lowercase RFC 1123 subdomain")
            .cause("metadata.name"),
        case("pod without containers", "POST", format!("{NS}/pods"), bytes(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty"}, "spec": {}})), 422, "Invalid", "spec.containers: Required value")
            .cause("spec.containers"),
        case("invalid label value", "POST", &cms, bytes(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "l", "labels": {"app": "not valid!"}}})), 422, "Invalid", "a valid label must be an empty string")
            .cause("metadata.labels"),
        case("create with resourceVersion", "POST", &cms, bytes(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rv", "resourceVersion": "5"}})), 400, "BadRequest", "resourceVersion should not be set on objects to be created"),
        // Concurrency and existence.
        case("stale resourceVersion on PUT", "PUT", &keep, bytes(stale), 409, "Conflict", "the object has been modified"),
        case("create a duplicate", "POST", &cms, bytes(cm("keep")), 409, "AlreadyExists", "already exists")
            .exact("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"configmaps \\\"keep\\\" already exists\",\"reason\":\"AlreadyExists\",\"details\":{\"name\":\"keep\",\"kind\":\"configmaps\"},\"code\":409}\n"),
        case("get a missing object", "GET", format!("{cms}/nope"), None, 404, "NotFound", "not found")
            .exact("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"configmaps \\\"nope\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"nope\",\"kind\":\"configmaps\"},\"code\":404}\n"),
        case("delete with a UID precondition that does not match", "DELETE", &keep, bytes(json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "0000"}})), 409, "Conflict", "the UID in the precondition (0000) does not match the UID in record"),
        case("create in a missing namespace", "POST", "/api/v1/namespaces/nope/configmaps", bytes(cm("orphan")), 404, "NotFound", "namespaces \"nope\" not found"),
        case("create in a terminating namespace", "POST", "/api/v1/namespaces/doomed/configmaps", bytes(cm("late")), 403, "Forbidden", "configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated")
            .cause("metadata.namespace"),
        // Routing and negotiation.
        case("unknown resource", "GET", format!("{NS}/widgets"), None, 404, "NotFound", "could not find the requested resource")
            .exact("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"the server could not find the requested resource\",\"reason\":\"NotFound\",\"details\":{},\"code\":404}\n"),
        case("unknown group version", "GET", "/apis/widgets.example.com/v1/widgets", None, 404, "NotFound", "could not find the requested resource"),
        case("unknown version of a known group", "GET", "/apis/apps/v1beta9/deployments", None, 404, "NotFound", "could not find the requested resource"),
        case("name that is a path segment", "GET", format!("{cms}/.."), None, 400, "BadRequest", "\"..\""),
        case("PUT on a collection", "PUT", &cms, bytes(cm("x")), 405, "MethodNotAllowed", "does not allow this method"),
        case("POST a namespaced resource outside a namespace", "POST", "/api/v1/configmaps", bytes(cm("x")), 405, "MethodNotAllowed", "namespaced"),
        case("DELETE on a subresource", "DELETE", format!("{NS}/pods/web/status"), None, 405, "MethodNotAllowed", "pods/status"),
        case("PUT on a create-only subresource", "PUT", format!("{NS}/pods/web/binding"), bytes(json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"}, "target": {"name": "n1"}})), 405, "MethodNotAllowed", "pods/binding"),
        case("log of a missing pod", "GET", format!("{NS}/pods/nope/log"), None, 404, "NotFound", "pods \"nope\" not found"),
        case("exec into a pod with no node", "POST", format!("{NS}/pods/web/exec?command=ls"), None, 400, "BadRequest", "pod web does not have a host assigned"),
        case("unsupported Content-Type", "POST", &cms, raw(b"name=x"), 415, "UnsupportedMediaType", "unknown format")
            .header("Content-Type: text/plain"),
        case("protobuf body without the k8s magic", "POST", &cms, raw(b"\x0a\x02v1garbage"), 400, "BadRequest", "could not be decoded as protobuf")
            .header("Content-Type: application/vnd.kubernetes.protobuf"),
        case("truncated protobuf envelope", "POST", &cms, raw(b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Conf"), 400, "BadRequest", "could not be decoded as protobuf")
            .header("Content-Type: application/vnd.kubernetes.protobuf"),
        case("protobuf envelope of an unknown kind", "POST", &cms, raw(b"k8s\x00\x0a\x0d\x0a\x02v1\x12\x07Nothing\x12\x00"), 400, "BadRequest", "no protobuf schema")
            .header("Content-Type: application/vnd.kubernetes.protobuf"),
        case("PATCH with a non-patch Content-Type", "PATCH", &keep, raw(b"{}"), 415, "UnsupportedMediaType", "application/json"),
        case("unsupported Accept", "GET", &keep, None, 406, "NotAcceptable", "only the following media types are accepted")
            .header("Accept: text/html"),
        case("anonymous request", "GET", &cms, None, 401, "Unauthorized", "Unauthorized")
            .anonymous()
            .exact("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}\n"),
        // Patches.
        case("JSON patch that is not a list", "PATCH", &keep, raw(br#"{"op":"add","path":"/data/b","value":"2"}"#), 400, "BadRequest", "must be a list of operation objects")
            .header("Content-Type: application/json-patch+json"),
        case("JSON patch with an unknown op", "PATCH", &keep, raw(br#"[{"op":"frob","path":"/data/a"}]"#), 422, "Invalid", "frob")
            .header("Content-Type: application/json-patch+json"),
        case("JSON patch whose test fails", "PATCH", &keep, raw(br#"[{"op":"test","path":"/data/a","value":"9"},{"op":"replace","path":"/data/a","value":"2"}]"#), 422, "Invalid", "/data/a")
            .header("Content-Type: application/json-patch+json"),
        case("JSON patch removing a missing path", "PATCH", &keep, raw(br#"[{"op":"remove","path":"/data/zzz"}]"#), 422, "Invalid", "/data/zzz")
            .header("Content-Type: application/json-patch+json"),
        case("merge patch that is not an object", "PATCH", &keep, raw(b"[\"data\"]"), 400, "BadRequest", "must be a JSON object")
            .header("Content-Type: application/merge-patch+json"),
        case("merge patch giving a field the wrong type", "PATCH", &keep, raw(br#"{"data":"a=1"}"#), 422, "Invalid", "cannot unmarshal string into Go struct field ConfigMap.data")
            .header("Content-Type: application/merge-patch+json")
            .cause("patch"),
        case("strategic merge patch item without its merge key", "PATCH", format!("{NS}/pods/web"), raw(br#"{"spec":{"containers":[{"image":"nginx:1.28"}]}}"#), 400, "BadRequest", "missing its merge key \"name\"")
            .header("Content-Type: application/strategic-merge-patch+json"),
        case("strategic merge patch with an unknown directive", "PATCH", format!("{NS}/pods/web"), raw(br#"{"spec":{"$patch":"explode"}}"#), 400, "BadRequest", "explode")
            .header("Content-Type: application/strategic-merge-patch+json"),
        case("strategic merge patch emptying required fields", "PATCH", format!("{NS}/pods/web"), raw(br#"{"spec":{"containers":[{"name":"web","image":null}]}}"#), 422, "Invalid", "spec.containers[0].image: Required value")
            .header("Content-Type: application/strategic-merge-patch+json")
            .cause("spec.containers[0].image"),
    ];
    assert!(cases.len() >= 30, "{} cases", cases.len());

    let mut failures = Vec::new();
    for c in &cases {
        let r = api.send(
            c.method,
            &c.path,
            &c.headers,
            c.body.as_deref(),
            c.anonymous,
        );
        if let Err(e) = check(c, &r) {
            failures.push(format!("{} ({} {}): {e}", c.name, c.method, c.path));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad requests were answered wrongly:\n{}\nserver log:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        s.log_text()
    );

    // Health stays public while resources need credentials.
    let r = api.send("GET", "/readyz", &[], None, true);
    assert_eq!((r.code, r.body.as_str()), (200, "ok"));

    // No partial writes: the targets of the failed writes are unchanged, and no rejected
    // create left anything behind.
    assert_eq!(
        api.get(&keep).json(),
        keep_before,
        "a rejected write changed keep"
    );
    assert_eq!(keep_before["metadata"]["uid"], keep_uid.as_str());
    assert_eq!(
        api.get(&format!("{NS}/pods/web")).json(),
        web_before,
        "a rejected patch changed the pod"
    );
    let names = |path: &str| -> Vec<String> {
        let list = api.get(path).json();
        list["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {list}"))
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    // (kube-root-ca.crt is the root-CA publisher's, in every namespace.)
    assert_eq!(
        names("/api/v1/configmaps?fieldSelector=metadata.name%21%3Dkube-root-ca.crt"),
        ["keep"]
    );
    assert_eq!(names("/api/v1/pods"), ["web"]);
    assert_eq!(api.get("/api/v1/namespaces/nope").code, 404);

    // The server survived all of it.
    assert_eq!(api.get("/readyz").body, "ok");
}

#[test]
fn workload_selectors_are_immutable_and_rc_selectors_default() {
    let s = Server::start();
    s.ok(&["create", "deployment", "web", "--image=nginx"]);
    let err = s.fails(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}"#,
    ]);
    assert!(
        err.contains("spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"other\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"),
        "{err}"
    );
    // A ReplicationController without a selector takes its template's labels.
    let rc = s.manifest(
        "rc.yaml",
        "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: legacy}\nspec:\n  replicas: 0\n  template:\n    metadata: {labels: {app: legacy}}\n    spec: {containers: [{name: c, image: nginx}]}\n",
    );
    s.ok(&["create", "-f", &rc]);
    let got = s.get_json(&["rc", "legacy"]);
    assert_eq!(got["spec"]["selector"], json!({"app": "legacy"}));
    assert_eq!(got["metadata"]["labels"], json!({"app": "legacy"}));
}
