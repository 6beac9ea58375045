//! Descriptor types for the generated table, and lookups.

use crate::table::{MESSAGES, RESOURCES};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Bytes,
    Int32,
    Int64,
    Bool,
    Double,
    /// A message: index into [`MESSAGES`].
    Message(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    Optional,
    Repeated,
    /// `map<string, kind>`: repeated entries with the key at tag 1 and the value at tag 2.
    Map,
}

#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    /// The JSON field name.
    pub json: &'static str,
    pub kind: Kind,
    pub card: Card,
}

#[derive(Debug)]
pub struct Message {
    /// Full protobuf name, e.g. `k8s.io.api.core.v1.Pod`.
    pub name: &'static str,
    /// Sorted by tag.
    pub fields: &'static [Field],
}

impl Message {
    pub fn field(&self, tag: u32) -> Option<&'static Field> {
        self.fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| &self.fields[i])
    }

    pub fn field_by_json(&self, json: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.json == json)
    }
}

pub fn message(index: usize) -> &'static Message {
    &MESSAGES[index]
}

pub fn message_by_name(name: &str) -> Option<&'static Message> {
    MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .map(|i| &MESSAGES[i])
}

/// The protobuf package of an API group-version.
pub fn package(group: &str, version: &str) -> String {
    let base = match group {
        "" => "k8s.io.api.core".to_string(),
        "meta.k8s.io" => "k8s.io.apimachinery.pkg.apis.meta".to_string(),
        "apiextensions.k8s.io" => {
            "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions".to_string()
        }
        "apiregistration.k8s.io" => "k8s.io.kube_aggregator.pkg.apis.apiregistration".to_string(),
        "rbac.authorization.k8s.io" => "k8s.io.api.rbac".to_string(),
        "flowcontrol.apiserver.k8s.io" => "k8s.io.api.flowcontrol".to_string(),
        g => format!("k8s.io.api.{}", g.trim_end_matches(".k8s.io")),
    };
    format!("{base}.{version}")
}

/// The message for an `apiVersion` and `kind`, as announced in an envelope.
pub fn message_for(api_version: &str, kind: &str) -> Option<&'static Message> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if let Some((_, _, _, i)) = RESOURCES
        .iter()
        .find(|(g, v, k, _)| *g == group && *v == version && *k == kind)
    {
        return Some(&MESSAGES[*i]);
    }
    message_by_name(&format!("{}.{kind}", package(group, version))).or_else(|| {
        // Options types (DeleteOptions, ...) are sent with the caller's group-version.
        message_by_name(&format!("k8s.io.apimachinery.pkg.apis.meta.v1.{kind}"))
    })
}
