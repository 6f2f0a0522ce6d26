//! Key-level checks on the YAML tree: unknown or misspelled keys (warnings with the closest
//! valid key), deprecated keys, and finding which key a parser error points into.
//!
//! serde drops unknown keys silently, so the file is read a second time as a bare tree of
//! keys with positions ([`Node`]). The valid keys of each section are taken from the raw serde
//! structs themselves (`serde_fields`), so this list cannot drift from what is actually read.
//! The tree, `serde_fields` and the typo suggestions are `portless-diagnostics`'s, shared with
//! the access configuration; the schema and its walk are this format's.

use std::path::Path;

pub(crate) use portless_diagnostics::keys::Node;
use portless_diagnostics::keys::{closest, serde_fields};
use serde_saphyr::Spanned;

use crate::diagnostic::{Position, Suggestion, Warning, WarningKind};
use crate::raw::{
    RawAccess, RawConfig, RawHealthCheck, RawIpRule, RawOriginRequest, RawRule, RawWarpRouting,
};

// === the schema ===

/// One mapping in the format: its keys, and which of them hold nested sections.
struct Section {
    fields: fn() -> &'static [&'static str],
    children: &'static [(&'static str, Child)],
    /// Keys accepted for compatibility, with the advice shown when they are used.
    deprecated: &'static [(&'static str, &'static str)],
    /// Keys of another section that people often write one level too high.
    adopts: Option<(&'static str, &'static Section)>,
}

enum Child {
    Map(&'static Section),
    /// A list of mappings; the name is how one item is called in messages.
    List(&'static str, &'static Section),
}

static TOP: Section = Section {
    fields: serde_fields::<RawConfig>,
    children: &[
        ("ingress", Child::List("ingress rule", &RULE)),
        ("originRequest", Child::Map(&ORIGIN_REQUEST)),
        ("warp-routing", Child::Map(&WARP_ROUTING)),
    ],
    deprecated: &[],
    adopts: Some(("originRequest", &ORIGIN_REQUEST)),
};

static RULE: Section = Section {
    fields: serde_fields::<RawRule>,
    children: &[("originRequest", Child::Map(&ORIGIN_REQUEST))],
    deprecated: &[],
    adopts: Some(("originRequest", &ORIGIN_REQUEST)),
};

const NO_LOCAL_PROXY: &str = "remove it: the connector no longer opens a local proxy listener; \
                              use `service: socks-proxy` or `bastion` instead";

static ORIGIN_REQUEST: Section = Section {
    fields: serde_fields::<RawOriginRequest>,
    children: &[
        ("ipRules", Child::List("`ipRules` entry", &IP_RULE)),
        ("access", Child::Map(&ACCESS)),
        ("healthCheck", Child::Map(&HEALTH_CHECK)),
    ],
    deprecated: &[
        ("proxyAddress", NO_LOCAL_PROXY),
        ("proxyPort", NO_LOCAL_PROXY),
    ],
    adopts: None,
};

static IP_RULE: Section = Section {
    fields: serde_fields::<RawIpRule>,
    children: &[],
    deprecated: &[],
    adopts: None,
};

static HEALTH_CHECK: Section = Section {
    fields: serde_fields::<RawHealthCheck>,
    children: &[],
    deprecated: &[],
    adopts: None,
};

static ACCESS: Section = Section {
    fields: serde_fields::<RawAccess>,
    children: &[],
    deprecated: &[],
    adopts: None,
};

static WARP_ROUTING: Section = Section {
    fields: serde_fields::<RawWarpRouting>,
    children: &[],
    deprecated: &[],
    adopts: None,
};

// === unknown keys ===

/// Warns about every key the format does not know, at any depth, and every deprecated key.
pub(crate) fn check_keys(tree: &Spanned<Node>, file: &Path, warnings: &mut Vec<Warning>) {
    let mut walker = KeyWalker { file, warnings };
    walker.section(&tree.value, &TOP, None);
}

struct KeyWalker<'a> {
    file: &'a Path,
    warnings: &'a mut Vec<Warning>,
}

