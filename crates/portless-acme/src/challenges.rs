//! Answers to pending challenges, shared between the order in progress and the listeners
//! that serve them: HTTP-01 key authorizations by token (port 80) and TLS-ALPN-01
//! certificates by hostname (the public listener's `acme-tls/1` handshakes).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use portless_tls::CertMap;

/// Pending challenge answers.
#[derive(Debug, Default)]
pub struct Challenges {
    http: RwLock<HashMap<String, String>>,
    alpn: Arc<CertMap>,
}

impl Challenges {
    /// No pending challenge.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The key authorization to answer `GET /.well-known/acme-challenge/{token}` with.
    pub fn http_answer(&self, token: &str) -> Option<String> {
        match self.http.read() {
            Ok(map) => map.get(token).cloned(),
            Err(poisoned) => poisoned.into_inner().get(token).cloned(),
        }
    }

    /// TLS-ALPN-01 certificates by hostname, for the public resolver.
    pub fn alpn_certificates(&self) -> Arc<CertMap> {
        self.alpn.clone()
    }

    pub(crate) fn put_http(&self, token: &str, key_authorization: &str) {
        self.with_http(|map| {
            map.insert(token.to_owned(), key_authorization.to_owned());
        });
    }

    pub(crate) fn remove_http(&self, token: &str) {
        self.with_http(|map| {
            map.remove(token);
        });
    }

    fn with_http(&self, f: impl FnOnce(&mut HashMap<String, String>)) {
        match self.http.write() {
            Ok(mut map) => f(&mut map),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}
