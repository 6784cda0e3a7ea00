//! A located YAML tree: every node knows its line and column.
//!
//! The compiler walks this tree by hand instead of deriving serde types, so that one
//! mistake does not hide the next: every error is collected and located.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diag::Pos;

/// Deeper nesting is refused: no config needs it, and it costs stack.
pub const MAX_DEPTH: usize = 48;

/// Files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// The shapes a node can take. Scalars keep their text; YAML's typing is applied by the
/// compiler where a field asks for a number or a boolean.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// The YAML kind in words, for error messages ("expected a list, found a string").
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The node as scalar text (strings, numbers, booleans), if it is a scalar.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// The node as a string, only if YAML read it as one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// Looks a key up in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why a text could not be read as YAML.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML document into a located tree, within budgets that stop alias bombs,
/// deep nesting and huge inputs.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(YamlError {
            pos: Pos::new(1, 1),
            message: format!(
                "file is {} bytes; the limit is {} bytes",
                text.len(),
                MAX_FILE_BYTES
            ),
        });
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_nodes: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_documents: 1,
            max_total_scalar_bytes: MAX_FILE_BYTES,
        },
        with_snippet: false,
    };
    let mut docs: Vec<Spanned<Value>> =
        serde_saphyr::from_str_multiple_with_options(text, options).map_err(yaml_error)?;
    match docs.len() {
        0 => Ok(Node {
            pos: Pos::new(1, 1),
            value: Value::Null,
        }),
        1 => Ok(spanned_node(docs.remove(0))),
        _ => Err(YamlError {
            pos: Pos::new(1, 1),
            message: "a .conveyor.yml holds one product; found several YAML documents".into(),
        }),
    }
}

fn yaml_error(err: serde_saphyr::Error) -> YamlError {
    let pos = err
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| pos_of(l.line(), l.column()))
        .unwrap_or(Pos::new(1, 1));
    let text = err.to_string();
    // serde-saphyr appends " at line L column C"; we print the location ourselves.
    let message = match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let message = message.lines().next().unwrap_or("").trim();
    YamlError {
        pos,
        message: friendly(message),
    }
}

/// Budget breaches read as limits, not as parser internals.
fn friendly(message: &str) -> String {
    if message.contains("recursion limit") {
        return format!("the YAML is nested deeper than {MAX_DEPTH} levels");
    }
    match message.split_once("budget breached: ") {
        Some((_, what)) if what.starts_with("Documents") => {
            "a .conveyor.yml holds one product; found several YAML documents".to_string()
        }
        Some((_, what)) if what.starts_with("Depth") => {
            format!("the YAML is nested deeper than {MAX_DEPTH} levels")
        }
        Some((_, what)) => {
            let limit = what.split([' ', '{']).next().unwrap_or(what).to_lowercase();
            format!("the YAML exceeds conveyor's limit on {limit}")
        }
        None => format!("invalid YAML: {message}"),
    }
}

fn pos_of(line: u64, col: u64) -> Pos {
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX).max(1);
    Pos::new(clamp(line), clamp(col))
}

fn spanned_node(s: Spanned<Value>) -> Node {
    let loc = s.referenced;
    Node {
        pos: pos_of(loc.line(), loc.column()),
        value: s.value,
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(spanned_node(item));
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let value = map.next_value::<Spanned<Value>>()?;
            entries.push((spanned_node(key), spanned_node(value)));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_carry_line_and_column() {
        let node = parse("a:\n  b: [1, x]\n").expect("valid yaml");
        let b = node.get("a").and_then(|a| a.get("b")).expect("a.b");
        assert_eq!(b.pos, Pos::new(2, 6));
        let Value::Seq(items) = &b.value else {
            panic!("expected a list")
        };
        assert_eq!(items[1].pos, Pos::new(2, 10));
        assert_eq!(items[1].as_str(), Some("x"));
    }

    #[test]
    fn an_alias_bomb_is_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            text.push_str(&format!(
                "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let err = parse(&text).expect_err("budget must stop the bomb");
        assert_eq!(err.message, "the YAML exceeds conveyor's limit on nodes");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
        let err = parse(&text).expect_err("too deep");
        assert_eq!(err.message, "the YAML is nested deeper than 48 levels");
    }

    #[test]
    fn duplicate_keys_are_an_error_located_at_the_second_key() {
        let err = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate key");
        assert_eq!(err.pos.line, 3);
        assert!(err.message.contains("duplicate"), "{}", err.message);
    }
}
