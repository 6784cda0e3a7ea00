//! The paths a change touched, computed in the product's mirror: a push's commits
//! (`before..after`), a new branch's commits since it left the default branch, or a pull
//! request's diff against its base. Anything git cannot compare (a history rewritten
//! away, a base not fetched) is `None`: conditions then take every path as changed.

use std::path::Path;

use conveyor_core::names;

use super::mirrors::{Repos, git};

/// The most paths a build keeps; a larger change counts as "every path changed".
pub const MAX_CHANGED_PATHS: usize = 5000;

/// What to compare for a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    /// A push of a branch from `before` (empty or zeros: a new branch) to `after`.
    Push {
        branch: String,
        before: String,
        after: String,
    },
    /// A pull request's head against the branch it would merge into.
    PullRequest { base: String, head: String },
    /// Nothing to compare (a tag): the paths are unknown.
    Unknown,
}

impl Repos {
    /// The paths `diff` touched, or `None` when git cannot tell.
    pub fn changed_paths(&self, mirror: &Path, diff: &Diff) -> Option<Vec<String>> {
        let paths = match diff {
            Diff::Unknown => return None,
            Diff::Push {
                branch,
                before,
                after,
            } => {
                let new_branch = before.is_empty() || before.bytes().all(|b| b == b'0');
                if new_branch {
                    let default = self.default_branch(mirror).ok()?;
                    self.since_branch(mirror, &default, branch, after)?
                } else {
                    self.between(mirror, before, after)?
                }
            }
            Diff::PullRequest { base, head } => self.since_branch(mirror, base, "", head)?,
        };
        (paths.len() <= MAX_CHANGED_PATHS).then_some(paths)
    }

    /// The paths `after` changed since it left `base` (their merge base); every file of
    /// `after` when `branch` is `base` itself or they share no history.
    fn since_branch(
        &self,
        mirror: &Path,
        base: &str,
        branch: &str,
        after: &str,
    ) -> Option<Vec<String>> {
        if !names::is_ref_name(base) || !names::is_commit_sha(after) {
            return None;
        }
        let base_ref = format!("refs/heads/{base}");
        let merge_base = git(
            &["merge-base", "--end-of-options", &base_ref, after],
            Some(mirror),
            self.timeout(),
        );
        match merge_base {
            Ok(mb) if branch != base && names::is_commit_sha(&mb) => {
                self.between(mirror, &mb, after)
            }
            _ if self.commit(mirror, &base_ref).is_err() => None,
            _ => {
                let args = [
                    "ls-tree",
                    "-r",
                    "-z",
                    "--name-only",
                    "--end-of-options",
                    after,
                ];
                split(git(&args, Some(mirror), self.timeout()).ok()?)
            }
        }
    }

    /// The paths changed between two commits.
    fn between(&self, mirror: &Path, from: &str, to: &str) -> Option<Vec<String>> {
        if !names::is_commit_sha(from) || !names::is_commit_sha(to) {
            return None;
        }
        let args = [
            "diff",
            "--name-only",
            "-z",
            "--no-renames",
            "--end-of-options",
            from,
            to,
        ];
        split(git(&args, Some(mirror), self.timeout()).ok()?)
    }
}

fn split(out: String) -> Option<Vec<String>> {
    Some(
        out.split('\0')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
    )
}
