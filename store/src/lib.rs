//! The `Store` boundary: every use case the orchestrator has for its database, with one
//! implementation per backend (SQLite, Postgres) sharing their SQL where it is the same.
//! No sqlx type crosses this boundary; `sqlx::` appears only in this crate.

mod actions;
mod postgres;
mod runs;
mod shared;
pub(crate) mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
pub(crate) mod txn;
mod values;

use std::collections::BTreeMap;

use async_trait::async_trait;
use conveyor_core::model::Product;
use conveyor_core::protocol::{ClaimRequest, Completion, JobSpec, Lease, LogBatch, QueueMessage};
use serde::{Deserialize, Serialize};

pub use postgres::PostgresStore;
pub use sql::token;
pub use sqlite::SqliteStore;

/// A store failure. The message is for logs, never for HTTP bodies.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    NotFound(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A registered product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRecord {
    pub name: String,
    pub yaml: String,
    pub model: Product,
    pub repo: Option<String>,
    pub branch: Option<String>,
    #[serde(skip_serializing)]
    pub webhook_secret: Option<String>,
    /// A local directory used as the product's `source` (`conveyor run`, `conveyor up`).
    pub source_path: Option<String>,
    /// The head of `branch` as last seen: the commit downstream builds check out.
    #[serde(default)]
    pub head_sha: Option<String>,
}

/// What started a build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BuildTrigger {
    /// The API, the CLI or the UI.
    Manual,
    /// A forge's webhook (push, tag or pull request).
    Webhook {
        forge: String,
        git_ref: String,
        /// The repository as the forge's API names it (`owner/name`, or GitLab's project
        /// id): where commit statuses go.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repository: Option<String>,
    },
    /// An upstream build finished successfully.
    Upstream {
        build_id: String,
        product: String,
        belt: String,
        number: u64,
    },
    /// Someone re-ran build `number` (id `build_id`) of the same product.
    Rerun {
        build_id: String,
        number: u64,
        /// The forge and repository the re-run build reported to, if it did: a re-run
        /// reports to them too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        forge: Option<ForgeTarget>,
    },
}

/// Where a build's commit statuses go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeTarget {
    pub forge: String,
    pub repository: String,
}

impl BuildTrigger {
    /// Whether the build reports its status to a forge (it came from a forge's webhook and
    /// the forge named its repository).
    pub fn reports_to_forge(&self) -> bool {
        self.forge_target().is_some()
    }

    /// The forge and repository the build reports to.
    pub fn forge_target(&self) -> Option<ForgeTarget> {
        match self {
            BuildTrigger::Webhook {
                forge,
                repository: Some(repository),
                ..
            } => Some(ForgeTarget {
                forge: forge.clone(),
                repository: repository.clone(),
            }),
            BuildTrigger::Rerun { forge, .. } => forge.clone(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewBuild {
    pub product: String,
    pub belt: String,
    pub trigger: BuildTrigger,
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    /// The config at the build's commit, when it is not the registered one (webhooks).
    pub model: Option<Product>,
}

/// Whether a build or job run status is final: nothing more happens to it.
pub fn is_final(status: &str) -> bool {
    matches!(
        status,
        "succeeded" | "failed" | "skipped" | "cancelled" | "config_error"
    )
}

/// A store's connection pool.
#[derive(Clone)]
pub enum PoolHandle {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl From<sqlx::SqlitePool> for PoolHandle {
    fn from(p: sqlx::SqlitePool) -> Self {
        PoolHandle::Sqlite(p)
    }
}

impl From<sqlx::PgPool> for PoolHandle {
    fn from(p: sqlx::PgPool) -> Self {
        PoolHandle::Postgres(p)
    }
}

/// A job run to put on a fleet's queue once the transaction has committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub fleet: String,
    pub msg: QueueMessage,
}

/// What a state change caused, for the caller to act on after commit.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Effects {
    pub dispatch: Vec<Dispatch>,
    /// Builds created (e.g. downstream products fired).
    pub created: Vec<String>,
    /// Builds that reached a final state.
    pub finished: Vec<String>,
    /// Builds, among those, whose forge is due a commit status.
    pub report: Vec<String>,
    /// How long each job run completed here ran, in ms (for metrics).
    pub durations_ms: Vec<i64>,
}

/// A job run as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRunView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub outputs: BTreeMap<String, String>,
    pub fleet: String,
    pub runner: Option<String>,
    pub error: Option<String>,
    /// When the job run last became ready (ms), for dispatch latency.
    pub queued_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// A build as the API and `conveyor run --json` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildView {
    pub id: String,
    pub product: String,
    pub belt: String,
    pub number: u64,
    pub status: String,
    pub trigger: BuildTrigger,
    pub upstream_build_id: Option<String>,
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// For builds that report to a forge: the last status the forge was told (empty before
    /// the first report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forge_status: Option<String>,
    pub jobs: Vec<JobRunView>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BuildFilter {
    pub product: Option<String>,
    pub status: Option<String>,
    pub limit: Option<u32>,
}

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    pub id: i64,
    pub attempt: u32,
    pub stream: String,
    pub text: String,
    pub at: i64,
}

/// A successful claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub spec: JobSpec,
    /// How long the job run waited from ready to claimed, in ms.
    pub waited_ms: i64,
}

/// Job runs in one state on one fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCount {
    pub status: String,
    pub fleet: String,
    pub count: u64,
}

/// A registered runner as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerView {
    pub id: String,
    pub name: String,
    pub fleets: Vec<String>,
    pub last_seen_at: i64,
    pub created_at: i64,
}

