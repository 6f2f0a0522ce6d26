//! What a user sees when the access configuration file is wrong: problems and warnings that
//! name the file, the line and column, and a suggested fix.
//!
//! Rendered like a compiler's messages (`file:line:col: error: ...` then `fix: ...`), so
//! editors and terminals turn the location into a link.

use std::fmt;
use std::path::{Path, PathBuf};

pub use portless_diagnostics::Position;
use portless_diagnostics::{Severity, write_diagnostic, write_each};

use super::duration::DurationError;

// === ConfigError ===

/// Why an access configuration file was refused: every problem found (never none), in file
/// order. Checking keeps going after the first problem so that one edit can fix them all.
#[derive(Debug)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

impl ConfigError {
    pub(crate) fn new(mut problems: Vec<Problem>) -> Self {
        problems.sort_by_key(|p| p.position);
        ConfigError { problems }
    }

    pub(crate) fn one(problem: Problem) -> Self {
        ConfigError {
            problems: vec![problem],
        }
    }

    /// The problems, in file order (at least one).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_each(f, &self.problems)
    }
}

impl std::error::Error for ConfigError {}

// === Problem ===

/// One reason the file was refused: what, where, and how to fix it.
#[derive(Debug)]
pub struct Problem {
    file: PathBuf,
    position: Option<Position>,
    kind: ProblemKind,
}

impl Problem {
    pub(crate) fn new(file: &Path, position: Option<Position>, kind: ProblemKind) -> Self {
        Problem {
            file: file.to_path_buf(),
            position,
            kind,
        }
    }

    /// The configuration file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Where in the file; `None` when the problem is not at one place (the file cannot be
    /// read, or it is empty).
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// What is wrong, as a typed value.
    pub fn kind(&self) -> &ProblemKind {
        &self.kind
    }

    /// A suggested fix.
    pub fn fix(&self) -> String {
        self.kind.fix()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.kind.to_string();
        write_diagnostic(
            f,
            &self.file,
            self.position,
            Severity::Error,
            &message,
            &self.fix(),
        )
    }
}

