//! Brute-force regulation: bans after repeated login failures, per canonical user and per
//! client address.
//!
//! Attack class H is about counters that can be split: `Alice`, `alice` and `alice@x` each
//! getting their own three tries. Here a failure counts on two keys at once:
//! * the **canonical user**: the caller passes the username it resolved the login to
//!   (lowercase, from the users file), so a login by email counts on the same user; this module
//!   lowercases again in case a caller forgot;
//! * the **client address**: IPv4 by address, IPv6 by its /64 (one host usually holds a whole
//!   /64), an IPv4-mapped IPv6 address as the IPv4 address.
//!
//! `max_retries` failures within `find_time` on either key ban that key for `ban_time`. A
//! banned user or address must be refused *before* the password is checked, and silently: the
//! portal answers as for a wrong password, so a ban tells an attacker nothing.
//!
//! Memory is bounded: at most `max_entries` keys are tracked (100,000 by default). When full,
//! expired entries are dropped first, then the entry that would expire soonest. [`sweep`]
//! drops expired entries; run it periodically.
//!
//! The counters live in this process: with several edges each counts its own failures (a
//! shared store comes with multi-edge support).
//!
//! [`sweep`]: Regulator::sweep

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

/// Keys tracked at most, unless [`Regulator::with_max_entries`] says otherwise.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Counts login failures and bans users and client addresses that fail too often.
#[derive(Debug)]
pub struct Regulator {
    /// Failures that trigger a ban; 0 disables regulation.
    max_retries: u32,
    /// How far back failures count.
    find_time: Duration,
    /// How long a ban lasts.
    ban_time: Duration,
    /// Keys tracked at most.
    max_entries: usize,
    entries: Mutex<HashMap<Key, Entry>>,
}

/// What a failure is counted on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// A canonical (lowercase) username.
    User(String),
    /// A client address group: an IPv4 address, or an IPv6 /64 with the host bits zeroed.
    Address(IpAddr),
}

/// The state of one key.
#[derive(Debug, Default)]
struct Entry {
    /// Failure times within `find_time`, oldest first (at most `max_retries`).
    failures: VecDeque<SystemTime>,
    /// End of the current ban, if any.
    banned_until: Option<SystemTime>,
}

// === impl Regulator ===

