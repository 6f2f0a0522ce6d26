//! [`AcmeError`]: everything that can go wrong while obtaining or loading a certificate.

/// An ACME failure; the message says what failed and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The options are inconsistent or unknown.
    #[error("ACME configuration: {0}")]
    Config(String),
    /// The ACME server refused a request or could not be reached.
    #[error("ACME {step} failed: {source}")]
    Protocol {
        /// What we were doing ("creating the account", "ordering app.example.com", ...).
        step: String,
        /// The client's error.
        source: instant_acme::Error,
    },
    /// The order ended without a certificate.
    #[error("ordering a certificate for {name} failed: {reason}")]
    Order {
        /// The hostname.
        name: String,
        /// Why, as far as the server said.
        reason: String,
    },
    /// The whole attempt took longer than the order timeout allows (a server that accepts
    /// connections and never answers).
    #[error(
        "ordering a certificate for {name} took longer than {seconds} s: is the ACME directory reachable and answering?"
    )]
    TimedOut {
        /// The hostname.
        name: String,
        /// The limit.
        seconds: u64,
    },
    /// A certificate (from the CA or the store) cannot be used.
    #[error("the certificate of {name} is not usable: {reason}")]
    BadCertificate {
        /// The hostname.
        name: String,
        /// Why.
        reason: String,
    },
    /// TLS material could not be built.
    #[error(transparent)]
    Tls(#[from] portless_tls::TlsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] portless_store::StoreError),
}

impl AcmeError {
    pub(crate) fn protocol(step: impl Into<String>) -> impl FnOnce(instant_acme::Error) -> Self {
        let step = step.into();
        move |source| Self::Protocol { step, source }
    }
}
