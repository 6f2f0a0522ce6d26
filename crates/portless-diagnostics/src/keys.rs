//! What unknown-key checks need, whatever the format: the file read as a bare tree of keys
//! with positions, the keys a serde struct actually reads, and the valid key a typo was most
//! likely meant to be.
//!
//! serde drops unknown keys silently, so a config file is read a second time as a [`Node`]
//! tree; each format walks it against its own schema of sections, whose valid keys come from
//! the raw serde structs themselves ([`serde_fields`]) so the check cannot drift from what is
//! actually read.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

// === the key tree ===

/// A YAML node reduced to what key checks need: mappings keep their keys and positions,
/// lists keep their items, scalars are opaque.
#[derive(Debug)]
pub enum Node {
    /// Any single value.
    Scalar,
    /// A list, with each item's position.
    List(Vec<Spanned<Node>>),
    /// A mapping: each key (with its position) and its value, in file order.
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }
}

// === valid keys, from the serde structs ===

/// The key names (with aliases) serde's derive accepts for `T`.
///
/// The derive passes its field list to `Deserializer::deserialize_struct`; this deserializer
/// only records that list and stops.
pub fn serde_fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

struct FieldNames<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

// === suggestions ===

/// The candidate nearest to `key` by edit distance, ignoring case and `-`/`_`, if it is near
/// enough to be a typo rather than a different word (one edit for up to 4 characters, two
/// up to 10, three beyond). Of equally near candidates, the first wins.
pub fn closest(key: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let wanted = fold(key);
    let limit = match wanted.chars().count() {
        0..=4 => 1,
        5..=10 => 2,
        _ => 3,
    };
    candidates
        .iter()
        .map(|c| (edit_distance(&wanted, &fold(c)), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Lowercase without separators: `Connect_Timeout`, `connectTimeout` and `connect-timeout`
/// fold alike.
fn fold(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Edit distance counting insertions, deletions, substitutions and swaps of neighbours
/// (`hsotname` is one typo from `hostname`, not two).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j] = distance between a[..i] and b[..j]; keys are short, so a full table is fine.
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Raw {
        hostname: Option<String>,
        #[serde(rename = "originRequest", alias = "origin-request")]
        origin_request: Option<u32>,
    }

    #[test]
    fn valid_keys_come_from_the_serde_struct_with_aliases() {
        let mut fields = serde_fields::<Raw>().to_vec();
        fields.sort_unstable();
        assert_eq!(fields, ["hostname", "origin-request", "originRequest"]);
    }

    #[test]
    fn edit_distance_counts_typos() {
        assert_eq!(edit_distance("hostname", "hostname"), 0);
        assert_eq!(edit_distance("hostame", "hostname"), 1);
        assert_eq!(edit_distance("hsotname", "hostname"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn closest_folds_case_and_separators_and_refuses_other_words() {
        assert_eq!(
            closest("Domain-Regex", &["domain", "domain_regex"]),
            Some("domain_regex")
        );
        assert_eq!(
            closest("orginRequest", &["hostname", "originRequest"]),
            Some("originRequest")
        );
        assert_eq!(closest("banana", &["domain", "policy"]), None);
        // Short keys allow one typo only.
        assert_eq!(closest("hots", &["host"]), Some("host"));
        assert_eq!(closest("hxyt", &["host"]), None);
    }

    #[test]
    fn the_key_tree_keeps_keys_positions_and_list_items() {
        let tree: Spanned<Node> = serde_saphyr::from_str("a: 1\nb:\n  - c: x\n").unwrap();
        let Node::Map(entries) = &tree.value else {
            panic!("{tree:?}")
        };
        assert_eq!(entries[1].0.value, "b");
        assert_eq!(entries[1].0.referenced.line(), 2);
        assert!(matches!(&entries[1].1.value, Node::List(items) if items.len() == 1));
    }
}
