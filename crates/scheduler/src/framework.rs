//! The scheduling framework's data: what the scheduler knows about a pod ([`PodInfo`],
//! computed once when the pod is queued or cached) and a node ([`NodeInfo`], aggregates kept
//! up to date as pods come and go), filter [`Status`]es and the `FailedScheduling` message.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};

use crate::resources::{self, PodRequests, Resources};
use crate::selectors::{Labels, NodeTerm, Selector};

pub const MAX_NODE_SCORE: i64 = 100;

static NO_LABELS: Labels = BTreeMap::new();

/// Why a node does not fit. `Unresolvable` means preemption cannot help on that node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Unschedulable,
    Unresolvable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub plugin: &'static str,
    pub reasons: Vec<Cow<'static, str>>,
}

impl Status {
    pub fn new(code: Code, plugin: &'static str, reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code,
            plugin,
            reasons: vec![reason.into()],
        }
    }
}

pub type FilterResult = Result<(), Status>;

/// Upstream's `FitError.Error()`: "0/N nodes are available: " then either the PreFilter
/// message or the sorted histogram of filter reasons ("2 Insufficient cpu, 1 node(s) ..."),
/// each followed by a period, then the PostFilter (preemption) message as it is.
pub fn fit_error_message<'a>(
    num_all_nodes: usize,
    pre_filter_msg: Option<&str>,
    statuses: impl IntoIterator<Item = &'a Status>,
    post_filter_msg: Option<&str>,
) -> String {
    let mut msg = format!("0/{num_all_nodes} nodes are available:");
    match pre_filter_msg {
        Some(m) if !m.is_empty() => msg.push_str(&format!(" {m}.")),
        _ => {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for s in statuses {
                for r in &s.reasons {
                    *counts.entry(r.as_ref()).or_default() += 1;
                }
            }
            let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
            parts.sort();
            if !parts.is_empty() {
                msg.push_str(&format!(" {}.", parts.join(", ")));
            }
        }
    }
    if let Some(m) = post_filter_msg.filter(|m| !m.is_empty()) {
        msg.push_str(&format!(" {m}"));
    }
    msg
}

/// A host port a pod uses: (protocol, host IP, port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i32,
}

impl HostPort {
    pub fn conflicts(&self, o: &HostPort) -> bool {
        let any = |ip: &str| ip.is_empty() || ip == "0.0.0.0" || ip == "::";
        self.port == o.port
            && self.protocol == o.protocol
            && (self.ip == o.ip || any(&self.ip) || any(&o.ip))
    }
}

/// The labels of every namespace, as the scheduler's namespace watch last saw them: what
/// affinity terms' `namespaceSelector`s are matched against, when they are evaluated (as
/// upstream, a namespace that is not known has no labels).
#[derive(Clone, Debug, Default)]
pub struct NamespaceLabels(Arc<RwLock<HashMap<String, Labels>>>);

impl NamespaceLabels {
    pub fn set(&self, namespace: &str, labels: Labels) {
        self.0
            .write()
            .unwrap()
            .insert(namespace.to_string(), labels);
    }

    pub fn remove(&self, namespace: &str) {
        self.0.write().unwrap().remove(namespace);
    }

    pub fn replace_all(&self, all: HashMap<String, Labels>) {
        *self.0.write().unwrap() = all;
    }

    fn selects(&self, namespace: &str, sel: &Selector) -> bool {
        match self.0.read().unwrap().get(namespace) {
            Some(labels) => sel.matches(labels),
            None => sel.matches(&Labels::new()),
        }
    }
}

impl PartialEq for NamespaceLabels {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.0, &o.0)
    }
}
impl Eq for NamespaceLabels {}