/// Every way the access configuration file can be refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The file could not be read.
    #[error("could not read the configuration file: {source}")]
    Read {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML (or repeats a key).
    #[error("invalid YAML: {message}")]
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// A value has the wrong type, e.g. a mapping where a list belongs.
    #[error("{key} has the wrong type: {message}")]
    WrongType {
        /// The key as shown to users.
        key: String,
        /// The parser's message.
        message: String,
    },
    /// A key inside `access_control` that the format does not have. Refused rather than
    /// ignored: a misspelt `subject` would silently open a rule to everyone.
    #[error("unknown key `{key}` in {section}")]
    UnknownPolicyKey {
        /// The key as written.
        key: String,
        /// Where, e.g. `access_control rule #2`.
        section: String,
        /// The key that was probably meant.
        suggestion: Option<&'static str>,
    },
    /// A required key is missing.
    #[error("{section} has no `{key}`")]
    Missing {
        /// The missing key.
        key: &'static str,
        /// Where, e.g. `access_control rule #2`.
        section: String,
        /// What to write.
        example: &'static str,
    },
    /// A value that must not be empty.
    #[error("{key} is empty")]
    Empty {
        /// The key as shown to users.
        key: String,
    },
    /// A duration that cannot be parsed.
    #[error("{key} has an invalid duration `{value}`: {reason}")]
    InvalidDuration {
        /// The key as shown to users.
        key: String,
        /// The value as written.
        value: String,
        /// Why.
        reason: DurationError,
    },
    /// A number outside its allowed range.
    #[error("{key} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// The key as shown to users.
        key: String,
        /// The value.
        value: i64,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
        /// Why the range is what it is.
        why: &'static str,
    },
    /// A value that must be one of a fixed set of words.
    #[error("{key} must be one of {}, got `{value}`", .choices.join(", "))]
    InvalidChoice {
        /// The key as shown to users.
        key: String,
        /// The value as written.
        value: String,
        /// The accepted words.
        choices: &'static [&'static str],
        /// The closest accepted word, if the value looks like a typo of it.
        suggestion: Option<&'static str>,
    },
    /// `bypass` on a rule that names subjects.
    #[error(
        "rule #{rule} has policy `bypass` and a `subject`: bypass lets requests through \
         without anyone logging in, so there is no user to compare the subject with"
    )]
    BypassWithSubject {
        /// 1-based rule number.
        rule: usize,
    },
    /// `bypass` on a rule whose `domain_regex` has `User`/`Group` groups.
    #[error(
        "rule #{rule} has policy `bypass` and a `domain_regex` with a `User` or `Group` \
         group: bypass lets requests through without login, so there is no user to compare \
         the group with"
    )]
    BypassWithRegexSubject {
        /// 1-based rule number.
        rule: usize,
    },
    /// A `domain` entry that is not a hostname or `*.suffix` pattern.
    #[error("rule #{rule} has an invalid domain `{value}`: {reason}")]
    InvalidDomain {
        /// 1-based rule number.
        rule: usize,
        /// The value as written.
        value: String,
        /// Why.
        reason: DomainProblem,
    },
    /// A regular expression that does not compile (or is too large).
    #[error("rule #{rule} has an invalid `{key}` regex `{pattern}`: {message}")]
    BadRegex {
        /// 1-based rule number.
        rule: usize,
        /// `domain_regex`, `resources` or `query`.
        key: &'static str,
        /// The pattern as written.
        pattern: String,
        /// The compiler's message.
        message: String,
    },
    /// A method that is not an HTTP method the format knows.
    #[error("rule #{rule} has an unknown method `{value}`")]
    UnknownMethod {
        /// 1-based rule number.
        rule: usize,
        /// The value as written.
        value: String,
        /// The closest known method.
        suggestion: Option<&'static str>,
    },
    /// A `networks` entry of a rule that is neither a named network, a CIDR nor an address.
    #[error("rule #{rule} names the network `{value}`, which is not defined")]
    UnknownNetwork {
        /// 1-based rule number.
        rule: usize,
        /// The value as written.
        value: String,
        /// The named networks that are defined.
        defined: Vec<String>,
    },
    /// An entry of a named network that is not a CIDR or an address.
    #[error("{key} has an invalid network `{value}`")]
    InvalidNetwork {
        /// The key as shown to users.
        key: String,
        /// The value as written.
        value: String,
    },
    /// Two named networks with one name.
    #[error("the named network `{name}` is defined twice")]
    DuplicateNetwork {
        /// The name.
        name: String,
    },
    /// A subject that is not `user:`, `group:` or `token:` followed by a name.
    #[error("rule #{rule} has an invalid subject `{value}`")]
    InvalidSubject {
        /// 1-based rule number.
        rule: usize,
        /// The value as written.
        value: String,
    },
    /// A query criterion whose operator and value do not fit together.
    #[error("rule #{rule}: the query criterion on `{key}` {reason}")]
    InvalidQuery {
        /// 1-based rule number.
        rule: usize,
        /// The query parameter.
        key: String,
        /// What is wrong, e.g. "with operator `present` and a value".
        reason: String,
        /// How to fix it.
        fix: &'static str,
    },
    /// A URL that must be `https://host[:port][/path]`.
    #[error("{key} has an invalid URL `{value}`: {reason}")]
    InvalidUrl {
        /// The key as shown to users.
        key: String,
        /// The value as written.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A sign-in method's section (an OIDC provider, the notifier, the email PIN) was
    /// refused by its own validation; `message` names the setting, `fix` what to write.
    #[error("{message}")]
    Setting {
        /// What is wrong.
        message: String,
        /// What to write instead.
        fix: String,
    },
    /// A cookie or session domain that is not a plain hostname.
    #[error("{key} has an invalid domain `{value}`: {reason}")]
    InvalidCookieDomain {
        /// The key as shown to users.
        key: String,
        /// The value as written.
        value: String,
        /// Why.
        reason: DomainProblem,
    },
}

impl ProblemKind {
    /// A [`ProblemKind::Setting`] from an error whose message reads "problem: fix" (or
    /// "problem; fix"), as the OIDC and SMTP validators write them.
    pub(crate) fn setting(error: &dyn std::fmt::Display) -> ProblemKind {
        let text = error.to_string();
        let split = match (text.rfind(": "), text.rfind("; ")) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        match split {
            Some(at) => ProblemKind::Setting {
                message: text[..at].to_owned(),
                fix: text[at + 2..].to_owned(),
            },
            None => ProblemKind::Setting {
                message: text,
                fix: "correct this setting".to_owned(),
            },
        }
    }

