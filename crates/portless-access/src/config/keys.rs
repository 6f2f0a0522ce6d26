//! Key-level checks on the YAML tree: unknown or misspelt keys, and finding which key a
//! parser error points into.
//!
//! serde drops unknown keys silently, so the file is also read as a bare tree of keys with
//! positions ([`Node`]). The keys each section reads come from the raw serde structs themselves
//! (`serde_fields`), so this list cannot drift from what is actually read; the keys of the
//! incumbent that Portless accepts and ignores are listed beside them. The tree,
//! `serde_fields` and the typo suggestions are `portless-diagnostics`'s, shared with the
//! connector config; the schema and its walk are this format's.
//!
//! Inside `access_control` an unknown key is an error, not a warning: a misspelt `subject`
//! or `networks` would silently open a rule to more people than written.

use std::path::Path;

use portless_diagnostics::keys::serde_fields;
pub(crate) use portless_diagnostics::keys::{Node, closest};
use serde_saphyr::Spanned;

use super::diagnostic::{Position, Problem, ProblemKind, Warning, WarningKind};
use super::raw::{
    RawAuthBackend, RawCookie, RawEmailPin, RawFile, RawFileBackend, RawRegulation, RawSession,
    RawTotp, RawWebauthn,
};
use crate::email_pin::{RawNotifier, RawSmtp, RawSmtpTls};
use crate::oidc::{ClaimNamesRaw, ProviderConfigRaw};
use crate::policy::raw::{RawAccessControl, RawNetwork, RawQuery, RawRule};

// === the schema ===

/// One mapping of the format.
struct Section {
    /// The keys Portless reads.
    fields: fn() -> &'static [&'static str],
    /// Keys of the incumbent that are accepted and ignored without a word.
    ignored: &'static [&'static str],
    /// Keys holding nested sections that are checked too.
    children: &'static [(&'static str, Child)],
    /// Unknown keys are errors (inside `access_control`) rather than warnings.
    strict: bool,
}

enum Child {
    /// A mapping, named in messages by the label.
    Map(&'static str, &'static Section),
    /// A list of mappings; the label names one item (`rule` → `rule #2`).
    List(&'static str, &'static Section),
    /// A list of lists of mappings (the `query` criterion).
    ListOfLists(&'static str, &'static Section),
}

/// The incumbent's other top-level keys: accepted and ignored, so its whole file loads.
const INCUMBENT_TOP_LEVEL: &[&str] = &[
    "theme",
    "certificates_directory",
    "default_2fa_method",
    "default_redirection_url",
    "jwt_secret",
    "log",
    "telemetry",
    "server",
    "identity_validation",
    "identity_providers",
    "ntp",
    "storage",
    "password_policy",
    "privacy_policy",
    "webauthn",
    "duo_api",
    "definitions",
    "host",
    "port",
    "tls_key",
    "tls_cert",
    "log_level",
    "log_format",
    "log_file_path",
];

static TOP: Section = Section {
    fields: serde_fields::<RawFile>,
    ignored: INCUMBENT_TOP_LEVEL,
    children: &[
        (
            "access_control",
            Child::Map("`access_control`", &ACCESS_CONTROL),
        ),
        ("session", Child::Map("`session`", &SESSION)),
        ("regulation", Child::Map("`regulation`", &REGULATION)),
        ("totp", Child::Map("`totp`", &TOTP)),
        (
            "authentication_backend",
            Child::Map("`authentication_backend`", &AUTH_BACKEND),
        ),
        ("notifier", Child::Map("`notifier`", &NOTIFIER)),
        ("webauthn", Child::Map("`webauthn`", &WEBAUTHN)),
    ],
    strict: false,
};

static ACCESS_CONTROL: Section = Section {
    fields: serde_fields::<RawAccessControl>,
    ignored: &[],
    children: &[
        ("networks", Child::List("named network", &NETWORK)),
        ("rules", Child::List("rule", &RULE)),
    ],
    strict: true,
};

static NETWORK: Section = Section {
    fields: serde_fields::<RawNetwork>,
    ignored: &[],
    children: &[],
    strict: true,
};

static RULE: Section = Section {
    fields: serde_fields::<RawRule>,
    ignored: &[],
    children: &[("query", Child::ListOfLists("query criterion", &QUERY))],
    strict: true,
};

static QUERY: Section = Section {
    fields: serde_fields::<RawQuery>,
    ignored: &[],
    children: &[],
    strict: true,
};

static SESSION: Section = Section {
    fields: serde_fields::<RawSession>,
    ignored: &[
        "secret",
        "name",
        "same_site",
        "redis",
        "disable_remember_me",
    ],
    children: &[("cookies", Child::List("session cookie", &COOKIE))],
    strict: false,
};

static COOKIE: Section = Section {
    fields: serde_fields::<RawCookie>,
    ignored: &["name", "same_site"],
    children: &[],
    strict: false,
};

static REGULATION: Section = Section {
    fields: serde_fields::<RawRegulation>,
    ignored: &["modes"],
    children: &[],
    strict: false,
};

