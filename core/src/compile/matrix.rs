//! `matrix:` — a job written once and run once per combination of its axes' values.
//!
//! ```yaml
//! - name: test
//!   matrix: {python: ["3.10", "3.11"], os: [linux, mac]}
//!   commands: tox -e "py$MATRIX_PYTHON"
//! ```
//! becomes four jobs, `test-3-10-linux`, `test-3-10-mac`, `test-3-11-linux`,
//! `test-3-11-mac` (the job's name, then each value in axis order, with every character
//! other than a letter, digit, `_` or `-` written `-`), each with `MATRIX_PYTHON` and
//! `MATRIX_OS` in its environment. `needs`/`inputs` naming `test` wait for every instance;
//! outputs are read per instance (`${test-3-10-linux.V}`).

use super::fields;
use crate::diag::Diagnostics;
use crate::names;
use crate::yaml::{Node, Value};

/// The most instances one matrix may make.
pub const MAX_INSTANCES: usize = 256;

/// One instance: its node (the job's, renamed, without `matrix`, with the axis values in
/// its `env`) and its name.
pub(super) struct Instance {
    pub node: Node,
    pub name: String,
}

/// The instances of job `job` (whose node has a `matrix` key), or `None` after an error.
pub(super) fn expand(item: &Node, job: &str, d: &mut Diagnostics) -> Option<Vec<Instance>> {
    let matrix = item.get("matrix")?;
    let axes = axes(matrix, job, d)?;
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (axis, values) in &axes {
        combos = combos
            .iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((axis.clone(), v.clone()));
                    c
                })
            })
            .collect();
        if combos.len() > MAX_INSTANCES {
            d.error(
                matrix.pos,
                format!("the matrix of job `{job}` makes more than {MAX_INSTANCES} jobs"),
            );
            return None;
        }
    }
    Some(combos.iter().map(|c| instance(item, job, c)).collect())
}

/// The axes as written: each a name and its values, as text.
fn axes(matrix: &Node, job: &str, d: &mut Diagnostics) -> Option<Vec<(String, Vec<String>)>> {
    let Value::Map(entries) = &matrix.value else {
        d.error(
            matrix.pos,
            format!(
                "`matrix` of job `{job}` must be a mapping of axis: [values], found {}",
                matrix.value.kind()
            ),
        );
        return None;
    };
    if entries.is_empty() {
        d.error(matrix.pos, format!("`matrix` of job `{job}` has no axes"));
        return None;
    }
    let errors = d.error_count();
    let mut out = Vec::new();
    for (k, v) in entries {
        let axis = k.scalar_text().unwrap_or_default();
        if !names::is_var_name(&axis) {
            d.error(k.pos, format!("invalid matrix axis `{axis}` in job `{job}`: use letters, digits and `_`, not starting with a digit"));
            continue;
        }
        let axis_errors = d.error_count();
        let mut values = Vec::new();
        for item in fields::list(v, &format!("matrix axis `{axis}`"), d) {
            match (&item.value, item.scalar_text()) {
                (Value::Float(_), _) => d.error(item.pos, format!("matrix value of `{axis}` is a number YAML may change (`3.10` reads as 3.1): quote it")),
                (_, Some(text)) if !text.is_empty() => values.push(text),
                _ => d.error(item.pos, format!("matrix values of `{axis}` must be non-empty strings, numbers or booleans")),
            }
        }
        if values.is_empty() && d.error_count() == axis_errors {
            d.error(
                v.pos,
                format!("matrix axis `{axis}` of job `{job}` has no values"),
            );
        }
        out.push((axis, values));
    }
    (d.error_count() == errors).then_some(out)
}

/// `job-v1-v2…`, each character of a value other than a letter, digit, `_` or `-` as `-`.
fn instance_name(job: &str, combo: &[(String, String)]) -> String {
    let mut name = job.to_string();
    for (_, value) in combo {
        name.push('-');
        name.extend(value.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        }));
    }
    name
}

fn instance(item: &Node, job: &str, combo: &[(String, String)]) -> Instance {
    let name = instance_name(job, combo);
    let pos = item.pos;
    let text = |s: String| Node {
        pos,
        value: Value::Str(s),
    };
    let vars: Vec<(Node, Node)> = combo
        .iter()
        .map(|(axis, value)| {
            let var = format!("MATRIX_{}", axis.to_ascii_uppercase());
            // `$$`: an `env` value expands, and an axis value is data.
            (text(var), text(value.replace('$', "$$")))
        })
        .collect();
    let Value::Map(entries) = &item.value else {
        return Instance {
            node: item.clone(),
            name,
        };
    };
    let mut entries: Vec<(Node, Node)> = entries
        .iter()
        .filter(|(k, _)| k.as_str() != Some("matrix"))
        .cloned()
        .collect();
    for (k, v) in entries.iter_mut() {
        match k.as_str() {
            Some("name") => v.value = Value::Str(name.clone()),
            Some("env") => {
                if let Value::Map(env) = &mut v.value {
                    env.extend(vars.iter().cloned());
                }
            }
            _ => {}
        }
    }
    if !entries.iter().any(|(k, _)| k.as_str() == Some("env")) {
        entries.push((
            text("env".into()),
            Node {
                pos,
                value: Value::Map(vars),
            },
        ));
    }
    Instance {
        node: Node {
            pos,
            value: Value::Map(entries),
        },
        name,
    }
}
