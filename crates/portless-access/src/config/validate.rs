//! Raw sections → validated types, collecting every problem rather than stopping at the
//! first. The policy's own checks live in `policy::compile`; this module holds the shared
//! [`Checker`] and the `session`, `regulation`, `totp` and `authentication_backend` checks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::diagnostic::{Position, Problem, ProblemKind, Warning, WarningKind};
use super::duration::parse_duration;
use super::keys::closest;
use super::raw::{
    RawAuthBackend, RawCookie, RawFile, RawRegulation, RawSession, RawTotp, RawWebauthn, Text,
};
use super::{
    AccessConfig, ConfigError, CookieDomain, Loaded, RegulationConfig, SessionConfig,
    TotpAlgorithm, TotpConfig, UserVerification, WebauthnConfig,
};
use crate::policy::compile::{self, canonical_host};

// === Checker ===

/// Collects problems and warnings for one file, and parses single values the same way
/// everywhere (so every bad duration gets the same message and fix).
pub(crate) struct Checker<'f> {
    file: &'f Path,
    pub(crate) problems: Vec<Problem>,
    pub(crate) warnings: Vec<Warning>,
}

impl<'f> Checker<'f> {
    pub(crate) fn new(file: &'f Path) -> Self {
        Checker {
            file,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The file being checked.
    pub(crate) fn file(&self) -> &'f Path {
        self.file
    }

    pub(crate) fn error(&mut self, at: Location, kind: ProblemKind) {
        let position = Position::from_location(at);
        self.problems.push(Problem::new(self.file, position, kind));
    }

    pub(crate) fn warn(&mut self, at: Location, kind: WarningKind) {
        self.warn_at(Position::from_location(at), kind);
    }

    pub(crate) fn warn_at(&mut self, at: Option<Position>, kind: WarningKind) {
        self.warnings.push(Warning::new(self.file, at, kind));
    }

    /// The config with its warnings, or every problem found.
    pub(crate) fn finish<T>(self, config: T) -> Result<Loaded<T>, ConfigError> {
        if !self.problems.is_empty() {
            return Err(ConfigError::new(self.problems));
        }
        let mut warnings = self.warnings;
        warnings.sort_by_key(Warning::position);
        Ok(Loaded { config, warnings })
    }

    /// A duration, or `default` when absent; invalid is reported (and gives `default`).
    fn duration(&mut self, key: &str, value: Option<&Text>, default: Duration) -> Duration {
        let Some(value) = value else { return default };
        match parse_duration(&value.value) {
            Ok(duration) => duration,
            Err(reason) => {
                let kind = ProblemKind::InvalidDuration {
                    key: key.to_owned(),
                    value: value.value.clone(),
                    reason,
                };
                self.error(value.referenced, kind);
                default
            }
        }
    }

    /// A remember-me duration: `-1` disables it.
    fn remember_me(
        &mut self,
        key: &str,
        value: Option<&Text>,
        default: Option<Duration>,
    ) -> Option<Duration> {
        match value {
            Some(v) if v.value.trim() == "-1" => None,
            Some(_) => Some(self.duration(key, value, Duration::ZERO)),
            None => default,
        }
    }

    /// An integer in `min..=max`, or `default` when absent; out of range is reported.
    fn int_in(
        &mut self,
        key: &str,
        value: Option<&Spanned<i64>>,
        (min, max): (i64, i64),
        why: &'static str,
        default: u32,
    ) -> u32 {
        let Some(value) = value else { return default };
        match u32::try_from(value.value) {
            Ok(n) if (min..=max).contains(&value.value) => n,
            _ => {
                let kind = ProblemKind::OutOfRange {
                    key: key.to_owned(),
                    value: value.value,
                    min,
                    max,
                    why,
                };
                self.error(value.referenced, kind);
                default
            }
        }
    }
}

// === the file ===

pub(crate) fn validate(raw: &RawFile, ck: &mut Checker<'_>) -> AccessConfig {
    let access_control = compile::compile(raw.access_control.as_ref(), ck);
    let session = session(raw.session.as_ref(), ck);
    let regulation = regulation(raw.regulation.as_ref(), ck);
    let totp = totp(raw.totp.as_ref(), ck);
    let users_file = users_file(raw.authentication_backend.as_ref(), ck);
    let methods = super::login::methods(raw, &session, ck);
    let webauthn = webauthn(raw.webauthn.as_ref(), ck);
    AccessConfig {
        access_control,
        session,
        regulation,
        totp,
        users_file,
        oidc: methods.oidc,
        notifier: methods.notifier,
        email_pin: methods.email_pin,
        webauthn,
    }
}

// === session ===

const FIVE_MINUTES: Duration = Duration::from_secs(5 * 60);
const ONE_HOUR: Duration = Duration::from_secs(60 * 60);
const ONE_MONTH: Duration = Duration::from_secs(30 * 24 * 60 * 60);

fn session(raw: Option<&Spanned<RawSession>>, ck: &mut Checker<'_>) -> SessionConfig {
    let empty = RawSession::default();
    let raw = raw.map_or(&empty, |r| &r.value);
    let inactivity = ck.duration(
        "`session.inactivity`",
        raw.inactivity.as_ref(),
        FIVE_MINUTES,
    );
    let expiration = ck.duration("`session.expiration`", raw.expiration.as_ref(), ONE_HOUR);
    let remember_me = ck.remember_me(
        "`session.remember_me`",
        raw.remember_me.as_ref(),
        Some(ONE_MONTH),
    );
    let legacy_domain = raw
        .domain
        .as_ref()
        .and_then(|d| cookie_domain(ck, "`session.domain`", d));
    let defaults = SessionConfig {
        inactivity,
        expiration,
        remember_me,
        cookies: Vec::new(),
        legacy_domain,
    };
    let cookies = raw
        .cookies
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, cookie)| self::cookie(ck, i + 1, cookie, &defaults))
        .collect();
    SessionConfig {
        cookies,
        ..defaults
    }
}