impl KeyWalker<'_> {
    /// `label` is how this section is named in messages; `None` for the top level.
    fn section(&mut self, node: &Node, section: &'static Section, label: Option<&str>) {
        // A section of the wrong type (a list where a mapping belongs) is the typed pass's
        // error to report; nothing to check here.
        let Node::Map(entries) = node else { return };
        for (key, value) in entries {
            self.entry(key, &value.value, section, label);
        }
    }

    fn entry(
        &mut self,
        key: &Spanned<String>,
        value: &Node,
        section: &'static Section,
        label: Option<&str>,
    ) {
        let name = key.value.as_str();
        let Some(position) = Position::from_location(key.referenced) else {
            return;
        };
        if let Some((_, advice)) = section.deprecated.iter().find(|(k, _)| *k == name) {
            let kind = WarningKind::Deprecated {
                key: name.to_owned(),
                advice,
            };
            self.warnings.push(Warning::new(self.file, position, kind));
            return;
        }
        if !(section.fields)().contains(&name) {
            let kind = WarningKind::UnknownKey {
                key: name.to_owned(),
                section: label.unwrap_or("the top level").to_owned(),
                suggestion: suggest(name, section),
            };
            self.warnings.push(Warning::new(self.file, position, kind));
            return;
        }
        let Some((_, child)) = section.children.iter().find(|(k, _)| *k == name) else {
            return;
        };
        match child {
            Child::Map(inner) => {
                let label = nested_label(&format!("`{name}`"), label);
                self.section(value, inner, Some(&label));
            }
            Child::List(item, inner) => {
                let Node::List(items) = value else { return };
                for (i, entry) in items.iter().enumerate() {
                    let label = nested_label(&format!("{item} #{}", i + 1), label);
                    self.section(&entry.value, inner, Some(&label));
                }
            }
        }
    }
}

fn nested_label(own: &str, parent: Option<&str>) -> String {
    match parent {
        None => own.to_owned(),
        Some(parent) => format!("{own} of {parent}"),
    }
}

/// The valid key `unknown` was most likely meant to be.
fn suggest(unknown: &str, section: &Section) -> Option<Suggestion> {
    if let Some(close) = closest(unknown, (section.fields)()) {
        return Some(Suggestion::Rename(close));
    }
    let (parent, adopted) = section.adopts?;
    (adopted.fields)()
        .contains(&unknown)
        .then_some(Suggestion::MoveUnder(parent))
}

// === which key is at a position ===

/// The key a parser error at `at` belongs to, named as in messages
/// (e.g. ``"`originRequest.noTLSVerify` of rule #2"``): the last key, in file order, that
/// starts at or before `at`.
pub(crate) fn key_at(tree: &Spanned<Node>, at: Position) -> Option<String> {
    let mut found = None;
    last_key_before(&tree.value, at, &mut Vec::new(), None, &mut found);
    found
}

fn last_key_before(
    node: &Node,
    at: Position,
    path: &mut Vec<String>,
    rule: Option<usize>,
    found: &mut Option<String>,
) {
    match node {
        Node::Scalar => {}
        Node::List(items) => {
            for (i, item) in items.iter().enumerate() {
                if Position::from_location(item.referenced).is_some_and(|p| p > at) {
                    break;
                }
                // Items of the top-level `ingress` list are rules; other list items are
                // numbered in the path.
                if path.len() == 1 && path[0] == "ingress" && rule.is_none() {
                    *found = Some(format!("rule #{}", i + 1));
                    last_key_before(&item.value, at, &mut Vec::new(), Some(i + 1), found);
                } else {
                    path.push(format!("#{}", i + 1));
                    last_key_before(&item.value, at, path, rule, found);
                    path.pop();
                }
            }
        }
        Node::Map(entries) => {
            for (key, value) in entries {
                if Position::from_location(key.referenced).is_some_and(|p| p > at) {
                    break;
                }
                path.push(key.value.clone());
                *found = Some(key_label(&path.join("."), rule));
                last_key_before(&value.value, at, path, rule, found);
                path.pop();
            }
        }
    }
}

