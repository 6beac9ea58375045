//! The table of served resources. One row per (group, version, resource); the generic
//! REST handler serves every row the same way, so adding a resource is adding a row.

/// A subresource the generic handler knows how to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    /// `/status`: replaces only `.status`.
    Status,
    /// `/scale`: an `autoscaling/v1` Scale view of `.spec.replicas`.
    Scale,
    /// `pods/binding`: sets `.spec.nodeName`.
    Binding,
    /// `certificatesigningrequests/approval`: replaces only approval conditions.
    Approval,
    /// `pods/eviction`: a policy/v1 Eviction request.
    Eviction,
    /// `namespaces/finalize`: replaces only `.spec.finalizers` (PUT).
    Finalize,
    /// `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward`, `nodes/proxy`, ... —
    /// served by the node agent; listed for discovery.
    Connect(&'static str),
}

impl Subresource {
    pub fn name(&self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Approval => "approval",
            Subresource::Eviction => "eviction",
            Subresource::Finalize => "finalize",
            Subresource::Connect(name) => name,
        }
    }

    /// The verbs aggregated discovery lists for this subresource, as upstream does.
    pub fn verbs(&self) -> &'static [&'static str] {
        match self {
            Subresource::Status | Subresource::Scale | Subresource::Approval => {
                &["get", "patch", "update"]
            }
            Subresource::Binding | Subresource::Eviction => &["create"],
            Subresource::Finalize => &["update"],
            Subresource::Connect(name) => match *name {
                "log" => &["get"],
                "exec" | "attach" | "portforward" => &["create", "get"],
                "proxy" => &["create", "delete", "get", "patch", "update"],
                "token" => &["create"],
                "ephemeralcontainers" | "resize" => &["get", "patch", "update"],
                _ => &["get"],
            },
        }
    }

    /// The `(group, version, kind)` discovery reports as the subresource's response kind.
    /// `parent` is the resource the subresource hangs off.
    pub fn response_kind(&self, parent: &Resource) -> (&'static str, &'static str, &'static str) {
        match self {
            Subresource::Status | Subresource::Approval | Subresource::Finalize => {
                (parent.group, parent.version, parent.kind)
            }
            Subresource::Scale => ("autoscaling", "v1", "Scale"),
            Subresource::Binding => ("", "v1", "Binding"),
            Subresource::Eviction => ("policy", "v1", "Eviction"),
            Subresource::Connect(name) => match (parent.plural, *name) {
                (_, "token") => ("authentication.k8s.io", "v1", "TokenRequest"),
                ("pods", "log") => ("", "v1", "Pod"),
                ("pods", "exec") => ("", "v1", "PodExecOptions"),
                ("pods", "attach") => ("", "v1", "PodAttachOptions"),
                ("pods", "portforward") => ("", "v1", "PodPortForwardOptions"),
                ("pods", "proxy") => ("", "v1", "PodProxyOptions"),
                ("nodes", "proxy") => ("", "v1", "NodeProxyOptions"),
                ("services", "proxy") => ("", "v1", "ServiceProxyOptions"),
                _ => (parent.group, parent.version, parent.kind),
            },
        }
    }
}

/// Which verbs a resource supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbs {
    /// create, delete, deletecollection, get, list, patch, update, watch.
    All,
    /// Only `create` (reviews such as TokenReview, SubjectAccessReview): nothing is stored.
    CreateOnly,
    /// get, list (read-only views such as ComponentStatus).
    ReadOnly,
}

impl Verbs {
    pub fn names(&self) -> &'static [&'static str] {
        match self {
            Verbs::All => &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            Verbs::CreateOnly => &["create"],
            Verbs::ReadOnly => &["get", "list"],
        }
    }
}

/// How `metadata.name` is validated (upstream's per-type rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain: lowercase alphanumerics, '-' and '.', at most 253.
    Subdomain,
    /// RFC 1123 label: lowercase alphanumerics and '-', at most 63 (namespaces, services).
    Label,
    /// Any string that is a valid path segment (not '.', '..', no '/' or '%') — RBAC names.
    PathSegment,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group; "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Lowercase plural, the URL segment.
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    pub verbs: Verbs,
    pub subresources: &'static [Subresource],
    pub name_rule: NameRule,
    /// Whether this version is the one stored (the preferred version of its group).
    pub storage: bool,
}

impl Resource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `/registry/<group>/<plural>/` — core resources use the group name `core`.
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s.name() == name)
    }
}

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

