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
pub mod history;
pub mod informer;
pub mod leader;
pub mod nodeaffinity;
pub mod queue;
pub mod selector;
pub mod shared;
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

/// Names the component in every request's `User-Agent`, as client-go does
/// (`kube-controller-manager/v1.33.0 (linux/amd64) skiff/0.1.0`). The API server takes the
/// first token as the field manager of writes without `fieldManager`, so managedFields say
/// which component wrote what.
pub fn identify(mut config: kube::Config, component: &str) -> kube::Config {
    let ua = format!(
        "{component}/v1.33.0 ({}/{}) skiff/{}",
        std::env::consts::OS,
        match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        },
        env!("CARGO_PKG_VERSION")
    );
    if let Ok(v) = http::HeaderValue::from_str(&ua) {
        config
            .headers
            .retain(|(k, _)| k != http::header::USER_AGENT);
        config.headers.push((http::header::USER_AGENT, v));
    }
    config
}

/// A client configuration from a kubeconfig file.
pub async fn config_from_kubeconfig_file(path: &std::path::Path) -> anyhow::Result<kube::Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    config_from_kubeconfig(&text)
        .await
        .with_context(|| format!("in {}", path.display()))
}
