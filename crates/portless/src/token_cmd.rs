//! `portless token create|list|rotate|revoke`: service tokens, the credentials machines send as
//! `CF-Access-Client-Id`/`CF-Access-Client-Secret` headers.
//!
//! A secret is printed once, at creation or rotation, with the headers to send; the store keeps
//! only its hash. Output goes through a writer so the commands are unit-tested on their text.

use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::Subcommand;
use portless_access::service_token::{ClientSecret, ServiceTokens, TokenInfo};
use portless_store::Store;

/// `portless token ...`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenCommand {
    /// Create a service token: prints its client id and secret (shown only once) and the
    /// headers a client sends.
    Create {
        /// Token name (letters, digits, '.', '_', '-'; case-insensitive), as rules name it
        /// (`token:NAME`).
        name: String,
        /// How long the token works: a duration such as 90d, 1y, or `forever`.
        #[arg(long, default_value = "1y", value_parser = parse_lifetime)]
        duration: Lifetime,
    },
    /// List service tokens (never their secrets).
    List,
    /// Give a token a new secret (printed once); the old one keeps working for the grace period.
    Rotate {
        /// Token name.
        name: String,
        /// How long the old secret keeps working, e.g. 24h, 15m, 0s.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: Duration,
    },
    /// Revoke a token: refused from the next request on.
    Revoke {
        /// Token name.
        name: String,
    },
}

/// A token lifetime: a duration, or forever (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lifetime(pub(crate) Option<Duration>);

/// Parses `forever` or a humantime duration (`90d`, `1y`).
fn parse_lifetime(text: &str) -> Result<Lifetime, String> {
    if text.eq_ignore_ascii_case("forever") {
        return Ok(Lifetime(None));
    }
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{e}: use a duration such as 90d or 1y, or forever"))?;
    if duration.is_zero() {
        return Err("a token that lasts 0s would never work: use e.g. 1y, or forever".into());
    }
    Ok(Lifetime(Some(duration)))
}

/// Runs `cmd` against `store`, printing to stdout.
pub(crate) async fn run(cmd: TokenCommand, store: &Store) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    execute(cmd, store, SystemTime::now(), &mut out).await
}

/// Runs `cmd` at `now`, writing what the user sees to `out`.
async fn execute(
    cmd: TokenCommand,
    store: &Store,
    now: SystemTime,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let tokens = ServiceTokens::new(store.clone());
    match cmd {
        TokenCommand::Create { name, duration } => {
            let (info, secret) = tokens.create(&name, duration.0, now).await?;
            print_created(out, &info, &secret)
        }
        TokenCommand::List => print_list(out, &tokens.list().await?, now),
        TokenCommand::Rotate { name, grace } => {
            let (info, secret) = tokens.rotate(&name, grace, now).await?;
            print_rotated(out, &info, &secret)
        }
        TokenCommand::Revoke { name } => {
            tokens.revoke(&name, now).await?;
            writeln!(
                out,
                "Revoked service token {}: it is refused from now on.",
                name.to_ascii_lowercase()
            )
            .context("writing the output")
        }
    }
}

fn print_created(
    out: &mut dyn Write,
    info: &TokenInfo,
    secret: &ClientSecret,
) -> anyhow::Result<()> {
    let expires = match info.expires_at {
        Some(t) => format!("expires {}", when(t)),
        None => "never expires".to_owned(),
    };
    writeln!(out, "Created service token {} ({expires}).", info.name)?;
    print_credentials(out, info, secret)?;
    writeln!(
        out,
        "Only rules that name it admit it, e.g. `subject: [\"token:{}\"]`.",
        info.name
    )?;
    Ok(())
}

fn print_rotated(
    out: &mut dyn Write,
    info: &TokenInfo,
    secret: &ClientSecret,
) -> anyhow::Result<()> {
    writeln!(out, "Rotated the secret of service token {}.", info.name)?;
    print_credentials(out, info, secret)?;
    // A zero grace ends at the rotation itself.
    match info.previous_valid_until {
        Some(until) if Some(until) > info.rotated_at => writeln!(
            out,
            "The previous secret keeps working until {}.",
            when(until)
        )?,
        _ => writeln!(out, "The previous secret no longer works.")?,
    }
    Ok(())
}

