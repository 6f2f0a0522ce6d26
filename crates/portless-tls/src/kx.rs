//! Key-exchange observability: which group did each server handshake negotiate?
//!
//! quinn does not expose the negotiated group, so we count it inside the provider instead: the
//! server's key-exchange groups are wrapped, and each completed exchange increments the counter
//! of its group. The same counters serve the tunnel metric and the tests that prove the tunnel
//! is post-quantum over both QUIC and TCP.
//!
//! Why this counts every server handshake exactly once: a TLS 1.3 server performs its key
//! exchange in a single `start_and_complete` call, after any HelloRetryRequest (the HRR itself
//! only names a group and exchanges nothing); a TLS 1.2 server calls `start` and later
//! `complete`, which the wrapped [`ActiveKeyExchange`] counts. Failed exchanges (a malformed
//! client share) are not counted.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rustls::crypto::{
    ActiveKeyExchange, CompletedKeyExchange, CryptoProvider, SharedSecret, SupportedKxGroup,
};
use rustls::ffdhe_groups::FfdheGroup;
use rustls::{NamedGroup, ProtocolVersion, SupportedProtocolVersion};

/// The groups we count by name; anything else lands in `other`.
const GROUPS: [(NamedGroup, &str); 7] = [
    (NamedGroup::X25519MLKEM768, "X25519MLKEM768"),
    (NamedGroup::X25519, "X25519"),
    (NamedGroup::secp256r1, "secp256r1"),
    (NamedGroup::secp384r1, "secp384r1"),
    (NamedGroup::secp256r1MLKEM768, "secp256r1MLKEM768"),
    (NamedGroup::MLKEM768, "MLKEM768"),
    (NamedGroup::MLKEM1024, "MLKEM1024"),
];
const OTHER: &str = "other";

/// The stable name of a key-exchange group, as used in metrics labels and logs
/// (`"X25519MLKEM768"`, `"X25519"`, `"secp256r1"`, ..., or `"other"`).
pub fn kx_group_name(group: NamedGroup) -> &'static str {
    GROUPS
        .iter()
        .find(|(known, _)| *known == group)
        .map_or(OTHER, |(_, name)| name)
}

/// Per-group counters of completed key exchanges.
///
/// Build it once per process (or per test) and share it: rustls requires `'static` key-exchange
/// groups, so the first [`counting_provider`](Self::counting_provider) call leaks a few small
/// wrappers that keep these counters alive until the process exits.
#[derive(Default)]
pub struct KxCounters {
    counts: [AtomicU64; GROUPS.len()],
    other: AtomicU64,
    provider: OnceLock<Arc<CryptoProvider>>,
}

// === impl KxCounters ===

impl KxCounters {
    /// New counters, all zero.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Completed exchanges in the group named `name` (see [`kx_group_name`]); 0 if unknown.
    pub fn get(&self, name: &str) -> u64 {
        if name == OTHER {
            return self.other.load(Ordering::Relaxed);
        }
        GROUPS
            .iter()
            .position(|(_, known)| *known == name)
            .map_or(0, |i| self.counts[i].load(Ordering::Relaxed))
    }

    /// Every group with its count, including zeros, in a fixed order (for a metrics exporter).
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        GROUPS
            .iter()
            .zip(&self.counts)
            .map(|((_, name), count)| (*name, count.load(Ordering::Relaxed)))
            .chain([(OTHER, self.other.load(Ordering::Relaxed))])
            .collect()
    }

    /// Sum over all groups.
    pub fn total(&self) -> u64 {
        self.snapshot().iter().map(|(_, n)| n).sum()
    }

    fn record(&self, group: NamedGroup) {
        let counter = GROUPS
            .iter()
            .position(|(known, _)| *known == group)
            .map_or(&self.other, |i| &self.counts[i]);
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// [`crate::provider()`] with every key-exchange group wrapped so that completed exchanges
    /// increment these counters. Built once per `KxCounters`, then shared.
    ///
    /// Meant for server configs: a client would count its own exchanges too.
    pub fn counting_provider(self: &Arc<Self>) -> Arc<CryptoProvider> {
        self.provider
            .get_or_init(|| Arc::new(wrap_provider(&crate::provider(), self)))
            .clone()
    }
}

impl fmt::Debug for KxCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nonzero: Vec<_> = self
            .snapshot()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        f.debug_struct("KxCounters")
            .field("counts", &nonzero)
            .finish()
    }
}

fn wrap_provider(base: &CryptoProvider, counters: &Arc<KxCounters>) -> CryptoProvider {
    let kx_groups = base
        .kx_groups
        .iter()
        .map(|inner| {
            let wrapped: &'static CountingKxGroup = Box::leak(Box::new(CountingKxGroup {
                inner: *inner,
                counters: counters.clone(),
            }));
            wrapped as &'static dyn SupportedKxGroup
        })
        .collect();
    CryptoProvider {
        kx_groups,
        ..base.clone()
    }
}

