//! The layout of a diagnostic: `file:line:col: error: message` then an indented `fix:` line,
//! the layout compilers use, so editors and terminals turn the location into a link.

use std::fmt;
use std::path::Path;

use crate::Position;

/// How serious a diagnostic is, as its line says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The file is refused.
    Error,
    /// The file is accepted, but something in it is probably not what was meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Writes `file:line:col: severity: message` and, on the next line, `  fix: fix`. Without a
/// position only the file is named; continuation lines of the message (a regex error's caret
/// diagram) are indented under it.
pub fn write_diagnostic(
    f: &mut fmt::Formatter<'_>,
    file: &Path,
    position: Option<Position>,
    severity: Severity,
    message: &str,
    fix: &str,
) -> fmt::Result {
    write!(f, "{}", file.display())?;
    if let Some(position) = position {
        write!(f, ":{position}")?;
    }
    let message = message.replace('\n', "\n    ");
    write!(f, ": {severity}: {message}\n  fix: {fix}")
}

/// Writes each diagnostic in turn, one after the other on their own lines.
pub fn write_each<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    diagnostics: impl IntoIterator<Item = T>,
) -> fmt::Result {
    for (i, diagnostic) in diagnostics.into_iter().enumerate() {
        if i > 0 {
            writeln!(f)?;
        }
        write!(f, "{diagnostic}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Shown<'a>(Option<Position>, Severity, &'a str);

    impl fmt::Display for Shown<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_diagnostic(f, Path::new("c.yml"), self.0, self.1, self.2, "do this")
        }
    }

    struct Both;

    impl fmt::Display for Both {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_each(
                f,
                [
                    Shown(None, Severity::Error, "one"),
                    Shown(None, Severity::Warning, "two"),
                ],
            )
        }
    }

    #[test]
    fn names_file_line_column_severity_and_fix() {
        let at = Some(Position { line: 3, column: 5 });
        assert_eq!(
            Shown(at, Severity::Warning, "odd").to_string(),
            "c.yml:3:5: warning: odd\n  fix: do this"
        );
    }

    #[test]
    fn without_position_names_the_file_and_indents_continuation_lines() {
        assert_eq!(
            Shown(None, Severity::Error, "bad regex\n^ here").to_string(),
            "c.yml: error: bad regex\n    ^ here\n  fix: do this"
        );
    }

    #[test]
    fn lists_put_each_diagnostic_on_its_own_lines() {
        assert_eq!(
            Both.to_string(),
            "c.yml: error: one\n  fix: do this\nc.yml: warning: two\n  fix: do this"
        );
    }
}
