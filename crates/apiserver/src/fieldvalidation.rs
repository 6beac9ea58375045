//! `fieldValidation=Ignore|Warn|Strict`: unknown and duplicate fields in request bodies.
//!
//! Upstream decodes into Go structs, so fields the schema does not declare are dropped
//! whatever the directive; `Warn` (the default when the parameter is absent) adds one
//! `Warning: 299 - "..."` header per problem and `Strict` refuses the request with a 400
//! whose message is upstream's strict decoding error:
//!
//! * create/update: `Deployment in version "v1" cannot be handled as a Deployment: strict
//!   decoding error: unknown field "spec.foo", duplicate field "spec.replicas"`;
//! * patch: `strict decoding error: unknown field "spec.foo"` (duplicates are looked for in
//!   the patch body, unknown fields in the patched object).
//!
//! Paths are upstream's: dotted field names with `[i]` for list items. Errors come in
//! document order; an unknown field repeated is reported once, as unknown.
//!
//! The schemas are the OpenAPI v3 components of `skiff-openapi`, parsed once. Custom
//! resources use their CRD's structural schema (`crate::crd::unknown_fields`) for create and
//! update bodies; protobuf bodies are left alone (they cannot carry unknown fields).
//!
//! Warnings are collected per request in a task-local (upstream's warning recorder in the
//! request context), so handlers deep in the call chain can add them; [`scope`] turns them
//! into headers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use skiff_api::registry::Resource;
use skiff_api::status::Status;

use crate::negotiate::BodyFormat;
use crate::Resp;

/// The `fieldValidation` directive of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    Ignore,
    Warn,
    Strict,
}

impl Directive {
    /// Upstream's default, when the parameter is absent or empty, is `Warn`.
    pub fn parse(v: Option<&str>) -> Directive {
        match v {
            Some("Ignore") => Directive::Ignore,
            Some("Strict") => Directive::Strict,
            _ => Directive::Warn,
        }
    }
}

struct RequestState {
    directive: Directive,
    warnings: Vec<String>,
    /// Duplicate fields found in a merge or strategic merge patch body.
    patch_duplicates: Vec<String>,
    /// Warnings of the last patch attempt (a read-modify-write may retry).
    patch_warnings: Vec<String>,
}

tokio::task_local! {
    static STATE: RefCell<RequestState>;
}

/// Runs one request with its directive and adds the warnings it collected as `Warning`
/// headers (`299 - "text"`, as upstream's `NewWarningHeader`).
pub async fn scope(field_validation: Option<&str>, f: impl Future<Output = Resp>) -> Resp {
    let state = RefCell::new(RequestState {
        directive: Directive::parse(field_validation),
        warnings: Vec::new(),
        patch_duplicates: Vec::new(),
        patch_warnings: Vec::new(),
    });
    let (mut resp, state) = STATE
        .scope(state, async {
            let resp = f.await;
            let state = STATE.with(|s| {
                let mut s = s.borrow_mut();
                let mut w = std::mem::take(&mut s.warnings);
                w.append(&mut s.patch_warnings);
                w
            });
            (resp, state)
        })
        .await;
    let mut seen = std::collections::HashSet::new();
    for w in state {
        if !seen.insert(w.clone()) {
            continue;
        }
        if let Ok(v) = http::HeaderValue::from_str(&warning_header(&w)) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}

/// `299 - "text"` with `"` and `\` escaped (upstream's `makeQuotedString`); characters a
/// header cannot carry become spaces.
pub fn warning_header(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 10);
    out.push_str("299 - \"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c == '\t' || (' '..='~').contains(&c) => out.push(c),
            _ => out.push(' '),
        }
    }
    out.push('"');
    out
}

fn directive() -> Directive {
    STATE
        .try_with(|s| s.borrow().directive)
        .unwrap_or(Directive::Ignore)
}

/// Adds a warning to the current request (no-op outside a request).
pub fn add_warning(text: impl Into<String>) {
    let text = text.into();
    let _ = STATE.try_with(|s| s.borrow_mut().warnings.push(text));
}

/// Every schema of every group-version document, by definition name.
fn schemas() -> &'static HashMap<String, Value> {
    static INDEX: OnceLock<HashMap<String, Value>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut all = HashMap::new();
        for (g, v) in skiff_openapi::group_versions() {
            let doc: Value = match serde_json::from_slice(skiff_openapi::components_for(g, v)) {
                Ok(d) => d,
                Err(_) => continue,
            };
            if let Some(Value::Object(s)) = doc.get("schemas") {
                for (name, schema) in s {
                    all.entry(name.clone()).or_insert_with(|| schema.clone());
                }
            }
        }
        all
    })
}

/// The schema of a served kind, if Skiff has one.
pub fn kind_schema(group: &str, version: &str, kind: &str) -> Option<&'static Value> {
    schema_named(skiff_openapi::definition_for_kind(group, version, kind)?)
}

fn schema_named(definition: &str) -> Option<&'static Value> {
    schemas().get(definition)
}

