//! The per-run directory: `<work_root>/<job_run_id>-<attempt>/` holding `ws/` (the job's
//! working directory) and `meta/` (conveyor's wrapper and output files, out of the job's way).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use conveyor_core::protocol::Lease;

use super::ExecError;

/// Set to `1` to keep workspaces after their run, for debugging.
const KEEP_VAR: &str = "CONVEYOR_KEEP_WORKSPACES";

#[derive(Debug)]
pub(crate) struct Workspace {
    pub root: PathBuf,
    pub ws: PathBuf,
    pub meta: PathBuf,
}

impl Workspace {
    pub fn run_script(&self) -> PathBuf {
        self.meta.join("run.sh")
    }

    pub fn outputs_bin(&self) -> PathBuf {
        self.meta.join("outputs.bin")
    }

    pub fn output_env(&self) -> PathBuf {
        self.meta.join("output.env")
    }

    /// Creates a fresh workspace, replacing one a crashed run may have left behind.
    pub async fn create(work_root: &Path, lease: &Lease) -> Result<Self, ExecError> {
        let id = &lease.job_run_id;
        if id.is_empty() || id.starts_with('.') || id.contains(['/', '\0']) {
            return Err(ExecError::BadRunId(id.clone()));
        }
        let root = work_root.join(format!("{id}-{}", lease.attempt));
        let ws = Self {
            ws: root.join("ws"),
            meta: root.join("meta"),
            root,
        };
        let (root, work, meta) = (ws.root.clone(), ws.ws.clone(), ws.meta.clone());
        blocking(move || {
            if fs::symlink_metadata(&root).is_ok() {
                remove_tree(&root)?;
            }
            fs::create_dir_all(&root)?;
            fs::create_dir(work)?;
            fs::DirBuilder::new().mode(0o700).create(meta)
        })
        .await
        .map_err(|source| ExecError::Workspace {
            path: ws.root.clone(),
            source,
        })?;
        Ok(ws)
    }

    /// Removes the workspace unless `CONVEYOR_KEEP_WORKSPACES=1`; a failure is only logged,
    /// since the run's result is already decided.
    pub async fn dispose(self) {
        if std::env::var_os(KEEP_VAR).is_some_and(|v| v == "1") {
            tracing::info!(workspace = %self.root.display(), "keeping workspace ({KEEP_VAR}=1)");
            return;
        }
        let root = self.root.clone();
        if let Err(e) = blocking(move || remove_tree(&root)).await {
            tracing::warn!(workspace = %self.root.display(), error = %e, "could not remove workspace");
        }
    }
}

/// Copies `src`'s contents into `dst`: files, directories, symlinks as symlinks; a top-level
/// `.git` is skipped so the job does not see the runner's own repository state.
pub(crate) async fn copy_source(src: &str, dst: &Path) -> Result<(), ExecError> {
    let (from, to) = (PathBuf::from(src), dst.to_path_buf());
    blocking(move || {
        if !fs::metadata(&from)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "it is not a directory",
            ));
        }
        copy_dir(&from, &to, true)
    })
    .await
    .map_err(|e| ExecError::CopySource {
        path: src.to_string(),
        reason: e.to_string(),
    })
}

fn copy_dir(from: &Path, to: &Path, top: bool) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if top && name == ".git" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        let copied = if kind.is_symlink() {
            symlink(fs::read_link(&src)?, &dst)
        } else if kind.is_dir() {
            fs::create_dir(&dst).and_then(|()| copy_dir(&src, &dst, false))
        } else if kind.is_file() {
            fs::copy(&src, &dst).map(drop)
        } else {
            // Sockets, fifos and devices are not source.
            Ok(())
        };
        copied.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
    }
    Ok(())
}

/// `remove_dir_all`, retried after making directories writable: jobs (Go's module cache,
/// for one) leave read-only directories behind.
fn remove_tree(root: &Path) -> io::Result<()> {
    match fs::remove_dir_all(root) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(root);
            fs::remove_dir_all(root)
        }
        other => other,
    }
}

fn make_writable(dir: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mut perms = meta.permissions();
    perms.set_mode(perms.mode() | 0o700);
    let _ = fs::set_permissions(dir, perms);
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            make_writable(&entry.path());
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("a file task stopped: {e}"))))
}