fn print_credentials(
    out: &mut dyn Write,
    info: &TokenInfo,
    secret: &ClientSecret,
) -> anyhow::Result<()> {
    writeln!(out)?;
    writeln!(out, "Client id:     {}", info.client_id)?;
    writeln!(out, "Client secret: {}", secret.expose())?;
    writeln!(out)?;
    writeln!(
        out,
        "The secret is shown only now: keep it in the client's secret store."
    )?;
    writeln!(out, "Send both headers with every request:")?;
    writeln!(out, "  CF-Access-Client-Id: {}", info.client_id)?;
    writeln!(out, "  CF-Access-Client-Secret: {}", secret.expose())?;
    writeln!(
        out,
        "(Portless-Client-Id and Portless-Client-Secret are accepted too.)"
    )?;
    Ok(())
}

fn print_list(out: &mut dyn Write, tokens: &[TokenInfo], now: SystemTime) -> anyhow::Result<()> {
    if tokens.is_empty() {
        writeln!(
            out,
            "No service tokens yet: create one with `portless token create NAME`."
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20}  {:<39}  {:<20}  {:<28}  ROTATED",
        "NAME", "CLIENT ID", "CREATED", "EXPIRES"
    )?;
    for token in tokens {
        let expires = match token.expires_at {
            Some(t) if token.is_expired(now) => format!("{} (expired)", when(t)),
            Some(t) => when(t),
            None => "never".to_owned(),
        };
        let rotated = match (token.rotated_at, token.previous_valid_until) {
            (Some(r), Some(until)) if now < until => {
                format!("{} (old secret until {})", when(r), when(until))
            }
            (Some(r), _) => when(r),
            (None, _) => "-".to_owned(),
        };
        writeln!(
            out,
            "{:<20}  {:<39}  {:<20}  {:<28}  {rotated}",
            token.name,
            token.client_id,
            when(token.created_at),
            expires
        )?;
    }
    Ok(())
}