/// Every use case the orchestrator has for its database.
#[async_trait]
pub trait Store: Send + Sync {
    /// Registers a product, or replaces its config.
    async fn put_product(&self, p: &ProductRecord, now: i64) -> Result<()>;
    async fn product(&self, name: &str) -> Result<Option<ProductRecord>>;
    async fn products(&self) -> Result<Vec<ProductRecord>>;

    /// Writes the build, its job runs and edges in one transaction; the job runs with no
    /// unmet dependency are returned for dispatch.
    async fn create_build(&self, new: &NewBuild, now: i64) -> Result<(String, Effects)>;
    /// Takes a queued job run at this attempt; `None` when it is not (duplicate or stale).
    async fn claim(&self, req: &ClaimRequest, lease_ms: i64, now: i64) -> Result<Option<Claim>>;
    /// Extends a lease; `Some(cancel)` while the lease holds, `None` once it is gone.
    async fn heartbeat(&self, lease: &Lease, lease_ms: i64, now: i64) -> Result<Option<bool>>;
    /// Stores a log batch under a live lease (a batch sent twice is stored once).
    async fn append_logs(&self, batch: &LogBatch, now: i64) -> Result<bool>;
    /// Records a result under a live lease and moves the build on; `None` if fenced out.
    async fn complete(&self, c: &Completion, now: i64) -> Result<Option<Effects>>;
    /// Re-queues running job runs whose lease expired (a lost runner), failing those
    /// lost more than `max_lost` times.
    async fn reap(&self, now: i64, max_lost: u32) -> Result<Effects>;
    /// At most `limit` job runs of `fleet` queued before `before`, oldest first, to re-send
    /// in case their message was lost.
    async fn stale_queued(&self, before: i64, fleet: &str, limit: u64) -> Result<Vec<Dispatch>>;
    /// How many job runs are queued on each fleet.
    async fn queued_by_fleet(&self) -> Result<Vec<(String, u64)>>;
    /// Cancels a build: queued and waiting job runs at once, running ones at their next
    /// heartbeat. `None` if there is no such build.
    async fn cancel_build(&self, id: &str, now: i64) -> Result<Option<Effects>>;

    async fn build(&self, id: &str) -> Result<Option<BuildView>>;
    async fn builds(&self, filter: &BuildFilter) -> Result<Vec<BuildView>>;
    /// Log lines of a job run after line id `after`, at most `limit`.
    async fn logs(&self, job_run_id: &str, after: i64, limit: u32) -> Result<Vec<LogRow>>;
    /// Builds created as a consequence of `id` (downstream products).
    async fn downstream_builds(&self, id: &str) -> Result<Vec<String>>;
    /// How many builds have not finished.
    async fn unfinished_builds(&self) -> Result<u64>;
    /// Registers a runner (or re-registers one by name, replacing its token); returns its id.
    async fn register_runner(
        &self,
        name: &str,
        fleets: &[String],
        token_hash: &str,
        now: i64,
    ) -> Result<String>;
    /// The runner whose token has this hash, marking it seen.
    async fn runner_seen(&self, token_hash: &str, now: i64) -> Result<Option<RunnerView>>;
    async fn runners(&self) -> Result<Vec<RunnerView>>;
    /// Records a build that cannot run because its config has errors: numbered like any
    /// build, state `config_error`, the message kept, no job run created.
    async fn record_config_error(&self, new: &NewBuild, error: &str, now: i64) -> Result<String>;
    /// Records a webhook delivery; false if it was recorded before (a replay).
    async fn record_delivery(&self, forge: &str, delivery_id: &str, now: i64) -> Result<bool>;
    /// Job runs by state and fleet, and how many runners hold a running job run.
    async fn run_counts(&self) -> Result<(Vec<RunCount>, u64)>;
    /// Builds created since `since` whose forge has not been told their current status.
    async fn forge_status_due(&self, since: i64, limit: u32) -> Result<Vec<String>>;
    /// Records that the forge was told `status` for build `id`.
    async fn set_forge_status(&self, id: &str, status: &str) -> Result<()>;
    /// One job run, as a build shows it.
    async fn job_run(&self, id: &str) -> Result<Option<JobRunView>>;
    /// The connection pool, for background tasks kept in the same database (apalis).
    fn pool_handle(&self) -> PoolHandle;
    /// Approves a `waiting` (manual) job run: it is queued and dispatched. `None` if no job
    /// run with this id is waiting.
    async fn approve_job_run(&self, id: &str, now: i64) -> Result<Option<Effects>>;
    /// Cancels one job run: at once if it has not started (its dependents are skipped), at
    /// its next heartbeat if it is running; a finished one is left as it is. `None` if
    /// there is no such job run.
    async fn cancel_job_run(&self, id: &str, now: i64) -> Result<Option<Effects>>;
    /// Starts a new build of build `id`'s product, belt, ref and commit, running the jobs
    /// that build ran; its trigger names the build it re-runs. `None` if there is no such
    /// build.
    async fn rerun_build(&self, id: &str, now: i64) -> Result<Option<(String, Effects)>>;
    /// The id of the build a job run belongs to.
    async fn build_of_job_run(&self, job_run_id: &str) -> Result<Option<String>>;
    /// A build's dependency edges as `(from, to)` job run ids: `to` waits for `from`.
    async fn job_edges(&self, build_id: &str) -> Result<Vec<(String, String)>>;
    /// The last `limit` log lines of a job run before line id `before` (or the end),
    /// oldest first.
    async fn log_tail(
        &self,
        job_run_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LogRow>>;
}

/// Opens the store a URL names: `sqlite://PATH` or `postgres://…`.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(std::sync::Arc::new(PostgresStore::open(url).await?))
    } else {
        Err(StoreError::Database(format!(
            "unsupported database URL `{url}`: use sqlite://PATH or postgres://…"
        )))
    }
}
