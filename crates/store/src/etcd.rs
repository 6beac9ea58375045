//! The etcd v3 backend. See the crate docs for its guarantees.
//!
//! Every operation maps one-to-one onto etcd v3, so revisions *are* etcd's revisions:
//!
//! * `get`/`list` are linearizable ranges (`list` pages with `limit` and a start key just
//!   after `start_after`, and reads at `revision`);
//! * `create` is a txn comparing `create_revision(key) == 0`; `update`/`delete` compare
//!   `create_revision(key) > 0` (the key is live) and, with an expectation,
//!   `mod_revision(key) == expected`; the else branch reads the key so a failure can be
//!   reported as `NotFound` or `Conflict` with the actual revision, without a second round
//!   trip and without a race;
//! * `watch` is an etcd prefix watch with `prev_kv` and `start_revision`;
//! * `compact` is an etcd (logical) compaction.
//!
//! # The compacted revision
//!
//! etcd does not report its compacted revision directly, and writing it to a reserved key
//! would cost a revision per compaction (breaking "one revision per write" for everyone
//! reading revisions). It is observable, though: a range at revision `r` fails with
//! "required revision has been compacted" exactly when `r` is below it. So
//! [`Store::compacted_revision`] binary-searches the lowest readable revision between a
//! cached lower bound and the current revision (one cheap count-only range when nothing was
//! compacted since the last call, ~log2(revisions) when something was). The cache is raised
//! by our own compactions and by watch responses, which carry etcd's `compact_revision`.
//! This also sees compactions made by other clients or by etcd's auto-compaction.
//!
//! # Failure
//!
//! Every request is bounded by [`EtcdOptions::request_timeout`] (connecting by
//! [`EtcdOptions::connect_timeout`]); an unreachable or refusing etcd is
//! [`StoreError::Unavailable`] naming the endpoints and the cause. A watch stream whose
//! connection breaks ends with `Unavailable`; the caller re-lists and watches again.

#[doc(hidden)]
pub mod testing;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client as ec;
use futures::stream::{self, StreamExt};

use crate::snapshot::{self, Snapshot};
use crate::*;

/// TLS settings for talking to etcd. Endpoints must then be `https://` URLs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdTls {
    /// PEM CA bundle that signed etcd's serving certificate. `None` trusts nothing extra
    /// (the connection then only works if etcd's certificate is otherwise trusted).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and its key, for etcd's `--client-cert-auth`.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name to verify etcd's certificate against, when it differs from the endpoint's
    /// host.
    pub server_name: Option<String>,
}

/// How to reach etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdOptions {
    /// Client URLs, e.g. `http://127.0.0.1:2379` or `https://etcd-0:2379`.
    pub endpoints: Vec<String>,
    pub tls: Option<EtcdTls>,
    /// Bound on establishing the connection (and the probe request `connect` makes).
    pub connect_timeout: Duration,
    /// Bound on each request. Watches are long-lived and bounded only while being created.
    pub request_timeout: Duration,
}

impl EtcdOptions {
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        EtcdOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            tls: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }

    pub fn with_tls(mut self, tls: EtcdTls) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> Self {
        self.connect_timeout = connect;
        self.request_timeout = request;
        self
    }
}

/// A [`Store`] backed by an etcd v3 cluster.
pub struct EtcdStore {
    client: ec::Client,
    kv: ec::KvClient,
    endpoints: String,
    request_timeout: Duration,
    /// A lower bound of etcd's compacted revision (see the module docs).
    compacted: Arc<AtomicI64>,
}

/// Responses can be large (a list of every pod); etcd's own send limit is 2 GiB.
const MAX_MESSAGE: usize = i32::MAX as usize;
/// Page size for snapshots.
const SNAPSHOT_PAGE: i64 = 1000;

/// An etcd failure, before the caller adds the context only it knows.
enum EtcdError {
    Compacted,
    FutureRevision,
    Other(StoreError),
}

