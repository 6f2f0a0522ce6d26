//! Email PIN delivery against a real SMTP server on loopback: Python's `aiosmtpd`, started
//! per test with STARTTLS on a certificate from a throw-away `LocalCa`, login required.
//!
//! The test reads the PIN out of the mail the server received and redeems it, and checks
//! that certificate verification is real: another CA, no CA (system roots only) and the
//! wrong server name are all refused before any mail is handed over.
//!
//! Needs `python3` with `aiosmtpd` (`pip install aiosmtpd==1.4.6`); without it the tests
//! print why and pass, unless `PORTLESS_REQUIRE_SMTP=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use portless_access::email_pin::{
    BrowserBinding, Mailer, PinBook, PinError, RawNotifier, SendError, SmtpConfig,
};
use portless_tls::LocalCa;

const USER: &str = "pin-mailer";
const PASSWORD: &str = "s3cret pass";

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
        path = pathlib.Path(outdir) / f"mail-{self.count}.eml"
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

/// A running aiosmtpd, killed (by PID) on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    mail_dir: PathBuf,
    dir: tempfile::TempDir,
    ca: LocalCa,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aiosmtpd_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("PORTLESS_REQUIRE_SMTP").as_deref() != Ok("1"),
            "PORTLESS_REQUIRE_SMTP=1 but python3 with aiosmtpd is missing: pip install aiosmtpd==1.4.6"
        );
        eprintln!("SKIPPED: python3 with aiosmtpd not found (pip install aiosmtpd==1.4.6)");
    }
    found
}

impl SmtpServer {
    fn start() -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::generate("Portless SMTP test CA").unwrap();
        let (chain, key) = ca.issue_pem(&["localhost".to_owned()]).unwrap();
        let cert_path = dir.path().join("server.pem");
        let key_path = dir.path().join("server-key.pem");
        std::fs::write(&cert_path, chain).unwrap();
        std::fs::write(&key_path, key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(dir.path().join("smtp-password"), format!("{PASSWORD}\n")).unwrap();
        let script = dir.path().join("server.py");
        std::fs::write(&script, SERVER_PY).unwrap();
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir(&mail_dir).unwrap();
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&mail_dir)
            .arg(&cert_path)
            .arg(&key_path)
            .args([USER, PASSWORD])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("aiosmtpd did not print its port (got {line:?})")
        });
        SmtpServer {
            child,
            port,
            mail_dir,
            dir,
            ca,
        }
    }

    /// A `notifier:` section for this server, with `tls_extra` lines under `tls:`.
    fn notifier_yaml(&self, tls_extra: &str) -> String {
        format!(
            "smtp:\n  address: 'submission://127.0.0.1:{}'\n  timeout: 10s\n  username: {USER}\n  password_file: smtp-password\n  sender: 'Portless <auth@example.com>'\n  identifier: edge.example.com\n  tls:\n    server_name: localhost\n{tls_extra}",
            self.port
        )
    }

    fn mailer(&self, tls_extra: &str) -> Mailer {
        let raw: RawNotifier = serde_saphyr::from_str(&self.notifier_yaml(tls_extra)).unwrap();
        let config = SmtpConfig::from_raw(&raw.smtp.unwrap(), self.dir.path()).unwrap();
        Mailer::new(&config).unwrap()
    }

    fn trusted_mailer(&self) -> Mailer {
        self.mailer("    ca_file: ca.pem\n")
    }

    fn mails(&self) -> Vec<PathBuf> {
        let mut mails: Vec<PathBuf> = std::fs::read_dir(&self.mail_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        mails.sort();
        mails
    }

    /// The one mail the server has received (it is written before the server answers 250).
    fn only_mail(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mails = self.mails();
            if let [mail] = mails.as_slice() {
                return std::fs::read_to_string(mail).unwrap();
            }
            assert!(Instant::now() < deadline, "mails: {mails:?}");
            std::thread::yield_now();
        }
    }
}

fn pin_in(mail: &str) -> String {
    let (_, body) = mail.split_once("\r\n\r\n").expect("headers and body");
    body.split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no PIN in {mail}"))
        .to_owned()
}