/// What a schema allows in a value.
enum Node<'a> {
    Struct(&'a Map<String, Value>),
    Array(&'a Value),
    Map(&'a Value),
    /// Anything goes (free-form objects, scalars, preserved unknown fields).
    Free,
}

fn node(schema: &Value) -> Node<'_> {
    let mut s = schema;
    for _ in 0..8 {
        if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
            return Node::Free;
        }
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            match r
                .strip_prefix("#/components/schemas/")
                .and_then(schema_named)
            {
                Some(t) => {
                    s = t;
                    continue;
                }
                None => return Node::Free,
            }
        }
        if let Some([one]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            s = one;
            continue;
        }
        break;
    }
    if let Some(Value::Object(p)) = s.get("properties") {
        return Node::Struct(p);
    }
    if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        return Node::Array(items);
    }
    if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
        return Node::Map(ap);
    }
    Node::Free
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes the fields `schema` does not declare from `value`, recording
/// `unknown field "path"` for each.
pub fn prune(schema: &Value, value: &mut Value, path: &str, errs: &mut Vec<String>) {
    match (node(schema), value) {
        (Node::Struct(props), Value::Object(m)) => {
            m.retain(|k, v| match props.get(k) {
                Some(s) => {
                    prune(s, v, &join(path, k), errs);
                    true
                }
                None => {
                    errs.push(format!("unknown field \"{}\"", join(path, k)));
                    false
                }
            });
        }
        (Node::Map(s), Value::Object(m)) => {
            for (k, v) in m.iter_mut() {
                prune(s, v, &join(path, k), errs);
            }
        }
        (Node::Array(s), Value::Array(items)) => {
            for (i, v) in items.iter_mut().enumerate() {
                prune(s, v, &format!("{path}[{i}]"), errs);
            }
        }
        _ => {}
    }
}

/// A pass over a JSON document that reports unknown and duplicate fields in document
/// order, as upstream's strict decoder does. `schema: None` checks duplicates only.
struct Scan<'a> {
    schema: Option<&'a Value>,
    path: String,
    errs: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let items = match self.schema.map(node) {
            Some(Node::Array(s)) => Some(s),
            Some(_) => None,
            None => None,
        };
        let mut i = 0;
        loop {
            let seed = Scan {
                schema: items,
                path: format!("{}[{i}]", self.path),
                errs: self.errs,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let n = self.schema.map(node);
        let mut seen: Vec<String> = Vec::new();
        let mut unknown: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            let child = match &n {
                Some(Node::Struct(props)) => match props.get(&key) {
                    Some(s) => Some(s),
                    None => {
                        if !unknown.contains(&key) {
                            self.errs
                                .borrow_mut()
                                .push(format!("unknown field \"{path}\""));
                            unknown.push(key);
                        }
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                },
                Some(Node::Map(s)) => Some(*s),
                _ => None,
            };
            if seen.contains(&key) {
                self.errs
                    .borrow_mut()
                    .push(format!("duplicate field \"{path}\""));
            } else {
                seen.push(key);
            }
            map.next_value_seed(Scan {
                schema: child,
                path,
                errs: self.errs,
            })?;
        }
        Ok(())
    }
}

/// Unknown and duplicate fields of a JSON document, in document order.
pub fn scan_json(schema: Option<&Value>, body: &[u8]) -> Vec<String> {
    let errs = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Scan {
        schema,
        path: String::new(),
        errs: &errs,
    }
    .deserialize(&mut de);
    errs.into_inner()
}

/// The hook for create and update bodies, after they decoded into `obj`: applies the
/// directive and drops unknown fields.
pub fn decoded(
    res: &Resource,
    mut obj: Value,
    body: &Bytes,
    fmt: BodyFormat,
) -> Result<Value, Status> {
    let Some(schema) = kind_schema(res.group, res.version, res.kind) else {
        return custom_resource(res, obj);
    };
    if !matches!(fmt, BodyFormat::Json | BodyFormat::Yaml) {
        return Ok(obj);
    }
    let d = directive();
    let mut unknown = Vec::new();
    prune(schema, &mut obj, "", &mut unknown);
    if d == Directive::Ignore || unknown.is_empty() && fmt == BodyFormat::Yaml {
        return Ok(obj);
    }
    let errs = if fmt == BodyFormat::Json {
        scan_json(Some(schema), body)
    } else {
        unknown
    };
    if errs.is_empty() {
        return Ok(obj);
    }
    match d {
        Directive::Strict => Err(Status::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            res.kind,
            res.version,
            res.kind,
            errs.join(", ")
        ))),
        _ => {
            let _ = STATE.try_with(|s| s.borrow_mut().warnings.extend(errs));
            Ok(obj)
        }
    }
}