fn cookie_domain(ck: &mut Checker<'_>, key: &str, text: &Text) -> Option<String> {
    match canonical_host(&text.value) {
        Ok(domain) => Some(domain),
        Err(reason) => {
            let kind = ProblemKind::InvalidCookieDomain {
                key: key.to_owned(),
                value: text.value.clone(),
                reason,
            };
            ck.error(text.referenced, kind);
            None
        }
    }
}

fn cookie(
    ck: &mut Checker<'_>,
    n: usize,
    raw: &Spanned<RawCookie>,
    defaults: &SessionConfig,
) -> Option<CookieDomain> {
    let section = format!("session cookie #{n}");
    let key = |name: &str| format!("`{name}` of session cookie #{n}");
    let c = &raw.value;
    let inactivity = ck.duration(
        &key("inactivity"),
        c.inactivity.as_ref(),
        defaults.inactivity,
    );
    let expiration = ck.duration(
        &key("expiration"),
        c.expiration.as_ref(),
        defaults.expiration,
    );
    let remember_me = ck.remember_me(
        &key("remember_me"),
        c.remember_me.as_ref(),
        defaults.remember_me,
    );
    let Some(domain_text) = &c.domain else {
        let kind = ProblemKind::Missing {
            key: "domain",
            section,
            example: "domain: example.com",
        };
        ck.error(raw.referenced, kind);
        return None;
    };
    let domain = cookie_domain(ck, &key("domain"), domain_text)?;
    let Some(url_text) = &c.authelia_url else {
        let kind = ProblemKind::Missing {
            key: "authelia_url",
            section,
            example: "authelia_url: https://auth.example.com",
        };
        ck.error(raw.referenced, kind);
        return None;
    };
    let portal_url = url_on_domain(ck, &key("authelia_url"), url_text, &domain)?;
    let default_redirection_url = match &c.default_redirection_url {
        Some(text) => Some(url_on_domain(
            ck,
            &key("default_redirection_url"),
            text,
            &domain,
        )?),
        None => None,
    };
    Some(CookieDomain {
        domain,
        portal_url,
        default_redirection_url,
        inactivity,
        expiration,
        remember_me,
    })
}

/// An `https://` URL whose host is `domain` or below it, in canonical form; `None`
/// (reported) otherwise.
fn url_on_domain(ck: &mut Checker<'_>, key: &str, text: &Text, domain: &str) -> Option<String> {
    let checked = parse_https_url(&text.value).and_then(|(host, url)| {
        let on_domain = host == domain
            || (host.len() > domain.len()
                && host.ends_with(domain)
                && host.as_bytes()[host.len() - domain.len() - 1] == b'.');
        if on_domain {
            Ok(url)
        } else {
            Err("its host must be the cookie's domain or a host below it")
        }
    });
    match checked {
        Ok(url) => Some(url),
        Err(reason) => {
            let kind = ProblemKind::InvalidUrl {
                key: key.to_owned(),
                value: text.value.clone(),
                reason,
            };
            ck.error(text.referenced, kind);
            None
        }
    }
}

