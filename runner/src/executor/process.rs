//! Runs the wrapper with bash in its own process group: streams stdout and stderr to the log,
//! enforces the timeout, obeys cancel, and kills everything the job started when the run
//! ends (see [`super::tree`]) so that background processes cannot outlive it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use conveyor_core::expand::expand_env;
use conveyor_core::protocol::{JobSpec, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::commands::Commands;
use super::outputs::Tail;
use super::tree::{COOKIE_VAR, JobTree};
use super::workspace::Workspace;
use super::{ExecError, Log, cancelled};

/// Variables a job inherits from the runner; everything else comes from the spec. Nothing
/// that configures the runner — its token, its Redis URL, whatever the service manager put
/// in its environment — may reach a job. `LANG` is only a locale, and without it tools fall
/// back to ASCII and mangle the UTF-8 the log shows; `TMPDIR` and `USER` are the runner's
/// (the first may be private to it, the second is a job user's, when there is one).
const INHERITED: [&str; 2] = ["PATH", "LANG"];
/// How long readers may keep draining after the job is killed: a process the kill could not
/// find (one that cleared its environment, without cgroups) can hold a pipe open forever.
const DRAIN_BOUND: Duration = Duration::from_secs(2);
/// How long to wait for bash to be reaped after SIGKILL.
const REAP_BOUND: Duration = Duration::from_secs(5);
/// A line longer than this is sent in pieces, so a job printing no newlines cannot grow a
/// buffer without bound.
const MAX_LINE: usize = 64 * 1024;
/// The longest a command marker can be: a cut of a long line never splits one.
const MARKER_MAX: usize = 96;

pub(crate) enum Ending {
    Exited(ExitStatus),
    TimedOut(u64),
    Cancelled,
}

pub(crate) struct Finished {
    pub ending: Ending,
    pub stdout_tail: Vec<u8>,
}

/// `bash -eo pipefail meta/run.sh` in `ws/`, with a cleared environment.
/// bash by absolute path, found once on the runner's PATH: with a path the standard
/// library can start jobs with `posix_spawn` (no copy of the runner's page tables); a bare
/// name beside a replaced PATH forces a full `fork`.
pub(crate) fn bash() -> &'static std::path::Path {
    static BASH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BASH.get_or_init(|| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("bash"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| "bash".into())
    })
}

pub(crate) fn bash_command(spec: &JobSpec, ws: &Workspace, tree: &JobTree) -> Command {
    let mut cmd = Command::new(bash());
    cmd.arg("-eo")
        .arg("pipefail")
        .arg(ws.run_script())
        .current_dir(&ws.ws)
        .env_clear()
        // A job in a cgroup waits on its stdin to be moved there; see `script`.
        .stdin(if tree.has_cgroup() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in INHERITED {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    match &ws.user {
        Some(user) => {
            // Also drops the runner's supplementary groups (root's, among them).
            cmd.uid(user.uid).gid(user.gid);
            cmd.env("HOME", &user.home)
                .env("USER", &user.name)
                .env("LOGNAME", &user.name);
        }
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                cmd.env("HOME", home);
            }
        }
    }
    // The shell running the job, as a login would say. Without it bash looks the user up in
    // the password database to set it, at every start (~0.2 ms of a quick job).
    cmd.env("SHELL", bash());
    cmd.env("CONVEYOR_OUTPUT", ws.output_env());
    cmd.env("CONVEYOR_WORKSPACE", OsString::from(ws.ws.as_os_str()));
    for (k, v) in job_env(spec, &cmd) {
        cmd.env(k, v);
    }
    // Last, so a job's own `env` cannot replace the mark its processes are found by.
    cmd.env(COOKIE_VAR, tree.cookie());
    cmd
}

/// The job's environment: [`JobSpec::env`] with the values of its `env:` expanded, in
/// order, against what the command has so far (see `conveyor_core::expand`).
fn job_env(spec: &JobSpec, cmd: &Command) -> Vec<(String, String)> {
    let base: HashMap<String, String> = cmd
        .as_std()
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect();
    expand_env(&spec.env, &spec.expand_env, base)
}

/// How a run is bounded: its timeout, its cancel signal, and what its stdout tail keeps.
pub(crate) struct Limits<'a> {
    pub timeout_secs: Option<u64>,
    pub tail_bytes: usize,
    pub cancel: &'a mut watch::Receiver<bool>,
}

pub(crate) async fn run(
    mut command: Command,
    tree: &mut JobTree,
    limits: Limits<'_>,
    log: &Log,
    commands: &Arc<Commands>,
) -> Result<Finished, ExecError> {
    let Limits {
        timeout_secs,
        tail_bytes,
        cancel,
    } = limits;
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ExecError::BashMissing,
        _ => ExecError::Spawn(e),
    })?;
    // With process_group(0) the group id is bash's pid.
    tree.spawned(child.id());
    if let Some(mut go) = child.stdin.take() {
        // In its cgroup now (or not, and marked otherwise): let it run. It may be dead.
        let _ = go.write_all(b"\n").await;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let stdout = child.stdout.take().map(|out| {
        let pump = Pump::new(Stream::Stdout, log, tail_bytes, &stop_rx, commands);
        tokio::spawn(pump.run(out))
    });
    let stderr = child.stderr.take().map(|err| {
        let pump = Pump::new(Stream::Stderr, log, 0, &stop_rx, commands);
        tokio::spawn(pump.run(err))
    });

    // A job still running after the hold shows its commands while it runs (see `super::log`).
    let opener = {
        let log = log.clone();
        tokio::spawn(async move {
            sleep(super::log::HOLD).await;
            log.open();
        })
    };
    let ending = wait(&mut child, timeout_secs, cancel).await;
    opener.abort();
    // Before draining: a straggler holding the pipes open would otherwise hold the run.
    tree.kill_all().await;
    if !matches!(ending, Ok(Ending::Exited(_))) {
        let _ = timeout(REAP_BOUND, child.wait()).await;
    }
    let stdout_tail = drain(stdout, stderr, stop_tx).await;
    Ok(Finished {
        ending: ending.map_err(|source| ExecError::Io {
            what: "waiting for the job's script",
            source,
        })?,
        stdout_tail,
    })
}

