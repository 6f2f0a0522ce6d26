//! The `notifier.smtp` section: how PIN mail leaves the edge.
//!
//! The section has the incumbent's shape (`address: submission://smtp.example.com:587`,
//! `username`, `password`, `sender`, `identifier`, `subject`, `startup_check_address`,
//! `disable_require_tls`, `disable_starttls`, `timeout`, `tls: {server_name, skip_verify,
//! minimum_version}`), plus two Portless keys: `password_file` (the password kept out of
//! the configuration file) and `tls.ca_file` (a private CA trusted on top of the system
//! roots). Defaults are the safe ones: TLS is required (STARTTLS on `smtp://` and
//! `submission://`, implicit TLS on `submissions://`) and the server certificate is checked
//! against the system roots; weakening either takes an explicit key.
//!
//! [`RawSmtp`] is what serde reads; [`SmtpConfig::from_raw`] validates it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::address::EmailAddress;
use crate::config::parse_duration;

/// Default SMTP timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default subject template.
pub const DEFAULT_SUBJECT: &str = "[Portless] {title}";

/// `notifier:` as serde reads it (only `smtp` is used; `filesystem` is refused later by
/// the loader if it wants to).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawNotifier {
    /// `notifier.smtp`.
    pub smtp: Option<RawSmtp>,
}

/// `notifier.smtp:` as serde reads it.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct RawSmtp {
    /// `[scheme://]host[:port]`, scheme `smtp`, `submission` or `submissions`.
    pub address: Option<String>,
    /// How long to wait for the server (a duration like `5s`).
    pub timeout: Option<String>,
    /// The SMTP login name.
    pub username: Option<String>,
    /// The SMTP password.
    pub password: Option<String>,
    /// A file holding the SMTP password (Portless; instead of `password`).
    pub password_file: Option<String>,
    /// The `From:` mailbox, like `Portless <auth@example.com>`.
    pub sender: Option<String>,
    /// The name sent in `EHLO`.
    pub identifier: Option<String>,
    /// The subject, `{title}` replaced by the message's title.
    pub subject: Option<String>,
    /// The recipient a startup check would use.
    pub startup_check_address: Option<String>,
    /// Send in clear text when the server offers no STARTTLS.
    pub disable_require_tls: Option<bool>,
    /// Never try STARTTLS.
    pub disable_starttls: Option<bool>,
    /// HTML mails (accepted for compatibility; Portless sends plain text).
    pub disable_html_emails: Option<bool>,
    /// `tls:`.
    pub tls: Option<RawSmtpTls>,
}

impl fmt::Debug for RawSmtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSmtp")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

/// `notifier.smtp.tls:` as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSmtpTls {
    /// The name the certificate must carry (default: the address's host).
    pub server_name: Option<String>,
    /// Accept any certificate. Dangerous; only when written.
    pub skip_verify: Option<bool>,
    /// `TLS1.2` (default) or `TLS1.3`.
    pub minimum_version: Option<String>,
    /// Accepted for compatibility; rustls always allows up to TLS 1.3.
    pub maximum_version: Option<String>,
    /// A PEM file of CA certificates trusted besides the system roots (Portless).
    pub ca_file: Option<String>,
    /// Client certificates are not supported; refused when written.
    pub certificate_chain: Option<String>,
    /// Client certificates are not supported; refused when written.
    pub private_key: Option<String>,
}

/// How the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (`submissions://`, port 465).
    ImplicitTls,
    /// Plain connection upgraded by STARTTLS, refusing servers that do not offer it
    /// (the default for `smtp://` and `submission://`).
    StartTls,
    /// STARTTLS when offered, clear text otherwise (`disable_require_tls: true`).
    StartTlsIfOffered,
    /// Clear text only (`disable_starttls: true`).
    Plain,
}

