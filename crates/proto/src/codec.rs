//! The generic wire-format codec and the types whose JSON shape differs from their
//! protobuf shape.

use base64::Engine;
use serde_json::{Map, Number, Value};

use crate::descriptor::{message, Card, Field, Kind, Message};
use crate::ProtoError;

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.";
/// Go's zero `time.Time` as Unix seconds: encoded for unset non-pointer times.
const GO_ZERO_TIME: i64 = -62135596800;
/// Nesting bound: deeper input is rejected rather than risking the stack.
const MAX_DEPTH: usize = 64;

fn malformed(m: impl Into<String>) -> ProtoError {
    ProtoError::Malformed(m.into())
}

/// A cursor over protobuf bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    /// Read past; no Kubernetes field uses 32-bit fixed values.
    Fixed32,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut out = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(ProtoError::Truncated)?;
            self.buf = rest;
            out |= ((b & 0x7f) as u64) << (7 * i);
            if b < 0x80 {
                return Ok(out);
            }
        }
        Err(malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.buf.len() {
            return Err(ProtoError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn next(&mut self) -> Result<Option<(u32, WireValue<'a>)>, ProtoError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| malformed("field number too large"))?;
        if tag == 0 {
            return Err(malformed("field number 0"));
        }
        let v = match key & 7 {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().unwrap())),
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| ProtoError::Truncated)?;
                WireValue::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                WireValue::Fixed32
            }
            w => return Err(malformed(format!("unsupported wire type {w}"))),
        };
        Ok(Some((tag, v)))
    }
}

pub(crate) struct Unknown {
    pub api_version: String,
    pub kind: String,
    pub raw: Vec<u8>,
    pub content_encoding: String,
}

fn utf8(b: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed("string field is not UTF-8"))
}

pub(crate) fn parse_unknown(buf: &[u8]) -> Result<Unknown, ProtoError> {
    let mut r = Reader { buf };
    let mut u = Unknown {
        api_version: String::new(),
        kind: String::new(),
        raw: Vec::new(),
        content_encoding: String::new(),
    };
    while let Some((tag, v)) = r.next()? {
        match (tag, v) {
            (1, WireValue::Bytes(tm)) => {
                let mut t = Reader { buf: tm };
                while let Some((tag, v)) = t.next()? {
                    match (tag, v) {
                        (1, WireValue::Bytes(b)) => u.api_version = utf8(b)?,
                        (2, WireValue::Bytes(b)) => u.kind = utf8(b)?,
                        _ => {}
                    }
                }
            }
            (2, WireValue::Bytes(b)) => u.raw = b.to_vec(),
            (3, WireValue::Bytes(b)) => u.content_encoding = utf8(b)?,
            _ => {}
        }
    }
    if u.kind.is_empty() {
        return Err(malformed("the envelope does not name a kind"));
    }
    Ok(u)
}

pub(crate) fn unknown_bytes(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = Vec::new();
    put_bytes(&mut tm, 1, api_version.as_bytes());
    put_bytes(&mut tm, 2, kind.as_bytes());
    let mut out = Vec::new();
    put_bytes(&mut out, 1, &tm);
    put_bytes(&mut out, 2, raw);
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    out
}

/// Decodes one message into its JSON form.
pub fn decode_message(msg: &'static Message, buf: &[u8]) -> Result<Value, ProtoError> {
    decode_at(msg, buf, 0)
}

