//! Which belts a change builds: the `scm-event` triggers of a product that match its event
//! kinds, branch and repository.

use conveyor_core::model::{Product, ScmEventType, Trigger};

use crate::git::same_repo;

/// The belts of `scm-event` triggers that match the event types, branch and repository.
pub fn matching_belts(
    model: &Product,
    kinds: &[ScmEventType],
    branch: Option<&str>,
    urls: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in &model.triggers {
        let Trigger::ScmEvent(t) = t else { continue };
        let repo_ok = t
            .repo
            .as_deref()
            .is_none_or(|r| urls.iter().any(|u| same_repo(r, u)));
        let branch_ok = t.branches.is_empty()
            || branch.is_some_and(|b| t.branches.iter().any(|pat| glob(pat, b)));
        if !kinds.contains(&t.event) || !repo_ok || !branch_ok {
            continue;
        }
        let belts = t
            .belts
            .clone()
            .unwrap_or_else(|| model.belts.iter().map(|b| b.name.clone()).collect());
        for b in belts {
            if !out.contains(&b) {
                out.push(b);
            }
        }
    }
    out
}

/// `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| {
                    text.is_char_boundary(head.len() + i) && glob(rest, &text[head.len() + i..])
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn branch_patterns_match_with_stars() {
        assert!(glob("main", "main"));
        assert!(!glob("main", "mainline"));
        assert!(glob("release/*", "release/1.2"));
        assert!(!glob("release/*", "hotfix/1"));
        assert!(glob("*", "anything"));
        assert!(glob("feat-*-x", "feat-abc-x"));
    }
}
