//! The cluster CA and the certificates and keys issued from it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, RsaKeySize, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::files::{ensure_private_dir, read_optional, read_required, write_private_atomic};
use crate::{host, kubeconfig, tls, PkiError};

/// How long the cluster CA is valid.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long the serving and admin certificates are valid; they are renewed at 2/3 of that.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates start a little in the past so clients with a slightly slow clock accept them.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

const CA_CN: &str = "skiff-ca";
const APISERVER_CN: &str = "kube-apiserver";
const ADMIN_CN: &str = "kubernetes-admin";
const ADMIN_GROUP: &str = "system:masters";
const ADMIN_CLUSTER_NAME: &str = "skiff";

const CA_CRT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const APISERVER_CRT: &str = "apiserver.crt";
const APISERVER_KEY: &str = "apiserver.key";
const ADMIN_CRT: &str = "admin.crt";
const ADMIN_KEY: &str = "admin.key";
const SA_KEY: &str = "sa.key";
const SA_PUB: &str = "sa.pub";

/// What goes into the API server's serving certificate beyond the fixed names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiOptions {
    /// The service range(s), comma-separated for dual stack; the first address of each is
    /// the `kubernetes` Service's cluster IP and goes into the serving certificate.
    pub service_cidr: String,
    /// The cluster DNS domain (`kubernetes.default.svc.<domain>`).
    pub cluster_domain: String,
    /// The address the API server binds; added as a SAN unless unspecified (0.0.0.0, ::).
    pub bind_address: Option<IpAddr>,
    /// Overrides the kernel's host name.
    pub hostname: Option<String>,
    /// Add every non-loopback, non-link-local address of the host's interfaces.
    pub detect_host_addresses: bool,
    /// More DNS names or IP addresses for the serving certificate.
    pub extra_sans: Vec<String>,
}

impl Default for PkiOptions {
    fn default() -> Self {
        PkiOptions {
            service_cidr: "10.96.0.0/12".to_string(),
            cluster_domain: "cluster.local".to_string(),
            bind_address: None,
            hostname: None,
            detect_host_addresses: true,
            extra_sans: Vec::new(),
        }
    }
}

/// The subject alternative names the serving certificate must carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServingSans {
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl PkiOptions {
    /// The SANs a serving certificate needs under these options, on this host, now.
    pub fn required_serving_sans(&self) -> Result<ServingSans, PkiError> {
        let mut sans = ServingSans::default();
        let add_dns = |sans: &mut ServingSans, name: String| {
            if !sans.dns_names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                sans.dns_names.push(name);
            }
        };
        let add_ip = |sans: &mut ServingSans, ip: IpAddr| {
            if !sans.ips.contains(&ip) {
                sans.ips.push(ip);
            }
        };

        let hostname = match &self.hostname {
            Some(h) => {
                let h = h.trim().to_ascii_lowercase();
                check_dns_name(&h).map_err(|reason| PkiError::Option {
                    option: "hostname",
                    reason,
                })?;
                Some(h)
            }
            None => host::hostname().filter(|h| check_dns_name(h).is_ok()),
        };
        if let Some(h) = hostname {
            add_dns(&mut sans, h);
        }
        add_dns(&mut sans, "localhost".to_string());
        let domain = self.cluster_domain.trim().trim_end_matches('.');
        check_dns_name(domain).map_err(|reason| PkiError::Option {
            option: "cluster_domain",
            reason,
        })?;
        for name in [
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            format!("kubernetes.default.svc.{domain}"),
        ] {
            add_dns(&mut sans, name);
        }

        add_ip(&mut sans, IpAddr::V4(Ipv4Addr::LOCALHOST));
        add_ip(&mut sans, IpAddr::V6(Ipv6Addr::LOCALHOST));
        for cidr in self.service_cidr.split(',').map(str::trim) {
            if cidr.is_empty() {
                continue;
            }
            let ip = first_ip(cidr).map_err(|reason| PkiError::Option {
                option: "service_cidr",
                reason: format!("{cidr:?}: {reason}"),
            })?;
            add_ip(&mut sans, ip);
        }
        if let Some(ip) = self.bind_address.filter(|ip| !ip.is_unspecified()) {
            add_ip(&mut sans, ip);
        }
        if self.detect_host_addresses {
            for ip in host::interface_addresses() {
                add_ip(&mut sans, ip);
            }
        }
        for extra in self.extra_sans.iter().map(|s| s.trim()) {
            if extra.is_empty() {
                continue;
            }
            match extra.parse::<IpAddr>() {
                Ok(ip) => add_ip(&mut sans, ip),
                Err(_) => {
                    check_dns_name(extra).map_err(|reason| PkiError::Option {
                        option: "extra_sans",
                        reason: format!("{extra:?}: {reason}"),
                    })?;
                    add_dns(&mut sans, extra.to_ascii_lowercase());
                }
            }
        }
        Ok(sans)
    }
}

