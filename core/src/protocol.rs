//! The runner protocol: the messages between orchestrator and runner, in one place.
//!
//! A runner takes a [`QueueMessage`] from its fleet's queue and claims it
//! (`POST /api/v1/runner/claim`). The claim succeeds only if the job run is still queued
//! at that attempt; the orchestrator then hands out a [`JobSpec`] carrying a fresh lease
//! token. Every later call — heartbeat, log batch, completion — carries
//! `(job_run_id, attempt, lease_token)` and is refused (409) once the lease is gone, so a
//! runner that lost its lease can never overwrite the job's result: exactly once.
//!
//! | call | body | answer |
//! |---|---|---|
//! | `POST /api/v1/runner/claim` | [`ClaimRequest`] | 200 [`JobSpec`] (secret values in `env`, their names in `secrets`), or 409 when already taken or stale |
//! | `POST /api/v1/runner/heartbeat` | [`Heartbeat`] (or just the [`Lease`]) | 200 [`HeartbeatReply`], or 409 when the lease is gone |
//! | `POST /api/v1/runner/logs` | [`LogBatch`] | 204, or 409 |
//! | `POST /api/v1/runner/complete` | [`Completion`] | 204, or 409 (the result is discarded) |
//! | `POST /api/v1/runner/release` | [`Lease`] | 204 (re-queued as a lost attempt), or 409 when the lease is gone |
//! | `PUT /api/v1/runner/artifacts?path=P` | the file's bytes, streamed; lease headers and [`SHA256_HEADER`] | 201 [`ArtifactRef`], 409 when the lease is gone (nothing stored), 400 over the size limit or when the SHA-256 differs |
//! | `GET /api/v1/runner/artifacts/{id}` | lease headers | 200 the file's bytes, or 409 |
//! | `POST /api/v1/runner/caches/lookup` | [`CacheLookup`] | 200 [`CacheHit`], 204 when there is none, or 409 |
//! | `GET /api/v1/runner/caches/{id}` | lease headers | 200 the cache's archive, or 409 |
//! | `PUT /api/v1/runner/caches?name=N&key=K` | the archive, streamed; lease headers and [`SHA256_HEADER`] | 201 saved, 204 already there, 403 for a pull request's build, 409, 400 |
//!
//! **Files.** Artifacts and caches travel through the orchestrator (runners never hold
//! storage credentials), streamed, each call fenced by the lease it carries in the headers
//! [`LEASE_HEADERS`]; a job's [`JobSpec::input_artifacts`] are what it receives before
//! `pre-run`, [`JobSpec::artifact_paths`] what it sends after, and [`JobSpec::caches`] the
//! caches it restores and saves.
//!
//! A release is a runner handing back a job it killed unfinished because the runner is
//! stopping: the job run goes back to the queue at once, as a lost attempt (counted against
//! the lost-runner limit, not `retries`), instead of when its lease expires. No completion
//! follows a release.
//!
//! **Secrets.** A job's secrets travel in [`JobSpec::env`] like its other variables: the
//! orchestrator decrypts each secret the job names (`secrets: [NAME]`) at claim time and puts
//! its value in `env` under its name, and lists that name in [`JobSpec::secrets`]. The runner
//! masks those values (`***`) in every log line it ships and in the `STDOUT` output, and fails
//! the job — reporting no outputs — when an output's value contains one. Values shorter than
//! [`MIN_MASKED_CHARS`] characters are neither masked nor refused (they would star out
//! ordinary text); the job's log says so. A runner older than this field ignores it, and an
//! orchestrator older than it sends none (`#[serde(default)]`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::model::ScriptSource;
use crate::model::{Cache, Output};

/// What a queue carries: a hint that this job run, at this attempt, is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMessage {
    pub job_run_id: String,
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    pub job_run_id: String,
    pub attempt: u32,
    /// The runner's name, shown in the UI.
    pub runner: String,
}

/// The fencing triple every call after the claim carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub job_run_id: String,
    pub attempt: u32,
    pub lease_token: String,
}

