//! The `access_control` policy engine: who may reach which host, path and method.
//!
//! The format is the one self-hosters already write for the widely used SSO portal (see
//! `docs/` and the compatibility reference): a `default_policy`, optional named `networks`,
//! and ordered `rules` whose criteria (`domain`, `domain_regex`, `resources`, `query`,
//! `methods`, `networks`, `subject`) must all match for the rule's `policy` to decide. The
//! first matching rule decides; when none matches, `default_policy` does.
//!
//! Rules are compiled once, when the file is loaded (see [`crate::config::AccessConfig`]):
//! domains are canonicalized, regexes compiled with a size limit, networks parsed, and
//! mistakes refused with a position and a fix. [`AccessControl::evaluate`] then judges each
//! canonical [`AccessRequest`] without allocating (except for the rare `domain_regex` with
//! `User`/`Group` groups, which captures, and percent-encoded query keys, which decode).
//!
//! Two deliberate differences from the incumbent: `resources` see the canonical *path* only
//! (the incumbent matched path and query, which let `?x=/public` satisfy a public rule), and
//! service tokens are admitted only by rules that name them.
//!
//! Layout: `raw` (serde shapes), `compile` (validation into [`AccessControl`]), `rule`
//! (compiled criteria and matching), `explain` (why a decision was taken, for
//! `portless policy test`).

use std::fmt;
use std::path::PathBuf;

use crate::config::Position;
use crate::identity::{AccessRequest, AuthLevel};

pub(crate) mod compile;
mod explain;
mod methods;
pub(crate) mod raw;
mod rule;
#[cfg(test)]
mod tests;

pub use explain::{Explanation, SkippedRule};
pub use methods::LoginMethods;

use rule::{Outcome, Rule};

// === Policy ===

/// What a rule (or the default) does with the requests it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Refuse, whoever asks.
    Deny,
    /// Let through without login (the origin sees no identity).
    Bypass,
    /// Require a logged-in user; a one- or two-factor session both qualify.
    OneFactor,
    /// Require a user session that completed a second factor.
    TwoFactor,
}

impl Policy {
    /// The policy's name in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Deny => "deny",
            Policy::Bypass => "bypass",
            Policy::OneFactor => "one_factor",
            Policy::TwoFactor => "two_factor",
        }
    }

    /// The names accepted in the configuration file.
    pub(crate) const NAMES: &'static [&'static str] =
        &["deny", "bypass", "one_factor", "two_factor"];

    pub(crate) fn from_name(name: &str) -> Option<Policy> {
        match name {
            "deny" => Some(Policy::Deny),
            "bypass" => Some(Policy::Bypass),
            "one_factor" => Some(Policy::OneFactor),
            "two_factor" => Some(Policy::TwoFactor),
            _ => None,
        }
    }

    /// The login a user must complete to satisfy this policy (one factor for all but
    /// `two_factor`).
    fn login_level(self) -> AuthLevel {
        match self {
            Policy::TwoFactor => AuthLevel::TwoFactor,
            _ => AuthLevel::OneFactor,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === Decision ===

/// Which part of the policy took a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleRef {
    /// A rule, by 0-based index in `access_control.rules` (messages say `rule #index+1`).
    Rule(usize),
    /// No rule matched: `default_policy` decided.
    Default,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleRef::Rule(index) => write!(f, "rule #{}", index + 1),
            RuleRef::Default => f.write_str("default_policy"),
        }
    }
}

/// What the edge must do with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Let through without identity (`bypass`).
    Bypass {
        /// The deciding rule.
        rule: RuleRef,
    },
    /// Let through with the request's identity.
    Allow {
        /// The deciding rule.
        rule: RuleRef,
    },
    /// No identity: send the user to log in, to at least this level.
    LoginRequired {
        /// The level the login must reach.
        level: AuthLevel,
        /// The deciding rule.
        rule: RuleRef,
    },
    /// A one-factor session on a `two_factor` rule: ask for the second factor.
    SecondFactorRequired {
        /// The deciding rule.
        rule: RuleRef,
    },
    /// Refuse (403 for an identified user or a service token).
    Deny {
        /// The deciding rule.
        rule: RuleRef,
    },
}

impl Decision {
    /// The rule (or default) that decided.
    pub fn rule(&self) -> RuleRef {
        match *self {
            Decision::Bypass { rule }
            | Decision::Allow { rule }
            | Decision::LoginRequired { rule, .. }
            | Decision::SecondFactorRequired { rule }
            | Decision::Deny { rule } => rule,
        }
    }

    /// Whether the request may go on to the origin (`Bypass` or `Allow`).
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Bypass { .. } | Decision::Allow { .. })
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Bypass { .. } => f.write_str("bypass (no login needed)"),
            Decision::Allow { .. } => f.write_str("allow"),
            Decision::LoginRequired {
                level: AuthLevel::OneFactor,
                ..
            } => f.write_str("login required (one factor)"),
            Decision::LoginRequired {
                level: AuthLevel::TwoFactor,
                ..
            } => f.write_str("login required (two factors)"),
            Decision::SecondFactorRequired { .. } => f.write_str("second factor required"),
            Decision::Deny { .. } => f.write_str("deny"),
        }
    }
}

// === AccessControl ===

/// The compiled `access_control` section: judges requests.
#[derive(Debug)]
pub struct AccessControl {
    default_policy: Policy,
    /// Where `default_policy` was written, if it was.
    default_position: Option<Position>,
    rules: Vec<Rule>,
    /// The file the rules came from, for explanations.
    file: PathBuf,
}

impl AccessControl {
    /// The policy applied when no rule matches.
    pub fn default_policy(&self) -> Policy {
        self.default_policy
    }

    /// How many rules there are.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The policy of the rule at 0-based `index`, if there is one.
    pub fn rule_policy(&self, index: usize) -> Option<Policy> {
        self.rules.get(index).map(|rule| rule.policy)
    }

    /// Where the rule at 0-based `index` starts in the configuration file.
    pub fn rule_position(&self, index: usize) -> Option<Position> {
        self.rules.get(index).and_then(|rule| rule.position)
    }

    /// The canonical `domain` entries of every rule (`*.example.com` kept as written), in
    /// rule order, without repeats. `domain_regex` rules are not represented.
    pub fn domains_mentioned(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for rule in &self.rules {
            for domain in &rule.domains {
                let shown = domain.to_string();
                if !out.contains(&shown) {
                    out.push(shown);
                }
            }
        }
        out
    }

    /// Judges a canonical request: the first rule that applies decides, else the default.
    pub fn evaluate(&self, request: &AccessRequest<'_>) -> Decision {
        for (index, rule) in self.rules.iter().enumerate() {
            if let Outcome::Decide(decision) = rule.check(index, request) {
                return decision;
            }
        }
        self.default_decision(request)
    }

    /// What `default_policy` decides for this request's identity.
    fn default_decision(&self, request: &AccessRequest<'_>) -> Decision {
        rule::apply_policy(
            self.default_policy,
            RuleRef::Default,
            request.identity,
            false,
        )
    }
}
