//! Turning raw values into typed ones, collecting every problem instead of stopping at the
//! first: the building blocks each section's validation uses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use portless_diagnostics::Position;
use serde_saphyr::Spanned;

use super::error::{EdgeConfigError, EdgeConfigErrorKind};

/// A YAML scalar as text, and where it was written (numbers and booleans arrive as text too,
/// so a bad value is one collected error rather than an aborted parse).
pub(crate) type Text = Spanned<String>;

/// Collects the problems of one file.
pub(crate) struct Checker {
    file: PathBuf,
    pub(crate) errors: Vec<EdgeConfigError>,
}

impl Checker {
    pub(crate) fn new(file: &Path) -> Self {
        Self {
            file: file.to_owned(),
            errors: Vec::new(),
        }
    }

    /// Records that the value of `key` written at `at` cannot be used.
    pub(crate) fn invalid<T>(
        &mut self,
        at: &Spanned<T>,
        key: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        let kind = EdgeConfigErrorKind::Invalid {
            key: key.to_owned(),
            problem: problem.into(),
            fix: fix.into(),
        };
        let position = Position::from_location(at.referenced);
        self.errors
            .push(EdgeConfigError::new(&self.file, position, kind));
    }

    /// `ip:port` with a port other than 0.
    pub(crate) fn listen(&mut self, text: &Text, key: &str) -> Option<SocketAddr> {
        let fix = "write an IP address and a port, e.g. `0.0.0.0:2222` or `[::]:2222`";
        match text.value.trim().parse::<SocketAddr>() {
            Ok(addr) if addr.port() == 0 => {
                self.invalid(text, key, "port 0 is not a fixed port", fix);
                None
            }
            Ok(addr) => Some(addr),
            Err(_) => {
                let problem = format!("`{}` is not an IP address and port", text.value);
                self.invalid(text, key, problem, fix);
                None
            }
        }
    }

    /// A duration (`60s`, `5m`, `1h30m`, `30d`, `1y`; a bare number is seconds), not zero.
    pub(crate) fn duration(&mut self, text: &Text, key: &str) -> Option<Duration> {
        let fix = "write a duration such as `30s`, `5m`, `1h` or `30d`";
        match portless_access::config::parse_duration(&text.value) {
            Ok(d) if d.is_zero() => {
                self.invalid(text, key, "the duration must be longer than zero", fix);
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.invalid(text, key, format!("`{}`: {e}", text.value), fix);
                None
            }
        }
    }

    /// `true` or `false` (also `yes`/`no`, `on`/`off`).
    pub(crate) fn boolean(&mut self, text: &Text, key: &str) -> Option<bool> {
        match text.value.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            _ => {
                let problem = format!("`{}` is not true or false", text.value);
                self.invalid(text, key, problem, "write `true` or `false`");
                None
            }
        }
    }

    /// A file path; a relative one is taken from the config file's directory, so the file
    /// means the same whatever directory the edge is started in.
    pub(crate) fn path(&self, text: &Text) -> PathBuf {
        let written = Path::new(text.value.trim());
        match self.file.parent() {
            Some(dir) if written.is_relative() => dir.join(written),
            _ => written.to_owned(),
        }
    }

    /// A file path (as [`Checker::path`]) that can be read now; `what` says what it holds.
    pub(crate) fn readable_file(&mut self, text: &Text, key: &str, what: &str) -> Option<PathBuf> {
        let path = self.path(text);
        match std::fs::File::open(&path) {
            Ok(_) => Some(path),
            Err(e) => {
                let problem = format!("cannot read {}: {e}", path.display());
                let fix = format!("give the path of {what} readable by this user");
                self.invalid(text, key, problem, fix);
                None
            }
        }
    }

    /// A whole number from `min` to `max`.
    pub(crate) fn count(
        &mut self,
        text: &Text,
        key: &str,
        min: usize,
        max: usize,
    ) -> Option<usize> {
        match text.value.trim().parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let problem = format!("`{}` is not a whole number from {min} to {max}", text.value);
                self.invalid(
                    text,
                    key,
                    problem,
                    format!("write a number from {min} to {max}"),
                );
                None
            }
        }
    }

    /// One exact hostname in canonical form (lowercase, no trailing dot).
    pub(crate) fn hostname(&mut self, text: &Text, key: &str) -> Option<String> {
        let written = text.value.trim();
        if let Some(problem) = hostname_problem(written) {
            self.invalid(
                text,
                key,
                problem,
                "write a hostname such as `ssh.example.com`",
            );
            return None;
        }
        match portless_proto::canonical_host(written) {
            Ok(host) => Some(host),
            Err(_) => {
                self.invalid(
                    text,
                    key,
                    format!("`{written}` is not a valid hostname"),
                    "use letters, digits, `-` and `.` only; write internationalized names in \
                     punycode (`xn--…`)",
                );
                None
            }
        }
    }

    /// A hostname pattern: exact, or `*.suffix` for every name below `suffix` at any depth.
    pub(crate) fn host_pattern(&mut self, text: &Text, key: &str) -> Option<String> {
        let written = text.value.trim();
        match written.strip_prefix("*.") {
            Some(suffix) if !suffix.contains('*') => {
                let inner = Spanned::new(suffix.to_owned(), text.referenced, text.defined);
                self.hostname(&inner, key).map(|host| format!("*.{host}"))
            }
            _ if written.contains('*') => {
                self.invalid(
                    text,
                    key,
                    format!("`{written}`: a wildcard may only be a leading `*.`"),
                    "write `*.example.com` for every name below example.com, or list names",
                );
                None
            }
            _ => self.hostname(text, key),
        }
    }

    /// A network in CIDR notation; a bare address is a single host.
    pub(crate) fn network(&mut self, text: &Text, key: &str) -> Option<IpNet> {
        let written = text.value.trim();
        if let Ok(net) = written.parse::<IpNet>() {
            if net.trunc() != net {
                let problem = format!("`{written}` has host bits set after the prefix");
                let fix = format!("write the network address: `{}`", net.trunc());
                self.invalid(text, key, problem, fix);
                return None;
            }
            return Some(net);
        }
        if let Ok(ip) = written.parse::<std::net::IpAddr>() {
            return Some(IpNet::from(ip));
        }
        self.invalid(
            text,
            key,
            format!("`{written}` is not an IP address or network"),
            "write a network such as `203.0.113.0/24` or `2001:db8::/32`, or one address",
        );
        None
    }
}

/// Why `written` is not a bare hostname, for the mistakes people make (the canonical form
/// check catches the rest).
fn hostname_problem(written: &str) -> Option<String> {
    if written.is_empty() {
        return Some("the hostname is empty".to_owned());
    }
    if let Some((scheme, _)) = written.split_once("://") {
        return Some(format!(
            "`{written}` holds a scheme (`{scheme}://`); only the hostname belongs here"
        ));
    }
    if written.contains(':') {
        return Some(format!(
            "`{written}` holds a port; only the hostname belongs here"
        ));
    }
    if written.contains('/') {
        return Some(format!(
            "`{written}` holds a path; only the hostname belongs here"
        ));
    }
    None
}