/// A key-exchange group that counts the exchanges it completes.
struct CountingKxGroup {
    inner: &'static dyn SupportedKxGroup,
    counters: Arc<KxCounters>,
}

// === impl CountingKxGroup ===

impl SupportedKxGroup for CountingKxGroup {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        Ok(Box::new(CountingActiveKx {
            inner: self.inner.start()?,
            counters: self.counters.clone(),
        }))
    }

    fn start_and_complete(
        &self,
        peer_pub_key: &[u8],
    ) -> Result<CompletedKeyExchange, rustls::Error> {
        // Must delegate, not fall back to the default `start` + `complete`: KEM groups
        // (ML-KEM) implement the server side here, with our share depending on the peer's.
        let completed = self.inner.start_and_complete(peer_pub_key)?;
        self.counters.record(completed.group);
        Ok(completed)
    }

    fn ffdhe_group(&self) -> Option<FfdheGroup<'static>> {
        self.inner.ffdhe_group()
    }

    fn name(&self) -> NamedGroup {
        self.inner.name()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }

    fn usable_for_version(&self, version: ProtocolVersion) -> bool {
        self.inner.usable_for_version(version)
    }
}

impl fmt::Debug for CountingKxGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({:?})", self.inner)
    }
}

/// The in-progress half of [`CountingKxGroup`] (TLS 1.2 servers, and clients).
struct CountingActiveKx {
    inner: Box<dyn ActiveKeyExchange>,
    counters: Arc<KxCounters>,
}

// === impl CountingActiveKx ===

impl ActiveKeyExchange for CountingActiveKx {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, rustls::Error> {
        let group = self.inner.group();
        let secret = self.inner.complete(peer_pub_key)?;
        self.counters.record(group);
        Ok(secret)
    }

    fn complete_for_tls_version(
        self: Box<Self>,
        peer_pub_key: &[u8],
        tls_version: &SupportedProtocolVersion,
    ) -> Result<SharedSecret, rustls::Error> {
        let group = self.inner.group();
        let secret = self
            .inner
            .complete_for_tls_version(peer_pub_key, tls_version)?;
        self.counters.record(group);
        Ok(secret)
    }

    fn hybrid_component(&self) -> Option<(NamedGroup, &[u8])> {
        self.inner.hybrid_component()
    }

    fn complete_hybrid_component(
        self: Box<Self>,
        peer_pub_key: &[u8],
    ) -> Result<SharedSecret, rustls::Error> {
        let group = self.inner.hybrid_component().map(|(group, _)| group);
        let secret = self.inner.complete_hybrid_component(peer_pub_key)?;
        if let Some(group) = group {
            self.counters.record(group);
        }
        Ok(secret)
    }

    fn pub_key(&self) -> &[u8] {
        self.inner.pub_key()
    }

    fn ffdhe_group(&self) -> Option<FfdheGroup<'static>> {
        self.inner.ffdhe_group()
    }

    fn group(&self) -> NamedGroup {
        self.inner.group()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable() {
        assert_eq!(kx_group_name(NamedGroup::X25519MLKEM768), "X25519MLKEM768");
        assert_eq!(kx_group_name(NamedGroup::X25519), "X25519");
        assert_eq!(kx_group_name(NamedGroup::FFDHE2048), "other");
    }

    #[test]
    fn counting_provider_keeps_order_and_is_built_once() {
        let counters = KxCounters::new();
        let provider = counters.counting_provider();
        let names: Vec<_> = provider.kx_groups.iter().map(|g| g.name()).collect();
        let base: Vec<_> = crate::provider()
            .kx_groups
            .iter()
            .map(|g| g.name())
            .collect();
        assert_eq!(names, base);
        assert!(Arc::ptr_eq(&provider, &counters.counting_provider()));
    }

    #[test]
    fn in_memory_exchange_counts_once_per_completion() {
        // A client-side share from the plain provider, completed by the counting server side.
        let counters = KxCounters::new();
        let server = counters.counting_provider();
        let client_kx = crate::provider().kx_groups[0].start().unwrap();
        let completed = server.kx_groups[0]
            .start_and_complete(client_kx.pub_key())
            .unwrap();
        let client_secret = client_kx.complete(&completed.pub_key).unwrap();
        assert_eq!(
            client_secret.secret_bytes(),
            completed.secret.secret_bytes()
        );
        assert_eq!(counters.get("X25519MLKEM768"), 1);
        assert_eq!(counters.total(), 1);

        // A malformed share fails and is not counted.
        assert!(server.kx_groups[1].start_and_complete(b"short").is_err());
        assert_eq!(counters.get("X25519"), 0);
    }
}
