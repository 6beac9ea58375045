//! Skiff's controller manager: the control loops that make the API's objects mean
//! something (namespace deletion, default service accounts, the root-CA ConfigMap, garbage
//! collection, ...).
//!
//! This crate owns the control loops. It is an ordinary API client (kube-rs over HTTPS with
//! its own client certificate): it talks only to the API server and must never touch the
//! store or depend on the apiserver crate (DESIGN §1.2). The shared client plumbing (work
//! queue, informers, leader election, events) lives in `skiff-client`; here is one module
//! per controller.

pub mod gc;
pub mod namespace;
pub mod nodeipam;
pub mod rootca;
pub mod serviceaccount;

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
}

/// Runs every controller until `shutdown` completes. Controllers run only while this
/// process holds the `kube-system/kube-controller-manager` Lease.
pub async fn run(
    config: kube::Config,
    opts: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
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

async fn run_controllers(client: Client, opts: Options) -> anyhow::Result<()> {
    tracing::info!("controller manager: starting controllers");
    tokio::try_join!(
        namespace::run(client.clone()),
        serviceaccount::run(client.clone()),
        rootca::run(client.clone(), opts.root_ca_pem.clone()),
        gc::run(client.clone()),
        async {
            match opts.cluster_cidr {
                Some(range) => nodeipam::run(client.clone(), range).await,
                None => Ok(()),
            }
        },
    )?;
    Ok(())
}