fn header<'a>(mail: &'a str, name: &str) -> &'a str {
    mail.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} in {mail}"))
}

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[tokio::test]
async fn a_mailed_pin_signs_in_the_browser_that_asked() {
    if !aiosmtpd_available() {
        return;
    }
    let server = SmtpServer::start();
    let mailer = server.trusted_mailer();
    mailer.check().await.unwrap();
    let book = PinBook::default();
    let browser = BrowserBinding::new("pre-login-session-1");
    let now = SystemTime::now();
    let requested = book
        .request("Alice@Example.com", &browser, CLIENT, now, |a| {
            a.domain() == "example.com"
        })
        .unwrap();
    let pin = requested.pin.expect("a PIN for an allowed address");
    mailer.send_pin(&pin, book.policy().lifetime).await.unwrap();

    let mail = server.only_mail();
    assert_eq!(header(&mail, "X-Test-Rcpt"), "alice@example.com");
    assert_eq!(header(&mail, "X-Test-Tls"), "yes", "STARTTLS was used");
    assert_eq!(
        header(&mail, "X-Test-Login"),
        USER,
        "logged in with the file's password"
    );
    assert_eq!(header(&mail, "Subject"), "[Portless] Your sign-in code");
    assert_eq!(header(&mail, "From"), "Portless <auth@example.com>");
    assert!(mail.contains("valid for 10 minutes"), "{mail}");
    let code = pin_in(&mail);

    // Typed into another browser, the mailed PIN is refused and burned.
    let elsewhere = BrowserBinding::new("attacker-session");
    let second = book
        .request("alice@example.com", &browser, CLIENT, now, |_| true)
        .unwrap()
        .pin
        .unwrap();
    assert_eq!(
        book.verify("alice@example.com", second.code(), &elsewhere, now),
        Err(PinError::OtherBrowser)
    );
    // The mailed one works, once, in the browser that asked.
    let verified = book
        .verify(
            "alice@example.com",
            &code,
            &browser,
            now + Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(verified.address.as_str(), "alice@example.com");
    assert!(
        book.verify("alice@example.com", &code, &browser, now)
            .is_err()
    );
}

#[tokio::test]
async fn no_mail_for_an_address_no_rule_allows() {
    if !aiosmtpd_available() {
        return;
    }
    let server = SmtpServer::start();
    let book = PinBook::default();
    let requested = book
        .request(
            "mallory@evil.test",
            &BrowserBinding::new("s"),
            CLIENT,
            SystemTime::now(),
            |a| a.domain() == "example.com",
        )
        .unwrap();
    assert!(!requested.sent());
    // The portal sends only what the book issued; nothing reached the server.
    server.trusted_mailer().check().await.unwrap();
    assert!(server.mails().is_empty());
}

async fn refused(server: &SmtpServer, mailer: &Mailer) -> String {
    let book = PinBook::default();
    let pin = book
        .request(
            "alice@example.com",
            &BrowserBinding::new("s"),
            CLIENT,
            SystemTime::now(),
            |_| true,
        )
        .unwrap()
        .pin
        .unwrap();
    let err = mailer
        .send_pin(&pin, Duration::from_secs(600))
        .await
        .expect_err("the mail must not be sent");
    assert!(matches!(err, SendError::Smtp { .. }), "{err:?}");
    assert!(mailer.check().await.is_err());
    assert!(server.mails().is_empty(), "nothing may reach the server");
    err.to_string()
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    if !aiosmtpd_available() {
        return;
    }
    let server = SmtpServer::start();
    let other = LocalCa::generate("Some other CA").unwrap();
    let other_path: &Path = &server.dir.path().join("other-ca.pem");
    std::fs::write(other_path, other.cert_pem()).unwrap();
    let message = refused(&server, &server.mailer("    ca_file: other-ca.pem\n")).await;
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    // The server's own CA is not in the system roots either.
    refused(&server, &server.mailer("")).await;
    let _ = &server.ca;
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    if !aiosmtpd_available() {
        return;
    }
    let server = SmtpServer::start();
    let yaml = server
        .notifier_yaml("    ca_file: ca.pem\n")
        .replace("server_name: localhost", "server_name: mail.example.com");
    let raw: RawNotifier = serde_saphyr::from_str(&yaml).unwrap();
    let config = SmtpConfig::from_raw(&raw.smtp.unwrap(), server.dir.path()).unwrap();
    let message = refused(&server, &Mailer::new(&config).unwrap()).await;
    assert!(message.to_lowercase().contains("certificate"), "{message}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_within_the_deadline() {
    if !aiosmtpd_available() {
        return;
    }
    let server = SmtpServer::start();
    std::fs::write(server.dir.path().join("smtp-password"), "wrong\n").unwrap();
    let yaml = server
        .notifier_yaml("    ca_file: ca.pem\n")
        .replace("timeout: 10s", "timeout: 1s");
    let raw: RawNotifier = serde_saphyr::from_str(&yaml).unwrap();
    let config = SmtpConfig::from_raw(&raw.smtp.unwrap(), server.dir.path()).unwrap();
    let mailer = Mailer::new(&config).unwrap();
    let started = Instant::now();
    assert!(mailer.check().await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(server.mails().is_empty());
}

#[tokio::test]
async fn skip_verify_is_an_explicit_opt_out() {
    if !aiosmtpd_available() {
        return;
    }
    let server = SmtpServer::start();
    let mailer = server.mailer("    skip_verify: true\n");
    let book = PinBook::default();
    let pin = book
        .request(
            "bob@example.com",
            &BrowserBinding::new("s"),
            CLIENT,
            SystemTime::now(),
            |_| true,
        )
        .unwrap()
        .pin
        .unwrap();
    mailer
        .send_pin(&pin, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(pin_in(&server.only_mail()), pin.code());
}
