//! The driver protocol: how a driver (a long-running program with a `reconcile` function,
//! Conveyor CI's model) takes the jobs written `driver: NAME`, over HTTP only.
//!
//! A job with `driver: NAME` is queued on the fleet queue `driver:NAME` ([`queue_of`]); the
//! colon cannot appear in a fleet name, so no runner fleet shares it. A driver instance
//! registers with a registration token and then calls with its own token, like a runner;
//! the orchestrator pops the driver's queue for it, so a driver needs neither Redis nor the
//! database. Every call after the claim is fenced by the lease, exactly as a runner's.
//!
//! | call | body | answer |
//! |---|---|---|
//! | `POST /api/v1/drivers/register` | [`DriverRegistration`] | 201 [`DriverRegistered`] (the instance's own token) |
//! | `POST /api/v1/drivers/claim` | [`DriverClaim`] | 200 [`DriverWork`], or 204 when nothing came within `wait_secs` |
//! | `POST /api/v1/drivers/heartbeat` | [`Lease`] | 200 `{"cancel": bool}`, or 409 when the lease is gone |
//! | `POST /api/v1/drivers/logs` | [`DriverLogBatch`] | 204, or 409 |
//! | `POST /api/v1/drivers/complete` | [`DriverCompletion`] | 204, or 409 (the result is discarded), or 422 |
//! | `POST /api/v1/drivers/release` | [`Lease`] | 204 (queued again at once), or 409 |
//! | `GET /api/v1/drivers` | — | 200 `{"drivers": [...]}`: names, resource types, instances |
//!
//! `docs/drivers.md` is the reference for SDK writers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::Lease;

/// What distinguishes a driver's queue from a runner fleet's.
pub const QUEUE_PREFIX: &str = "driver:";

/// The longest a claim waits for work.
pub const MAX_WAIT_SECS: u64 = 60;

/// The wait of a claim that names none.
pub const DEFAULT_WAIT_SECS: u64 = 30;

/// The queue (fleet) of driver `name`'s jobs.
pub fn queue_of(name: &str) -> String {
    format!("{QUEUE_PREFIX}{name}")
}

/// The driver whose queue `fleet` is, if it is a driver's.
pub fn driver_of(fleet: &str) -> Option<&str> {
    fleet.strip_prefix(QUEUE_PREFIX)
}

/// The event of a build no resource started, and of a pipeline's first step by default.
pub const EVENT_CREATE: &str = "create";

/// The event every step after a pipeline's first gets.
pub const EVENT_PROCESS: &str = "process";

/// The events a build may record as what started it.
pub const BUILD_EVENTS: [&str; 3] = ["create", "update", "delete"];

/// `POST /api/v1/drivers/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverRegistration {
    /// The driver's name, as jobs write it in `driver:`.
    pub driver: String,
    /// This instance, unique among the driver's (e.g. `host-pid`).
    pub instance: String,
    /// The resource types the driver listens to.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// The answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverRegistered {
    pub id: String,
    pub driver: String,
    pub instance: String,
    /// The instance's own token for every later call.
    pub token: String,
}

/// `POST /api/v1/drivers/claim`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverClaim {
    /// How long to wait for work, at most [`MAX_WAIT_SECS`]; [`DEFAULT_WAIT_SECS`] if absent.
    #[serde(default)]
    pub wait_secs: Option<u64>,
}

/// One job for a driver: what to reconcile, under which lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverWork {
    pub lease: Lease,
    /// How long the lease lasts without a heartbeat.
    pub lease_secs: u64,
    pub driver: String,
    /// `create`, `update` or `delete` (what happened to the resource), or `process` for a
    /// job that runs after other jobs of its build.
    pub event: String,
    /// The build's id: one run id for every job (pipeline step) of a build.
    pub run_id: String,
    pub payload: DriverPayload,
}

/// What a driver's `reconcile` receives as its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverPayload {
    pub build_id: String,
    pub build_number: u64,
    pub product: String,
    pub belt: String,
    pub job: String,
    pub attempt: u32,
    pub commit: Commit,
    /// The job's environment: its `env`, the `CONVEYOR_*` variables, its references'
    /// values (`CONVEYOR_REF_n`) and its secrets' values.
    pub env: BTreeMap<String, String>,
    /// The names of the entries of `env` that are secrets.
    pub secrets: Vec<String>,
    /// Each reference the job makes (`${job.OUT}`, as written; references appear in `if:`) and its value.
    pub refs: BTreeMap<String, String>,
    /// The outputs the job declares, which the result's `data` must hold on success.
    pub outputs: Vec<String>,
    /// The outputs of every job of the build this one depends on (directly or not), by job.
    pub steps: BTreeMap<String, BTreeMap<String, String>>,
    /// For each product the job takes as an input (`inputs: [PRODUCT]`, `PRODUCT.JOB`…),
    /// the outputs of the upstream build it reads, by job.
    #[serde(default)]
    pub upstream: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// The resource that started the build, if one did.
    pub resource: Option<Value>,
}

/// The commit a build is of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub sha: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// The branch, when `ref` names one (`refs/heads/B` → `B`).
    pub branch: Option<String>,
}

/// A driver's log line: a message and the labels it was logged with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverLogLine {
    pub message: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `POST /api/v1/drivers/logs`; `seq` numbers batches per attempt, so a batch sent twice
/// is stored once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverLogBatch {
    pub lease: Lease,
    pub seq: u64,
    pub lines: Vec<DriverLogLine>,
}

/// `POST /api/v1/drivers/complete`: the `DriverResult` of a reconcile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverCompletion {
    pub lease: Lease,
    pub success: bool,
    /// Logged; a failed job's reason.
    #[serde(default)]
    pub message: String,
    /// The job's outputs: string values only.
    #[serde(default)]
    pub data: BTreeMap<String, Value>,
}

/// The branch a ref names, if it names one.
pub fn branch_of(git_ref: &str) -> Option<&str> {
    git_ref.strip_prefix("refs/heads/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_queue_is_never_a_fleet_name() {
        let q = queue_of("slack");
        assert_eq!(q, "driver:slack");
        assert!(!crate::names::is_fleet_name(&q));
        assert_eq!(driver_of(&q), Some("slack"));
        assert_eq!(driver_of("default"), None);
    }

    #[test]
    fn a_claim_without_a_wait_reads_as_none() {
        let c: DriverClaim = serde_json::from_str("{}").unwrap();
        assert_eq!(c.wait_secs, None);
    }
}
