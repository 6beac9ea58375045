//! The node IPAM controller (upstream's range allocator): every Node gets a `spec.podCIDR`
//! (and `spec.podCIDRs`), a subnet of `--cluster-cidr` of `--node-cidr-mask-size` bits
//! (/24 by default), which the node's agent hands out pod IPs from. Allocations are
//! rebuilt from the nodes themselves at start, so nothing is stored anywhere else; a
//! deleted node's subnet becomes free again. When the range is exhausted the node gets a
//! `CIDRNotAvailable` event and is retried.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};

use skiff_client::events::Recorder;
use skiff_client::informer::for_each_event;
use skiff_client::queue::{run_workers, Next, WorkQueue};

/// An IPv4 cluster range cut into equal node subnets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterCidr {
    base: u32,
    prefix: u8,
    node_prefix: u8,
}

impl ClusterCidr {
    /// Parses `a.b.c.d/n` and checks that `node_prefix` subnets fit in it.
    pub fn parse(cidr: &str, node_prefix: u8) -> Result<ClusterCidr, String> {
        let (ip, len) = cidr
            .split_once('/')
            .ok_or_else(|| format!("cluster CIDR {cidr:?} is not of the form a.b.c.d/n"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| {
            format!(
                "cluster CIDR {cidr:?}: {ip:?} is not an IPv4 address (IPv6 is not supported yet)"
            )
        })?;
        let prefix: u8 = len
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("cluster CIDR {cidr:?}: prefix length must be 0..32"))?;
        if node_prefix < prefix || node_prefix > 30 {
            return Err(format!(
                "node CIDR mask size /{node_prefix} must be between the cluster CIDR's /{prefix} and /30"
            ));
        }
        if node_prefix - prefix > 20 {
            return Err(format!(
                "cluster CIDR {cidr:?} with /{node_prefix} node subnets makes more than 2^20 subnets; use a larger node mask"
            ));
        }
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(ClusterCidr {
            base: u32::from(ip) & mask,
            prefix,
            node_prefix,
        })
    }

    /// How many node subnets the range holds.
    pub fn size(&self) -> u32 {
        1 << (self.node_prefix - self.prefix)
    }

    /// The `i`th node subnet as `a.b.c.d/n`.
    pub fn subnet(&self, i: u32) -> String {
        let ip = self.base + (i << (32 - self.node_prefix));
        format!("{}/{}", Ipv4Addr::from(ip), self.node_prefix)
    }

    /// The index of `cidr` if it is one of this range's node subnets.
    pub fn index_of(&self, cidr: &str) -> Option<u32> {
        let (ip, len) = cidr.split_once('/')?;
        let ip = u32::from(ip.parse::<Ipv4Addr>().ok()?);
        if len.parse::<u8>().ok()? != self.node_prefix {
            return None;
        }
        let offset = ip.checked_sub(self.base)?;
        let i = offset >> (32 - self.node_prefix);
        (i < self.size() && offset & ((1 << (32 - self.node_prefix)) - 1) == 0).then_some(i)
    }
}

/// Which subnets are taken, and by which node.
#[derive(Default)]
struct Allocations {
    used: BTreeSet<u32>,
    by_node: HashMap<String, u32>,
    /// Where the search for a free subnet resumes, so freed subnets are not reused at once.
    next: u32,
}

impl Allocations {
    fn occupy(&mut self, node: &str, i: u32) {
        if let Some(old) = self.by_node.insert(node.into(), i) {
            if old != i {
                self.used.remove(&old);
            }
        }
        self.used.insert(i);
    }

    fn release(&mut self, node: &str) {
        if let Some(i) = self.by_node.remove(node) {
            self.used.remove(&i);
        }
    }

    fn allocate(&mut self, node: &str, size: u32) -> Option<u32> {
        if let Some(i) = self.by_node.get(node) {
            return Some(*i);
        }
        let free = (self.next..size)
            .chain(0..self.next)
            .find(|i| !self.used.contains(i))?;
        self.next = (free + 1) % size;
        self.occupy(node, free);
        Some(free)
    }
}

