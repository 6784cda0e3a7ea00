//! Every process a job started, found and killed — at the job's end, timeout, cancel, when
//! the runner hands it back, and (through the guard) when the runner dies.
//!
//! A job's process group is not enough: `setsid`, a double fork or `nohup … &` leave it.
//! So each job carries three marks, strongest first:
//! - its own cgroup (when the machine allows, see [`super::cgroup`]): nothing leaves it;
//! - a cookie in its environment, `CONVEYOR_JOB_COOKIE`, inherited by everything it starts
//!   unless a process clears its environment; found by scanning `/proc/*/environ`, killing
//!   until a scan finds none (what Jenkins' ProcessTreeKiller does);
//! - its process group, for the moment between spawn and joining the cgroup.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::{cgroup, supervisor};

/// The variable that marks a job's processes.
pub const COOKIE_VAR: &str = "CONVEYOR_JOB_COOKIE";
/// How long to wait for killed processes to be gone before moving on.
const GONE_BOUND: Duration = Duration::from_secs(2);
/// How many `/proc` scans at most: each kills what the last one missed (forked meanwhile).
const SCAN_ROUNDS: usize = 50;

pub(crate) struct JobTree {
    cookie: String,
    cgroup: Option<PathBuf>,
    pgid: Option<Pid>,
    registration: Option<supervisor::Registration>,
    closed: bool,
}

impl JobTree {
    /// Marks a job about to start: the guard knows its cookie before any process carries it.
    pub(crate) fn new(use_cgroup: bool) -> Self {
        supervisor::start();
        let cookie = new_cookie();
        let registration = supervisor::register(&cookie);
        let cgroup = use_cgroup
            .then(|| cgroup::create(&format!("job-{cookie}")))
            .flatten();
        Self {
            cookie,
            cgroup,
            pgid: None,
            registration,
            closed: false,
        }
    }

    pub(crate) fn cookie(&self) -> &str {
        &self.cookie
    }

    /// Whether the job has a cgroup: its bash then waits to be moved into it.
    pub(crate) fn has_cgroup(&self) -> bool {
        self.cgroup.is_some()
    }

    /// Records the job's bash, which leads the job's process group, and moves it into the
    /// job's cgroup (it waits for that before it runs anything). The runner moves it, not
    /// the bash itself: a job user may not write to the runner's cgroup, where every move
    /// out of it must be allowed. A failed move leaves the job marked by group and cookie,
    /// and found by them: the cgroup it is not in is dropped.
    pub(crate) fn spawned(&mut self, pid: Option<u32>) {
        self.pgid = pid.and_then(|p| i32::try_from(p).ok()).map(Pid::from_raw);
        if let (Some(reg), Some(pgid)) = (&self.registration, self.pgid) {
            reg.set_group(pgid.as_raw());
        }
        if let (Some(dir), Some(pid)) = (&self.cgroup, pid)
            && let Err(e) = cgroup::join(dir, pid)
        {
            tracing::warn!(cgroup = %dir.display(), "cannot move the job into its cgroup: {e}");
            let _ = cgroup::remove(dir);
            self.cgroup = None;
        }
    }

    /// SIGKILLs everything of the job and waits (boundedly) until it is gone.
    pub(crate) async fn kill_all(&self) {
        if let Some(dir) = &self.cgroup {
            // The fast path of every job that left nothing behind: one read.
            if cgroup::populated(dir) {
                cgroup::kill(dir);
            }
        }
        self.kill_group();
        match &self.cgroup {
            Some(dir) => {
                let deadline = tokio::time::Instant::now() + GONE_BOUND;
                while cgroup::populated(dir) && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            // Without a cgroup the environment is the only trace of a process that left.
            // The scan reads all of /proc and may pause between rounds: off the runtime.
            None => {
                let cookie = self.cookie.clone();
                let _ = tokio::task::spawn_blocking(move || kill_by_cookie(&cookie)).await;
            }
        }
    }

    /// The same, without waiting: for a job whose future was dropped.
    fn kill_now(&self) {
        if let Some(dir) = &self.cgroup {
            cgroup::kill(dir);
        }
        self.kill_group();
        if self.cgroup.is_none() {
            kill_by_cookie(&self.cookie);
        }
    }

    fn kill_group(&self) {
        let Some(group) = self.pgid else { return };
        match killpg(group, Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => {
                tracing::warn!(pgid = group.as_raw(), error = %e, "could not kill the job's process group")
            }
        }
    }

    /// Removes the job's cgroup and its guard registration; the job must be dead.
    pub(crate) fn close(mut self) {
        self.closed = true;
        self.remove_cgroup();
    }

    fn remove_cgroup(&self) {
        let Some(dir) = self.cgroup.clone() else {
            return;
        };
        if cgroup::remove(&dir).is_ok() {
            return;
        }
        // Still emptying (a process in uninterruptible sleep): try again off the job's path.
        std::thread::spawn(move || {
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(50));
                if cgroup::remove(&dir).is_ok() {
                    return;
                }
            }
            tracing::warn!(cgroup = %dir.display(), "a killed job's cgroup is still not empty");
        });
    }
}

impl Drop for JobTree {
    /// A job abandoned mid-run (its task aborted, the runtime shutting down) is killed here,
    /// before its registration goes: nothing of it may outlive the runner's interest in it.
    fn drop(&mut self) {
        if !self.closed {
            self.kill_now();
            self.remove_cgroup();
        }
    }
}

/// Unique on this machine and of fixed width, so no cookie is a prefix of another (the
/// guard matches them as substrings of `/proc/*/environ`).
fn new_cookie() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!(
        "{:08x}-{:08x}-{nanos:016x}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed) as u32
    )
}

pub(crate) fn sigkill(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Kills every process whose environment carries the cookie, scanning again until a scan
/// finds none: a process may fork between the scan that saw it and its kill.
pub(crate) fn kill_by_cookie(cookie: &str) {
    let needle = format!("{COOKIE_VAR}={cookie}");
    for _ in 0..SCAN_ROUNDS {
        if !kill_marked(needle.as_bytes()) {
            return;
        }
        // SIGKILLed processes keep a readable environment until they exit; let them.
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn kill_marked(needle: &[u8]) -> bool {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    let mut found = false;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        // Gone, a zombie (empty), or not ours to read: none of those is a live job process.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|&b| b == 0).any(|var| var == needle)
            && let Ok(pid) = i32::try_from(pid)
        {
            sigkill(pid);
            found = true;
        }
    }
    found
}
