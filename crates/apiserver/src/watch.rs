//! Watch streaming, selector filtering and Table rendering.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Map, Value};
use skiff_api::printers;
use skiff_api::registry::Resource;
use skiff_api::selectors::{FieldSelector, LabelSelector};
use skiff_api::status::Status;
use skiff_api::strategy::meta_str;
use skiff_store::{EventType, StoreError};
use tokio::sync::mpsc;

use crate::negotiate::Output;
use crate::rest::{self, list_prefix};
use crate::route::{Query, ResourceRequest};
use crate::watchcache::{CachedEvent, Wire};
use crate::{ApiServer, Resp};

/// How often a watch with `allowWatchBookmarks` gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// At most this many queued events are joined into one body frame.
const COALESCE: usize = 64;
/// Upstream's default watch timeout (`--min-request-timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Label and field selectors of a request.
pub struct Filter {
    res: &'static Resource,
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    pub fn new(res: &'static Resource, q: &Query) -> Result<Self, Status> {
        let labels = match q.label_selector.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Some(LabelSelector::parse(s)?),
            _ => None,
        };
        let fields = match q.field_selector.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Some(FieldSelector::parse_for(res, s)?),
            _ => None,
        };
        Ok(Filter {
            res,
            labels,
            fields,
        })
    }

    /// No selectors: every object matches, so nothing needs decoding to decide.
    pub fn is_everything(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    /// Only a label selector: deciding needs an object's labels, not the object.
    pub fn labels_only(&self) -> bool {
        self.fields.is_none()
    }

    /// Whether `metadata` has matching labels (for [`Filter::labels_only`] filters).
    pub fn matches_metadata(&self, metadata: &Map<String, Value>) -> bool {
        let empty = Map::new();
        let labels = metadata
            .get("labels")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        self.labels.as_ref().is_none_or(|sel| sel.matches(labels))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels
            .as_ref()
            .is_none_or(|sel| sel.matches_object(obj))
            && self
                .fields
                .as_ref()
                .is_none_or(|sel| sel.matches(self.res, obj))
    }
}

/// A `meta.k8s.io` Table of `items`.
pub fn table(
    res: &Resource,
    items: &[Value],
    q: &Query,
    v1beta1: bool,
    resource_version: Option<&str>,
    continue_token: Option<&str>,
) -> Value {
    table_with(
        res,
        items,
        q,
        v1beta1,
        resource_version,
        continue_token,
        true,
    )
}

fn table_with(
    res: &Resource,
    items: &[Value],
    q: &Query,
    v1beta1: bool,
    resource_version: Option<&str>,
    continue_token: Option<&str>,
    with_columns: bool,
) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let custom = crate::crd::version(res);
    let columns: Vec<Value> = if let (true, Some(v)) = (with_columns, &custom) {
        v.column_defs()
    } else if with_columns {
        printers::columns(res)
            .into_iter()
            .map(|c| {
                json!({"name": c.name, "type": c.type_, "format": c.format,
                       "description": c.description, "priority": c.priority})
            })
            .collect()
    } else {
        Vec::new()
    };
    let include = q.include_object.as_deref().unwrap_or("Metadata");
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let object = match include {
                "None" => Value::Null,
                "Object" => obj.clone(),
                _ => partial_metadata(obj, v1beta1),
            };
            let cells = match &custom {
                Some(v) => v.cells(obj, now),
                None => printers::cells(res, obj, now),
            };
            let mut row = json!({"cells": cells});
            if let Some(c) = printers::row_conditions(res, obj) {
                row["conditions"] = c;
            }
            if !object.is_null() {
                row["object"] = object;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": meta_api_version(v1beta1),
        "metadata": list_metadata(resource_version, continue_token),
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// `obj` as a `meta.k8s.io` PartialObjectMetadata: its metadata alone.
pub fn partial_metadata(obj: &Value, v1beta1: bool) -> Value {
    partial_of(obj.get("metadata").cloned().unwrap_or(json!({})), v1beta1)
}

fn partial_of(metadata: Value, v1beta1: bool) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": meta_api_version(v1beta1),
        "metadata": metadata,
    })
}

/// `meta.k8s.io/v1`, or `v1beta1`: the group of Tables and PartialObjectMetadata.
pub fn meta_api_version(v1beta1: bool) -> &'static str {
    if v1beta1 {
        "meta.k8s.io/v1beta1"
    } else {
        "meta.k8s.io/v1"
    }
}

