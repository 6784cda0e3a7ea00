//! `env:` values as a shell user expects them: `$NAME` and `${NAME}` expand to the job's
//! environment, and conveyor references (`${make.V}`, `{{ make.V }}`) to their values.
//!
//! The compiler rewrites each reference in an `env` value to `${CONVEYOR_REF_n}` (see
//! [`rewrite_refs`]); the runner then expands the value once, left to right, with
//! [`expand`]. What an expansion yields is never expanded again, so a value that holds
//! `$HOME`, `$(rm -rf /)` or a backtick stays those bytes: data, as references in scripts.
//!
//! The rules, all of them: `$NAME` and `${NAME}` (NAME = `[A-Za-z_][A-Za-z0-9_]*`) become
//! the variable's value, or nothing when it is unset; `$$` becomes one `$`; any other `$`
//! (`$1`, `$(…)`, `${X:-d}`, a `$` at the end) is kept as written. Nothing else is
//! interpreted: no command substitution, no globbing, no word splitting, no quotes.

use crate::names::is_var_name;
use crate::script::ref_at;

/// A reference found in an `env` value: its dotted path and byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef {
    pub path: String,
    pub start: usize,
    pub end: usize,
}

/// Every conveyor reference in a plain text, in order.
pub fn refs_in(text: &str) -> Vec<EnvRef> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if !text.is_char_boundary(i) {
            i += 1;
            continue;
        }
        match ref_at(&text[i..]) {
            Some((path, len)) => {
                found.push(EnvRef {
                    path,
                    start: i,
                    end: i + len,
                });
                i += len;
            }
            None => i += 1,
        }
    }
    found
}

/// `text` with each found reference replaced by `${VAR}`, VAR being `var_of(path)`.
pub fn rewrite_refs(text: &str, found: &[EnvRef], var_of: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in found {
        out.push_str(&text[at..f.start]);
        out.push_str(&format!("${{{}}}", var_of(&f.path)));
        at = f.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Expands `$NAME`, `${NAME}` and `$$` in `template`, once; see the module's rules.
pub fn expand(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (value, used) = variable(after, &lookup);
        match value {
            Some(v) => out.push_str(&v),
            None => out.push('$'),
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// After a `$`: what it stands for (`None`: a literal `$`) and how many bytes it used.
fn variable(after: &str, lookup: &impl Fn(&str) -> Option<String>) -> (Option<String>, usize) {
    if after.starts_with('$') {
        return (Some("$".into()), 1);
    }
    if let Some(body) = after.strip_prefix('{') {
        return match body.find('}') {
            Some(end) if is_var_name(&body[..end]) => {
                (Some(lookup(&body[..end]).unwrap_or_default()), end + 2)
            }
            _ => (None, 0),
        };
    }
    let len = after
        .char_indices()
        .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(after.len(), |(i, _)| i);
    if len == 0 {
        return (None, 0);
    }
    (Some(lookup(&after[..len]).unwrap_or_default()), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PATH" => Some("/usr/bin:/bin".into()),
            "CONVEYOR_REF_1" => Some("$HOME `id` $(touch /tmp/x) ${PATH} $$".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn names_expand_and_unset_ones_vanish() {
        assert_eq!(expand("/opt/x:$PATH", env), "/opt/x:/usr/bin:/bin");
        assert_eq!(expand("${PATH}/y", env), "/usr/bin:/bin/y");
        assert_eq!(expand("a${NOPE}b$NOPE", env), "ab");
        assert_eq!(expand("[$EMPTY]", env), "[]");
        assert_eq!(expand("$PATH_X", env), "");
    }

    #[test]
    fn values_are_data_never_expanded_again() {
        let v = env("CONVEYOR_REF_1").unwrap_or_default();
        assert_eq!(expand("${CONVEYOR_REF_1}", env), v);
        assert_eq!(expand("v=$CONVEYOR_REF_1.", env), format!("v={v}."));
    }

    #[test]
    fn other_dollars_are_kept() {
        assert_eq!(expand("$$HOME", env), "$HOME");
        assert_eq!(expand("cost: 5$", env), "cost: 5$");
        assert_eq!(
            expand("$1 $(date) ${X:-d} ${", env),
            "$1 $(date) ${X:-d} ${"
        );
        assert_eq!(expand("é$PATHé", env), "é/usr/bin:/biné");
    }

    #[test]
    fn references_are_found_and_rewritten() {
        let text = "v=${make.V}-{{ lint.OK }}:$PATH:${HOME}";
        let found = refs_in(text);
        let paths: Vec<&str> = found.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["make.V", "lint.OK"]);
        let out = rewrite_refs(text, &found, |p| format!("R_{}", p.len()));
        assert_eq!(out, "v=${R_6}-${R_7}:$PATH:${HOME}");
    }
}
