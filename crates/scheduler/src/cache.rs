//! The scheduler's view of the cluster: nodes with the pods on them, fed by watches of
//! nodes and pods, plus *assumed* pods — placed by this scheduler but not yet seen bound
//! through the watch — so the next pod is scheduled against the placement at once.
//! Assumed pods are confirmed when the watch shows them bound and forgotten when binding
//! fails.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::framework::{NodeInfo, PodInfo};

struct CachedPod {
    node: String,
    info: Arc<PodInfo>,
    assumed: bool,
}

#[derive(Default)]
pub struct Cache {
    pub nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    pods: HashMap<String, CachedPod>,
    /// Pods bound to nodes the cache has not seen (yet).
    orphans: HashMap<String, Vec<Arc<PodInfo>>>,
    /// Normalized image name → how many nodes have it (ImageLocality).
    pub image_nodes: HashMap<String, usize>,
    /// Pods nominated to a node by preemption, counted there for pods of lower priority.
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    /// Where the next search for feasible nodes starts (upstream rotates it so that node
    /// sampling covers the whole cluster).
    pub next_start: usize,
}

/// What changed with a node update, for requeueing.
#[derive(Debug, PartialEq, Eq)]
pub enum NodeChange {
    Added,
    /// Something the plugins look at changed.
    Relevant,
    /// Only heartbeats or other fields no plugin reads.
    Irrelevant,
}

impl Cache {
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn set_node(&mut self, node: Arc<Node>) -> NodeChange {
        let name = node.metadata.name.clone().unwrap_or_default();
        if let Some(&i) = self.index.get(&name) {
            let old = self.nodes[i].clone_meta();
            self.change_images(i, -1);
            self.nodes[i].set_node(node);
            self.change_images(i, 1);
            let new = self.nodes[i].clone_meta();
            return if old == new {
                NodeChange::Irrelevant
            } else {
                NodeChange::Relevant
            };
        }
        let mut info = NodeInfo::new(node);
        for p in self.orphans.remove(&name).unwrap_or_default() {
            info.add_pod(p);
        }
        self.index.insert(name, self.nodes.len());
        self.nodes.push(info);
        self.change_images(self.nodes.len() - 1, 1);
        NodeChange::Added
    }

