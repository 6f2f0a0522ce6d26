//! Server-side sessions: the portal session, one-time codes, and per-application sessions.
//!
//! The browser only ever holds random identifiers; everything they stand for lives here, so a
//! logout or an expiry takes effect at once and everywhere (attack class G):
//! * a **portal session** (cookie on the portal host) starts anonymous (it carries the CSRF
//!   token of the login form) and gets a *new* id at every factor step and re-authentication,
//!   so an id planted before login is worthless after it (fixation);
//! * an application never sees the portal cookie: the portal issues a **one-time code** bound
//!   to one canonical application host (single use, 60 seconds), the application host redeems
//!   it for an **application session** whose host-only cookie is valid on that host only;
//! * an application session is alive only while the portal session it came from is: logout,
//!   revocation or expiry of the portal session ends every application session and code derived
//!   from it. Use on an application keeps the portal session active too.
//!
//! Expiry follows the reference: `inactivity` (5 min) and `expiration` (1 h, absolute); a
//! "remember me" session lasts `remember_me` (30 days) from login and ignores inactivity.
//! Every operation takes the current time, so the rules are tested without waiting.
//!
//! The store is in this process's memory (one `Mutex` around a few maps), bounded by a cap
//! on portal sessions (anonymous ones are evicted first) and per-session caps on codes and
//! application sessions; call [`SessionStore::sweep`] periodically to drop expired entries.
//! Several edges serving one portal need a shared session store: that comes with multi-edge
//! support, behind the same API.
//!
//! Identifiers are 256 random bits, base64url. Their `Debug` output is redacted and they are
//! never logged.

mod state;

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

use crate::AuthLevel;
use state::{Key, State};

/// Portal sessions kept at most, unless [`SessionStore::with_capacity`] says otherwise.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;
/// How long a one-time code can be redeemed.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// How long after a re-authentication credentials (e.g. a TOTP enrolment) may be changed.
pub const REAUTH_WINDOW: Duration = Duration::from_secs(5 * 60);
/// How long an anonymous session (a sign-in in progress) may sit idle at least: the email
/// PIN's and an upstream login's lifetime.
pub const SIGN_IN_IDLE: Duration = Duration::from_secs(10 * 60);
/// Random bytes in every identifier.
const ID_BYTES: usize = 32;
/// Length of an identifier in base64url without padding.
const ID_LEN: usize = 43;

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused for this long expires (not for "remember me" sessions).
    pub inactivity: Duration,
    /// A session expires this long after it started, however active.
    pub expiration: Duration,
    /// How long a "remember me" session lasts from login; `None` disables "remember me".
    pub remember_me: Option<Duration>,
}

impl Default for SessionLimits {
    /// Inactivity 5 minutes, expiration 1 hour, remember me 30 days.
    fn default() -> Self {
        SessionLimits {
            inactivity: Duration::from_secs(5 * 60),
            expiration: Duration::from_secs(60 * 60),
            remember_me: Some(Duration::from_secs(30 * 24 * 60 * 60)),
        }
    }
}

/// A portal session, as the portal reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// The canonical username, once the first factor passed.
    pub user: Option<String>,
    /// How strongly the user authenticated, once the first factor passed.
    pub level: Option<AuthLevel>,
    /// The token every state-changing form of this session must carry (see
    /// [`PortalSession::csrf_ok`]).
    pub csrf_token: String,
    /// When this session started (for a logged-in session: the login).
    pub created_at: SystemTime,
    /// The last request that used it (here or on an application).
    pub last_active: SystemTime,
    /// When the first factor passed.
    pub first_factor_at: Option<SystemTime>,
    /// When the second factor passed.
    pub second_factor_at: Option<SystemTime>,
    /// When the user last re-authenticated (for credential changes).
    pub reauthenticated_at: Option<SystemTime>,
    /// Whether the user asked to be remembered (and "remember me" is enabled).
    pub remember_me: bool,
    /// The login, when it came from another source than the users file (`user` then holds
    /// its [`ExternalLogin::session_key`]).
    pub external: Option<ExternalLogin>,
}

/// Who an application session belongs to, read live from its portal session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The canonical username, or for an external login its [`ExternalLogin::session_key`].
    pub user: String,
    /// How strongly the user authenticated.
    pub level: AuthLevel,
    /// The login, when it came from another source than the users file.
    pub external: Option<ExternalLogin>,
}

