//! The kinds Skiff serves, as k8s-openapi types.
//!
//! One entry per row of `skiff_api::registry::RESOURCES` (the crate's tests check that every
//! row has one), plus the kinds that subresources answer with (`Scale`, `Eviction`,
//! `TokenRequest`) and the `meta/v1` kinds every group-version's paths refer to.
//! Group, version and kind come from k8s-openapi's `Resource` impls, so they cannot drift
//! from the schema; the definition name is derived from the Rust type path and checked
//! against the schema name k8s-openapi reports.

use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use k8s_openapi::{ListableResource, Resource};

/// A kind whose schema is a root of one or more per-group-version documents.
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The definition name (`io.k8s.api.core.v1.Pod`).
    pub definition: String,
    /// `PodList` for kinds with a list form.
    pub list_kind: Option<&'static str>,
    /// The group-versions whose documents include this kind (its own when it is served
    /// there; the parents' for subresource kinds).
    pub docs: Vec<(&'static str, &'static str)>,
}

/// Kinds every per-group-version document includes: the responses and request bodies
/// of the generic operations (`Status`, `DeleteOptions`, `Patch`, `WatchEvent`) and the
/// group-version's resource list.
pub struct Common {
    pub definitions: Vec<String>,
    /// Definitions that carry one `x-kubernetes-group-version-kind` per served
    /// group-version, as upstream lists them (`DeleteOptions`, `WatchEvent`).
    pub per_group_version: Vec<(String, &'static str)>,
}

fn definition<T: JsonSchema>() -> String {
    let schema_name = T::schema_name().into_owned();
    let derived = definition_from_type_path(std::any::type_name::<T>());
    assert_eq!(
        derived,
        schema_name,
        "definition name derived from {} differs from k8s-openapi's schema name",
        std::any::type_name::<T>()
    );
    schema_name
}

/// `k8s_openapi::v1_33::api::core::v1::pod::Pod` → `io.k8s.api.core.v1.Pod`;
/// apimachinery → `io.k8s.apimachinery.pkg…`, apiextensions_apiserver →
/// `io.k8s.apiextensions-apiserver.pkg…`, kube_aggregator → `io.k8s.kube-aggregator.pkg…`.
pub fn definition_from_type_path(path: &str) -> String {
    let path = path.split('<').next().unwrap_or(path);
    let mut segments: Vec<&str> = path.split("::").collect();
    if segments.first() == Some(&"k8s_openapi") {
        segments.remove(0);
    }
    if segments.first().is_some_and(|s| s.starts_with("v1_")) {
        segments.remove(0);
    }
    // Generated types live in a private module named after the type (`pod::Pod`).
    if segments.len() >= 2
        && segments[segments.len() - 2] == snake_case(segments[segments.len() - 1])
    {
        segments.remove(segments.len() - 2);
    }
    let root = match segments.first().copied() {
        Some("api") => "api",
        Some("apimachinery") => "apimachinery",
        Some("apiextensions_apiserver") => "apiextensions-apiserver",
        Some("kube_aggregator") => "kube-aggregator",
        other => panic!("unexpected k8s-openapi module {other:?} in {path}"),
    };
    let mut name = format!("io.k8s.{root}");
    for s in &segments[1..] {
        name.push('.');
        name.push_str(s);
    }
    name
}

fn snake_case(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A served resource with a list form (`Pod` / `PodList`).
fn listed<T: JsonSchema + ListableResource>(generator: &mut SchemaGenerator) -> Kind {
    generator.subschema_for::<T>();
    Kind {
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        definition: definition::<T>(),
        list_kind: Some(T::LIST_KIND),
        docs: vec![(T::GROUP, T::VERSION)],
    }
}

/// A served kind without a list form (create-only reviews, `Binding`).
fn single<T: JsonSchema + Resource>(generator: &mut SchemaGenerator) -> Kind {
    generator.subschema_for::<T>();
    Kind {
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        definition: definition::<T>(),
        list_kind: None,
        docs: vec![(T::GROUP, T::VERSION)],
    }
}

/// A kind a subresource answers with, included in its parents' documents.
fn subresource<T: JsonSchema + Resource>(
    generator: &mut SchemaGenerator,
    parents: &[(&'static str, &'static str)],
) -> Kind {
    generator.subschema_for::<T>();
    Kind {
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        definition: definition::<T>(),
        list_kind: None,
        docs: parents.to_vec(),
    }
}

/// Every kind, registering its schema (and everything it references) with `generator`.
pub fn all(generator: &mut SchemaGenerator) -> Vec<Kind> {
    use k8s_openapi::api::{
        admissionregistration, apps, authentication, authorization, autoscaling, batch,
        certificates, coordination, core, discovery, events, flowcontrol, networking, node, policy,
        rbac, scheduling, storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;
    let g = generator;
    vec![
        // core/v1
        single::<core::v1::Binding>(g),
        listed::<core::v1::ComponentStatus>(g),
        listed::<core::v1::ConfigMap>(g),
        listed::<core::v1::Endpoints>(g),
        listed::<core::v1::Event>(g),
        listed::<core::v1::LimitRange>(g),
        listed::<core::v1::Namespace>(g),
        listed::<core::v1::Node>(g),
        listed::<core::v1::PersistentVolumeClaim>(g),
        listed::<core::v1::PersistentVolume>(g),
        listed::<core::v1::Pod>(g),
        listed::<core::v1::PodTemplate>(g),
        listed::<core::v1::ReplicationController>(g),
        listed::<core::v1::ResourceQuota>(g),
        listed::<core::v1::Secret>(g),
        listed::<core::v1::ServiceAccount>(g),
        listed::<core::v1::Service>(g),
        // apiregistration.k8s.io/v1
        listed::<apiregistration::v1::APIService>(g),
        // apps/v1
        listed::<apps::v1::ControllerRevision>(g),
        listed::<apps::v1::DaemonSet>(g),
        listed::<apps::v1::Deployment>(g),
        listed::<apps::v1::ReplicaSet>(g),
        listed::<apps::v1::StatefulSet>(g),
        // events.k8s.io/v1
        listed::<events::v1::Event>(g),
        // authentication.k8s.io/v1
        single::<authentication::v1::SelfSubjectReview>(g),
        single::<authentication::v1::TokenReview>(g),
        // authorization.k8s.io/v1
        single::<authorization::v1::LocalSubjectAccessReview>(g),
        single::<authorization::v1::SelfSubjectAccessReview>(g),
        single::<authorization::v1::SelfSubjectRulesReview>(g),
        single::<authorization::v1::SubjectAccessReview>(g),
        // autoscaling/v2 and v1
        listed::<autoscaling::v2::HorizontalPodAutoscaler>(g),
        listed::<autoscaling::v1::HorizontalPodAutoscaler>(g),
        // batch/v1
        listed::<batch::v1::CronJob>(g),
        listed::<batch::v1::Job>(g),
        // certificates.k8s.io/v1
        listed::<certificates::v1::CertificateSigningRequest>(g),
        // networking.k8s.io/v1
        listed::<networking::v1::IngressClass>(g),
        listed::<networking::v1::Ingress>(g),
        listed::<networking::v1::NetworkPolicy>(g),
        // policy/v1
        listed::<policy::v1::PodDisruptionBudget>(g),
        // rbac.authorization.k8s.io/v1
        listed::<rbac::v1::ClusterRoleBinding>(g),
        listed::<rbac::v1::ClusterRole>(g),
        listed::<rbac::v1::RoleBinding>(g),
        listed::<rbac::v1::Role>(g),
        // storage.k8s.io/v1
        listed::<storage::v1::CSIDriver>(g),
        listed::<storage::v1::CSINode>(g),
        listed::<storage::v1::CSIStorageCapacity>(g),
        listed::<storage::v1::StorageClass>(g),
        listed::<storage::v1::VolumeAttachment>(g),
        // admissionregistration.k8s.io/v1
        listed::<admissionregistration::v1::MutatingWebhookConfiguration>(g),
        listed::<admissionregistration::v1::ValidatingAdmissionPolicy>(g),
        listed::<admissionregistration::v1::ValidatingAdmissionPolicyBinding>(g),
        listed::<admissionregistration::v1::ValidatingWebhookConfiguration>(g),
        // apiextensions.k8s.io/v1
        listed::<apiextensions::v1::CustomResourceDefinition>(g),
        // scheduling.k8s.io/v1
        listed::<scheduling::v1::PriorityClass>(g),
        // coordination.k8s.io/v1
        listed::<coordination::v1::Lease>(g),
        // node.k8s.io/v1
        listed::<node::v1::RuntimeClass>(g),
        // discovery.k8s.io/v1
        listed::<discovery::v1::EndpointSlice>(g),
        // flowcontrol.apiserver.k8s.io/v1
        listed::<flowcontrol::v1::FlowSchema>(g),
        listed::<flowcontrol::v1::PriorityLevelConfiguration>(g),
        // Subresource kinds (discovery's responseKind), in their parents' documents.
        subresource::<autoscaling::v1::Scale>(g, &[("", "v1"), ("apps", "v1")]),
        subresource::<policy::v1::Eviction>(g, &[("", "v1")]),
        subresource::<authentication::v1::TokenRequest>(g, &[("", "v1")]),
    ]
}

/// The `meta/v1` kinds every document includes.
pub fn common(generator: &mut SchemaGenerator) -> Common {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::WatchEvent<meta::Status>>();
    generator.subschema_for::<meta::APIResourceList>();
    let status = definition::<meta::Status>();
    let resource_list = definition::<meta::APIResourceList>();
    let delete_options = definition::<meta::DeleteOptions>();
    let watch_event = definition::<meta::WatchEvent<meta::Status>>();
    Common {
        definitions: vec![
            status,
            resource_list,
            delete_options.clone(),
            definition::<meta::Patch>(),
            watch_event.clone(),
        ],
        per_group_version: vec![
            (delete_options, "DeleteOptions"),
            (watch_event, "WatchEvent"),
        ],
    }
}

/// `(group, version, kind)` of the meta kinds that carry a single GVK of their own.
pub fn common_gvks() -> Vec<(&'static str, &'static str, &'static str, String)> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    fn gvk<T: JsonSchema + Resource>() -> (&'static str, &'static str, &'static str, String) {
        (T::GROUP, T::VERSION, T::KIND, definition::<T>())
    }
    vec![gvk::<meta::Status>(), gvk::<meta::APIResourceList>()]
}
