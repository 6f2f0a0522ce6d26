//! Where in a YAML file a diagnostic points: a 1-based line and column, converted from the
//! parser's locations (which use line 0 for "unknown").

use std::fmt;

use serde_saphyr::Location;

/// A 1-based line and column in a YAML file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, starting at 1.
    pub line: u32,
    /// Column (in characters), starting at 1.
    pub column: u32,
}

impl Position {
    /// Converts a parser location; `None` for the parser's "unknown" location (line 0).
    pub fn from_location(location: Location) -> Option<Position> {
        let line = u32::try_from(location.line()).ok()?;
        let column = u32::try_from(location.column()).ok()?;
        (line > 0).then_some(Position { line, column })
    }

    /// Where a parser error points, if it points anywhere.
    pub fn of_error(error: &serde_saphyr::Error) -> Option<Position> {
        error.location().and_then(Position::from_location)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn displays_as_line_colon_column() {
        let p = Position {
            line: 12,
            column: 7,
        };
        assert_eq!(p.to_string(), "12:7");
    }

    #[test]
    fn parser_errors_carry_their_position() {
        let e = serde_saphyr::from_str::<Vec<u32>>("- 1\n- x\n").unwrap_err();
        assert_eq!(Position::of_error(&e).map(|p| p.line), Some(2));
    }
}
