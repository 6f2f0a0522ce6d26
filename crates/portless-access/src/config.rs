//! The access configuration file: the SSO portal's own configuration file, loaded unchanged.
//!
//! Self-hosters point Portless at the file they already have. The sections that decide who
//! gets in are read — `access_control` (the policy), `session`, `regulation`, `totp`, and
//! the users file path from `authentication_backend.file.path` — and every other top-level
//! key of that product (`server`, `storage`, `notifier`, `identity_providers`, ...) is
//! accepted and ignored.
//!
//! Loading is in two passes like the tunnel config's: the YAML is first read as a bare key
//! tree (syntax errors, unknown keys with "did you mean"), then into raw serde structs with
//! positions, then validated into the plain types below, collecting every problem with its
//! `file:line:col` and a fix. Unknown keys are warnings, except inside `access_control`,
//! where they are errors: a misspelt criterion would silently change who is let in.
//!
//! Main types: [`AccessConfig`], [`Loaded`], [`ConfigError`], [`Warning`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use portless_diagnostics::{is_blank, parser_message, plain_parser_message};
use serde_saphyr::Spanned;

use crate::email_pin::SmtpConfig;
use crate::oidc::ProviderConfig;
use crate::policy::AccessControl;

pub(crate) mod diagnostic;
mod duration;
pub(crate) mod keys;
mod login;
mod raw;
#[cfg(test)]
mod tests;
pub(crate) mod validate;

pub(crate) use diagnostic::KNOWN_METHODS;
pub use diagnostic::{
    ConfigError, DomainProblem, Position, Problem, ProblemKind, Warning, WarningKind,
};
pub use duration::{DurationError, parse_duration};

use diagnostic::Problem as P;
use keys::Node;
use validate::Checker;

/// A validated configuration and the warnings found while reading it.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The configuration.
    pub config: T,
    /// Accepted oddities (unknown keys, unanchored regexes, unreachable rules), in file
    /// order.
    pub warnings: Vec<Warning>,
}

impl<T> Loaded<T> {
    /// Logs every warning at `WARN` level, one event each.
    pub fn log_warnings(&self) {
        for warning in &self.warnings {
            tracing::warn!(target: "portless_access::config", "{warning}");
        }
    }
}

/// Everything the access layer takes from the configuration file.
#[derive(Debug)]
pub struct AccessConfig {
    /// The compiled policy (`access_control`; absent: deny everything).
    pub access_control: AccessControl,
    /// Session lifetimes and the cookie domains with their portals.
    pub session: SessionConfig,
    /// Brute-force protection.
    pub regulation: RegulationConfig,
    /// The TOTP second factor.
    pub totp: TotpConfig,
    /// `authentication_backend.file.path`, resolved against the configuration file's
    /// directory when relative; `None` if not configured.
    pub users_file: Option<PathBuf>,
    /// `authentication_backend.oidc`: upstream OpenID providers, in the order written.
    pub oidc: Vec<ProviderConfig>,
    /// `notifier.smtp`: how mail leaves the edge, if configured.
    pub notifier: Option<SmtpConfig>,
    /// `authentication_backend.email_pin.enabled` (needs `notifier`).
    pub email_pin: bool,
    /// Passkeys (WebAuthn).
    pub webauthn: WebauthnConfig,
}

/// `session:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// A session unused for this long ends (default 5 minutes).
    pub inactivity: Duration,
    /// A session ends this long after login, however active (default 1 hour).
    pub expiration: Duration,
    /// How long a "remember me" session lasts (default 1 month of 30 days); `None` when
    /// disabled (`-1`).
    pub remember_me: Option<Duration>,
    /// `session.cookies`: one entry per protected domain.
    pub cookies: Vec<CookieDomain>,
    /// The legacy single `session.domain` (canonical), if written.
    pub legacy_domain: Option<String>,
}

/// One entry of `session.cookies`: a domain protected by the portal at `portal_url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieDomain {
    /// The cookie domain, canonical (lowercase, punycode, no trailing dot).
    pub domain: String,
    /// The portal's URL (`authelia_url`), `https://host[:port][/path]`, host on `domain`.
    pub portal_url: String,
    /// Where to send users who log in without a target, if set.
    pub default_redirection_url: Option<String>,
    /// This domain's inactivity limit (its own, or the session-level one).
    pub inactivity: Duration,
    /// This domain's absolute lifetime (its own, or the session-level one).
    pub expiration: Duration,
    /// This domain's remember-me lifetime (its own, or the session-level one).
    pub remember_me: Option<Duration>,
}

