//! What a user sees when a config file is wrong: errors and warnings that name the file, the
//! line and column, and a suggested fix.
//!
//! The *message* of each error keeps the wording of the tunnel connector people already know
//! (so their searches still find answers); the *fix* line is ours.

use std::fmt;
use std::path::{Path, PathBuf};

pub use portless_diagnostics::Position;
use portless_diagnostics::{Severity, plain_parser_message, write_diagnostic, write_each};

use crate::hostname::HostnameError;
use crate::service::ServiceError;

// === ConfigError ===

/// Why a config file was refused: one problem, where it is, and how to fix it.
#[derive(Debug)]
pub struct ConfigError {
    file: PathBuf,
    position: Option<Position>,
    kind: ConfigErrorKind,
}

impl ConfigError {
    pub(crate) fn new(file: &Path, position: Option<Position>, kind: ConfigErrorKind) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            position,
            kind,
        }
    }

    /// The config file the error is in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Where in the file; `None` only when the problem is not at one place (the file cannot
    /// be read, or a required key is missing altogether).
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// What is wrong, as a typed value.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.kind
    }

    /// A suggested fix, in one sentence.
    pub fn fix(&self) -> String {
        self.kind.fix()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_diagnostic(
            f,
            &self.file,
            self.position,
            Severity::Error,
            &self.kind.to_string(),
            &self.fix(),
        )
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The kind's own text is already part of our Display; expose what lies beneath it.
        std::error::Error::source(&self.kind)
    }
}

/// Every problem found in one config file (never empty). Validation keeps going after the
/// first problem so a user can fix them all in one edit.
#[derive(Debug)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    pub(crate) fn new(errors: Vec<ConfigError>) -> Self {
        ConfigErrors(errors)
    }

    pub(crate) fn one(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }

    /// The errors in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many errors there are (at least one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a `ConfigErrors` holds at least one error. Present for clippy's
    /// `len_without_is_empty`, and for callers that treat it like a collection.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors as a vector.
    pub fn into_vec(self) -> Vec<ConfigError> {
        self.0
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_each(f, &self.0)
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

// === ConfigErrorKind ===

/// Every way a config file can be refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read.
    #[error("could not read the config file: {source}")]
    Read {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML (or repeats a key).
    #[error("invalid YAML: {}", plain_parser_message(.message))]
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// A value has the wrong type, e.g. a list where a single value belongs.
    #[error("{key} has the wrong type: {}", plain_parser_message(.message))]
    WrongType {
        /// The key as shown to users, e.g. ``"`originRequest.noTLSVerify` of rule #2"``.
        key: String,
        /// The parser's message, e.g. "invalid boolean".
        message: String,
    },
    /// `ingress` is missing or empty.
    #[error("The config file doesn't contain any ingress rules")]
    NoRules,
    /// The last rule has a hostname or path, so some requests would match nothing.
    #[error(
        "The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)"
    )]
    LastRuleNotCatchAll,
    /// A catch-all rule comes before the end, hiding every rule after it.
    #[error(
        "Rule #{rule} is matching the hostname '{hostname}', but this will match every hostname, meaning the rules which follow it will never be triggered."
    )]
    CatchAllNotLast {
        /// 1-based rule number.
        rule: usize,
        /// The hostname as written (empty or `*`).
        hostname: String,
    },
    /// A bad `hostname`.
    #[error(transparent)]
    Hostname(#[from] HostnameError),
    /// A `path` that is not a valid regular expression.
    #[error("Rule #{rule} has an invalid regex: {message}")]
    BadRegex {
        /// 1-based rule number.
        rule: usize,
        /// The regex compiler's message.
        message: String,
    },
    /// A rule without `service`.
    #[error("Rule #{rule} has no service")]
    MissingService {
        /// 1-based rule number.
        rule: usize,
    },
    /// A bad `service`.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A duration that cannot be parsed.
    #[error("{key} has an invalid duration '{value}'")]
    InvalidDuration {
        /// The key as shown to users, e.g. ``"`originRequest.connectTimeout`"``.
        key: String,
        /// The value as written.
        value: String,
    },
    /// `grace-period` above the 3-minute ceiling.
    #[error("grace-period of {value} is longer than the maximum of 3m")]
    GracePeriodTooLong {
        /// The value as written.
        value: String,
    },
    /// A number outside its allowed range.
    #[error("{key} must be {}, got {value}", allowed_range(*.min, *.max))]
    OutOfRange {
        /// The key as shown to users, e.g. ``"`retries`"``.
        key: String,
        /// The value.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A value that must be one of a fixed set of words.
    #[error("{key} must be one of {}, got '{value}'", .choices.join(", "))]
    InvalidChoice {
        /// The key as shown to users, e.g. ``"`retries`"``.
        key: String,
        /// The value as written.
        value: String,
        /// The accepted words.
        choices: &'static [&'static str],
    },
    /// An address (`metrics`, `edge`, `edge-bind-address`) that cannot be parsed.
    #[error("{key} has an invalid address '{value}': {reason}")]
    InvalidAddress {
        /// The key as shown to users, e.g. ``"`retries`"``.
        key: String,
        /// The value as written.
        value: String,
        /// Why it is invalid.
        reason: String,
        /// What a valid value looks like.
        example: &'static str,
    },
    /// A `tag` that is not `KEY=VALUE`.
    #[error("tag '{value}' is not of the form KEY=VALUE")]
    InvalidTag {
        /// The value as written.
        value: String,
    },
    /// A bad `ipRules` entry.
    #[error("invalid ipRules entry: {reason}")]
    InvalidIpRule {
        /// Why it is invalid.
        reason: String,
    },
    /// `access.required` without a team name to verify the assertion against.
    #[error("`access.required` is true but `access.teamName` is empty")]
    AccessTeamNameMissing,
    /// A value that must not be empty.
    #[error("{key} must not be empty")]
    Empty {
        /// The key as shown to users, e.g. ``"`retries`"``.
        key: String,
    },
}