/// A pod (anti-)affinity term: which pods (namespaces and labels) in which topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffinityTerm {
    /// `None`: every namespace (an empty namespaceSelector).
    pub namespaces: Option<Vec<String>>,
    /// A non-empty `namespaceSelector`: namespaces whose labels it matches count too.
    pub namespace_selector: Option<(Selector, NamespaceLabels)>,
    pub selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn new(
        t: &k8s_openapi::api::core::v1::PodAffinityTerm,
        own_namespace: &str,
        ns_labels: &NamespaceLabels,
    ) -> AffinityTerm {
        let listed = t.namespaces.clone().unwrap_or_default();
        let all = t.namespace_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
        });
        let (namespaces, namespace_selector) = match &t.namespace_selector {
            // `{}`: every namespace.
            Some(_) if all => (None, None),
            Some(sel) => (
                Some(listed),
                Some((Selector::from_label_selector(Some(sel)), ns_labels.clone())),
            ),
            // Neither: the pod's own namespace.
            None if listed.is_empty() => (Some(vec![own_namespace.to_string()]), None),
            None => (Some(listed), None),
        };
        AffinityTerm {
            namespaces,
            namespace_selector,
            selector: Selector::from_label_selector(t.label_selector.as_ref()),
            topology_key: t.topology_key.clone(),
        }
    }

    pub fn matches(&self, pod: &PodInfo) -> bool {
        let in_namespace = match &self.namespaces {
            None => true,
            Some(listed) => {
                listed.contains(&pod.namespace)
                    || self
                        .namespace_selector
                        .as_ref()
                        .is_some_and(|(sel, labels)| labels.selects(&pod.namespace, sel))
            }
        };
        in_namespace && self.selector.matches(pod.labels())
    }
}

/// A topology spread constraint with its selector compiled (matchLabelKeys merged in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpreadConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    /// `DoNotSchedule` (a filter) rather than `ScheduleAnyway` (a score).
    pub hard: bool,
    pub selector: Selector,
    pub min_domains: Option<i32>,
    /// nodeAffinityPolicy Honor (the default): only nodes the pod may use count.
    pub honor_node_affinity: bool,
    /// nodeTaintsPolicy Honor (default Ignore): only nodes whose taints the pod tolerates count.
    pub honor_taints: bool,
}

/// The node constraints of a pod: nodeSelector plus required and preferred node affinity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeConstraints {
    pub selector: Vec<(String, String)>,
    /// `None`: no required affinity; `Some(terms)`: any term must match.
    pub required: Option<Vec<NodeTerm>>,
    pub preferred: Vec<(i32, NodeTerm)>,
}

impl NodeConstraints {
    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        self.selector
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
            && self
                .required
                .as_ref()
                .is_none_or(|terms| terms.iter().any(|t| t.matches(node_name, labels)))
    }
}

/// What the scheduler needs of a pod, derived once from the object.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub req: PodRequests,
    pub priority: i32,
    pub preempt_never: bool,
    /// Creation time in seconds since the epoch (queue order and preemption's tie-breaks).
    pub created: i64,
    pub terminating: bool,
    pub ports: Vec<HostPort>,
    pub node: NodeConstraints,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<(i32, AffinityTerm)>,
    pub preferred_anti_affinity: Vec<(i32, AffinityTerm)>,
    pub spread: Vec<SpreadConstraint>,
    /// Container images with a tag (`:latest` added where none is given).
    pub images: Vec<String>,
}

impl PodInfo {
    /// `priority` is the resolved priority (spec.priority, or the PriorityClass's value).
    /// Affinity `namespaceSelector`s see no namespace labels: see [`PodInfo::with_namespaces`].
    pub fn new(pod: Arc<Pod>, priority: i32) -> PodInfo {
        Self::with_namespaces(pod, priority, &NamespaceLabels::default())
    }