fn decode_at(msg: &'static Message, buf: &[u8], depth: usize) -> Result<Value, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(malformed("nesting too deep"));
    }
    if let Some(special) = decode_special(msg, buf, depth)? {
        return Ok(special);
    }
    let mut out = Map::new();
    let mut r = Reader { buf };
    while let Some((tag, wv)) = r.next()? {
        let Some(field) = msg.field(tag) else {
            continue; // unknown fields are skipped, as protobuf does
        };
        match field.card {
            Card::Optional => {
                let v = scalar_or_message(field.kind, wv, depth)?;
                out.insert(field.json.to_string(), v);
            }
            Card::Repeated => {
                let entry = out
                    .entry(field.json.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = entry else {
                    unreachable!()
                };
                match (field.kind, wv) {
                    // Packed scalars.
                    (
                        Kind::Int32 | Kind::Int64 | Kind::Bool | Kind::Double,
                        WireValue::Bytes(b),
                    ) => {
                        let mut p = Reader { buf: b };
                        while !p.buf.is_empty() {
                            let v = if field.kind == Kind::Double {
                                WireValue::Fixed64(u64::from_le_bytes(
                                    p.take(8)?.try_into().unwrap(),
                                ))
                            } else {
                                WireValue::Varint(p.varint()?)
                            };
                            items.push(scalar_or_message(field.kind, v, depth)?);
                        }
                    }
                    (_, wv) => items.push(scalar_or_message(field.kind, wv, depth)?),
                }
            }
            Card::Map => {
                let WireValue::Bytes(entry) = wv else {
                    return Err(malformed(format!(
                        "map field {} is not length-delimited",
                        field.json
                    )));
                };
                let mut e = Reader { buf: entry };
                let mut key = String::new();
                let mut value = None;
                while let Some((t, v)) = e.next()? {
                    match (t, v) {
                        (1, WireValue::Bytes(k)) => key = utf8(k)?,
                        (2, v) => value = Some(scalar_or_message(field.kind, v, depth)?),
                        _ => {}
                    }
                }
                let value = value.unwrap_or_else(|| empty_value(field.kind));
                let map = out
                    .entry(field.json.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = map {
                    m.insert(key, value);
                }
            }
        }
    }
    // Go omits empty strings (omitempty) and unset times; protobuf carries them anyway.
    out.retain(|_, v| !matches!(v, Value::Null) && v.as_str() != Some(""));
    if msg.name == "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        && out.get("generation") == Some(&Value::from(0))
    {
        out.remove("generation"); // a non-pointer int64 that Go's JSON omits when zero
    }
    Ok(Value::Object(out))
}

fn empty_value(kind: Kind) -> Value {
    match kind {
        Kind::String | Kind::Bytes => Value::String(String::new()),
        Kind::Message(_) => Value::Object(Map::new()),
        Kind::Bool => Value::Bool(false),
        _ => Value::from(0),
    }
}

fn scalar_or_message(kind: Kind, wv: WireValue, depth: usize) -> Result<Value, ProtoError> {
    Ok(match (kind, wv) {
        (Kind::String, WireValue::Bytes(b)) => Value::String(utf8(b)?),
        (Kind::Bytes, WireValue::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Kind::Int32, WireValue::Varint(v)) => Value::from(v as i64 as i32),
        (Kind::Int64, WireValue::Varint(v)) => Value::from(v as i64),
        (Kind::Bool, WireValue::Varint(v)) => Value::Bool(v != 0),
        (Kind::Double, WireValue::Fixed64(v)) => Number::from_f64(f64::from_bits(v))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        (Kind::Message(i), WireValue::Bytes(b)) => decode_at(message(i), b, depth + 1)?,
        (kind, _) => return Err(malformed(format!("wrong wire type for a {kind:?} field"))),
    })
}

/// Reads all fields of a small message into (tag, value) pairs.
fn fields<'a>(buf: &'a [u8]) -> Result<Vec<(u32, WireValue<'a>)>, ProtoError> {
    let mut r = Reader { buf };
    let mut out = Vec::new();
    while let Some(f) = r.next()? {
        out.push(f);
    }
    Ok(out)
}

fn rfc3339(seconds: i64, nanos: i64, micro: bool) -> Result<Value, ProtoError> {
    // Go marshals a zero time.Time as an empty message (seconds 0), or as Go's zero.
    if (seconds == GO_ZERO_TIME || seconds == 0) && nanos == 0 {
        return Ok(Value::Null);
    }
    let t = time::OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| malformed("time out of range"))?;
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    Ok(Value::String(if micro {
        format!("{base}.{:06}Z", nanos / 1000)
    } else {
        format!("{base}Z")
    }))
}

