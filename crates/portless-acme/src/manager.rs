//! [`AcmeManager`]: which names need a certificate, ordering them in the background, keeping
//! the served map current, renewing ahead of expiry with backoff on failure.
//!
//! One task does all ordering, one name at a time: orders are rare (a new route, a renewal
//! every few weeks), and one at a time keeps the CA's rate limits and the logs simple. A
//! handshake never waits for it; until a name's certificate is in, its handshakes get the
//! fallback certificate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use instant_acme::{Account, CertificateIdentifier};
use portless_store::Store;
use portless_tls::CertMap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::cert::{Held, from_unix};
use crate::{AcmeError, AcmeOptions, Challenges, order};

/// What the manager knows about one wanted name.
#[derive(Default)]
struct NameState {
    /// The certificate served now (kept until a new one is in).
    held: Option<HeldInfo>,
    /// Failed attempts since the last success.
    failures: u32,
    /// No attempt before this.
    next_try: Option<Instant>,
    /// Renew now, whatever the dates say (test hook and operator action).
    forced: bool,
}

#[derive(Clone)]
struct HeldInfo {
    renew_at: SystemTime,
    not_after: SystemTime,
    id: Option<CertificateIdentifier<'static>>,
}

/// Orders and renews the certificates of the names it is told about.
pub struct AcmeManager {
    options: AcmeOptions,
    store: Store,
    certificates: Arc<CertMap>,
    challenges: Arc<Challenges>,
    names: Mutex<HashMap<String, NameState>>,
    wake: Notify,
    issued: std::sync::atomic::AtomicU64,
}

