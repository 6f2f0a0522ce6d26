//! Email one-time PIN: a login factor for people whose only account is their mailbox.
//!
//! The portal asks for an address, the edge mails a six-digit PIN — only when some rule
//! could allow that address, while the page says "a code has been sent" either way — and
//! the person types it back in the same browser. The building blocks:
//! * `address` — the canonical spelling of an address ([`EmailAddress`]);
//! * `book` — issuing, rate-limiting and redeeming PINs ([`PinBook`]), in memory, time
//!   passed in;
//! * `smtp` — the `notifier.smtp` configuration section ([`RawSmtp`], [`SmtpConfig`]);
//! * `mailer` — sending the PIN mail over SMTP with STARTTLS or implicit TLS and
//!   certificate checks ([`Mailer`]).
//!
//! A portal wires them as: `book.request(..)` → if `sent()`, `mailer.send_pin(..)` (off the
//! lock); later `book.verify(..)` → a one-factor identity for the verified address.

mod address;
mod book;
mod mailer;
mod smtp;
#[cfg(test)]
mod tests;

pub use address::{AddressError, EmailAddress};
pub use book::{
    BrowserBinding, IssuedPin, PIN_DIGITS, PinBook, PinError, PinPolicy, RateLimit, RequestError,
    Requested, VerifiedAddress, Withheld,
};
pub use mailer::{Mailer, MailerError, PIN_TITLE, SendError};
pub use smtp::{
    DEFAULT_SUBJECT, RawNotifier, RawSmtp, RawSmtpTls, SmtpConfig, SmtpConfigError, SmtpSecurity,
    SmtpTls, TlsMinimum,
};