impl ConfigErrorKind {
    /// A suggested fix for this problem.
    pub fn fix(&self) -> String {
        use ConfigErrorKind as K;
        match self {
            K::Read { .. } => "check the path and the file's permissions, or pass --config".into(),
            K::Syntax { message } => syntax_fix(message),
            K::WrongType { message, .. } => wrong_type_fix(message).into(),
            K::NoRules => "add an `ingress:` list ending with a catch-all rule, e.g.\n    \
                           ingress:\n      - hostname: app.example.com\n        \
                           service: http://localhost:8000\n      - service: http_status:404"
                .into(),
            K::LastRuleNotCatchAll => "add `- service: http_status:404` (or another service \
                                       without hostname and path) as the last rule"
                .into(),
            K::CatchAllNotLast { .. } => "move this rule to the end of `ingress`, or give it a \
                                          `hostname` or `path` so it stops matching everything"
                .into(),
            K::Hostname(e) => e.fix(),
            K::BadRegex { message, .. } => regex_fix(message).into(),
            K::MissingService { .. } => "add a `service:` such as `http://localhost:8000` or \
                                         `http_status:404`"
                .into(),
            K::Service(e) => e.fix(),
            K::InvalidDuration { .. } => "write a duration like `30s`, `1m30s` or `500ms`, or \
                                          a whole number of seconds"
                .into(),
            K::GracePeriodTooLong { .. } => "use a grace-period of at most `3m`".into(),
            K::OutOfRange { min, max, .. } if is_type_limit(*max) => format!("use {min} or more"),
            K::OutOfRange { min, max, .. } => format!("use a value from {min} to {max}"),
            K::InvalidChoice { choices, .. } => format!("use one of: {}", choices.join(", ")),
            K::InvalidAddress { example, .. } => format!("write it like `{example}`"),
            K::InvalidTag { .. } => "write tags as `KEY=VALUE`, e.g. `env=prod`".into(),
            K::InvalidIpRule { .. } => "write entries like `{prefix: 10.0.0.0/8, ports: [80, \
                                        443], allow: true}`"
                .into(),
            K::AccessTeamNameMissing => "set `teamName` (and `audTag`) under `access`, or set \
                                         `required: false`"
                .into(),
            K::Empty { key } => format!("give {key} a value, or remove the key"),
        }
    }
}

/// `between 1 and 10`, or `at least 1` when the maximum is only the type's limit (nobody
/// needs to read "4294967295").
fn allowed_range(min: i64, max: i64) -> String {
    if is_type_limit(max) {
        format!("at least {min}")
    } else {
        format!("between {min} and {max}")
    }
}

/// Whether `max` is no real limit, only the largest value the setting's type holds.
fn is_type_limit(max: i64) -> bool {
    max >= i64::from(u32::MAX)
}

/// Advice for the YAML mistakes people actually make; the parser's message says what it saw.
fn syntax_fix(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split_once(',').map_or(rest, |(key, _)| key);
        format!(
            "keep only one `{key}` here: a key may appear once per mapping (the first one is \
             above); to send some requests elsewhere, add another rule"
        )
    } else if message.contains("tabs") {
        "indent with spaces: YAML does not allow tabs in indentation".into()
    } else if message.contains("unknown escape") {
        "inside double quotes `\\` starts an escape: write a regex in single quotes \
         ('\\.(css|js)$') or without quotes"
            .into()
    } else if message.contains("unknown anchor") {
        "a value starting with `*` refers to a YAML anchor: quote it, e.g. \
         `hostname: \"*.example.com\"`, or define `&name` before using `*name`"
            .into()
    } else {
        "check the indentation and quoting near this position; values containing `: `, `#` \
         or starting with `*` need quotes"
            .into()
    }
}

/// Advice for a `path` regex the compiler refused.
fn regex_fix(message: &str) -> &'static str {
    if message.contains("look-around") {
        "look-ahead and look-behind are not supported: to exclude paths, put a rule matching \
         them before this one (the first matching rule wins)"
    } else {
        "fix the regular expression; escape literal dots and parentheses with `\\` (quote the \
         value in YAML)"
    }
}

