//! Plumbing shared by Skiff's components that talk to the API server as ordinary clients
//! (controller manager, scheduler, node agent): building a client from a kubeconfig, a
//! work queue with client-go's semantics ([`queue`]), watch-fed stores ([`informer`]),
//! client-go-compatible Lease leader election ([`leader`]), taint/toleration matching
//! ([`taints`]), an event recorder that aggregates like client-go's ([`events`]), and what
//! controllers of pods share: label selectors ([`selector`]), controller references and
//! adoption ([`controllerref`]) and creation/deletion expectations ([`expectations`]).
//!
//! It holds no control loop of its own and must never touch the store or depend on the
//! apiserver crate: everything here goes through the API (DESIGN §1.2).

pub mod controllerref;
pub mod events;
pub mod expectations;
pub mod informer;
pub mod leader;
pub mod queue;
pub mod selector;
pub mod taints;
pub mod workload;

use anyhow::Context;

/// A client configuration from kubeconfig text (one context, embedded credentials).
pub async fn config_from_kubeconfig(text: &str) -> anyhow::Result<kube::Config> {
    let kc = kube::config::Kubeconfig::from_yaml(text).context("parsing the kubeconfig")?;
    kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("building the API client configuration")
}

/// A client configuration from a kubeconfig file.
pub async fn config_from_kubeconfig_file(path: &std::path::Path) -> anyhow::Result<kube::Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    config_from_kubeconfig(&text)
        .await
        .with_context(|| format!("in {}", path.display()))
}