/// A login proven by another source than the users file: an upstream OpenID provider or an
/// emailed PIN. Kept whole in the session, because no file can be re-read for it: what the
/// provider said at login is what the policy judges until the session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalLogin {
    /// The upstream provider's configured name; `None` for an email PIN.
    pub provider: Option<String>,
    /// The verified address, lowercase.
    pub email: String,
    /// The display name the provider gave, if any.
    pub name: Option<String>,
    /// The groups the provider gave (none for an email PIN).
    pub groups: Vec<String>,
}

impl ExternalLogin {
    /// The key this login's sessions are filed under (per-user caps, revocation). It starts
    /// with a control character, which no users-file name may hold, so an external login can
    /// never be taken for a users-file user (whose TOTP or passkeys it would then reach).
    pub fn session_key(&self) -> String {
        match &self.provider {
            Some(provider) => format!("\u{1}oidc:{provider}:{}", self.email),
            None => format!("\u{1}email:{}", self.email),
        }
    }
}

/// Declares a random identifier type with a redacted `Debug`.
macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// A fresh random identifier.
            fn generate() -> $name {
                $name(random_token())
            }

            /// The value to put in the cookie (or URL).
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Parses a value a client presented; `None` unless it has the exact shape of an
            /// identifier (43 base64url characters encoding 32 bytes).
            pub fn parse(value: &str) -> Option<$name> {
                is_token(value).then(|| $name(value.to_owned()))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

identifier!(
    /// The identifier of a portal session: the portal cookie's value.
    SessionId
);
identifier!(
    /// The identifier of an application session: the value of the host-only cookie on one
    /// application host.
    AppSessionId
);
identifier!(
    /// A single-use code, valid for [`CODE_TTL`] on one application host, that the
    /// application host exchanges for an [`AppSessionId`].
    OneTimeCode
);

/// How many entries a [`SessionStore`] holds, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionCounts {
    /// Portal sessions, anonymous or not.
    pub portal: usize,
    /// Application sessions.
    pub application: usize,
    /// Outstanding one-time codes.
    pub codes: usize,
}

/// Every session of this edge. See the module documentation for the rules.
///
/// Its `Debug` output shows the limits and counts, never an identifier.
pub struct SessionStore {
    limits: SessionLimits,
    state: Mutex<State>,
}

// === impl SessionStore ===

impl SessionStore {
    /// An empty store with these limits, holding at most [`DEFAULT_MAX_SESSIONS`] portal
    /// sessions.
    pub fn new(limits: SessionLimits) -> SessionStore {
        SessionStore::with_capacity(limits, DEFAULT_MAX_SESSIONS)
    }

    /// An empty store holding at most `max_sessions` portal sessions (at least 1), as many
    /// application sessions and as many one-time codes.
    pub fn with_capacity(limits: SessionLimits, max_sessions: usize) -> SessionStore {
        SessionStore {
            limits,
            state: Mutex::new(State::new(max_sessions.max(1))),
        }
    }

    /// The limits sessions live by.
    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// A new anonymous portal session, for the CSRF token of the login form.
    pub fn create_anonymous(&self, now: SystemTime) -> (SessionId, PortalSession) {
        let session = PortalSession::new(None, false, now);
        let mut state = self.lock();
        let id = state.insert_portal(session.clone(), &self.limits, now);
        (id, session)
    }

    /// The live portal session `id`, marked active at `now`; `None` if unknown or expired
    /// (an expired session is removed, with everything derived from it).
    pub fn get(&self, id: &SessionId, now: SystemTime) -> Option<PortalSession> {
        let mut state = self.lock();
        let key = state.live_key(id, &self.limits, now)?;
        state.touch(key, now)
    }

    /// Records a passed first factor for canonical `user`, returning a NEW session id.
    ///
    /// The session `old` (anonymous, or someone's earlier login in this browser) is revoked
    /// with everything derived from it, so an id known before login is useless after it. The
    /// new session is one-factor, with a new CSRF token; `remember_me` applies only if the
    /// limits enable it.
    pub fn first_factor(
        &self,
        old: &SessionId,
        user: &str,
        remember_me: bool,
        now: SystemTime,
    ) -> SessionId {
        let remember_me = remember_me && self.limits.remember_me.is_some();
        let session = PortalSession::new(Some(user), remember_me, now);
        let mut state = self.lock();
        state.revoke(old);
        state.limit_user(user);
        state.insert_portal(session, &self.limits, now)
    }

