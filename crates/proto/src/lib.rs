//! `skiff-proto`: the Kubernetes protobuf wire format, converted to and from JSON values.
//!
//! kubectl 1.32+ and client-go send typed request bodies as
//! `application/vnd.kubernetes.protobuf`: the magic `k8s\0` followed by a `runtime.Unknown`
//! whose `raw` field holds the object's protobuf encoding. This crate turns such a body
//! into the JSON the rest of Skiff works on, and back.
//!
//! There is one generic codec, driven by a descriptor table ([`table`]) generated from the
//! `k8s-pb` crate (prost types generated from upstream's `.proto` files) with JSON names
//! from `k8s-openapi`; see `gen/gen_table.py`. The types whose protobuf and JSON shapes
//! differ (Time, MicroTime, Duration, Quantity, IntOrString, RawExtension, FieldsV1,
//! the JSONSchemaProps unions, string-list wrappers) are handled once, by message name.
//!
//! Must not: know about HTTP, stores or API semantics; hand-write per-type codecs.

mod codec;
pub mod descriptor;
#[rustfmt::skip]
pub mod table;

pub use codec::{decode_message, encode_message};
pub use descriptor::{message_for, Field, Kind, Message};

use serde_json::Value;

/// The 4-byte prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of protobuf watch streams.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    #[error("not a Kubernetes protobuf body: it must start with the bytes \"k8s\\x00\"")]
    NoMagic,
    #[error("truncated protobuf data")]
    Truncated,
    #[error("malformed protobuf data: {0}")]
    Malformed(String),
    #[error("no protobuf schema for {api_version}, Kind={kind}")]
    UnknownKind { api_version: String, kind: String },
    #[error("protobuf bodies with content encoding {0:?} are not supported")]
    ContentEncoding(String),
}

/// A decoded envelope: the type it announces and the object as JSON (with `kind` and
/// `apiVersion` set from the envelope).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub api_version: String,
    pub kind: String,
    pub object: Value,
}

/// Decodes a `k8s\0` + `runtime.Unknown` body.
pub fn decode(body: &[u8]) -> Result<Decoded, ProtoError> {
    let rest = body.strip_prefix(MAGIC).ok_or(ProtoError::NoMagic)?;
    let unknown = codec::parse_unknown(rest)?;
    if !unknown.content_encoding.is_empty() {
        return Err(ProtoError::ContentEncoding(unknown.content_encoding));
    }
    let msg = message_for(&unknown.api_version, &unknown.kind).ok_or_else(|| {
        ProtoError::UnknownKind {
            api_version: unknown.api_version.clone(),
            kind: unknown.kind.clone(),
        }
    })?;
    let mut object = decode_message(msg, &unknown.raw)?;
    if let Value::Object(map) = &mut object {
        let mut ordered = serde_json::Map::new();
        ordered.insert("kind".into(), Value::String(unknown.kind.clone()));
        ordered.insert(
            "apiVersion".into(),
            Value::String(unknown.api_version.clone()),
        );
        ordered.extend(std::mem::take(map));
        *map = ordered;
    }
    Ok(Decoded {
        api_version: unknown.api_version,
        kind: unknown.kind,
        object,
    })
}

/// Encodes a JSON object (with `kind` and `apiVersion`) as a `k8s\0` envelope.
pub fn encode(object: &Value) -> Result<Vec<u8>, ProtoError> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let msg = message_for(api_version, kind).ok_or_else(|| ProtoError::UnknownKind {
        api_version: api_version.into(),
        kind: kind.into(),
    })?;
    let raw = encode_message(msg, object)?;
    let mut out = MAGIC.to_vec();
    out.extend(codec::unknown_bytes(api_version, kind, &raw));
    Ok(out)
}

/// Whether objects of this type have a protobuf encoding (built-in types; custom resources
/// do not).
pub fn can_encode(api_version: &str, kind: &str) -> bool {
    message_for(api_version, kind).is_some()
}

/// One frame of a protobuf watch stream, as upstream's streaming encoder writes it: a
/// 4-byte big-endian length, then a `metav1.WatchEvent` without envelope whose
/// `object.raw` holds the object's own `k8s\0` envelope.
pub fn encode_watch_frame(event_type: &str, object: &Value) -> Result<Vec<u8>, ProtoError> {
    let embedded = encode(object)?;
    let mut raw_extension = Vec::new();
    codec::put_bytes(&mut raw_extension, 1, &embedded);
    let mut event = Vec::new();
    codec::put_bytes(&mut event, 1, event_type.as_bytes());
    codec::put_bytes(&mut event, 2, &raw_extension);
    let len = u32::try_from(event.len())
        .map_err(|_| ProtoError::Malformed("watch event larger than 4 GiB".into()))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend(event);
    Ok(out)
}