/// `https://host[:port][/path]` → (canonical host, canonical URL).
pub(crate) fn parse_https_url(written: &str) -> Result<(String, String), &'static str> {
    let written = written.trim();
    let Some((scheme, rest)) = written.split_once("://") else {
        return Err("it must start with https://");
    };
    if !scheme.eq_ignore_ascii_case("https") {
        return Err("the portal must be served over https");
    }
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    if tail.contains(['?', '#']) {
        return Err("it cannot have a query or a fragment");
    }
    if tail.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err("its path cannot hold spaces or control characters");
    }
    if authority.contains('@') {
        return Err("it cannot hold a user name or password");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(p) if p > 0 => (host, Some(p)),
            _ => return Err("its port must be a number from 1 to 65535"),
        },
        None => (authority, None),
    };
    let host = canonical_host(host).map_err(|_| "its host is not a valid hostname")?;
    let path = tail.trim_end_matches('/');
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    let url = format!("https://{host}{port}{path}");
    Ok((host, url))
}

// === regulation ===

const TWO_MINUTES: Duration = Duration::from_secs(2 * 60);

fn regulation(raw: Option<&RawRegulation>, ck: &mut Checker<'_>) -> RegulationConfig {
    let empty = RawRegulation::default();
    let raw = raw.unwrap_or(&empty);
    RegulationConfig {
        max_retries: ck.int_in(
            "`regulation.max_retries`",
            raw.max_retries.as_ref(),
            (0, 1000),
            "0 disables bans",
            3,
        ),
        find_time: ck.duration(
            "`regulation.find_time`",
            raw.find_time.as_ref(),
            TWO_MINUTES,
        ),
        ban_time: ck.duration("`regulation.ban_time`", raw.ban_time.as_ref(), FIVE_MINUTES),
    }
}

// === totp ===

const ALGORITHMS: &[&str] = &["sha1", "sha256", "sha512"];

fn totp(raw: Option<&RawTotp>, ck: &mut Checker<'_>) -> TotpConfig {
    let empty = RawTotp::default();
    let raw = raw.unwrap_or(&empty);
    let issuer = match &raw.issuer {
        Some(text) if text.value.trim().is_empty() => {
            let kind = ProblemKind::Empty {
                key: "`totp.issuer`".into(),
            };
            ck.error(text.referenced, kind);
            "Portless".to_owned()
        }
        Some(text) => text.value.trim().to_owned(),
        None => "Portless".to_owned(),
    };
    let skew = ck.int_in(
        "`totp.skew`",
        raw.skew.as_ref(),
        (0, 2),
        "each step accepts codes one more period old or early, which widens the window an \
         observed code can be replayed in",
        1,
    );
    TotpConfig {
        disabled: raw.disable.unwrap_or(false),
        issuer,
        algorithm: raw
            .algorithm
            .as_ref()
            .map_or(TotpAlgorithm::Sha1, |text| totp_algorithm(ck, text)),
        digits: totp_digits(ck, raw.digits.as_ref()),
        period: totp_period(ck, raw.period.as_ref()),
        skew,
    }
}

fn totp_algorithm(ck: &mut Checker<'_>, text: &Text) -> TotpAlgorithm {
    let written = text.value.trim().to_ascii_lowercase();
    match written.as_str() {
        "sha1" => TotpAlgorithm::Sha1,
        "sha256" => TotpAlgorithm::Sha256,
        "sha512" => TotpAlgorithm::Sha512,
        _ => {
            let kind = ProblemKind::InvalidChoice {
                key: "`totp.algorithm`".into(),
                value: text.value.clone(),
                choices: ALGORITHMS,
                suggestion: closest(&written, ALGORITHMS),
            };
            ck.error(text.referenced, kind);
            TotpAlgorithm::Sha1
        }
    }
}

fn totp_digits(ck: &mut Checker<'_>, digits: Option<&Spanned<i64>>) -> u32 {
    match digits {
        Some(d) if d.value == 8 => 8,
        Some(d) if d.value != 6 => {
            let kind = ProblemKind::OutOfRange {
                key: "`totp.digits`".into(),
                value: d.value,
                min: 6,
                max: 8,
                why: "authenticator apps show 6 or 8 digits (7 is not supported)",
            };
            ck.error(d.referenced, kind);
            6
        }
        _ => 6,
    }
}

