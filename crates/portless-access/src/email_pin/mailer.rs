//! Sending PIN mail over SMTP with lettre (rustls on aws-lc-rs, the system roots).
//!
//! One [`Mailer`] is built from the validated [`SmtpConfig`] at startup; each PIN is one
//! connection (no pool: PIN mail is rare, and a fresh connection re-checks the
//! certificate). Certificates are verified against the system roots plus the optional
//! `tls.ca_file`; only an explicit `tls.skip_verify: true` turns that off.

use std::fmt;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, Tls, TlsParameters, TlsParametersBuilder, TlsVersion,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::book::IssuedPin;
use super::smtp::{SmtpConfig, SmtpSecurity, TlsMinimum};

/// The title of the PIN mail (the `{title}` of the subject template).
pub const PIN_TITLE: &str = "Your sign-in code";

/// Sends PIN mail.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    sender: Mailbox,
    subject: String,
    server: String,
    /// The whole exchange's limit: lettre's timeout is per command, and a server that
    /// answers slowly (or a login loop) must not hold a portal request for minutes.
    deadline: Duration,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("sender", &self.sender.to_string())
            .finish_non_exhaustive()
    }
}

/// Why a [`Mailer`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The sender does not parse as a mailbox.
    #[error(
        "notifier.smtp.sender `{0}` is not a mailbox: write it like `Portless <auth@example.com>`"
    )]
    Sender(String),
    /// The CA file cannot be read.
    #[error(
        "cannot read notifier.smtp.tls.ca_file {path}: {source}; check the path and its permissions"
    )]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA file holds no PEM certificate.
    #[error(
        "notifier.smtp.tls.ca_file {0} holds no PEM certificate: point it at the CA's `-----BEGIN CERTIFICATE-----` file"
    )]
    CaPem(std::path::PathBuf),
    /// lettre refused the TLS settings.
    #[error("the SMTP TLS settings are not usable: {0}; check notifier.smtp.tls")]
    Tls(String),
}

/// Why a mail was not sent (or a check failed).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The recipient is not a valid mailbox for lettre.
    #[error("cannot address a mail to `{0}`: the address is not a valid mailbox")]
    Recipient(String),
    /// The message could not be built.
    #[error("cannot build the PIN mail: {0}")]
    Build(String),
    /// The server did not finish within three times `notifier.smtp.timeout`.
    #[error(
        "the mail server {server} did not finish within {seconds}s: check that notifier.smtp.address, the login and the TLS settings are right, or raise notifier.smtp.timeout"
    )]
    Timeout {
        /// `host:port`.
        server: String,
        /// The limit, in seconds.
        seconds: u64,
    },
    /// Connecting, TLS, login or delivery failed.
    #[error(
        "the mail server {server} refused or failed: {message}; check notifier.smtp (address, TLS, login) and the server's logs"
    )]
    Smtp {
        /// `host:port`.
        server: String,
        /// lettre's description (certificate problems show here).
        message: String,
    },
}

impl Mailer {
    /// Builds the mailer: parses the sender, loads the CA file, prepares TLS.
    pub fn new(config: &SmtpConfig) -> Result<Mailer, MailerError> {
        let sender: Mailbox = config
            .sender
            .parse()
            .map_err(|_| MailerError::Sender(config.sender.clone()))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(config.timeout))
            .hello_name(ClientId::Domain(config.identifier.clone()));
        builder = builder.tls(tls(config)?);
        if let Some((user, password)) = &config.credentials {
            let password = password.expose_secret().to_owned();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Mailer {
            transport: builder.build(),
            sender,
            subject: config.subject_for(PIN_TITLE),
            server: format!("{}:{}", config.host, config.port),
            deadline: config.timeout.saturating_mul(3),
        })
    }

    /// Mails `pin` to its address; `valid_for` is told in the text.
    pub async fn send_pin(&self, pin: &IssuedPin, valid_for: Duration) -> Result<(), SendError> {
        let to: Mailbox = pin
            .address()
            .as_str()
            .parse()
            .map_err(|_| SendError::Recipient(pin.address().to_string()))?;
        let minutes = valid_for.as_secs().div_ceil(60);
        let body = format!(
            "Your sign-in code is:\n\n    {}\n\nIt is valid for {minutes} minutes, once, in the browser where you asked for it.\n\
             If you did not ask for a code, you can ignore this email: nobody can sign in without it.\n",
            pin.code()
        );
        let message = Message::builder()
            .from(self.sender.clone())
            .to(to)
            .subject(self.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| SendError::Build(e.to_string()))?;
        tokio::time::timeout(self.deadline, self.transport.send(message))
            .await
            .map_err(|_| self.timeout_error())?
            .map(drop)
            .map_err(|e| self.smtp_error(&e))
    }

    /// Connects, secures the connection, logs in and says NOOP: the startup check.
    pub async fn check(&self) -> Result<(), SendError> {
        let checked = tokio::time::timeout(self.deadline, self.transport.test_connection())
            .await
            .map_err(|_| self.timeout_error())?;
        match checked {
            Ok(true) => Ok(()),
            Ok(false) => Err(SendError::Smtp {
                server: self.server.clone(),
                message: "the server did not answer NOOP".to_owned(),
            }),
            Err(e) => Err(self.smtp_error(&e)),
        }
    }

    fn timeout_error(&self) -> SendError {
        SendError::Timeout {
            server: self.server.clone(),
            seconds: self.deadline.as_secs(),
        }
    }

    fn smtp_error(&self, e: &lettre::transport::smtp::Error) -> SendError {
        // lettre's Display is terse ("Connection error"); the source chain names the cause
        // (an unknown issuer, a refused login).
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        SendError::Smtp {
            server: self.server.clone(),
            message,
        }
    }
}

fn tls(config: &SmtpConfig) -> Result<Tls, MailerError> {
    let params = || tls_parameters(config);
    Ok(match config.security {
        SmtpSecurity::ImplicitTls => Tls::Wrapper(params()?),
        SmtpSecurity::StartTls => Tls::Required(params()?),
        SmtpSecurity::StartTlsIfOffered => Tls::Opportunistic(params()?),
        SmtpSecurity::Plain => Tls::None,
    })
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, MailerError> {
    let tls = &config.tls;
    let mut builder = TlsParametersBuilder::new(tls.server_name.clone())
        .certificate_store(CertificateStore::Default)
        .dangerous_accept_invalid_certs(tls.skip_verify)
        .set_min_tls_version(match tls.minimum_version {
            TlsMinimum::Tls12 => TlsVersion::Tlsv12,
            TlsMinimum::Tls13 => TlsVersion::Tlsv13,
        });
    if let Some(path) = &tls.ca_file {
        let pem = std::fs::read(path).map_err(|source| MailerError::CaFile {
            path: path.clone(),
            source,
        })?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(MailerError::CaPem(path.clone()));
        }
        let cert = Certificate::from_pem(&pem).map_err(|_| MailerError::CaPem(path.clone()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| MailerError::Tls(e.to_string()))
}