async fn wait(
    child: &mut Child,
    timeout_secs: Option<u64>,
    cancel: &mut watch::Receiver<bool>,
) -> std::io::Result<Ending> {
    let deadline = timeout_secs.map(|secs| Instant::now() + Duration::from_secs(secs));
    let expired = async {
        match deadline {
            Some(at) => sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        status = child.wait() => status.map(Ending::Exited),
        () = expired => Ok(Ending::TimedOut(timeout_secs.unwrap_or_default())),
        () = cancelled(cancel) => Ok(Ending::Cancelled),
    }
}

/// Lets the readers finish what the pipes still hold, for at most [`DRAIN_BOUND`].
async fn drain(
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    stop: watch::Sender<bool>,
) -> Vec<u8> {
    let stopper = tokio::spawn(async move {
        sleep(DRAIN_BOUND).await;
        let _ = stop.send(true);
        // Hold the sender until aborted: dropping it would also read as "stop".
        std::future::pending::<()>().await;
    });
    let joined = |h: Option<JoinHandle<Vec<u8>>>| async move {
        match h {
            Some(h) => h.await.unwrap_or_default(),
            None => Vec::new(),
        }
    };
    let (tail, _) = tokio::join!(joined(stdout), joined(stderr));
    stopper.abort();
    tail
}

/// Reads one pipe: sends each line to the log, masked, and keeps the end of what it sent;
/// takes the command markers out of stdout, and tells bash's messages on stderr against the
/// user's file (see [`super::commands`]).
struct Pump {
    stream: Stream,
    log: Log,
    tail: Tail,
    stop: watch::Receiver<bool>,
    commands: Arc<Commands>,
}

impl Pump {
    fn new(
        stream: Stream,
        log: &Log,
        tail_bytes: usize,
        stop: &watch::Receiver<bool>,
        commands: &Arc<Commands>,
    ) -> Self {
        Self {
            stream,
            log: log.clone(),
            tail: Tail::new(tail_bytes),
            stop: stop.clone(),
            commands: commands.clone(),
        }
    }

    async fn run(mut self, mut reader: impl AsyncRead + Unpin) -> Vec<u8> {
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            let read = tokio::select! {
                biased;
                _ = self.stop.wait_for(|stop| *stop) => break,
                read = reader.read(&mut buf) => read,
            };
            let n = match read {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(stream = ?self.stream, error = %e, "could not read the job's output");
                    break;
                }
            };
            pending.extend_from_slice(&buf[..n]);
            self.send_lines(&mut pending);
        }
        if !pending.is_empty() {
            self.send(&pending, false);
        }
        self.tail.into_bytes()
    }

    /// Sends the complete lines of `pending`, and pieces of a line grown too long — each cut
    /// where no secret spans it, once enough has arrived to tell.
    fn send_lines(&mut self, pending: &mut Vec<u8>) {
        let mut start = 0;
        loop {
            let marker = match self.stream {
                Stream::Stdout => self.commands.find_marker(&pending[start..]),
                _ => None,
            };
            let upto = marker.map_or(pending.len(), |m| start + m);
            while let Some(i) = pending[start..upto].iter().position(|&b| b == b'\n') {
                self.line(&pending[start..start + i]);
                start += i + 1;
            }
            if !marker.is_some_and(|_| self.take_marker(pending, upto)) {
                break;
            }
        }
        let held_back = self.log.secrets().held_back();
        while pending.len() - start >= MAX_LINE + held_back {
            let cut = self.log.secrets().cut(&pending[start..], MAX_LINE);
            // Nor a marker: one starts no later than this before the cut.
            let cut = match pending[start + cut.saturating_sub(MARKER_MAX)..start + cut]
                .iter()
                .position(|&b| b == 0x1e)
            {
                Some(i) if cut > MARKER_MAX => cut - MARKER_MAX + i,
                _ => cut,
            };
            self.send(&pending[start..start + cut], false);
            start += cut;
        }
        pending.drain(..start);
    }

    /// Acts on the command marker at `at` and takes it out of `pending`, once it is whole:
    /// the output around it stays as the job wrote it (a line begun before the marker goes on
    /// after it). False while it is not whole.
    fn take_marker(&mut self, pending: &mut Vec<u8>, at: usize) -> bool {
        let Some(len) = pending[at..].iter().position(|&b| b == b'\n') else {
            return false;
        };
        self.commands.marker(&pending[at..at + len], &self.log);
        pending.drain(at..=at + len);
        true
    }

    /// One complete line: a message of bash's on stderr told against the user's file, or
    /// output as it is.
    fn line(&mut self, line: &[u8]) {
        if self.stream == Stream::Stderr
            && let Some(told) = self.commands.rewrite(line)
        {
            self.send(told.as_bytes(), true);
            return;
        }
        self.send(line, true);
    }

    /// The tail keeps what was sent, masked: the `STDOUT` output never shows a secret either.
    fn send(&mut self, piece: &[u8], newline: bool) {
        let masked = self.log.output(self.stream, piece);
        self.tail.push(&masked);
        if newline {
            self.tail.push(b"\n");
        }
    }
}