/// Go's `time.Duration.String()`.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let n = nanos.unsigned_abs();
    let s = if n < 1_000 {
        format!("{n}ns")
    } else if n < 1_000_000 {
        trim_frac(n as f64 / 1e3, "µs")
    } else if n < 1_000_000_000 {
        trim_frac(n as f64 / 1e6, "ms")
    } else {
        let total_secs = n / 1_000_000_000;
        let frac = n % 1_000_000_000;
        let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
        let secs = if frac == 0 {
            format!("{s}s")
        } else {
            let f = format!("{frac:09}");
            format!("{s}.{}s", f.trim_end_matches('0'))
        };
        if h > 0 {
            format!("{h}h{m}m{secs}")
        } else if m > 0 {
            format!("{m}m{secs}")
        } else {
            secs
        }
    };
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

fn trim_frac(v: f64, unit: &str) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{unit}")
}

fn varint_of(fs: &[(u32, WireValue)], tag: u32) -> i64 {
    fs.iter()
        .rev()
        .find_map(|(t, v)| match v {
            WireValue::Varint(x) if *t == tag => Some(*x as i64),
            _ => None,
        })
        .unwrap_or(0)
}

fn bytes_of<'a>(fs: &[(u32, WireValue<'a>)], tag: u32) -> Option<&'a [u8]> {
    fs.iter().rev().find_map(|(t, v)| match v {
        WireValue::Bytes(b) if *t == tag => Some(*b),
        _ => None,
    })
}

fn raw_json(b: Option<&[u8]>) -> Result<Value, ProtoError> {
    match b {
        None | Some([]) => Ok(Value::Null),
        Some(b) => serde_json::from_slice(b)
            .map_err(|e| malformed(format!("embedded raw JSON is invalid: {e}"))),
    }
}

fn is_string_list_wrapper(name: &str) -> bool {
    name.ends_with(".ExtraValue") || name == "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs"
}