    /// As [`PodInfo::new`], with affinity `namespaceSelector`s matched against `ns_labels`.
    pub fn with_namespaces(pod: Arc<Pod>, priority: i32, ns_labels: &NamespaceLabels) -> PodInfo {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let mut ports = Vec::new();
        let mut images = Vec::new();
        if let Some(spec) = spec {
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            for c in spec.containers.iter().chain(sidecars) {
                for p in c.ports.iter().flatten() {
                    if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                        ports.push(HostPort {
                            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                            ip: p.host_ip.clone().unwrap_or_default(),
                            port: hp,
                        });
                    }
                }
            }
            for c in &spec.containers {
                if let Some(i) = c.image.as_deref() {
                    images.push(normalized_image(i));
                }
            }
        }
        let mut node = NodeConstraints::default();
        let mut required_affinity = Vec::new();
        let mut required_anti_affinity = Vec::new();
        let mut preferred_affinity = Vec::new();
        let mut preferred_anti_affinity = Vec::new();
        let mut spread = Vec::new();
        if let Some(spec) = spec {
            node.selector = spec
                .node_selector
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let aff = spec.affinity.as_ref();
            if let Some(na) = aff.and_then(|a| a.node_affinity.as_ref()) {
                node.required = na
                    .required_during_scheduling_ignored_during_execution
                    .as_ref()
                    .map(|s| s.node_selector_terms.iter().map(NodeTerm::new).collect());
                node.preferred = na
                    .preferred_during_scheduling_ignored_during_execution
                    .iter()
                    .flatten()
                    .map(|p| (p.weight, NodeTerm::new(&p.preference)))
                    .collect();
            }
            if let Some(pa) = aff.and_then(|a| a.pod_affinity.as_ref()) {
                required_affinity = pa
                    .required_during_scheduling_ignored_during_execution
                    .iter()
                    .flatten()
                    .map(|t| AffinityTerm::new(t, &namespace, ns_labels))
                    .collect();
                preferred_affinity = pa
                    .preferred_during_scheduling_ignored_during_execution
                    .iter()
                    .flatten()
                    .map(|w| {
                        (
                            w.weight,
                            AffinityTerm::new(&w.pod_affinity_term, &namespace, ns_labels),
                        )
                    })
                    .collect();
            }
            if let Some(pa) = aff.and_then(|a| a.pod_anti_affinity.as_ref()) {
                required_anti_affinity = pa
                    .required_during_scheduling_ignored_during_execution
                    .iter()
                    .flatten()
                    .map(|t| AffinityTerm::new(t, &namespace, ns_labels))
                    .collect();
                preferred_anti_affinity = pa
                    .preferred_during_scheduling_ignored_during_execution
                    .iter()
                    .flatten()
                    .map(|w| {
                        (
                            w.weight,
                            AffinityTerm::new(&w.pod_affinity_term, &namespace, ns_labels),
                        )
                    })
                    .collect();
            }
            let labels = meta.labels.as_ref().unwrap_or(&NO_LABELS);
            for c in spec.topology_spread_constraints.iter().flatten() {
                let mut selector = Selector::from_label_selector(c.label_selector.as_ref());
                for k in c.match_label_keys.iter().flatten() {
                    if let Some(v) = labels.get(k) {
                        selector.require(k, v);
                    }
                }
                spread.push(SpreadConstraint {
                    max_skew: c.max_skew,
                    topology_key: c.topology_key.clone(),
                    hard: c.when_unsatisfiable == "DoNotSchedule",
                    selector,
                    min_domains: c.min_domains,
                    honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                    honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
                });
            }
        }
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: meta.uid.clone().unwrap_or_default(),
            created: meta
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .unwrap_or(0),
            terminating: meta.deletion_timestamp.is_some(),
            req: resources::pod_requests(&pod),
            preempt_never: spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never"),
            namespace,
            name,
            priority,
            ports,
            node,
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            spread,
            images,
            pod,
        }
    }

    pub fn labels(&self) -> &Labels {
        self.pod.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
    }

    pub fn tolerations(&self) -> &[Toleration] {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or(&[])
    }

    pub fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }
}

