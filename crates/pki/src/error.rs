use std::path::{Path, PathBuf};

/// Everything that can go wrong while creating, loading or serving key material.
///
/// File problems always carry the path so an operator knows which file to look at.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading, writing or creating a file or directory failed.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A file exists but its content is unusable: not PEM, not a certificate, a key that does
    /// not belong to its certificate, a certificate not signed by the cluster CA, a missing
    /// companion file, an expired CA.
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// A [`crate::PkiOptions`] value cannot be used.
    #[error("invalid PKI option {option}: {reason}")]
    Option {
        option: &'static str,
        reason: String,
    },
    /// Generating a key or signing a certificate failed.
    #[error("{what}: {reason}")]
    Crypto { what: String, reason: String },
    /// Building a TLS configuration failed.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

impl PkiError {
    /// The file this error is about, if it is about one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            PkiError::Io { path, .. } | PkiError::Invalid { path, .. } => Some(path),
            _ => None,
        }
    }

    pub(crate) fn io(path: &Path, error: std::io::Error) -> Self {
        PkiError::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    pub(crate) fn invalid(path: &Path, reason: impl Into<String>) -> Self {
        PkiError::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn crypto(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        PkiError::Crypto {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
