//! `portless access login URL`: sign in through the browser and keep the CLI token.
//!
//! A loopback listener on `127.0.0.1:0` waits for the browser to come back; the browser is
//! sent to `https://HOST/cdn-cgi/access/cli?callback=http://127.0.0.1:PORT/callback&state=S`
//! on the application host, where the edge judges the request like any other (sending the
//! browser through the portal first when needed), mints a token and redirects to the
//! callback with it. The state is 256 random bits, checked on the way back: a page that
//! makes the browser hit the listener with a token of its choosing is ignored. The listener
//! takes one good answer and closes.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::LoginArgs;
use super::store::{TokenStore, claim};
use super::target::Target;

/// Longest request head the listener reads from the browser.
const MAX_REQUEST: usize = 16 * 1024;
/// How long one browser connection may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Browser connections read at once; more are closed unread.
const MAX_OPEN: usize = 32;

/// Runs the login.
pub(crate) async fn run(args: &LoginArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.url)?;
    let store = TokenStore::default_location()?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1 for the browser to come back")?;
    let port = listener.local_addr()?.port();
    let state = random_state()?;
    let callback = format!("http://127.0.0.1:{port}/callback");
    let url = format!(
        "{}/cdn-cgi/access/cli?callback={}&state={state}",
        target.origin(),
        encode(&callback)
    );
    eprintln!("Sign in to {} in your browser:\n\n    {url}\n", target.host);
    if !args.no_browser {
        open_browser(&url);
    }
    eprintln!(
        "Waiting for the browser (up to {})...",
        humantime::format_duration(args.timeout)
    );
    let token = tokio::time::timeout(args.timeout, wait_for_token(&listener, &state, &target))
        .await
        .with_context(|| {
            format!(
                "the browser did not come back within {}: run the command again (or open the URL above yourself)",
                humantime::format_duration(args.timeout)
            )
        })??;
    let path = store.save(&target, &token)?;
    println!(
        "Signed in to {}; token saved to {}",
        target.host,
        path.display()
    );
    Ok(())
}

/// 256 random bits, base64url.
fn random_state() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system's random number generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Starts `$BROWSER URL` (the first of a `:`-separated list; `%s` is replaced by the URL),
/// else `xdg-open URL`. A browser that cannot start is not an error: the URL is printed.
fn open_browser(url: &str) {
    let configured = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty());
    let (program, args): (String, Vec<String>) = match configured {
        Some(browser) => {
            let first = browser
                .split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            let mut words = first.split_whitespace().map(str::to_owned);
            let program = words.next().unwrap_or_default();
            let mut args: Vec<String> = words.collect();
            if args.iter().any(|a| a.contains("%s")) {
                for arg in &mut args {
                    *arg = arg.replace("%s", url);
                }
            } else {
                args.push(url.to_owned());
            }
            (program, args)
        }
        None => ("xdg-open".to_owned(), vec![url.to_owned()]),
    };
    let spawned = Command::new(&program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        // Reaped in the background so it leaves no zombie; the browser may outlive us.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => eprintln!("(could not start {program}: {e}; open the URL yourself)"),
    }
}

/// Accepts browser connections until one brings a token with the right state. Each
/// connection is read on its own, so one that sends nothing (a browser's speculative
/// preconnect) does not hold up the callback behind it.
async fn wait_for_token(
    listener: &TcpListener,
    state: &str,
    target: &Target,
) -> anyhow::Result<String> {
    let mut reading = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (mut connection, _) =
                    accepted.context("accepting the browser's connection failed")?;
                if reading.len() >= MAX_OPEN {
                    continue;
                }
                reading.spawn(async move {
                    let request =
                        tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut connection)).await;
                    (connection, request)
                });
            }
            Some(read) = reading.join_next() => {
                let Ok((mut connection, Ok(Ok(request)))) = read else {
                    continue;
                };
                match callback_token(&request, state, target) {
                    Ok(token) => {
                        respond(
                            &mut connection,
                            200,
                            "Signed in. You can close this tab and go back to the terminal.",
                        )
                        .await;
                        return Ok(token);
                    }
                    Err(Refused::Ignore(status, why)) => {
                        respond(&mut connection, status, &why).await;
                    }
                    Err(Refused::Fatal(why)) => {
                        respond(&mut connection, 400, &why).await;
                        bail!("{why}");
                    }
                }
            }
        }
    }
}

/// Why a callback request gave no token.
enum Refused {
    /// Not the callback, or not ours (wrong state): answered, and the wait goes on.
    Ignore(u16, String),
    /// The edge said no: the login cannot succeed.
    Fatal(String),
}

/// The token of a `GET /callback?token=…&state=…` request line.
fn callback_token(request: &str, state: &str, target: &Target) -> Result<String, Refused> {
    let line = request.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (Some("GET"), Some(path)) = (parts.next(), parts.next()) else {
        return Err(Refused::Ignore(
            405,
            "only GET /callback is served here".into(),
        ));
    };
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    if route != "/callback" {
        return Err(Refused::Ignore(404, "not found".into()));
    }
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if param("state").as_deref() != Some(state) {
        return Err(Refused::Ignore(
            400,
            "this sign-in was not started by this terminal (state mismatch); ignored".into(),
        ));
    }
    if let Some(error) = param("error") {
        return Err(Refused::Fatal(format!(
            "the edge refused the sign-in: {error}"
        )));
    }
    let Some(token) = param("token").filter(|t| !t.is_empty()) else {
        return Err(Refused::Fatal("the edge came back without a token".into()));
    };
    let audience_ok = match claim(&token, "aud") {
        Some(serde_json::Value::Array(auds)) => {
            auds.iter().any(|a| a.as_str() == Some(&target.host))
        }
        Some(serde_json::Value::String(aud)) => aud == target.host,
        _ => false,
    };
    if !audience_ok {
        return Err(Refused::Fatal(format!(
            "the token the browser brought back is not for {}: sign in again",
            target.host
        )));
    }
    Ok(token)
}

/// Reads a request head (up to the blank line).
async fn read_request(connection: &mut TcpStream) -> std::io::Result<String> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") && buffer.len() < MAX_REQUEST {
        let n = connection.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

/// A small page for the browser.
async fn respond(connection: &mut TcpStream, status: u16, text: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Bad Request",
    };
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>portless access</title><p>{}</p>\n",
        text.replace('&', "&amp;").replace('<', "&lt;")
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nreferrer-policy: no-referrer\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = connection.write_all(response.as_bytes()).await;
    let _ = connection.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_for(aud: &str) -> String {
        let payload = URL_SAFE_NO_PAD.encode(format!("{{\"aud\":[\"{aud}\"],\"exp\":1}}"));
        format!("h.{payload}.s")
    }

    #[test]
    fn only_our_callback_with_our_state_brings_a_token() {
        let target = Target::parse("app.test").unwrap();
        let token = token_for("app.test");
        let good = format!("GET /callback?token={token}&state=S1 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            callback_token(&good, "S1", &target).ok(),
            Some(token.clone())
        );
        let wrong_state = good.replace("state=S1", "state=S2");
        assert!(matches!(
            callback_token(&wrong_state, "S1", &target),
            Err(Refused::Ignore(400, _))
        ));
        let favicon = "GET /favicon.ico HTTP/1.1\r\n\r\n";
        assert!(matches!(
            callback_token(favicon, "S1", &target),
            Err(Refused::Ignore(404, _))
        ));
        let other = good.replace(&token, &token_for("other.test"));
        assert!(matches!(
            callback_token(&other, "S1", &target),
            Err(Refused::Fatal(_))
        ));
    }
}
