//! Property tests of request handling: decoding, negotiation and routing never panic on
//! arbitrary input, and whole requests through `ApiServer::handle_parts` (memory store, no
//! network) are never answered with a 5xx; every error is a `Status` and leaves the store
//! as it was. Also the bad
//! resourceVersions a real server only meets after compaction.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use skiff_api::status::Status;
use skiff_apiserver::{negotiate, rest, route, ApiServer, Resp, UserInfo};
use skiff_store::memory::MemoryStore;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn admin() -> Option<UserInfo> {
    Some(UserInfo {
        name: "kubernetes-admin".into(),
        groups: vec!["system:masters".into()],
    })
}

/// A bootstrapped server over a memory store with a few objects to aim at.
async fn server() -> Arc<ApiServer> {
    let srv = ApiServer::new(Arc::new(MemoryStore::new()), "127.0.0.1:6443".into());
    srv.bootstrap().await.unwrap();
    let fixtures = [
        (
            "",
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "keep", "labels": {"app": "web"}}, "data": {"a": "1"}}),
        ),
        (
            "",
            "pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}),
        ),
        (
            "apps",
            "deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}),
        ),
    ];
    for (group, plural, obj) in fixtures {
        rest::create_internal(&srv, group, plural, Some("default"), obj)
            .await
            .unwrap();
    }
    srv
}

async fn send(
    srv: &Arc<ApiServer>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    user: Option<UserInfo>,
) -> Option<Resp> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    // Inputs that are not even a valid HTTP request never reach the server.
    let (parts, ()) = b.body(()).ok()?.into_parts();
    Some(
        srv.handle_parts(parts, async move { Ok::<_, Status>(body) }, user)
            .await,
    )
}

async fn body_json(resp: Resp) -> Value {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {bytes:?}"))
}

const METHODS: &[&str] = &[
    "GET", "GET", "POST", "POST", "PUT", "PATCH", "PATCH", "DELETE", "HEAD", "OPTIONS",
];

const PREFIXES: &[&str] = &[
    "/api/v1",
    "/api/v1/namespaces/default",
    "/api/v1/namespaces/kube-system",
    "/api/v1/namespaces/nope",
    "/apis/apps/v1/namespaces/default",
    "/apis/apps/v1",
    "/apis/batch/v1/namespaces/default",
    "/apis/rbac.authorization.k8s.io/v1",
    "/apis/authorization.k8s.io/v1",
    "/apis/policy/v1/namespaces/default",
    "/api",
    "/apis",
    "/apis/apps",
    "/apis/nope.example.com/v1",
    "/version",
    "/openapi/v2",
    "/openapi/v3",
    "/openapi/v3/apis/apps/v1",
    "/readyz",
    "/livez",
    "/healthz",
    "/metrics",
    "",
];

const SEGMENTS: &[&str] = &[
    "namespaces",
    "default",
    "nope",
    "configmaps",
    "secrets",
    "pods",
    "services",
    "deployments",
    "replicasets",
    "jobs",
    "nodes",
    "events",
    "selfsubjectaccessreviews",
    "keep",
    "web",
    "status",
    "scale",
    "log",
    "exec",
    "binding",
    "eviction",
    "finalize",
    "watch",
    "..",
    ".",
    "%2F",
    "Bad_Name",
    "",
];

const PARAMS: &[&str] = &[
    "labelSelector",
    "fieldSelector",
    "watch",
    "resourceVersion",
    "resourceVersionMatch",
    "limit",
    "continue",
    "timeoutSeconds",
    "allowWatchBookmarks",
    "sendInitialEvents",
    "dryRun",
    "fieldManager",
    "fieldValidation",
    "propagationPolicy",
    "gracePeriodSeconds",
    "orphanDependents",
    "includeObject",
    "pretty",
    "verbose",
    "bogus",
];

