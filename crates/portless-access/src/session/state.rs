//! The maps behind [`SessionStore`](super::SessionStore) and their bookkeeping.
//!
//! A portal session is a *lineage*: it keeps one stable internal [`Key`] while its cookie id
//! changes at each factor step, so the codes and application sessions derived from it follow
//! it through rotations and die with it. Every lineage lists its children, so revoking one is
//! proportional to what it owns, not to the whole store.
//!
//! None of these types implements `Debug`: they hold identifiers in the clear.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use super::{
    AppSessionId, OneTimeCode, PortalSession, SessionCounts, SessionId, SessionLimits, elapsed,
};

/// Logged-in portal sessions one user may hold; past it the least recently used one ends.
pub(super) const MAX_SESSIONS_PER_USER: usize = 64;
/// Outstanding codes per portal session; past it the oldest is dropped.
pub(super) const MAX_CODES_PER_SESSION: usize = 8;
/// Application sessions per portal session; past it the least recently used one ends (the
/// browser then simply goes through the code exchange again).
pub(super) const MAX_APPS_PER_SESSION: usize = 64;

/// The stable internal name of a portal session (a lineage). Never reused.
pub(super) type Key = u64;

/// One portal session and what was derived from it.
struct Lineage {
    /// Its current cookie id.
    id: String,
    session: PortalSession,
    /// Outstanding one-time codes issued from it.
    codes: Vec<String>,
    /// Application sessions opened from it.
    apps: Vec<String>,
}

/// An outstanding one-time code.
struct Code {
    lineage: Key,
    host: String,
    expires_at: SystemTime,
}

/// An application session.
struct App {
    lineage: Key,
    host: String,
    last_active: SystemTime,
}

/// Everything a [`SessionStore`](super::SessionStore) holds.
pub(super) struct State {
    /// Cap on lineages, and on application sessions and codes each.
    max: usize,
    next_key: Key,
    /// Cookie id → lineage.
    ids: HashMap<String, Key>,
    lineages: HashMap<Key, Lineage>,
    codes: HashMap<String, Code>,
    apps: HashMap<String, App>,
    /// Anonymous lineages, oldest first, for eviction when full. May name lineages that have
    /// since logged in or ended: those are skipped (and dropped by `sweep`).
    anonymous: VecDeque<Key>,
}

// === impl State ===

impl State {
    pub(super) fn new(max: usize) -> State {
        State {
            max,
            next_key: 0,
            ids: HashMap::new(),
            lineages: HashMap::new(),
            codes: HashMap::new(),
            apps: HashMap::new(),
            anonymous: VecDeque::new(),
        }
    }

    /// Adds a portal session under a fresh id, making room first if the store is full.
    pub(super) fn insert_portal(
        &mut self,
        session: PortalSession,
        limits: &SessionLimits,
        now: SystemTime,
    ) -> SessionId {
        self.make_room(limits, now);
        let key = self.next_key;
        self.next_key += 1;
        let id = SessionId::generate();
        if session.user.is_none() {
            self.anonymous.push_back(key);
        }
        self.ids.insert(id.0.clone(), key);
        self.lineages.insert(
            key,
            Lineage {
                id: id.0.clone(),
                session,
                codes: Vec::new(),
                apps: Vec::new(),
            },
        );
        id
    }

    /// The lineage of cookie id `id` if it is live at `now`; a dead one is removed.
    pub(super) fn live_key(
        &mut self,
        id: &SessionId,
        limits: &SessionLimits,
        now: SystemTime,
    ) -> Option<Key> {
        let key = *self.ids.get(id.as_str())?;
        self.live_lineage(key, limits, now)
    }

    /// `key` if that lineage exists and is live at `now`; a dead one is removed.
    pub(super) fn live_lineage(
        &mut self,
        key: Key,
        limits: &SessionLimits,
        now: SystemTime,
    ) -> Option<Key> {
        let live = self.lineages.get(&key)?.session.is_live(limits, now);
        if live {
            Some(key)
        } else {
            self.remove_lineage(key);
            None
        }
    }

    pub(super) fn session(&self, key: Key) -> Option<&PortalSession> {
        self.lineages.get(&key).map(|l| &l.session)
    }

    pub(super) fn session_mut(&mut self, key: Key) -> Option<&mut PortalSession> {
        self.lineages.get_mut(&key).map(|l| &mut l.session)
    }

    /// Marks the session active at `now` and returns a copy of it.
    pub(super) fn touch(&mut self, key: Key, now: SystemTime) -> Option<PortalSession> {
        let session = self.session_mut(key)?;
        session.last_active = session.last_active.max(now);
        Some(session.clone())
    }