    /// A suggested fix, in a sentence or two.
    pub fn fix(&self) -> String {
        use ProblemKind as K;
        match self {
            K::Read { .. } => "check the path and the file's permissions".into(),
            K::Syntax { message } => syntax_fix(message).into(),
            K::WrongType { message, .. } => wrong_type_fix(message).into(),
            K::UnknownPolicyKey {
                suggestion: Some(key),
                ..
            } => format!("did you mean `{key}`?"),
            K::UnknownPolicyKey { .. } => "remove it; a rule's keys are domain, domain_regex, \
                                           policy, subject, networks, resources, query and methods"
                .into(),
            K::Missing { key, example, .. } => format!("add `{key}`, e.g. `{example}`"),
            K::Empty { key } => format!("give {key} a value, or remove the key"),
            K::InvalidDuration { .. } => "write a whole number of seconds, or amounts with units \
                                          such as `5m`, `1h30m`, `2 hours`, `1d`, `1w`, `1M` \
                                          (30 days) or `1y`"
                .into(),
            K::OutOfRange { min, max, why, .. } => {
                format!("use a value from {min} to {max}: {why}")
            }
            K::InvalidChoice {
                suggestion: Some(word),
                ..
            } => format!("did you mean `{word}`?"),
            K::InvalidChoice { choices, .. } => format!("use one of: {}", choices.join(", ")),
            K::BypassWithSubject { .. } => "remove `subject` to let everyone through, or use \
                                            `one_factor` or `two_factor` to admit only these \
                                            subjects after login"
                .into(),
            K::BypassWithRegexSubject { .. } => "use `one_factor` or `two_factor`, or remove \
                                                 the named groups from the regex"
                .into(),
            K::Setting { fix, .. } => fix.clone(),
            K::InvalidDomain { reason, .. } | K::InvalidCookieDomain { reason, .. } => {
                reason.fix().into()
            }
            K::BadRegex { message, .. } => regex_fix(message).into(),
            K::UnknownMethod {
                suggestion: Some(method),
                ..
            } => format!("did you mean `{method}`?"),
            K::UnknownMethod { .. } => format!("use HTTP methods: {}", KNOWN_METHODS.join(", ")),
            K::UnknownNetwork { defined, .. } if defined.is_empty() => {
                "write a CIDR (`10.0.0.0/8`) or an address, or define it under \
                 `access_control.networks` with `name:` and `networks:`"
                    .into()
            }
            K::UnknownNetwork { defined, .. } => format!(
                "write a CIDR (`10.0.0.0/8`) or an address, or one of the named networks: {}",
                defined.join(", ")
            ),
            K::InvalidNetwork { .. } => {
                "write a CIDR such as `10.0.0.0/8` or `2001:db8::/32`, or a single address".into()
            }
            K::DuplicateNetwork { .. } => {
                "give each named network its own name, or merge their `networks` lists".into()
            }
            K::InvalidSubject { .. } => "write `user:NAME`, `group:NAME`, `token:NAME` (a \
                                         service token), `email:alice@example.com`, \
                                         `email_domain:example.com` or `provider:NAME` (an \
                                         OIDC provider, `email` or `users`); a list means any \
                                         of them, a list inside the list means all of them"
                .into(),
            K::InvalidQuery { fix, .. } => (*fix).into(),
            K::InvalidUrl { .. } => "write it like `https://auth.example.com` (https, a host, \
                                     an optional port and path, nothing else)"
                .into(),
        }
    }
}

/// The HTTP methods a rule may name (those of the incumbent, including WebDAV's).
pub(crate) const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "TRACE",
    "CONNECT",
    "OPTIONS",
    "COPY",
    "LOCK",
    "MKCOL",
    "MOVE",
    "PROPFIND",
    "PROPPATCH",
    "UNLOCK",
];

/// Why a domain was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainProblem {
    /// `https://app.example.com`.
    #[error("a domain has no scheme")]
    Scheme,
    /// `app.example.com:8443`.
    #[error("a domain has no port")]
    Port,
    /// `example.com/admin`.
    #[error("a domain has no path")]
    Path,
    /// `{user}.example.com` (the incumbent's placeholders).
    #[error("the `{0}` placeholder is not supported")]
    Placeholder(&'static str),
    /// A `*` other than a leading `*.`.
    #[error("`*` may only start a domain, as in `*.example.com`")]
    Wildcard,
    /// Characters a hostname cannot hold.
    #[error("it is not a valid hostname")]
    Invalid,
}

impl DomainProblem {
    fn fix(&self) -> &'static str {
        match self {
            DomainProblem::Scheme => "write only the host, e.g. `app.example.com`",
            DomainProblem::Port => "remove the port: rules apply to a host on every port",
            DomainProblem::Path => "write only the host in `domain`; match paths with `resources`",
            DomainProblem::Placeholder(_) => {
                "use `domain_regex` with a named group instead, e.g. \
                 `'^(?P<User>\\w+)\\.example\\.com$'` (the user's name) or `(?P<Group>\\w+)` (one \
                 of the user's groups), or list the hosts with a `subject` each"
            }
            DomainProblem::Wildcard => {
                "use `*.example.com` for every host below example.com, or `domain_regex` for \
                 other patterns"
            }
            DomainProblem::Invalid => {
                "use letters, digits, `-`, `_` and `.` (or an internationalized name)"
            }
        }
    }
}