pub async fn run(client: Client, range: ClusterCidr) -> anyhow::Result<()> {
    let queue = WorkQueue::<String>::with_max_backoff(Duration::from_secs(30));
    let alloc = Arc::new(Mutex::new(Allocations::default()));
    let (nodes, writer) = kube::runtime::reflector::store::<Node>();
    let stream = kube::runtime::reflector::reflector(
        writer,
        skiff_client::informer::watch(Api::<Node>::all(client.clone()), watcher::Config::default()),
    );
    // Existing allocations are recorded as they are seen; nodes are queued only after the
    // initial list is complete, so a new node never takes a subnet an old one already has.
    let watch = {
        let alloc = alloc.clone();
        let queue = queue.clone();
        let nodes = nodes.clone();
        let mut pending = Vec::new();
        let mut listed = false;
        for_each_event("nodes", stream, move |ev| match ev {
            Event::Init => listed = false,
            Event::InitApply(n) => {
                record(&alloc, &range, &n);
                pending.push(n.name_any());
            }
            Event::InitDone => {
                listed = true;
                for n in pending.drain(..) {
                    queue.add(n);
                }
            }
            Event::Apply(n) => {
                record(&alloc, &range, &n);
                if listed {
                    queue.add(n.name_any());
                }
            }
            Event::Delete(n) => {
                alloc.lock().unwrap().release(&n.name_any());
                // A subnet came free: nodes still waiting for one can have it now.
                for waiting in nodes.state().iter().filter(|n| !has_pod_cidr(n)) {
                    queue.add(waiting.name_any());
                }
            }
        })
    };
    let recorder = Recorder::new(client.clone(), "node-ipam-controller");
    let api: Api<Node> = Api::all(client);
    let work = run_workers("nodeipam", queue, 1, move |name: String| {
        let node = nodes.get(&ObjectRef::new(&name));
        let (api, alloc, recorder) = (api.clone(), alloc.clone(), recorder.clone());
        async move {
            let Some(node) = node else {
                return Ok(Next::Done);
            };
            if has_pod_cidr(&node) || node.metadata.deletion_timestamp.is_some() {
                return Ok(Next::Done);
            }
            let Some(i) = alloc.lock().unwrap().allocate(&name, range.size()) else {
                recorder
                    .warning(
                        &*node,
                        "CIDRNotAvailable",
                        &format!("Node {name} status is now: CIDRNotAvailable"),
                    )
                    .await;
                return Ok(Next::After(Duration::from_secs(30)));
            };
            let cidr = range.subnet(i);
            let patch = serde_json::json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    tracing::debug!(node = name, cidr, "assigned the pod CIDR");
                    Ok(Next::Done)
                }
                Err(kube::Error::Api(s)) if s.is_not_found() => {
                    alloc.lock().unwrap().release(&name);
                    Ok(Next::Done)
                }
                Err(e) => {
                    alloc.lock().unwrap().release(&name);
                    Err(e.into())
                }
            }
        }
    });
    tokio::join!(watch, work);
    Ok(())
}

fn has_pod_cidr(n: &Node) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .is_some_and(|c| !c.is_empty())
}

/// Notes the subnet a node already has (set by us earlier or by hand).
fn record(alloc: &Mutex<Allocations>, range: &ClusterCidr, n: &Node) {
    let cidr = n.spec.as_ref().and_then(|s| s.pod_cidr.as_deref());
    if let Some(i) = cidr.and_then(|c| range.index_of(c)) {
        alloc.lock().unwrap().occupy(&n.name_any(), i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_cuts_the_range() {
        let r = ClusterCidr::parse("10.42.0.0/16", 24).unwrap();
        assert_eq!(r.size(), 256);
        assert_eq!(r.subnet(0), "10.42.0.0/24");
        assert_eq!(r.subnet(255), "10.42.255.0/24");
        assert_eq!(r.index_of("10.42.7.0/24"), Some(7));
        assert_eq!(r.index_of("10.42.7.1/24"), None);
        assert_eq!(r.index_of("10.43.0.0/24"), None);
        assert_eq!(r.index_of("10.42.7.0/25"), None);
        // Host bits in the cluster CIDR are ignored, as upstream does.
        assert_eq!(ClusterCidr::parse("10.42.3.4/16", 24).unwrap(), r);
        let big = ClusterCidr::parse("10.0.0.0/8", 24).unwrap();
        assert_eq!(big.size(), 65536);
        assert_eq!(big.subnet(300), "10.1.44.0/24");
    }

    #[test]
    fn bad_ranges_say_what_is_wrong() {
        for (cidr, mask, want) in [
            ("10.42.0.0", 24, "a.b.c.d/n"),
            ("fd00::/48", 64, "IPv6"),
            ("10.42.0.0/33", 24, "prefix length"),
            ("10.42.0.0/24", 16, "between"),
            ("10.0.0.0/4", 28, "2^20"),
        ] {
            let e = ClusterCidr::parse(cidr, mask).unwrap_err();
            assert!(e.contains(want), "{cidr}/{mask}: {e}");
        }
    }

    #[test]
    fn allocation_skips_used_subnets_and_reuses_released_ones_last() {
        let mut a = Allocations::default();
        a.occupy("old", 1);
        assert_eq!(a.allocate("n0", 4), Some(0));
        assert_eq!(a.allocate("n0", 4), Some(0), "stable per node");
        assert_eq!(a.allocate("n2", 4), Some(2));
        assert_eq!(a.allocate("n3", 4), Some(3));
        assert_eq!(a.allocate("n4", 4), None, "exhausted");
        a.release("n2");
        assert_eq!(a.allocate("n4", 4), Some(2));
    }
}