    /// Gives the lineage a new cookie id; the old one stops working.
    pub(super) fn rotate(&mut self, key: Key) -> Option<SessionId> {
        let lineage = self.lineages.get_mut(&key)?;
        let id = SessionId::generate();
        let old = std::mem::replace(&mut lineage.id, id.0.clone());
        self.ids.remove(&old);
        self.ids.insert(id.0.clone(), key);
        Some(id)
    }

    /// Removes the portal session with cookie id `id` and all it owns.
    pub(super) fn revoke(&mut self, id: &SessionId) -> bool {
        match self.ids.get(id.as_str()) {
            Some(&key) => self.remove_lineage(key),
            None => false,
        }
    }

    /// Removes every portal session of `user` and all they own.
    pub(super) fn revoke_user(&mut self, user: &str) -> usize {
        let keys: Vec<Key> = self
            .lineages
            .iter()
            .filter(|(_, l)| l.session.user.as_deref() == Some(user))
            .map(|(&key, _)| key)
            .collect();
        keys.iter().filter(|&&key| self.remove_lineage(key)).count()
    }

    /// Keeps `user` below [`MAX_SESSIONS_PER_USER`] before one more login, ending their least
    /// recently used sessions.
    pub(super) fn limit_user(&mut self, user: &str) {
        let mut sessions: Vec<(SystemTime, Key)> = self
            .lineages
            .iter()
            .filter(|(_, l)| l.session.user.as_deref() == Some(user))
            .map(|(&key, l)| (l.session.last_active, key))
            .collect();
        if sessions.len() < MAX_SESSIONS_PER_USER {
            return;
        }
        sessions.sort_unstable();
        let excess = sessions.len() + 1 - MAX_SESSIONS_PER_USER;
        for &(_, key) in sessions.iter().take(excess) {
            self.remove_lineage(key);
        }
    }

    /// Removes a lineage and every code and application session derived from it.
    pub(super) fn remove_lineage(&mut self, key: Key) -> bool {
        let Some(lineage) = self.lineages.remove(&key) else {
            return false;
        };
        self.ids.remove(&lineage.id);
        for code in &lineage.codes {
            self.codes.remove(code);
        }
        for app in &lineage.apps {
            self.apps.remove(app);
        }
        true
    }