    fn change_images(&mut self, i: usize, by: isize) {
        for img in self.nodes[i].images.keys() {
            let c = self.image_nodes.entry(img.clone()).or_insert(0);
            *c = c.saturating_add_signed(by);
            if *c == 0 {
                self.image_nodes.remove(img);
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        self.change_images(i, -1);
        let info = self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            self.index.insert(self.nodes[i].name.clone(), i);
        }
        // Its pods stay known: they are removed when their deletion is observed.
        if !info.pods.is_empty() {
            self.orphans.insert(name.to_string(), info.pods);
        }
    }

    /// Node names present in the cache (for re-list reconciliation).
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    pub fn pod_keys(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    fn place(&mut self, node: &str, info: Arc<PodInfo>) {
        match self.index.get(node) {
            Some(&i) => self.nodes[i].add_pod(info),
            None => self.orphans.entry(node.to_string()).or_default().push(info),
        }
    }

    fn unplace(&mut self, node: &str, key: &str) {
        match self.index.get(node) {
            Some(&i) => {
                self.nodes[i].remove_pod(key);
            }
            None => {
                if let Some(v) = self.orphans.get_mut(node) {
                    v.retain(|p| p.key != key);
                    if v.is_empty() {
                        self.orphans.remove(node);
                    }
                }
            }
        }
    }

    /// A pod observed bound to `node` (confirms an assumed pod, or moves it if the API
    /// says it went elsewhere).
    pub fn add_or_update_pod(&mut self, info: Arc<PodInfo>, node: &str) {
        let key = info.key.clone();
        if let Some(old) = self.pods.remove(&key) {
            self.unplace(&old.node, &key);
        }
        self.place(node, info.clone());
        self.pods.insert(
            key,
            CachedPod {
                node: node.to_string(),
                info,
                assumed: false,
            },
        );
    }

    pub fn remove_pod(&mut self, key: &str) -> bool {
        match self.pods.remove(key) {
            Some(old) => {
                self.unplace(&old.node, key);
                true
            }
            None => false,
        }
    }

    /// Counts `info` on `node` before the API has confirmed the binding.
    pub fn assume(&mut self, info: Arc<PodInfo>, node: &str) {
        self.remove_nominated(&info.key);
        let key = info.key.clone();
        self.place(node, info.clone());
        self.pods.insert(
            key,
            CachedPod {
                node: node.to_string(),
                info,
                assumed: true,
            },
        );
    }

    /// Undoes [`Cache::assume`] after a failed binding (unless the watch confirmed it).
    pub fn forget(&mut self, key: &str) {
        if self.pods.get(key).is_some_and(|p| p.assumed) {
            self.remove_pod(key);
        }
    }

    /// Whether the pod is in the cache (assumed or bound).
    pub fn has_pod(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|p| p.assumed)
    }

    pub fn pod(&self, key: &str) -> Option<(&str, &Arc<PodInfo>)> {
        self.pods.get(key).map(|p| (p.node.as_str(), &p.info))
    }

    pub fn set_nominated(&mut self, info: Arc<PodInfo>, node: &str) {
        self.remove_nominated(&info.key);
        self.nominated
            .entry(node.to_string())
            .or_default()
            .push(info);
    }

    pub fn remove_nominated(&mut self, key: &str) {
        self.nominated.retain(|_, v| {
            v.retain(|p| p.key != key);
            !v.is_empty()
        });
    }

    /// Pods nominated to `node` that `pod` must leave room for (priority at least its own).
    pub fn nominated_for(&self, node: &str, pod: &PodInfo) -> Vec<Arc<PodInfo>> {
        self.nominated
            .get(node)
            .map(|v| {
                v.iter()
                    .filter(|p| p.key != pod.key && p.priority >= pod.priority)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn has_nominated(&self) -> bool {
        !self.nominated.is_empty()
    }
}

impl NodeInfo {
    /// The parts of a node the plugins read (labels, taints, allocatable, images, cordon).
    fn clone_meta(&self) -> impl PartialEq {
        (
            self.node.metadata.labels.clone(),
            self.taints.clone(),
            self.unschedulable,
            self.allocatable.clone(),
            self.allowed_pods,
            self.images.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    fn node_obj(name: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
            .unwrap(),
        )
    }

    #[test]
    fn assume_confirm_forget() {
        let mut c = Cache::default();
        assert_eq!(c.set_node(node_obj("a")), NodeChange::Added);
        assert_eq!(c.set_node(node_obj("a")), NodeChange::Irrelevant);
        let p = pod("p", requests("1", "1Gi"));
        c.assume(p.clone(), "a");
        assert!(c.is_assumed("default/p"));
        assert_eq!(c.node("a").unwrap().requested.milli_cpu, 1000);
        c.forget("default/p");
        assert_eq!(c.node("a").unwrap().requested.milli_cpu, 0);
        c.assume(p.clone(), "a");
        c.add_or_update_pod(p.clone(), "a");
        assert!(!c.is_assumed("default/p"));
        // Forgetting a confirmed pod does nothing.
        c.forget("default/p");
        assert_eq!(c.node("a").unwrap().pods.len(), 1);
        c.remove_pod("default/p");
        assert!(c.node("a").unwrap().pods.is_empty());
    }

    #[test]
    fn pods_before_their_node() {
        let mut c = Cache::default();
        c.add_or_update_pod(pod("p", requests("1", "1Gi")), "late");
        c.set_node(node_obj("x"));
        c.set_node(node_obj("late"));
        assert_eq!(c.node("late").unwrap().pods.len(), 1);
        c.remove_node("x");
        assert_eq!(c.node("late").unwrap().requested.milli_cpu, 1000);
        assert_eq!(c.node_index("late"), Some(0));
    }
}