/// The lowest TLS version accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMinimum {
    /// TLS 1.2 (default).
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Validated `notifier.smtp.tls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpTls {
    /// The name the server certificate must carry.
    pub server_name: String,
    /// Accept any certificate (only when `skip_verify: true` is written).
    pub skip_verify: bool,
    /// The lowest TLS version accepted.
    pub minimum_version: TlsMinimum,
    /// Extra CA certificates (PEM) trusted besides the system roots.
    pub ca_file: Option<PathBuf>,
}

/// Validated `notifier.smtp`.
#[derive(Clone)]
pub struct SmtpConfig {
    /// The server's host name or IP address.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// How long to wait for the server.
    pub timeout: Duration,
    /// The SMTP login, when the server wants one.
    pub credentials: Option<(String, SecretString)>,
    /// The `From:` mailbox as written (checked to parse).
    pub sender: String,
    /// The `EHLO` name (default `localhost`).
    pub identifier: String,
    /// The subject template, `{title}` replaced by the message's title.
    pub subject: String,
    /// The recipient a startup check would use.
    pub startup_check_address: EmailAddress,
    /// TLS settings.
    pub tls: SmtpTls,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("timeout", &self.timeout)
            .field("username", &self.credentials.as_ref().map(|(u, _)| u))
            .field("sender", &self.sender)
            .field("identifier", &self.identifier)
            .field("subject", &self.subject)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Why `notifier.smtp` is not usable.
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    /// No `address`.
    #[error(
        "notifier.smtp.address is missing: write the mail server, like `submission://smtp.example.com:587`"
    )]
    MissingAddress,
    /// The address is not `[scheme://]host[:port]`.
    #[error(
        "notifier.smtp.address `{0}` is not `scheme://host[:port]`: write it like `submission://smtp.example.com:587`"
    )]
    Address(String),
    /// An unknown scheme.
    #[error(
        "notifier.smtp.address scheme `{0}` is not known: use `smtp` (port 25), `submission` (587, STARTTLS) or `submissions` (465, implicit TLS)"
    )]
    Scheme(String),
    /// A bad `timeout`.
    #[error("notifier.smtp.timeout `{0}` is not a duration: write it like `5s`")]
    Timeout(String),
    /// No `sender`, or one that is not a mailbox.
    #[error(
        "notifier.smtp.sender `{0}` is not a mailbox: write it like `Portless <auth@example.com>`"
    )]
    Sender(String),
    /// `startup_check_address` is not an address.
    #[error(
        "notifier.smtp.startup_check_address `{0}` is not an email address: write one like `test@example.com`"
    )]
    StartupCheckAddress(String),
    /// Both `password` and `password_file`.
    #[error(
        "notifier.smtp has both `password` and `password_file`: keep one (preferably the file)"
    )]
    TwoPasswords,
    /// A password without a username.
    #[error("notifier.smtp has a password but no `username`: add the SMTP login name")]
    PasswordWithoutUser,
    /// The password file cannot be read.
    #[error(
        "cannot read notifier.smtp.password_file {path}: {source}; check the path and its permissions"
    )]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An unknown TLS version.
    #[error("notifier.smtp.tls.minimum_version `{0}` is not supported: use `TLS1.2` or `TLS1.3`")]
    TlsVersion(String),
    /// Client certificates were configured.
    #[error(
        "notifier.smtp.tls.certificate_chain/private_key (client certificates) are not supported: remove them and log in with username and password"
    )]
    ClientCertificate,
    /// Both `disable_starttls` and implicit TLS.
    #[error(
        "notifier.smtp.disable_starttls cannot apply to `submissions://` (implicit TLS): remove one of them"
    )]
    StartTlsOnImplicit,
}

