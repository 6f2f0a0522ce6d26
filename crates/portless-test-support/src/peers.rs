//! Real peers the sign-in tests talk to, started per test on free loopback ports and ended
//! by PID when dropped:
//! * [`OidcPeer`] — the certified OpenID provider `oidc-provider` (npm, run with node from
//!   `tests-oidc/`), with the clients and accounts a test gives it;
//! * [`SmtpSink`] — an `aiosmtpd` server (PyPI) with STARTTLS on a certificate from a
//!   throw-away CA and login required, saving every message it accepts as a file.
//!
//! When a peer's program is missing, `start` returns `None` after printing why, unless its
//! `PORTLESS_REQUIRE_*` variable is `1` (as `.ci/run` sets), in which case it panics.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portless_tls::LocalCa;

/// Whether the environment variable `name` is `1`.
fn required(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

// === OIDC provider ===

/// A running `oidc-provider`; killed (by its PID) when dropped.
pub struct OidcPeer {
    child: Child,
    /// The provider's issuer URL (`http://127.0.0.1:PORT`, or `https://localhost:PORT`).
    pub issuer: String,
    /// For an https provider: the PEM file of the CA its certificate comes from.
    pub ca_file: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for OidcPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OidcPeer {
    /// Starts the provider with `config` (JSON: `{"clients": [{client_id, client_secret,
    /// redirect_uris}], "accounts": {"<id>": {email, email_verified, name, groups}}}`, see
    /// `tests-oidc/provider.mjs`); `None` when node or the package is missing.
    pub fn start(config: &str) -> Option<OidcPeer> {
        Self::spawn(config, None)
    }

    /// Like [`OidcPeer::start`], serving https at `https://localhost:PORT` with a certificate
    /// from a throw-away CA (in [`OidcPeer::ca_file`]), as a real provider does.
    pub fn start_https(config: &str) -> Option<OidcPeer> {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = LocalCa::generate("Portless test IdP CA").expect("CA");
        let (chain, key) = ca.issue_pem(&["localhost".to_owned()]).expect("cert");
        std::fs::write(dir.path().join("idp.pem"), chain).expect("write");
        std::fs::write(dir.path().join("idp-key.pem"), key).expect("write");
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).expect("write");
        Self::spawn(config, Some(dir))
    }

    fn spawn(config: &str, tls: Option<tempfile::TempDir>) -> Option<OidcPeer> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests-oidc");
        let node_ok = Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let package_ok = dir
            .join("node_modules/oidc-provider/package.json")
            .is_file();
        if !node_ok || !package_ok {
            let reason = if node_ok {
                "tests-oidc/node_modules is missing (run `npm ci --prefix tests-oidc`)"
            } else {
                "node is not installed"
            };
            assert!(
                !required("PORTLESS_REQUIRE_OIDC"),
                "PORTLESS_REQUIRE_OIDC=1 but {reason}"
            );
            eprintln!("skipping the OIDC provider test: {reason}");
            return None;
        }
        let mut command = Command::new("node");
        command
            .arg(dir.join("provider.mjs"))
            .arg(config)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(tls) = &tls {
            command
                .env("PORTLESS_IDP_CERT", tls.path().join("idp.pem"))
                .env("PORTLESS_IDP_KEY", tls.path().join("idp-key.pem"));
        }
        let mut child = command.spawn().expect("start node");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the provider's first line");
        // Keep draining the provider's stdout so its later writes do not fail with EPIPE.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let Some(issuer) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            panic!("the OIDC provider did not start: {line:?}");
        };
        Some(OidcPeer {
            issuer: issuer.to_owned(),
            ca_file: tls.as_ref().map(|d| d.path().join("ca.pem")),
            child,
            _dir: tls,
        })
    }
}

impl OidcPeer {
    /// Plays a browser at the provider: opens the authorization `url` as `account` (sent as
    /// `login_hint`, which the test provider signs in without a form), keeps the provider's
    /// cookies, follows its redirects, and returns the first redirect that leaves the
    /// provider (the portal's callback with `code` and `state`, or an `error`).
    pub async fn authorize(&self, url: &str, account: &str) -> String {
        use http_body_util::{BodyExt as _, Empty};
        let http: hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            Empty<bytes::Bytes>,
        > = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
        let mut cookies: std::collections::BTreeMap<String, String> = Default::default();
        let mut url = format!("{url}&login_hint={account}");
        for _ in 0..12 {
            let cookie_header = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let mut request = http::Request::get(&url);
            if !cookie_header.is_empty() {
                request = request.header(http::header::COOKIE, cookie_header);
            }
            let response = http
                .request(request.body(Empty::new()).expect("request"))
                .await
                .expect("the provider answers");
            for set in response.headers().get_all(http::header::SET_COOKIE) {
                let pair = set
                    .to_str()
                    .expect("cookie")
                    .split(';')
                    .next()
                    .unwrap_or("");
                let (name, value) = pair.split_once('=').expect("name=value");
                if value.is_empty() {
                    cookies.remove(name);
                } else {
                    cookies.insert(name.to_owned(), value.to_owned());
                }
            }
            let status = response.status();
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .map(|l| l.to_str().expect("location").to_owned());
            let Some(location) = location.filter(|_| status.is_redirection()) else {
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes();
                panic!(
                    "the provider answered {status} at {url}: {}",
                    String::from_utf8_lossy(&body)
                );
            };
            if location.starts_with('/') {
                url = format!("{}{location}", self.issuer);
            } else if location.starts_with(&self.issuer) {
                url = location;
            } else {
                return location;
            }
        }
        panic!("too many redirects at the provider");
    }
}

