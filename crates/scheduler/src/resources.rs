//! Resource quantities and a pod's effective requests, computed once per pod the way
//! upstream's `resource.PodRequests` does (init containers, restartable sidecars, overhead).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Requests assumed for a container without cpu/memory requests when scoring
/// (upstream's `DefaultMilliCPURequest` and `DefaultMemoryRequest`).
pub const DEFAULT_MILLI_CPU: i64 = 100;
pub const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// Amounts of the resources the scheduler accounts for. Extended resources are kept in a
/// small sorted list (pods rarely ask for more than one or two).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub scalar: Vec<(String, i64)>,
}

impl Resources {
    pub fn from_map(map: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        if let Some(map) = map {
            for (name, q) in map {
                r.set(name, q);
            }
        }
        r
    }

    fn set(&mut self, name: &str, q: &Quantity) {
        match name {
            "cpu" => self.milli_cpu = parse_milli(&q.0).unwrap_or(0),
            "memory" => self.memory = parse_value(&q.0).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage = parse_value(&q.0).unwrap_or(0),
            "pods" => {}
            n if is_scalar(n) => {
                let v = parse_value(&q.0).unwrap_or(0);
                self.set_scalar(n, v);
            }
            _ => {}
        }
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }

    fn set_scalar(&mut self, name: &str, v: i64) {
        match self.scalar.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalar[i].1 = v,
            Err(i) => self.scalar.insert(i, (name.to_string(), v)),
        }
    }

    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        for (n, v) in &o.scalar {
            let cur = self.scalar(n);
            self.set_scalar(n, cur + v);
        }
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        for (n, v) in &o.scalar {
            let cur = self.scalar(n);
            self.set_scalar(n, cur - v);
        }
    }

    /// Element-wise maximum.
    pub fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (n, v) in &o.scalar {
            let cur = self.scalar(n);
            self.set_scalar(n, cur.max(*v));
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.iter().all(|(_, v)| *v == 0)
    }
}

/// Extended resources (`example.com/gpu`) and hugepages are accounted as scalars.
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/"))
        || name.starts_with("attachable-volumes-")
}

/// A pod's requests and its "non-zero" cpu/memory requests (scoring's defaults for
/// containers that request nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodRequests {
    pub requests: Resources,
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
}

fn container_requests(c: &Container) -> (Resources, i64, i64) {
    let map = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let r = Resources::from_map(map);
    let has = |k: &str| map.is_some_and(|m| m.contains_key(k));
    let nz_cpu = if has("cpu") {
        r.milli_cpu
    } else {
        DEFAULT_MILLI_CPU
    };
    let nz_mem = if has("memory") {
        r.memory
    } else {
        DEFAULT_MEMORY
    };
    (r, nz_cpu, nz_mem)
}

/// Upstream's `PodRequests`: regular containers and sidecars run together; each ordinary
/// init container runs alone next to the sidecars started before it; the pod needs the
/// larger of the two, plus its overhead.
pub fn pod_requests(pod: &Pod) -> PodRequests {
    let Some(spec) = pod.spec.as_ref() else {
        return PodRequests::default();
    };
    let mut reqs = Resources::default();
    let (mut nz_cpu, mut nz_mem) = (0i64, 0i64);
    for c in &spec.containers {
        let (r, c_cpu, c_mem) = container_requests(c);
        reqs.add(&r);
        nz_cpu += c_cpu;
        nz_mem += c_mem;
    }
    let mut sidecars = Resources::default();
    let (mut sc_cpu, mut sc_mem) = (0i64, 0i64);
    let mut init_max = Resources::default();
    let (mut init_cpu, mut init_mem) = (0i64, 0i64);
    for c in spec.init_containers.iter().flatten() {
        let (r, c_cpu, c_mem) = container_requests(c);
        let (need, need_cpu, need_mem) = if c.restart_policy.as_deref() == Some("Always") {
            reqs.add(&r);
            nz_cpu += c_cpu;
            nz_mem += c_mem;
            sidecars.add(&r);
            sc_cpu += c_cpu;
            sc_mem += c_mem;
            (sidecars.clone(), sc_cpu, sc_mem)
        } else {
            let mut t = r;
            t.add(&sidecars);
            (t, c_cpu + sc_cpu, c_mem + sc_mem)
        };
        init_max.max_with(&need);
        init_cpu = init_cpu.max(need_cpu);
        init_mem = init_mem.max(need_mem);
    }
    reqs.max_with(&init_max);
    nz_cpu = nz_cpu.max(init_cpu);
    nz_mem = nz_mem.max(init_mem);
    if let Some(overhead) = spec.overhead.as_ref() {
        let o = Resources::from_map(Some(overhead));
        reqs.add(&o);
        nz_cpu += o.milli_cpu;
        nz_mem += o.memory;
    }
    PodRequests {
        requests: reqs,
        non_zero_cpu: nz_cpu,
        non_zero_memory: nz_mem,
    }
}

