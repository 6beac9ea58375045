//! Pod addresses from the node's `spec.podCIDRs`, as the host-local IPAM plugin hands them
//! out: the network address and the first address (the bridge gateway) are never given to
//! pods, nor is the IPv4 broadcast address; allocation goes round-robin so a just-released
//! address is not reused at once.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `10.42.1.0/24` or `fd00::/64` (host bits are cleared).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.trim().split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        if prefix > bits(addr) {
            return None;
        }
        let base = to_u128(addr) & !host_mask(bits(addr), prefix);
        Some(Cidr {
            addr: from_u128(addr, base),
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4()
            && to_u128(ip) & !host_mask(bits(ip), self.prefix) == to_u128(self.addr)
    }

    fn host_bits(&self) -> u32 {
        u32::from(bits(self.addr) - self.prefix)
    }

    /// The offsets (from the network address) pods may get: `[2, last)`.
    fn usable(&self) -> Option<(u128, u128)> {
        let host = self.host_bits();
        if host < 2 {
            return None;
        }
        // Cap IPv6 ranges: a node never runs more than 2^32 pods.
        let size = 1u128 << host.min(32);
        let end = if self.addr.is_ipv4() || host <= 32 {
            size - 1
        } else {
            size
        };
        Some((2, end))
    }

    fn at(&self, offset: u128) -> IpAddr {
        from_u128(self.addr, to_u128(self.addr) + offset)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn host_mask(bits: u8, prefix: u8) -> u128 {
    let host = u32::from(bits - prefix);
    if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(like: IpAddr, v: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4((v as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(v.into()),
    }
}

struct Range {
    cidr: Cidr,
    next: u128,
    used: HashSet<u128>,
}

/// One node's pod address allocator: one address per pod from each of the node's pod CIDRs
/// (one per IP family, primary first).
#[derive(Default)]
pub struct Ipam {
    ranges: Vec<Range>,
    by_pod: HashMap<String, Vec<IpAddr>>,
}

impl Ipam {
    pub fn cidrs(&self) -> Vec<Cidr> {
        self.ranges.iter().map(|r| r.cidr).collect()
    }

    /// Changes the pod CIDRs; addresses already given out stay reserved where they still fit.
    pub fn set_cidrs(&mut self, cidrs: &[Cidr]) {
        if self.cidrs() == cidrs {
            return;
        }
        self.ranges = cidrs
            .iter()
            .map(|c| Range {
                cidr: *c,
                next: 2,
                used: HashSet::new(),
            })
            .collect();
        let held: Vec<(String, Vec<IpAddr>)> = self.by_pod.drain().collect();
        for (pod, ips) in held {
            self.reserve(&pod, &ips);
        }
    }

    pub fn has_cidrs(&self) -> bool {
        !self.ranges.is_empty()
    }

    /// The pod's addresses: the ones it already holds, else new ones. `None` when there is
    /// no pod CIDR yet or a range is full.
    pub fn allocate(&mut self, pod: &str) -> Option<Vec<IpAddr>> {
        if let Some(ips) = self.by_pod.get(pod) {
            return Some(ips.clone());
        }
        if self.ranges.is_empty() {
            return None;
        }
        let full = |r: &Range| match r.cidr.usable() {
            Some((lo, hi)) => (r.used.len() as u128) >= hi - lo,
            None => true,
        };
        if self.ranges.iter().any(full) {
            return None;
        }
        let mut picked = Vec::with_capacity(self.ranges.len());
        for r in &mut self.ranges {
            let (lo, hi) = r.cidr.usable()?;
            let mut off = r.next.clamp(lo, hi - 1);
            while r.used.contains(&off) {
                off = if off + 1 >= hi { lo } else { off + 1 };
            }
            r.used.insert(off);
            r.next = if off + 1 >= hi { lo } else { off + 1 };
            picked.push(off);
        }
        let ips: Vec<IpAddr> = self
            .ranges
            .iter()
            .zip(&picked)
            .map(|(r, off)| r.cidr.at(*off))
            .collect();
        self.by_pod.insert(pod.to_string(), ips.clone());
        Some(ips)
    }

    /// Marks addresses a pod already has (from its status) as taken, e.g. after a restart.
    /// Addresses outside the node's ranges are ignored.
    pub fn reserve(&mut self, pod: &str, ips: &[IpAddr]) {
        let mut kept = Vec::new();
        for ip in ips {
            if let Some(r) = self.ranges.iter_mut().find(|r| r.cidr.contains(*ip)) {
                r.used.insert(to_u128(*ip) - to_u128(r.cidr.addr));
                kept.push(*ip);
            }
        }
        if !kept.is_empty() {
            self.by_pod.insert(pod.to_string(), kept);
        }
    }

    pub fn release(&mut self, pod: &str) {
        if let Some(ips) = self.by_pod.remove(pod) {
            for ip in ips {
                if let Some(r) = self.ranges.iter_mut().find(|r| r.cidr.contains(ip)) {
                    r.used.remove(&(to_u128(ip) - to_u128(r.cidr.addr)));
                }
            }
        }
    }

    pub fn allocated(&self) -> usize {
        self.by_pod.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_contains() {
        let c = Cidr::parse("10.42.3.7/24").unwrap();
        assert_eq!(c.to_string(), "10.42.3.0/24");
        assert!(c.contains(ip("10.42.3.200")));
        assert!(!c.contains(ip("10.42.4.1")));
        assert!(!c.contains(ip("::1")));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
        let v6 = Cidr::parse("fd00:42:0:1::/64").unwrap();
        assert!(v6.contains(ip("fd00:42:0:1::5")));
    }

    #[test]
    fn skips_network_gateway_and_broadcast() {
        let mut m = Ipam::default();
        m.set_cidrs(&[Cidr::parse("10.42.1.0/29").unwrap()]);
        let got: Vec<IpAddr> = (0..5)
            .map(|i| m.allocate(&format!("p{i}")).unwrap()[0])
            .collect();
        let want: Vec<IpAddr> = (2..7).map(|h| ip(&format!("10.42.1.{h}"))).collect();
        assert_eq!(got, want);
        assert!(m.allocate("p5").is_none(), "a /29 holds 5 pods");
        // The same pod asks again: same address.
        assert_eq!(m.allocate("p0").unwrap()[0], ip("10.42.1.2"));
        m.release("p2");
        assert_eq!(m.allocate("p6").unwrap()[0], ip("10.42.1.4"));
    }

    #[test]
    fn round_robin_after_release() {
        let mut m = Ipam::default();
        m.set_cidrs(&[Cidr::parse("10.42.0.0/24").unwrap()]);
        assert_eq!(m.allocate("a").unwrap()[0], ip("10.42.0.2"));
        m.release("a");
        assert_eq!(m.allocate("b").unwrap()[0], ip("10.42.0.3"));
    }

    #[test]
    fn no_cidr_no_address_and_reservations_survive_changes() {
        let mut m = Ipam::default();
        assert!(m.allocate("a").is_none());
        m.reserve("old", &[ip("10.42.0.2")]);
        assert_eq!(m.allocated(), 0, "outside every range");
        m.set_cidrs(&[Cidr::parse("10.42.0.0/24").unwrap()]);
        m.reserve("old", &[ip("10.42.0.2")]);
        assert_eq!(m.allocate("new").unwrap()[0], ip("10.42.0.3"));
        m.set_cidrs(&[
            Cidr::parse("10.42.0.0/24").unwrap(),
            Cidr::parse("fd00::/64").unwrap(),
        ]);
        assert_eq!(m.allocate("old").unwrap(), vec![ip("10.42.0.2")]);
        let dual = m.allocate("dual").unwrap();
        assert_eq!(dual, vec![ip("10.42.0.4"), ip("fd00::2")]);
    }
}
