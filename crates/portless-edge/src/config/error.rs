//! What is wrong with an edge config file: one error per problem, each naming the file, the
//! line and column, the problem and the fix, rendered like the other Portless files
//! (`file:line:col: error: … / fix: …`, see `portless-diagnostics`).

use std::fmt;
use std::path::{Path, PathBuf};

use portless_diagnostics::{Position, Severity, write_diagnostic, write_each};

/// One problem in an edge config file.
#[derive(Debug)]
pub struct EdgeConfigError {
    file: PathBuf,
    position: Option<Position>,
    kind: EdgeConfigErrorKind,
}

/// What the problem is.
#[derive(Debug)]
#[non_exhaustive]
pub enum EdgeConfigErrorKind {
    /// The file could not be read.
    Read {
        /// Why.
        source: std::io::Error,
    },
    /// Not valid YAML.
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// A value of the wrong type (a list where text belongs).
    WrongType {
        /// The key, as messages name it.
        key: String,
        /// The parser's message.
        message: String,
    },
    /// A key the format does not have (a misspelt key would silently do nothing).
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was written (`ports entry #2`, `the top level`).
        section: String,
        /// The valid key it probably was meant to be.
        suggestion: Option<&'static str>,
    },
    /// A value that cannot be used.
    Invalid {
        /// The key, as messages name it (`listen` of ports entry #1).
        key: String,
        /// What is wrong with the value.
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

impl EdgeConfigError {
    /// A problem at `position` in `file`.
    pub fn new(file: &Path, position: Option<Position>, kind: EdgeConfigErrorKind) -> Self {
        Self {
            file: file.to_owned(),
            position,
            kind,
        }
    }

    /// Where in the file the problem is.
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// What the problem is.
    pub fn kind(&self) -> &EdgeConfigErrorKind {
        &self.kind
    }

    fn message(&self) -> String {
        match &self.kind {
            EdgeConfigErrorKind::Read { source } => {
                format!("cannot read the edge config: {source}")
            }
            EdgeConfigErrorKind::Syntax { message } => {
                portless_diagnostics::plain_parser_message(message)
            }
            EdgeConfigErrorKind::WrongType { key, message } => format!(
                "wrong type for {key}: {}",
                portless_diagnostics::plain_parser_message(message)
            ),
            EdgeConfigErrorKind::UnknownKey { key, section, .. } => {
                format!("unknown key `{key}` in {section}")
            }
            EdgeConfigErrorKind::Invalid { key, problem, .. } => format!("{key}: {problem}"),
        }
    }

    fn fix(&self) -> String {
        match &self.kind {
            EdgeConfigErrorKind::Read { .. } => {
                "check the path given with --config (or PORTLESS_EDGE_CONFIG) and its permissions"
                    .to_owned()
            }
            EdgeConfigErrorKind::Syntax { .. } => {
                "fix the YAML syntax at this position (indentation, quotes, `key: value`)"
                    .to_owned()
            }
            EdgeConfigErrorKind::WrongType { .. } => {
                "write the kind of value this key takes (see docs/edge-config.md)".to_owned()
            }
            EdgeConfigErrorKind::UnknownKey { suggestion, .. } => match suggestion {
                Some(valid) => format!("did you mean `{valid}`?"),
                None => "remove it; docs/edge-config.md lists the keys".to_owned(),
            },
            EdgeConfigErrorKind::Invalid { fix, .. } => fix.clone(),
        }
    }
}

impl fmt::Display for EdgeConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_diagnostic(
            f,
            &self.file,
            self.position,
            Severity::Error,
            &self.message(),
            &self.fix(),
        )
    }
}

impl std::error::Error for EdgeConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            EdgeConfigErrorKind::Read { source } => Some(source),
            _ => None,
        }
    }
}

/// Every problem found in one file, in file order.
#[derive(Debug)]
pub struct EdgeConfigErrors(Vec<EdgeConfigError>);

impl EdgeConfigErrors {
    pub(crate) fn new(mut errors: Vec<EdgeConfigError>) -> Self {
        errors.sort_by_key(EdgeConfigError::position);
        Self(errors)
    }

    pub(crate) fn one(error: EdgeConfigError) -> Self {
        Self(vec![error])
    }

    /// The problems.
    pub fn errors(&self) -> &[EdgeConfigError] {
        &self.0
    }
}

impl fmt::Display for EdgeConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_each(f, &self.0)
    }
}

impl std::error::Error for EdgeConfigErrors {}