impl EtcdStore {
    /// Connects and checks that etcd answers, within `opts.connect_timeout`.
    pub async fn connect(opts: EtcdOptions) -> Result<Self> {
        if opts.endpoints.is_empty() {
            return Err(StoreError::Backend("no etcd endpoints given".into()));
        }
        let endpoints = opts.endpoints.join(",");
        let mut copts = ec::ConnectOptions::new()
            .with_connect_timeout(opts.connect_timeout)
            // Detect a dead peer under a long-lived watch. No pings while idle: etcd answers
            // those with GOAWAY ("too many pings") under its default enforcement policy.
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10))
            .with_keep_alive_while_idle(false);
        if let Some(tls) = &opts.tls {
            copts = copts.with_tls(tls_options(tls)?);
        }
        // A rejected client certificate often reaches us only as "connection closed" (TLS
        // 1.3 reports it after the handshake), so say which identity was offered.
        let tls_note = match &opts.tls {
            None => String::new(),
            Some(EtcdTls {
                cert_file: Some(cert),
                ..
            }) => format!(
                " [TLS with client certificate {cert:?}: etcd closes connections whose \
                 certificate it does not trust]"
            ),
            Some(_) => " [TLS without a client certificate: etcd with --client-cert-auth \
                        rejects such connections]"
                .to_string(),
        };
        let unavailable = |what: String| {
            StoreError::Unavailable(format!(
                "cannot connect to etcd at {endpoints}: {what}{tls_note}"
            ))
        };
        let client = match tokio::time::timeout(
            opts.connect_timeout,
            ec::Client::connect(&opts.endpoints, Some(copts)),
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(ec::Error::InvalidArgs(e))) => {
                return Err(StoreError::Backend(format!(
                    "etcd endpoints {endpoints}: {e}"
                )))
            }
            Ok(Err(ec::Error::InvalidUri(e))) => {
                return Err(StoreError::Backend(format!(
                    "etcd endpoints {endpoints}: {e}"
                )))
            }
            Ok(Err(e)) => return Err(unavailable(describe(&e))),
            Err(_) => {
                return Err(unavailable(format!(
                    "no connection within {:?}",
                    opts.connect_timeout
                )))
            }
        };
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let store = EtcdStore {
            client,
            kv,
            endpoints: endpoints.clone(),
            request_timeout: opts.request_timeout,
            compacted: Arc::new(AtomicI64::new(0)),
        };
        // The client connects lazily; make sure someone answers before handing it out.
        let mut kv = store.kv();
        let probe = kv.get(KEY_PREFIX, Some(count_only()));
        match tokio::time::timeout(opts.connect_timeout, probe).await {
            Ok(Ok(_)) => Ok(store),
            Ok(Err(e)) => Err(unavailable(describe(&e))),
            Err(_) => Err(unavailable(
                format!("no answer within {:?}", opts.connect_timeout)
                    + &probe_tcp(&opts.endpoints).await,
            )),
        }
    }

    fn kv(&self) -> ec::KvClient {
        self.kv.clone()
    }

    /// Runs one request with the request timeout and classifies its failure.
    async fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, ec::Error>>,
    ) -> Result<T, EtcdError> {
        match tokio::time::timeout(self.request_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.classify(what, &e)),
            Err(_) => Err(EtcdError::Other(StoreError::Unavailable(format!(
                "etcd at {} did not answer {what} within {:?}",
                self.endpoints, self.request_timeout
            )))),
        }
    }

    fn classify(&self, what: &str, e: &ec::Error) -> EtcdError {
        let context =
            |e: &ec::Error| format!("etcd at {} ({what}): {}", self.endpoints, describe(e));
        match e {
            ec::Error::GRpcStatus(status) => {
                let msg = status.message();
                if msg.contains("required revision has been compacted") {
                    return EtcdError::Compacted;
                }
                if msg.contains("required revision is a future revision") {
                    return EtcdError::FutureRevision;
                }
                // gRPC status codes (tonic is not a direct dependency): transport trouble,
                // timeouts and refused credentials mean "cannot use etcd now".
                const UNAVAILABLE_CODES: [i32; 7] = [
                    1,  // Cancelled
                    2,  // Unknown
                    4,  // DeadlineExceeded
                    7,  // PermissionDenied
                    10, // Aborted
                    14, // Unavailable
                    16, // Unauthenticated
                ];
                if UNAVAILABLE_CODES.contains(&i32::from(status.code())) {
                    EtcdError::Other(StoreError::Unavailable(context(e)))
                } else {
                    EtcdError::Other(StoreError::Backend(context(e)))
                }
            }
            ec::Error::TransportError(_) | ec::Error::IoError(_) | ec::Error::WatchError(_) => {
                EtcdError::Other(StoreError::Unavailable(context(e)))
            }
            _ => EtcdError::Other(StoreError::Backend(context(e))),
        }
    }

    /// Like [`call`](Self::call) for requests that cannot hit a compacted or future revision.
    async fn simple<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, ec::Error>>,
    ) -> Result<T> {
        self.call(what, fut).await.map_err(|e| match e {
            EtcdError::Other(e) => e,
            EtcdError::Compacted | EtcdError::FutureRevision => StoreError::Backend(format!(
                "etcd at {}: unexpected revision error for {what}",
                self.endpoints
            )),
        })
    }

    /// The error for a request at `requested` that etcd says is compacted.
    async fn compacted_error(&self, requested: Revision) -> StoreError {
        match self.compacted_revision().await {
            Ok(compacted) => StoreError::Compacted {
                requested,
                compacted,
            },
            Err(e) => e,
        }
    }

    async fn future_error(&self, requested: Revision) -> StoreError {
        match self.current_revision().await {
            Ok(current) => StoreError::FutureRevision { requested, current },
            Err(e) => e,
        }
    }

    async fn revision_error(&self, e: EtcdError, requested: Revision) -> StoreError {
        match e {
            EtcdError::Compacted => self.compacted_error(requested).await,
            EtcdError::FutureRevision => self.future_error(requested).await,
            EtcdError::Other(e) => e,
        }
    }

    /// Whether a read at `revision` is still possible (it is not compacted).
    async fn readable(&self, revision: Revision) -> Result<bool> {
        let opts = count_only().with_revision(revision);
        match self
            .call("range", self.kv().get(KEY_PREFIX, Some(opts)))
            .await
        {
            Ok(_) => Ok(true),
            Err(EtcdError::Compacted) => Ok(false),
            Err(e) => Err(self.revision_error(e, revision).await),
        }
    }

    /// A txn on one key whose else branch reads that key.
    async fn txn(
        &self,
        what: &str,
        compares: Vec<ec::Compare>,
        then: ec::TxnOp,
        key: &str,
    ) -> Result<(Revision, bool, ec::TxnOpResponse)> {
        let txn = ec::Txn::new()
            .when(compares)
            .and_then(vec![then])
            .or_else(vec![ec::TxnOp::get(key, None)]);
        let resp = self.simple(what, self.kv().txn(txn)).await?;
        let revision = header_revision(resp.header(), &self.endpoints)?;
        let op = resp.op_responses().into_iter().next().ok_or_else(|| {
            StoreError::Backend(format!("etcd at {}: empty txn response", self.endpoints))
        })?;
        Ok((revision, resp.succeeded(), op))
    }

    /// `update`/`delete` preconditions: the key is live and, if asked, at `expected`.
    fn live_compares(key: &str, expected: Option<Revision>) -> Vec<ec::Compare> {
        let mut compares = vec![ec::Compare::create_revision(key, ec::CompareOp::Greater, 0)];
        if let Some(exp) = expected {
            compares.push(ec::Compare::mod_revision(key, ec::CompareOp::Equal, exp));
        }
        compares
    }

    /// Turns the else branch of a failed `update`/`delete` txn into the right error.
    fn precondition_failed(
        &self,
        key: &str,
        expected: Option<Revision>,
        op: ec::TxnOpResponse,
    ) -> StoreError {
        let current = match op {
            ec::TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision()),
            _ => None,
        };
        match (current, expected) {
            (None, _) => StoreError::NotFound {
                key: key.to_string(),
            },
            (Some(actual), Some(expected)) => StoreError::Conflict {
                key: key.to_string(),
                expected,
                actual,
            },
            (Some(_), None) => StoreError::Backend(format!(
                "etcd at {}: txn on live key {key:?} failed without a precondition",
                self.endpoints
            )),
        }
    }
}

