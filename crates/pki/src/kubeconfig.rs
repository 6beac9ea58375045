//! Kubeconfig files with embedded credentials.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::files::write_private_atomic;
use crate::PkiError;

/// Write a kubeconfig with one cluster, one user (client certificate) and one context
/// (`<user_name>@<cluster_name>`, made current). Certificates and key are embedded base64;
/// the file is 0600 and replaced atomically.
pub fn write(
    path: &Path,
    server_url: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
    user_name: &str,
    cluster_name: &str,
) -> Result<(), PkiError> {
    let text = render(
        server_url,
        ca_pem,
        client_cert_pem,
        client_key_pem,
        user_name,
        cluster_name,
    );
    write_private_atomic(path, text.as_bytes())
}

/// The kubeconfig text [`write`] writes.
pub fn render(
    server_url: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
    user_name: &str,
    cluster_name: &str,
) -> String {
    let context = format!("{user_name}@{cluster_name}");
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {cluster}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {context}
  context:
    cluster: {cluster}
    user: {user}
current-context: {context}
preferences: {{}}
",
        cluster = quote(cluster_name),
        server = quote(server_url),
        ca = STANDARD.encode(ca_pem),
        user = quote(user_name),
        cert = STANDARD.encode(client_cert_pem),
        key = STANDARD.encode(client_key_pem),
        context = quote(&context),
    )
}

/// A YAML double-quoted scalar: always safe, whatever the value (colons, `#`, leading
/// `@`, non-ASCII, control characters).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\x0ad\"");
    }
}