impl SmtpConfig {
    /// Validates `raw`; relative file paths are resolved against `base_dir` (the
    /// configuration file's directory), and `password_file` is read now.
    pub fn from_raw(raw: &RawSmtp, base_dir: &Path) -> Result<SmtpConfig, SmtpConfigError> {
        let address = raw
            .address
            .as_deref()
            .ok_or(SmtpConfigError::MissingAddress)?;
        let (scheme, host, port) = parse_address(address)?;
        let security = security(scheme, raw)?;
        let timeout = match raw.timeout.as_deref() {
            None => DEFAULT_TIMEOUT,
            Some(text) => {
                parse_duration(text).map_err(|_| SmtpConfigError::Timeout(text.to_owned()))?
            }
        };
        let sender = raw.sender.clone().unwrap_or_default();
        if sender.parse::<lettre::message::Mailbox>().is_err() {
            return Err(SmtpConfigError::Sender(sender));
        }
        let check = raw
            .startup_check_address
            .as_deref()
            .unwrap_or("test@example.com");
        let startup_check_address = EmailAddress::parse(check)
            .map_err(|_| SmtpConfigError::StartupCheckAddress(check.to_owned()))?;
        Ok(SmtpConfig {
            tls: tls(raw.tls.as_ref(), &host, base_dir)?,
            host,
            port,
            security,
            timeout,
            credentials: credentials(raw, base_dir)?,
            sender,
            identifier: raw
                .identifier
                .clone()
                .unwrap_or_else(|| "localhost".to_owned()),
            subject: raw
                .subject
                .clone()
                .unwrap_or_else(|| DEFAULT_SUBJECT.to_owned()),
            startup_check_address,
        })
    }

    /// The subject for a message titled `title`.
    pub fn subject_for(&self, title: &str) -> String {
        self.subject.replace("{title}", title)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Smtp,
    Submission,
    Submissions,
}

/// Splits `[scheme://]host[:port]`.
fn parse_address(address: &str) -> Result<(Scheme, String, u16), SmtpConfigError> {
    let bad = || SmtpConfigError::Address(address.to_owned());
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
        None => (None, address),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '@', '?', '#']) || rest.contains(char::is_whitespace)
    {
        return Err(bad());
    }
    let (host, port) = split_host_port(rest).ok_or_else(bad)?;
    let scheme = match scheme.as_deref() {
        Some("smtp") => Scheme::Smtp,
        Some("submission") => Scheme::Submission,
        Some("submissions") => Scheme::Submissions,
        // The incumbent's legacy form `host:port`: 465 means implicit TLS.
        None if port == Some(465) => Scheme::Submissions,
        None => Scheme::Smtp,
        Some(other) => return Err(SmtpConfigError::Scheme(other.to_owned())),
    };
    let default_port = match scheme {
        Scheme::Smtp => 25,
        Scheme::Submission => 587,
        Scheme::Submissions => 465,
    };
    Ok((scheme, host, port.unwrap_or(default_port)))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0)?),
    };
    Some((host.to_ascii_lowercase(), port))
}

fn security(scheme: Scheme, raw: &RawSmtp) -> Result<SmtpSecurity, SmtpConfigError> {
    let no_starttls = raw.disable_starttls.unwrap_or(false);
    Ok(match scheme {
        Scheme::Submissions if no_starttls => return Err(SmtpConfigError::StartTlsOnImplicit),
        Scheme::Submissions => SmtpSecurity::ImplicitTls,
        _ if no_starttls => SmtpSecurity::Plain,
        _ if raw.disable_require_tls.unwrap_or(false) => SmtpSecurity::StartTlsIfOffered,
        _ => SmtpSecurity::StartTls,
    })
}

fn credentials(
    raw: &RawSmtp,
    base_dir: &Path,
) -> Result<Option<(String, SecretString)>, SmtpConfigError> {
    let password = match (raw.password.as_deref(), raw.password_file.as_deref()) {
        (Some(_), Some(_)) => return Err(SmtpConfigError::TwoPasswords),
        (Some(p), None) => Some(p.to_owned()),
        (None, Some(file)) => {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|source| SmtpConfigError::PasswordFile { path, source })?;
            Some(text.trim_end_matches(['\r', '\n']).to_owned())
        }
        (None, None) => None,
    };
    let username = raw.username.as_deref().filter(|u| !u.is_empty());
    match (username, password) {
        (Some(user), Some(pass)) => Ok(Some((user.to_owned(), SecretString::from(pass)))),
        (Some(user), None) => Ok(Some((user.to_owned(), SecretString::from(String::new())))),
        (None, Some(_)) => Err(SmtpConfigError::PasswordWithoutUser),
        (None, None) => Ok(None),
    }
}

