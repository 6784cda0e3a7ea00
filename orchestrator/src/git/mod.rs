//! Git repositories, through the real `git`: bare mirrors of product repositories (the
//! orchestrator reads `.conveyor.yml` at a commit and a change's paths from them), and snapshots of a local work
//! tree (`conveyor run`'s `source`).

mod changes;
mod commits;
mod mirrors;
mod snapshot;

pub use changes::{Diff, MAX_CHANGED_PATHS};
pub use commits::MAX_MESSAGE;
pub use mirrors::{DEFAULT_CONFIG, GIT_TIMEOUT, GitError, Repos, repo_key, same_repo};
pub use snapshot::{Snapshot, snapshot};