impl AcmeManager {
    /// A manager ordering at `options.directory`, storing in `store`.
    pub fn new(options: AcmeOptions, store: Store) -> Result<Arc<Self>, AcmeError> {
        if options.challenges.is_empty() {
            return Err(AcmeError::Config(
                "no challenge type enabled: list tls-alpn-01 and/or http-01 in tls.acme.challenge"
                    .to_owned(),
            ));
        }
        Ok(Arc::new(Self {
            options,
            store,
            certificates: CertMap::new(),
            challenges: Challenges::new(),
            names: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            issued: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// The certificates served, by hostname (for the public resolver).
    pub fn certificates(&self) -> Arc<CertMap> {
        self.certificates.clone()
    }

    /// The pending challenge answers (for the port-80 listener and the public resolver).
    pub fn challenges(&self) -> Arc<Challenges> {
        self.challenges.clone()
    }

    /// The options.
    pub fn options(&self) -> &AcmeOptions {
        &self.options
    }

    /// Certificates issued by this manager since it started.
    pub fn issued(&self) -> u64 {
        self.issued.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sets the names that need a certificate (exact routes and portal hosts). New names are
    /// ordered soon; names no longer wanted keep their certificate until restart but are no
    /// longer renewed.
    pub fn set_names(&self, wanted: impl IntoIterator<Item = String>) {
        let mut added = false;
        self.with_names(|names| {
            let wanted: std::collections::HashSet<String> = wanted.into_iter().collect();
            names.retain(|name, _| wanted.contains(name));
            for name in wanted {
                names.entry(name).or_insert_with(|| {
                    added = true;
                    NameState::default()
                });
            }
        });
        if added {
            self.wake.notify_one();
        }
    }

    /// Renews `name` now (its certificate stays served until the new one is in).
    pub fn force_renewal(&self, name: &str) {
        self.with_names(|names| {
            if let Some(state) = names.get_mut(name) {
                state.forced = true;
                state.next_try = None;
            }
        });
        self.wake.notify_one();
    }

    fn with_names<T>(&self, f: impl FnOnce(&mut HashMap<String, NameState>) -> T) -> T {
        match self.names.lock() {
            Ok(mut names) => f(&mut names),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Runs until `shutdown`: loads the stored certificates, then orders and renews.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut account: Option<Account> = None;
        let mut last_store_check: Option<Instant> = None;
        loop {
            let check_due =
                last_store_check.is_none_or(|at| at.elapsed() >= self.options.check_interval);
            if check_due {
                self.load_stored().await;
                last_store_check = Some(Instant::now());
            }
            if let Some(name) = self.next_due() {
                tokio::select! {
                    () = self.attempt(&mut account, &name) => {}
                    () = shutdown.cancelled() => return,
                }
                continue;
            }
            let wait = self.until_next().min(self.options.check_interval);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Puts every stored certificate of a wanted name into the served map (certificates
    /// another edge obtained, or this edge before a restart).
    async fn load_stored(&self) {
        let stored = match self.store.certificates().await {
            Ok(stored) => stored,
            Err(e) => {
                warn!(error = %e, "reading stored certificates failed; keeping the served ones");
                return;
            }
        };
        for stored in stored {
            let newer = self.with_names(|names| {
                names.get(&stored.hostname).map(|state| {
                    state
                        .held
                        .as_ref()
                        .is_none_or(|held| from_unix(stored.not_after) > held.not_after)
                })
            });
            if newer != Some(true) {
                continue;
            }
            match Held::from_stored(&stored) {
                Ok(held) => self.install(&stored.hostname, held, false),
                Err(e) => warn!(error = %e, "ignoring a stored certificate"),
            }
        }
    }

    /// Serves `held` for `name` and schedules its renewal.
    fn install(&self, name: &str, held: Held, fresh: bool) {
        self.certificates.insert(name, held.key.clone());
        let renew_at = held.default_renewal(self.options.renew_before);
        self.with_names(|names| {
            if let Some(state) = names.get_mut(name) {
                state.held = Some(HeldInfo {
                    renew_at,
                    not_after: held.not_after,
                    id: held.id.clone(),
                });
                if fresh {
                    state.failures = 0;
                    state.forced = false;
                    state.next_try = None;
                }
            }
        });
    }

    /// The first name that needs an order now.
    fn next_due(&self) -> Option<String> {
        let now = SystemTime::now();
        let instant = Instant::now();
        self.with_names(|names| {
            names
                .iter()
                .filter(|(_, s)| s.next_try.is_none_or(|t| t <= instant))
                .find(|(_, s)| s.forced || s.held.as_ref().is_none_or(|h| h.renew_at <= now))
                .map(|(name, _)| name.clone())
        })
    }

    /// How long until some name may need an order.
    fn until_next(&self) -> Duration {
        let now = SystemTime::now();
        let instant = Instant::now();
        self.with_names(|names| {
            names
                .values()
                .map(|s| {
                    let by_date = s.held.as_ref().map_or(Duration::ZERO, |h| {
                        h.renew_at.duration_since(now).unwrap_or_default()
                    });
                    let by_backoff = s
                        .next_try
                        .map_or(Duration::ZERO, |t| t.saturating_duration_since(instant));
                    by_date.max(by_backoff)
                })
                .min()
                .unwrap_or(Duration::MAX)
        })
    }

    /// One attempt for `name`: ARI check for a held certificate, then an order if due.
    async fn attempt(&self, account: &mut Option<Account>, name: &str) {
        // Each request of an order has its own limit only while polling; one bound on the
        // whole attempt keeps a hung request from stopping every other name's renewal.
        let limit = self.options.order_timeout.saturating_mul(2);
        let attempt = tokio::time::timeout(limit, self.try_obtain(account, name)).await;
        let result = attempt.unwrap_or_else(|_| {
            Err(AcmeError::TimedOut {
                name: name.to_owned(),
                seconds: limit.as_secs(),
            })
        });
        match result {
            Ok(()) => {}
            Err(e) => {
                let delay = self.with_names(|names| {
                    let state = names.get_mut(name)?;
                    state.failures = state.failures.saturating_add(1);
                    let delay = backoff(
                        self.options.retry_base,
                        self.options.retry_cap,
                        state.failures,
                    );
                    state.next_try = Some(Instant::now() + delay);
                    Some(delay)
                });
                warn!(name, error = %e, retry_in = ?delay, "obtaining a certificate failed; serving the previous or fallback certificate meanwhile");
                // The account may be what failed (directory down, key refused): build it again.
                if matches!(e, AcmeError::Protocol { .. } | AcmeError::TimedOut { .. }) {
                    *account = None;
                }
            }
        }
    }

    async fn try_obtain(&self, account: &mut Option<Account>, name: &str) -> Result<(), AcmeError> {
        // Another edge sharing the store may have renewed it already.
        if let Some(stored) = self.store.certificate(name).await? {
            let held = Held::from_stored(&stored)?;
            let current = self.with_names(|names| names.get(name).and_then(|s| s.held.clone()));
            let forced = self.with_names(|names| names.get(name).is_some_and(|s| s.forced));
            let newer = current
                .as_ref()
                .is_none_or(|c| held.not_after > c.not_after);
            if newer
                && !forced
                && held.default_renewal(self.options.renew_before) > SystemTime::now()
            {
                debug!(name, "using the certificate found in the store");
                self.install(name, held, true);
                return Ok(());
            }
        }
        let acct = match account {
            Some(acct) => acct.clone(),
            None => {
                let acct = order::account(&self.options, &self.store).await?;
                *account = Some(acct.clone());
                acct
            }
        };
        let (held_id, forced) = self.with_names(|names| {
            names.get(name).map_or((None, false), |s| {
                (s.held.as_ref().and_then(|h| h.id.clone()), s.forced)
            })
        });
        if let Some(id) = &held_id
            && !forced
            && let Some(window_start) = ari_window(&acct, id).await
            && window_start > SystemTime::now()
        {
            // The CA suggests a later renewal: follow it.
            self.with_names(|names| {
                if let Some(held) = names.get_mut(name).and_then(|s| s.held.as_mut()) {
                    held.renew_at = window_start;
                }
            });
            info!(name, "renewal postponed to the CA's suggested window (ARI)");
            return Ok(());
        }
        let stored = order::obtain(&acct, &self.options, &self.challenges, name, held_id).await?;
        let held = Held::from_stored(&stored)?;
        self.store.put_certificate(&stored).await?;
        // Counted before it is served: whoever sees the certificate sees the count too.
        self.issued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.install(name, held, true);
        Ok(())
    }
}

/// The start of the CA's suggested renewal window, picked at random inside it as RFC 9773
/// suggests; `None` when the CA offers no ARI or the query fails.
async fn ari_window(account: &Account, id: &CertificateIdentifier<'static>) -> Option<SystemTime> {
    let (info, _retry_after) = match account.renewal_info(id).await {
        Ok(found) => found,
        Err(instant_acme::Error::Unsupported(_)) => return None,
        Err(e) => {
            debug!(error = %e, "ARI query failed; using the default renewal time");
            return None;
        }
    };
    let start = info.suggested_window.start.unix_timestamp();
    let end = info.suggested_window.end.unix_timestamp().max(start);
    Some(from_unix(fastrand::i64(start..=end)))
}

/// `base · 2^(failures-1)`, capped, with the upper half randomized so that edges sharing a
/// CA do not retry in lockstep.
fn backoff(base: Duration, cap: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let full = base.saturating_mul(1u32 << exp).min(cap);
    full / 2 + full.mul_f64(fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_secs(10);
        let cap = Duration::from_secs(100);
        for failures in 1..10 {
            let d = backoff(base, cap, failures);
            let full = (base * (1 << (failures - 1))).min(cap);
            assert!(d >= full / 2 && d <= full, "{failures}: {d:?}");
        }
    }
}
