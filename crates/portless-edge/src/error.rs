//! Edge start-up errors.

/// Why an edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// A listener could not be used.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// TLS set-up failed.
    #[error(transparent)]
    Tls(#[from] portless_tls::TlsError),
    /// The tunnel listener could not start.
    #[error(transparent)]
    Transport(#[from] portless_transport::TransportError),
    /// The control-plane store failed.
    #[error(transparent)]
    Store(#[from] portless_store::StoreError),
    /// The access configuration (policy, users, portal, keys) could not be loaded.
    #[error("access: {detail}")]
    Access {
        /// What is wrong and how to fix it.
        detail: String,
    },
    /// ACME could not be set up.
    #[error(transparent)]
    Acme(#[from] portless_acme::AcmeError),
}
