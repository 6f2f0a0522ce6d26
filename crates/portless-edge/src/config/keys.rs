//! Unknown keys, at every depth, are errors: the edge config decides what is exposed on the
//! internet, and a misspelt `allow` would silently open a port to everyone.
//!
//! The file is read once more as a bare key tree (`portless-diagnostics`); the keys each
//! section reads come from its raw serde struct, so the check cannot drift from the parse.

use std::path::Path;

use portless_diagnostics::Position;
use portless_diagnostics::keys::{Node, closest};
use serde_saphyr::Spanned;

use super::error::{EdgeConfigError, EdgeConfigErrorKind};

/// One mapping of the format.
pub(crate) struct Section {
    /// The keys it reads (from its raw serde struct).
    pub(crate) fields: fn() -> &'static [&'static str],
    /// Keys holding nested mappings that are checked too.
    pub(crate) children: &'static [(&'static str, Child)],
}

/// A nested section.
pub(crate) enum Child {
    /// A mapping, named `label` in messages.
    Map(&'static str, &'static Section),
    /// A list of mappings; `label` names one item (`ports entry` → `ports entry #2`).
    List(&'static str, &'static Section),
}

/// An error for every key `section` (and its children) does not read.
pub(crate) fn check(
    tree: &Spanned<Node>,
    section: &'static Section,
    file: &Path,
) -> Vec<EdgeConfigError> {
    let mut errors = Vec::new();
    walk(&tree.value, section, None, file, &mut errors);
    errors
}

fn walk(
    node: &Node,
    section: &'static Section,
    label: Option<&str>,
    file: &Path,
    errors: &mut Vec<EdgeConfigError>,
) {
    // A section of the wrong type is the typed pass's error to report.
    let Node::Map(entries) = node else { return };
    let fields = (section.fields)();
    for (key, value) in entries {
        let name = key.value.as_str();
        if !fields.contains(&name) {
            let kind = EdgeConfigErrorKind::UnknownKey {
                key: name.to_owned(),
                section: label.unwrap_or("the top level").to_owned(),
                suggestion: closest(name, fields),
            };
            errors.push(EdgeConfigError::new(
                file,
                Position::from_location(key.referenced),
                kind,
            ));
            continue;
        }
        match section.children.iter().find(|(k, _)| *k == name) {
            Some((_, Child::Map(own, inner))) => {
                let label = nested(own, label);
                walk(&value.value, inner, Some(&label), file, errors);
            }
            Some((_, Child::List(item, inner))) => {
                let Node::List(items) = &value.value else {
                    continue;
                };
                for (i, entry) in items.iter().enumerate() {
                    let label = nested(&format!("{item} #{}", i + 1), label);
                    walk(&entry.value, inner, Some(&label), file, errors);
                }
            }
            None => {}
        }
    }
}

fn nested(own: &str, parent: Option<&str>) -> String {
    match parent {
        None => own.to_owned(),
        Some(parent) => format!("{own} of {parent}"),
    }
}

/// The key a parser error at `at` belongs to (``"`listen` of ports entry #2"``): the last
/// key, in file order, that starts at or before `at`.
pub(crate) fn key_at(tree: &Spanned<Node>, at: Position) -> Option<String> {
    let mut found: Option<(Position, String)> = None;
    last_before(&tree.value, at, None, &mut found);
    found.map(|(_, key)| key)
}

fn last_before(
    node: &Node,
    at: Position,
    parent: Option<&str>,
    found: &mut Option<(Position, String)>,
) {
    match node {
        Node::Scalar => {}
        Node::List(items) => {
            for (i, item) in items.iter().enumerate() {
                let label = match parent {
                    Some(parent) => format!("item #{} of {parent}", i + 1),
                    None => format!("item #{}", i + 1),
                };
                last_before(&item.value, at, Some(&label), found);
            }
        }
        Node::Map(entries) => {
            for (key, value) in entries {
                let Some(position) = Position::from_location(key.referenced) else {
                    continue;
                };
                if position > at {
                    continue;
                }
                let label = nested(&format!("`{}`", key.value), parent);
                if found.as_ref().is_none_or(|(p, _)| *p <= position) {
                    *found = Some((position, label.clone()));
                }
                last_before(&value.value, at, Some(&label), found);
            }
        }
    }
}