const VALUES: &[&str] = &[
    "",
    "true",
    "false",
    "0",
    "1",
    "2",
    "999999",
    "-1",
    "All",
    "Strict",
    "Exact",
    "NotOlderThan",
    "Foreground",
    "Orphan",
    "Object",
    "app=web",
    "app in (web",
    "!app",
    "metadata.name=keep",
    "spec.nodeName=n1",
    "status.phase!=Running",
    "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MSwic3RhcnQiOiJ4In0=",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json; charset=utf-8",
    "text/plain",
    "",
    ";;",
];

const ACCEPTS: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json",
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
    "application/vnd.kubernetes.protobuf, */*",
    "application/apply-patch+yaml",
    "text/html",
    "*/*",
    "",
];

const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "labels",
    "annotations",
    "finalizers",
    "deletionTimestamp",
    "spec",
    "status",
    "data",
    "containers",
    "image",
    "replicas",
    "selector",
    "matchLabels",
    "template",
    "nodeName",
    "target",
    "op",
    "path",
    "value",
    "from",
    "preconditions",
    "propagationPolicy",
    "dryRun",
    "$patch",
    "$setElementOrder/containers",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(VALUES).prop_map(Value::from),
        prop::sample::select(SEGMENTS).prop_map(Value::from),
        "[ -~]{0,8}".prop_map(Value::from),
        "/[a-z/]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(KEYS).prop_map(String::from), inner),
                0..6
            )
            .prop_map(|kvs| Value::Object(kvs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A body close enough to a manifest to get past decoding into validation and storage.
fn manifest() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(
            &[
                ("v1", "ConfigMap"),
                ("v1", "Pod"),
                ("v1", "Namespace"),
                ("apps/v1", "Deployment"),
                ("autoscaling/v1", "Scale"),
                ("v1", "Binding"),
                ("v1", "DeleteOptions"),
            ][..],
        ),
        prop::sample::select(&["keep", "web", "new", "Bad_Name", "", "default"][..]),
        json(),
        json(),
        json(),
    )
        .prop_map(|((api_version, kind), name, metadata, spec, extra)| {
            let mut meta = match metadata {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            meta.insert("name".into(), name.into());
            json!({"apiVersion": api_version, "kind": kind, "metadata": meta,
                   "spec": spec, "data": extra})
        })
}

fn body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => manifest().prop_map(|v| Bytes::from(v.to_string())),
        2 => json_patch().prop_map(|v| Bytes::from(v.to_string())),
        2 => json().prop_map(|v| Bytes::from(v.to_string())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
        1 => "[ -~\n]{0,64}".prop_map(Bytes::from),
        1 => Just(Bytes::new()),
    ]
}

const COLLECTIONS: &[&str] = &[
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/pods",
    "/api/v1/namespaces/default/secrets",
    "/api/v1/namespaces/default/services",
    "/api/v1/namespaces/default/events",
    "/api/v1/namespaces/nope/configmaps",
    "/api/v1/namespaces",
    "/api/v1/nodes",
    "/api/v1/configmaps",
    "/api/v1/pods",
    "/apis/apps/v1/namespaces/default/deployments",
    "/apis/batch/v1/namespaces/default/jobs",
    "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
    "/apis/coordination.k8s.io/v1/namespaces/default/leases",
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    "/apis/certificates.k8s.io/v1/certificatesigningrequests",
];

const NAMES: &[&str] = &[
    "keep",
    "web",
    "default",
    "kube-system",
    "nope",
    "Bad_Name",
    "..",
];

const SUBRESOURCES: &[&str] = &[
    "status", "scale", "log", "exec", "binding", "eviction", "finalize", "approval",
];

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        // Resource requests: collection, object, subresource.
        8 => (
            prop::sample::select(COLLECTIONS),
            prop::option::of(prop::sample::select(NAMES)),
            prop::option::weighted(0.3, prop::sample::select(SUBRESOURCES)),
        )
            .prop_map(|(c, name, sub)| match (name, sub) {
                (Some(n), Some(s)) => format!("{c}/{n}/{s}"),
                (Some(n), None) => format!("{c}/{n}"),
                (None, _) => c.to_string(),
            }),
        // Anything else the router might be asked.
        2 => (
            prop::sample::select(PREFIXES),
            prop::collection::vec(prop::sample::select(SEGMENTS), 0..5),
        )
            .prop_map(|(p, segs)| {
                let mut s = p.to_string();
                for seg in segs {
                    s.push('/');
                    s.push_str(seg);
                }
                if s.is_empty() {
                    s.push('/');
                }
                s
            }),
        1 => "/[ -~]{0,40}",
    ]
}