/// A DNS name as certificates accept it: labels of letters, digits and hyphens, optionally
/// a leading `*` label.
fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("a DNS name must have 1 to 253 characters".into());
    }
    for (i, label) in name.split('.').enumerate() {
        let ok = (i == 0 && label == "*")
            || (!label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-'));
        if !ok {
            return Err(format!("{name:?} is not a valid DNS name"));
        }
    }
    Ok(())
}

/// The first usable address of a CIDR: the network address plus one.
fn first_ip(cidr: &str) -> Result<IpAddr, String> {
    let (addr, prefix) = cidr
        .split_once('/')
        .ok_or("expected ADDRESS/PREFIX, e.g. 10.96.0.0/12")?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    let prefix: u32 = prefix
        .parse()
        .map_err(|_| format!("{prefix:?} is not a prefix length"))?;
    match addr {
        IpAddr::V4(v4) => {
            if prefix > 30 {
                return Err("an IPv4 service range needs a prefix of at most /30".into());
            }
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            Ok(IpAddr::V4(Ipv4Addr::from((u32::from(v4) & mask) + 1)))
        }
        IpAddr::V6(v6) => {
            if prefix > 126 {
                return Err("an IPv6 service range needs a prefix of at most /126".into());
            }
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            Ok(IpAddr::V6(Ipv6Addr::from((u128::from(v6) & mask) + 1)))
        }
    }
}

/// Which certificates [`Pki::renew_if_needed`] re-issued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Renewed {
    /// The API server serving certificate: reload the server's TLS config.
    pub serving: bool,
    /// The admin client certificate: rewrite the admin kubeconfig.
    pub admin: bool,
}

impl Renewed {
    pub fn any(&self) -> bool {
        self.serving || self.admin
    }
}

/// The cluster CA, loaded, plus the locations of everything issued from it.
pub struct Pki {
    dir: PathBuf,
    opts: PkiOptions,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    ca_not_after: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .field("ca_not_after", &self.ca_not_after)
            .finish_non_exhaustive()
    }
}

/// What a verified leaf certificate on disk says about itself.
struct LeafInfo {
    not_before: i64,
    not_after: i64,
    dns_names: Vec<String>,
    ips: Vec<IpAddr>,
}

impl LeafInfo {
    fn due_for_renewal(&self, now: i64) -> bool {
        let life = (self.not_after - self.not_before).max(0);
        now >= self.not_before + life / 3 * 2
    }

    fn covers(&self, sans: &ServingSans) -> bool {
        sans.dns_names
            .iter()
            .all(|n| self.dns_names.iter().any(|c| c.eq_ignore_ascii_case(n)))
            && sans.ips.iter().all(|ip| self.ips.contains(ip))
    }
}

#[derive(Clone, Copy)]
enum Leaf {
    Serving,
    Admin,
}

impl Leaf {
    fn files(self) -> (&'static str, &'static str) {
        match self {
            Leaf::Serving => (APISERVER_CRT, APISERVER_KEY),
            Leaf::Admin => (ADMIN_CRT, ADMIN_KEY),
        }
    }
}