fn decode_special(
    msg: &'static Message,
    buf: &[u8],
    depth: usize,
) -> Result<Option<Value>, ProtoError> {
    let name = msg.name;
    let short = name.strip_prefix(META);
    let v = match (short, name) {
        (Some("Time"), _) | (Some("MicroTime"), _) => {
            let fs = fields(buf)?;
            rfc3339(
                varint_of(&fs, 1),
                varint_of(&fs, 2),
                short == Some("MicroTime"),
            )?
        }
        (Some("Duration"), _) => Value::String(go_duration(varint_of(&fields(buf)?, 1))),
        (Some("FieldsV1"), _) => raw_json(bytes_of(&fields(buf)?, 1))?,
        (_, "k8s.io.apimachinery.pkg.api.resource.Quantity") => {
            Value::String(utf8(bytes_of(&fields(buf)?, 1).unwrap_or_default())?)
        }
        (_, "k8s.io.apimachinery.pkg.util.intstr.IntOrString") => {
            let fs = fields(buf)?;
            if varint_of(&fs, 1) == 1 {
                Value::String(utf8(bytes_of(&fs, 3).unwrap_or_default())?)
            } else {
                Value::from(varint_of(&fs, 2) as i32)
            }
        }
        (_, "k8s.io.apimachinery.pkg.runtime.RawExtension")
        | (_, "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON") => {
            raw_json(bytes_of(&fields(buf)?, 1))?
        }
        (_, n) if n.ends_with(".JSONSchemaPropsOrArray") => {
            let fs = fields(buf)?;
            let schema_idx = kind_index(msg, 1)?;
            let many: Vec<Value> = fs
                .iter()
                .filter_map(|(t, v)| match v {
                    WireValue::Bytes(b) if *t == 2 => {
                        Some(decode_at(message(schema_idx), b, depth + 1))
                    }
                    _ => None,
                })
                .collect::<Result<_, _>>()?;
            if !many.is_empty() {
                Value::Array(many)
            } else {
                match bytes_of(&fs, 1) {
                    Some(b) => decode_at(message(schema_idx), b, depth + 1)?,
                    None => Value::Null,
                }
            }
        }
        (_, n) if n.ends_with(".JSONSchemaPropsOrBool") => {
            let fs = fields(buf)?;
            match bytes_of(&fs, 2) {
                Some(b) => decode_at(message(kind_index(msg, 2)?), b, depth + 1)?,
                None => Value::Bool(varint_of(&fs, 1) != 0),
            }
        }
        (_, n) if n.ends_with(".JSONSchemaPropsOrStringArray") => {
            let fs = fields(buf)?;
            let strings: Vec<Value> = fs
                .iter()
                .filter_map(|(t, v)| match v {
                    WireValue::Bytes(b) if *t == 2 => Some(utf8(b).map(Value::String)),
                    _ => None,
                })
                .collect::<Result<_, _>>()?;
            if !strings.is_empty() {
                Value::Array(strings)
            } else {
                match bytes_of(&fs, 1) {
                    Some(b) => decode_at(message(kind_index(msg, 1)?), b, depth + 1)?,
                    None => Value::Null,
                }
            }
        }
        (_, n) if is_string_list_wrapper(n) => Value::Array(
            fields(buf)?
                .iter()
                .filter_map(|(t, v)| match v {
                    WireValue::Bytes(b) if *t == 1 => Some(utf8(b).map(Value::String)),
                    _ => None,
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => return Ok(None),
    };
    Ok(Some(v))
}

fn kind_index(msg: &Message, tag: u32) -> Result<usize, ProtoError> {
    match msg.field(tag).map(|f| f.kind) {
        Some(Kind::Message(i)) => Ok(i),
        _ => Err(malformed(format!(
            "{} has no message field {tag}",
            msg.name
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// Encoding (JSON -> protobuf): for protobuf responses and for checking the table against
// the reference types.

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    put_varint(out, ((tag as u64) << 3) | wire as u64);
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
    put_key(out, tag, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn type_error(field: &str, want: &str) -> ProtoError {
    malformed(format!("field {field}: expected {want}"))
}

pub fn encode_message(msg: &'static Message, value: &Value) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::new();
    encode_into(msg, value, &mut out, 0)?;
    Ok(out)
}

fn parse_rfc3339(s: &str) -> Result<(i64, i64), ProtoError> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| malformed(format!("invalid time {s:?}")))?;
    Ok((t.unix_timestamp(), t.nanosecond() as i64))
}

fn encode_special(
    msg: &'static Message,
    v: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<bool, ProtoError> {
    let name = msg.name;
    let short = name.strip_prefix(META);
    match (short, name) {
        (Some("Time" | "MicroTime"), _) => {
            let s = v
                .as_str()
                .ok_or_else(|| type_error(name, "an RFC 3339 string"))?;
            let (secs, nanos) = parse_rfc3339(s)?;
            put_key(out, 1, 0);
            put_varint(out, secs as u64);
            if nanos != 0 {
                put_key(out, 2, 0);
                put_varint(out, nanos as u64);
            }
        }
        (Some("FieldsV1"), _)
        | (_, "k8s.io.apimachinery.pkg.runtime.RawExtension")
        | (_, "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON") => {
            put_bytes(out, 1, &serde_json::to_vec(v).unwrap());
        }
        (_, "k8s.io.apimachinery.pkg.api.resource.Quantity") => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(type_error(name, "a quantity")),
            };
            put_bytes(out, 1, s.as_bytes());
        }
        (_, "k8s.io.apimachinery.pkg.util.intstr.IntOrString") => match v {
            Value::String(s) => {
                put_key(out, 1, 0);
                put_varint(out, 1);
                put_bytes(out, 3, s.as_bytes());
            }
            Value::Number(n) => {
                put_key(out, 1, 0);
                put_varint(out, 0);
                put_key(out, 2, 0);
                put_varint(out, n.as_i64().unwrap_or(0) as u64);
            }
            _ => return Err(type_error(name, "an integer or a string")),
        },
        (_, n) if n.ends_with(".JSONSchemaPropsOrArray") => {
            let idx = kind_index(msg, 1)?;
            match v {
                Value::Array(items) => {
                    for i in items {
                        let mut b = Vec::new();
                        encode_into(message(idx), i, &mut b, depth + 1)?;
                        put_bytes(out, 2, &b);
                    }
                }
                other => {
                    let mut b = Vec::new();
                    encode_into(message(idx), other, &mut b, depth + 1)?;
                    put_bytes(out, 1, &b);
                }
            }
        }
        (_, n) if n.ends_with(".JSONSchemaPropsOrBool") => match v {
            Value::Bool(b) => {
                put_key(out, 1, 0);
                put_varint(out, *b as u64);
            }
            other => {
                put_key(out, 1, 0);
                put_varint(out, 1);
                let mut b = Vec::new();
                encode_into(message(kind_index(msg, 2)?), other, &mut b, depth + 1)?;
                put_bytes(out, 2, &b);
            }
        },
        (_, n) if n.ends_with(".JSONSchemaPropsOrStringArray") => match v {
            Value::Array(items) => {
                for i in items {
                    put_bytes(
                        out,
                        2,
                        i.as_str()
                            .ok_or_else(|| type_error(n, "strings"))?
                            .as_bytes(),
                    );
                }
            }
            other => {
                let mut b = Vec::new();
                encode_into(message(kind_index(msg, 1)?), other, &mut b, depth + 1)?;
                put_bytes(out, 1, &b);
            }
        },
        (_, n) if is_string_list_wrapper(n) => {
            for i in v
                .as_array()
                .ok_or_else(|| type_error(n, "a list of strings"))?
            {
                put_bytes(
                    out,
                    1,
                    i.as_str()
                        .ok_or_else(|| type_error(n, "strings"))?
                        .as_bytes(),
                );
            }
        }
        (Some("Duration"), _) => {
            return Err(malformed("encoding durations is not supported"));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn encode_into(
    msg: &'static Message,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), ProtoError> {
    if depth > MAX_DEPTH {
        return Err(malformed("nesting too deep"));
    }
    if encode_special(msg, value, out, depth)? {
        return Ok(());
    }
    let obj = value
        .as_object()
        .ok_or_else(|| type_error(msg.name, "an object"))?;
    for field in msg.fields {
        let Some(v) = obj.get(field.json) else {
            continue;
        };
        if v.is_null() {
            continue;
        }
        match field.card {
            Card::Optional => encode_value(field, v, out, depth)?,
            Card::Repeated => {
                for item in v
                    .as_array()
                    .ok_or_else(|| type_error(field.json, "a list"))?
                {
                    encode_value(field, item, out, depth)?;
                }
            }
            Card::Map => {
                for (k, item) in v
                    .as_object()
                    .ok_or_else(|| type_error(field.json, "a map"))?
                {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, k.as_bytes());
                    let value_field = Field {
                        tag: 2,
                        json: field.json,
                        kind: field.kind,
                        card: Card::Optional,
                    };
                    encode_value(&value_field, item, &mut entry, depth)?;
                    put_bytes(out, field.tag, &entry);
                }
            }
        }
    }
    Ok(())
}

fn encode_value(
    field: &Field,
    v: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), ProtoError> {
    let tag = field.tag;
    match field.kind {
        Kind::String => put_bytes(
            out,
            tag,
            v.as_str()
                .ok_or_else(|| type_error(field.json, "a string"))?
                .as_bytes(),
        ),
        Kind::Bytes => {
            let s = v
                .as_str()
                .ok_or_else(|| type_error(field.json, "base64 bytes"))?;
            let b = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| type_error(field.json, "base64 bytes"))?;
            put_bytes(out, tag, &b);
        }
        Kind::Int32 | Kind::Int64 => {
            let n = v
                .as_i64()
                .ok_or_else(|| type_error(field.json, "an integer"))?;
            put_key(out, tag, 0);
            put_varint(out, n as u64);
        }
        Kind::Bool => {
            put_key(out, tag, 0);
            put_varint(
                out,
                v.as_bool()
                    .ok_or_else(|| type_error(field.json, "a boolean"))? as u64,
            );
        }
        Kind::Double => {
            put_key(out, tag, 1);
            out.extend_from_slice(
                &v.as_f64()
                    .ok_or_else(|| type_error(field.json, "a number"))?
                    .to_le_bytes(),
            );
        }
        Kind::Message(i) => {
            let mut b = Vec::new();
            encode_into(message(i), v, &mut b, depth + 1)?;
            put_bytes(out, tag, &b);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
    }
}