    /// Records a login from another source than the users file (an upstream provider, an
    /// emailed PIN) at `level`, returning a NEW session id; like [`SessionStore::first_factor`],
    /// the session `old` is revoked with everything derived from it.
    pub fn external_login(
        &self,
        old: &SessionId,
        login: ExternalLogin,
        level: AuthLevel,
        now: SystemTime,
    ) -> SessionId {
        let key = login.session_key();
        let mut session = PortalSession::new(Some(&key), false, now);
        session.level = Some(level);
        if level == AuthLevel::TwoFactor {
            session.second_factor_at = Some(now);
        }
        session.external = Some(login);
        let mut state = self.lock();
        state.revoke(old);
        state.limit_user(&key);
        state.insert_portal(session, &self.limits, now)
    }

    /// Records a passed second factor on the live logged-in session `old`, returning its NEW
    /// id (the old one stops working); `None` if `old` is not a live session of a users-file
    /// user (second factors belong to users-file accounts only).
    pub fn second_factor(&self, old: &SessionId, now: SystemTime) -> Option<SessionId> {
        if self.get(old, now)?.external.is_some() {
            return None;
        }
        self.step_up(old, now, |session| {
            session.level = Some(AuthLevel::TwoFactor);
            session.second_factor_at = Some(now);
        })
    }

    /// Records a re-authentication on the live logged-in session `id`, returning its NEW id;
    /// `None` if `id` is not a live logged-in session. Credential changes are then allowed for
    /// [`REAUTH_WINDOW`] (see [`PortalSession::may_change_credentials`]).
    pub fn reauthenticated(&self, id: &SessionId, now: SystemTime) -> Option<SessionId> {
        self.step_up(id, now, |session| session.reauthenticated_at = Some(now))
    }

    /// Ends the portal session `id` and every application session and one-time code derived
    /// from it. Returns whether it existed.
    pub fn revoke(&self, id: &SessionId) -> bool {
        self.lock().revoke(id)
    }

    /// Ends every session of `user` (e.g. when the user is disabled or changes password).
    /// Returns how many portal sessions ended.
    pub fn revoke_user(&self, user: &str) -> usize {
        self.lock().revoke_user(user)
    }

    /// A one-time code for the live logged-in session `portal` to open a session on the
    /// canonical host `app_host`; `None` if `portal` is not a live logged-in session.
    pub fn issue_code(
        &self,
        portal: &SessionId,
        app_host: &str,
        now: SystemTime,
    ) -> Option<OneTimeCode> {
        let mut state = self.lock();
        let key = state.live_key(portal, &self.limits, now)?;
        state.touch(key, now)?.user?;
        Some(state.insert_code(key, app_host, now + CODE_TTL, now))
    }

    /// Exchanges `code` on the canonical host `app_host` for an application session bound to
    /// that host. `None` if the code is unknown, used, expired, for another host, or its portal
    /// session has ended. The code is spent whatever the outcome, so a code tried on the wrong
    /// host cannot be used on the right one afterwards.
    pub fn redeem_code(&self, code: &str, app_host: &str, now: SystemTime) -> Option<AppSessionId> {
        let mut state = self.lock();
        let (key, host, expires_at) = state.take_code(code)?;
        if now >= expires_at || host != app_host {
            return None;
        }
        let key = state.live_lineage(key, &self.limits, now)?;
        state.touch(key, now)?.user?;
        Some(state.insert_app(key, app_host, now))
    }

    /// Who the application session `id` belongs to, on the canonical host `app_host`.
    ///
    /// `None` unless the session was opened for exactly this host, its portal session is
    /// still alive, and it was used within `inactivity` (unless remembered). Marks both the
    /// application session and its portal session active.
    pub fn app_session(
        &self,
        id: &AppSessionId,
        app_host: &str,
        now: SystemTime,
    ) -> Option<SessionView> {
        let mut state = self.lock();
        let (key, host, last_active) = state.app(id)?;
        if host != app_host {
            return None;
        }
        let key = state.live_lineage(key, &self.limits, now)?;
        let remembered = state.session(key)?.remember_me;
        if !remembered && elapsed(last_active, now) >= self.limits.inactivity {
            state.remove_app(id.as_str());
            return None;
        }
        state.touch_app(id.as_str(), now);
        let session = state.touch(key, now)?;
        Some(SessionView {
            user: session.user?,
            level: session.level?,
            external: session.external,
        })
    }