// === SMTP sink ===

/// The SMTP login the sink requires.
pub const SMTP_USER: &str = "pin-mailer";
/// The SMTP password the sink requires (also in `smtp-password` in [`SmtpSink::dir`]).
pub const SMTP_PASSWORD: &str = "s3cret pass";

/// The server: STARTTLS required before AUTH and MAIL, each message saved as one file.
const SERVER_PY: &str = r#"
import asyncio, os, pathlib, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

outdir, cert, key, user, password = sys.argv[1:6]

class Handler:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = pathlib.Path(outdir) / f"mail-{self.count:04}.eml"
        tmp = path.with_suffix(".tmp")
        meta = "X-Test-Rcpt: {}\r\nX-Test-Tls: {}\r\nX-Test-Login: {}\r\n".format(
            ",".join(envelope.rcpt_tos),
            "yes" if session.ssl else "no",
            (session.auth_data or b"").decode(),
        )
        tmp.write_bytes(meta.encode() + envelope.original_content)
        os.replace(tmp, path)
        return "250 Message accepted"

def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == user.encode()
          and auth_data.password == password.encode())
    return AuthResult(success=ok, auth_data=auth_data.login if ok else None)

async def main():
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = Handler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="localhost", tls_context=context,
                     require_starttls=True, authenticator=authenticate,
                     auth_require_tls=True),
        "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"#;

/// A running aiosmtpd; killed (by its PID) when dropped.
pub struct SmtpSink {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    mail_dir: PathBuf,
    dir: tempfile::TempDir,
    ca: LocalCa,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// Starts a sink; `None` when python3 with aiosmtpd is missing.
    pub fn start() -> Option<SmtpSink> {
        let found = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                !required("PORTLESS_REQUIRE_SMTP"),
                "PORTLESS_REQUIRE_SMTP=1 but python3 with aiosmtpd is missing: pip install aiosmtpd==1.4.6"
            );
            eprintln!("SKIPPED: python3 with aiosmtpd not found (pip install aiosmtpd==1.4.6)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = LocalCa::generate("Portless SMTP test CA").expect("CA");
        let (chain, key) = ca.issue_pem(&["localhost".to_owned()]).expect("cert");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let cert_path = write("server.pem", &chain);
        let key_path = write("server-key.pem", &key);
        write("ca.pem", ca.cert_pem());
        write("smtp-password", &format!("{SMTP_PASSWORD}\n"));
        let script = write("server.py", SERVER_PY);
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir(&mail_dir).expect("mail dir");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&mail_dir)
            .arg(&cert_path)
            .arg(&key_path)
            .args([SMTP_USER, SMTP_PASSWORD])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the port");
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            panic!("aiosmtpd did not print its port (got {line:?})");
        };
        Some(SmtpSink {
            child,
            port,
            mail_dir,
            dir,
            ca,
        })
    }

    /// The directory with `ca.pem` (the CA of the server's certificate) and `smtp-password`;
    /// relative paths in [`SmtpSink::notifier_yaml`] are taken from it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA the server's certificate comes from.
    pub fn ca(&self) -> &LocalCa {
        &self.ca
    }

    /// A `notifier:` section's body for this server (`smtp:` and below), with `tls_extra`
    /// lines under `tls:`; `dir` is where its `password_file` is looked for.
    pub fn notifier_yaml(&self, tls_extra: &str, dir: &Path) -> String {
        format!(
            "smtp:\n  address: 'submission://127.0.0.1:{}'\n  timeout: 10s\n  username: {SMTP_USER}\n  password_file: {}\n  sender: 'Portless <auth@example.com>'\n  identifier: edge.example.com\n  tls:\n    server_name: localhost\n{tls_extra}",
            self.port,
            dir.join("smtp-password").display(),
        )
    }

    /// Where each received message is saved (`mail-NNNN.eml`).
    pub fn mail_dir(&self) -> &Path {
        &self.mail_dir
    }

    /// The messages received so far, oldest first.
    pub fn mails(&self) -> Vec<PathBuf> {
        let mut mails: Vec<PathBuf> = std::fs::read_dir(&self.mail_dir)
            .expect("mail dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        mails.sort();
        mails
    }

    /// Waits (up to 10 s) until `count` messages have arrived and returns the last one.
    pub fn wait_for_mail(&self, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mails = self.mails();
            if mails.len() >= count {
                return std::fs::read_to_string(&mails[count - 1]).expect("read mail");
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} mails, got {mails:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The six-digit PIN in a mail's body.
pub fn pin_in(mail: &str) -> String {
    let (_, body) = mail.split_once("\r\n\r\n").expect("headers and body");
    body.split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no PIN in {mail}"))
        .to_owned()
}

/// The value of header `name` in a mail.
pub fn mail_header<'a>(mail: &'a str, name: &str) -> &'a str {
    mail.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} header in {mail}"))
}
