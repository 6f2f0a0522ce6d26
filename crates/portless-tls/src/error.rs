//! The one error type of this crate. Every message names the file or input at fault and, where
//! there is one, the fix.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while building TLS material or configs.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read (missing, permissions, I/O error).
    #[error("cannot read {}: {source}; check that the file exists and is readable by this user", path.display())]
    ReadFile {
        /// The file we tried to read.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },

    /// A file or directory could not be written.
    #[error("cannot write {}: {source}; check that the directory exists and is writable by this user", path.display())]
    WriteFile {
        /// The file or directory we tried to write.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },

    /// A file was read but its content is not what it should be (bad PEM, no certificate, bad key).
    #[error("{} is not usable: {reason}", path.display())]
    CorruptFile {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it, and how to fix it.
        reason: String,
    },

    /// Only one of the two files of a local CA exists, so it can be neither loaded nor recreated.
    #[error(
        "{} exists but {} is missing; restore the missing file, or remove both to generate a new CA \
         (connectors pinned to the old CA will then need the new pin)",
        present.display(), missing.display()
    )]
    IncompleteCa {
        /// The file that is there.
        present: PathBuf,
        /// The file that is not.
        missing: PathBuf,
    },

    /// A private key does not belong to the certificate it is paired with.
    #[error(
        "the private key in {} does not match the certificate in {}; use the key the certificate was issued for",
        key.display(), cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },

    /// rcgen refused to generate a key or certificate.
    #[error("cannot generate {what}: {source}")]
    Generate {
        /// What we were generating ("CA certificate", "leaf for app.example.com", ...).
        what: String,
        /// The rcgen error.
        source: rcgen::Error,
    },

    /// A leaf certificate was requested for an empty list of names.
    #[error("cannot issue a certificate without any DNS name or IP address")]
    NoNames,

    /// A CA pin string could not be parsed.
    #[error(
        "invalid CA pin `{input}`: {reason}; expected `sha256:` followed by 43 base64url characters, \
         as printed by the edge next to its CA"
    )]
    InvalidPin {
        /// The string we were given (a pin is public, so echoing it is safe).
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The edge's certificate chain contains no certificate matching the pinned CA.
    #[error(
        "the edge's certificate chain does not contain the pinned CA {expected}; check that the \
         connector's pin matches the edge's ca.pem (or that nothing intercepts the connection)"
    )]
    PinMismatch {
        /// The pin the connector was configured with.
        expected: String,
    },

    /// No trust anchor is available to verify servers.
    #[error(
        "no trusted root certificates: {detail}; install the system CA bundle or give a CA file"
    )]
    NoTrustRoots {
        /// Why none were found.
        detail: String,
    },

    /// A certificate given as a trust anchor was rejected.
    #[error("{what} cannot be used as a trust anchor: {source}")]
    BadTrustAnchor {
        /// Which certificate ("the edge CA certificate", "a certificate in /etc/ca.pem", ...).
        what: String,
        /// Why rustls rejected it.
        source: rustls::Error,
    },

    /// rustls refused a verifier built from our trust anchors.
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),

    /// rustls refused a config (protocol versions inconsistent with the provider, bad key...).
    #[error("cannot build the {what}: {source}")]
    Config {
        /// Which config or object we were building.
        what: &'static str,
        /// The rustls error.
        source: rustls::Error,
    },
}

// === impl TlsError ===

impl TlsError {
    /// Our error inside a rustls handshake error, when one of this crate's verifiers caused it.
    ///
    /// rustls prints such errors with `Debug` formatting; callers logging a failed handshake
    /// should prefer this error's `Display`, which says what to fix.
    pub fn in_rustls_error(err: &rustls::Error) -> Option<&TlsError> {
        match err {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))
            | rustls::Error::Other(other) => other.0.downcast_ref::<TlsError>(),
            _ => None,
        }
    }
}