/// A time as RFC 3339 UTC, to the second.
fn when(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::UNIX_EPOCH;

    use clap::Parser;
    use portless_access::service_token::TokenRefusal;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: TokenCommand,
    }

    fn parse(args: &[&str]) -> Result<TokenCommand, clap::Error> {
        let argv = std::iter::once("token").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.cmd)
    }

    const NOW: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    async fn output(store: &Store, cmd: TokenCommand, now: u64) -> String {
        let mut out = Vec::new();
        execute(cmd, store, at(now), &mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The value after `prefix` on the line that starts with it.
    fn field<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in\n{text}"))
            .trim()
    }

    #[test]
    fn arguments_parse_with_defaults_and_forever() {
        let year = Duration::from_secs(31_557_600);
        assert_eq!(
            parse(&["create", "ci"]).unwrap(),
            TokenCommand::Create {
                name: "ci".into(),
                duration: Lifetime(Some(year)),
            }
        );
        assert_eq!(
            parse(&["create", "ci", "--duration", "forever"]).unwrap(),
            TokenCommand::Create {
                name: "ci".into(),
                duration: Lifetime(None),
            }
        );
        assert_eq!(
            parse(&["create", "ci", "--duration", "90d"]).unwrap(),
            TokenCommand::Create {
                name: "ci".into(),
                duration: Lifetime(Some(Duration::from_secs(90 * 86_400))),
            }
        );
        assert_eq!(
            parse(&["rotate", "ci"]).unwrap(),
            TokenCommand::Rotate {
                name: "ci".into(),
                grace: Duration::from_secs(86_400),
            }
        );
        assert_eq!(
            parse(&["rotate", "ci", "--grace", "0s"]).unwrap(),
            TokenCommand::Rotate {
                name: "ci".into(),
                grace: Duration::ZERO,
            }
        );
        assert_eq!(parse(&["list"]).unwrap(), TokenCommand::List);
        assert_eq!(
            parse(&["revoke", "ci"]).unwrap(),
            TokenCommand::Revoke { name: "ci".into() }
        );
        for bad in [["--duration", "soon"], ["--duration", "0s"]] {
            let error = parse(&["create", "ci", bad[0], bad[1]]).unwrap_err();
            assert!(error.to_string().contains("forever"), "{error}");
        }
    }

    #[tokio::test]
    async fn create_prints_the_credentials_once_and_they_work() {
        let store = Store::open_in_memory().await.unwrap();
        let text = output(&store, parse(&["create", "CI"]).unwrap(), NOW).await;
        assert!(
            text.starts_with("Created service token ci (expires 2028-01-15T"),
            "{text}"
        );
        let id = field(&text, "Client id:");
        let secret = field(&text, "Client secret:");
        assert_eq!(field(&text, "  CF-Access-Client-Id:"), id);
        assert_eq!(field(&text, "  CF-Access-Client-Secret:"), secret);
        assert!(text.contains("Portless-Client-Id"), "{text}");
        assert!(text.contains("token:ci"), "{text}");

        let tokens = ServiceTokens::new(store.clone());
        let authenticated = tokens.authenticate(id, secret, at(NOW + 1)).await.unwrap();
        assert_eq!(authenticated.name, "ci");

        // `list` shows the token but never the secret.
        let listed = output(&store, TokenCommand::List, NOW + 1).await;
        assert!(listed.starts_with("NAME "), "{listed}");
        assert!(
            listed.contains(id) && listed.contains("2027-01-15T08:00:00Z"),
            "{listed}"
        );
        assert!(!listed.contains(secret), "{listed}");
    }

    #[tokio::test]
    async fn rotate_then_revoke() {
        let store = Store::open_in_memory().await.unwrap();
        let created = output(
            &store,
            parse(&["create", "ci", "--duration", "forever"]).unwrap(),
            NOW,
        )
        .await;
        assert!(created.contains("(never expires)"), "{created}");
        let old = field(&created, "Client secret:").to_owned();
        let id = field(&created, "Client id:").to_owned();

        let rotated = output(
            &store,
            parse(&["rotate", "ci", "--grace", "1h"]).unwrap(),
            NOW,
        )
        .await;
        let new = field(&rotated, "Client secret:").to_owned();
        assert_ne!(new, old);
        assert!(
            rotated.contains("keeps working until 2027-01-15T09:00:00Z"),
            "{rotated}"
        );
        let listed = output(&store, TokenCommand::List, NOW + 60).await;
        assert!(
            listed.contains("(old secret until 2027-01-15T09:00:00Z)"),
            "{listed}"
        );

        let tokens = ServiceTokens::new(store.clone());
        assert!(tokens.authenticate(&id, &old, at(NOW + 60)).await.is_ok());
        assert!(tokens.authenticate(&id, &new, at(NOW + 60)).await.is_ok());

        let revoked = output(&store, parse(&["revoke", "ci"]).unwrap(), NOW + 61).await;
        assert!(revoked.starts_with("Revoked service token ci"), "{revoked}");
        assert!(matches!(
            tokens.authenticate(&id, &new, at(NOW + 62)).await,
            Err(TokenRefusal::Revoked)
        ));
        let empty = output(&store, TokenCommand::List, NOW + 62).await;
        assert!(empty.starts_with("No service tokens yet"), "{empty}");
    }

    #[tokio::test]
    async fn mistakes_say_how_to_fix_them() {
        let store = Store::open_in_memory().await.unwrap();
        output(&store, parse(&["create", "ci"]).unwrap(), NOW).await;
        let mut sink = Vec::new();
        let error = execute(
            parse(&["create", "CI"]).unwrap(),
            &store,
            at(NOW),
            &mut sink,
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("revoke it first"), "{error}");
        let error = execute(
            parse(&["revoke", "nope"]).unwrap(),
            &store,
            at(NOW),
            &mut sink,
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().contains("`portless token list`"),
            "{error}"
        );
        let error = execute(
            parse(&["rotate", "a b"]).unwrap(),
            &store,
            at(NOW),
            &mut sink,
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("use letters"), "{error}");
    }

    #[tokio::test]
    async fn a_zero_grace_says_the_old_secret_stopped() {
        let store = Store::open_in_memory().await.unwrap();
        output(&store, parse(&["create", "ci"]).unwrap(), NOW).await;
        let rotated = output(
            &store,
            parse(&["rotate", "ci", "--grace", "0s"]).unwrap(),
            NOW,
        )
        .await;
        assert!(
            rotated.contains("The previous secret no longer works."),
            "{rotated}"
        );
    }

    #[tokio::test]
    async fn an_expired_token_is_marked_in_the_list() {
        let store = Store::open_in_memory().await.unwrap();
        output(
            &store,
            parse(&["create", "ci", "--duration", "1h"]).unwrap(),
            NOW,
        )
        .await;
        let listed = output(&store, TokenCommand::List, NOW + 3600).await;
        assert!(listed.contains("(expired)"), "{listed}");
    }
}
