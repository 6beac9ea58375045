//! `meta.k8s.io/v1` Status errors with upstream's reasons, codes and field order.
//!
//! Field order matters: clients (the Python client's tests among them) compare bytes, and
//! Go serialises struct fields in declaration order: kind, apiVersion, metadata, status,
//! message, reason, details, code.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cause {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field: String,
}

impl Cause {
    pub fn new(reason: &str, message: impl Into<String>, field: impl Into<String>) -> Self {
        Cause {
            reason: reason.into(),
            message: message.into(),
            field: field.into(),
        }
    }

    /// upstream's `field.Forbidden(field, detail)`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Cause::new("FieldValueForbidden", format!("Forbidden: {detail}"), field)
    }

    /// upstream's `field.NotSupported(field, value, supported)`; `value` is already in Go's
    /// `%q`/`%#v` form (`"Bogus"`, `[]string{"x"}`).
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> Self {
        let supported: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Cause::new(
            "FieldValueNotSupported",
            format!(
                "Unsupported value: {value}: supported values: {}",
                supported.join(", ")
            ),
            field,
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Details {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
    /// Serialise `"details":{}` even when every field is empty, as upstream's generic
    /// responses (unknown path, method not allowed) do.
    #[serde(skip)]
    pub always: bool,
}

impl Details {
    fn is_empty(&self) -> bool {
        *self == Details::default()
    }
}

/// A failure as the API reports it. `Display` is the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// Boxed: errors travel through many `Result`s and should stay small.
    pub details: Box<Details>,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Status {}

#[derive(Serialize)]
struct Wire<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: serde_json::Map<String, serde_json::Value>,
    status: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "Details::is_empty")]
    details: &'a Details,
    code: u16,
}

/// A resource identity for messages: `pods`, or `deployments.apps`.
pub fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

impl Status {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Status {
            code,
            reason,
            message: message.into(),
            details: Box::default(),
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.details.group = group.to_string();
        self.details.kind = kind.to_string();
        self.details.name = name.to_string();
        self
    }

    /// Compact JSON followed by a newline, as upstream writes it.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(&Wire {
            kind: "Status",
            api_version: "v1",
            metadata: Default::default(),
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: &self.details,
            code: self.code,
        })
        .expect("Status serialises");
        out.push(b'\n');
        out
    }

    /// A `"status":"Success"` Status (deletes of some resources return it).
    pub fn success_json(group: &str, kind: &str, name: &str, uid: &str) -> Vec<u8> {
        let details = Details {
            name: name.into(),
            group: group.into(),
            kind: kind.into(),
            uid: uid.into(),
            ..Default::default()
        };
        let mut out = serde_json::to_vec(&Wire {
            kind: "Status",
            api_version: "v1",
            metadata: Default::default(),
            status: "Success",
            message: "",
            reason: "",
            details: &details,
            code: 200,
        })
        .expect("Status serialises");
        out.push(b'\n');
        out
    }

    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Status::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, plural)),
        )
        .with_details(group, plural, name)
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Status::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, plural)),
        )
        .with_details(group, plural, name)
    }

    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Status::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(group, plural)
            ),
        )
        .with_details(group, plural, name)
    }

    /// 422 with field causes; `kind` is the Kind (`Pod`), as upstream reports it.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let summary = if summary.len() == 1 {
            summary[0].clone()
        } else {
            format!("[{}]", summary.join(", "))
        };
        let qualified_kind = qualified(group, kind);
        let mut s = Status::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {summary}"),
        )
        .with_details(group, kind, name);
        s.details.causes = causes;
        s
    }

    /// A request option (`dryRun`, `propagationPolicy`, `resourceVersionMatch`, ...) that
    /// upstream's options validation rejects: 422 on `meta.k8s.io` `kind` (`ListOptions`,
    /// `CreateOptions`, `DeleteOptions`, ...), with one cause per problem.
    pub fn invalid_options(kind: &str, causes: Vec<Cause>) -> Self {
        Status::invalid("meta.k8s.io", kind, "", causes)
    }

    /// upstream's answer for a path no route serves (go-restful's 404), byte for byte.
    pub fn path_not_found() -> Self {
        let mut s = Status::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        s.details.always = true;
        s
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Status::new(400, "BadRequest", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Status::new(410, "Expired", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Status::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Status::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf; got {content_type:?}"),
        )
    }

    pub fn not_acceptable(accept: &str) -> Self {
        Status::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io; got {accept:?}"),
        )
    }

    pub fn too_large() -> Self {
        Status::new(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        )
    }

    pub fn unauthorized() -> Self {
        Status::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Status::new(403, "Forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Status::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Status::new(503, "ServiceUnavailable", message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Status::new(504, "Timeout", message)
    }

    /// upstream's `NewTooLargeResourceVersionError`: a read at a revision the server has not
    /// reached. client-go recognises it by the `ResourceVersionTooLarge` cause and re-lists.
    pub fn too_large_resource_version(requested: i64, current: i64) -> Self {
        let mut s = Status::timeout(format!(
            "Timeout: Too large resource version: {requested}, current: {current}"
        ));
        s.details.causes = vec![Cause::new(
            "ResourceVersionTooLarge",
            "Too large resource version",
            "",
        )];
        s.details.retry_after_seconds = Some(1);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_upstream_bytes() {
        let s = Status::not_found("", "pods", "nope");
        assert_eq!(
            String::from_utf8(s.to_json()).unwrap(),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"nope\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"nope\",\"kind\":\"pods\"},\"code\":404}\n"
        );
    }

    #[test]
    fn unknown_path_matches_upstream_bytes() {
        assert_eq!(
            String::from_utf8(Status::path_not_found().to_json()).unwrap(),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"the server could not find the requested resource\",\"reason\":\"NotFound\",\"details\":{},\"code\":404}\n"
        );
    }

    #[test]
    fn invalid_options_read_like_upstream() {
        let s = Status::invalid_options(
            "DeleteOptions",
            vec![Cause::not_supported(
                "propagationPolicy",
                "\"Bogus\"",
                &["Foreground", "Background", "Orphan", "nil"],
            )],
        );
        assert_eq!(s.code, 422);
        assert_eq!(
            s.message,
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Bogus\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        );
    }

    #[test]
    fn invalid_lists_causes() {
        let s = Status::invalid(
            "",
            "ConfigMap",
            "Bad_Name",
            vec![Cause::new("FieldValueInvalid", "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", "metadata.name")],
        );
        assert_eq!(s.code, 422);
        assert!(s
            .message
            .starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value"));
    }
}
