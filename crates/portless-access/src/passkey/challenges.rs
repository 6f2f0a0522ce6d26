//! Pending passkey ceremonies: in memory, one per portal session, single use, expiring,
//! bounded.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration, Uuid,
};

use crate::session::SessionId;

/// The server-side half of a ceremony a browser is answering.
pub(super) enum Ceremony {
    /// Registering a passkey named `name` for `user`.
    Register {
        user: String,
        name: String,
        handle: Uuid,
        state: PasskeyRegistration,
    },
    /// A second factor for `user`.
    Authenticate {
        user: String,
        state: PasskeyAuthentication,
    },
    /// A passwordless login.
    Discover { state: DiscoverableAuthentication },
}

struct Pending {
    started: SystemTime,
    ceremony: Ceremony,
}

/// The pending ceremonies, keyed by portal session id.
pub(super) struct Challenges {
    entries: HashMap<String, Pending>,
    max: usize,
    ttl: Duration,
}

impl Challenges {
    pub(super) fn new(max: usize, ttl: Duration) -> Self {
        Challenges {
            entries: HashMap::new(),
            max: max.max(1),
            ttl,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Makes `ceremony` the session's pending one (replacing any earlier one). When full,
    /// expired entries go first, then the oldest.
    pub(super) fn insert(&mut self, session: &SessionId, ceremony: Ceremony, now: SystemTime) {
        let key = session.as_str();
        if !self.entries.contains_key(key) && self.entries.len() >= self.max {
            self.sweep(now);
            if self.entries.len() >= self.max
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, p)| p.started)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(
            key.to_owned(),
            Pending {
                started: now,
                ceremony,
            },
        );
    }

    /// Removes and returns the session's pending ceremony if it has not expired.
    pub(super) fn take(&mut self, session: &SessionId, now: SystemTime) -> Option<Ceremony> {
        let pending = self.entries.remove(session.as_str())?;
        self.is_live(&pending, now).then_some(pending.ceremony)
    }

    /// Drops expired entries; returns how many.
    pub(super) fn sweep(&mut self, now: SystemTime) -> usize {
        let before = self.entries.len();
        let ttl = self.ttl;
        self.entries
            .retain(|_, p| now.duration_since(p.started).map_or(true, |age| age < ttl));
        before - self.entries.len()
    }

    fn is_live(&self, pending: &Pending, now: SystemTime) -> bool {
        // A clock that went back counts the entry as fresh, not as expired forever.
        now.duration_since(pending.started)
            .map_or(true, |age| age < self.ttl)
    }
}
