//! `portless access curl URL [ARGS]`: the real curl, with the application's credential as a
//! header, and curl's exit code passed on.
//!
//! The header reaches curl in a file only this user can read (`-H @FILE`), so the token is
//! not on a command line `ps` shows. curl sends such headers to every URL it fetches, so
//! redirects are not followed and no other host's URL may be given.

use std::io::Write as _;
use std::process::{Command, ExitCode};

use anyhow::{Context as _, bail};

use super::CurlArgs;
use super::auth::Presented;
use super::target::Target;

/// Runs curl. A missing or expired token is an error before curl starts (a request without
/// it would only come back refused).
pub(crate) fn run(args: &CurlArgs) -> anyhow::Result<ExitCode> {
    let target = Target::parse(&args.url)?;
    let presented = Presented::for_target(&args.service_token, &target)?;
    if let Presented::Nothing { why } = &presented {
        bail!("{}", why.clone().unwrap_or_else(|| presented.fix(&target)));
    }
    refuse_leaks(&args.curl_args, &target)?;
    // Mode 0600, removed when this returns (after curl exits).
    let mut header = tempfile::NamedTempFile::new()
        .context("cannot create a private file for the credential header (is $TMPDIR writable?)")?;
    for (name, value) in presented.headers() {
        writeln!(header, "{name}: {value}").context("writing the credential header file")?;
    }
    header
        .flush()
        .context("writing the credential header file")?;
    let mut command = Command::new("curl");
    command
        .arg("-H")
        .arg(format!("@{}", header.path().display()));
    command.args(&args.curl_args).arg(&args.url);
    let status = command
        .status()
        .context("cannot run curl: install it (apt-get install curl) or put it on PATH")?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Killed by a signal: a failure all the same.
        None => ExitCode::FAILURE,
    })
}

/// Refuses curl arguments that would send the credential somewhere else: following
/// redirects (`-L`, `--location`, `--location-trusted`, also inside `-sL`-style groups) and
/// URLs of other hosts.
fn refuse_leaks(curl_args: &[String], target: &Target) -> anyhow::Result<()> {
    for arg in curl_args {
        let groups_l = arg.len() > 1
            && !arg.starts_with("--")
            && arg.starts_with('-')
            && arg[1..].chars().all(|c| c.is_ascii_alphabetic())
            && arg.contains('L');
        if groups_l || arg == "--location" || arg == "--location-trusted" {
            bail!(
                "`{arg}`: portless access curl does not follow redirects, because curl would send the access token to wherever a redirect points; run it again on the URL the redirect names"
            );
        }
        let lower = arg.to_ascii_lowercase();
        if (lower.starts_with("https://") || lower.starts_with("http://"))
            && Target::parse(arg)
                .ok()
                .is_none_or(|other| other.host != target.host)
        {
            bail!(
                "`{arg}`: a URL of another host would receive the access token of {}; run portless access curl once per application",
                target.host
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn redirects_and_other_hosts_are_refused() {
        let target = Target::parse("https://app.example.com/").unwrap();
        for bad in [
            &["-L"][..],
            &["-sSL"],
            &["--location"],
            &["--location-trusted"],
            &["https://evil.example/"],
            &["http://app.example.com.evil/"],
        ] {
            let error = refuse_leaks(&args(bad), &target).unwrap_err().to_string();
            assert!(error.contains(bad[0]), "{error}");
        }
        for fine in [
            &["-sS", "-H", "X-L: 1"][..],
            &["https://app.example.com/other"],
            &["--data", "x"],
        ] {
            assert!(refuse_leaks(&args(fine), &target).is_ok(), "{fine:?}");
        }
    }
}
