//! Executes one job run: an empty workspace, the source checked out into it, the script run
//! by bash in its own process group, logs streamed line by line, outputs collected, and
//! every process the job started killed when it ends.
//!
//! The pieces, in the order a run goes through them: [`workspace`] (directories, local
//! source copy, emptying), [`checkout`] (git), [`tree`] (the marks a job's processes are
//! found by: [`cgroup`], cookie, group; and their kill), [`script`] (the wrapper that joins
//! the cgroup and records declared outputs), [`process`] (spawn, stream, timeout, cancel),
//! [`outputs`] (parsing, and refusing secrets in them). [`masking`] hides the job's secrets
//! in what it logs; [`job_user`] runs jobs as another user. [`supervisor`] is the guard
//! that kills a dead runner's jobs.

mod artifacts;
mod caches;
mod cgroup;
mod checkout;
mod commands;
mod job_user;
mod log;
mod masking;
mod outputs;
mod process;
mod script;
pub(crate) mod supervisor;
mod tree;
mod workspace;

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;

use conveyor_core::protocol::{JobSpec, LogLine, MIN_MASKED_CHARS, Outcome};
use tokio::sync::{mpsc, watch};

use crate::client::Client;
use commands::Commands;
use log::Log;
use masking::Secrets;
use process::{Ending, Finished};
use tree::JobTree;
use workspace::Workspace;

pub use job_user::{JobUser, JobUserError};
pub(crate) use log::now_ms;
pub use tree::COOKIE_VAR;

/// The directory name of a repository's mirror: a short hash of its URL.
pub(crate) fn mirror_key(url: &str) -> String {
    // FNV-1a: stable across runs and platforms, and no extra dependency for a file name.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Where and how job runs execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    /// Workspaces are created under here, one directory per job run attempt.
    pub work_root: PathBuf,
    /// How many bytes of the end of stdout become the `STDOUT` output.
    pub stdout_tail_bytes: usize,
    /// Whether each job gets a cgroup of its own when the machine allows it (see
    /// [`Isolation`]); off, jobs are found by process group and environment cookie only.
    pub job_cgroups: bool,
    /// The user jobs run as (`--job-user`); `None` runs them as the runner's own user.
    pub job_user: Option<JobUser>,
    /// Where the runner keeps its copies of cache archives, one directory per product.
    pub cache_dir: PathBuf,
    /// The most the copies in one product's directory may hold, in bytes.
    pub cache_dir_limit: u64,
    /// Whether the runner's copies are the only caches (`conveyor run`): nothing is looked
    /// up on or saved to the orchestrator.
    pub local_caches: bool,
}

impl ExecConfig {
    pub const DEFAULT_STDOUT_TAIL_BYTES: usize = 4096;

    /// The default for [`ExecConfig::cache_dir_limit`]: 5 GiB.
    pub const DEFAULT_CACHE_DIR_LIMIT: u64 = 5 << 30;

    /// Workspaces under `work_root`, cache copies in `work_root/caches`.
    pub fn new(work_root: impl Into<PathBuf>) -> Self {
        let work_root = work_root.into();
        Self {
            cache_dir: work_root.join("caches"),
            cache_dir_limit: Self::DEFAULT_CACHE_DIR_LIMIT,
            local_caches: false,
            work_root,
            stdout_tail_bytes: Self::DEFAULT_STDOUT_TAIL_BYTES,
            job_cgroups: true,
            job_user: None,
        }
    }

    /// How this configuration's jobs are contained on this machine.
    pub fn isolation(&self) -> Isolation {
        // Finding out creates the job cgroup root; the guard removes it when this process ends.
        supervisor::start();
        if self.job_cgroups && cgroup::root().is_some() {
            Isolation::Cgroup
        } else {
            Isolation::Cookie
        }
    }
}

/// How a job's processes are found when it must be killed (every time it ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A cgroup v2 per job (with the cookie and the group besides): nothing escapes it.
    Cgroup,
    /// The process group and the `CONVEYOR_JOB_COOKIE` environment mark: a process that
    /// starts with a cleared environment in a new session escapes.
    Cookie,
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self::new(std::env::temp_dir().join("conveyor-work"))
    }
}

/// How a job run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    pub outcome: Outcome,
    /// The script's exit code; `None` when it never ran, was killed, or died of a signal.
    pub exit_code: Option<i32>,
    /// Filled only when the run succeeded.
    pub outputs: BTreeMap<String, String>,
    /// Why the job could not run, as a sentence.
    pub error: Option<String>,
    /// Log lines still held back when the job ended (the command lines of a job that ended
    /// quietly within the hold): they travel with the completion, not in a batch.
    pub held: Vec<LogLine>,
}

