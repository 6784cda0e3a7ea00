//! `--job-user`: jobs run as another user than the runner, so they cannot read what the
//! runner's user can — its token file, its work files, `/proc/<runner>/environ`, the files of
//! `conveyor up`'s server — nor signal it or its guard.
//!
//! The runner must be root to switch users. The job's bash gets the user's uid and primary
//! gid through `CommandExt::uid/gid`, which also drops every supplementary group (the
//! standard library calls `setgroups(0)` first): setting the user's own groups needs an
//! unstable API or unsafe code, so a job user's extra groups (`docker`, say) do not apply.
//! Its `HOME`, `USER` and `LOGNAME` are the user's. Its workspace is handed over to it only
//! once the checkout is done, while no process of that user can reach it (see
//! [`super::workspace`]).

use std::io;
use std::os::unix::fs::lchown;
use std::path::{Path, PathBuf};

use nix::unistd::{User, geteuid};

/// The user jobs run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JobUserError {
    #[error(
        "running jobs as `{0}` needs the runner to run as root (it switches users and hands \
         each job its workspace); start it as root, or leave out --job-user"
    )]
    NotRoot(String),
    #[error(
        "there is no user `{0}` on this machine: create it (`useradd --system --no-create-home {0}`) \
         or name another with --job-user"
    )]
    Missing(String),
    #[error("cannot look up the user `{name}`: {reason}")]
    Lookup { name: String, reason: String },
}

impl JobUser {
    /// The user named `name`, if this process may run jobs as it.
    pub fn resolve(name: &str) -> Result<JobUser, JobUserError> {
        if !geteuid().is_root() {
            return Err(JobUserError::NotRoot(name.to_string()));
        }
        let user = User::from_name(name)
            .map_err(|e| JobUserError::Lookup {
                name: name.to_string(),
                reason: e.desc().to_string(),
            })?
            .ok_or_else(|| JobUserError::Missing(name.to_string()))?;
        Ok(JobUser {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir,
        })
    }

    /// Gives `dir` and everything below it to this user, never following a symbolic link
    /// (a checkout may hold links to anywhere). Only safe while no process of this user can
    /// reach `dir`: the caller makes sure of that.
    pub(crate) fn hand_over(&self, dir: &Path) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            self.own(&path)?;
            if entry.file_type()?.is_dir() {
                self.hand_over(&path)?;
            }
        }
        self.own(dir)
    }

    pub(crate) fn own(&self, path: &Path) -> io::Result<()> {
        lchown(path, Some(self.uid), Some(self.gid))
    }
}