/// `name` with `:latest` when it carries neither tag nor digest (upstream's
/// `normalizedImageName`).
pub fn normalized_image(name: &str) -> String {
    let colon = name.rfind(':');
    let slash = name.rfind('/');
    if name.contains('@') || colon > slash {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Whether `t` tolerates `taint` (upstream's `ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// A node and the running totals of the pods on it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub name: String,
    pub node: Arc<Node>,
    pub allocatable: Resources,
    pub allowed_pods: i64,
    pub requested: Resources,
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub pods: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<HostPort>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    /// Normalized image name → size in bytes.
    pub images: HashMap<String, i64>,
    /// Pods on this node with any (anti-)affinity, and with required anti-affinity.
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut n = NodeInfo {
            name: String::new(),
            node: node.clone(),
            allocatable: Resources::default(),
            allowed_pods: 0,
            requested: Resources::default(),
            non_zero_cpu: 0,
            non_zero_memory: 0,
            pods: Vec::new(),
            used_ports: Vec::new(),
            taints: Vec::new(),
            unschedulable: false,
            images: HashMap::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
        };
        n.set_node(node);
        n
    }

    /// Replaces the node object, keeping the pods.
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.name = node.metadata.name.clone().unwrap_or_default();
        let status = node.status.as_ref();
        let alloc = status
            .and_then(|s| s.allocatable.as_ref())
            .or_else(|| status.and_then(|s| s.capacity.as_ref()));
        self.allocatable = Resources::from_map(alloc);
        self.allowed_pods = alloc
            .and_then(|a| a.get("pods"))
            .and_then(|q| resources::parse_value(&q.0))
            .unwrap_or(0);
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.images.clear();
        for img in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for n in img.names.iter().flatten() {
                self.images
                    .insert(normalized_image(n), img.size_bytes.unwrap_or(0));
            }
        }
        self.node = node;
    }

    pub fn labels(&self) -> &Labels {
        self.node.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
    }

    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.req.requests);
        self.non_zero_cpu += p.req.non_zero_cpu;
        self.non_zero_memory += p.req.non_zero_memory;
        self.used_ports.extend(p.ports.iter().cloned());
        if p.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !p.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.push(p);
    }

    /// Removes the pod with `key`; returns it if it was here.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| p.key == key)?;
        let p = self.pods.swap_remove(i);
        self.requested.sub(&p.req.requests);
        self.non_zero_cpu -= p.req.non_zero_cpu;
        self.non_zero_memory -= p.req.non_zero_memory;
        for hp in &p.ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        if p.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !p.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        Some(p)
    }
}

#[cfg(test)]
pub mod testing {
    //! Builders for plugin tests.
    use super::*;
    use serde_json::{json, Value};

    pub fn pod(name: &str, spec: Value) -> Arc<PodInfo> {
        pod_with(name, json!({}), spec)
    }

    pub fn pod_with(name: &str, meta: Value, spec: Value) -> Arc<PodInfo> {
        let mut m = json!({"name": name, "namespace": "default", "uid": format!("uid-{name}")});
        if let (Some(m), Some(extra)) = (m.as_object_mut(), meta.as_object()) {
            for (k, v) in extra {
                m.insert(k.clone(), v.clone());
            }
        }
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c"}]);
        }
        let p: Pod = serde_json::from_value(json!({"metadata": m, "spec": spec})).unwrap();
        let prio = p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        Arc::new(PodInfo::new(Arc::new(p), prio))
    }

    pub fn requests(cpu: &str, mem: &str) -> Value {
        json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]})
    }

    pub fn node(name: &str, labels: Value, cpu: &str, mem: &str) -> NodeInfo {
        node_full(name, labels, json!({}), cpu, mem)
    }

    pub fn node_full(name: &str, labels: Value, spec: Value, cpu: &str, mem: &str) -> NodeInfo {
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"}}
        }))
        .unwrap();
        NodeInfo::new(Arc::new(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(code: Code, r: &'static str) -> Status {
        Status::new(code, "X", r)
    }

    #[test]
    fn fit_error_message_sorts_the_histogram() {
        let taint = "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }";
        let statuses = vec![
            st(Code::Unresolvable, taint),
            st(Code::Unresolvable, "Insufficient cpu"),
            st(Code::Unresolvable, "Insufficient cpu"),
        ];
        let pre = fit_error_message(
            3,
            None,
            &[
                st(
                    Code::Unresolvable,
                    "Preemption is not helpful for scheduling",
                ),
                st(
                    Code::Unresolvable,
                    "Preemption is not helpful for scheduling",
                ),
                st(
                    Code::Unresolvable,
                    "Preemption is not helpful for scheduling",
                ),
            ],
            None,
        );
        let msg = fit_error_message(3, None, &statuses, Some(&format!("preemption: {pre}")));
        assert_eq!(
            msg,
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn image_names() {
        assert_eq!(normalized_image("nginx"), "nginx:latest");
        assert_eq!(
            normalized_image("localhost:5000/nginx"),
            "localhost:5000/nginx:latest"
        );
        assert_eq!(normalized_image("nginx:1.2"), "nginx:1.2");
        assert_eq!(normalized_image("nginx@sha256:abc"), "nginx@sha256:abc");
    }
}
