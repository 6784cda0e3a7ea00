//! The `source` of a product run from local files: the git work tree that holds the file,
//! as it is now (HEAD plus uncommitted changes, ignored files left out), so `conveyor run`
//! tries what you are about to push.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A snapshot of a product's source and the commit it is based on.
pub struct Snapshot {
    pub path: PathBuf,
    pub sha: Option<String>,
    pub branch: Option<String>,
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Copies the work tree holding `file` into `into` (tracked and untracked files, not
/// ignored ones). Outside a git work tree, the file's directory is used as it is.
pub fn snapshot(file: &Path, into: &Path) -> std::io::Result<Snapshot> {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(top) = git(dir, &["rev-parse", "--show-toplevel"]) else {
        return Ok(Snapshot {
            path: std::fs::canonicalize(dir)?,
            sha: None,
            branch: None,
        });
    };
    let top = PathBuf::from(top);
    let listing = Command::new("git")
        .arg("-C")
        .arg(&top)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()?;
    std::fs::create_dir_all(into)?;
    for name in listing.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let rel = PathBuf::from(String::from_utf8_lossy(name).into_owned());
        let from = top.join(&rel);
        let Ok(meta) = std::fs::symlink_metadata(&from) else {
            continue;
        };
        let to = into.join(&rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if meta.is_file() {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(Snapshot {
        path: into.to_path_buf(),
        sha: git(&top, &["rev-parse", "HEAD"]),
        branch: git(&top, &["symbolic-ref", "--quiet", "--short", "HEAD"]),
    })
}
