//! Who a verified client certificate says its holder is.

use rustls::pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// A user as Kubernetes authenticators report it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

/// Map the peer's certificate chain (leaf first, as rustls hands it over after verifying
/// it) to a user the way kube-apiserver's x509 authenticator does: the subject's common
/// name is the user name, each organization a group. No chain, an unparsable leaf or an
/// empty common name means "not authenticated by certificate".
pub fn from_peer_certs(certs: &[CertificateDer<'_>]) -> Option<UserInfo> {
    let leaf = certs.first()?;
    let (_, x509) = X509Certificate::from_der(leaf).ok()?;
    let subject = x509.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty())?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_string)
        .collect();
    Some(UserInfo { name, groups })
}