/// A list's `metadata`: its resourceVersion and continue token, when there are any.
pub fn list_metadata(resource_version: Option<&str>, continue_token: Option<&str>) -> Value {
    let mut meta = Map::new();
    if let Some(rv) = resource_version {
        meta.insert("resourceVersion".into(), json!(rv));
    }
    if let Some(c) = continue_token {
        meta.insert("continue".into(), json!(c));
    }
    Value::Object(meta)
}

/// Encodes watch events for one client.
struct Encoder {
    res: &'static Resource,
    out: Output,
    q: Query,
    sent_columns: bool,
    /// Length-prefixed protobuf `WatchEvent` frames instead of JSON lines.
    protobuf: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, obj: Value) -> Bytes {
        let object = match self.out {
            Output::Table { v1beta1 } if kind != "BOOKMARK" && kind != "ERROR" => {
                let rv = meta_str(&obj, "resourceVersion").map(String::from);
                let t = table_with(
                    self.res,
                    std::slice::from_ref(&obj),
                    &self.q,
                    v1beta1,
                    rv.as_deref(),
                    None,
                    !self.sent_columns,
                );
                self.sent_columns = true;
                t
            }
            Output::Metadata { v1beta1 } if kind != "ERROR" => partial_metadata(&obj, v1beta1),
            _ => obj,
        };
        self.plain(kind, &object)
    }

    /// A watch event; the same bytes for every watcher with this encoding, made once per
    /// event. `None` if the stored object does not decode.
    fn shared(&mut self, kind: &str, ev: &CachedEvent) -> Option<Bytes> {
        match self.out {
            Output::Table { .. } => Some(self.event(kind, ev.object()?.clone())),
            Output::Metadata { v1beta1 } => {
                let partial = || {
                    let meta = Value::Object(ev.metadata()?.clone());
                    Some(self.plain(kind, &partial_of(meta, v1beta1)))
                };
                if v1beta1 {
                    partial()
                } else {
                    ev.encoded(kind, Wire::Metadata, partial)
                }
            }
            _ if self.protobuf => ev.encoded(kind, Wire::Protobuf, || {
                Some(self.plain(kind, ev.object()?))
            }),
            _ => ev.encoded(kind, Wire::Json, || ev.json_line(kind)),
        }
    }

    /// `{"type": kind, "object": object}` as a JSON line or a protobuf frame.
    fn plain(&self, kind: &str, object: &Value) -> Bytes {
        if self.protobuf {
            let frame = skiff_proto::encode_watch_frame(kind, object).or_else(|e| {
                let status = Status::internal(format!("encoding a watch event: {e}"));
                let v: Value = serde_json::from_slice(&status.to_json()).expect("Status is JSON");
                skiff_proto::encode_watch_frame("ERROR", &v)
            });
            return Bytes::from(frame.unwrap_or_default());
        }
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": object}))
            .expect("JSON values serialise");
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&mut self, rv: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        self.event(
            "BOOKMARK",
            json!({"kind": self.res.kind, "apiVersion": self.res.api_version(), "metadata": meta}),
        )
    }

    fn error(&mut self, s: &Status) -> Bytes {
        let v: Value = serde_json::from_slice(&s.to_json()).expect("Status is JSON");
        self.event("ERROR", v)
    }
}

/// The watch event type a store event becomes for this filter (upstream's selector
/// transitions), or `None` when the watcher does not see it.
fn translate(filter: &Filter, ev: &CachedEvent) -> Option<&'static str> {
    match ev.kind {
        // Without selectors nothing needs decoding: the previous object matched whenever it
        // existed.
        EventType::Put if filter.is_everything() => {
            Some(if ev.had_prev { "MODIFIED" } else { "ADDED" })
        }
        EventType::Put => {
            let (prev_matches, new_matches) = if filter.labels_only() {
                let prev = ev
                    .prev_metadata()
                    .is_some_and(|m| filter.matches_metadata(m));
                (prev, filter.matches_metadata(ev.metadata()?))
            } else {
                let prev = ev.prev().is_some_and(|p| filter.matches(p));
                (prev, filter.matches(ev.object()?))
            };
            match (prev_matches, new_matches) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            }
        }
        EventType::Delete if filter.is_everything() => Some("DELETED"),
        EventType::Delete if filter.labels_only() => {
            filter.matches_metadata(ev.metadata()?).then_some("DELETED")
        }
        EventType::Delete => filter.matches(ev.object()?).then_some("DELETED"),
    }
}

fn concat(mut chunks: Vec<Bytes>) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut out = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
    for c in &chunks {
        out.extend_from_slice(c);
    }
    Bytes::from(out)
}

