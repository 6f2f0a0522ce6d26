//! `portless access curl URL [ARGS]`: the real curl, with the application's credential as a
//! header, and curl's exit code passed on.

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
    let mut command = Command::new("curl");
    for (name, value) in presented.headers() {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
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
