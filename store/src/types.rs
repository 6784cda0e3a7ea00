//! The domain types the store takes and gives: products, builds, job runs, logs, runners,
//! and the effects a transaction leaves for its caller to carry out after commit.

use std::collections::BTreeMap;

use conveyor_core::context::{BuildContext, Event};
use conveyor_core::model::Product;
use conveyor_core::protocol::{JobSpec, QueueMessage};
use serde::{Deserialize, Serialize};

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
    /// The file in `repo` the config is read from: `.conveyor.yml` when `None`, or
    /// `.conveyor/NAME.yml` (several products per repository).
    #[serde(default)]
    pub config_path: Option<String>,
}

impl ProductRecord {
    /// A product registered from its compiled config alone: its repository as the config
    /// names it, no branch, secret, local source or head yet, read from `.conveyor.yml`.
    pub fn of(model: Product, yaml: String) -> ProductRecord {
        ProductRecord {
            name: model.name.clone(),
            yaml,
            repo: model.repo.clone(),
            model,
            branch: None,
            webhook_secret: None,
            source_path: None,
            head_sha: None,
            config_path: None,
        }
    }
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
    /// A `schedule:` trigger's tick (milliseconds since the epoch, UTC).
    Schedule { cron: String, tick: i64 },
    /// A resource was created, updated or deleted (Conveyor CI's model): a pipeline's run,
    /// or the fan-out to the drivers of its type.
    Resource {
        #[serde(rename = "resource")]
        resource_type: String,
        name: String,
        version: u64,
        /// `create`, `update` or `delete`.
        event: String,
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

    /// The event a build of this trigger at `git_ref` counts as (a re-run keeps its
    /// build's context, so this is only its fallback).
    pub fn event(&self, git_ref: Option<&str>) -> Event {
        let r = git_ref.unwrap_or("");
        match self {
            BuildTrigger::Manual | BuildTrigger::Rerun { .. } => Event::Manual,
            BuildTrigger::Upstream { .. } => Event::Upstream,
            BuildTrigger::Schedule { .. } => Event::Schedule,
            BuildTrigger::Resource { .. } => Event::Resource,
            BuildTrigger::Webhook { .. } if conveyor_core::rules::is_pull_request(r) => {
                Event::PullRequest
            }
            BuildTrigger::Webhook { .. } if r.starts_with("refs/tags/") => Event::Tag,
            BuildTrigger::Webhook { .. } => Event::Push,
        }
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
    /// The resource event that started the build, if one did (pipelines).
    pub resource: Option<ResourceEvent>,
    /// What conditions read (webhooks: the event, branch and changed paths); `None`: the
    /// trigger's event at `git_ref`, paths unknown.
    pub context: Option<BuildContext>,
}

/// What happened to a resource, starting a build: the resource (JSON) and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceEvent {
    pub resource: serde_json::Value,
    /// `create`, `update` or `delete` (`conveyor_core::driver::BUILD_EVENTS`).
    pub event: String,
}

impl NewBuild {
    /// The build's context: the one it was given, else its trigger's at its ref.
    pub fn context(&self) -> BuildContext {
        self.context.clone().unwrap_or_else(|| {
            let r = self.git_ref.as_deref();
            BuildContext::at_ref(self.trigger.event(r), r)
        })
    }
}

/// A forge's webhook delivery and everything it starts, recorded in one transaction: the
/// delivery is kept only with its builds, so a delivery that failed half-way is not marked
/// seen and the forge's redelivery builds.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub forge: String,
    pub id: String,
    /// Products whose branch moved: their config and head as of the pushed commit.
    pub heads: Vec<ProductRecord>,
    pub builds: Vec<PlannedBuild>,
}

/// A build a delivery starts, or records as unable to run.
#[derive(Debug, Clone, PartialEq)]
pub enum PlannedBuild {
    Run(NewBuild),
    /// The config at the commit has errors: a `config_error` build with the message.
    ConfigError {
        build: NewBuild,
        error: String,
    },
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
    /// Builds cancelled because a newer build of their concurrency group superseded them.
    pub superseded: Vec<String>,
}

