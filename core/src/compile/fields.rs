//! Helpers for walking mappings and scalars while collecting errors.

use crate::diag::{Diagnostics, Pos};
use crate::names;
use crate::yaml::{Node, Value};

/// A mapping whose keys have been checked against the allowed ones.
pub struct Fields<'a> {
    entries: &'a [(Node, Node)],
}

impl<'a> Fields<'a> {
    /// Reads `node` as a mapping, reporting any key not in `allowed` (with a suggestion).
    /// `what` names the thing for messages: "job `test`", "the product".
    pub fn read(node: &'a Node, what: &str, allowed: &[&str], d: &mut Diagnostics) -> Option<Self> {
        let Value::Map(entries) = &node.value else {
            d.error(
                node.pos,
                format!(
                    "expected {what} to be a mapping, found {}",
                    node.value.kind()
                ),
            );
            return None;
        };
        for (key, _) in entries {
            match key.as_str() {
                Some(k) if allowed.contains(&k) || is_extension_key(k) => {}
                Some(k) => d.error(
                    key.pos,
                    format!(
                        "unknown key `{k}` in {what}{}",
                        names::hint(k, allowed.iter().copied())
                    ),
                ),
                None => d.error(
                    key.pos,
                    format!("keys in {what} must be strings, found {}", key.value.kind()),
                ),
            }
        }
        Some(Fields { entries })
    }

    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The value of `key` unless it is absent or null.
    pub fn present(&self, key: &str) -> Option<&'a Node> {
        self.get(key).filter(|n| !n.is_null())
    }
}

/// Keys starting with `.` or `x-` hold YAML anchors for reuse (`.defaults: &defaults`, as in
/// GitLab CI and Compose files); conveyor ignores them.
pub fn is_extension_key(key: &str) -> bool {
    key.starts_with('.') || key.starts_with("x-")
}

/// A string value (numbers and booleans are taken as their text).
pub fn string(node: &Node, what: &str, d: &mut Diagnostics) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => node.scalar_text(),
        other => {
            d.error(
                node.pos,
                format!("`{what}` must be a string, found {}", other.kind()),
            );
            None
        }
    }
}

/// A string or a list of strings, each with its position.
pub fn string_list(node: &Node, what: &str, d: &mut Diagnostics) -> Vec<(String, Pos)> {
    match &node.value {
        Value::Null => Vec::new(),
        Value::Seq(items) => items
            .iter()
            .filter_map(|item| {
                let text = item.scalar_text();
                if text.is_none() {
                    d.error(
                        item.pos,
                        format!(
                            "items of `{what}` must be strings, found {}",
                            item.value.kind()
                        ),
                    );
                }
                text.map(|t| (t, item.pos))
            })
            .collect(),
        _ => match node.scalar_text() {
            Some(t) => vec![(t, node.pos)],
            None => {
                d.error(
                    node.pos,
                    format!(
                        "`{what}` must be a string or a list of strings, found {}",
                        node.value.kind()
                    ),
                );
                Vec::new()
            }
        },
    }
}

/// A script: a block string, or a list of lines joined with newlines.
pub fn script(node: &Node, what: &str, d: &mut Diagnostics) -> Option<String> {
    if let Value::Seq(_) = node.value {
        let lines: Vec<String> = string_list(node, what, d)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        return Some(lines.join("\n"));
    }
    string(node, what, d)
}

/// A boolean.
pub fn boolean(node: &Node, what: &str, d: &mut Diagnostics) -> Option<bool> {
    match node.value {
        Value::Bool(b) => Some(b),
        _ => {
            d.error(
                node.pos,
                format!(
                    "`{what}` must be true or false, found {}",
                    node.value.kind()
                ),
            );
            None
        }
    }
}

/// A list node's items; reports anything else.
pub fn list<'a>(node: &'a Node, what: &str, d: &mut Diagnostics) -> &'a [Node] {
    match &node.value {
        Value::Seq(items) => items,
        Value::Null => &[],
        other => {
            d.error(
                node.pos,
                format!("`{what}` must be a list, found {}", other.kind()),
            );
            &[]
        }
    }
}

/// A name checked by `valid`; `rule` explains the rule in the error.
pub fn name(
    node: &Node,
    kind: &str,
    valid: fn(&str) -> bool,
    rule: &str,
    d: &mut Diagnostics,
) -> Option<String> {
    let text = string(node, kind, d)?;
    if valid(&text) {
        Some(text)
    } else {
        d.error(node.pos, format!("invalid {kind} name `{text}`: {rule}"));
        None
    }
}

/// The name under `key`, checked like [`name`]; when the key is absent, the error
/// `missing` at `at`.
#[allow(clippy::too_many_arguments)]
pub fn required_name(
    f: &Fields,
    key: &str,
    kind: &str,
    valid: fn(&str) -> bool,
    rule: &str,
    at: Pos,
    missing: &str,
    d: &mut Diagnostics,
) -> Option<String> {
    match f.present(key) {
        Some(n) => name(n, kind, valid, rule, d),
        None => {
            d.error(at, missing);
            None
        }
    }
}

pub const PRODUCT_RULE: &str =
    "use lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit";
pub const NODE_RULE: &str =
    "use letters, digits, `_` and `-`, starting with a letter, digit or `_`";
pub const FLEET_RULE: &str =
    "use lowercase letters, digits, `_` and `-`, starting with a letter or digit";
