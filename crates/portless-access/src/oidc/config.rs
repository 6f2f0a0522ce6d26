//! One upstream OpenID provider's settings: the raw form read from the access configuration and
//! the validated [`ProviderConfig`] the client is built from.
//!
//! Validation happens once, at load time, so that a typo (an `http://` issuer, a missing
//! secret, a scope list without `openid`) is refused with a message naming the setting and the
//! fix, instead of surfacing later as a failed login.

use std::path::{Path, PathBuf};

use openidconnect::url::{Host, Url};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::AuthLevel;

/// The longest provider name accepted (it appears in portal URLs and audit events).
const MAX_NAME_LEN: usize = 32;
/// Names `provider:` subjects keep for the other sources of identities.
pub const RESERVED_NAMES: &[&str] = &["users", "email"];

/// One provider's section as written in the configuration file, before validation.
///
/// Unknown keys are not refused by serde: the access configuration's key check reports them
/// with their position and a suggestion.
#[derive(Clone, Deserialize)]
pub struct ProviderConfigRaw {
    /// Short machine name (`[a-z0-9_-]`), used in URLs, rules and audit events.
    pub name: String,
    /// Name shown on the portal's provider choice; defaults to `name`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The issuer URL exactly as the provider publishes it.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret, inline.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A file holding the client secret (trailing whitespace is ignored).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes to request; defaults to `openid email profile`.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// The portal's callback URL registered at the provider; defaults to
    /// `<portal URL>/oidc/<name>/callback` of the first portal.
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// How strongly a login through this provider counts: `one_factor` (default) or
    /// `two_factor` (only for a provider that enforces its own second factor).
    #[serde(default)]
    pub level: Option<String>,
    /// Which ID-token claims carry the email, name and groups.
    #[serde(default)]
    pub claims: ClaimNamesRaw,
    /// Refuse logins whose `email_verified` is not `true` (default `true`).
    #[serde(default)]
    pub require_email_verified: Option<bool>,
    /// PEM file with the CA certificates to trust for this provider instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Tests only: accept `http://` issuer and redirect URLs on `127.0.0.1`, `::1` or `localhost`.
    #[serde(default)]
    pub allow_insecure_loopback: bool,
}

impl std::fmt::Debug for ProviderConfigRaw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfigRaw")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_secret_file", &self.client_secret_file)
            .finish_non_exhaustive()
    }
}

/// Claim names as written in the configuration; missing ones take the standard names.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ClaimNamesRaw {
    /// Claim carrying the email address (default `email`).
    #[serde(default)]
    pub email: Option<String>,
    /// Claim carrying the display name (default `name`).
    #[serde(default)]
    pub name: Option<String>,
    /// Claim carrying the group list (default `groups`).
    #[serde(default)]
    pub groups: Option<String>,
}

/// Which ID-token claims carry the email, name and groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimNames {
    /// Claim carrying the email address.
    pub email: String,
    /// Claim carrying the display name.
    pub name: String,
    /// Claim carrying the group list (an array of strings, or one string).
    pub groups: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            email: "email".to_owned(),
            name: "name".to_owned(),
            groups: "groups".to_owned(),
        }
    }
}

/// A validated upstream provider: everything [`super::OidcClient::discover`] needs.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Short machine name, used in URLs, rules and audit events.
    pub name: String,
    /// Name shown on the portal.
    pub display_name: String,
    /// Issuer URL exactly as written (https, or loopback http when `allow_insecure_loopback` is
    /// set); kept as a string because it must equal the discovery document's `issuer` byte for
    /// byte, trailing slash included.
    pub issuer: String,
    /// Client id registered at the provider.
    pub client_id: String,
    /// Client secret (redacted in Debug).
    pub client_secret: SecretString,
    /// Scopes requested; always contains `openid`.
    pub scopes: Vec<String>,
    /// The portal's callback URL.
    pub redirect_url: Url,
    /// Claim names for email, name and groups.
    pub claims: ClaimNames,
    /// Refuse logins whose `email_verified` is not `true`.
    pub require_email_verified: bool,
    /// How strongly a login through this provider counts.
    pub level: AuthLevel,
    /// CA certificates to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Tests only: loopback `http://` URLs are accepted.
    pub allow_insecure_loopback: bool,
}

