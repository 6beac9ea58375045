//! rustls configurations that follow the files on disk.
//!
//! The serving certificate is resolved per handshake from an [`ArcSwap`], so
//! [`ServerTls::reload`] after a renewal takes effect on the next connection. The client-CA
//! bundle is baked into a `ServerConfig`, so a changed bundle builds a new config and swaps
//! it in; the accept loop must call [`ServerTls::config`] (or [`ServerTls::acceptor`]) per
//! connection rather than once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::files::read_required;
use crate::PkiError;

/// The crypto provider every config here uses: aws-lc-rs, passed explicitly so nothing
/// depends on (or fights over) the process-global default.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Serves whatever certificate and key were last loaded from two files.
pub struct ReloadingCertResolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for ReloadingCertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCertResolver")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingCertResolver {
    pub fn new(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, PkiError> {
        let key = load_certified_key(cert_path, key_path, &provider)?;
        Ok(ReloadingCertResolver {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: ArcSwap::from_pointee(key),
        })
    }

    /// Re-read the files. On any error the previous certificate stays in service.
    pub fn reload(&self) -> Result<(), PkiError> {
        let key = load_certified_key(&self.cert_path, &self.key_path, &self.provider)?;
        self.current.store(Arc::new(key));
        Ok(())
    }

    /// The certificate new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for ReloadingCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The API server's TLS: live serving certificate, optional client certificates verified
/// against a reloadable CA bundle, ALPN `h2` then `http/1.1`.
pub struct ServerTls {
    provider: Arc<CryptoProvider>,
    resolver: Arc<ReloadingCertResolver>,
    client_ca_path: PathBuf,
    /// The bundle bytes the current config was built from; also serialises CA reloads.
    client_ca: Mutex<Vec<u8>>,
    config: ArcSwap<ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("resolver", &self.resolver)
            .field("client_ca_path", &self.client_ca_path)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Load the serving certificate and key and the client-CA bundle (every certificate in
    /// the PEM file is trusted, so a rotation can list old and new CAs).
    pub fn new(cert_path: &Path, key_path: &Path, client_ca_path: &Path) -> Result<Self, PkiError> {
        let provider = provider();
        let resolver = Arc::new(ReloadingCertResolver::new(
            cert_path,
            key_path,
            provider.clone(),
        )?);
        let bundle = read_required(client_ca_path)?;
        let config = build_server_config(&provider, &resolver, client_ca_path, &bundle)?;
        Ok(ServerTls {
            provider,
            resolver,
            client_ca_path: client_ca_path.to_path_buf(),
            client_ca: Mutex::new(bundle),
            config: ArcSwap::from_pointee(config),
        })
    }

    /// The configuration for the next accepted connection.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }

    /// An acceptor for the next accepted connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config())
    }

    /// The serving-certificate resolver shared by every config this builds.
    pub fn resolver(&self) -> &Arc<ReloadingCertResolver> {
        &self.resolver
    }

    /// Re-read the serving certificate and key and the client-CA bundle. Either failing
    /// leaves what was served before in place.
    pub fn reload(&self) -> Result<(), PkiError> {
        self.reload_cert()?;
        self.reload_client_ca()?;
        Ok(())
    }

    /// Re-read the serving certificate and key; the next handshake uses them.
    pub fn reload_cert(&self) -> Result<(), PkiError> {
        self.resolver.reload()
    }

    /// Re-read the client-CA bundle and, if it changed, swap in a new `ServerConfig`.
    /// Returns whether it changed.
    pub fn reload_client_ca(&self) -> Result<bool, PkiError> {
        let mut current = self
            .client_ca
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bundle = read_required(&self.client_ca_path)?;
        if *current == bundle {
            return Ok(false);
        }
        let config = build_server_config(
            &self.provider,
            &self.resolver,
            &self.client_ca_path,
            &bundle,
        )?;
        self.config.store(Arc::new(config));
        *current = bundle;
        Ok(true)
    }
}

fn build_server_config(
    provider: &Arc<CryptoProvider>,
    resolver: &Arc<ReloadingCertResolver>,
    ca_path: &Path,
    bundle: &[u8],
) -> Result<ServerConfig, PkiError> {
    let roots = Arc::new(root_store(ca_path, bundle)?);
    // Anonymous and bearer-token clients present no certificate; one that does present a
    // certificate must chain to the bundle.
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| PkiError::Tls(format!("client verifier from {}: {e}", ca_path.display())))?;
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A client configuration trusting `ca_pem` and, optionally, presenting a client
/// certificate: for in-process clients, probes and tests. ALPN offers `h2`, `http/1.1`.
pub fn client_config(
    ca_pem: &str,
    client_cert: Option<(&str, &str)>,
) -> Result<ClientConfig, PkiError> {
    let ca = Path::new("<CA bundle>");
    let roots = root_store(ca, ca_pem.as_bytes())?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let p = Path::new("<client certificate>");
            let certs = parse_certs(p, cert_pem.as_bytes())?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| PkiError::invalid(p, format!("not a PEM private key: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| PkiError::Tls(format!("client certificate: {e}")))?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn parse_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::invalid(path, format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(PkiError::invalid(path, "contains no PEM certificate"));
    }
    Ok(certs)
}

fn root_store(path: &Path, pem: &[u8]) -> Result<RootCertStore, PkiError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(path, pem)? {
        roots
            .add(cert)
            .map_err(|e| PkiError::invalid(path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn load_certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, PkiError> {
    let certs = parse_certs(cert_path, &read_required(cert_path)?)?;
    let key = PrivateKeyDer::from_pem_slice(&read_required(key_path)?)
        .map_err(|e| PkiError::invalid(key_path, format!("not a PEM private key: {e}")))?;
    CertifiedKey::from_der(certs, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => PkiError::invalid(
            key_path,
            format!("does not match the certificate in {}", cert_path.display()),
        ),
        e => PkiError::invalid(key_path, format!("unusable private key: {e}")),
    })
}