/// JSON patch operations, valid and not.
fn json_patch() -> impl Strategy<Value = Value> {
    let op = (
        prop::sample::select(&["add", "remove", "replace", "move", "copy", "test", "frob"][..]),
        prop::sample::select(
            &[
                "/data/a",
                "/data",
                "/metadata/labels/x",
                "/metadata/name",
                "/metadata/resourceVersion",
                "/metadata",
                "/spec/replicas",
                "/spec/containers/0/image",
                "/spec/containers/-",
                "/status",
                "/kind",
                "",
                "/",
                "nope",
            ][..],
        ),
        json(),
    )
        .prop_map(
            |(op, path, value)| json!({"op": op, "path": path, "from": path, "value": value}),
        );
    prop::collection::vec(op, 0..4).prop_map(Value::Array)
}

fn query() -> impl Strategy<Value = String> {
    let pairs = prop::collection::vec(
        (
            prop::sample::select(PARAMS),
            prop_oneof![
                6 => prop::sample::select(VALUES).prop_map(String::from),
                1 => any::<String>(),
            ],
        ),
        1..4,
    )
    .prop_map(|kvs| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in kvs {
            q.append_pair(k, &v);
        }
        q.finish()
    });
    prop_oneof![1 => Just(String::new()), 1 => pairs]
}

#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    uri: String,
    content_type: Option<&'static str>,
    accept: Option<&'static str>,
    body: Bytes,
    anonymous: bool,
}

fn request() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(METHODS),
        path(),
        query(),
        prop::option::of(prop::sample::select(CONTENT_TYPES)),
        prop::option::of(prop::sample::select(ACCEPTS)),
        body(),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(method, path, query, content_type, accept, body, anonymous)| Req {
                method,
                uri: if query.is_empty() {
                    path
                } else {
                    format!("{path}?{query}")
                },
                content_type,
                accept,
                body,
                anonymous,
            },
        )
}

/// Checks one response: never a 5xx (except upstream's two deliberate ones), and every
/// error a Status whose code is the HTTP code.
async fn check(req: &Req, resp: Resp) -> Result<(), TestCaseError> {
    let code = resp.status().as_u16();
    if code < 400 {
        // Success bodies (watches among them) are not read: they may stream forever.
        return Ok(());
    }
    let status = body_json(resp).await;
    prop_assert_eq!(&status["kind"], "Status", "{:?}: {}", req, status);
    prop_assert_eq!(&status["code"], code, "{:?}: {}", req, status);
    prop_assert!(
        status["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{:?}: {}",
        req,
        status
    );
    if code >= 500 {
        // A read at a revision the store has not reached is upstream's 504, which
        // client-go relies on; a connect subresource of a scheduled pod needs the node
        // agent. Nothing else may be a 5xx.
        let too_large =
            code == 504 && status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge";
        let connect = code == 503
            && ["/log", "/exec", "/attach", "/portforward", "/proxy"]
                .iter()
                .any(|s| req.uri.contains(s));
        prop_assert!(too_large || connect, "5xx for {:?}: {}", req, status);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256), text in "[ -~\n\t]{0,128}") {
        for b in [Bytes::from(bytes), Bytes::from(text)] {
            let _ = negotiate::decode(&b, false);
            let _ = negotiate::decode(&b, true);
        }
    }

    #[test]
    fn negotiation_never_panics(accept in any::<String>(), picked in prop::sample::select(ACCEPTS), content_type in any::<String>()) {
        let _ = negotiate::output(Some(&accept));
        let _ = negotiate::output(Some(picked));
        let _ = negotiate::parse_accept(&accept);
        let _ = negotiate::body_format(Some(&content_type));
        if let Ok(out) = negotiate::output(Some(&accept)) {
            let _ = negotiate::encode(&json!({"kind": "ConfigMap", "data": {"a": accept}}), out);
        }
    }

    #[test]
    fn routing_never_panics(raw in any::<String>(), p in path(), raw_query in any::<String>(), q in query()) {
        let _ = route::parse(&raw);
        let _ = route::parse(&p);
        let _ = route::parse_query(Some(&raw_query));
        let _ = route::parse_query(Some(&q));
        let _ = route::parse_health_query(Some(&raw_query));
    }

    #[test]
    fn requests_never_get_a_5xx(reqs in prop::collection::vec(request(), 1..4)) {
        runtime().block_on(async {
            let srv = server().await;
            for req in &reqs {
                let mut headers = Vec::new();
                if let Some(ct) = req.content_type {
                    headers.push(("content-type", ct));
                }
                if let Some(a) = req.accept {
                    headers.push(("accept", a));
                }
                let user = if req.anonymous { None } else { admin() };
                let before = srv.store.current_revision().await.unwrap();
                let Some(resp) = send(&srv, req.method, &req.uri, &headers, req.body.clone(), user).await else {
                    continue;
                };
                let failed = resp.status().as_u16() >= 400;
                check(req, resp).await?;
                // No partial writes: a request that failed changed nothing.
                if failed {
                    let after = srv.store.current_revision().await.unwrap();
                    prop_assert_eq!(before, after, "{:?} failed but wrote", req);
                }
            }
            Ok::<_, TestCaseError>(())
        })?;
    }
}