static TOTP: Section = Section {
    fields: serde_fields::<RawTotp>,
    ignored: &[
        "secret_size",
        "allowed_algorithms",
        "allowed_digits",
        "allowed_periods",
        "disable_reuse_security_policy",
    ],
    children: &[],
    strict: false,
};

static AUTH_BACKEND: Section = Section {
    fields: serde_fields::<RawAuthBackend>,
    ignored: &[
        "password_reset",
        "password_change",
        "refresh_interval",
        "disable_reset_password",
    ],
    children: &[
        (
            "file",
            Child::Map("`authentication_backend.file`", &FILE_BACKEND),
        ),
        ("oidc", Child::List("OIDC provider", &OIDC_PROVIDER)),
        (
            "email_pin",
            Child::Map("`authentication_backend.email_pin`", &EMAIL_PIN),
        ),
    ],
    strict: false,
};

static OIDC_PROVIDER: Section = Section {
    fields: serde_fields::<ProviderConfigRaw>,
    ignored: &[],
    children: &[("claims", Child::Map("an OIDC provider's `claims`", &CLAIMS))],
    strict: false,
};

static CLAIMS: Section = Section {
    fields: serde_fields::<ClaimNamesRaw>,
    ignored: &[],
    children: &[],
    strict: false,
};

static EMAIL_PIN: Section = Section {
    fields: serde_fields::<RawEmailPin>,
    ignored: &[],
    children: &[],
    strict: false,
};

static NOTIFIER: Section = Section {
    fields: serde_fields::<RawNotifier>,
    ignored: &["disable_startup_check", "template_path", "filesystem"],
    children: &[("smtp", Child::Map("`notifier.smtp`", &SMTP))],
    strict: false,
};

static SMTP: Section = Section {
    fields: serde_fields::<RawSmtp>,
    ignored: &[],
    children: &[("tls", Child::Map("`notifier.smtp.tls`", &SMTP_TLS))],
    strict: false,
};

static SMTP_TLS: Section = Section {
    fields: serde_fields::<RawSmtpTls>,
    ignored: &[],
    children: &[],
    strict: false,
};

static FILE_BACKEND: Section = Section {
    fields: serde_fields::<RawFileBackend>,
    ignored: &["watch", "search", "password", "extra_attributes"],
    children: &[],
    strict: false,
};

static WEBAUTHN: Section = Section {
    fields: serde_fields::<RawWebauthn>,
    ignored: &[
        "enable_passkey_login",
        "experimental_enable_passkey_uv_two_factors",
        "experimental_enable_passkey_upgrade",
        "attestation_conveyance_preference",
        "selection_criteria",
        "metadata",
        "filtering",
    ],
    children: &[],
    strict: false,
};

// === unknown keys ===

/// Reports every key the format does not know, at any depth: errors inside
/// `access_control`, warnings elsewhere.
pub(crate) fn check_keys(
    tree: &Spanned<Node>,
    file: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Warning>,
) {
    let mut walker = KeyWalker {
        file,
        problems,
        warnings,
    };
    walker.section(&tree.value, &TOP, "the top level");
}

struct KeyWalker<'a> {
    file: &'a Path,
    problems: &'a mut Vec<Problem>,
    warnings: &'a mut Vec<Warning>,
}

impl KeyWalker<'_> {
    fn section(&mut self, node: &Node, section: &'static Section, label: &str) {
        // A section of the wrong type is the typed pass's error to report.
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
        label: &str,
    ) {
        let name = key.value.as_str();
        let position = Position::from_location(key.referenced);
        let known = (section.fields)().contains(&name);
        if !known {
            if !section.ignored.contains(&name) {
                self.unknown(name, position, section, label);
            }
            return;
        }
        let Some((_, child)) = section.children.iter().find(|(k, _)| *k == name) else {
            return;
        };
        match child {
            Child::Map(inner_label, inner) => self.section(value, inner, inner_label),
            Child::List(item, inner) => {
                let Node::List(items) = value else { return };
                for (i, entry) in items.iter().enumerate() {
                    let label = nested(&format!("{item} #{}", i + 1), label);
                    self.section(&entry.value, inner, &label);
                }
            }
            Child::ListOfLists(item, inner) => {
                let Node::List(outer) = value else { return };
                for (i, group) in outer.iter().enumerate() {
                    let Node::List(items) = &group.value else {
                        continue;
                    };
                    for (j, entry) in items.iter().enumerate() {
                        let label = nested(&format!("{item} #{}.{}", i + 1, j + 1), label);
                        self.section(&entry.value, inner, &label);
                    }
                }
            }
        }
    }

    fn unknown(&mut self, name: &str, position: Option<Position>, section: &Section, label: &str) {
        let candidates: Vec<&'static str> = (section.fields)()
            .iter()
            .chain(section.ignored)
            .copied()
            .collect();
        let suggestion = closest(name, &candidates);
        if section.strict {
            let kind = ProblemKind::UnknownPolicyKey {
                key: name.to_owned(),
                section: label.to_owned(),
                suggestion,
            };
            self.problems.push(Problem::new(self.file, position, kind));
        } else {
            let kind = WarningKind::UnknownKey {
                key: name.to_owned(),
                section: label.to_owned(),
                suggestion,
            };
            self.warnings.push(Warning::new(self.file, position, kind));
        }
    }
}

