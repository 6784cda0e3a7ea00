//! Rows as the tables hold them, decoded with `FromRow`, and the statements that select
//! them; each turns into the domain type the store gives out (JSON columns parsed, counts
//! narrowed).

use sqlx::FromRow;

use super::{from_json, outputs_of};
use crate::error::{Result, corrupt};
use crate::types::{BuildView, JobRunView, ProductRecord, RunnerView};

pub(crate) const PRODUCT_ONE: &str = "SELECT name, yaml, model, repo, branch, webhook_secret, \
     source_path, head_sha, config_path FROM products WHERE name = $1";
pub(crate) const PRODUCT_ALL: &str = "SELECT name, yaml, model, repo, branch, webhook_secret, \
     source_path, head_sha, config_path FROM products ORDER BY name";

#[derive(FromRow)]
pub(crate) struct ProductRow {
    name: String,
    yaml: String,
    model: String,
    repo: Option<String>,
    branch: Option<String>,
    webhook_secret: Option<String>,
    source_path: Option<String>,
    head_sha: Option<String>,
    config_path: Option<String>,
}

impl ProductRow {
    pub(crate) fn record(self) -> Result<ProductRecord> {
        Ok(ProductRecord {
            model: from_json(&self.model)?,
            name: self.name,
            yaml: self.yaml,
            repo: self.repo,
            branch: self.branch,
            webhook_secret: self.webhook_secret,
            source_path: self.source_path,
            head_sha: self.head_sha,
            config_path: self.config_path,
        })
    }
}

pub(crate) const BUILD_ONE: &str = "SELECT id, product, belt, number, status, trigger, \
     upstream_build_id, git_ref, sha, error, created_at, finished_at, forge_status, resource, \
     event, context FROM builds WHERE id = $1";
#[derive(FromRow)]
pub(crate) struct BuildRow {
    id: String,
    product: String,
    belt: String,
    number: i64,
    status: String,
    trigger: String,
    upstream_build_id: Option<String>,
    git_ref: Option<String>,
    sha: Option<String>,
    error: Option<String>,
    created_at: i64,
    finished_at: Option<i64>,
    forge_status: Option<String>,
    resource: Option<String>,
    event: Option<String>,
    context: Option<String>,
}

impl BuildRow {
    /// The build without its jobs.
    pub(crate) fn view(self) -> Result<BuildView> {
        Ok(BuildView {
            trigger: from_json(&self.trigger)?,
            number: u64::try_from(self.number).map_err(corrupt)?,
            id: self.id,
            product: self.product,
            belt: self.belt,
            status: self.status,
            upstream_build_id: self.upstream_build_id,
            git_ref: self.git_ref,
            sha: self.sha,
            error: self.error,
            created_at: self.created_at,
            finished_at: self.finished_at,
            forge_status: self.forge_status,
            resource: self.resource.as_deref().map(from_json).transpose()?,
            event: self
                .event
                .unwrap_or_else(|| conveyor_core::driver::EVENT_CREATE.into()),
            context: self.context.as_deref().map(from_json).transpose()?,
            waiting_for: None,
            jobs: Vec::new(),
        })
    }
}

pub(crate) const JOBS_OF_BUILD: &str = "SELECT id, name, status, attempt, exit_code, outputs, \
     fleet, lease_owner, error, queued_at, started_at, finished_at, reason, decided_by, \
     waiting_for, cancel_requested FROM job_runs WHERE build_id = $1 ORDER BY idx";
pub(crate) const JOB_ONE: &str = "SELECT id, name, status, attempt, exit_code, outputs, \
     fleet, lease_owner, error, queued_at, started_at, finished_at, reason, decided_by, \
     waiting_for, cancel_requested FROM job_runs WHERE id = $1";

#[derive(FromRow)]
pub(crate) struct JobRow {
    id: String,
    name: String,
    status: String,
    attempt: i64,
    exit_code: Option<i64>,
    outputs: Option<String>,
    fleet: String,
    lease_owner: Option<String>,
    error: Option<String>,
    queued_at: Option<i64>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    reason: Option<String>,
    decided_by: Option<String>,
    waiting_for: Option<String>,
    cancel_requested: bool,
}

impl JobRow {
    pub(crate) fn view(self) -> Result<JobRunView> {
        Ok(JobRunView {
            attempts: u32::try_from(self.attempt).map_err(corrupt)?,
            exit_code: self
                .exit_code
                .map(i32::try_from)
                .transpose()
                .map_err(corrupt)?,
            outputs: outputs_of(self.outputs)?,
            id: self.id,
            name: self.name,
            status: self.status,
            driver: conveyor_core::driver::driver_of(&self.fleet).map(str::to_string),
            waiting: None,
            fleet: self.fleet,
            runner: self.lease_owner,
            error: self.error,
            queued_at: self.queued_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            reason: self.reason,
            decided_by: self.decided_by,
            waiting_for: self.waiting_for,
            cancel_requested: self.cancel_requested,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct RunnerRow {
    id: String,
    name: String,
    fleets: String,
    last_seen_at: i64,
    created_at: i64,
}

impl RunnerRow {
    pub(crate) fn view(self) -> Result<RunnerView> {
        Ok(RunnerView {
            fleets: from_json(&self.fleets)?,
            id: self.id,
            name: self.name,
            last_seen_at: self.last_seen_at,
            created_at: self.created_at,
        })
    }
}

/// Converts every row, stopping at the first that does not.
pub(crate) fn each<R, T>(rows: Vec<R>, f: impl Fn(R) -> Result<T>) -> Result<Vec<T>> {
    rows.into_iter().map(f).collect()
}
