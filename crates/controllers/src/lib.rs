//! Skiff's controller manager: the control loops that make the API's objects mean
//! something (namespace deletion, default service accounts, the root-CA ConfigMap, garbage
//! collection, ...).
//!
//! This crate owns the control loops. It is an ordinary API client (kube-rs over HTTPS with
//! its own client certificate): it talks only to the API server and must never touch the
//! store or depend on the apiserver crate (DESIGN §1.2). The shared client plumbing (work
//! queue, informers, leader election, events) lives in `skiff-client`; here is one module
//! per controller.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod gc;
pub mod job;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod replicaset;
pub mod rootca;
pub mod serviceaccount;
pub mod statefulset;
pub mod tainteviction;
pub mod ttlafterfinished;

use skiff_client::shared::Shared;
pub use skiff_client::{config_from_kubeconfig, informer, leader, queue};

use std::future::Future;

use anyhow::Context;
use kube::Client;

/// The identity the controller manager authenticates as (its client certificate's CN).
pub const USER_NAME: &str = "system:kube-controller-manager";

/// What the controllers need beyond an API client.
#[derive(Clone, Debug)]
pub struct Options {
    /// The cluster CA bundle (PEM) published as `kube-root-ca.crt` in every namespace.
    pub root_ca_pem: String,
    /// This process's identity in the leader-election Lease.
    pub identity: String,
    /// The range node pod CIDRs are cut from; `None` leaves `spec.podCIDR` alone.
    pub cluster_cidr: Option<nodeipam::ClusterCidr>,
    /// How long a node may go without heartbeats before it is judged unreachable.
    pub node_monitor_grace: std::time::Duration,
    /// Which controllers run.
    pub selection: Selection,
    /// Finished pods kept before the pod GC deletes the oldest (0: keep all).
    pub terminated_pod_gc_threshold: usize,
}

/// Runs every controller until `shutdown` completes. Controllers run only while this
/// process holds the `kube-system/kube-controller-manager` Lease.
pub async fn run(
    config: kube::Config,
    opts: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let config = skiff_client::identify(config, "kube-controller-manager");
    let client = Client::try_from(config).context("building the API client")?;
    leader::run_while_leader(
        client.clone(),
        "kube-system",
        "kube-controller-manager",
        &opts.identity,
        || run_controllers(client.clone(), opts.clone()),
        shutdown,
    )
    .await
}

/// A controller's run loop.
type RunLoop = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// How a controller starts (given the process's shared informers, which carry the API
/// client); `None` when its options leave it nothing to do.
type Start = fn(&Shared, &Options) -> Option<RunLoop>;

/// Every controller by its upstream `--controllers` name, in start order.
pub const CONTROLLERS: &[(&str, Start)] = &[
    ("namespace", |s, _| {
        Some(Box::pin(namespace::run(s.client().clone())))
    }),
    ("serviceaccount", |s, _| {
        Some(Box::pin(serviceaccount::run(s.client().clone())))
    }),
    ("root-ca-cert-publisher", |s, o| {
        Some(Box::pin(rootca::run(
            s.client().clone(),
            o.root_ca_pem.clone(),
        )))
    }),
    ("garbagecollector", |s, _| {
        Some(Box::pin(gc::run(s.client().clone())))
    }),
    ("job", |s, _| Some(Box::pin(job::run(s.client().clone())))),
    ("cronjob", |s, _| {
        Some(Box::pin(cronjob::run(s.client().clone())))
    }),
    ("ttl-after-finished", |s, _| {
        Some(Box::pin(ttlafterfinished::run(s.client().clone())))
    }),
    ("daemonset", |s, _| {
        Some(Box::pin(daemonset::run(s.clone())))
    }),
    ("statefulset", |s, _| {
        Some(Box::pin(statefulset::run(s.client().clone())))
    }),
    ("nodeipam", |s, o| {
        let range = o.cluster_cidr?;
        Some(Box::pin(nodeipam::run(s.client().clone(), range)))
    }),
    ("nodelifecycle", |s, o| {
        Some(Box::pin(nodelifecycle::run(
            s.clone(),
            o.node_monitor_grace,
        )))
    }),
    ("taint-eviction", |s, _| {
        Some(Box::pin(tainteviction::run(s.clone())))
    }),
    ("endpoint", |s, _| Some(Box::pin(endpoints::run(s.clone())))),
    ("endpointslice", |s, _| {
        Some(Box::pin(endpointslice::run(s.clone())))
    }),
    ("replicaset", |s, _| {
        Some(Box::pin(replicaset::run::<
            k8s_openapi::api::apps::v1::ReplicaSet,
        >(s.clone())))
    }),
    ("replicationcontroller", |s, _| {
        Some(Box::pin(replicaset::run::<
            k8s_openapi::api::core::v1::ReplicationController,
        >(s.clone())))
    }),
    ("disruption", |s, _| {
        Some(Box::pin(disruption::run(s.clone())))
    }),
    ("podgc", |s, o| {
        Some(Box::pin(podgc::run(
            s.clone(),
            o.terminated_pod_gc_threshold,
        )))
    }),
    ("deployment", |s, _| {
        Some(Box::pin(deployment::run(s.client().clone())))
    }),
];

async fn run_controllers(client: Client, opts: Options) -> anyhow::Result<()> {
    // One watch and cache per shared type for all controllers, dropped (and stopped) with
    // them when leadership is lost.
    let shared = Shared::new(client);
    let enabled: Vec<RunLoop> = CONTROLLERS
        .iter()
        .filter(|(name, _)| opts.selection.enabled(name))
        .filter_map(|(_, start)| start(&shared, &opts))
        .collect();
    tracing::info!("controller manager: starting {} controllers", enabled.len());
    futures::future::try_join_all(enabled).await?;
    Ok(())
}

/// Which controllers run, from upstream's `--controllers` syntax: `*` is every controller,
/// `name` turns one on, `-name` turns one off (names with or without the `-controller`
/// suffix upstream added in 1.27).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    all: bool,
    on: Vec<String>,
    off: Vec<String>,
}

impl Selection {
    /// Every controller.
    pub fn all() -> Self {
        Selection {
            all: true,
            ..Default::default()
        }
    }

    /// Parses `--controllers` entries; unknown names are an error naming the known ones.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let known: Vec<&str> = CONTROLLERS.iter().map(|(n, _)| *n).collect();
        let mut sel = Selection::default();
        for e in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if e == "*" {
                sel.all = true;
                continue;
            }
            let (off, name) = match e.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, e),
            };
            let name = name.strip_suffix("-controller").unwrap_or(name);
            if !known.contains(&name) {
                return Err(format!(
                    "unknown controller {name:?}; known controllers: {}",
                    known.join(", ")
                ));
            }
            if off {
                sel.off.push(name.into());
            } else {
                sel.on.push(name.into());
            }
        }
        Ok(sel)
    }

    pub fn enabled(&self, name: &str) -> bool {
        if self.off.iter().any(|n| n == name) {
            return false;
        }
        self.all || self.on.iter().any(|n| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_follows_upstream_syntax() {
        let s = |e: &[&str]| Selection::parse(&e.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        let sel = s(&["*", "-nodelifecycle-controller"]).unwrap();
        assert!(sel.enabled("namespace") && !sel.enabled("nodelifecycle"));
        let only = s(&["namespace"]).unwrap();
        assert!(only.enabled("namespace") && !only.enabled("garbagecollector"));
        let err = s(&["*", "-nope"]).unwrap_err();
        assert!(
            err.contains("unknown controller \"nope\"") && err.contains("nodeipam"),
            "{err}"
        );
    }
}
