//! One value of a JSON document, found by its path (`payload.comment.body`, `payload.commits.0.sha`) while the
//! document is read once, without building the rest of it: the other members are skipped as they are read, so
//! reading one field of an event costs a scan of its text rather than a tree of every value in it.
//!
//! Objects are looked up by key (the last member of a repeated key wins, as in [`serde_json::Value`]), arrays by
//! a decimal index; a path that leads nowhere, or text that is not JSON, reads as `None`. What is read at the end
//! of the path is the leaf's to say: any value ([`AnyValue`]), or a string and nothing else ([`Text`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The value at `path` (its parts, outermost first) in `text`.
pub fn value_at(text: &str, path: &[&str]) -> Option<serde_json::Value> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let found = At {
        path,
        leaf: AnyValue,
    }
    .deserialize(&mut reader)
    .ok()?;
    reader.end().ok()?;
    found
}

/// Reads `leaf` at `path` inside one value, or nothing; to be given to a deserializer as a seed (also for one
/// field of a larger document being read).
#[derive(Clone, Copy)]
pub struct At<'p, L> {
    /// Object keys and array indexes, outermost first.
    pub path: &'p [&'p str],
    /// What is read at the end of the path.
    pub leaf: L,
}

/// The visits of numbers and booleans for a visitor that finds nothing in them.
macro_rules! nothing_in_numbers_or_bools {
    () => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
    };
}

/// Any JSON value, whole.
#[derive(Clone, Copy)]
pub struct AnyValue;

impl<'de> DeserializeSeed<'de> for AnyValue {
    type Value = Option<serde_json::Value>;

    fn deserialize<D: Deserializer<'de>>(self, value: D) -> Result<Self::Value, D::Error> {
        serde::Deserialize::deserialize(value).map(Some)
    }
}

/// A string, borrowed from the text unless it holds escapes; any other value reads as nothing.
#[derive(Clone, Copy)]
pub struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, value: D) -> Result<Self::Value, D::Error> {
        value.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(text.to_string())))
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    nothing_in_numbers_or_bools!();

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

impl<'de, L, V> DeserializeSeed<'de> for At<'_, L>
where
    L: DeserializeSeed<'de, Value = Option<V>> + Copy,
{
    type Value = Option<V>;

    fn deserialize<D: Deserializer<'de>>(self, value: D) -> Result<Self::Value, D::Error> {
        if self.path.is_empty() {
            self.leaf.deserialize(value)
        } else {
            value.deserialize_any(self)
        }
    }
}

impl<'de, L, V> Visitor<'de> for At<'_, L>
where
    L: DeserializeSeed<'de, Value = Option<V>> + Copy,
{
    type Value = Option<V>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let (first, rest) = self.path.split_first().expect("a path to follow");
        let mut found = None;
        while let Some(wanted) = map.next_key_seed(KeyIs(first))? {
            if wanted {
                found = map.next_value_seed(At { path: rest, ..self })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let (first, rest) = self.path.split_first().expect("a path to follow");
        let index = first.parse::<usize>().ok();
        let mut found = None;
        let mut at = 0;
        loop {
            if Some(at) == index {
                match seq.next_element_seed(At { path: rest, ..self })? {
                    Some(value) => found = value,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            at += 1;
        }
        Ok(found)
    }

    // A scalar where the path goes on: nothing there.
    nothing_in_numbers_or_bools!();

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Whether an object's key is the one wanted, compared as it is read (no copy unless it holds escapes).
struct KeyIs<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, key: D) -> Result<bool, D::Error> {
        key.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the whole tree says is at `path`.
    fn through_the_tree(text: &str, path: &[&str]) -> Option<serde_json::Value> {
        let mut node = &serde_json::from_str::<serde_json::Value>(text).ok()?;
        for part in path {
            node = match node {
                serde_json::Value::Object(map) => map.get(*part)?,
                serde_json::Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node.clone())
    }

    #[test]
    fn finds_what_the_whole_tree_finds() {
        let event = r#"{"id":"1","type":"IssuesEvent","actor":{"login":"a\"b"},"payload":{"action":"opened",
            "issue":{"title":"Crash \u00e9 on start","body":null,"labels":[{"name":"bug"},{"name":"p1"}],
            "n":3,"f":1.5,"ok":true},"a\u0063tion2":"escaped key","dup":1,"dup":2},"public":true}"#;
        for path in [
            "payload.action",
            "payload.issue.title",
            "payload.issue.body",
            "payload.issue.labels.1.name",
            "payload.issue.labels.2.name",
            "payload.issue.labels.x",
            "payload.issue.labels",
            "payload.issue.n",
            "payload.issue.f",
            "payload.issue.ok",
            "payload.issue.title.more",
            "payload.action2",
            "payload.dup",
            "actor.login",
            "public",
            "missing",
            "payload",
            "",
        ] {
            let parts: Vec<&str> = path.split('.').collect();
            assert_eq!(
                value_at(event, &parts),
                through_the_tree(event, &parts),
                "{path}"
            );
        }
    }

    #[test]
    fn text_that_is_not_json_has_nothing_at_any_path() {
        for text in ["", "{", "{\"a\":1} trailing", "[1,2", "nonsense"] {
            assert_eq!(value_at(text, &["a"]), None, "{text}");
        }
        assert_eq!(value_at("[10,20]", &["1"]), Some(serde_json::json!(20)));
    }
}