fn count_only() -> ec::GetOptions {
    ec::GetOptions::new().with_count_only()
}

fn tls_options(tls: &EtcdTls) -> Result<ec::TlsOptions> {
    let read = |what: &str, path: &Path| {
        std::fs::read(path)
            .map_err(|e| StoreError::Backend(format!("reading etcd {what} {path:?}: {e}")))
    };
    let mut opts = ec::TlsOptions::new();
    if let Some(ca) = &tls.ca_file {
        opts = opts.ca_certificate(ec::Certificate::from_pem(read("CA file", ca)?));
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            opts = opts.identity(ec::Identity::from_pem(
                read("client certificate", cert)?,
                read("client key", key)?,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(StoreError::Backend(
                "etcd TLS: a client certificate needs both cert_file and key_file".into(),
            ))
        }
    }
    if let Some(name) = &tls.server_name {
        opts = opts.domain_name(name.clone());
    }
    Ok(opts)
}

/// An error with its whole source chain: tonic's transport errors say only "transport
/// error" at the top, the cause (connection refused, certificate required, ...) is below.
fn describe(e: &ec::Error) -> String {
    let mut out = match e {
        ec::Error::GRpcStatus(status) => {
            format!("{:?}: {}", status.code(), status.message())
        }
        other => other.to_string(),
    };
    let mut source = std::error::Error::source(e);
    if let ec::Error::TransportError(t) = e {
        source = std::error::Error::source(t);
    }
    if let ec::Error::GRpcStatus(s) = e {
        source = std::error::Error::source(s);
    }
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// When etcd did not answer in time, say whether anything listens at all: "connection
/// refused" is a much clearer message than a timeout.
async fn probe_tcp(endpoints: &[String]) -> String {
    let mut notes = Vec::new();
    for ep in endpoints {
        let hostport = ep
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        let probe = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(hostport),
        )
        .await;
        match probe {
            Ok(Ok(_)) => notes.push(format!("{ep} accepts TCP connections but did not answer")),
            Ok(Err(e)) => notes.push(format!("{ep}: {e}")),
            Err(_) => notes.push(format!("{ep}: TCP connect timed out")),
        }
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    }
}

fn header_revision(header: Option<&ec::ResponseHeader>, endpoints: &str) -> Result<Revision> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Backend(format!("etcd at {endpoints}: response has no header")))
}