fn tls(raw: Option<&RawSmtpTls>, host: &str, base_dir: &Path) -> Result<SmtpTls, SmtpConfigError> {
    let empty = RawSmtpTls::default();
    let raw = raw.unwrap_or(&empty);
    if raw.certificate_chain.is_some() || raw.private_key.is_some() {
        return Err(SmtpConfigError::ClientCertificate);
    }
    let minimum_version = match raw.minimum_version.as_deref().map(normalize_version) {
        None => TlsMinimum::Tls12,
        Some(v) if v == "TLS1.2" => TlsMinimum::Tls12,
        Some(v) if v == "TLS1.3" => TlsMinimum::Tls13,
        Some(_) => {
            let written = raw.minimum_version.clone().unwrap_or_default();
            return Err(SmtpConfigError::TlsVersion(written));
        }
    };
    Ok(SmtpTls {
        server_name: raw
            .server_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| host.to_owned()),
        skip_verify: raw.skip_verify.unwrap_or(false),
        minimum_version,
        ca_file: raw.ca_file.as_deref().map(|f| base_dir.join(f)),
    })
}

/// `tls1.2`, `TLS 1.2` and `TLS1.2` alike.
fn normalize_version(text: &str) -> String {
    text.to_ascii_uppercase().replace([' ', '_', 'V'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<SmtpConfig, SmtpConfigError> {
        let raw: RawNotifier = serde_saphyr::from_str(yaml).unwrap();
        SmtpConfig::from_raw(&raw.smtp.unwrap(), Path::new("/etc/portless"))
    }

    fn with_address(address: &str) -> Result<SmtpConfig, SmtpConfigError> {
        load(&format!(
            "smtp:\n  address: '{address}'\n  sender: 'Portless <auth@example.com>'\n"
        ))
    }

    #[test]
    fn the_incumbents_section_loads_with_safe_defaults() {
        let c = load(
            "smtp:\n  address: 'submission://smtp.example.com:587'\n  username: test\n  password: password\n  sender: \"Authelia <admin@example.com>\"\n  identifier: edge.example.com\n  subject: \"[Authelia] {title}\"\n  startup_check_address: Test@Example.com\n  disable_require_tls: false\n  disable_html_emails: false\n  tls:\n    server_name: smtp.example.com\n    skip_verify: false\n    minimum_version: TLS1.2\n    maximum_version: TLS1.3\n",
        )
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("smtp.example.com", 587));
        assert_eq!(c.security, SmtpSecurity::StartTls);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.credentials.as_ref().unwrap().0, "test");
        assert_eq!(c.identifier, "edge.example.com");
        assert_eq!(c.subject_for("Code"), "[Authelia] Code");
        assert_eq!(c.startup_check_address.as_str(), "test@example.com");
        assert!(!c.tls.skip_verify);
        assert_eq!(c.tls.minimum_version, TlsMinimum::Tls12);
        assert!(!format!("{c:?}").contains("password\""), "{c:?}");
    }

    #[test]
    fn schemes_pick_port_and_security() {
        let cases = [
            ("smtp://mail.test", 25, SmtpSecurity::StartTls),
            ("submission://mail.test", 587, SmtpSecurity::StartTls),
            ("submissions://mail.test", 465, SmtpSecurity::ImplicitTls),
            (
                "SUBMISSIONS://Mail.Test:2465",
                2465,
                SmtpSecurity::ImplicitTls,
            ),
            ("mail.test:465", 465, SmtpSecurity::ImplicitTls),
            ("mail.test", 25, SmtpSecurity::StartTls),
            ("smtp://[::1]:2525", 2525, SmtpSecurity::StartTls),
        ];
        for (address, port, security) in cases {
            let c = with_address(address).unwrap();
            assert_eq!((c.port, c.security), (port, security), "{address}");
        }
        assert_eq!(with_address("smtp://[::1]:2525").unwrap().host, "::1");
        assert_eq!(
            with_address("smtp://Mail.Test").unwrap().tls.server_name,
            "mail.test"
        );
    }

    #[test]
    fn weaker_transport_security_only_when_written() {
        let base = "smtp:\n  address: smtp://mail.test\n  sender: a@example.com\n";
        let c = load(&format!("{base}  disable_require_tls: true\n")).unwrap();
        assert_eq!(c.security, SmtpSecurity::StartTlsIfOffered);
        let c = load(&format!("{base}  disable_starttls: true\n")).unwrap();
        assert_eq!(c.security, SmtpSecurity::Plain);
        let c = load(&format!(
            "{base}  tls:\n    skip_verify: true\n    minimum_version: tls1.3\n"
        ))
        .unwrap();
        assert!(c.tls.skip_verify);
        assert_eq!(c.tls.minimum_version, TlsMinimum::Tls13);
        let c = load(&format!("{base}  tls:\n    ca_file: smtp-ca.pem\n")).unwrap();
        assert_eq!(
            c.tls.ca_file.unwrap(),
            Path::new("/etc/portless/smtp-ca.pem")
        );
    }

    #[test]
    fn bad_sections_are_refused_with_the_key_named() {
        let bad = [
            ("smtp:\n  sender: a@example.com\n", "address is missing"),
            (
                "smtp:\n  address: 'ftp://mail.test'\n  sender: a@example.com\n",
                "scheme `ftp`",
            ),
            (
                "smtp:\n  address: 'smtp://u@mail.test'\n  sender: a@example.com\n",
                "is not `scheme://host",
            ),
            (
                "smtp:\n  address: 'smtp://mail.test:99999'\n  sender: a@example.com\n",
                "is not `scheme://host",
            ),
            ("smtp:\n  address: smtp://mail.test\n", "sender ``"),
            (
                "smtp:\n  address: smtp://mail.test\n  sender: 'a@b@c'\n",
                "sender `a@b@c`",
            ),
            (
                "smtp:\n  address: smtp://mail.test\n  sender: a@example.com\n  timeout: soon\n",
                "timeout `soon`",
            ),
            (
                "smtp:\n  address: smtp://mail.test\n  sender: a@example.com\n  password: x\n",
                "no `username`",
            ),
            (
                "smtp:\n  address: smtp://mail.test\n  sender: a@example.com\n  username: u\n  password: x\n  password_file: f\n",
                "both `password`",
            ),
            (
                "smtp:\n  address: smtp://mail.test\n  sender: a@example.com\n  tls:\n    minimum_version: TLS1.0\n",
                "`TLS1.0` is not supported",
            ),
            (
                "smtp:\n  address: smtp://mail.test\n  sender: a@example.com\n  tls:\n    private_key: k\n",
                "client certificates",
            ),
            (
                "smtp:\n  address: submissions://mail.test\n  sender: a@example.com\n  disable_starttls: true\n",
                "implicit TLS",
            ),
            (
                "smtp:\n  address: smtp://mail.test\n  sender: a@example.com\n  username: u\n  password_file: /nonexistent/pw\n",
                "password_file /nonexistent/pw",
            ),
        ];
        for (yaml, want) in bad {
            let message = load(yaml).unwrap_err().to_string();
            assert!(message.contains(want), "{yaml}\n→ {message}");
        }
    }

    #[test]
    fn the_password_may_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp-password"), "s3cret\n").unwrap();
        let raw: RawNotifier = serde_saphyr::from_str(
            "smtp:\n  address: smtp://mail.test\n  sender: a@example.com\n  username: u\n  password_file: smtp-password\n",
        )
        .unwrap();
        let c = SmtpConfig::from_raw(&raw.smtp.unwrap(), dir.path()).unwrap();
        let (user, password) = c.credentials.unwrap();
        assert_eq!(user, "u");
        assert_eq!(secrecy::ExposeSecret::expose_secret(&password), "s3cret");
    }
}
