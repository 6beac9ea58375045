//! Name, label and annotation validation with upstream's messages
//! (`k8s.io/apimachinery/pkg/util/validation` and `.../api/validation`).
//!
//! Every function returns the list of problems as upstream words them (empty = valid);
//! callers wrap them in field causes (`Invalid value: "x": <message>`).

use crate::registry::NameRule;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

pub const DNS1123_LABEL_MAX: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
pub const QUALIFIED_NAME_MAX: usize = 63;
pub const LABEL_VALUE_MAX: usize = 63;
/// Upstream's `TotalAnnotationSizeLimitB`: 256 KiB over all keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// upstream's `RegexError`: the message, examples and the regex.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let ex: Vec<String> = examples.iter().map(|e| format!("'{e}'")).collect();
    format!(
        "{msg} (e.g. {}, regex used for validation is '{fmt}')",
        ex.join(",  or ")
    )
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

fn matches_dns1035_label(s: &str) -> bool {
    matches_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `IsDNS1123Label`.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1035Label`.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `IsValidPathSegmentName`.
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    for bad in [".", ".."] {
        if name == bad {
            return vec![format!("may not be '{bad}'")];
        }
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if name.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// upstream's `maskTrailingDash`: a `generateName` prefix may end in '-'.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        format!("{}a", &name[..name.len() - 1])
    } else {
        name.to_string()
    }
}

/// Validate `metadata.name` under a resource's rule (`ValidateNameFunc` with prefix=false).
pub fn validate_name(rule: NameRule, name: &str) -> Vec<String> {
    match rule {
        NameRule::Subdomain => is_dns1123_subdomain(name),
        NameRule::Label => is_dns1123_label(name),
        NameRule::PathSegment => is_valid_path_segment_name(name),
    }
}

/// Validate a `metadata.generateName` prefix (`ValidateNameFunc` with prefix=true).
pub fn validate_generate_name(rule: NameRule, prefix: &str) -> Vec<String> {
    match rule {
        NameRule::Subdomain => is_dns1123_subdomain(&mask_trailing_dash(prefix)),
        NameRule::Label => is_dns1123_label(&mask_trailing_dash(prefix)),
        NameRule::PathSegment => {
            let mut errs = Vec::new();
            for bad in ["/", "%"] {
                if prefix.contains(bad) {
                    errs.push(format!("may not contain '{bad}'"));
                }
            }
            errs
        }
    }
}

/// Service names: upstream's `ValidateServiceName` is an RFC 1035 label (must start with a
/// letter), stricter than the table's `Label` rule.
pub fn validate_service_name(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1035_label(&mask_trailing_dash(name))
    } else {
        is_dns1035_label(name)
    }
}

/// `IsQualifiedName`: label keys, annotation keys (lower-cased), finalizer names.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            )]
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// A label key (`IsLabelKey` = `IsQualifiedName`).
pub fn validate_label_key(key: &str) -> Vec<String> {
    is_qualified_name(key)
}

/// `IsValidLabelValue`.
pub fn validate_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// A field problem in upstream's shape, for callers building `status::Cause`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// `FieldValueInvalid` or `FieldValueTooLong`.
    pub reason: &'static str,
    /// `metadata.labels`, `metadata.annotations`.
    pub field: String,
    /// The full message as upstream's `field.Error.ErrorBody()` renders it.
    pub message: String,
}

/// `ValidateLabels`: every key a qualified name, every value a label value. Keys are
/// checked in sorted order so the result is deterministic.
pub fn validate_labels(
    labels: &serde_json::Map<String, serde_json::Value>,
    field: &str,
) -> Vec<FieldError> {
    let mut keys: Vec<&String> = labels.keys().collect();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        for m in validate_label_key(k) {
            out.push(invalid(field, k, &m));
        }
        match labels[k.as_str()].as_str() {
            Some(v) => {
                for m in validate_label_value(v) {
                    out.push(invalid(field, v, &m));
                }
            }
            None => out.push(invalid(field, k, "label values must be strings")),
        }
    }
    out
}

/// `ValidateAnnotations`: keys are qualified names once lower-cased; the total size of keys
/// and values is at most 256 KiB.
pub fn validate_annotations(
    annotations: &serde_json::Map<String, serde_json::Value>,
    field: &str,
) -> Vec<FieldError> {
    let mut keys: Vec<&String> = annotations.keys().collect();
    keys.sort();
    let mut out = Vec::new();
    let mut total = 0usize;
    for k in keys {
        for m in is_qualified_name(&k.to_lowercase()) {
            out.push(invalid(field, k, &m));
        }
        total += k.len() + annotations[k.as_str()].as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        out.push(FieldError {
            reason: "FieldValueTooLong",
            field: field.to_string(),
            message: format!("Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
        });
    }
    out
}

fn invalid(field: &str, value: &str, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field: field.to_string(),
        message: format!("Invalid value: {}: {detail}", go_quote(value)),
    }
}

/// Go's `%q` for the strings we print (printable ASCII passes through).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subdomain_messages_match_upstream() {
        assert!(validate_name(NameRule::Subdomain, "my-app.example").is_empty());
        assert_eq!(
            validate_name(NameRule::Subdomain, "Bad_Name"),
            vec!["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
        );
        let long = "a".repeat(254);
        assert_eq!(
            validate_name(NameRule::Subdomain, &long),
            vec!["must be no more than 253 characters"]
        );
        assert!(!validate_name(NameRule::Subdomain, "a..b").is_empty());
        assert!(!validate_name(NameRule::Subdomain, "-a").is_empty());
    }

    #[test]
    fn label_messages_match_upstream() {
        assert!(validate_name(NameRule::Label, "kube-system").is_empty());
        assert_eq!(
            validate_name(NameRule::Label, "a.b"),
            vec!["must not contain dots"]
        );
        assert_eq!(
            validate_name(NameRule::Label, "Foo"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert_eq!(
            validate_name(NameRule::Label, &"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn service_names_are_dns1035() {
        assert!(validate_service_name("web", false).is_empty());
        assert_eq!(
            validate_service_name("1web", false),
            vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert!(validate_service_name("web-", true).is_empty());
    }

    #[test]
    fn path_segments() {
        assert!(validate_name(NameRule::PathSegment, "system:controller:foo").is_empty());
        assert_eq!(
            validate_name(NameRule::PathSegment, ".."),
            vec!["may not be '..'"]
        );
        assert_eq!(
            validate_name(NameRule::PathSegment, "a/b%c"),
            vec!["may not contain '/'", "may not contain '%'"]
        );
    }

    #[test]
    fn generate_name_allows_trailing_dash() {
        assert!(validate_generate_name(NameRule::Subdomain, "web-").is_empty());
        assert!(!validate_generate_name(NameRule::Subdomain, "Web-").is_empty());
        assert!(!validate_generate_name(NameRule::PathSegment, "a/").is_empty());
    }

    #[test]
    fn qualified_names() {
        assert!(validate_label_key("app.kubernetes.io/name").is_empty());
        assert!(validate_label_key("app").is_empty());
        assert_eq!(
            validate_label_key("/app"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(
            validate_label_key("a/b/c"),
            vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
        );
        let errs = validate_label_key("Example.com/-x");
        assert_eq!(errs.len(), 2);
        assert!(errs[0].starts_with("prefix part a lowercase RFC 1123 subdomain"));
        assert!(errs[1].starts_with("name part must consist of alphanumeric"));
        assert_eq!(
            validate_label_key("app/"),
            vec![
                "name part must be non-empty".to_string(),
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string()
            ]
        );
    }

    #[test]
    fn label_values() {
        assert!(validate_label_value("").is_empty());
        assert!(validate_label_value("v1.2_x-y").is_empty());
        assert_eq!(
            validate_label_value("-bad"),
            vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]
        );
        assert_eq!(validate_label_value(&"a".repeat(64)).len(), 1);
    }

    #[test]
    fn labels_and_annotations() {
        let labels = json!({"app": "web", "bad key": "x", "tier": "-"});
        let errs = validate_labels(labels.as_object().unwrap(), "metadata.labels");
        assert_eq!(errs.len(), 2);
        assert!(errs[0]
            .message
            .starts_with("Invalid value: \"bad key\": name part"));
        assert!(errs[1]
            .message
            .starts_with("Invalid value: \"-\": a valid label"));
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let ann = json!({"Example.com/Note": "ok", "big": big});
        let errs = validate_annotations(ann.as_object().unwrap(), "metadata.annotations");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, "FieldValueTooLong");
        assert_eq!(
            errs[0].message,
            "Too long: may not be more than 262144 bytes"
        );
    }
}