/// Custom resources: the unknown fields are those their CRD's structural schema prunes
/// (`crate::crd` drops them later whatever the directive).
fn custom_resource(res: &Resource, obj: Value) -> Result<Value, Status> {
    let d = directive();
    if d == Directive::Ignore {
        return Ok(obj);
    }
    let Some(unknown) = crate::crd::unknown_fields(res, &obj) else {
        return Ok(obj);
    };
    if unknown.is_empty() {
        return Ok(obj);
    }
    let errs: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    if d == Directive::Strict {
        return Err(Status::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            res.kind,
            res.version,
            res.kind,
            errs.join(", ")
        )));
    }
    let _ = STATE.try_with(|s| s.borrow_mut().warnings.extend(errs));
    Ok(obj)
}

/// The hook for a patched custom resource: the fields its CRD's schema prunes are unknown.
pub fn patched_custom_resource(res: &Resource, obj: &Value) -> Result<(), Status> {
    let d = directive();
    if d == Directive::Ignore {
        return Ok(());
    }
    let Some(unknown) = crate::crd::unknown_fields(res, obj) else {
        return Ok(());
    };
    let mut errs = STATE
        .try_with(|s| s.borrow().patch_duplicates.clone())
        .unwrap_or_default();
    errs.extend(unknown.iter().map(|p| format!("unknown field \"{p}\"")));
    if errs.is_empty() {
        return Ok(());
    }
    if d == Directive::Strict {
        return Err(Status::bad_request(format!(
            "strict decoding error: {}",
            errs.join(", ")
        )));
    }
    let _ = STATE.try_with(|s| s.borrow_mut().patch_warnings = errs);
    Ok(())
}

/// The hook for merge and strategic merge patch bodies: remembers their duplicate fields.
pub fn patch_body(body: &[u8]) {
    if directive() == Directive::Ignore {
        return;
    }
    let dups = scan_json(None, body);
    let _ = STATE.try_with(|s| s.borrow_mut().patch_duplicates = dups);
}

/// The hook for a patched object (`definition` is its schema's name): drops unknown
/// fields and applies the directive to them and to the patch body's duplicates.
pub fn patched(definition: Option<&str>, obj: &mut Value) -> Result<(), Status> {
    let Some(schema) = definition.and_then(schema_named) else {
        return Ok(());
    };
    let mut errs = STATE
        .try_with(|s| s.borrow().patch_duplicates.clone())
        .unwrap_or_default();
    prune(schema, obj, "", &mut errs);
    let d = directive();
    if errs.is_empty() || d == Directive::Ignore {
        return Ok(());
    }
    if d == Directive::Strict {
        return Err(Status::bad_request(format!(
            "strict decoding error: {}",
            errs.join(", ")
        )));
    }
    let _ = STATE.try_with(|s| s.borrow_mut().patch_warnings = errs);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> &'static Value {
        kind_schema("apps", "v1", "Deployment").expect("Deployment has a schema")
    }

    #[test]
    fn unknown_and_duplicate_fields_in_document_order() {
        let body = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","name":"b","bogus":1},
            "spec":{"foo":1,"foo":2,"replicas":1,"replicas":2,"template":{"spec":{"containers":[{"name":"c","image":"i","nope":true}]}}}}"#;
        assert_eq!(
            scan_json(Some(deployment()), body),
            vec![
                r#"duplicate field "metadata.name""#,
                r#"unknown field "metadata.bogus""#,
                r#"unknown field "spec.foo""#,
                r#"duplicate field "spec.replicas""#,
                r#"unknown field "spec.template.spec.containers[0].nope""#,
            ]
        );
    }

    #[test]
    fn prune_drops_unknown_fields_and_keeps_free_form_ones() {
        let mut v = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "labels": {"x": "y"}, "annotations": {"a": "b"}},
            "spec": {"foo": 1, "selector": {"matchLabels": {"app": "a"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
                "template": {"spec": {"containers": [{"name": "c", "bar": 1,
                    "resources": {"limits": {"cpu": "1"}}}]}}}
        });
        let mut errs = Vec::new();
        prune(deployment(), &mut v, "", &mut errs);
        assert_eq!(
            errs,
            vec![
                r#"unknown field "spec.foo""#,
                r#"unknown field "spec.template.spec.containers[0].bar""#
            ]
        );
        assert!(v["spec"].get("foo").is_none());
        assert_eq!(v["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(
            v["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "1"
        );
        assert_eq!(v["metadata"]["labels"]["x"], "y");
    }

    #[test]
    fn every_served_kind_keeps_its_own_example_fields() {
        // A CRD's schema holds free-form JSON (default, example): nothing under it is unknown.
        let crd = kind_schema("apiextensions.k8s.io", "v1", "CustomResourceDefinition").unwrap();
        let mut v = serde_json::json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object", "default": {"anything": 1}, "properties": {"spec": {"type": "object",
            "x-kubernetes-preserve-unknown-fields": true}}}}}]}});
        let before = v.clone();
        let mut errs = Vec::new();
        prune(crd, &mut v, "", &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(v, before);
    }

    #[test]
    fn warning_headers_quote_like_upstream() {
        assert_eq!(
            warning_header(r#"unknown field "spec.foo""#),
            r#"299 - "unknown field \"spec.foo\"""#
        );
    }
}