/// `regulation:` — bans after repeated failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegulationConfig {
    /// Failures allowed within `find_time` before a ban (default 3; 0 disables bans).
    pub max_retries: u32,
    /// The window failures are counted in (default 2 minutes).
    pub find_time: Duration,
    /// How long a ban lasts (default 5 minutes).
    pub ban_time: Duration,
}

/// `totp:` — the time-based one-time password second factor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpConfig {
    /// `totp.disable`: no TOTP enrolment or verification.
    pub disabled: bool,
    /// The issuer shown in authenticator apps (default `Portless`).
    pub issuer: String,
    /// The HMAC algorithm (default SHA-1, what every authenticator app supports).
    pub algorithm: TotpAlgorithm,
    /// Code length: 6 (default) or 8.
    pub digits: u32,
    /// How long a code is valid (default 30 seconds).
    pub period: Duration,
    /// Periods accepted before and after the current one (default 1).
    pub skew: u32,
}

/// The HMAC behind TOTP codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TotpAlgorithm {
    /// HMAC-SHA-1 (RFC 6238's default).
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

/// `webauthn:` — passkeys, as a second factor and for passwordless login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebauthnConfig {
    /// `webauthn.disable`: no passkey registration or login.
    pub disabled: bool,
    /// The relying party name authenticators show (default `Portless`).
    pub display_name: String,
    /// What the configuration asks of user verification (see [`UserVerification`]).
    pub user_verification: UserVerification,
    /// How long a browser may take to answer a registration or login challenge (default 60
    /// seconds); also how long the challenge is kept.
    pub timeout: Duration,
}

/// `webauthn.user_verification`.
///
/// Portless's passkeys always ask the authenticator to verify the user (PIN or biometrics),
/// which is what makes a passkey login count as two factors; `discouraged` is accepted with
/// a warning and behaves like `required`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserVerification {
    /// `preferred` (the default).
    Preferred,
    /// `required`.
    Required,
    /// `discouraged` (treated as `required`).
    Discouraged,
}

impl AccessConfig {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Loaded<AccessConfig>, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::one(P::new(path, None, ProblemKind::Read { source })))?;
        AccessConfig::from_yaml(&text, path)
    }

    /// Validates configuration text; `origin` names the file in messages, and relative
    /// paths in it are resolved against `origin`'s directory.
    pub fn from_yaml(
        text: &str,
        origin: impl AsRef<Path>,
    ) -> Result<Loaded<AccessConfig>, ConfigError> {
        let origin = origin.as_ref();
        let mut ck = Checker::new(origin);
        let raw = if is_blank(text) {
            // No document at all: every default, which denies every request.
            raw::RawFile::default()
        } else {
            // Pass 1: the bare key tree. Syntax errors (and repeated keys) surface here.
            let tree: Spanned<Node> = serde_saphyr::from_str(text).map_err(|e| {
                let kind = ProblemKind::Syntax {
                    message: plain_parser_message(&parser_message(&e)),
                };
                ConfigError::one(P::new(origin, Position::of_error(&e), kind))
            })?;
            keys::check_keys(&tree, origin, &mut ck.problems, &mut ck.warnings);
            // Pass 2: typed. A failure here is a value of the wrong type; name its key.
            serde_saphyr::from_str(text).map_err(|e| {
                let position = Position::of_error(&e);
                let message = plain_parser_message(&parser_message(&e));
                let kind = match position.and_then(|p| keys::key_at(&tree, p)) {
                    Some(key) => ProblemKind::WrongType { key, message },
                    None => ProblemKind::Syntax { message },
                };
                // Unknown policy keys found in pass 1 are worth reporting too.
                let mut problems = std::mem::take(&mut ck.problems);
                problems.push(P::new(origin, position, kind));
                ConfigError::new(problems)
            })?
        };
        let config = validate::validate(&raw, &mut ck);
        ck.finish(config)
    }
}
