//! The access configuration file exactly as serde reads it: step one of two.
//!
//! Values that validation must point at are [`Spanned`], so an error can name its line and
//! column. Durations and enums stay strings here (YAML gives `300` and `"5m"` alike as text
//! to a `String` field) and are parsed in validation, where a bad value becomes one
//! collected error instead of aborting the whole parse. Unknown keys are not rejected by
//! serde: `keys` reports them with positions.

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::email_pin::RawNotifier;
use crate::oidc::ProviderConfigRaw;
use crate::policy::raw::RawAccessControl;

/// A YAML scalar as text, and where it was written.
pub(crate) type Text = Spanned<String>;

/// The whole file: the sections Portless reads. Every other top-level key of the
/// incumbent is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawFile {
    pub access_control: Option<Spanned<RawAccessControl>>,
    pub session: Option<Spanned<RawSession>>,
    pub regulation: Option<RawRegulation>,
    pub totp: Option<RawTotp>,
    pub authentication_backend: Option<RawAuthBackend>,
    pub notifier: Option<Spanned<RawNotifier>>,
    pub webauthn: Option<RawWebauthn>,
}

/// `session:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawSession {
    pub inactivity: Option<Text>,
    pub expiration: Option<Text>,
    #[serde(alias = "remember_me_duration")]
    pub remember_me: Option<Text>,
    pub cookies: Option<Vec<Spanned<RawCookie>>>,
    /// The legacy single-domain form (before `cookies`).
    pub domain: Option<Text>,
}

/// One entry of `session.cookies`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawCookie {
    pub domain: Option<Text>,
    pub authelia_url: Option<Text>,
    pub default_redirection_url: Option<Text>,
    pub inactivity: Option<Text>,
    pub expiration: Option<Text>,
    pub remember_me: Option<Text>,
}

/// `regulation:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawRegulation {
    pub max_retries: Option<Spanned<i64>>,
    pub find_time: Option<Text>,
    pub ban_time: Option<Text>,
}

/// `totp:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawTotp {
    pub disable: Option<bool>,
    pub issuer: Option<Text>,
    pub algorithm: Option<Text>,
    pub digits: Option<Spanned<i64>>,
    pub period: Option<Text>,
    pub skew: Option<Spanned<i64>>,
}

/// `authentication_backend:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAuthBackend {
    pub file: Option<RawFileBackend>,
    /// Read only to say that it is not supported.
    pub ldap: Option<Spanned<serde::de::IgnoredAny>>,
    /// Portless: upstream OpenID providers.
    pub oidc: Option<Vec<Spanned<ProviderConfigRaw>>>,
    /// Portless: the email one-time PIN.
    pub email_pin: Option<Spanned<RawEmailPin>>,
}

/// `authentication_backend.email_pin:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawEmailPin {
    pub enabled: Option<bool>,
}

/// `authentication_backend.file:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawFileBackend {
    pub path: Option<Text>,
}

/// `webauthn:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawWebauthn {
    pub disable: Option<bool>,
    pub display_name: Option<Text>,
    pub user_verification: Option<Text>,
    pub timeout: Option<Text>,
}