    /// Adds a one-time code for `host` from lineage `key`.
    pub(super) fn insert_code(
        &mut self,
        key: Key,
        host: &str,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> OneTimeCode {
        let oldest = self.lineages.get(&key).and_then(|l| {
            (l.codes.len() >= MAX_CODES_PER_SESSION).then(|| l.codes.first().cloned())?
        });
        if let Some(oldest) = oldest {
            self.take_code(&oldest);
        }
        if self.codes.len() >= self.max {
            self.codes.retain(|_, code| code.expires_at > now);
            self.relink_codes();
        }
        if self.codes.len() >= self.max {
            let soonest = self
                .codes
                .iter()
                .min_by_key(|(_, code)| code.expires_at)
                .map(|(value, _)| value.clone());
            if let Some(soonest) = soonest {
                self.take_code(&soonest);
            }
        }
        let code = OneTimeCode::generate();
        self.codes.insert(
            code.0.clone(),
            Code {
                lineage: key,
                host: host.to_owned(),
                expires_at,
            },
        );
        if let Some(lineage) = self.lineages.get_mut(&key) {
            lineage.codes.push(code.0.clone());
        }
        code
    }

    /// Removes the code `value` and returns its lineage, host and expiry.
    pub(super) fn take_code(&mut self, value: &str) -> Option<(Key, String, SystemTime)> {
        let code = self.codes.remove(value)?;
        if let Some(lineage) = self.lineages.get_mut(&code.lineage) {
            lineage.codes.retain(|c| c != value);
        }
        Some((code.lineage, code.host, code.expires_at))
    }

    /// Adds an application session on `host` for lineage `key`, replacing the one that
    /// lineage already had on that host (a browser holds one cookie per host).
    pub(super) fn insert_app(&mut self, key: Key, host: &str, now: SystemTime) -> AppSessionId {
        self.make_room_for_app(key, host);
        let id = AppSessionId::generate();
        self.apps.insert(
            id.0.clone(),
            App {
                lineage: key,
                host: host.to_owned(),
                last_active: now,
            },
        );
        if let Some(lineage) = self.lineages.get_mut(&key) {
            lineage.apps.push(id.0.clone());
        }
        id
    }

    /// The lineage, host and last activity of application session `id`.
    pub(super) fn app(&self, id: &AppSessionId) -> Option<(Key, String, SystemTime)> {
        self.apps
            .get(id.as_str())
            .map(|app| (app.lineage, app.host.clone(), app.last_active))
    }

    pub(super) fn touch_app(&mut self, id: &str, now: SystemTime) {
        if let Some(app) = self.apps.get_mut(id) {
            app.last_active = app.last_active.max(now);
        }
    }

    pub(super) fn remove_app(&mut self, id: &str) {
        if let Some(app) = self.apps.remove(id)
            && let Some(lineage) = self.lineages.get_mut(&app.lineage)
        {
            lineage.apps.retain(|a| a != id);
        }
    }

    /// Removes every expired portal session (with what it owns), code and application
    /// session. Returns how many portal sessions ended.
    pub(super) fn sweep(&mut self, limits: &SessionLimits, now: SystemTime) -> usize {
        let dead: Vec<Key> = self
            .lineages
            .iter()
            .filter(|(_, l)| !l.session.is_live(limits, now))
            .map(|(&key, _)| key)
            .collect();
        for &key in &dead {
            self.remove_lineage(key);
        }
        self.codes.retain(|_, code| code.expires_at > now);
        let lineages = &self.lineages;
        self.apps.retain(|_, app| {
            lineages.get(&app.lineage).is_some_and(|l| {
                l.session.remember_me || elapsed(app.last_active, now) < limits.inactivity
            })
        });
        self.relink_codes();
        self.relink_apps();
        let lineages = &self.lineages;
        self.anonymous
            .retain(|key| lineages.get(key).is_some_and(|l| l.session.user.is_none()));
        dead.len()
    }

    pub(super) fn counts(&self) -> SessionCounts {
        SessionCounts {
            portal: self.lineages.len(),
            application: self.apps.len(),
            codes: self.codes.len(),
        }
    }

    /// Makes room for one more portal session: evicts the oldest anonymous session, or, with
    /// none left, sweeps and then ends the least recently used session.
    ///
    /// Anonymous sessions cost an attacker nothing to create, so a flood of them only ever
    /// pushes out other anonymous sessions, in constant time each.
    fn make_room(&mut self, limits: &SessionLimits, now: SystemTime) {
        while self.lineages.len() >= self.max {
            if let Some(key) = self.oldest_anonymous() {
                self.remove_lineage(key);
                continue;
            }
            if self.sweep(limits, now) > 0 {
                continue;
            }
            let least_recent = self
                .lineages
                .iter()
                .min_by_key(|(_, l)| l.session.last_active)
                .map(|(&key, _)| key);
            match least_recent {
                Some(key) => self.remove_lineage(key),
                None => break,
            };
        }
        if self.anonymous.len() > 2 * self.max {
            let lineages = &self.lineages;
            self.anonymous
                .retain(|key| lineages.get(key).is_some_and(|l| l.session.user.is_none()));
        }
    }

    /// Pops the oldest lineage of the queue that is still anonymous.
    fn oldest_anonymous(&mut self) -> Option<Key> {
        while let Some(key) = self.anonymous.pop_front() {
            if self
                .lineages
                .get(&key)
                .is_some_and(|l| l.session.user.is_none())
            {
                return Some(key);
            }
        }
        None
    }

    /// Keeps the per-lineage and global caps on application sessions before one more for
    /// lineage `key` on `host`.
    fn make_room_for_app(&mut self, key: Key, host: &str) {
        let owned: Vec<String> = self
            .lineages
            .get(&key)
            .map(|l| l.apps.clone())
            .unwrap_or_default();
        let same_host: Vec<&String> = owned
            .iter()
            .filter(|id| {
                self.apps
                    .get(id.as_str())
                    .is_some_and(|app| app.host == host)
            })
            .collect();
        for id in same_host {
            self.remove_app(id);
        }
        let owned: Vec<String> = self
            .lineages
            .get(&key)
            .map(|l| l.apps.clone())
            .unwrap_or_default();
        if owned.len() >= MAX_APPS_PER_SESSION {
            let least_recent = owned
                .iter()
                .filter_map(|id| self.apps.get(id.as_str()).map(|app| (app.last_active, id)))
                .min()
                .map(|(_, id)| id.clone());
            if let Some(id) = least_recent {
                self.remove_app(&id);
            }
        }
        if self.apps.len() >= self.max {
            let least_recent = self
                .apps
                .iter()
                .min_by_key(|(_, app)| app.last_active)
                .map(|(id, _)| id.clone());
            if let Some(id) = least_recent {
                self.remove_app(&id);
            }
        }
    }

    /// Drops code names from lineages whose codes were removed in bulk.
    fn relink_codes(&mut self) {
        let codes = &self.codes;
        for lineage in self.lineages.values_mut() {
            lineage.codes.retain(|c| codes.contains_key(c));
        }
    }

    /// Drops application session names from lineages whose sessions were removed in bulk.
    fn relink_apps(&mut self) {
        let apps = &self.apps;
        for lineage in self.lineages.values_mut() {
            lineage.apps.retain(|a| apps.contains_key(a));
        }
    }
}