/// Why a provider's configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProviderConfigError {
    /// The name is empty, too long or has characters outside `[a-z0-9_-]`.
    #[error(
        "provider name {0:?} is not valid: use 1 to {MAX_NAME_LEN} characters from a-z, 0-9, '-' and '_'"
    )]
    BadName(String),
    /// A URL setting does not parse.
    #[error(
        "provider {provider}: {setting} {value:?} is not a URL ({reason}): write an absolute https:// URL"
    )]
    BadUrl {
        /// Provider name.
        provider: String,
        /// Setting name.
        setting: &'static str,
        /// The value given.
        value: String,
        /// Parser message.
        reason: String,
    },
    /// A URL is not https (and is not an allowed loopback http URL).
    #[error(
        "provider {provider}: {setting} {value} must use https:// (plain http is accepted only for 127.0.0.1, ::1 or localhost with allow_insecure_loopback, for tests)"
    )]
    InsecureUrl {
        /// Provider name.
        provider: String,
        /// Setting name.
        setting: &'static str,
        /// The value given.
        value: String,
    },
    /// The issuer carries a query or fragment, which issuers may not have.
    #[error(
        "provider {provider}: issuer {value} has a query or fragment: remove it (copy the issuer from the provider's discovery document)"
    )]
    IssuerQuery {
        /// Provider name.
        provider: String,
        /// The value given.
        value: String,
    },
    /// The name is one the policy grammar keeps for other sources.
    #[error(
        "provider name {0:?} is reserved (`provider:users` is the users file, `provider:email` the email PIN): choose another name"
    )]
    ReservedName(String),
    /// No `redirect_url`, and no portal to derive it from.
    #[error(
        "provider {0}: no redirect_url and no portal to derive it from: set session.cookies[].authelia_url, or redirect_url: https://AUTH-HOST/oidc/{0}/callback"
    )]
    NoRedirectUrl(String),
    /// `redirect_url` has another path than the portal's callback.
    #[error(
        "provider {provider}: redirect_url {value} must end in /oidc/{provider}/callback (the portal's callback for this provider): use https://AUTH-HOST/oidc/{provider}/callback and register the same URL at the provider"
    )]
    RedirectPath {
        /// Provider name.
        provider: String,
        /// The value given.
        value: String,
    },
    /// `level` is not `one_factor` or `two_factor`.
    #[error("provider {provider}: level {value:?} is not known: use one_factor or two_factor")]
    BadLevel {
        /// Provider name.
        provider: String,
        /// The value given.
        value: String,
    },
    /// The client id is empty.
    #[error("provider {0}: client_id is empty: set the client id registered at the provider")]
    NoClientId(String),
    /// Neither or both of `client_secret` and `client_secret_file` are set.
    #[error("provider {0}: set exactly one of client_secret and client_secret_file")]
    SecretChoice(String),
    /// The secret file could not be read.
    #[error(
        "provider {provider}: cannot read client_secret_file {path}: {reason}: check the path and its permissions"
    )]
    SecretFile {
        /// Provider name.
        provider: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The secret is empty.
    #[error("provider {0}: the client secret is empty: set the secret registered at the provider")]
    EmptySecret(String),
    /// The scope list lacks `openid`.
    #[error(
        "provider {0}: scopes must include \"openid\": add it (e.g. scopes: [openid, email, profile])"
    )]
    NoOpenidScope(String),
    /// A scope or claim name is empty or has whitespace.
    #[error(
        "provider {provider}: {setting} {value:?} is not valid: use a non-empty name without spaces"
    )]
    BadValue {
        /// Provider name.
        provider: String,
        /// Setting name.
        setting: &'static str,
        /// The value given.
        value: String,
    },
}

