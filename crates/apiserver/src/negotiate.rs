//! Content negotiation: which representation the client accepts, and how a body is encoded.

use bytes::Bytes;
use serde_json::Value;
use skiff_api::status::Status;

/// What to send back for object and list responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `application/vnd.kubernetes.protobuf` (client-go's preference): objects and lists of
    /// built-in kinds as the `k8s\0` envelope; anything the codec has no schema for
    /// (custom resources, Tables) is sent as JSON, which such clients accept as well. Watch
    /// streams stay JSON.
    Protobuf,
    /// `meta.k8s.io` Table (v1 or v1beta1).
    Table {
        v1beta1: bool,
    },
    /// `meta.k8s.io` PartialObjectMetadata (List): only each object's metadata, what
    /// metadata informers (client-go's metadata client, kube-rs' `watch_metadata`) ask for.
    Metadata {
        v1beta1: bool,
    },
}

/// One media range of an `Accept` header.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MediaRange {
    pub mime: String,
    pub params: Vec<(String, String)>,
}

impl MediaRange {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn parse_accept(accept: &str) -> Vec<MediaRange> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let mime = it.next()?.trim().to_ascii_lowercase();
            if mime.is_empty() {
                return None;
            }
            let params = it
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                })
                .collect();
            Some(MediaRange { mime, params })
        })
        .collect()
}

pub fn output(accept: Option<&str>) -> Result<Output, Status> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    for r in parse_accept(accept) {
        match (r.mime.as_str(), r.param("as")) {
            ("application/json", Some("Table")) if r.param("g") == Some("meta.k8s.io") => {
                match r.param("v") {
                    Some("v1") => return Ok(Output::Table { v1beta1: false }),
                    Some("v1beta1") => return Ok(Output::Table { v1beta1: true }),
                    _ => continue,
                }
            }
            ("application/json", Some("PartialObjectMetadata" | "PartialObjectMetadataList"))
                if r.param("g") == Some("meta.k8s.io") =>
            {
                match r.param("v") {
                    Some("v1") => return Ok(Output::Metadata { v1beta1: false }),
                    Some("v1beta1") => return Ok(Output::Metadata { v1beta1: true }),
                    _ => continue,
                }
            }
            (_, Some(_)) => continue,
            (
                "application/json"
                | "application/*"
                | "*/*"
                | "application/json-patch+json"
                | "application/merge-patch+json",
                None,
            ) => return Ok(Output::Json),
            ("application/yaml", None) => return Ok(Output::Yaml),
            ("application/vnd.kubernetes.protobuf", None) => return Ok(Output::Protobuf),
            _ => continue,
        }
    }
    Err(Status::not_acceptable(accept))
}

/// Decoded request body formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    /// `application/vnd.kubernetes.protobuf`: the `k8s\0` envelope.
    Protobuf,
    Yaml,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
}

pub fn body_format(content_type: Option<&str>) -> Result<BodyFormat, Status> {
    let ct = content_type.unwrap_or("application/json");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Ok(match mime.as_str() {
        "application/json" | "" => BodyFormat::Json,
        "application/yaml" => BodyFormat::Yaml,
        "application/vnd.kubernetes.protobuf" => BodyFormat::Protobuf,
        "application/json-patch+json" => BodyFormat::JsonPatch,
        "application/merge-patch+json" => BodyFormat::MergePatch,
        "application/strategic-merge-patch+json" => BodyFormat::StrategicMergePatch,
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => BodyFormat::ApplyPatch,
        _ => return Err(Status::unsupported_media_type(ct)),
    })
}

/// Decodes a Kubernetes protobuf envelope into the object's JSON form.
pub fn decode_protobuf(bytes: &Bytes) -> Result<Value, Status> {
    skiff_proto::decode(bytes).map(|d| d.object).map_err(|e| {
        Status::bad_request(format!(
            "the body of the request could not be decoded as protobuf: {e}"
        ))
    })
}

/// Parses a JSON or YAML document into a JSON value, with a message that says what is wrong.
pub fn decode(bytes: &Bytes, yaml: bool) -> Result<Value, Status> {
    if yaml {
        let v: Value = serde_saphyr::from_slice(bytes)
            .map_err(|e| Status::bad_request(format!("error decoding YAML: {e}")))?;
        return Ok(v);
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Status::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })
}

pub fn encode(value: &Value, out: Output) -> (Vec<u8>, &'static str) {
    if out == Output::Protobuf {
        if let Ok(bytes) = skiff_proto::encode(value) {
            return (bytes, skiff_proto::MEDIA_TYPE);
        }
    }
    match out {
        Output::Yaml => (
            serde_saphyr::to_string(value)
                .unwrap_or_default()
                .into_bytes(),
            "application/yaml",
        ),
        _ => {
            let mut v = serde_json::to_vec(value).expect("JSON values serialise");
            v.push(b'\n');
            (v, "application/json")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_responses_for_built_in_kinds_json_otherwise() {
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "resourceVersion": "5"}, "data": {"a": "b"}});
        let (bytes, ct) = encode(&cm, Output::Protobuf);
        assert_eq!(ct, "application/vnd.kubernetes.protobuf");
        assert_eq!(skiff_proto::decode(&bytes).unwrap().object, cm);
        let list = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMapList",
            "metadata": {"resourceVersion": "5"}, "items": [cm]});
        let (bytes, ct) = encode(&list, Output::Protobuf);
        assert_eq!(ct, "application/vnd.kubernetes.protobuf");
        assert_eq!(
            skiff_proto::decode(&bytes).unwrap().object["items"][0]["data"]["a"],
            "b"
        );
        let cr = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget"});
        assert_eq!(encode(&cr, Output::Protobuf).1, "application/json");
    }

    #[test]
    fn kubectl_get_accept_header_picks_table() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(output(Some(a)).unwrap(), Output::Table { v1beta1: false });
        assert_eq!(
            output(Some("application/vnd.kubernetes.protobuf, */*")).unwrap(),
            Output::Protobuf
        );
        assert_eq!(
            output(Some(
                "application/json, application/vnd.kubernetes.protobuf"
            ))
            .unwrap(),
            Output::Json
        );
        assert_eq!(output(None).unwrap(), Output::Json);
        assert_eq!(output(Some("text/html")).unwrap_err().code, 406);
    }

    #[test]
    fn bad_bodies_are_400() {
        assert_eq!(
            decode(&Bytes::from_static(b"{nope"), false)
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            decode(&Bytes::from_static(b"a: [b"), true)
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            decode(
                &Bytes::from_static(b"kind: Pod\nmetadata:\n  name: x\n"),
                true
            )
            .unwrap()["metadata"]["name"],
            "x"
        );
        assert_eq!(body_format(Some("text/plain")).unwrap_err().code, 415);
    }
}