impl ExecResult {
    fn ended(outcome: Outcome, exit_code: Option<i32>) -> Self {
        Self {
            outcome,
            exit_code,
            outputs: BTreeMap::new(),
            error: None,
            held: Vec::new(),
        }
    }

    /// A failure after the script exited 0: the exit code is still the script's.
    fn ran(self) -> Self {
        Self {
            exit_code: Some(0),
            ..self
        }
    }
}

/// Why a run stopped before its script could finish normally.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExecError {
    #[error(
        "could not prepare the workspace {}: {source}; check that the runner can write to its work root",
        path.display()
    )]
    Workspace { path: PathBuf, source: io::Error },
    #[error("copying the source directory {path} into the workspace failed: {reason}")]
    CopySource { path: String, reason: String },
    #[error("checkout of {url} failed: {reason}")]
    Checkout { url: String, reason: String },
    #[error("output `{name}` cannot be recorded: {reason}")]
    Output { name: String, reason: String },
    #[error(
        "output `{output}` contains the value of secret `{secret}`: outputs are shown to \
         everyone and passed on, so they never carry secrets"
    )]
    SecretInOutput { output: String, secret: String },
    #[error(
        "{what} is not a plain file the job wrote (it is a symbolic link, a fifo, a directory \
         or another user's file): outputs are read from plain files only"
    )]
    OutputFile { what: &'static str },
    #[error("artifact `{path}` could not be handed on: {reason}")]
    Artifact { path: String, reason: String },
    #[error(
        "artifact path `{pattern}` matched no file: the job did not write it (check the path, \
         relative to the workspace)"
    )]
    ArtifactMissing { pattern: String },
    #[error("the job's secrets cannot be masked: {0}")]
    Masking(String),
    #[error("bash was not found on PATH: install bash on the runner to run jobs")]
    BashMissing,
    #[error("could not start bash: {0}")]
    Spawn(io::Error),
    #[error("{what} failed: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

/// Runs one job run. `log` receives log lines as they are produced (send errors are ignored).
/// `cancel` resolves/changes to true when the job must be killed. Without an orchestrator to
/// talk to, artifacts are neither received nor sent, and caches are the runner's own copies.
pub async fn execute(
    spec: &JobSpec,
    cfg: &ExecConfig,
    log: mpsc::UnboundedSender<LogLine>,
    cancel: watch::Receiver<bool>,
) -> ExecResult {
    execute_with(spec, cfg, None, log, cancel).await
}

/// [`execute`], moving artifacts and caches through `client`'s orchestrator.
pub async fn execute_with(
    spec: &JobSpec,
    cfg: &ExecConfig,
    client: Option<&Client>,
    log: mpsc::UnboundedSender<LogLine>,
    mut cancel: watch::Receiver<bool>,
) -> ExecResult {
    let (secrets, unmaskable) = match Secrets::of(spec) {
        Ok(s) => (s, None),
        Err(e) => (Secrets::default(), Some(ExecError::Masking(e))),
    };
    let log = Log::new(log, secrets);
    // Before anything runs: a job whose secrets cannot be masked must not print them.
    if let Some(e) = unmaskable {
        return log.failed(e);
    }
    for name in &log.secrets().too_short {
        log.system(format!(
            "secret `{name}` is not masked: its value (or a line of it) is shorter than \
             {MIN_MASKED_CHARS} characters, which would star out ordinary text"
        ));
    }
    let ws = match Workspace::create(&cfg.work_root, cfg.job_user.as_ref()).await {
        Ok(ws) => ws,
        Err(e) => return log.failed(e),
    };
    let result = run_in(&ws, spec, cfg, client, &log, &mut cancel).await;
    ws.dispose().await;
    ExecResult {
        held: log.take_held(),
        ..result
    }
}

async fn run_in(
    ws: &Workspace,
    spec: &JobSpec,
    cfg: &ExecConfig,
    client: Option<&Client>,
    log: &Log,
    cancel: &mut watch::Receiver<bool>,
) -> ExecResult {
    match checkout::prepare(spec, ws, log, cancel).await {
        Ok(()) => {}
        Err(checkout::Stop::Cancelled) => return log.cancelled(),
        Err(checkout::Stop::Failed(e)) => return log.failed(e),
    }
    if let Some(client) = client
        && let Err(e) = artifacts::receive(spec, ws, client, log).await
    {
        return log.failed(e);
    }
    let restored = caches::restore(spec, ws, client, cfg, log).await;
    let result = run_script(ws, spec, cfg, log, cancel).await;
    hand_on(ws, spec, cfg, client, log, &restored, result).await
}