impl ProviderConfig {
    /// Validates a raw section; reads `client_secret_file` if given (a relative path is
    /// taken from `base_dir`, the configuration file's directory). Without `redirect_url`,
    /// the callback is `<default_portal>/oidc/<name>/callback`.
    pub fn from_raw(
        raw: ProviderConfigRaw,
        base_dir: &Path,
        default_portal: Option<&str>,
    ) -> Result<Self, ProviderConfigError> {
        let name = check_name(&raw.name)?;
        if RESERVED_NAMES.contains(&name.as_str()) {
            return Err(ProviderConfigError::ReservedName(name));
        }
        let insecure = raw.allow_insecure_loopback;
        let issuer_url = parse_url(&name, "issuer", &raw.issuer, insecure)?;
        if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
            return Err(ProviderConfigError::IssuerQuery {
                provider: name,
                value: raw.issuer,
            });
        }
        let callback = format!("/oidc/{name}/callback");
        let redirect = match (&raw.redirect_url, default_portal) {
            (Some(url), _) => url.clone(),
            (None, Some(portal)) => format!("{}{callback}", portal.trim_end_matches('/')),
            (None, None) => return Err(ProviderConfigError::NoRedirectUrl(name)),
        };
        let redirect_url = parse_url(&name, "redirect_url", &redirect, insecure)?;
        if redirect_url.path() != callback || redirect_url.query().is_some() {
            return Err(ProviderConfigError::RedirectPath {
                provider: name,
                value: redirect,
            });
        }
        let level = match raw.level.as_deref().map(str::trim) {
            None | Some("one_factor") => AuthLevel::OneFactor,
            Some("two_factor") => AuthLevel::TwoFactor,
            Some(other) => {
                return Err(ProviderConfigError::BadLevel {
                    provider: name,
                    value: other.to_owned(),
                });
            }
        };
        if raw.client_id.trim().is_empty() {
            return Err(ProviderConfigError::NoClientId(name));
        }
        let secret_file = raw.client_secret_file.map(|file| base_dir.join(file));
        let client_secret = load_secret(&name, raw.client_secret, secret_file)?;
        let scopes = check_scopes(&name, raw.scopes)?;
        let claims = check_claims(&name, raw.claims)?;
        Ok(Self {
            display_name: raw.display_name.unwrap_or_else(|| name.clone()),
            name,
            issuer: raw.issuer,
            client_id: raw.client_id,
            client_secret,
            scopes,
            redirect_url,
            claims,
            require_email_verified: raw.require_email_verified.unwrap_or(true),
            level,
            ca_file: raw.ca_file.map(|file| base_dir.join(file)),
            allow_insecure_loopback: insecure,
        })
    }

    /// Whether `url` is acceptable for this provider's endpoints (https, or loopback http when
    /// allowed); used for the endpoints the discovery document names.
    pub fn url_allowed(&self, url: &Url) -> bool {
        url_allowed(url, self.allow_insecure_loopback)
    }
}

fn check_name(name: &str) -> Result<String, ProviderConfigError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(ProviderConfigError::BadName(name.to_owned()))
    }
}

fn parse_url(
    provider: &str,
    setting: &'static str,
    value: &str,
    insecure_loopback: bool,
) -> Result<Url, ProviderConfigError> {
    let url = Url::parse(value).map_err(|e| ProviderConfigError::BadUrl {
        provider: provider.to_owned(),
        setting,
        value: value.to_owned(),
        reason: e.to_string(),
    })?;
    if url_allowed(&url, insecure_loopback) {
        Ok(url)
    } else {
        Err(ProviderConfigError::InsecureUrl {
            provider: provider.to_owned(),
            setting,
            value: value.to_owned(),
        })
    }
}

/// https always; plain http only to a loopback host and only when explicitly allowed.
pub(crate) fn url_allowed(url: &Url, insecure_loopback: bool) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" if insecure_loopback => match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

fn load_secret(
    provider: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
) -> Result<SecretString, ProviderConfigError> {
    let secret = match (inline, file) {
        (Some(s), None) => SecretString::from(s),
        (None, Some(path)) => read_secret_file(provider, &path)?,
        _ => return Err(ProviderConfigError::SecretChoice(provider.to_owned())),
    };
    if secret.expose_secret().is_empty() {
        return Err(ProviderConfigError::EmptySecret(provider.to_owned()));
    }
    Ok(secret)
}

fn read_secret_file(provider: &str, path: &Path) -> Result<SecretString, ProviderConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProviderConfigError::SecretFile {
        provider: provider.to_owned(),
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(SecretString::from(text.trim_end().to_owned()))
}

fn check_scopes(
    provider: &str,
    scopes: Option<Vec<String>>,
) -> Result<Vec<String>, ProviderConfigError> {
    let scopes =
        scopes.unwrap_or_else(|| ["openid", "email", "profile"].map(str::to_owned).to_vec());
    for s in &scopes {
        check_token(provider, "scope", s)?;
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(ProviderConfigError::NoOpenidScope(provider.to_owned()));
    }
    Ok(scopes)
}

fn check_claims(provider: &str, raw: ClaimNamesRaw) -> Result<ClaimNames, ProviderConfigError> {
    let d = ClaimNames::default();
    let names = ClaimNames {
        email: raw.email.unwrap_or(d.email),
        name: raw.name.unwrap_or(d.name),
        groups: raw.groups.unwrap_or(d.groups),
    };
    check_token(provider, "claims.email", &names.email)?;
    check_token(provider, "claims.name", &names.name)?;
    check_token(provider, "claims.groups", &names.groups)?;
    Ok(names)
}

fn check_token(provider: &str, setting: &'static str, v: &str) -> Result<(), ProviderConfigError> {
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ProviderConfigError::BadValue {
            provider: provider.to_owned(),
            setting,
            value: v.to_owned(),
        });
    }
    Ok(())
}
