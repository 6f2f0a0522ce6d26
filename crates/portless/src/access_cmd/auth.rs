//! What a request presents to the edge: a service token (flags, then the environment), else
//! the stored CLI token of the application, else nothing.

use super::ServiceTokenArgs;
use super::store::TokenStore;
use super::target::Target;

/// The environment variables a service token is read from, in order: Portless's own, then
/// the incumbent's, so existing scripts keep working.
const ID_VARS: [&str; 2] = ["PORTLESS_SERVICE_TOKEN_ID", "TUNNEL_SERVICE_TOKEN_ID"];
const SECRET_VARS: [&str; 2] = [
    "PORTLESS_SERVICE_TOKEN_SECRET",
    "TUNNEL_SERVICE_TOKEN_SECRET",
];

/// The credential a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Presented {
    /// `CF-Access-Client-Id` and `CF-Access-Client-Secret`.
    ServiceToken { id: String, secret: String },
    /// `cf-access-token`.
    CliToken(String),
    /// Nothing (the policy may still let the request through).
    Nothing {
        /// Why no CLI token was used (missing, expired), for the refusal message.
        why: Option<String>,
    },
}

impl Presented {
    /// The credential for `target`: a service token when one is configured, else the stored
    /// CLI token. A service token given by half (an id without a secret) is an error.
    pub(crate) fn for_target(
        args: &ServiceTokenArgs,
        target: &Target,
    ) -> anyhow::Result<Presented> {
        let id = args
            .service_token_id
            .clone()
            .or_else(|| first_env(&ID_VARS));
        let secret = args
            .service_token_secret
            .clone()
            .or_else(|| first_env(&SECRET_VARS));
        match (id, secret) {
            (Some(id), Some(secret)) => return Ok(Presented::ServiceToken { id, secret }),
            (Some(_), None) => anyhow::bail!(
                "a service token id was given without its secret: pass --service-token-secret or set PORTLESS_SERVICE_TOKEN_SECRET"
            ),
            (None, Some(_)) => anyhow::bail!(
                "a service token secret was given without its id: pass --service-token-id or set PORTLESS_SERVICE_TOKEN_ID"
            ),
            (None, None) => {}
        }
        Ok(match TokenStore::default_location()?.load_valid(target) {
            Ok(token) => Presented::CliToken(token),
            Err(why) => Presented::Nothing {
                why: Some(why.to_string()),
            },
        })
    }

    /// The request header lines to send (`name: value`).
    pub(crate) fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Presented::ServiceToken { id, secret } => vec![
                ("CF-Access-Client-Id", id.clone()),
                ("CF-Access-Client-Secret", secret.clone()),
            ],
            Presented::CliToken(token) => vec![("cf-access-token", token.clone())],
            Presented::Nothing { .. } => Vec::new(),
        }
    }

    /// What to do when the edge refused this credential.
    pub(crate) fn fix(&self, target: &Target) -> String {
        let login = format!("portless access login {}", target.origin());
        match self {
            Presented::ServiceToken { .. } => format!(
                "check the service token (its id and secret, that it is not revoked or expired, and that the policy for {} names it)",
                target.host
            ),
            Presented::CliToken(_) => format!(
                "the stored token was refused (expired, signed by another edge, or your access changed): run `{login}` again"
            ),
            Presented::Nothing { why } => format!(
                "{} requires sign-in: run `{login}` (people), or pass a service token with --service-token-id/--service-token-secret or PORTLESS_SERVICE_TOKEN_ID/SECRET (machines){}",
                target.host,
                why.as_deref()
                    .map(|w| format!(" [{w}]"))
                    .unwrap_or_default()
            ),
        }
    }
}

fn first_env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}
