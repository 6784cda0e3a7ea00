//! The use cases: what conveyor does, whoever asks — the JSON API, the dashboard, a forge's
//! webhook, a command or the background loop. Each takes the [`Services`] context and
//! answers in domain types or a [`ServiceError`]; none knows HTTP (the `http` layer maps
//! errors to status codes). Reads with no rule of their own go straight to
//! `Services::store`.

pub mod builds;
pub mod catalog;
pub mod drivers;
mod effects;
pub mod files;
pub mod gauges;
pub mod history;
pub mod input;
pub mod logs;
pub mod maintenance;
pub mod pipelines;
pub mod products;
pub mod resources;
pub mod runs;
pub mod schedules;
pub mod secrets;
pub mod waiting;
pub mod webhooks;

use std::sync::Arc;

use conveyor_runner::queue::Queue;
use tokio::sync::broadcast;

pub use effects::Event;

use crate::blobs::Blobs;
use crate::forges::StatusQueue;
use crate::git::Repos;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::vault::Vault;

/// What the use cases run with: one per orchestrator node.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    /// How long a claim or heartbeat holds a job run.
    pub lease_ms: i64,
    /// How often a job run may lose its runner before it fails.
    pub max_lost: u32,
    /// How many bytes of log an attempt of a job run keeps; the rest is dropped after a
    /// marker line.
    pub max_log_bytes: u64,
    /// What the upkeep's retention sweep keeps (nothing is deleted by default).
    pub retention: crate::store::Retention,
    pub events: broadcast::Sender<Event>,
    pub metrics: Metrics,
    /// The gauges `/metrics` shows, as the upkeep last read them.
    pub gauges: gauges::Kept,
    /// Mirrors of product repositories.
    pub repos: Repos,
    /// Commit statuses to forges, when a forge has a token.
    pub statuses: Option<StatusQueue>,
    /// Where artifacts and caches are kept.
    pub blobs: Blobs,
    /// The most one artifact file may hold, in bytes.
    pub max_artifact_bytes: u64,
    /// The most a product's caches may hold together, in bytes (least recently used go).
    pub cache_limit_bytes: u64,
    /// The key secrets are sealed with (`--secret-key-file`); without one, no secrets.
    pub vault: Option<Vault>,
}

impl Services {
    /// Over `store` and `queue`, with 30 s leases, three lost runners allowed per job run,
    /// 64 MiB of log per attempt, mirrors in a fresh temporary directory, no commit statuses,
    /// and artifacts and caches in memory.
    pub fn new(store: Arc<dyn Store>, queue: Arc<dyn Queue>) -> Self {
        Services {
            store,
            queue,
            lease_ms: 30_000,
            max_lost: 3,
            max_log_bytes: DEFAULT_MAX_LOG_MIB << 20,
            retention: Default::default(),
            events: broadcast::channel(EVENT_BUFFER).0,
            metrics: Metrics::default(),
            gauges: Default::default(),
            repos: Repos::new(std::env::temp_dir().join(format!(
                "conveyor-mirrors-{}",
                uuid::Uuid::now_v7().simple()
            ))),
            statuses: None,
            blobs: Blobs::memory(),
            max_artifact_bytes: files::DEFAULT_MAX_ARTIFACT_MB << 20,
            cache_limit_bytes: files::DEFAULT_CACHE_LIMIT_MB << 20,
            vault: None,
        }
    }
}

/// Events kept for live views that have not read them yet: each names a build or job run
/// (about 100 bytes), so all of them together stay near 100 KiB however many views listen;
/// a view that falls further behind is told it lagged and reads the store again.
pub const EVENT_BUFFER: usize = 1024;

/// How many MiB of log an attempt of a job run keeps unless told otherwise.
pub const DEFAULT_MAX_LOG_MIB: u64 = 64;

/// Why a use case did not happen. The messages are for the person who asked (except
/// `Store` and `Internal`, which are for the log).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request cannot be carried out as sent; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// One field of the request is unusable (a control character, too long, not a ref);
    /// the message names it and says what to change.
    #[error("{message}")]
    InvalidField { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    /// The caller is known, but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request does not fit the current state (a job run not waiting for approval, a
    /// runner whose lease is gone).
    #[error("{0}")]
    Conflict(String),
    /// A config that does not compile: every located message.
    #[error("the config has errors")]
    InvalidConfig(Vec<String>),
    /// Something this depends on cannot be reached now (a forge's repository): the caller
    /// should try again later (a forge redelivers).
    #[error("{0}")]
    Unavailable(String),
    /// A webhook delivery that carries the signature of no product of its repository.
    #[error("the signature is missing or wrong for every product of this repository")]
    BadSignature,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What should not happen (a build vanished, a task panicked).
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, ServiceError>;