/// A row with the common defaults: all verbs, no short names, categories or subresources,
/// subdomain names, storage version.
const fn row(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
) -> Resource {
    Resource {
        group,
        version,
        kind,
        plural,
        singular,
        short_names: &[],
        categories: &[],
        namespaced,
        verbs: Verbs::All,
        subresources: &[],
        name_rule: NameRule::Subdomain,
        storage: true,
    }
}

impl Resource {
    const fn short(self, short_names: &'static [&'static str]) -> Self {
        Resource {
            short_names,
            ..self
        }
    }
    const fn cats(self, categories: &'static [&'static str]) -> Self {
        Resource { categories, ..self }
    }
    const fn sub(self, subresources: &'static [Subresource]) -> Self {
        Resource {
            subresources,
            ..self
        }
    }
    const fn verbs(self, verbs: Verbs) -> Self {
        Resource { verbs, ..self }
    }
    const fn rule(self, name_rule: NameRule) -> Self {
        Resource { name_rule, ..self }
    }
    const fn not_storage(self) -> Self {
        Resource {
            storage: false,
            ..self
        }
    }
}

const ALL: &[&str] = &["all"];
const API_EXT: &[&str] = &["api-extensions"];
const STATUS: &[Subresource] = &[Subresource::Status];
const STATUS_SCALE: &[Subresource] = &[Subresource::Scale, Subresource::Status];
const NS: bool = true;
const CLUSTER: bool = false;

use Subresource::{Binding, Connect, Eviction, Finalize, Status};

