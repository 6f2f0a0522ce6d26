//! `access_control:` exactly as serde reads it, before validation.
//!
//! The incumbent lets most criteria be one value or a list (`domain: a.example.com` or
//! `domain: [a, b]`) and `subject` be a value, a list (any of) or a list of lists (any of
//! all of). Those shapes are read by small visitors rather than `#[serde(untagged)]`, so a
//! wrong type keeps a precise message, and every item keeps its position.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// A YAML scalar as text, and where it was written.
pub(crate) type Text = Spanned<String>;

/// `access_control:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAccessControl {
    pub default_policy: Option<Text>,
    pub networks: Vec<Spanned<RawNetwork>>,
    pub rules: Vec<Spanned<RawRule>>,
}

/// One entry of `access_control.networks`: a name for a list of networks.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawNetwork {
    pub name: Option<Text>,
    pub networks: Option<Spanned<OneOrMany>>,
}

/// One entry of `access_control.rules`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawRule {
    pub domain: Option<Spanned<OneOrMany>>,
    pub domain_regex: Option<Spanned<OneOrMany>>,
    pub policy: Option<Text>,
    pub subject: Option<Spanned<RawSubjects>>,
    pub networks: Option<Spanned<OneOrMany>>,
    pub resources: Option<Spanned<OneOrMany>>,
    pub query: Option<Spanned<Vec<Vec<Spanned<RawQuery>>>>>,
    pub methods: Option<Spanned<OneOrMany>>,
}

/// One criterion of a rule's `query`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawQuery {
    pub operator: Option<Text>,
    pub key: Option<Text>,
    pub value: Option<Text>,
}

// === OneOrMany ===

/// A criterion written as one value or as a list of values.
#[derive(Debug)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<Text>),
}

/// The values of `list`, each with its position (a single value takes the key's position).
pub(crate) fn items(list: &Spanned<OneOrMany>) -> Vec<Text> {
    match &list.value {
        OneOrMany::One(one) => vec![Spanned::new(one.clone(), list.referenced, list.defined)],
        OneOrMany::Many(many) => many.clone(),
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

struct OneOrManyVisitor;

impl<'de> Visitor<'de> for OneOrManyVisitor {
    type Value = OneOrMany;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or a list of values")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
        Ok(OneOrMany::One(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<OneOrMany, E> {
        Ok(OneOrMany::One(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OneOrMany, E> {
        Ok(OneOrMany::One(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OneOrMany, E> {
        Ok(OneOrMany::One(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OneOrMany, E> {
        Ok(OneOrMany::One(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<Text>()? {
            out.push(item);
        }
        Ok(OneOrMany::Many(out))
    }
}

// === RawSubjects ===

/// `subject:` as written: any of the groups; each group is all of its subjects.
#[derive(Debug)]
pub(crate) struct RawSubjects(pub Vec<Spanned<SubjectGroup>>);

/// One AND group of subjects.
#[derive(Debug)]
pub(crate) struct SubjectGroup(pub Vec<Text>);

impl<'de> Deserialize<'de> for RawSubjects {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SubjectsVisitor)
    }
}

struct SubjectsVisitor;

impl<'de> Visitor<'de> for SubjectsVisitor {
    type Value = RawSubjects;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a subject such as `group:admins`, a list of them, or a list of lists")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSubjects, E> {
        // The position of a lone subject is the key's; the caller fills it in.
        let one = Spanned::new(v.to_owned(), Location::UNKNOWN, Location::UNKNOWN);
        let group = Spanned::new(
            SubjectGroup(vec![one]),
            Location::UNKNOWN,
            Location::UNKNOWN,
        );
        Ok(RawSubjects(vec![group]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawSubjects, A::Error> {
        let mut groups = Vec::new();
        while let Some(group) = seq.next_element::<Spanned<SubjectGroup>>()? {
            groups.push(group);
        }
        Ok(RawSubjects(groups))
    }
}

impl<'de> Deserialize<'de> for SubjectGroup {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(GroupVisitor)
    }
}

struct GroupVisitor;

impl<'de> Visitor<'de> for GroupVisitor {
    type Value = SubjectGroup;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a subject such as `user:alice`, or a list of subjects that must all match")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<SubjectGroup, E> {
        let one = Spanned::new(v.to_owned(), Location::UNKNOWN, Location::UNKNOWN);
        Ok(SubjectGroup(vec![one]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SubjectGroup, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<Text>()? {
            out.push(item);
        }
        Ok(SubjectGroup(out))
    }
}
