//! The per-run directory: a slot `<work_root>/slot-<pid>-<n>/` holding `ws/` (the job's
//! working directory, empty when a run starts) and, beside it and out of the job's way,
//! conveyor's wrapper and output files. Slots are reused, emptied, from run to run.
//!
//! With a job user (`--job-user`) the slot stays the runner's (mode 0711: the job user may
//! pass through it, not list or change it), its `ws/` and `out/` (where the output files
//! are) are created afresh for each run and belong to the job user, and `ws/` is handed over
//! only after the checkout, while it is still the runner's own 0700 directory that no
//! process of the job user can enter. Fresh, not emptied: a process of another job of that
//! user could be sitting in an old `ws/` (its working directory) and swap its entries for
//! symbolic links while the runner walks it; and a slot the job user could write to would
//! let it plant links where the runner writes.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::ExecError;
use super::job_user::JobUser;

/// Set to `1` to keep workspaces after their run, for debugging.
const KEEP_VAR: &str = "CONVEYOR_KEEP_WORKSPACES";

#[derive(Debug)]
pub(crate) struct Workspace {
    pub root: PathBuf,
    pub ws: PathBuf,
    /// Where the output files are: `root` itself, or `root/out/` for a job user, who may not
    /// create files in `root`.
    out: PathBuf,
    pub user: Option<JobUser>,
}

impl Workspace {
    pub fn run_script(&self) -> PathBuf {
        self.root.join("run.sh")
    }

    pub fn outputs_bin(&self) -> PathBuf {
        self.out.join("outputs.bin")
    }

    pub fn output_env(&self) -> PathBuf {
        self.out.join("output.env")
    }

    /// Takes a free slot under `work_root` (or makes one) with an empty `ws/`. Slots are
    /// reused: a run leaves its slot emptied, so each run still starts from an empty
    /// workspace while the directories themselves are not created and deleted per run —
    /// creating inodes right after deleting others is slow on ext4 at thousands of runs.
    pub async fn create(work_root: &Path, user: Option<&JobUser>) -> Result<Self, ExecError> {
        let root = take_slot(work_root);
        let out = match user {
            Some(_) => root.join("out"),
            None => root.clone(),
        };
        let ws = Self {
            ws: root.join("ws"),
            root,
            out,
            user: user.cloned(),
        };
        let (root, work, out, user) = (
            ws.root.clone(),
            ws.ws.clone(),
            ws.out.clone(),
            ws.user.clone(),
        );
        blocking(move || {
            fs::create_dir_all(root.parent().unwrap_or(Path::new(".")))?;
            let mode = if user.is_some() { 0o711 } else { 0o700 };
            match fs::DirBuilder::new().mode(mode).create(&root) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            clear_run_files(&root)?;
            let Some(user) = user else {
                return match fs::create_dir(&work) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => empty_dir(&work),
                    other => other,
                };
            };
            // Set, not only created so: the slot may come from a run without a job user.
            fs::set_permissions(&root, fs::Permissions::from_mode(0o711))?;
            for dir in [&work, &out] {
                remove_if_there(dir)?;
                fs::DirBuilder::new().mode(0o700).create(dir)?;
            }
            user.own(&out)
        })
        .await
        .map_err(|source| ExecError::Workspace {
            path: ws.root.clone(),
            source,
        })?;
        Ok(ws)
    }

    /// Gives the checked-out `ws/` to the job user, if there is one. Nothing of that user
    /// can be inside yet: `ws/` is still the runner's, mode 0700, and new.
    pub async fn hand_over(&self) -> Result<(), ExecError> {
        let Some(user) = self.user.clone() else {
            return Ok(());
        };
        let ws = self.ws.clone();
        blocking(move || user.hand_over(&ws))
            .await
            .map_err(|source| ExecError::Workspace {
                path: self.ws.clone(),
                source,
            })
    }

    /// Empties the slot and hands it to the next run (kept as it is with
    /// `CONVEYOR_KEEP_WORKSPACES=1`).
    pub async fn dispose(self) {
        if std::env::var_os(KEEP_VAR).is_some_and(|v| v == "1") {
            tracing::info!(workspace = %self.root.display(), "keeping workspace ({KEEP_VAR}=1)");
            return;
        }
        let (root, ws, out) = (self.root.clone(), self.ws.clone(), self.out.clone());
        let emptied = match self.user {
            // `remove_dir_all` does not follow links, even ones swapped in while it works.
            Some(_) => {
                blocking(move || remove_if_there(&ws).and_then(|()| remove_if_there(&out))).await
            }
            None => blocking(move || empty_dir(&ws).and_then(|()| clear_run_files(&root))).await,
        };
        match emptied {
            Ok(()) => give_back(self.root),
            Err(e) => {
                tracing::warn!(workspace = %self.root.display(), error = %e, "could not empty workspace");
                let root = self.root.clone();
                let _ = blocking(move || remove_tree(&root)).await;
            }
        }
    }
}

fn remove_if_there(dir: &Path) -> io::Result<()> {
    match remove_tree(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
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