impl Pki {
    /// Load the PKI under `data_dir/pki/`, creating whatever is missing on first start.
    ///
    /// The CA is never replaced: a damaged, mismatched or half-present CA is an error naming
    /// the file. The serving and admin certificates are re-issued from the CA when past 2/3
    /// of their life, and the serving certificate also when it lacks a SAN now required.
    pub fn load_or_init(data_dir: &Path, opts: &PkiOptions) -> Result<Pki, PkiError> {
        // Validate options before touching the disk.
        opts.required_serving_sans()?;
        ensure_private_dir(data_dir, false)?;
        let dir = data_dir.join("pki");
        ensure_private_dir(&dir, true)?;

        let crt_path = dir.join(CA_CRT);
        let key_path = dir.join(CA_KEY);
        let crt = read_optional(&crt_path)?;
        let key = read_optional(&key_path)?;
        let (pki, fresh) = match (crt, key) {
            (None, None) => (Self::create_ca(dir, opts)?, true),
            (Some(crt), Some(key)) => (Self::load_ca(dir, opts, &crt, &key)?, false),
            (Some(_), None) => {
                return Err(PkiError::invalid(
                    &key_path,
                    format!(
                        "missing while {} exists; restore it (a new CA would invalidate every \
                         certificate and kubeconfig issued so far)",
                        crt_path.display()
                    ),
                ))
            }
            (None, Some(_)) => {
                return Err(PkiError::invalid(
                    &crt_path,
                    format!(
                        "missing while {} exists; restore it, or remove the key to create a new CA",
                        key_path.display()
                    ),
                ))
            }
        };
        pki.ensure_leaf(Leaf::Serving, fresh)?;
        pki.ensure_leaf(Leaf::Admin, fresh)?;
        pki.ensure_service_account_key()?;
        Ok(pki)
    }

