//! `skiff-apiserver`: serves the Kubernetes API over HTTP/1.1 and HTTP/2 (TLS) from a
//! [`skiff_store::Store`].
//!
//! Owns routing, the one generic REST handler that serves every registry row, watch
//! streaming, discovery, content negotiation (JSON, YAML, Table), health endpoints,
//! request metrics and graceful shutdown. Resource semantics (defaults, validation,
//! printing, selectors) come from `skiff-api`; certificates and TLS configs from
//! `skiff-pki`.
//!
//! Must not: contain per-resource HTTP handlers (add a registry row or a strategy instead),
//! talk to anything but the store, or know which store backend it has.

pub mod admission;
pub mod crd;
pub mod discovery;
pub mod eviction;
pub mod fieldvalidation;
pub mod managed;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod rest;
pub mod route;
pub mod serve;
pub mod watch;
pub mod watchcache;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::json;
use skiff_api::status::Status;
use skiff_store::Store;
use tokio::sync::watch as signal;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;
pub type Resp = Response<Body>;

/// Upstream's request body limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// The Kubernetes version served.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";
pub const KUBE_GIT_VERSION: &str = "v1.33.0+skiff";

/// Who is making a request, from the client certificate (or later, a token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

pub struct ApiServer {
    pub store: Arc<dyn Store>,
    /// Set once bootstrap (default namespaces, ...) is done.
    bootstrapped: AtomicBool,
    shutting_down: AtomicBool,
    /// Flips to true when watches must end (shutdown drain begins).
    stop_watches: signal::Sender<bool>,
    pub metrics: metrics::Metrics,
    /// The address clients reach this server at (for `/api` serverAddressByClientCIDRs).
    pub advertise: String,
    /// Shared decoded watch events per built-in resource.
    pub watch_cache: watchcache::WatchCaches,
}

impl ApiServer {
    pub fn new(store: Arc<dyn Store>, advertise: String) -> Arc<Self> {
        let (stop_watches, _) = signal::channel(false);
        Arc::new(ApiServer {
            store,
            bootstrapped: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            stop_watches,
            metrics: metrics::Metrics::default(),
            advertise,
            watch_cache: watchcache::WatchCaches::default(),
        })
    }

