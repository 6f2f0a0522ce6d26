//! [`LocalCaResolver`]: certificates for the edge's public listener, issued on demand from a
//! [`LocalCa`] for the hostnames the edge serves.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::LocalCa;

/// Default bound on cached leaves: far above any real route table, small enough (a few KiB
/// each) that a client cycling through names under a wildcard route cannot exhaust memory.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

type ServesName = dyn Fn(&str) -> bool + Send + Sync;

/// Resolves a certificate per SNI name: a leaf issued once by the CA (then cached) for names
/// the caller's predicate says are served, the default certificate for any other name and for
/// clients that send no SNI.
///
/// The hot path (a name already cached) takes a read lock and clones an `Arc`; nothing is
/// allocated.
pub struct LocalCaResolver {
    ca: Arc<LocalCa>,
    default: Arc<CertifiedKey>,
    serves: Box<ServesName>,
    capacity: usize,
    cache: RwLock<HashMap<Box<str>, Arc<CertifiedKey>>>,
}

// === impl LocalCaResolver ===

impl LocalCaResolver {
    /// A resolver issuing from `ca` for every SNI name for which `serves` returns true (for
    /// example: the name has a route), falling back to `default`.
    pub fn new(
        ca: Arc<LocalCa>,
        default: Arc<CertifiedKey>,
        serves: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            ca,
            default,
            serves: Box::new(serves),
            capacity: DEFAULT_CACHE_CAPACITY,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Bounds the number of cached leaves (at least 1); [`DEFAULT_CACHE_CAPACITY`] otherwise.
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Number of leaves currently cached.
    pub fn cached(&self) -> usize {
        self.read_cache(|cache| cache.len())
    }

    /// The certificate served for `server_name` (`None`: no SNI).
    pub fn resolve_name(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = server_name else {
            return self.default.clone();
        };
        if let Some(hit) = self.read_cache(|cache| cache.get(name).cloned()) {
            return hit;
        }
        // Asked only on a miss: the predicate may consult a route table behind its own lock.
        if !(self.serves)(name) {
            return self.default.clone();
        }
        // Issued outside any lock so that a new name never stalls handshakes for other names;
        // concurrent first handshakes for one name may each issue, and `insert` keeps one.
        match self.ca.issue(&[name.to_owned()]) {
            Ok(leaf) => self.insert(name, leaf),
            Err(err) => {
                tracing::warn!(server_name = name, error = %err, "cannot issue a certificate; serving the default");
                self.default.clone()
            }
        }
    }

    /// Caches `leaf` unless another handshake cached one for `name` meanwhile (then that one
    /// wins, so every client sees the same certificate).
    fn insert(&self, name: &str, leaf: Arc<CertifiedKey>) -> Arc<CertifiedKey> {
        let mut cache = match self.cache.write() {
            Ok(cache) => cache,
            // A panic elsewhere while holding the lock cannot leave the map half-updated
            // (insert and remove are atomic from our point of view), so keep using it.
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(existing) = cache.get(name) {
            return existing.clone();
        }
        if cache.len() >= self.capacity {
            // Evict an arbitrary entry: cheap, and an evicted name is simply issued again.
            if let Some(victim) = cache.keys().next().cloned() {
                cache.remove(&victim);
            }
        }
        cache.insert(name.into(), leaf.clone());
        leaf
    }

    fn read_cache<T>(&self, f: impl FnOnce(&HashMap<Box<str>, Arc<CertifiedKey>>) -> T) -> T {
        match self.cache.read() {
            Ok(cache) => f(&cache),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }
}

impl ResolvesServerCert for LocalCaResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // rustls has already lowercased the SNI name.
        Some(self.resolve_name(client_hello.server_name()))
    }
}

impl fmt::Debug for LocalCaResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCaResolver")
            .field("ca", &self.ca)
            .field("cached", &self.cached())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(capacity: usize) -> LocalCaResolver {
        let ca = Arc::new(LocalCa::generate("resolver test CA").unwrap());
        let default = ca.issue(&["default.invalid".to_owned()]).unwrap();
        LocalCaResolver::new(ca, default, |name| name.ends_with(".example.com"))
            .with_cache_capacity(capacity)
    }

    #[test]
    fn issues_once_and_caches() {
        let resolver = resolver(10);
        let first = resolver.resolve_name(Some("app.example.com"));
        let second = resolver.resolve_name(Some("app.example.com"));
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(&first, &resolver.default));
        assert_eq!(resolver.cached(), 1);
    }

    #[test]
    fn unserved_names_and_no_sni_get_the_default() {
        let resolver = resolver(10);
        assert!(Arc::ptr_eq(
            &resolver.resolve_name(Some("evil.test")),
            &resolver.default
        ));
        assert!(Arc::ptr_eq(&resolver.resolve_name(None), &resolver.default));
        assert_eq!(resolver.cached(), 0);
    }

    #[test]
    fn cache_stays_bounded() {
        let resolver = resolver(2);
        for i in 0..5 {
            resolver.resolve_name(Some(&format!("h{i}.example.com")));
        }
        assert_eq!(resolver.cached(), 2);
    }
}
