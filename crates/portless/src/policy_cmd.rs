//! `portless policy test URL`: which access rule decides a request, and why the earlier
//! rules did not.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use portless_access::config::AccessConfig;
use portless_access::users::UsersDatabase;
use portless_access::{AccessRequest, AuthLevel, Identity, Source, Subject};
use portless_proto::{canonical_host, canonical_path};

/// `portless policy ...`.
#[derive(Subcommand, Debug)]
pub(crate) enum PolicyCommand {
    /// Print the decision for URL, the rule that took it, and for each earlier rule the
    /// criterion that did not match. Without --user or --token the request is anonymous.
    Test(TestArgs),
}

/// `portless policy test`.
#[derive(Args, Debug)]
pub(crate) struct TestArgs {
    /// The URL, e.g. https://admin.example.com/settings?tab=1.
    pub(crate) url: String,
    /// The access configuration file.
    #[arg(
        long,
        env = "PORTLESS_ACCESS_CONFIG",
        default_value = "configuration.yml"
    )]
    pub(crate) config: PathBuf,
    /// Judge as this user (groups from the users file), with a two-factor session.
    #[arg(long, conflicts_with_all = ["token", "email"])]
    pub(crate) user: Option<String>,
    /// With --user or --email: a session that passed only the first factor (an email PIN
    /// and most providers give one factor).
    #[arg(long)]
    pub(crate) one_factor: bool,
    /// Judge as someone who signed in through an upstream provider (--provider NAME) or an
    /// email PIN (--provider email) with this address.
    #[arg(long, requires = "provider", conflicts_with = "token")]
    pub(crate) email: Option<String>,
    /// With --email: the OIDC provider's name, or `email` for an email PIN.
    #[arg(long, requires = "email")]
    pub(crate) provider: Option<String>,
    /// With --email and an OIDC provider: a group its groups claim carries (repeatable).
    #[arg(long = "group", requires = "email")]
    pub(crate) groups: Vec<String>,
    /// Judge as this service token (by name).
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// The request method.
    #[arg(long, default_value = "GET")]
    pub(crate) method: String,
    /// The client's address, for `networks` criteria.
    #[arg(long, default_value = "203.0.113.10")]
    pub(crate) ip: IpAddr,
}

/// Runs `portless policy`.
pub(crate) fn run(command: PolicyCommand) -> anyhow::Result<()> {
    let PolicyCommand::Test(args) = command;
    if !args.config.exists() {
        anyhow::bail!(
            "no access configuration at {}: pass --config FILE or set PORTLESS_ACCESS_CONFIG",
            args.config.display()
        );
    }
    let loaded = AccessConfig::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    let config = loaded.config;
    let (host, path_and_query) = split_url(&args.url)?;
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (path_and_query, None),
    };
    let identity = match (&args.user, &args.token) {
        (Some(user), _) => Some(user_identity(&config, user, args.one_factor)?),
        (None, _) if args.email.is_some() => Some(external_identity(&config, &args)?),
        (None, Some(token)) => Some(Identity {
            subject: Subject::ServiceToken {
                name: token.to_lowercase(),
                client_id: format!("(service token {token})"),
            },
            display_name: String::new(),
            email: None,
            groups: Vec::new(),
        }),
        (None, None) => None,
    };
    let method = args.method.to_ascii_uppercase();
    let explanation = config.access_control.explain(&AccessRequest {
        host: &host,
        path: &path,
        query: query.as_deref(),
        method: &method,
        client_ip: args.ip,
        identity: identity.as_ref(),
    });
    println!("{explanation}");
    Ok(())
}

/// Canonical host and path+query of an `https://` URL (as the edge computes them).
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .with_context(|| format!("{url}: give a full URL, like https://app.example.com/path"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], rest[at..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path
    };
    let host = canonical_host(authority).map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let path = canonical_path(&path).map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    Ok((host, path))
}

/// The identity an upstream provider or an email PIN would prove (named by its address).
fn external_identity(config: &AccessConfig, args: &TestArgs) -> anyhow::Result<Identity> {
    let email = args
        .email
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    if email
        .rsplit_once('@')
        .is_none_or(|(l, d)| l.is_empty() || d.is_empty())
    {
        anyhow::bail!("--email {email:?} is not an address: write one like alice@example.com");
    }
    let source = match args.provider.as_deref() {
        Some("email") => {
            if !args.groups.is_empty() {
                anyhow::bail!("an email PIN carries no groups: remove --group");
            }
            Source::EmailPin
        }
        Some("users") | None => {
            anyhow::bail!(
                "--provider names an OIDC provider, or `email` for an email PIN; for users-file users use --user"
            )
        }
        Some(name) => Source::Oidc(name.to_owned()),
    };
    // As a real login would give: a PIN is one factor, a provider its configured `level`.
    let level = match &source {
        _ if args.one_factor => AuthLevel::OneFactor,
        Source::Oidc(name) => match config.oidc.iter().find(|p| &p.name == name) {
            Some(provider) => provider.level,
            None => {
                let known: Vec<&str> = config.oidc.iter().map(|p| p.name.as_str()).collect();
                eprintln!(
                    "warning: no OIDC provider `{name}` in the configuration (configured: {}); judging its login as one factor",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
                AuthLevel::OneFactor
            }
        },
        _ => AuthLevel::OneFactor,
    };
    Ok(Identity {
        subject: Subject::User {
            name: email.clone(),
            level,
            source,
        },
        display_name: email.clone(),
        email: Some(email),
        groups: args.groups.clone(),
    })
}

fn user_identity(config: &AccessConfig, user: &str, one_factor: bool) -> anyhow::Result<Identity> {
    let level = if one_factor {
        AuthLevel::OneFactor
    } else {
        AuthLevel::TwoFactor
    };
    let path = config
        .users_file
        .as_ref()
        .context("the configuration names no users file (authentication_backend.file.path), so --user has no groups to read")?;
    let users = UsersDatabase::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let record = users.find_login(user).with_context(|| {
        format!(
            "no user {user} in {}; check the name or the users file",
            path.display()
        )
    })?;
    Ok(record.identity(level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_canonicalized_like_the_edge_does() {
        let (host, path) =
            split_url("https://ADMIN.Example.com.:8443/public/%2e%2e/admin?x=1").unwrap();
        assert_eq!(host, "admin.example.com");
        assert_eq!(path, "/admin?x=1");
        assert!(split_url("admin.example.com/").is_err());
    }
}