/// Every resource served by default, in discovery order (core first, then the groups in
/// `/apis` order; within a group, resources alphabetically as upstream lists them).
pub static RESOURCES: &[Resource] = &[
    // ---- core v1 ----
    row("", "v1", "Binding", "bindings", "binding", NS).verbs(Verbs::CreateOnly),
    row(
        "",
        "v1",
        "ComponentStatus",
        "componentstatuses",
        "componentstatus",
        CLUSTER,
    )
    .short(&["cs"])
    .verbs(Verbs::ReadOnly),
    row("", "v1", "ConfigMap", "configmaps", "configmap", NS).short(&["cm"]),
    row("", "v1", "Endpoints", "endpoints", "endpoints", NS).short(&["ep"]),
    row("", "v1", "Event", "events", "event", NS).short(&["ev"]),
    row("", "v1", "LimitRange", "limitranges", "limitrange", NS).short(&["limits"]),
    row("", "v1", "Namespace", "namespaces", "namespace", CLUSTER)
        .short(&["ns"])
        .sub(&[Finalize, Status])
        .rule(NameRule::Label),
    row("", "v1", "Node", "nodes", "node", CLUSTER)
        .short(&["no"])
        .sub(&[Connect("proxy"), Status]),
    row(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        NS,
    )
    .short(&["pvc"])
    .sub(STATUS),
    row(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        CLUSTER,
    )
    .short(&["pv"])
    .sub(STATUS),
    row("", "v1", "Pod", "pods", "pod", NS)
        .short(&["po"])
        .cats(ALL)
        .sub(&[
            Connect("attach"),
            Binding,
            Eviction,
            Connect("exec"),
            Connect("log"),
            Connect("portforward"),
            Connect("proxy"),
            Status,
        ]),
    row("", "v1", "PodTemplate", "podtemplates", "podtemplate", NS),
    row(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        NS,
    )
    .short(&["rc"])
    .cats(ALL)
    .sub(STATUS_SCALE),
    row(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        NS,
    )
    .short(&["quota"])
    .sub(STATUS),
    row("", "v1", "Secret", "secrets", "secret", NS),
    row(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        NS,
    )
    .short(&["sa"])
    .sub(&[Connect("token")]),
    row("", "v1", "Service", "services", "service", NS)
        .short(&["svc"])
        .cats(ALL)
        .sub(&[Connect("proxy"), Status])
        // Upstream validates service names as RFC 1035 labels (must start with a letter):
        // `names::validate_service_name` adds that check on top of the Label rule.
        .rule(NameRule::Label),
    // ---- apiregistration.k8s.io ----
    row(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        "apiservice",
        CLUSTER,
    )
    .cats(API_EXT)
    .sub(STATUS)
    .rule(NameRule::PathSegment),
    // ---- apps ----
    row(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        NS,
    ),
    row("apps", "v1", "DaemonSet", "daemonsets", "daemonset", NS)
        .short(&["ds"])
        .cats(ALL)
        .sub(STATUS),
    row("apps", "v1", "Deployment", "deployments", "deployment", NS)
        .short(&["deploy"])
        .cats(ALL)
        .sub(STATUS_SCALE),
    row("apps", "v1", "ReplicaSet", "replicasets", "replicaset", NS)
        .short(&["rs"])
        .cats(ALL)
        .sub(STATUS_SCALE),
    row(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        NS,
    )
    .short(&["sts"])
    .cats(ALL)
    .sub(STATUS_SCALE),
    // ---- events.k8s.io ----
    row("events.k8s.io", "v1", "Event", "events", "event", NS).short(&["ev"]),
    // ---- authentication.k8s.io ----
    row(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
        CLUSTER,
    )
    .verbs(Verbs::CreateOnly),
    row(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        "tokenreview",
        CLUSTER,
    )
    .verbs(Verbs::CreateOnly),
    // ---- authorization.k8s.io ----
    row(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        NS,
    )
    .verbs(Verbs::CreateOnly),
    row(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        CLUSTER,
    )
    .verbs(Verbs::CreateOnly),
    row(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        CLUSTER,
    )
    .verbs(Verbs::CreateOnly),
    row(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
        CLUSTER,
    )
    .verbs(Verbs::CreateOnly),
    // ---- autoscaling (v2 preferred and stored) ----
    row(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        NS,
    )
    .short(&["hpa"])
    .cats(ALL)
    .sub(STATUS),
    row(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        NS,
    )
    .short(&["hpa"])
    .cats(ALL)
    .sub(STATUS)
    .not_storage(),
    // ---- batch ----
    row("batch", "v1", "CronJob", "cronjobs", "cronjob", NS)
        .short(&["cj"])
        .cats(ALL)
        .sub(STATUS),
    row("batch", "v1", "Job", "jobs", "job", NS)
        .cats(ALL)
        .sub(STATUS),
    // ---- certificates.k8s.io ----
    row(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        "certificatesigningrequest",
        CLUSTER,
    )
    .short(&["csr"])
    .sub(&[Subresource::Approval, Status])
    .rule(NameRule::PathSegment),
    // ---- networking.k8s.io ----
    row(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        CLUSTER,
    ),
    row(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        NS,
    )
    .short(&["ing"])
    .sub(STATUS),
    row(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        NS,
    )
    .short(&["netpol"]),
    // ---- policy ----
    row(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        NS,
    )
    .short(&["pdb"])
    .sub(STATUS),
    // ---- rbac.authorization.k8s.io ----
    row(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        CLUSTER,
    )
    .rule(NameRule::PathSegment),
    row(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        CLUSTER,
    )
    .rule(NameRule::PathSegment),
    row(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        NS,
    )
    .rule(NameRule::PathSegment),
    row(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        NS,
    )
    .rule(NameRule::PathSegment),
    // ---- storage.k8s.io ----
    row(
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        "csidriver",
        CLUSTER,
    ),
    row(
        "storage.k8s.io",
        "v1",
        "CSINode",
        "csinodes",
        "csinode",
        CLUSTER,
    ),
    row(
        "storage.k8s.io",
        "v1",
        "CSIStorageCapacity",
        "csistoragecapacities",
        "csistoragecapacity",
        NS,
    ),
    row(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        CLUSTER,
    )
    .short(&["sc"]),
    row(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        "volumeattachment",
        CLUSTER,
    )
    .sub(STATUS),
    // ---- admissionregistration.k8s.io ----
    row(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        CLUSTER,
    )
    .cats(API_EXT),
    row(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        "validatingadmissionpolicy",
        CLUSTER,
    )
    .cats(API_EXT)
    .sub(STATUS),
    row(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicybinding",
        CLUSTER,
    )
    .cats(API_EXT),
    row(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        CLUSTER,
    )
    .cats(API_EXT),
    // ---- apiextensions.k8s.io ----
    row(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        CLUSTER,
    )
    .short(&["crd", "crds"])
    .cats(API_EXT)
    .sub(STATUS),
    // ---- scheduling.k8s.io ----
    row(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        CLUSTER,
    )
    .short(&["pc"]),
    // ---- coordination.k8s.io ----
    row("coordination.k8s.io", "v1", "Lease", "leases", "lease", NS),
    // ---- node.k8s.io ----
    row(
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        "runtimeclasses",
        "runtimeclass",
        CLUSTER,
    ),
    // ---- discovery.k8s.io ----
    row(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        NS,
    ),
    // ---- flowcontrol.apiserver.k8s.io ----
    row(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "FlowSchema",
        "flowschemas",
        "flowschema",
        CLUSTER,
    )
    .sub(STATUS),
    row(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        "prioritylevelconfiguration",
        CLUSTER,
    )
    .sub(STATUS),
];

