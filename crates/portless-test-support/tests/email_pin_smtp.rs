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

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use portless_access::email_pin::{
    BrowserBinding, Mailer, PinBook, PinError, RawNotifier, SendError, SmtpConfig,
};
use portless_test_support::peers::{SMTP_USER, SmtpSink, mail_header, pin_in};
use portless_tls::LocalCa;

/// A mailer for `sink` with `tls_extra` lines under `tls:` (paths relative to its dir).
fn mailer(sink: &SmtpSink, tls_extra: &str) -> Mailer {
    Mailer::new(&config(sink, &sink.notifier_yaml(tls_extra, sink.dir()))).unwrap()
}

fn config(sink: &SmtpSink, yaml: &str) -> SmtpConfig {
    let raw: RawNotifier = serde_saphyr::from_str(yaml).unwrap();
    SmtpConfig::from_raw(&raw.smtp.unwrap(), sink.dir()).unwrap()
}

fn trusted_mailer(sink: &SmtpSink) -> Mailer {
    mailer(sink, "    ca_file: ca.pem\n")
}

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[tokio::test]
async fn a_mailed_pin_signs_in_the_browser_that_asked() {
    let Some(server) = SmtpSink::start() else {
        return;
    };
    let mailer = trusted_mailer(&server);
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

    let mail = server.wait_for_mail(1);
    assert_eq!(mail_header(&mail, "X-Test-Rcpt"), "alice@example.com");
    assert_eq!(mail_header(&mail, "X-Test-Tls"), "yes", "STARTTLS was used");
    assert_eq!(
        mail_header(&mail, "X-Test-Login"),
        SMTP_USER,
        "logged in with the file's password"
    );
    assert_eq!(
        mail_header(&mail, "Subject"),
        "[Portless] Your sign-in code"
    );
    assert_eq!(mail_header(&mail, "From"), "Portless <auth@example.com>");
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
    let Some(server) = SmtpSink::start() else {
        return;
    };
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
    trusted_mailer(&server).check().await.unwrap();
    assert!(server.mails().is_empty());
}

async fn refused(server: &SmtpSink, mailer: &Mailer) -> String {
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
    let Some(server) = SmtpSink::start() else {
        return;
    };
    let other = LocalCa::generate("Some other CA").unwrap();
    let other_path: &Path = &server.dir().join("other-ca.pem");
    std::fs::write(other_path, other.cert_pem()).unwrap();
    let message = refused(&server, &mailer(&server, "    ca_file: other-ca.pem\n")).await;
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    // The server's own CA is not in the system roots either.
    refused(&server, &mailer(&server, "")).await;
    let _ = server.ca();
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let Some(server) = SmtpSink::start() else {
        return;
    };
    let yaml = server
        .notifier_yaml("    ca_file: ca.pem\n", server.dir())
        .replace("server_name: localhost", "server_name: mail.example.com");
    let config = config(&server, &yaml);
    let message = refused(&server, &Mailer::new(&config).unwrap()).await;
    assert!(message.to_lowercase().contains("certificate"), "{message}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_within_the_deadline() {
    let Some(server) = SmtpSink::start() else {
        return;
    };
    std::fs::write(server.dir().join("smtp-password"), "wrong\n").unwrap();
    let yaml = server
        .notifier_yaml("    ca_file: ca.pem\n", server.dir())
        .replace("timeout: 10s", "timeout: 1s");
    let config = config(&server, &yaml);
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
    let Some(server) = SmtpSink::start() else {
        return;
    };
    let mailer = mailer(&server, "    skip_verify: true\n");
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
    assert_eq!(pin_in(&server.wait_for_mail(1)), pin.code());
}