    fn create_ca(dir: PathBuf, opts: &PkiOptions) -> Result<Pki, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::crypto("generating the CA key", e))?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, CA_CN);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial()?);
        let cert = params
            .self_signed(&key)
            .map_err(|e| PkiError::crypto("signing the CA certificate", e))?;
        // Key first: a crash between the two writes leaves "key without certificate", which
        // load_or_init reports instead of silently making a second CA.
        write_private_atomic(&dir.join(CA_KEY), key.serialize_pem().as_bytes())?;
        write_private_atomic(&dir.join(CA_CRT), cert.pem().as_bytes())?;
        tracing::info!(dir = %dir.display(), "created cluster CA");
        let ca_der = cert.der().clone();
        let issuer = Issuer::from_ca_cert_der(&ca_der, key)
            .map_err(|e| PkiError::crypto("loading the new CA", e))?;
        Ok(Pki {
            dir,
            opts: opts.clone(),
            ca_pem: cert.pem(),
            ca_der,
            ca_not_after: params.not_after,
            issuer,
        })
    }

    fn load_ca(dir: PathBuf, opts: &PkiOptions, crt: &[u8], key: &[u8]) -> Result<Pki, PkiError> {
        let crt_path = dir.join(CA_CRT);
        let key_path = dir.join(CA_KEY);
        let ca_der = parse_cert_pem(&crt_path, crt)?;
        let (_, x509) = X509Certificate::from_der(&ca_der).map_err(|e| {
            PkiError::invalid(&crt_path, format!("not a valid X.509 certificate: {e}"))
        })?;
        let is_ca = x509
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(PkiError::invalid(&crt_path, "not a CA certificate"));
        }
        x509.verify_signature(None).map_err(|e| {
            PkiError::invalid(&crt_path, format!("self-signature does not verify: {e}"))
        })?;
        let now = OffsetDateTime::now_utc();
        let not_after = x509.validity().not_after.to_datetime();
        if not_after <= now {
            return Err(PkiError::invalid(
                &crt_path,
                format!("the cluster CA expired at {not_after}"),
            ));
        }
        let key_pair = parse_key_pem(&key_path, key)?;
        if key_pair.der_bytes() != &*x509.public_key().subject_public_key.data {
            return Err(PkiError::invalid(
                &key_path,
                format!("does not match the certificate in {}", crt_path.display()),
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&ca_der, key_pair)
            .map_err(|e| PkiError::invalid(&crt_path, format!("unusable as an issuer: {e}")))?;
        let ca_pem = String::from_utf8_lossy(crt).into_owned();
        Ok(Pki {
            dir,
            opts: opts.clone(),
            ca_pem,
            ca_der,
            ca_not_after: not_after,
            issuer,
        })
    }

    /// Check one leaf certificate and re-issue it when missing (both files), due, or, for the
    /// serving certificate, short of a required SAN. Returns whether it was issued.
    fn ensure_leaf(&self, leaf: Leaf, force: bool) -> Result<bool, PkiError> {
        let (crt_name, key_name) = leaf.files();
        let crt_path = self.dir.join(crt_name);
        let key_path = self.dir.join(key_name);
        let reason = if force {
            "new CA"
        } else {
            let crt = read_optional(&crt_path)?;
            let key = read_optional(&key_path)?;
            match (crt, key) {
                (None, None) => "missing",
                (Some(_), None) => {
                    return Err(PkiError::invalid(
                        &key_path,
                        format!("missing while {} exists", crt_path.display()),
                    ))
                }
                (None, Some(_)) => {
                    return Err(PkiError::invalid(
                        &crt_path,
                        format!("missing while {} exists", key_path.display()),
                    ))
                }
                (Some(crt), Some(key)) => {
                    let info = self.verify_leaf(&crt_path, &crt, &key_path, &key)?;
                    let now = OffsetDateTime::now_utc().unix_timestamp();
                    if info.due_for_renewal(now) {
                        "past 2/3 of its lifetime"
                    } else if matches!(leaf, Leaf::Serving)
                        && !info.covers(&self.opts.required_serving_sans()?)
                    {
                        "missing a required subject alternative name"
                    } else {
                        return Ok(false);
                    }
                }
            }
        };
        self.issue_leaf(leaf)?;
        tracing::info!(cert = %crt_path.display(), reason, "issued certificate");
        Ok(true)
    }

    fn issue_leaf(&self, leaf: Leaf) -> Result<(), PkiError> {
        let (crt_name, key_name) = leaf.files();
        let (crt, key) = match leaf {
            Leaf::Serving => {
                let sans = self.opts.required_serving_sans()?;
                self.issue(
                    APISERVER_CN,
                    &[],
                    &sans.dns_names,
                    &sans.ips,
                    LEAF_VALIDITY,
                    ExtendedKeyUsagePurpose::ServerAuth,
                )?
            }
            Leaf::Admin => self.issue_client_cert(ADMIN_CN, &[ADMIN_GROUP], LEAF_VALIDITY)?,
        };
        // Key first, then certificate: the certificate is what readers check for, and the
        // window in which they disagree is two renames long.
        write_private_atomic(&self.dir.join(key_name), key.as_bytes())?;
        write_private_atomic(&self.dir.join(crt_name), crt.as_bytes())?;
        Ok(())
    }

    fn verify_leaf(
        &self,
        crt_path: &Path,
        crt: &[u8],
        key_path: &Path,
        key: &[u8],
    ) -> Result<LeafInfo, PkiError> {
        let der = parse_cert_pem(crt_path, crt)?;
        let (_, x509) = X509Certificate::from_der(&der).map_err(|e| {
            PkiError::invalid(crt_path, format!("not a valid X.509 certificate: {e}"))
        })?;
        let (_, ca) = X509Certificate::from_der(&self.ca_der)
            .map_err(|e| PkiError::invalid(&self.ca_cert_path(), e.to_string()))?;
        if x509.issuer().as_raw() != ca.subject().as_raw() {
            return Err(PkiError::invalid(
                crt_path,
                format!(
                    "issued by \"{}\", not by the cluster CA \"{}\"",
                    x509.issuer(),
                    ca.subject()
                ),
            ));
        }
        x509.verify_signature(Some(ca.public_key())).map_err(|_| {
            PkiError::invalid(
                crt_path,
                format!(
                    "not signed by the cluster CA in {}",
                    self.ca_cert_path().display()
                ),
            )
        })?;
        let key_pair = parse_key_pem(key_path, key)?;
        if key_pair.der_bytes() != &*x509.public_key().subject_public_key.data {
            return Err(PkiError::invalid(
                key_path,
                format!("does not match the certificate in {}", crt_path.display()),
            ));
        }
        let mut info = LeafInfo {
            not_before: x509.validity().not_before.timestamp(),
            not_after: x509.validity().not_after.timestamp(),
            dns_names: Vec::new(),
            ips: Vec::new(),
        };
        if let Ok(Some(san)) = x509.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => info.dns_names.push(d.to_string()),
                    GeneralName::IPAddress(b) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                            info.ips.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                            info.ips.push(IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(info)
    }

    fn ensure_service_account_key(&self) -> Result<(), PkiError> {
        let key_path = self.sa_key_path();
        let pub_path = self.sa_pub_path();
        let key_pair = match read_optional(&key_path)? {
            None => {
                if read_optional(&pub_path)?.is_some() {
                    return Err(PkiError::invalid(
                        &key_path,
                        format!(
                            "missing while {} exists; restore it (a new key would invalidate \
                             every service-account token)",
                            pub_path.display()
                        ),
                    ));
                }
                let kp = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
                    .map_err(|e| PkiError::crypto("generating the service-account key", e))?;
                write_private_atomic(&key_path, kp.serialize_pem().as_bytes())?;
                write_private_atomic(&pub_path, kp.public_key_pem().as_bytes())?;
                tracing::info!(key = %key_path.display(), "created service-account signing key");
                return Ok(());
            }
            Some(pem) => parse_key_pem(&key_path, &pem)?,
        };
        if key_pair.algorithm() != &PKCS_RSA_SHA256 {
            return Err(PkiError::invalid(
                &key_path,
                "not an RSA private key (service-account tokens are signed with RS256)",
            ));
        }
        match read_optional(&pub_path)? {
            // The public half is derivable; recreate it rather than fail.
            None => write_private_atomic(&pub_path, key_pair.public_key_pem().as_bytes()),
            Some(pem) => {
                let spki = SubjectPublicKeyInfoDer::from_pem_slice(&pem).map_err(|e| {
                    PkiError::invalid(&pub_path, format!("not a PEM public key: {e}"))
                })?;
                if spki.as_ref() != key_pair.subject_public_key_info().as_slice() {
                    return Err(PkiError::invalid(
                        &pub_path,
                        format!("does not match {}", key_path.display()),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Re-issue the serving certificate when due or short of a SAN (host addresses change),
    /// and the admin certificate when due. Call periodically; reload the TLS config when
    /// `serving` comes back true and rewrite the admin kubeconfig when `admin` does.
    pub fn renew_if_needed(&self) -> Result<Renewed, PkiError> {
        Ok(Renewed {
            serving: self.ensure_leaf(Leaf::Serving, false)?,
            admin: self.ensure_leaf(Leaf::Admin, false)?,
        })
    }

    /// Issue a fresh serving certificate and key now, whatever the state of the old one.
    pub fn reissue_serving_cert(&self) -> Result<(), PkiError> {
        self.issue_leaf(Leaf::Serving)
    }

    /// Issue a client certificate (`CN=cn`, one `O` per group) with a new P-256 key.
    /// Returns `(certificate PEM, PKCS#8 key PEM)`.
    pub fn issue_client_cert(
        &self,
        cn: &str,
        orgs: &[&str],
        validity: Duration,
    ) -> Result<(String, String), PkiError> {
        self.issue(
            cn,
            orgs,
            &[],
            &[],
            validity,
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    /// Issue a serving certificate for the given names and addresses with a new P-256 key.
    /// Returns `(certificate PEM, PKCS#8 key PEM)`.
    pub fn issue_serving_cert(
        &self,
        cn: &str,
        dns_names: &[String],
        ips: &[IpAddr],
        validity: Duration,
    ) -> Result<(String, String), PkiError> {
        for name in dns_names {
            check_dns_name(name).map_err(|reason| PkiError::Option {
                option: "dns_names",
                reason,
            })?;
        }
        self.issue(
            cn,
            &[],
            dns_names,
            ips,
            validity,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn issue(
        &self,
        cn: &str,
        orgs: &[&str],
        dns_names: &[String],
        ips: &[IpAddr],
        validity: Duration,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<(String, String), PkiError> {
        if cn.is_empty() {
            return Err(PkiError::Option {
                option: "cn",
                reason: "the common name must not be empty".into(),
            });
        }
        let validity = time::Duration::try_from(validity)
            .ok()
            .filter(|v| v.is_positive() && *v <= time::Duration::days(100 * 365))
            .ok_or_else(|| PkiError::Option {
                option: "validity",
                reason: "must be positive and at most 100 years".into(),
            })?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::crypto(format!("generating a key for {cn:?}"), e))?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        // Go lists O before CN; keep the same order so `openssl x509 -subject` looks familiar.
        for org in orgs {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *org);
        }
        params.distinguished_name.push(DnType::CommonName, cn);
        for name in dns_names {
            let name = name.clone().try_into().map_err(|e| PkiError::Option {
                option: "dns_names",
                reason: format!("{name:?}: {e}"),
            })?;
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        params
            .subject_alt_names
            .extend(ips.iter().copied().map(SanType::IpAddress));
        params.not_before = now - BACKDATE;
        // A certificate cannot usefully outlive its issuer.
        params.not_after = (now + validity).min(self.ca_not_after);
        params.serial_number = Some(random_serial()?);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| PkiError::crypto(format!("signing a certificate for {cn:?}"), e))?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Write `data_dir/admin.kubeconfig` for the admin certificate, pointing at `server_url`.
    pub fn write_admin_kubeconfig(
        &self,
        data_dir: &Path,
        server_url: &str,
    ) -> Result<PathBuf, PkiError> {
        let cert = read_required(&self.admin_cert_path())?;
        let key = read_required(&self.admin_key_path())?;
        let path = data_dir.join("admin.kubeconfig");
        kubeconfig::write(
            &path,
            server_url,
            &self.ca_pem,
            &String::from_utf8_lossy(&cert),
            &String::from_utf8_lossy(&key),
            ADMIN_CN,
            ADMIN_CLUSTER_NAME,
        )?;
        Ok(path)
    }

    /// A live TLS server configuration serving `apiserver.crt` and trusting `ca.crt` for
    /// client certificates.
    pub fn server_tls(&self) -> Result<tls::ServerTls, PkiError> {
        tls::ServerTls::new(
            &self.serving_cert_path(),
            &self.serving_key_path(),
            &self.ca_cert_path(),
        )
    }

    /// The options the PKI was loaded with.
    pub fn options(&self) -> &PkiOptions {
        &self.opts
    }
    /// `DATA_DIR/pki`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The CA certificate, PEM, as read from `ca.crt`.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_pem
    }
    /// The CA certificate, DER.
    pub fn ca_cert_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join(CA_CRT)
    }
    pub fn ca_key_path(&self) -> PathBuf {
        self.dir.join(CA_KEY)
    }
    pub fn serving_cert_path(&self) -> PathBuf {
        self.dir.join(APISERVER_CRT)
    }
    pub fn serving_key_path(&self) -> PathBuf {
        self.dir.join(APISERVER_KEY)
    }
    pub fn admin_cert_path(&self) -> PathBuf {
        self.dir.join(ADMIN_CRT)
    }
    pub fn admin_key_path(&self) -> PathBuf {
        self.dir.join(ADMIN_KEY)
    }
    /// The service-account signing key, RSA-2048, PKCS#8 PEM.
    pub fn sa_key_path(&self) -> PathBuf {
        self.dir.join(SA_KEY)
    }
    /// The service-account verification key, SubjectPublicKeyInfo PEM.
    pub fn sa_pub_path(&self) -> PathBuf {
        self.dir.join(SA_PUB)
    }
}

fn parse_cert_pem(path: &Path, pem: &[u8]) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(pem)
        .map_err(|e| PkiError::invalid(path, format!("not a PEM certificate: {e}")))
}

fn parse_key_pem(path: &Path, pem: &[u8]) -> Result<KeyPair, PkiError> {
    let text = std::str::from_utf8(pem)
        .map_err(|_| PkiError::invalid(path, "not a PEM private key (not text)"))?;
    KeyPair::from_pem(text)
        .map_err(|e| PkiError::invalid(path, format!("not a usable PEM private key: {e}")))
}

/// A random positive 128-bit serial number (RFC 5280 wants them unpredictable).
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|e| PkiError::crypto("generating a serial number", format!("{e:?}")))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_ip_of_service_ranges() {
        assert_eq!(
            first_ip("10.96.0.0/12").unwrap(),
            "10.96.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            first_ip("10.100.7.9/16").unwrap(),
            "10.100.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            first_ip("fd00:10:96::/108").unwrap(),
            "fd00:10:96::1".parse::<IpAddr>().unwrap()
        );
        assert!(first_ip("10.96.0.0").is_err());
        assert!(first_ip("10.96.0.0/31").is_err());
        assert!(first_ip("nonsense/12").is_err());
    }

    #[test]
    fn dns_name_checks() {
        assert!(check_dns_name("kubernetes.default.svc").is_ok());
        assert!(check_dns_name("*.example.com").is_ok());
        assert!(check_dns_name("bad_name").is_err());
        assert!(check_dns_name("a..b").is_err());
        assert!(check_dns_name("-a").is_err());
    }

    #[test]
    fn renewal_at_two_thirds() {
        let info = LeafInfo {
            not_before: 0,
            not_after: 300,
            dns_names: vec![],
            ips: vec![],
        };
        assert!(!info.due_for_renewal(199));
        assert!(info.due_for_renewal(200));
        assert!(info.due_for_renewal(400));
    }
}