fn totp_period(ck: &mut Checker<'_>, text: Option<&Text>) -> Duration {
    let default = Duration::from_secs(30);
    let period = ck.duration("`totp.period`", text, default);
    if let Some(text) = text
        && !(15..=300).contains(&period.as_secs())
    {
        let kind = ProblemKind::OutOfRange {
            key: "`totp.period` (in seconds)".into(),
            value: i64::try_from(period.as_secs()).unwrap_or(i64::MAX),
            min: 15,
            max: 300,
            why: "most authenticator apps only support 30",
        };
        ck.error(text.referenced, kind);
        return default;
    }
    period
}

// === authentication_backend ===

fn users_file(raw: Option<&RawAuthBackend>, ck: &mut Checker<'_>) -> Option<PathBuf> {
    let raw = raw?;
    if let Some(ldap) = &raw.ldap {
        let kind = WarningKind::Unsupported {
            key: "authentication_backend.ldap".into(),
            advice: "Portless reads users from a users file: set \
                     `authentication_backend.file.path`",
        };
        ck.warn(ldap.referenced, kind);
    }
    let path = raw.file.as_ref()?.path.as_ref()?;
    if path.value.trim().is_empty() {
        let kind = ProblemKind::Empty {
            key: "`authentication_backend.file.path`".into(),
        };
        ck.error(path.referenced, kind);
        return None;
    }
    let written = Path::new(path.value.trim());
    Some(if written.is_relative() {
        ck.file()
            .parent()
            .map_or_else(|| written.to_path_buf(), |dir| dir.join(written))
    } else {
        written.to_path_buf()
    })
}

// === webauthn ===

const USER_VERIFICATION: &[&str] = &["preferred", "required", "discouraged"];

fn webauthn(raw: Option<&RawWebauthn>, ck: &mut Checker<'_>) -> WebauthnConfig {
    let empty = RawWebauthn::default();
    let raw = raw.unwrap_or(&empty);
    let display_name = match &raw.display_name {
        Some(text) if text.value.trim().is_empty() => {
            let kind = ProblemKind::Empty {
                key: "`webauthn.display_name`".into(),
            };
            ck.error(text.referenced, kind);
            "Portless".to_owned()
        }
        Some(text) => text.value.trim().to_owned(),
        None => "Portless".to_owned(),
    };
    WebauthnConfig {
        disabled: raw.disable.unwrap_or(false),
        display_name,
        user_verification: raw
            .user_verification
            .as_ref()
            .map_or(UserVerification::Preferred, |text| {
                user_verification(ck, text)
            }),
        timeout: webauthn_timeout(ck, raw.timeout.as_ref()),
    }
}

fn user_verification(ck: &mut Checker<'_>, text: &Text) -> UserVerification {
    let written = text.value.trim().to_ascii_lowercase();
    match written.as_str() {
        "preferred" => UserVerification::Preferred,
        "required" => UserVerification::Required,
        "discouraged" => {
            let kind = WarningKind::Unsupported {
                key: "webauthn.user_verification: discouraged".into(),
                advice: "Portless passkeys always ask the authenticator to verify the user \
                         (PIN or biometrics); write `preferred` or `required` to silence this",
            };
            ck.warn(text.referenced, kind);
            UserVerification::Discouraged
        }
        _ => {
            let kind = ProblemKind::InvalidChoice {
                key: "`webauthn.user_verification`".into(),
                value: text.value.clone(),
                choices: USER_VERIFICATION,
                suggestion: closest(&written, USER_VERIFICATION),
            };
            ck.error(text.referenced, kind);
            UserVerification::Preferred
        }
    }
}

fn webauthn_timeout(ck: &mut Checker<'_>, text: Option<&Text>) -> Duration {
    let default = Duration::from_secs(60);
    let timeout = ck.duration("`webauthn.timeout`", text, default);
    if let Some(text) = text
        && !(10..=600).contains(&timeout.as_secs())
    {
        let kind = ProblemKind::OutOfRange {
            key: "`webauthn.timeout` (in seconds)".into(),
            value: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            min: 10,
            max: 600,
            why: "users need time to find and unlock their authenticator, and a challenge \
                  is kept in memory until it expires",
        };
        ck.error(text.referenced, kind);
        return default;
    }
    timeout
}