    /// Logout from an application host: ends the portal session the application session `id`
    /// came from, and with it everything derived from it. Returns whether it existed.
    pub fn revoke_via_app(&self, id: &AppSessionId) -> bool {
        let mut state = self.lock();
        match state.app(id) {
            Some((key, _, _)) => state.remove_lineage(key),
            None => false,
        }
    }

    /// Removes everything expired at `now`. Returns how many portal sessions ended.
    pub fn sweep(&self, now: SystemTime) -> usize {
        self.lock().sweep(&self.limits, now)
    }

    /// How many sessions and codes are held.
    pub fn counts(&self) -> SessionCounts {
        self.lock().counts()
    }

    /// Applies `change` to the live logged-in session `id`, marks it active and gives it a new
    /// id.
    fn step_up(
        &self,
        id: &SessionId,
        now: SystemTime,
        change: impl FnOnce(&mut PortalSession),
    ) -> Option<SessionId> {
        let mut state = self.lock();
        let key: Key = state.live_key(id, &self.limits, now)?;
        let session = state.session_mut(key)?;
        session.user.as_ref()?;
        change(session);
        state.touch(key, now)?;
        state.rotate(key)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation leaves the maps consistent before it can panic, so a poisoned lock
        // still guards a usable state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("limits", &self.limits)
            .field("counts", &self.counts())
            .finish()
    }
}

// === impl PortalSession ===

impl PortalSession {
    fn new(user: Option<&str>, remember_me: bool, now: SystemTime) -> PortalSession {
        let logged_in = user.is_some();
        PortalSession {
            user: user.map(str::to_owned),
            level: logged_in.then_some(AuthLevel::OneFactor),
            csrf_token: random_token(),
            created_at: now,
            last_active: now,
            first_factor_at: logged_in.then_some(now),
            second_factor_at: None,
            reauthenticated_at: None,
            remember_me,
            external: None,
        }
    }

    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        self.csrf_token
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }

    /// Whether this session may change credentials (enrol or replace a second factor) at
    /// `now`: logged in and re-authenticated within [`REAUTH_WINDOW`].
    pub fn may_change_credentials(&self, now: SystemTime) -> bool {
        self.user.is_some()
            && self.external.is_none()
            && self
                .reauthenticated_at
                .is_some_and(|at| elapsed(at, now) < REAUTH_WINDOW)
    }

    /// Whether this session is still valid at `now` under `limits`.
    fn is_live(&self, limits: &SessionLimits, now: SystemTime) -> bool {
        let lifetime = match (self.remember_me, limits.remember_me) {
            (true, Some(remember)) => remember,
            _ => limits.expiration,
        };
        if elapsed(self.created_at, now) >= lifetime {
            return false;
        }
        // A sign-in in progress (reading the PIN mail, signing in at the provider) may take
        // as long as the PIN or the provider login lives: the anonymous session it is bound
        // to must not go idle first. It holds nothing but its CSRF token and those bindings.
        let inactivity = if self.user.is_none() {
            limits.inactivity.max(SIGN_IN_IDLE)
        } else {
            limits.inactivity
        };
        self.remember_me || elapsed(self.last_active, now) < inactivity
    }
}

impl fmt::Debug for PortalSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalSession")
            .field("user", &self.user)
            .field("level", &self.level)
            .field("csrf_token", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("last_active", &self.last_active)
            .field("first_factor_at", &self.first_factor_at)
            .field("second_factor_at", &self.second_factor_at)
            .field("reauthenticated_at", &self.reauthenticated_at)
            .field("remember_me", &self.remember_me)
            .field("external", &self.external)
            .finish()
    }
}

/// 256 random bits, base64url without padding.
fn random_token() -> String {
    let mut bytes = [0u8; ID_BYTES];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // AWS-LC aborts by itself when its generator fails; should it ever return an error
        // instead, issuing guessable session ids would be worse than stopping.
        tracing::error!("the random generator failed: stopping rather than issue weak session ids");
        std::process::abort();
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `value` has the shape of an identifier made by [`random_token`].
fn is_token(value: &str) -> bool {
    value.len() == ID_LEN
        && URL_SAFE_NO_PAD
            .decode(value.as_bytes())
            .is_ok_and(|bytes| bytes.len() == ID_BYTES)
}

/// Time from `since` to `now`, zero if the clock went backwards.
fn elapsed(since: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests;
