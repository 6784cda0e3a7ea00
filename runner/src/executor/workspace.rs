//! The per-run directory: a slot `<work_root>/slot-<pid>-<n>/` holding `ws/` (the job's
//! working directory, empty when a run starts) and, beside it and out of the job's way,
//! conveyor's wrapper and output files. Slots are reused, emptied, from run to run.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::ExecError;

/// Set to `1` to keep workspaces after their run, for debugging.
const KEEP_VAR: &str = "CONVEYOR_KEEP_WORKSPACES";

#[derive(Debug)]
pub(crate) struct Workspace {
    pub root: PathBuf,
    pub ws: PathBuf,
}

impl Workspace {
    pub fn run_script(&self) -> PathBuf {
        self.root.join("run.sh")
    }

    pub fn outputs_bin(&self) -> PathBuf {
        self.root.join("outputs.bin")
    }

    pub fn output_env(&self) -> PathBuf {
        self.root.join("output.env")
    }

    /// Takes a free slot under `work_root` (or makes one) with an empty `ws/`. Slots are
    /// reused: a run leaves its slot emptied, so each run still starts from an empty
    /// workspace while the directories themselves are not created and deleted per run —
    /// creating inodes right after deleting others is slow on ext4 at thousands of runs.
    pub async fn create(work_root: &Path) -> Result<Self, ExecError> {
        let root = take_slot(work_root);
        let ws = Self {
            ws: root.join("ws"),
            root,
        };
        let (root, work) = (ws.root.clone(), ws.ws.clone());
        blocking(move || {
            fs::create_dir_all(root.parent().unwrap_or(Path::new(".")))?;
            match fs::DirBuilder::new().mode(0o700).create(&root) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            match fs::create_dir(&work) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => empty_dir(&work),
                other => other,
            }?;
            clear_run_files(&root)
        })
        .await
        .map_err(|source| ExecError::Workspace {
            path: ws.root.clone(),
            source,
        })?;
        Ok(ws)
    }

    /// Empties the slot and hands it to the next run (kept as it is with
    /// `CONVEYOR_KEEP_WORKSPACES=1`).
    pub async fn dispose(self) {
        if std::env::var_os(KEEP_VAR).is_some_and(|v| v == "1") {
            tracing::info!(workspace = %self.root.display(), "keeping workspace ({KEEP_VAR}=1)");
            return;
        }
        let (root, ws) = (self.root.clone(), self.ws.clone());
        match blocking(move || empty_dir(&ws).and_then(|()| clear_run_files(&root))).await {
            Ok(()) => give_back(self.root),
            Err(e) => {
                tracing::warn!(workspace = %self.root.display(), error = %e, "could not empty workspace");
                let root = self.root.clone();
                let _ = blocking(move || remove_tree(&root)).await;
            }
        }
    }
}

/// Free slots per work root.
static SLOTS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
static NEXT_SLOT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn take_slot(work_root: &Path) -> PathBuf {
    let mut free = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = free.iter().position(|p| p.parent() == Some(work_root)) {
        return free.swap_remove(i);
    }
    let n = NEXT_SLOT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    work_root.join(format!("slot-{}-{n}", std::process::id()))
}

fn give_back(root: PathBuf) {
    SLOTS.lock().unwrap_or_else(|p| p.into_inner()).push(root);
}

/// The files a run leaves beside `ws/`; their absence matters to the next run.
fn clear_run_files(root: &Path) -> io::Result<()> {
    for name in ["output.env", "outputs.bin"] {
        match fs::remove_file(root.join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Removes everything inside `dir`, keeping `dir`.
fn empty_dir(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let removed = match fs::symlink_metadata(&path)?.is_dir() {
            true => remove_tree(&path),
            false => fs::remove_file(&path),
        };
        match removed {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                make_writable(dir);
                make_writable(&path);
                if path.is_dir() {
                    remove_tree(&path)
                } else {
                    fs::remove_file(&path)
                }?;
            }
            other => other?,
        }
    }
    Ok(())
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
