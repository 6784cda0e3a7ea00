//! Git repositories, through the real `git`: bare mirrors of product repositories (the
//! orchestrator reads `.conveyor.yml` at a commit from them), and snapshots of a local work
//! tree (`conveyor run`'s `source`).

mod mirrors;
mod snapshot;

pub use mirrors::{DEFAULT_CONFIG, GIT_TIMEOUT, GitError, Repos, same_repo};
pub use snapshot::{Snapshot, snapshot};