/// Everything a runner needs to execute one job run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub lease: Lease,
    /// How long the lease lasts without a heartbeat.
    pub lease_secs: u64,
    pub product: String,
    pub belt: String,
    pub job: String,
    pub build_id: String,
    pub build_number: u64,
    /// The script, references already rewritten to `${CONVEYOR_REF_n}` expansions.
    pub script: String,
    /// The job's environment: its `env`, the `CONVEYOR_*` variables and the values of
    /// its references. Values are data: they are never spliced into the script.
    pub env: Vec<(String, String)>,
    pub outputs: Vec<Output>,
    pub timeout_secs: Option<u64>,
    /// Where the job's `source` comes from, when it takes one.
    pub source: Option<SourceSpec>,
    /// `git:<url>` inputs, cloned into the workspace.
    pub git_inputs: Vec<String>,
    /// The names of the entries of [`JobSpec::env`] whose values are secrets: masked in the
    /// job's log and its `STDOUT` output, refused in its outputs. A name may appear in `env`
    /// more than once; every value under it is a secret.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The artifacts of the jobs this one depends on (and of its upstream products' builds),
    /// put at their paths in the workspace before `pre-run`; later entries win a path.
    #[serde(default)]
    pub input_artifacts: Vec<ArtifactRef>,
    /// What the job uploads when it ends: paths and globs relative to the workspace.
    #[serde(default)]
    pub artifact_paths: Vec<String>,
    /// Whether the artifacts are uploaded when the job fails too.
    #[serde(default)]
    pub artifacts_always: bool,
    #[serde(default)]
    pub caches: Vec<Cache>,
    /// Whether the job may save caches (a pull request's build may not).
    #[serde(default)]
    pub caches_writable: bool,
    /// The names of the entries of [`JobSpec::env`] written in the job's `env:`: the runner
    /// expands `$NAME`, `${NAME}` and `$$` in their values, once, against the job's
    /// environment (see [`crate::expand`]); every other entry is data, taken as it is.
    #[serde(default)]
    pub expand_env: Vec<String>,
    /// Where each line of [`JobSpec::script`] was written, so the log names the user's own
    /// file and line (see [`ScriptSource`]); `None` from an orchestrator older than it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_source: Option<ScriptSource>,
}

/// The headers that carry a file call's lease: job run id, attempt, lease token.
pub const LEASE_HEADERS: [&str; 3] = [
    "x-conveyor-job-run",
    "x-conveyor-attempt",
    "x-conveyor-lease-token",
];

/// The header with the hex SHA-256 of an uploaded file, checked against what arrived.
pub const SHA256_HEADER: &str = "x-conveyor-sha256";

/// A stored artifact: one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub id: String,
    /// Relative to the workspace.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Which cache a job would restore: its name and the key its files make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLookup {
    pub lease: Lease,
    pub name: String,
    pub key: String,
}

/// The cache to restore: the exact key, or the newest of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheHit {
    pub id: String,
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

/// Secret values (and each line of a multi-line one) shorter than this many characters are
/// not masked: masking `1` or `yes` would star out ordinary text and hide nothing worth
/// hiding. See `docs/decisions.md`.
pub const MIN_MASKED_CHARS: usize = 4;

/// The product's source at the build's commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceSpec {
    /// A directory on the runner's machine, copied into the workspace (`conveyor run`).
    Local { path: String },
    /// A git repository checked out at `sha`.
    Git { url: String, sha: String },
}

/// A lease renewal: the lease, and whether to renew it only once a third of it is spent.
/// A body of just the [`Lease`] (drivers, runners before `when_due`) renews at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    #[serde(flatten)]
    pub lease: Lease,
    /// Renew only when no more than two thirds of the lease are left; until then the
    /// renewal is a read, and the reply's [`HeartbeatReply::lease_ms_left`] says how long the
    /// lease still holds. A runner that asks must count its deadline from that.
    #[serde(default)]
    pub when_due: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The job was cancelled: kill it and complete with [`Outcome::Cancelled`].
    pub cancel: bool,
    /// How long the lease holds from the orchestrator's answer, in ms (absent from
    /// orchestrators before it: the lease then holds for its whole length from the renewal).
    #[serde(default)]
    pub lease_ms_left: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
    /// Lines conveyor itself writes (checkout, timeout, cancel).
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub stream: Stream,
    pub text: String,
    /// When the line was produced (ms since the Unix epoch), if the sender knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// The labels a driver logged the line with (`logger.log(message, **labels)`); none
    /// for a runner's lines.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A batch of log lines; `seq` numbers batches per attempt so a retried send is stored once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBatch {
    pub lease: Lease,
    pub seq: u64,
    pub lines: Vec<LogLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub lease: Lease,
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub outputs: BTreeMap<String, String>,
    /// Why the job could not run, when it never started (e.g. a checkout failed).
    pub error: Option<String>,
    /// The job's last log lines, shipped with the completion instead of in a batch of
    /// their own: the command lines of a job that ended quietly within the runner's hold.
    /// Stored with the completion, once, as the attempt's last batch; absent from older
    /// runners, and ignored by older orchestrators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<LogLine>,
    /// The runner has a slot for another job: a job run this completion readies on one of
    /// its fleets comes back claimed for it in the reply ([`CompletionReply`]), from the
    /// completion's own transaction, instead of through the fleet's queue. Absent from
    /// older runners (a 204, as before).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub take_next: bool,
}

/// The answer to a [`Completion`] that asked to `take_next`: the job run claimed for the
/// runner, if the completion readied one on its fleets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionReply {
    /// The job run claimed for the runner, under a lease of its own; `None` if the
    /// completion readied none on its fleets (or the one it readied could not run as
    /// written, and failed).
    pub next: Option<JobSpec>,
}
