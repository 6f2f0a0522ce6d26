//! What Portless's YAML files have in common when they are wrong: positions in the file,
//! unknown-key checks with "did you mean" suggestions, and the
//! `file:line:col: error: … / fix: …` rendering shared by the connector config
//! (`portless-ingress`), the access configuration and the users file (`portless-access`).
//!
//! Each of those crates keeps its own error and warning kinds, its own schema of sections and
//! its own advice; only the mechanics live here, so the three files report problems the same
//! way and a fix to the mechanics reaches all of them. The two crates do not depend on each
//! other, hence this small crate below both (see ADR 0007).
//!
//! Main items: [`Position`], [`Severity`], [`write_diagnostic`], [`write_each`],
//! [`parser_message`], [`plain_parser_message`], [`is_blank`], and in [`keys`] the bare key
//! tree [`keys::Node`], [`keys::serde_fields`] and [`keys::closest`].
//!
//! Layout:
//! * `position` — 1-based line and column, from the YAML parser's locations;
//! * `render` — the compiler-style layout of one diagnostic and of a list of them;
//! * `parser` — the YAML parser's messages in the words of someone editing a file;
//! * `keys` — the key tree, the keys a serde struct reads, and typo suggestions.

pub mod keys;
mod parser;
mod position;
mod render;

pub use parser::{is_blank, parser_message, plain_parser_message};
pub use position::Position;
pub use render::{Severity, write_diagnostic, write_each};