/// After the script: the job's artifacts sent (a success that cannot send them fails), and
/// its caches saved when it succeeded.
async fn hand_on(
    ws: &Workspace,
    spec: &JobSpec,
    cfg: &ExecConfig,
    client: Option<&Client>,
    log: &Log,
    restored: &[caches::Restored],
    result: ExecResult,
) -> ExecResult {
    let ok = result.outcome == Outcome::Succeeded;
    let failed = matches!(result.outcome, Outcome::Failed | Outcome::TimedOut);
    let send = !spec.artifact_paths.is_empty() && (ok || (failed && spec.artifacts_always));
    if let Some(client) = client.filter(|_| send)
        && let Err(e) = artifacts::send(spec, ws, client, log).await
    {
        if ok {
            return ExecResult {
                outputs: BTreeMap::new(),
                ..log.failed(e).ran()
            };
        }
        log.system(e.to_string());
    }
    if ok {
        caches::save(spec, ws, client, cfg, log, restored).await;
    }
    result
}

async fn run_script(
    ws: &Workspace,
    spec: &JobSpec,
    cfg: &ExecConfig,
    log: &Log,
    cancel: &mut watch::Receiver<bool>,
) -> ExecResult {
    if let Err(e) = ws.hand_over().await {
        return log.failed(e);
    }
    let mut tree = JobTree::new(cfg.job_cgroups);
    let nonce = mirror_key(tree.cookie());
    let offset = match script::write(spec, ws, tree.has_cgroup(), &nonce).await {
        Ok(offset) => offset,
        Err(e) => return log.failed(e),
    };
    let run_sh = ws.run_script().to_string_lossy().into_owned();
    let commands = Arc::new(Commands::new(spec, &nonce, &run_sh, offset));
    let command = process::bash_command(spec, ws, &tree);
    let limits = process::Limits {
        timeout_secs: spec.timeout_secs,
        tail_bytes: cfg.stdout_tail_bytes,
        cancel,
    };
    let finished = process::run(command, &mut tree, limits, log, &commands).await;
    tree.close();
    match finished {
        Ok(f) => conclude(f, spec, ws, log, &commands).await,
        Err(e) => log.failed(e),
    }
}

async fn conclude(
    finished: Finished,
    spec: &JobSpec,
    ws: &Workspace,
    log: &Log,
    commands: &Commands,
) -> ExecResult {
    let status = match finished.ending {
        Ending::TimedOut(secs) => {
            log.system(format!("timed out after {secs}s"));
            return ExecResult::ended(Outcome::TimedOut, None);
        }
        Ending::Cancelled => return log.cancelled(),
        Ending::Exited(status) => status,
    };
    let Some(code) = status.code() else {
        let (text, labels) = commands.failure(&signal_sentence(status), None);
        log.labelled(text, labels, None);
        return ExecResult::ended(Outcome::Failed, None);
    };
    // A success says nothing: a silent job then ships no log batch at all.
    if code != 0 {
        let what = format!("failed with exit status {code}");
        let (text, labels) = commands.failure(&what, Some(code));
        log.labelled(text, labels, None);
        return ExecResult::ended(Outcome::Failed, Some(code));
    }
    let collected = match outputs::collect(spec, ws, &finished.stdout_tail).await {
        Ok(collected) => collected,
        Err(e) => return log.failed(e).ran(),
    };
    if let Some((output, secret)) = log.secrets().leaked(&collected.values) {
        let e = ExecError::SecretInOutput {
            output: output.to_string(),
            secret: secret.to_string(),
        };
        return log.failed(e).ran();
    }
    if collected.trap_replaced {
        log.system(
            "the declared outputs were not recorded: the script replaced conveyor's EXIT trap; \
             append them to $CONVEYOR_OUTPUT instead"
                .to_string(),
        );
    }
    ExecResult {
        outputs: collected.values,
        ..ExecResult::ended(Outcome::Succeeded, Some(0))
    }
}

fn signal_sentence(status: ExitStatus) -> String {
    let Some(signo) = status.signal() else {
        return format!("ended without an exit code ({status})");
    };
    let name = nix::sys::signal::Signal::try_from(signo)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signo}"));
    let core = if status.core_dumped() {
        " (core dumped)"
    } else {
        ""
    };
    format!("was killed by signal {name}{core}")
}

/// Resolves when `cancel` is true; never, if its sender is gone without cancelling.
pub(crate) async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}