/// The resourceVersions a real server only sees after compaction: a watch from before the
/// compacted revision gets an ERROR event with a 410 Expired Status (the response itself is
/// a 200, as upstream's), and so does a continue token that old (as a 410 response).
#[test]
fn compacted_resource_versions_are_expired() {
    runtime().block_on(async {
        let srv = server().await;
        for i in 0..3 {
            rest::create_internal(
                &srv,
                "",
                "configmaps",
                Some("default"),
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}")}}),
            )
            .await
            .unwrap();
        }
        let cms = "/api/v1/namespaces/default/configmaps";
        let page = send(&srv, "GET", &format!("{cms}?limit=1"), &[], Bytes::new(), admin())
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let page = body_json(page).await;
        let token = page["metadata"]["continue"].as_str().unwrap().to_string();
        // Move on and forget the history the token and an old watch point into.
        rest::create_internal(
            &srv,
            "",
            "configmaps",
            Some("default"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}}),
        )
        .await
        .unwrap();
        let current = srv.store.current_revision().await.unwrap();
        srv.store.compact(current).await.unwrap();

        let watch = send(
            &srv,
            "GET",
            &format!("{cms}?watch=true&resourceVersion=2"),
            &[],
            Bytes::new(),
            admin(),
        )
        .await
        .unwrap();
        assert_eq!(watch.status(), 200);
        let mut body = watch.into_body();
        let frame = body.frame().await.unwrap().unwrap();
        let line: Value = serde_json::from_slice(frame.data_ref().unwrap()).unwrap();
        assert_eq!(line["type"], "ERROR", "{line}");
        assert_eq!(line["object"]["kind"], "Status");
        assert_eq!(line["object"]["reason"], "Expired");
        assert_eq!(line["object"]["code"], 410);
        assert!(
            line["object"]["message"]
                .as_str()
                .unwrap()
                .starts_with("too old resource version: 2"),
            "{line}"
        );

        let next = send(
            &srv,
            "GET",
            &format!("{cms}?limit=1&continue={token}"),
            &[],
            Bytes::new(),
            admin(),
        )
        .await
        .unwrap();
        assert_eq!(next.status(), 410);
        let status = body_json(next).await;
        assert_eq!(status["reason"], "Expired");
        assert!(status["message"]
            .as_str()
            .unwrap()
            .contains("continue parameter is too old"));
    });
}
