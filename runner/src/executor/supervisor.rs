//! The guard against a runner killed outright (SIGKILL, OOM, a crash): one small process per
//! runner process that learns of the runner's death the moment it happens and kills every
//! process of every job the runner was running — so a lost runner leaves nothing behind to
//! finish a second time after the job is re-queued.
//!
//! Death is noticed without polling: the guard's stdin is the read end of a pipe whose write
//! end only the runner holds (close-on-exec, so no job inherits it). The runner never writes;
//! the kernel closes the write end when the runner dies, and the guard's blocked `read` returns
//! at once. The guard then kills the runner's job cgroups (one write), each job's process
//! group, and every process whose environment carries a registered job cookie, scanning
//! `/proc` until none is left — and once more 50 ms later, for a job whose bash was between
//! fork and exec as the runner died (it carries its cookie only once exec is done). Each
//! running job is a file in the guard's directory, named by its cookie and holding its
//! process group id.
//!
//! The guard is bash, not this program re-executed: the runner code also runs inside
//! `conveyor` and inside test binaries, and forking without exec would need unsafe code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;

/// The guard's whole program. `$1` is the registration directory, `$2` the job cgroup root
/// (empty without cgroups). Signals are ignored: a Ctrl-C or a service stop must not take
/// the guard down before the runner, only the runner's end may end it.
const GUARD: &str = r#"trap '' INT TERM HUP QUIT PIPE
dir=$1 root=$2
while read -r _; do :; done
scan() {
  local pats=() f v
  for f in "$dir"/*; do [[ -e $f ]] && pats+=(-e "CONVEYOR_JOB_COOKIE=${f##*/}"); done
  (( ${#pats[@]} )) || return 0
  if command -v grep >/dev/null; then
    grep -laF "${pats[@]}" /proc/[0-9]*/environ 2>/dev/null
  else
    for f in /proc/[0-9]*/environ; do
      while IFS= read -r -d '' v; do
        [[ $v == CONVEYOR_JOB_COOKIE=* && -e $dir/${v#*=} ]] && { echo "$f"; break; }
      done < "$f"
    done 2>/dev/null
  fi
}
settled=0
for round in {1..100}; do
  [[ -n $root ]] && { echo 1 > "$root/cgroup.kill"; } 2>/dev/null
  for f in "$dir"/*; do
    [[ -e $f ]] && read -r pg < "$f" && [[ -n $pg ]] && kill -KILL -- "-$pg" 2>/dev/null
  done
  found=$(scan)
  if [[ -z $found ]]; then
    (( settled )) && break
    settled=1
    sleep 0.05
    continue
  fi
  settled=0
  for p in $found; do p=${p#/proc/}; kill -KILL "${p%/environ}" 2>/dev/null; done
done
rm -rf "$dir"
for try in {1..50}; do
  [[ -n $root && -d $root ]] || break
  rmdir "$root"/*/ "$root" 2>/dev/null
  [[ -d $root ]] && sleep 0.02
done
"#;

struct Guard {
    dir: PathBuf,
    cgroup_root: Option<&'static Path>,
    running: Mutex<Option<Running>>,
}

/// A live guard and the pipe end whose closing tells it the runner is gone.
struct Running {
    child: Child,
    _alive: std::io::PipeWriter,
}

static GUARD_STATE: OnceLock<Option<Guard>> = OnceLock::new();

fn guard() -> Option<&'static Guard> {
    GUARD_STATE
        .get_or_init(|| {
            // Memory-backed when the machine has /dev/shm: a file per running job, created and
            // deleted at job speed, costs nothing there.
            let base = Some(Path::new("/dev/shm"))
                .filter(|p| p.is_dir())
                .map_or_else(std::env::temp_dir, Path::to_path_buf);
            let dir = base.join(format!("conveyor-jobs-{}", std::process::id()));
            if let Err(e) = private_dir(&dir) {
                tracing::warn!(
                    "cannot create the job guard's directory {}: {e}; a killed runner may leave jobs running",
                    dir.display()
                );
                return None;
            }
            Some(Guard {
                dir,
                cgroup_root: super::cgroup::root(),
                running: Mutex::new(None),
            })
        })
        .as_ref()
}

/// The guard's directory is the runner's own: a job user may not list the running jobs'
/// cookies. Set, not only created so: a dead runner of the same pid may have left it.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Starts the guard, or starts it again if it died (a job may kill it: it runs as the same
/// user). Called before every job, so no job starts unguarded; costs a `waitpid` when the
/// guard is up.
pub(crate) fn start() {
    let Some(guard) = guard() else { return };
    let mut running = guard.running.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = running.as_mut() {
        match r.child.try_wait() {
            Ok(None) => return,
            Ok(Some(status)) => tracing::warn!("the job guard ended ({status}); starting another"),
            Err(e) => tracing::warn!("cannot check on the job guard: {e}; starting another"),
        }
    }
    *running = guard.spawn();
}

impl Guard {
    fn spawn(&self) -> Option<Running> {
        let spawned = std::io::pipe().and_then(|(read, write)| {
            let root = self.cgroup_root.map(Path::as_os_str).unwrap_or_default();
            let child = Command::new(super::process::bash())
                .arg("-c")
                .arg(GUARD)
                .arg("conveyor-guard")
                .arg(&self.dir)
                .arg(root)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .stdin(Stdio::from(read))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own group: a Ctrl-C at the runner's terminal does not reach it.
                .process_group(0)
                .spawn()?;
            Ok(Running {
                child,
                _alive: write,
            })
        });
        match spawned {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(
                    "cannot start the job guard: {e}; a killed runner may leave jobs running"
                );
                None
            }
        }
    }
}

/// Tells the guard about a job (by its cookie) until the value is dropped.
pub(crate) fn register(cookie: &str) -> Option<Registration> {
    let path = guard()?.dir.join(cookie);
    std::fs::write(&path, b"").ok()?;
    Some(Registration(path))
}

pub(crate) struct Registration(PathBuf);

impl Registration {
    /// Adds the job's process group, killed even before the job's bash joins its cgroup.
    pub(crate) fn set_group(&self, pgid: i32) {
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.0)
            .and_then(|mut f| writeln!(f, "{pgid}"));
        if let Err(e) = written {
            tracing::warn!("cannot tell the job guard about process group {pgid}: {e}");
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
