//! Skiff's public-key infrastructure.
//!
//! This crate owns everything cryptographic that lives on disk: the cluster CA, the API
//! server's serving certificate, the admin client certificate, the service-account signing
//! key pair (all under `DATA_DIR/pki/`, files 0600, directory 0700), the kubeconfigs built
//! from them, and the `rustls` server configuration that serves them with a certificate
//! and client-CA bundle that reload without a restart. It also maps a verified client
//! certificate to a user ([`identity`]).
//!
//! It must not serve HTTP, talk to the store, or decide what a user may do: the API server
//! owns connections, authentication chains and authorization, and only *uses* what this
//! crate produces. It never replaces an existing CA on its own: trust changes are an
//! operator's decision, so damaged files are reported as errors naming the file.
//!
//! The crypto provider is always `rustls::crypto::aws_lc_rs`, passed explicitly; nothing
//! here installs a process-global default.

mod error;
mod files;
mod host;
pub mod identity;
pub mod kubeconfig;
mod pki;
pub mod tls;

pub use error::PkiError;
pub use identity::UserInfo;
pub use pki::{Pki, PkiOptions, Renewed, ServingSans, CA_VALIDITY, LEAF_VALIDITY};

/// The certificate and key types callers pass around, re-exported so they need no direct
/// `rustls-pki-types` dependency.
pub use rustls::pki_types::CertificateDer;