    /// Creates the objects every cluster has (default namespaces), idempotently.
    /// Also loads the stored CustomResourceDefinitions and starts following them.
    pub async fn bootstrap(self: &Arc<Self>) -> Result<(), Status> {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            rest::create_internal(self, "", "namespaces", None, body).await?;
        }
        for (name, value, description) in admission::SYSTEM_CLASSES {
            let body = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name}, "value": value, "description": description,
                "preemptionPolicy": "PreemptLowerPriority"});
            rest::create_internal(self, "scheduling.k8s.io", "priorityclasses", None, body).await?;
        }
        crd::start(self.clone()).await?;
        self.bootstrapped.store(true, Ordering::Release);
        Ok(())
    }

    /// Marks the server as shutting down: `/readyz` fails from now on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Ends every open watch cleanly (clients see the stream close).
    pub fn end_watches(&self) {
        let _ = self.stop_watches.send(true);
    }

    pub(crate) fn watch_stop_signal(&self) -> signal::Receiver<bool> {
        self.stop_watches.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Serves one request. `user` is the authenticated identity, if any.
    pub async fn handle(self: &Arc<Self>, req: Request<Incoming>, user: Option<UserInfo>) -> Resp {
        let (parts, body) = req.into_parts();
        let body = async move {
            match Limited::new(body, MAX_BODY).collect().await {
                Ok(b) => Ok(b.to_bytes()),
                Err(e)
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some() =>
                {
                    Err(Status::too_large())
                }
                Err(e) => Err(Status::bad_request(format!("reading request body: {e}"))),
            }
        };
        self.handle_parts(parts, body, user).await
    }

    pub async fn handle_parts(
        self: &Arc<Self>,
        parts: http::request::Parts,
        body: impl std::future::Future<Output = Result<Bytes, Status>>,
        user: Option<UserInfo>,
    ) -> Resp {
        let start = Instant::now();
        let method = parts.method.clone();
        let path = parts.uri.path().to_string();
        // Take the whole body (at most MAX_BODY) before answering, even when the answer is
        // an early error: an HTTP/2 response that arrives while the client is still sending
        // resets the stream, and clients such as curl then report a framing error instead
        // of the Status.
        let body = body.await;
        let (resp, verb, resource) = self.dispatch(parts, std::future::ready(body), user).await;
        self.metrics.observe(
            &verb,
            method.as_str(),
            &resource,
            resp.status().as_u16(),
            start.elapsed(),
        );
        tracing::debug!(%method, %path, code = resp.status().as_u16(), "request");
        resp
    }

    async fn dispatch(
        self: &Arc<Self>,
        parts: http::request::Parts,
        body: impl std::future::Future<Output = Result<Bytes, Status>>,
        user: Option<UserInfo>,
    ) -> (Resp, String, metrics::ResourceLabels) {
        let none = metrics::ResourceLabels::default();
        let route = match route::parse(parts.uri.path()) {
            Ok(r) => r,
            Err(s) => return (status_response(&s), verb_for(&parts.method, false), none),
        };
        let public = matches!(route, route::Route::Version | route::Route::Health(_));
        if user.is_none() && !public {
            return (
                status_response(&Status::unauthorized()),
                verb_for(&parts.method, false),
                none,
            );
        }
        // Request options are checked strictly only where they mean something: resource
        // requests. Discovery and OpenAPI take cache-busting parameters such as `hash`.
        let query = if matches!(route, route::Route::Resource(_)) {
            route::parse_query(parts.uri.query())
        } else {
            Ok(route::parse_health_query(parts.uri.query()))
        };
        let query = match query {
            Ok(q) => q,
            Err(s) => return (status_response(&s), verb_for(&parts.method, false), none),
        };
        match route {
            route::Route::Version => (version_response(), "get".into(), none),
            route::Route::Health(which) => (self.health(which, &query), "get".into(), none),
            route::Route::Metrics => (
                text_response(StatusCode::OK, self.metrics.render()),
                "get".into(),
                none,
            ),
            route::Route::OpenApiV2 => (openapi::v2_response(&parts.headers), "get".into(), none),
            route::Route::OpenApiV3Index
            | route::Route::OpenApiV3 { .. }
            | route::Route::CoreVersions
            | route::Route::GroupList
            | route::Route::Group(_)
            | route::Route::ResourceList { .. } => {
                if parts.method != Method::GET {
                    return (
                        status_response(&Status::method_not_allowed(format!(
                            "the server does not allow this method on the requested resource ({})",
                            parts.method
                        ))),
                        verb_for(&parts.method, false),
                        none,
                    );
                }
                (
                    discovery::serve(self, &route, &parts.headers, parts.uri.query()),
                    "get".into(),
                    none,
                )
            }
            route::Route::Resource(rr) => {
                let labels = metrics::ResourceLabels {
                    group: rr.res.group.to_string(),
                    version: rr.res.version.to_string(),
                    resource: rr.res.plural.to_string(),
                    subresource: rr.subresource.clone().unwrap_or_default(),
                    scope: if rr.name.is_some() {
                        "resource"
                    } else if rr.namespace.is_some() {
                        "namespace"
                    } else {
                        "cluster"
                    }
                    .into(),
                };
                let watching = query.watch || rr.legacy_watch;
                let verb = if rr.name.is_none() && parts.method == Method::GET {
                    if watching { "watch" } else { "list" }.to_string()
                } else {
                    verb_for(&parts.method, rr.name.is_none())
                };
                let resp = rest::serve(self, rr, query, parts, body).await;
                (resp, verb, labels)
            }
        }
    }

    fn health(&self, which: &str, query: &route::Query) -> Resp {
        let mut checks = vec![("ping", true)];
        if which != "livez" {
            checks.push(("bootstrap", self.bootstrapped.load(Ordering::Acquire)));
        }
        if which == "readyz" {
            checks.push(("shutdown", !self.is_shutting_down()));
        }
        let ok = checks.iter().all(|(_, ok)| *ok);
        let code = if ok {
            StatusCode::OK
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        if query.verbose || !ok {
            let mut out = String::new();
            for (name, ok) in &checks {
                out.push_str(&format!(
                    "[{}]{name} {}\n",
                    if *ok { "+" } else { "-" },
                    if *ok { "ok" } else { "failed: reason withheld" }
                ));
            }
            out.push_str(&format!(
                "{which} check {}\n",
                if ok { "passed" } else { "failed" }
            ));
            text_response(code, out)
        } else {
            text_response(code, "ok".into())
        }
    }
}

fn verb_for(method: &Method, collection: bool) -> String {
    match *method {
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
    .into()
}

/// `t` as Kubernetes writes timestamps: RFC 3339, UTC, whole seconds.
pub(crate) fn timestamp(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("zero nanoseconds is valid")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatting a UTC time")
}

/// The current time as a Kubernetes timestamp.
pub(crate) fn now_timestamp() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub fn json_response(code: StatusCode, body: Vec<u8>) -> Resp {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .unwrap()
}

pub fn text_response(code: StatusCode, body: String) -> Resp {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .body(full(body))
        .unwrap()
}

pub fn status_response(s: &Status) -> Resp {
    let code = StatusCode::from_u16(s.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, s.to_json())
}

fn version_response() -> Resp {
    let body = json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": KUBE_GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rustc",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    });
    json_response(StatusCode::OK, serde_json::to_vec_pretty(&body).unwrap())
}

/// How long shutdown keeps serving after `/readyz` starts failing, and how long it then
/// waits for in-flight requests.
#[derive(Clone, Copy, Debug)]
pub struct ShutdownTimings {
    pub delay: Duration,
    pub timeout: Duration,
}
