//! The identity a request carries, and the request as the policy engine sees it.

use std::net::IpAddr;

/// How strongly a browser session has been authenticated.
///
/// Ordered: a two-factor session also meets a one-factor requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthLevel {
    /// First factor only (password, or later an upstream provider or email PIN).
    OneFactor,
    /// First factor and a second factor (TOTP, later passkeys).
    TwoFactor,
}

/// Where a person's identity comes from.
///
/// Rules treat the sources differently on purpose: a rule that names nobody (`one_factor`
/// without `subject`) admits users-file users only, so adding a provider or the email PIN
/// never widens a policy written before them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// The users file (`authentication_backend.file`).
    UsersFile,
    /// An upstream OpenID provider, by its configured name.
    Oidc(String),
    /// A PIN mailed to the address.
    EmailPin,
}

impl Source {
    /// The name `provider:` subjects use for this source: `users`, `email`, or the
    /// provider's name.
    pub fn provider_name(&self) -> &str {
        match self {
            Source::UsersFile => "users",
            Source::Oidc(name) => name,
            Source::EmailPin => "email",
        }
    }
}

/// Who is behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A person: from the users file, an upstream provider or an email PIN.
    User {
        /// Canonical username (lowercase) for the users file; the lowercase email address
        /// for the other sources.
        name: String,
        /// How strongly this session was authenticated.
        level: AuthLevel,
        /// Where the identity comes from.
        source: Source,
    },
    /// A machine presenting a service token.
    ServiceToken {
        /// The token's name, as rules name it (`token:NAME`).
        name: String,
        /// The token's public client id.
        client_id: String,
    },
}

/// A proven identity: built by the edge from a live session or a valid service token, with
/// the user's *current* groups and attributes (so a group change or a disabled user takes
/// effect on the next request, not at the next login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Who.
    pub subject: Subject,
    /// Display name (empty for service tokens).
    pub display_name: String,
    /// Email address, if known.
    pub email: Option<String>,
    /// Groups, as in the users file (or as the provider's groups claim says).
    pub groups: Vec<String>,
}

impl Identity {
    /// Where a person's identity comes from; `None` for a service token.
    pub fn source(&self) -> Option<&Source> {
        match &self.subject {
            Subject::User { source, .. } => Some(source),
            Subject::ServiceToken { .. } => None,
        }
    }

    /// Whether this is a person from another source than the users file.
    pub fn is_external(&self) -> bool {
        self.source().is_some_and(|s| *s != Source::UsersFile)
    }

    /// The name identity headers and the assertion's `sub` carry: the username, or the
    /// service token's client id.
    pub fn name(&self) -> &str {
        match &self.subject {
            Subject::User { name, .. } => name,
            Subject::ServiceToken { client_id, .. } => client_id,
        }
    }
}

/// The request a policy judges: always built from the canonical request, never from raw
/// client input, so routing, policy and the origin agree on what was asked.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// Canonical host: lowercase, no port, no trailing dot, punycode.
    pub host: &'a str,
    /// Canonical path (decoded where safe, dot segments resolved), without the query.
    pub path: &'a str,
    /// The raw query string, without `?`, if any.
    pub query: Option<&'a str>,
    /// The request method, uppercase.
    pub method: &'a str,
    /// The client's address as the edge saw it (or as a trusted proxy reported it).
    pub client_ip: IpAddr,
    /// The proven identity, if any.
    pub identity: Option<&'a Identity>,
}