/// `rule #2 of `access_control`` style labels; sections inside the top level keep their
/// own label.
fn nested(own: &str, parent: &str) -> String {
    if parent == "`access_control`" {
        // "rule #2" is how every policy message names a rule.
        own.to_owned()
    } else {
        format!("{own} of {parent}")
    }
}

// === which key is at a position ===

/// The key a parser error at `at` belongs to, named as in messages, e.g. ``"`methods` of
/// rule #2"`` or ``"`session.inactivity`"``: the last key, in file order, starting at or
/// before `at`.
pub(crate) fn key_at(tree: &Spanned<Node>, at: Position) -> Option<String> {
    let mut found = None;
    let mut path = Vec::new();
    last_key_before(&tree.value, at, &mut path, &mut found);
    found
}

/// One step of the path to a key: a mapping key, or a list item (1-based).
#[derive(Clone)]
enum Step {
    Key(String),
    Item(usize),
}

fn last_key_before(node: &Node, at: Position, path: &mut Vec<Step>, found: &mut Option<String>) {
    match node {
        Node::Scalar => {}
        Node::List(items) => {
            for (i, item) in items.iter().enumerate() {
                if Position::from_location(item.referenced).is_some_and(|p| p > at) {
                    break;
                }
                path.push(Step::Item(i + 1));
                last_key_before(&item.value, at, path, found);
                path.pop();
            }
        }
        Node::Map(entries) => {
            for (key, value) in entries {
                if Position::from_location(key.referenced).is_some_and(|p| p > at) {
                    break;
                }
                path.push(Step::Key(key.value.clone()));
                *found = Some(label(path));
                last_key_before(&value.value, at, path, found);
                path.pop();
            }
        }
    }
}

/// ``"`methods` of rule #2"`` inside access control rules, else the dotted path with list
/// items numbered from 1 (``"`session.cookies#1.domain`"``).
fn label(path: &[Step]) -> String {
    let is = |i: usize, name: &str| matches!(path.get(i), Some(Step::Key(k)) if k == name);
    if is(0, "access_control")
        && is(1, "rules")
        && let Some(Step::Item(n)) = path.get(2)
    {
        let rest = dotted(&path[3..]);
        return if rest.is_empty() {
            format!("rule #{n}")
        } else {
            format!("`{rest}` of rule #{n}")
        };
    }
    format!("`{}`", dotted(path))
}

fn dotted(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Item(n) => out.push_str(&format!("#{n}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(src: &str) -> Spanned<Node> {
        serde_saphyr::from_str(src).unwrap()
    }

    fn check(src: &str) -> (Vec<String>, Vec<String>) {
        let (mut p, mut w) = (Vec::new(), Vec::new());
        check_keys(&tree(src), Path::new("c.yml"), &mut p, &mut w);
        (
            p.iter().map(ToString::to_string).collect(),
            w.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn unknown_policy_keys_are_errors_with_suggestions() {
        let (problems, warnings) = check(
            "access_control:\n  rules:\n    - domain: a.example.com\n      subjet: user:bob\n      policy: one_factor\n",
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            problems,
            ["c.yml:4:7: error: unknown key `subjet` in rule #1\n  fix: did you mean `subject`?"]
        );
    }

    #[test]
    fn incumbent_keys_are_ignored_and_typos_elsewhere_warn() {
        let (problems, warnings) = check(
            "server:\n  address: tcp://0.0.0.0:9091\njwt_secret: x\nsession:\n  secret: s\n  inactivty: 5m\n  cookies:\n    - domain: example.com\n      authelia_url: https://auth.example.com\n      nmae: x\nregulaton: {}\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(warnings[0].contains("`inactivty` in `session`"));
        assert!(warnings[0].ends_with("did you mean `inactivity`?"));
        assert!(warnings[1].contains("`nmae` in session cookie #1 of `session`"));
        assert!(warnings[2].contains("`regulaton` in the top level"));
        assert!(warnings[2].ends_with("did you mean `regulation`?"));
    }

    #[test]
    fn query_criteria_keys_are_checked() {
        let (problems, _) = check(
            "access_control:\n  rules:\n    - domain: a.example.com\n      policy: bypass\n      query:\n        - - operator: present\n            kye: debug\n",
        );
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("`kye` in query criterion #1.1 of rule #1"));
    }

    #[test]
    fn key_at_names_rule_keys() {
        let t = tree("access_control:\n  rules:\n    - domain: a\n      methods: {x: 1}\n");
        assert_eq!(
            key_at(
                &t,
                Position {
                    line: 4,
                    column: 16
                }
            )
            .as_deref(),
            Some("`methods` of rule #1")
        );
        let t = tree("session:\n  cookies:\n    - domain: [a]\n");
        assert_eq!(
            key_at(
                &t,
                Position {
                    line: 3,
                    column: 15
                }
            )
            .as_deref(),
            Some("`session.cookies#1.domain`")
        );
    }
}