impl Effects {
    /// Adds what another transaction caused.
    pub fn absorb(&mut self, other: Effects) {
        self.dispatch.extend(other.dispatch);
        self.created.extend(other.created);
        self.finished.extend(other.finished);
        self.report.extend(other.report);
        self.durations_ms.extend(other.durations_ms);
        self.superseded.extend(other.superseded);
    }
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
    /// The driver that runs the job, for a `driver:` job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Why a queued job run is not being taken, when the orchestrator knows (no instance of
    /// its driver is connected); the store leaves it empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Why a skipped job run did not run (its `if`, or a decline and its reason).
    #[serde(default)]
    pub reason: Option<String>,
    /// Who approved or declined a manual job run.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// When it was approved or declined (ms since the epoch).
    #[serde(default)]
    pub decided_at: Option<i64>,
    /// What a `waiting` job run waits for: `approval`, or its concurrency group.
    #[serde(default)]
    pub waiting_for: Option<String>,
    /// A cancel was asked for while it runs: its runner stops it at its next heartbeat
    /// (within a second); shown as `cancelling`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_requested: bool,
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
    /// The resource that started the build (pipelines), else `null`.
    #[serde(default)]
    pub resource: Option<serde_json::Value>,
    /// What happened to that resource: `create`, `update` or `delete` (no resource: `create`).
    #[serde(default = "default_event")]
    pub event: String,
    /// The event, branch, tag and changed paths its conditions read.
    #[serde(default)]
    pub context: Option<BuildContext>,
    /// What a build that has not started waits for (its concurrency group).
    #[serde(default)]
    pub waiting_for: Option<String>,
    pub jobs: Vec<JobRunView>,
}

fn default_event() -> String {
    conveyor_core::driver::EVENT_CREATE.to_string()
}

/// Which builds a list shows, newest first: every filter optional, `before` the cursor of
/// the last build of the previous page ([`crate::cursor_of`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BuildFilter {
    pub product: Option<String>,
    pub belt: Option<String>,
    pub status: Option<String>,
    /// A branch (`main`, matching `refs/heads/main` too) or a full ref.
    #[serde(rename = "ref", alias = "branch")]
    pub git_ref: Option<String>,
    /// The trigger's kind: `manual`, `webhook`, `upstream`, `schedule` or `resource`.
    pub trigger: Option<String>,
    pub before: Option<String>,
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
    /// A driver's labels for the line; empty for a runner's lines.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The runner a protocol call comes from, as its own token identifies it: its name (the
/// lease owner) and the fleets it registered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub name: String,
    pub fleets: Vec<String>,
}

/// A successful claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub spec: JobSpec,
    /// How long the job run waited from ready to claimed, in ms.
    pub waited_ms: i64,
    /// The secrets the job names, sealed, `(name, sealed)`: the product's own, else the
    /// global one; none for a pull request's build unless its product allows.
    pub secrets: Vec<(String, String)>,
    /// Names the job asks for that are set neither for its product nor globally.
    pub missing_secrets: Vec<String>,
    /// Handed over again to a replayed completion (its wait was counted the first time).
    pub replayed: bool,
}

/// A secret as anyone may see it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    /// The product it belongs to, or empty for a global secret.
    pub scope: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
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

/// A stored artifact: one file of a job run's attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactView {
    pub id: String,
    pub build_id: String,
    pub job_run_id: String,
    /// The job's name.
    pub job: String,
    /// Relative to the job's workspace.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// Where the bytes are in object storage.
    #[serde(skip)]
    pub object: String,
    pub created_at: i64,
}

/// A file written to object storage, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The artifact's path, or the cache's key.
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub object: String,
}

/// The job run a live lease holds, with what its file calls need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub build_id: String,
    pub product: String,
    pub git_ref: Option<String>,
    /// The product's default branch, when it has a repository.
    pub default_branch: Option<String>,
}

/// A stored cache archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheView {
    pub id: String,
    pub product: String,
    /// The branch whose build saved it.
    pub scope: String,
    pub name: String,
    pub key: String,
    pub size: u64,
    pub sha256: String,
    #[serde(skip)]
    pub object: String,
    pub used_at: i64,
}

/// A driver as it registered: the resource types it listens to (its instances are runners
/// of the fleet `driver:NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverView {
    pub name: String,
    pub resources: Vec<String>,
    pub updated_at: i64,
}

/// What a claimed driver job's payload takes from the store beyond its job spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverContext {
    /// The job's name and the outputs it declares.
    pub job: String,
    pub outputs: Vec<String>,
    /// The build's resource (JSON text) and event, when a resource started it.
    pub resource: Option<String>,
    pub event: Option<String>,
    /// The job's references: `(env, text as written)`.
    pub refs: Vec<(String, String)>,
    /// The outputs of every job run the job depends on, directly or not, by job name.
    pub steps: BTreeMap<String, BTreeMap<String, String>>,
    /// For each product the job takes as an input: the outputs of the upstream build it
    /// reads, by job name.
    pub upstream: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
}