/// A quantity in thousandths, rounded up (`"100m"` → 100, `"2"` → 2000).
pub fn parse_milli(s: &str) -> Option<i64> {
    let (num, scale) = parse(s)?;
    Some(scaled(num, scale + 3))
}

/// A quantity as an integer, rounded up (`"1Ki"` → 1024, `"500m"` → 1).
pub fn parse_value(s: &str) -> Option<i64> {
    let (num, scale) = parse(s)?;
    Some(scaled(num, scale))
}

/// `num * 10^exp10`, rounding up; `num` is a decimal mantissa times a binary factor folded in.
fn scaled(num: Num, exp10: i32) -> i64 {
    // num.value = digits * 10^(-frac) * 2^bin
    let mut v: i128 = num.digits;
    let mut e = exp10 - num.frac;
    let mut b = num.bin;
    while b > 0 {
        v = v.saturating_mul(2);
        b -= 1;
    }
    while e > 0 {
        v = v.saturating_mul(10);
        e -= 1;
    }
    let mut rem = false;
    while e < 0 {
        if v % 10 != 0 {
            rem = true;
        }
        v /= 10;
        e += 1;
    }
    if rem && v >= 0 {
        v += 1;
    }
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

struct Num {
    digits: i128,
    frac: i32,
    bin: i32,
}

/// Parses a Kubernetes quantity into a mantissa and a decimal exponent.
fn parse(s: &str) -> Option<(Num, i32)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(end);
    let (neg, number) = match number.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut digits: i128 = 0;
    for c in int.chars().chain(frac.chars()) {
        digits = digits
            .checked_mul(10)?
            .checked_add(c.to_digit(10)? as i128)?;
    }
    if neg {
        digits = -digits;
    }
    let (exp, bin) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        e if e.starts_with('e') || e.starts_with('E') => (e[1..].parse::<i32>().ok()?, 0),
        _ => return None,
    };
    Some((
        Num {
            digits,
            frac: frac.len() as i32,
            bin,
        },
        exp,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("2"), Some(2000));
        assert_eq!(parse_milli("0.5"), Some(500));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_value("1Ki"), Some(1024));
        assert_eq!(parse_value("32Gi"), Some(32 << 30));
        assert_eq!(parse_value("500Mi"), Some(500 << 20));
        assert_eq!(parse_value("1G"), Some(1_000_000_000));
        assert_eq!(parse_value("1e3"), Some(1000));
        assert_eq!(parse_value("500m"), Some(1));
        assert_eq!(parse_value("110"), Some(110));
        assert_eq!(parse_value("x"), None);
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    #[test]
    fn init_containers_take_the_max_and_sidecars_add_up() {
        let p = pod(json!({
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "2"}}},
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                {"name": "i2", "resources": {"requests": {"cpu": "1"}}},
            ],
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "300m", "memory": "1Gi", "example.com/gpu": "1"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m"}}},
            ],
            "overhead": {"cpu": "10m"}
        }));
        let r = pod_requests(&p);
        // regular 500m + sidecar 500m = 1000m; init i1 alone 2000m; i2 with sidecar 1500m.
        assert_eq!(r.requests.milli_cpu, 2010);
        assert_eq!(r.requests.memory, 2 << 30);
        assert_eq!(r.requests.scalar("example.com/gpu"), 1);
        // b has no memory request: scoring counts the default for it.
        assert_eq!(r.non_zero_memory, (2 << 30) + DEFAULT_MEMORY);
    }

    #[test]
    fn empty_requests_get_defaults_for_scoring() {
        let r = pod_requests(&pod(json!({"containers": [{"name": "a"}]})));
        assert!(r.requests.is_zero());
        assert_eq!(r.non_zero_cpu, DEFAULT_MILLI_CPU);
        assert_eq!(r.non_zero_memory, DEFAULT_MEMORY);
    }
}
