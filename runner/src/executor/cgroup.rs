//! A cgroup (v2) per job, when the machine lets the runner make them: the one container a
//! job's processes cannot leave by `setsid`, double forks or a cleared environment, and that
//! the kernel kills whole with one write (`cgroup.kill`).
//!
//! The runner's job cgroups live under one cgroup of its own, `conveyor-jobs-<pid>`, beside
//! the runner in its cgroup, so the guard kills every job of a dead runner with one write
//! too. Nothing is enabled in `cgroup.subtree_control`: the cgroups only group, never limit,
//! which keeps them legal under the "no internal processes" rule wherever the runner sits.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Where this process's job cgroups are made; `None` when cgroups are unavailable here.
static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();

/// The runner's job cgroup root, made and probed on first use.
pub(crate) fn root() -> Option<&'static Path> {
    ROOT.get_or_init(|| {
        let own = own_cgroup_dir()?;
        let root = own.join(format!("conveyor-jobs-{}", std::process::id()));
        match make_root(&root) {
            Ok(()) => {
                tracing::info!(cgroup = %root.display(), "each job runs in a cgroup of its own");
                Some(root)
            }
            Err(e) => {
                tracing::info!(
                    "jobs are tracked by process group and an environment cookie, not by cgroup: \
                     {} is not usable ({e})",
                    own.display()
                );
                let _ = std::fs::remove_dir(&root);
                None
            }
        }
    })
    .as_deref()
}

/// Creates the root and proves a job could join a cgroup under it the way jobs do: moved
/// there by the runner while it waits on its stdin, before it runs anything.
fn make_root(root: &Path) -> io::Result<()> {
    sweep_dead_roots(root.parent().unwrap_or(root));
    std::fs::create_dir_all(root)?;
    let probe = root.join("probe");
    std::fs::create_dir_all(&probe)?;
    let joined = probe_join(&probe);
    let removed = remove(&probe);
    joined.and(removed)
}

fn probe_join(probe: &Path) -> io::Result<()> {
    let mut child = Command::new(super::process::bash())
        .arg("-c")
        .arg("read -r _")
        .arg("conveyor-cgroup-probe")
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let joined = join(probe, child.id());
    // Closing its stdin lets it end, moved or not.
    drop(child.stdin.take());
    let _ = child.wait();
    joined
}

/// Moves process `pid` into the cgroup `dir`.
pub(crate) fn join(dir: &Path, pid: u32) -> io::Result<()> {
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
}

/// The runner's own cgroup directory, from `/proc/self/cgroup` and the cgroup2 mount.
fn own_cgroup_dir() -> Option<PathBuf> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    cgroup_dir(&cgroup, &mounts)
}

/// Where the v2 cgroup named in `cgroup` (a `/proc/self/cgroup`) is, given `mounts` (a
/// `/proc/self/mountinfo`): the mount may show only part of the hierarchy (its root field).
fn cgroup_dir(cgroup: &str, mounts: &str) -> Option<PathBuf> {
    let own = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    // Fields: id parent dev root mountpoint options… - fstype source superoptions.
    mounts.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next() != Some("cgroup2") {
            return None;
        }
        let mut fields = left.split(' ').skip(3);
        let (root, mount) = (fields.next()?, fields.next()?);
        let rel = own.strip_prefix(root.trim_end_matches('/'))?;
        Some(Path::new(mount).join(rel.trim_start_matches('/')))
    })
}

/// Removes the roots of runners that died with their guard (emptied already: a cgroup
/// whose processes are gone). Non-empty or live ones refuse `rmdir` and stay.
fn sweep_dead_roots(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("conveyor-jobs-")) else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let _ = remove(&entry.path());
    }
}

/// A new, empty cgroup for one job.
pub(crate) fn create(name: &str) -> Option<PathBuf> {
    let dir = root()?.join(name);
    match std::fs::create_dir(&dir) {
        Ok(()) => Some(dir),
        Err(e) => {
            tracing::warn!(cgroup = %dir.display(), "cannot create the job's cgroup: {e}");
            None
        }
    }
}

/// Whether any process is still in the cgroup (or one below it).
pub(crate) fn populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .map(|events| events.lines().any(|l| l == "populated 1"))
        .unwrap_or(false)
}

/// SIGKILLs every process in the cgroup and below, including any forked meanwhile.
pub(crate) fn kill(dir: &Path) {
    match std::fs::write(dir.join("cgroup.kill"), b"1") {
        Ok(()) => {}
        // Kernels before 5.14 have no cgroup.kill: kill the members until none is left.
        Err(e) if e.kind() == io::ErrorKind::NotFound => kill_members(dir),
        Err(e) => tracing::warn!(cgroup = %dir.display(), "cannot kill the job's cgroup: {e}"),
    }
}

fn kill_members(dir: &Path) {
    for _ in 0..100 {
        let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
            return;
        };
        let pids: Vec<i32> = procs.lines().filter_map(|l| l.parse().ok()).collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            super::tree::sigkill(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Removes an empty cgroup and the empty ones below it.
pub(crate) fn remove(dir: &Path) -> io::Result<()> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = remove(&entry.path());
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v2_cgroup_is_found_under_a_hybrid_mount() {
        let cgroup = "4:memory:/x\n0::/system.slice/runner.service\n";
        let mounts = "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                      35 25 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup_dir(cgroup, mounts),
            Some(PathBuf::from(
                "/sys/fs/cgroup/unified/system.slice/runner.service"
            ))
        );
    }

    #[test]
    fn a_namespaced_mount_shows_the_cgroup_at_its_root() {
        let cgroup = "0::/\n";
        let mounts = "700 690 0:40 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n";
        assert_eq!(
            cgroup_dir(cgroup, mounts),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
    }

    #[test]
    fn no_cgroup2_mount_means_no_cgroups() {
        let mounts = "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(cgroup_dir("0::/\n", mounts), None);
        assert_eq!(cgroup_dir("4:memory:/\n", mounts), None);
    }
}