pub async fn serve(
    srv: &Arc<ApiServer>,
    rr: &ResourceRequest,
    q: &Query,
    out: Output,
) -> Result<Resp, Status> {
    let res = rr.res;
    let filter = Filter::new(res, q)?;
    let prefix = list_prefix(res, rr.namespace.as_deref());
    let send_initial = q.send_initial_events == Some(true);
    if q.send_initial_events.is_some() {
        if q.resource_version_match.as_deref() != Some("NotOlderThan") {
            return Err(Status::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                vec![skiff_api::status::Cause::new(
                    "FieldValueInvalid",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    "resourceVersionMatch",
                )],
            ));
        }
        if send_initial && !q.allow_bookmarks {
            return Err(Status::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                vec![skiff_api::status::Cause::new(
                    "FieldValueForbidden",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                    "allowWatchBookmarks",
                )],
            ));
        }
    }
    let rv = match q.resource_version.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| {
            Status::bad_request(format!("invalid resourceVersion {s:?}: must be an integer"))
        })?),
    };
    // Initial state: for rv unset/"0" (upstream's "get state and start at most recent"),
    // or for sendInitialEvents (watch-list).
    let initial = send_initial || (q.send_initial_events.is_none() && rv.unwrap_or(0) == 0);
    // Protobuf only for built-in types: custom resources have no protobuf encoding and
    // clients fall back to JSON for them, as with upstream.
    let protobuf = out == Output::Protobuf && skiff_proto::can_encode(&res.api_version(), res.kind);
    let mut enc = Encoder {
        res,
        out,
        q: q.clone(),
        sent_columns: false,
        protobuf,
    };
    let mut first_chunks: Vec<Bytes> = Vec::new();
    let from = if initial {
        let mut lq = q.clone();
        lq.limit = None;
        lq.continue_token = None;
        lq.resource_version = None;
        lq.resource_version_match = None;
        let listed = rest::list_objects(srv, rr, &lq).await?;
        for obj in listed.items {
            first_chunks.push(enc.event("ADDED", obj));
        }
        if send_initial {
            first_chunks.push(enc.bookmark(listed.revision, true));
        }
        listed.revision + 1
    } else {
        rv.unwrap_or(0) + 1
    };
    let cached = srv
        .watch_cache
        .watch(&srv.store, res, rr.namespace.as_deref(), from)
        .await;
    let stream = match cached {
        Some(s) => Ok(s),
        None => srv.store.watch(&prefix, from).await.map(|s| {
            s.map(move |r| r.map(|ev| Arc::new(CachedEvent::new(res, ev))))
                .boxed()
        }),
    };
    let stream = match stream {
        Ok(s) => Some(s),
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            first_chunks.push(enc.error(&Status::gone(format!(
                "too old resource version: {} ({compacted})",
                requested - 1
            ))));
            None
        }
        Err(e) => return Err(rest::store_error(res, "", e)),
    };
    let timeout = q
        .timeout_seconds
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let bookmarks = q.allow_bookmarks;
    let mut stop = srv.watch_stop_signal();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        for chunk in first_chunks {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        let Some(mut stream) = stream else { return };
        if *stop.borrow() {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        let mut last_rv = from - 1;
        loop {
            let chunk = tokio::select! {
                _ = &mut deadline => return,
                _ = stop.changed() => return,
                _ = ticker.tick(), if bookmarks => enc.bookmark(last_rv, false),
                _ = tx.closed() => return,
                item = stream.next() => match item {
                    None => return,
                    Some(Ok(ev)) => {
                        last_rv = ev.revision;
                        match translate(&filter, &ev).and_then(|kind| enc.shared(kind, &ev)) {
                            Some(bytes) => bytes,
                            None => continue,
                        }
                    }
                    Some(Err(StoreError::Compacted { requested, compacted })) => {
                        let _ = tx.send(enc.error(&Status::gone(format!(
                            "too old resource version: {} ({compacted})", requested - 1
                        )))).await;
                        return;
                    }
                    Some(Err(e)) => {
                        let status = match e {
                            StoreError::WatcherTooSlow => Status::gone("watch fell behind; re-list and watch again"),
                            other => rest::store_error(res, "", other),
                        };
                        let _ = tx.send(enc.error(&status)).await;
                        return;
                    }
                }
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    // Events already queued go out as one write: under load that is one TLS record and
    // one system call for many events instead of one each.
    let body = StreamBody::new(
        tokio_stream::wrappers::ReceiverStream::new(rx)
            .ready_chunks(COALESCE)
            .map(|chunks| Ok::<_, Infallible>(Frame::data(concat(chunks)))),
    );
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            if protobuf {
                skiff_proto::WATCH_MEDIA_TYPE
            } else {
                "application/json"
            },
        )
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(body.boxed_unsync())
        .unwrap())
}
