//! In-process cost of server-side apply's pure logic for a Deployment with about 50 applied
//! fields: the apply merge with ownership and conflict checks (`apply::apply`), and the
//! managedFields bookkeeping every update pays (`apply::track_update`). No server, no I/O.
//!
//! `cargo bench -p skiff-api --bench apply`

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skiff_api::apply::{self, Scope, Ty, Write};

/// A Deployment whose configuration has about 50 leaf fields.
fn deployment(image: &str) -> Value {
    let containers: Vec<Value> = (0..3)
        .map(|i| {
            json!({
                "name": format!("c{i}"),
                "image": format!("{image}:{i}"),
                "args": ["--a", "--b"],
                "ports": [{"containerPort": 8000 + i, "name": format!("p{i}")}],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                    "requests": {"cpu": "100m", "memory": "128Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": 8000 + i},
                    "periodSeconds": 5},
            })
        })
        .collect();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default",
            "labels": {"app": "web", "tier": "front"}, "annotations": {"owner": "team"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {"containers": containers, "serviceAccountName": "web",
                    "terminationGracePeriodSeconds": 10}
            }
        }
    })
}

fn leaves(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.values().map(leaves).sum(),
        Value::Array(a) => a.iter().map(leaves).sum(),
        _ => 1,
    }
}

fn measure(name: &str, n: usize, mut f: impl FnMut()) {
    for _ in 0..n / 10 {
        f();
    }
    let mut rounds: Vec<Duration> = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        rounds.push(start.elapsed());
    }
    rounds.sort();
    let median = rounds[2];
    println!(
        "{name}: {:.0}/s (median of 5 rounds of {n}; {:.1} µs each)",
        n as f64 / median.as_secs_f64(),
        median.as_secs_f64() * 1e6 / n as f64
    );
}

fn main() {
    let ty = Ty::root("apps", "v1", "Deployment");
    let w = |manager: &'static str| Write {
        ty,
        api_version: "apps/v1",
        manager,
        scope: Scope::Main {
            status_subresource: true,
        },
        now: "2026-01-01T00:00:00Z",
    };
    let v1 = deployment("nginx");
    let v2 = deployment("httpd");
    println!("applied configuration: {} leaf values", leaves(&v1));
    let live = apply::apply(&w("kubectl"), None, &v1, false).unwrap();
    measure("create-on-apply", 2_000, || {
        std::hint::black_box(apply::apply(&w("kubectl"), None, &v1, false).unwrap());
    });
    measure("re-apply, no change", 2_000, || {
        std::hint::black_box(apply::apply(&w("kubectl"), Some(&live), &v1, false).unwrap());
    });
    measure("re-apply, 3 images changed", 2_000, || {
        std::hint::black_box(apply::apply(&w("kubectl"), Some(&live), &v2, false).unwrap());
    });
    measure("apply by another manager, 3 conflicts", 2_000, || {
        std::hint::black_box(apply::apply(&w("other"), Some(&live), &v2, false).unwrap_err());
    });
    let mut updated = live.clone();
    updated["spec"]["replicas"] = json!(5);
    measure("update tracking (PUT/patch)", 2_000, || {
        let mut u = updated.clone();
        apply::track_update(&w("kubectl-edit"), Some(&live), &mut u);
        std::hint::black_box(u);
    });
}
