//! The field path (`steps[2].isolate.quarantine_grp`) at a line and column of a YAML
//! document, so that a located error can also name its field.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A YAML node with the positions of its keys and items.
enum Node {
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar,
}

/// A mapping key, as text when it is a scalar.
struct Key(String);

/// The dotted path of the deepest key or item that starts at or before `(line, column)`.
/// `None` when the text is not YAML or the position is before any key.
pub fn path_at(text: &str, line: u64, column: u64) -> Option<String> {
    let root: Spanned<Node> = serde_saphyr::from_str(text).ok()?;
    let mut path = String::new();
    descend(&root.value, (line, column), &mut path);
    (!path.is_empty()).then_some(path)
}

/// One step of a path into a YAML document: a mapping key or a sequence index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A mapping key, whole (a `fields:` key such as `service.count` is one key).
    Key(&'a str),
    /// A sequence index; index 0 of a scalar is the scalar (a one-item list written
    /// as its item, as `finding_types: 'X'`).
    Index(usize),
}

/// Where the node at `path` is written: the key's position for a key, the item's for
/// an index. `None` when the text is not YAML or the path is not in it.
pub fn locate(text: &str, path: &[Seg]) -> Option<serde_saphyr::Location> {
    let root: Spanned<Node> = serde_saphyr::from_str(text).ok()?;
    let mut node = &root;
    let mut at = root.referenced;
    for seg in path {
        match (seg, &node.value) {
            (Seg::Key(k), Node::Map(entries)) => {
                let (key, value) = entries.iter().find(|(key, _)| key.value.0 == *k)?;
                at = key.referenced;
                node = value;
            }
            (Seg::Index(i), Node::Seq(items)) => {
                node = items.get(*i)?;
                at = node.referenced;
            }
            (Seg::Index(0), Node::Scalar) => at = node.referenced,
            _ => return None,
        }
    }
    Some(at)
}

fn descend(node: &Node, at: (u64, u64), path: &mut String) {
    match node {
        Node::Map(entries) => {
            let found = entries.iter().rev().find(|(k, _)| pos(&k.referenced) <= at);
            if let Some((key, value)) = found {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.value.0);
                descend(&value.value, at, path);
            }
        }
        Node::Seq(items) => {
            let found = items
                .iter()
                .enumerate()
                .rev()
                .find(|(_, v)| pos(&v.referenced) <= at);
            if let Some((i, item)) = found {
                path.push_str(&format!("[{i}]"));
                descend(&item.value, at, path);
            }
        }
        Node::Scalar => {}
    }
}

fn pos(loc: &serde_saphyr::Location) -> (u64, u64) {
    (loc.line(), loc.column())
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML node")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Map(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Key("{...}".to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Key("[...]".to_owned()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_paths() {
        let text = "name: a\nmatch:\n  severity: hgh\nsteps:\n  - isolate: {}\n  - isolate: {quarantine_grp: x}\n";
        assert_eq!(path_at(text, 1, 7).as_deref(), Some("name"));
        assert_eq!(path_at(text, 3, 13).as_deref(), Some("match.severity"));
        assert_eq!(
            path_at(text, 6, 16).as_deref(),
            Some("steps[1].isolate.quarantine_grp")
        );
        assert_eq!(path_at("{", 1, 1), None);
    }

    #[test]
    fn locates_keys_items_and_lone_scalars() {
        let text = "match:\n  finding_types:\n    - a\n    - b\n  fields:\n    service.count: {eq: 1}\nexclude:\n  - finding_types: c\n";
        let at = |path: &[Seg]| locate(text, path).map(|l| (l.line(), l.column()));
        use Seg::{Index, Key};
        assert_eq!(
            at(&[Key("match"), Key("finding_types"), Index(1)]),
            Some((4, 7))
        );
        assert_eq!(
            at(&[Key("match"), Key("fields"), Key("service.count")]),
            Some((6, 5))
        );
        assert_eq!(
            at(&[Key("exclude"), Index(0), Key("finding_types"), Index(0)]),
            Some((8, 20))
        );
        assert_eq!(at(&[Key("match"), Key("finding_types"), Index(2)]), None);
        assert_eq!(at(&[Key("nothing")]), None);
    }
}