fn convert(kv: ec::KeyValue) -> Result<KeyValue> {
    let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
    let (key, value) = kv.into_key_value();
    let key = String::from_utf8(key).map_err(|e| {
        StoreError::Corrupt(format!(
            "etcd holds a non-UTF-8 key {:?}",
            String::from_utf8_lossy(e.as_bytes())
        ))
    })?;
    Ok(KeyValue {
        key,
        value: Bytes::from(value),
        create_revision,
        mod_revision,
    })
}

fn convert_event(ev: &ec::Event) -> Result<Event> {
    let kv = ev
        .kv()
        .cloned()
        .ok_or_else(|| StoreError::Backend("etcd watch event without a key".into()))?;
    let prev_kv = ev.prev_kv().cloned().map(convert).transpose()?;
    let kv = convert(kv)?;
    Ok(match ev.event_type() {
        ec::EventType::Put => Event {
            kind: EventType::Put,
            kv,
            prev_kv,
        },
        ec::EventType::Delete => Event {
            kind: EventType::Delete,
            kv: KeyValue {
                key: kv.key,
                value: Bytes::new(),
                create_revision: 0,
                mod_revision: kv.mod_revision,
            },
            prev_kv,
        },
    })
}

/// What one watch response means for the stream.
enum WatchStep {
    Events(Vec<Event>),
    /// Ends the stream with this error.
    End(StoreError),
}

