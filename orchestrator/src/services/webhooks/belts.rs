//! Which belts a change builds: the `scm-event` triggers of a product that match its event
//! kinds, branch and repository.

use conveyor_core::context::branch_matches;
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
            || branch.is_some_and(|b| t.branches.iter().any(|pat| branch_matches(pat, b)));
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