/// Turns the YAML parser's type messages into advice.
fn wrong_type_fix(message: &str) -> &'static str {
    if message.contains("boolean") {
        "use `true` or `false`"
    } else if message.contains("sequence") {
        "use a list: one `- item` per line, or `[a, b]`"
    } else if message.contains("mapping") || message.contains("struct") {
        "use a mapping: `key: value` lines indented under this key"
    } else if message.contains("string") {
        "use a single value here (quote it if it contains `:` or `#`)"
    } else if message.contains("invalid") {
        "use a whole number"
    } else {
        "check the value's type against the documented format"
    }
}

// === Warning ===

/// Something in the file that is accepted but probably not what the author meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    file: PathBuf,
    position: Position,
    kind: WarningKind,
}

impl Warning {
    pub(crate) fn new(file: &Path, position: Position, kind: WarningKind) -> Self {
        Warning {
            file: file.to_path_buf(),
            position,
            kind,
        }
    }

    /// The config file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Where in the file.
    pub fn position(&self) -> Position {
        self.position
    }

    /// What was noticed.
    pub fn kind(&self) -> &WarningKind {
        &self.kind
    }

    /// A suggested fix.
    pub fn fix(&self) -> String {
        self.kind.fix()
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_diagnostic(
            f,
            &self.file,
            Some(self.position),
            Severity::Warning,
            &self.kind.to_string(),
            &self.fix(),
        )
    }
}

/// Every kind of warning.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WarningKind {
    /// A key that is not part of the format (usually a typo); it is ignored.
    #[error("unknown key `{key}` in {section} is ignored")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was found, e.g. `the top level` or `ingress rule #2`.
        section: String,
        /// The most likely intended key, if any.
        suggestion: Option<Suggestion>,
    },
    /// A key that is still accepted for compatibility but has no effect.
    #[error("`{key}` is deprecated and ignored")]
    Deprecated {
        /// The key as written.
        key: String,
        /// What to do instead.
        advice: &'static str,
    },
    /// A rule that can never match because an earlier rule takes all its requests.
    #[error(
        "Rule #{rule} can never match: rule #{by} already matches every request for '{hostname}'"
    )]
    UnreachableRule {
        /// 1-based number of the unreachable rule.
        rule: usize,
        /// 1-based number of the earlier rule.
        by: usize,
        /// The hostname they share.
        hostname: String,
    },
}

impl WarningKind {
    /// A suggested fix for this warning.
    pub fn fix(&self) -> String {
        match self {
            WarningKind::UnknownKey {
                suggestion: Some(Suggestion::Rename(key)),
                ..
            } => format!("did you mean `{key}`?"),
            WarningKind::UnknownKey {
                suggestion: Some(Suggestion::MoveUnder(parent)),
                key,
                ..
            } => format!("`{key}` is an option of `{parent}`: move it under `{parent}:`"),
            WarningKind::UnknownKey {
                suggestion: None, ..
            } => "remove it, or check the spelling against the documented keys".into(),
            WarningKind::Deprecated { advice, .. } => (*advice).into(),
            WarningKind::UnreachableRule { .. } => {
                "remove the later rule, or give the earlier one a `path` so it matches less".into()
            }
        }
    }
}

/// What an unknown key was probably meant to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Suggestion {
    /// A valid key at the same level with a similar spelling.
    Rename(&'static str),
    /// A valid key of the named nested section (e.g. `connectTimeout` at the rule level
    /// belongs under `originRequest`).
    MoveUnder(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_names_file_line_column_and_fix() {
        let error = ConfigError::new(
            Path::new("config.yml"),
            Some(Position {
                line: 12,
                column: 7,
            }),
            ConfigErrorKind::Hostname(HostnameError::Port {
                hostname: "app.example.com:8080".into(),
                port: "8080".into(),
            }),
        );
        assert_eq!(
            error.to_string(),
            "config.yml:12:7: error: Hostname cannot contain a port\n  \
             fix: remove \":8080\" from the hostname; ports belong in the service URL"
        );
    }

    #[test]
    fn warning_display_suggests_the_closest_key() {
        let warning = Warning::new(
            Path::new("/etc/portless/config.yml"),
            Position { line: 3, column: 5 },
            WarningKind::UnknownKey {
                key: "orginRequest".into(),
                section: "ingress rule #1".into(),
                suggestion: Some(Suggestion::Rename("originRequest")),
            },
        );
        assert_eq!(
            warning.to_string(),
            "/etc/portless/config.yml:3:5: warning: unknown key `orginRequest` in ingress \
             rule #1 is ignored\n  fix: did you mean `originRequest`?"
        );
    }

    #[test]
    fn errors_without_position_still_name_the_file() {
        let error = ConfigError::new(Path::new("c.yml"), None, ConfigErrorKind::NoRules);
        assert!(
            error
                .to_string()
                .starts_with("c.yml: error: The config file doesn't contain any ingress rules\n")
        );
    }
}