/// A served API group and its versions, preferred version first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// "" for the core group.
    pub name: &'static str,
    pub versions: Vec<&'static str>,
}

impl GroupInfo {
    pub fn preferred_version(&self) -> &'static str {
        self.versions[0]
    }
}

/// Groups in the order kube-apiserver lists them in `/apis` (group priority descending,
/// ties by name), each with its versions in preference order.
const GROUP_ORDER: &[(&str, &[&str])] = &[
    ("", &["v1"]),
    ("apiregistration.k8s.io", &["v1"]),
    ("apps", &["v1"]),
    ("events.k8s.io", &["v1"]),
    ("authentication.k8s.io", &["v1"]),
    ("authorization.k8s.io", &["v1"]),
    ("autoscaling", &["v2", "v1"]),
    ("batch", &["v1"]),
    ("certificates.k8s.io", &["v1"]),
    ("networking.k8s.io", &["v1"]),
    ("policy", &["v1"]),
    ("rbac.authorization.k8s.io", &["v1"]),
    ("storage.k8s.io", &["v1"]),
    ("admissionregistration.k8s.io", &["v1"]),
    ("apiextensions.k8s.io", &["v1"]),
    ("scheduling.k8s.io", &["v1"]),
    ("coordination.k8s.io", &["v1"]),
    ("node.k8s.io", &["v1"]),
    ("discovery.k8s.io", &["v1"]),
    ("flowcontrol.apiserver.k8s.io", &["v1"]),
];

/// Every served group, the core group ("") first, then the named groups in `/apis` order.
/// `/apis` lists all but the first; `/api` lists the core group's versions.
/// Groups of runtime rows follow, versions in the order the rows were set.
pub fn groups() -> Vec<GroupInfo> {
    let mut out: Vec<GroupInfo> = GROUP_ORDER
        .iter()
        .map(|(name, versions)| GroupInfo {
            name,
            versions: versions.to_vec(),
        })
        .collect();
    for r in dynamic() {
        match out.iter_mut().find(|g| g.name == r.group) {
            Some(g) => {
                if !g.versions.contains(&r.version) {
                    g.versions.push(r.version);
                }
            }
            None => out.push(GroupInfo {
                name: r.group,
                versions: vec![r.version],
            }),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Rows added at runtime (CustomResourceDefinitions)
// ---------------------------------------------------------------------------------------

/// Rows served in addition to [`RESOURCES`], set by the API server from the stored
/// CustomResourceDefinitions. The rows are leaked (`Box::leak`) by their creator so every
/// caller can keep `&'static Resource`; see `skiff_apiserver::crd` for the bound.
static DYNAMIC: std::sync::RwLock<Vec<&'static Resource>> = std::sync::RwLock::new(Vec::new());

/// Replaces the runtime rows.
pub fn set_dynamic(rows: Vec<&'static Resource>) {
    *DYNAMIC.write().unwrap_or_else(|e| e.into_inner()) = rows;
}

/// The runtime rows, in the order they were set.
pub fn dynamic() -> Vec<&'static Resource> {
    DYNAMIC.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Every served row: the static table, then the runtime rows.
pub fn all() -> Vec<&'static Resource> {
    let mut v: Vec<&'static Resource> = RESOURCES.iter().collect();
    v.extend(dynamic());
    v
}

fn find(pred: impl Fn(&Resource) -> bool) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| pred(r))
        .or_else(|| dynamic().into_iter().find(|r| pred(r)))
}

/// The row serving `/api{s}/<group>/<version>/<plural>`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Some row of a group/version, if it is served.
pub fn lookup_gv(group: &str, version: &str) -> Option<&'static Resource> {
    find(|r| r.group == group && r.version == version)
}

/// The storage-version row for a kind in a group.
pub fn by_kind(group: &str, kind: &str) -> Option<&'static Resource> {
    find(|r| r.group == group && r.kind == kind && r.storage)
}