fn watch_step(
    resp: &ec::WatchResponse,
    from: Revision,
    compacted: &AtomicI64,
    endpoints: &str,
) -> WatchStep {
    if resp.compact_revision() != 0 {
        compacted.fetch_max(resp.compact_revision(), Ordering::AcqRel);
        return WatchStep::End(StoreError::Compacted {
            requested: from,
            compacted: resp.compact_revision(),
        });
    }
    if resp.canceled() {
        return WatchStep::End(StoreError::Unavailable(format!(
            "etcd at {endpoints} canceled the watch: {}",
            resp.cancel_reason()
        )));
    }
    match resp.events().iter().map(convert_event).collect() {
        Ok(events) => WatchStep::Events(events),
        Err(e) => WatchStep::End(e),
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        validate_key(key)?;
        let mut resp = self.simple("get", self.kv().get(key, None)).await?;
        resp.take_kvs().into_iter().next().map(convert).transpose()
    }

    async fn list(&self, req: &ListRequest) -> Result<ListResponse> {
        validate_prefix(&req.prefix)?;
        let start = match &req.start_after {
            Some(after) if after.as_str() >= req.prefix.as_str() => format!("{after}\0"),
            _ => req.prefix.clone(),
        };
        if req.revision < 0 {
            return Err(self.compacted_error(req.revision).await);
        }
        let mut opts = ec::GetOptions::new()
            .with_range(prefix_end(&req.prefix))
            .with_limit(i64::try_from(req.limit).unwrap_or(i64::MAX));
        if req.revision != 0 {
            opts = opts.with_revision(req.revision);
        }
        let mut resp = match self.call("list", self.kv().get(start, Some(opts))).await {
            Ok(resp) => resp,
            Err(e) => return Err(self.revision_error(e, req.revision).await),
        };
        let revision = match req.revision {
            0 => header_revision(resp.header(), &self.endpoints)?,
            r => r,
        };
        let more = resp.more();
        let kvs = resp
            .take_kvs()
            .into_iter()
            .map(convert)
            .collect::<Result<Vec<_>>>()?;
        Ok(ListResponse {
            kvs,
            revision,
            more,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        validate_key(key)?;
        let compare = ec::Compare::create_revision(key, ec::CompareOp::Equal, 0);
        let put = ec::TxnOp::put(key, value.to_vec(), None);
        let (revision, ok, _) = self.txn("create", vec![compare], put, key).await?;
        if !ok {
            return Err(StoreError::AlreadyExists {
                key: key.to_string(),
            });
        }
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> Result<KeyValue> {
        validate_key(key)?;
        let put = ec::TxnOp::put(
            key,
            value.to_vec(),
            Some(ec::PutOptions::new().with_prev_key()),
        );
        let compares = Self::live_compares(key, expected);
        let (revision, ok, op) = self.txn("update", compares, put, key).await?;
        if !ok {
            return Err(self.precondition_failed(key, expected, op));
        }
        let create_revision = match op {
            ec::TxnOpResponse::Put(put) => put.prev_key().map(|kv| kv.create_revision()),
            _ => None,
        }
        .ok_or_else(|| {
            StoreError::Backend(format!(
                "etcd at {}: update of {key:?} returned no previous value",
                self.endpoints
            ))
        })?;
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        validate_key(key)?;
        let del = ec::TxnOp::delete(key, Some(ec::DeleteOptions::new().with_prev_key()));
        let compares = Self::live_compares(key, expected);
        let (_, ok, op) = self.txn("delete", compares, del, key).await?;
        if !ok {
            return Err(self.precondition_failed(key, expected, op));
        }
        match op {
            ec::TxnOpResponse::Delete(mut del) => del.take_prev_kvs().into_iter().next(),
            _ => None,
        }
        .map(convert)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound {
            key: key.to_string(),
        })
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream> {
        validate_prefix(prefix)?;
        if from < 0 {
            return Err(self.compacted_error(from).await);
        }
        let mut opts = ec::WatchOptions::new()
            .with_range(prefix_end(prefix))
            .with_prev_key();
        if from != 0 {
            opts = opts.with_start_revision(from);
        }
        let endpoints = self.endpoints.clone();
        let compacted = self.compacted.clone();
        let mut client = self.client.watch_client();
        // Wait for etcd to confirm the watcher: only then is "from now" pinned, so a write
        // made after `watch` returns is guaranteed to be delivered.
        let created = async {
            let mut ws = client.watch(prefix, Some(opts)).await?;
            let first = ws.message().await?;
            Ok((ws, first))
        };
        let (ws, first) = match self.call("watch", created).await {
            Ok(v) => v,
            Err(e) => return Err(self.revision_error(e, from).await),
        };
        let first = match first {
            Some(resp) => resp,
            None => {
                return Err(StoreError::Unavailable(format!(
                    "etcd at {endpoints} closed the watch before confirming it"
                )))
            }
        };
        let initial = match watch_step(&first, from, &compacted, &endpoints) {
            WatchStep::End(e) => return Err(e),
            WatchStep::Events(events) => events,
        };

        struct State {
            ws: Option<ec::WatchStream>,
            from: Revision,
            compacted: Arc<AtomicI64>,
            endpoints: String,
        }
        let state = State {
            ws: Some(ws),
            from,
            compacted,
            endpoints,
        };
        let live = stream::unfold(state, |mut st| async move {
            let ws = st.ws.as_mut()?;
            let item = match ws.message().await {
                Ok(Some(resp)) => match watch_step(&resp, st.from, &st.compacted, &st.endpoints) {
                    WatchStep::Events(events) => events.into_iter().map(Ok).collect(),
                    WatchStep::End(e) => {
                        st.ws = None;
                        vec![Err(e)]
                    }
                },
                Ok(None) => {
                    st.ws = None;
                    vec![Err(StoreError::Unavailable(format!(
                        "etcd at {} closed the watch stream",
                        st.endpoints
                    )))]
                }
                Err(e) => {
                    st.ws = None;
                    vec![Err(StoreError::Unavailable(format!(
                        "watch on etcd at {} broke: {}",
                        st.endpoints,
                        describe(&e)
                    )))]
                }
            };
            Some((stream::iter(item), st))
        })
        .flatten();
        Ok(stream::iter(initial.into_iter().map(Ok))
            .chain(live)
            .boxed())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        // etcd would accept compacting at 0 on a fresh store; nothing lies below 1.
        if revision < 1 {
            return Err(self.compacted_error(revision).await);
        }
        match self
            .call("compact", self.kv().compact(revision, None))
            .await
        {
            Ok(_) => {
                self.compacted.fetch_max(revision, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => Err(self.revision_error(e, revision).await),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        let resp = self
            .simple("range", self.kv().get(KEY_PREFIX, Some(count_only())))
            .await?;
        header_revision(resp.header(), &self.endpoints)
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        // The compacted revision c is the lowest readable revision: reads at r fail exactly
        // when r < c. It only grows, and `known` is a lower bound of it.
        let known = self.compacted.load(Ordering::Acquire);
        if self.readable(known.max(1)).await? {
            // c <= max(known, 1), and c >= known: c is known — unless known is 0 and etcd
            // was compacted at exactly 1, which changes nothing observable.
            return Ok(known);
        }
        let (mut lo, mut hi) = (known.max(1), self.current_revision().await?);
        // Invariant: lo is not readable, hi is (the current revision always is).
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.readable(mid).await? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        self.compacted.fetch_max(hi, Ordering::AcqRel);
        Ok(hi)
    }

    async fn snapshot(&self, path: &Path) -> Result<Revision> {
        let mut kvs = Vec::new();
        let mut start = KEY_PREFIX.to_string();
        let mut revision = 0;
        loop {
            let mut opts = ec::GetOptions::new()
                .with_range(prefix_end(KEY_PREFIX))
                .with_limit(SNAPSHOT_PAGE);
            if revision != 0 {
                opts = opts.with_revision(revision);
            }
            let mut resp = match self
                .call("snapshot", self.kv().get(start, Some(opts)))
                .await
            {
                Ok(resp) => resp,
                Err(e) => return Err(self.revision_error(e, revision).await),
            };
            if revision == 0 {
                revision = header_revision(resp.header(), &self.endpoints)?;
            }
            let more = resp.more();
            for kv in resp.take_kvs() {
                kvs.push(convert(kv)?);
            }
            match kvs.last() {
                Some(last) if more => start = format!("{}\0", last.key),
                _ => break,
            }
        }
        let snap = Snapshot {
            revision,
            compacted: self.compacted_revision().await?,
            kvs,
        };
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || snapshot::write(&path, &snap))
            .await
            .map_err(|e| StoreError::Backend(format!("writing snapshot: {e}")))??;
        Ok(revision)
    }
}
