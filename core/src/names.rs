//! Name rules and "did you mean" suggestions.

/// The longest name conveyor accepts for a product, belt, job, fleet or driver.
pub const MAX_NAME_LEN: usize = 100;

/// Product names: `[a-z0-9][a-z0-9._-]*`.
pub fn is_product_name(s: &str) -> bool {
    name_with(
        s,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'),
    )
}

/// Belt and job names: `[A-Za-z0-9_][A-Za-z0-9_-]*` (no dots: references split on them).
pub fn is_node_name(s: &str) -> bool {
    name_with(
        s,
        |c| c.is_ascii_alphanumeric() || c == '_',
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'),
    )
}

/// Fleet and driver names: `[a-z0-9][a-z0-9_-]*`.
pub fn is_fleet_name(s: &str) -> bool {
    name_with(
        s,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'),
    )
}

/// Shell variable names, used for outputs and `env` keys: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_var_name(s: &str) -> bool {
    name_with(
        s,
        |c| c.is_ascii_alphabetic() || c == '_',
        |c| c.is_ascii_alphanumeric() || c == '_',
    )
}

fn name_with(s: &str, first: impl Fn(char) -> bool, rest: impl Fn(char) -> bool) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if first(c) => s.len() <= MAX_NAME_LEN && chars.all(rest),
        _ => false,
    }
}

/// The longest git ref conveyor accepts (git itself allows more; no forge sends more).
pub const MAX_REF_LEN: usize = 255;

/// A commit id: 40 (SHA-1) or 64 (SHA-256) hex digits.
pub fn is_commit_sha(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A ref or branch name by git's rules (`git check-ref-format`), at most [`MAX_REF_LEN`]
/// bytes: no control characters, spaces or `~^:?*[\\`, no `..` or `@{`, no component that
/// starts with `.` or ends with `.lock`, not starting with `-` or `/`, not ending with `/`
/// or `.`, no `//`. A value that git could read as an option (`--output=…`) is never one.
pub fn is_ref_name(s: &str) -> bool {
    let bad_char = |c: char| c.is_control() || " ~^:?*[\\".contains(c);
    !s.is_empty()
        && s.len() <= MAX_REF_LEN
        && s != "@"
        && !s.starts_with(['-', '/'])
        && !s.ends_with(['/', '.'])
        && !s.contains("..")
        && !s.contains("@{")
        && !s.contains("//")
        && !s.chars().any(bad_char)
        && s.split('/')
            .all(|part| !part.starts_with('.') && !part.ends_with(".lock"))
}

/// The longest id conveyor accepts in a request (its own are 36-character UUIDs and
/// 64-character tokens).
pub const MAX_ID_LEN: usize = 64;

/// What makes a value from a request unusable as a name, id or ref — a control character
/// (NUL included, which Postgres cannot store) or more than `max` bytes — as the end of a
/// sentence that starts with the value's field; `None` when there is nothing.
pub fn text_problem(s: &str, max: usize) -> Option<String> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Some(format!(
            "contains the control character U+{:04X}; remove it",
            u32::from(c)
        ));
    }
    (s.len() > max).then(|| format!("is {} bytes long; at most {max} are allowed", s.len()))
}

/// What makes `s` no git ref, as [`text_problem`] says it.
pub fn ref_problem(s: &str) -> Option<String> {
    text_problem(s, MAX_REF_LEN).or_else(|| {
        (!is_ref_name(s)).then(|| {
            format!(
                "is not a ref git accepts (`git check-ref-format`): `{s}`; e.g. \
                 `main` or `refs/tags/v1.0`"
            )
        })
    })
}

/// What makes `s` no commit id, as [`text_problem`] says it.
pub fn sha_problem(s: &str) -> Option<String> {
    text_problem(s, 64).or_else(|| {
        (!is_commit_sha(s)).then(|| "must be a commit id: 40 or 64 hex digits".to_string())
    })
}

/// The candidate nearest to `name`, if it is near enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// " (did you mean `x`?)" or nothing.
pub fn hint<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(name, candidates)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_names_are_suggested_and_far_ones_are_not() {
        let jobs = ["build", "test", "deploy-prod"];
        assert_eq!(suggest("biuld", jobs), Some("build"));
        assert_eq!(suggest("tset", jobs), Some("test"));
        assert_eq!(suggest("deploy-pord", jobs), Some("deploy-prod"));
        assert_eq!(suggest("lint", jobs), None);
        assert_eq!(hint("bulid", jobs), " (did you mean `build`?)");
    }

    #[test]
    fn names_follow_their_rules() {
        assert!(is_product_name("ror-api-backend"));
        assert!(is_product_name("my.product_2"));
        assert!(!is_product_name("Shop"));
        assert!(!is_product_name("-shop"));
        assert!(is_node_name("build-gem"));
        assert!(is_node_name("Unit_Tests"));
        assert!(!is_node_name("build.gem"));
        assert!(is_fleet_name("gpu-a100"));
        assert!(!is_fleet_name("GPU"));
        assert!(is_var_name("GEM_VERSION"));
        assert!(!is_var_name("1X"));
        assert!(!is_node_name(&"a".repeat(MAX_NAME_LEN + 1)));
    }

    #[test]
    fn commits_and_refs_follow_gits_rules() {
        assert!(is_commit_sha(&"a".repeat(40)));
        assert!(is_commit_sha(&"0123456789abcdef".repeat(4)));
        assert!(!is_commit_sha(&"a".repeat(39)));
        assert!(!is_commit_sha("--output=/tmp/x"));
        assert!(!is_commit_sha(&"g".repeat(40)));
        for ok in [
            "main",
            "refs/heads/release/1.2",
            "refs/tags/v1.0.0",
            "feature/x-y_z",
        ] {
            assert!(is_ref_name(ok), "{ok}");
        }
        for bad in [
            "",
            "--output=/tmp/x",
            "-x",
            "a..b",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "refs/heads/.hidden",
            "x.lock",
            "a/",
            "a.",
            "a//b",
            "a@{1}",
            "@",
            "a\u{0}b",
        ] {
            assert!(!is_ref_name(bad), "{bad:?}");
        }
        assert!(!is_ref_name(&"a".repeat(MAX_REF_LEN + 1)));
    }

    #[test]
    fn a_value_with_a_control_character_or_too_long_says_which() {
        assert_eq!(text_problem("ok name", 10), None);
        assert_eq!(
            text_problem("a\u{0}b", 10).unwrap(),
            "contains the control character U+0000; remove it"
        );
        assert_eq!(
            text_problem("line\nbreak", 100).unwrap(),
            "contains the control character U+000A; remove it"
        );
        assert_eq!(
            text_problem(&"x".repeat(11), 10).unwrap(),
            "is 11 bytes long; at most 10 are allowed"
        );
        assert_eq!(
            ref_problem(&"r".repeat(4 << 20)).unwrap(),
            "is 4194304 bytes long; at most 255 are allowed"
        );
        assert_eq!(
            ref_problem("a..b").unwrap(),
            "is not a ref git accepts (`git check-ref-format`): `a..b`; e.g. `main` or \
             `refs/tags/v1.0`"
        );
        assert_eq!(ref_problem("refs/heads/main"), None);
        assert_eq!(
            sha_problem("abc").unwrap(),
            "must be a commit id: 40 or 64 hex digits"
        );
        assert_eq!(sha_problem(&"a".repeat(40)), None);
    }
}
