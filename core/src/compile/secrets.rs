//! `secrets:` at product, belt and job level: the names of the secrets a job receives as
//! environment variables (their values live in the orchestrator, never in the file).

use crate::diag::{Diagnostics, Pos};
use crate::names;
use crate::yaml::Node;

use super::fields;

/// The inherited names plus the node's own; a name given twice counts once.
pub(crate) fn merged(
    inherited: &[String],
    node: Option<&Node>,
    d: &mut Diagnostics,
) -> Vec<String> {
    let mut out = inherited.to_vec();
    let Some(node) = node else {
        return out;
    };
    for (name, pos) in fields::string_list(node, "secrets", d) {
        if !names::is_var_name(&name) {
            d.error(
                pos,
                format!(
                    "invalid secret name `{name}` in `secrets`: use letters, digits and `_`, not starting with a digit"
                ),
            );
        } else if name.starts_with("CONVEYOR_") {
            d.error(
                pos,
                format!("secret `{name}` is reserved: names starting with `CONVEYOR_` are set by conveyor"),
            );
        } else if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The names that are both a secret and an `env` variable.
pub(crate) fn clashes(secrets: &[String], env: &[(String, String)]) -> Vec<String> {
    secrets
        .iter()
        .filter(|s| env.iter().any(|(k, _)| k == *s))
        .cloned()
        .collect()
}

/// A name cannot be both: the job would get one or the other.
pub(crate) fn clash(name: &str, at: Pos, d: &mut Diagnostics) {
    d.error(
        at,
        format!(
            "`{name}` is both a secret and an `env` variable: a job gets a secret under its own name, so rename one"
        ),
    );
}