/// Advice for the YAML mistakes people actually make.
fn syntax_fix(message: &str) -> &'static str {
    if message.contains("duplicate mapping key") {
        "keep only one of these keys in this mapping"
    } else if message.contains("tabs") {
        "indent with spaces: YAML does not allow tabs in indentation"
    } else if message.contains("unknown escape") {
        "inside double quotes `\\` starts an escape: write a regex in single quotes \
         ('^/api/.*\\.json$')"
    } else if message.contains("unknown anchor") || message.contains("alias") {
        "a value starting with `*` refers to a YAML anchor: quote it, e.g. \
         `domain: \"*.example.com\"`"
    } else {
        "check the indentation and quoting near this position; values containing `: `, `#` \
         or starting with `*` need quotes"
    }
}

/// Advice for a regex the compiler refused.
fn regex_fix(message: &str) -> &'static str {
    if message.contains("look-around") {
        "look-ahead and look-behind are not supported: put a rule matching the exceptions \
         before this one (the first matching rule wins)"
    } else if message.contains("size limit") {
        "simplify the regular expression, or split it over several rules"
    } else if message.contains("backreference") {
        "backreferences are not supported: match the alternatives explicitly"
    } else {
        "fix the regular expression; escape literal dots with `\\.` and quote the value in \
         single quotes"
    }
}

/// Advice for the parser's type messages.
fn wrong_type_fix(message: &str) -> &'static str {
    if message.contains("sequence") || message.contains("list") {
        "use a list: one `- item` per line, or `[a, b]`"
    } else if message.contains("mapping") || message.contains("struct") || message.contains("map") {
        "use a mapping: `key: value` lines indented under this key"
    } else if message.contains("string") {
        "use a single value here (quote it if it contains `:` or `#`)"
    } else if message.contains("integer") || message.contains("invalid") {
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
    position: Option<Position>,
    kind: WarningKind,
}

impl Warning {
    pub(crate) fn new(file: &Path, position: Option<Position>, kind: WarningKind) -> Self {
        Warning {
            file: file.to_path_buf(),
            position,
            kind,
        }
    }

    /// The configuration file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Where in the file, when the warning is about one place.
    pub fn position(&self) -> Option<Position> {
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
        let message = self.kind.to_string();
        write_diagnostic(
            f,
            &self.file,
            self.position,
            Severity::Warning,
            &message,
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
        /// Where, e.g. `session` or `the top level`.
        section: String,
        /// The key that was probably meant.
        suggestion: Option<&'static str>,
    },
    /// A regex without the anchor that would stop it matching more than intended.
    #[error("rule #{rule}: the `{key}` regex `{pattern}` is not anchored: {problem}")]
    UnanchoredRegex {
        /// 1-based rule number.
        rule: usize,
        /// `domain_regex` or `resources`.
        key: &'static str,
        /// The pattern as written.
        pattern: String,
        /// What it would also match, in words.
        problem: String,
        /// The pattern with its anchors added.
        anchored: String,
    },
    /// A rule that can never match because an earlier rule takes all its requests.
    #[error(
        "rule #{rule} can never match: rule #{by} already decides every request it could match"
    )]
    UnreachableRule {
        /// 1-based number of the unreachable rule.
        rule: usize,
        /// 1-based number of the earlier rule.
        by: usize,
    },
    /// A subject kind of the incumbent that Portless has no equivalent for; it never matches.
    #[error("rule #{rule}: the subject `{value}` is not supported by Portless and never matches")]
    UnsupportedSubject {
        /// 1-based rule number.
        rule: usize,
        /// The value as written.
        value: String,
    },
    /// A setting the incumbent has and Portless does not use.
    #[error("`{key}` is not supported by Portless and is ignored")]
    Unsupported {
        /// The key as shown to users.
        key: String,
        /// What to do instead.
        advice: &'static str,
    },
}

impl WarningKind {
    /// A suggested fix for this warning.
    pub fn fix(&self) -> String {
        match self {
            WarningKind::UnknownKey {
                suggestion: Some(key),
                ..
            } => format!("did you mean `{key}`?"),
            WarningKind::UnknownKey { .. } => {
                "remove it, or check the spelling against the documented keys".into()
            }
            WarningKind::UnanchoredRegex { anchored, .. } => {
                format!("anchor it: `{anchored}` (quote it in single quotes in YAML)")
            }
            WarningKind::UnreachableRule { .. } => "remove the later rule, or move it above the \
                                                    earlier one if it is meant to take precedence"
                .into(),
            WarningKind::UnsupportedSubject { .. } => {
                "name a user (`user:NAME`), a group (`group:NAME`) or a service token \
                 (`token:NAME`) instead"
                    .into()
            }
            WarningKind::Unsupported { advice, .. } => (*advice).into(),
        }
    }
}