impl Regulator {
    /// A regulator banning for `ban_time` after `max_retries` failures within `find_time`.
    /// `max_retries` 0 disables it: nothing is counted and nobody is banned.
    pub fn new(max_retries: u32, find_time: Duration, ban_time: Duration) -> Regulator {
        Regulator {
            max_retries,
            find_time,
            ban_time,
            max_entries: DEFAULT_MAX_ENTRIES,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The same regulator tracking at most `max_entries` keys (at least 1).
    pub fn with_max_entries(mut self, max_entries: usize) -> Regulator {
        self.max_entries = max_entries.max(1);
        self
    }

    /// Whether regulation is on (`max_retries` > 0).
    pub fn is_enabled(&self) -> bool {
        self.max_retries > 0
    }

    /// Whether `user` (if known) or the client address `ip` is banned at `now`. Check before
    /// verifying a password, and refuse silently when true.
    pub fn is_banned(&self, user: Option<&str>, ip: IpAddr, now: SystemTime) -> bool {
        if !self.is_enabled() {
            return false;
        }
        let entries = self.lock();
        keys(user, ip)
            .iter()
            .any(|key| entries.get(key).is_some_and(|entry| entry.is_banned(now)))
    }

    /// Counts a failed login of `user` (the canonical user it resolved to, if any) from `ip`.
    /// Returns whether the user or the address is banned afterwards (for the audit log).
    ///
    /// A failure recorded while a key is banned does not extend its ban.
    pub fn record_failure(&self, user: Option<&str>, ip: IpAddr, now: SystemTime) -> bool {
        if !self.is_enabled() {
            return false;
        }
        let mut entries = self.lock();
        let mut banned = false;
        for key in keys(user, ip) {
            if !entries.contains_key(&key) {
                self.make_room(&mut entries, now);
            }
            let entry = entries.entry(key.clone()).or_default();
            if entry.record_failure(now, self.max_retries, self.find_time, self.ban_time) {
                tracing::warn!(
                    key = %key,
                    ban_secs = self.ban_time.as_secs(),
                    "too many failed logins: banned"
                );
            }
            banned |= entry.is_banned(now);
        }
        banned
    }

    /// Clears `user`'s failure count after a successful login.
    ///
    /// The client address's count is kept on purpose: otherwise an attacker with one valid
    /// account could reset their address's count between guesses at other accounts.
    pub fn record_success(&self, user: &str) {
        let mut entries = self.lock();
        let key = Key::User(user.to_lowercase());
        if let Some(entry) = entries.get_mut(&key) {
            entry.failures.clear();
            if entry.banned_until.is_none() {
                entries.remove(&key);
            }
        }
    }

    /// Drops entries whose failures and ban have all expired at `now`. Returns how many.
    pub fn sweep(&self, now: SystemTime) -> usize {
        let mut entries = self.lock();
        self.sweep_locked(&mut entries, now)
    }

    /// How many keys are tracked.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn sweep_locked(&self, entries: &mut HashMap<Key, Entry>, now: SystemTime) -> usize {
        let before = entries.len();
        entries.retain(|_, entry| entry.expires_at(self.find_time) > now);
        before - entries.len()
    }

    /// Makes room for one more key: drops expired entries, then the one expiring soonest.
    fn make_room(&self, entries: &mut HashMap<Key, Entry>, now: SystemTime) {
        if entries.len() < self.max_entries {
            return;
        }
        self.sweep_locked(entries, now);
        while entries.len() >= self.max_entries {
            let soonest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.expires_at(self.find_time))
                .map(|(key, _)| key.clone());
            match soonest {
                Some(key) => entries.remove(&key),
                None => break,
            };
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // A panic elsewhere while holding the lock leaves counters that are still consistent
        // enough to use: keep regulating rather than failing open or panicking.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// === impl Entry ===

impl Entry {
    fn is_banned(&self, now: SystemTime) -> bool {
        self.banned_until.is_some_and(|until| now < until)
    }

    /// Counts a failure; returns whether it started a ban.
    fn record_failure(
        &mut self,
        now: SystemTime,
        max_retries: u32,
        find_time: Duration,
        ban_time: Duration,
    ) -> bool {
        if self.is_banned(now) {
            return false;
        }
        self.banned_until = None;
        while self
            .failures
            .front()
            .is_some_and(|&at| elapsed(at, now) >= find_time)
        {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        if self.failures.len() >= usize::try_from(max_retries).unwrap_or(usize::MAX) {
            self.failures.clear();
            self.banned_until = Some(now + ban_time);
            return true;
        }
        false
    }

    /// When this entry stops mattering: the end of its ban or of its last failure's window.
    fn expires_at(&self, find_time: Duration) -> SystemTime {
        let failures = self.failures.back().map(|&at| at + find_time);
        match (failures, self.banned_until) {
            (Some(a), Some(b)) => a.max(b),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => SystemTime::UNIX_EPOCH,
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::User(name) => write!(f, "user {name}"),
            Key::Address(IpAddr::V6(net)) => write!(f, "address {net}/64"),
            Key::Address(addr) => write!(f, "address {addr}"),
        }
    }
}

/// The keys a login attempt counts on.
fn keys(user: Option<&str>, ip: IpAddr) -> Vec<Key> {
    let mut keys = Vec::with_capacity(2);
    if let Some(user) = user {
        keys.push(Key::User(user.to_lowercase()));
    }
    keys.push(Key::Address(address_group(ip)));
    keys
}

/// The group an address is counted in: an IPv4 address as itself (also when written as an
/// IPv4-mapped IPv6 address), an IPv6 address as its /64.
pub fn address_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// Time from `since` to `now`, zero if the clock went backwards.
fn elapsed(since: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn ipv6_is_grouped_by_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_group(a), address_group(b));
        assert_ne!(address_group(a), address_group(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            address_group(mapped),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
        let v4: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(address_group(v4), v4);
    }

    #[test]
    fn a_full_table_evicts_the_entry_expiring_soonest() {
        let regulator = Regulator::new(3, Duration::from_secs(120), Duration::from_secs(300))
            .with_max_entries(4);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        // A ban on the address, then many users: the table never exceeds its bound, and the
        // ban (expiring last) survives.
        for i in 0..3 {
            regulator.record_failure(None, ip, t(i));
        }
        for i in 0..10 {
            regulator.record_failure(Some(&format!("user{i}")), ip, t(10 + i));
            assert!(regulator.tracked() <= 4);
        }
        assert!(regulator.is_banned(None, ip, t(30)));
    }

    #[test]
    fn sweep_drops_what_expired() {
        let regulator = Regulator::new(3, Duration::from_secs(120), Duration::from_secs(300));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        regulator.record_failure(Some("alice"), ip, t(0));
        assert_eq!(regulator.tracked(), 2);
        assert_eq!(regulator.sweep(t(119)), 0);
        assert_eq!(regulator.sweep(t(120)), 2);
        assert_eq!(regulator.tracked(), 0);
    }
}
