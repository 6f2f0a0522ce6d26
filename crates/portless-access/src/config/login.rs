//! The sign-in methods beside the users file: `authentication_backend.oidc` (upstream OpenID
//! providers), `authentication_backend.email_pin` and the `notifier.smtp` it mails through.
//!
//! Each section keeps its own validator (`oidc::ProviderConfig::from_raw`,
//! `email_pin::SmtpConfig::from_raw`); this module runs them at the section's position and
//! adds the checks that need the rest of the file: a provider's callback must be on a portal
//! host, names must be unique, and the email PIN needs a notifier.

use std::path::Path;

use serde_saphyr::Spanned;

use super::SessionConfig;
use super::diagnostic::ProblemKind;
use super::raw::RawFile;
use super::validate::Checker;
use crate::email_pin::SmtpConfig;
use crate::oidc::ProviderConfig;

/// The validated sign-in methods.
pub(crate) struct Methods {
    pub(crate) oidc: Vec<ProviderConfig>,
    pub(crate) notifier: Option<SmtpConfig>,
    pub(crate) email_pin: bool,
}

pub(crate) fn methods(raw: &RawFile, session: &SessionConfig, ck: &mut Checker<'_>) -> Methods {
    let base_dir = ck.file().parent().unwrap_or(Path::new(".")).to_path_buf();
    let backend = raw.authentication_backend.as_ref();
    let providers = backend.and_then(|b| b.oidc.as_deref()).unwrap_or_default();
    let oidc = providers
        .iter()
        .filter_map(|p| provider(p, session, &base_dir, ck))
        .collect::<Vec<_>>();
    let notifier = raw.notifier.as_ref().and_then(|n| {
        let smtp = n.value.smtp.as_ref()?;
        SmtpConfig::from_raw(smtp, &base_dir)
            .map_err(|e| ck.error(n.referenced, ProblemKind::setting(&e)))
            .ok()
    });
    let pin = backend.and_then(|b| b.email_pin.as_ref());
    let email_pin = pin.is_some_and(|p| p.value.enabled.unwrap_or(true));
    if let Some(pin) = pin.filter(|_| email_pin)
        && raw.notifier.as_ref().is_none_or(|n| n.value.smtp.is_none())
    {
        ck.error(
            pin.referenced,
            ProblemKind::Setting {
                message: "authentication_backend.email_pin is enabled but there is no notifier.smtp to send the codes".to_owned(),
                fix: "add a notifier.smtp section (address, sender, username, password_file), or set email_pin.enabled: false".to_owned(),
            },
        );
    }
    Methods {
        oidc: unique(oidc, providers, ck),
        notifier,
        email_pin,
    }
}

/// One provider: its own checks, then its callback must be on one of the portals.
fn provider(
    raw: &Spanned<crate::oidc::ProviderConfigRaw>,
    session: &SessionConfig,
    base_dir: &Path,
    ck: &mut Checker<'_>,
) -> Option<ProviderConfig> {
    let default_portal = session.cookies.first().map(|c| c.portal_url.as_str());
    let config = ProviderConfig::from_raw(raw.value.clone(), base_dir, default_portal)
        .map_err(|e| ck.error(raw.referenced, ProblemKind::setting(&e)))
        .ok()?;
    let host = config.redirect_url.host_str().unwrap_or_default();
    let on_portal = session.cookies.iter().any(|c| {
        super::validate::parse_https_url(&c.portal_url)
            .is_ok_and(|(portal_host, _)| portal_host.eq_ignore_ascii_case(host))
    });
    if !on_portal {
        ck.error(
            raw.referenced,
            ProblemKind::Setting {
                message: format!(
                    "provider {}: redirect_url {} is not on a portal host (session.cookies[].authelia_url)",
                    config.name, config.redirect_url
                ),
                fix: format!(
                    "use https://AUTH-HOST/oidc/{}/callback where AUTH-HOST is the host of an authelia_url",
                    config.name
                ),
            },
        );
        return None;
    }
    Some(config)
}

/// Refuses a provider name given twice (its URLs and `provider:` rules would be ambiguous).
fn unique(
    oidc: Vec<ProviderConfig>,
    raw: &[Spanned<crate::oidc::ProviderConfigRaw>],
    ck: &mut Checker<'_>,
) -> Vec<ProviderConfig> {
    for (i, item) in raw.iter().enumerate() {
        if raw[..i]
            .iter()
            .any(|earlier| earlier.value.name == item.value.name)
        {
            ck.error(
                item.referenced,
                ProblemKind::Setting {
                    message: format!("the OIDC provider name `{}` is used twice", item.value.name),
                    fix: "give every provider its own name".to_owned(),
                },
            );
        }
    }
    oidc
}