/// The storage-version row for a plural in a group (the object's stored form).
pub fn storage_row(group: &str, plural: &str) -> Option<&'static Resource> {
    find(|r| r.group == group && r.plural == plural && r.storage)
}

/// All rows of one group/version, in table order.
pub fn resources_in<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static Resource> + use<'a> {
    all()
        .into_iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Resolve what a user typed (`po`, `pod`, `pods`, `Pod`, `deploy`) to the preferred-version
/// rows it names, as kubectl's RESTMapper would. Returns every match across groups.
pub fn resolve(name: &str) -> Vec<&'static Resource> {
    let lower = name.to_ascii_lowercase();
    let preferred: Vec<GroupInfo> = groups();
    all()
        .into_iter()
        .filter(|r| {
            preferred
                .iter()
                .any(|g| g.name == r.group && g.preferred_version() == r.version)
        })
        .filter(|r| {
            r.plural == lower || r.singular == lower || r.short_names.iter().any(|s| *s == lower)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn no_duplicate_rows() {
        let mut seen = HashSet::new();
        for r in RESOURCES {
            assert!(
                seen.insert((r.group, r.version, r.plural)),
                "duplicate row {}/{}/{}",
                r.group,
                r.version,
                r.plural
            );
        }
    }

    #[test]
    fn exactly_one_storage_row_per_plural() {
        let mut count: HashMap<(&str, &str), usize> = HashMap::new();
        for r in RESOURCES {
            *count.entry((r.group, r.plural)).or_default() += usize::from(r.storage);
        }
        for ((g, p), n) in count {
            assert_eq!(n, 1, "{p}.{g} has {n} storage rows");
        }
    }

    #[test]
    fn short_names_name_one_resource() {
        // Upstream reuses `ev` for core and events.k8s.io events and `hpa` across autoscaling
        // versions; a short name must never point at two different plurals.
        let mut owner: HashMap<&str, &str> = HashMap::new();
        for r in RESOURCES {
            for s in r.short_names {
                let prev = owner.insert(s, r.plural);
                assert!(
                    prev.is_none() || prev == Some(r.plural),
                    "short name {s} reused"
                );
                assert!(lookup(r.group, r.version, s).is_none());
            }
        }
    }

    #[test]
    fn groups_cover_the_table() {
        let gs = groups();
        assert_eq!(gs[0].name, "");
        for r in RESOURCES {
            let g = gs.iter().find(|g| g.name == r.group).expect("group listed");
            assert!(g.versions.contains(&r.version), "{} {}", r.group, r.version);
        }
        for g in &gs {
            for v in &g.versions {
                assert!(
                    resources_in(g.name, v).next().is_some(),
                    "{}/{v} empty",
                    g.name
                );
            }
        }
        let names: HashSet<_> = gs.iter().map(|g| g.name).collect();
        assert_eq!(names.len(), gs.len());
    }

    #[test]
    fn singular_is_lowercase_kind() {
        for r in RESOURCES {
            assert_eq!(r.singular, r.kind.to_ascii_lowercase());
            assert_eq!(r.plural, r.plural.to_ascii_lowercase());
        }
    }

    #[test]
    fn lookups() {
        let pods = lookup("", "v1", "pods").unwrap();
        assert_eq!(pods.kind, "Pod");
        assert!(pods.has_subresource("binding"));
        assert!(pods.has_subresource("log"));
        assert_eq!(pods.categories, &["all"]);
        assert_eq!(
            by_kind("autoscaling", "HorizontalPodAutoscaler")
                .unwrap()
                .version,
            "v2"
        );
        assert_eq!(
            by_kind("apps", "Deployment").unwrap().api_version(),
            "apps/v1"
        );
        assert!(lookup("apps", "v1beta1", "deployments").is_none());
        assert_eq!(resolve("deploy")[0].plural, "deployments");
        assert_eq!(resolve("ev").len(), 2);
        assert_eq!(resolve("hpa").len(), 1);
        assert_eq!(resolve("hpa")[0].version, "v2");
        let ns = lookup("", "v1", "namespaces").unwrap();
        assert_eq!(ns.name_rule, NameRule::Label);
        assert!(ns.has_subresource("finalize"));
        assert_eq!(
            Subresource::Scale.response_kind(pods),
            ("autoscaling", "v1", "Scale")
        );
        assert_eq!(Connect("exec").verbs(), &["create", "get"]);
    }
}