/// How a key is named in messages: ``"`grace-period`"`` at the top level,
/// ``"`originRequest.connectTimeout` of rule #3"`` inside a rule.
pub(crate) fn key_label(path: &str, rule: Option<usize>) -> String {
    match rule {
        None => format!("`{path}`"),
        Some(n) => format!("`{path}` of rule #{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(src: &str) -> Spanned<Node> {
        serde_saphyr::from_str(src).unwrap()
    }

    fn warnings(src: &str) -> Vec<Warning> {
        let mut out = Vec::new();
        check_keys(&tree(src), Path::new("c.yml"), &mut out);
        out
    }

    #[test]
    fn valid_keys_come_from_the_serde_structs_with_aliases() {
        let top = serde_fields::<RawConfig>();
        assert!(top.contains(&"originRequest"));
        assert!(top.contains(&"credentials-file"));
        assert!(top.contains(&"cred-file"));
        assert!(serde_fields::<RawOriginRequest>().contains(&"matchSNItoHost"));
    }

    #[test]
    fn typos_of_rule_keys_are_suggested() {
        assert_eq!(
            closest("orginRequest", serde_fields::<RawRule>()),
            Some("originRequest")
        );
        assert_eq!(
            closest("origin_request", serde_fields::<RawRule>()),
            Some("originRequest")
        );
        assert_eq!(closest("banana", serde_fields::<RawRule>()), None);
    }

    #[test]
    fn unknown_keys_at_every_depth_are_named_with_position_and_suggestion() {
        let found = warnings(
            "tunnel: x\ningres: []\ningress:\n  - hostname: a\n    servce: http://a\n    \
             originRequest:\n      noTlsVerify: true\n      access: {requird: true}\n",
        );
        let shown: Vec<String> = found.iter().map(|w| w.to_string()).collect();
        assert_eq!(found.len(), 4, "{shown:#?}");
        assert!(shown[0].starts_with("c.yml:2:1: warning: unknown key `ingres` in the top level"));
        assert!(shown[0].ends_with("did you mean `ingress`?"));
        assert!(
            shown[1].starts_with("c.yml:5:5: warning: unknown key `servce` in ingress rule #1")
        );
        assert!(shown[2].contains("`noTlsVerify` in `originRequest` of ingress rule #1"));
        assert!(shown[2].ends_with("did you mean `noTLSVerify`?"));
        assert!(shown[3].contains("`requird` in `access` of `originRequest` of ingress rule #1"));
    }

    #[test]
    fn origin_options_one_level_too_high_are_moved() {
        let found = warnings("ingress:\n  - service: http://a\n    connectTimeout: 5s\n");
        assert_eq!(
            found[0].fix(),
            "`connectTimeout` is an option of `originRequest`: move it under `originRequest:`"
        );
    }

    #[test]
    fn deprecated_proxy_keys_warn() {
        let found = warnings("originRequest:\n  proxyAddress: 127.0.0.1\n  proxyPort: 8080\n");
        assert_eq!(found.len(), 2);
        assert!(
            found[0]
                .to_string()
                .contains("`proxyAddress` is deprecated and ignored")
        );
    }

    #[test]
    fn key_at_names_the_key_a_position_falls_in() {
        let t = tree(
            "tunnel: x\ningress:\n  - service: http://a\n    originRequest:\n      noTLSVerify: maybe\n",
        );
        let at = Position {
            line: 5,
            column: 20,
        };
        assert_eq!(
            key_at(&t, at).as_deref(),
            Some("`originRequest.noTLSVerify` of rule #1")
        );
        assert_eq!(
            key_at(&t, Position { line: 1, column: 9 }).as_deref(),
            Some("`tunnel`")
        );
    }
}
