//! The guard against a runner killed outright (SIGKILL): one small process per runner
//! watches it and, once it is gone, kills the process group of every job it was running —
//! so a lost runner leaves no job behind to finish a second time after the job is re-queued.
//! Each running job is a file named by its process group id in a directory the guard reads.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

const WATCH: &str = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
for f in "$2"/*; do [ -e "$f" ] && kill -KILL -- "-${f##*/}" 2>/dev/null; done
rm -rf "$2""#;

/// Starts the guard once per process; `None` if it could not be started.
fn dir() -> Option<&'static PathBuf> {
    DIR.get_or_init(|| {
        let me = std::process::id();
        // Memory-backed when the machine has /dev/shm: a file per running job, created and
        // deleted at job speed, costs nothing there.
        let base = Some(std::path::Path::new("/dev/shm"))
            .filter(|p| p.is_dir())
            .map_or_else(std::env::temp_dir, |p| p.to_path_buf());
        let dir = base.join(format!("conveyor-jobs-{me}"));
        std::fs::create_dir_all(&dir).ok()?;
        let started = Command::new("bash")
            .arg("-c")
            .arg(WATCH)
            .arg("conveyor-guard")
            .arg(me.to_string())
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        match started {
            Ok(_) => Some(dir),
            Err(e) => {
                tracing::warn!(
                    "cannot start the job guard: {e}; a killed runner may leave jobs running"
                );
                None
            }
        }
    })
    .as_ref()
}

/// Starts the guard if it is not running yet. Called before a job is spawned, so a runner
/// killed while the guard itself starts cannot leave that job unguarded; what remains is
/// the moment between the job's spawn and its file, microseconds.
pub fn start() {
    let _ = dir();
}

/// Registers a running job's process group until the returned value is dropped.
pub(crate) fn watch(pgid: i32) -> Option<Watched> {
    let path = dir()?.join(pgid.to_string());
    std::fs::write(&path, b"").ok()?;
    Some(Watched(path))
}

pub(crate) struct Watched(PathBuf);

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

use std::os::unix::process::CommandExt as _;
