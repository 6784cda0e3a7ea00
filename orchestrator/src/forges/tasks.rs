//! Status reports as apalis tasks in the orchestrator's database: SQLite or Postgres, like
//! the store. Tasks are retried in the worker with exponential backoff; a task held by an
//! orchestrator that dies is taken up by another (or the same one restarted) once its
//! heartbeat is missed.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use serde::{Deserialize, Serialize};
use tower::retry::backoff::{ExponentialBackoffMaker, MakeBackoff};
use tower::util::rng::HasherRng;

use super::reporter::{Reporter, StatusConfig};
use crate::store::{PoolHandle, Store};

/// Report build `build_id`'s status to its forge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusTask {
    pub build_id: String,
}

const QUEUE: &str = "conveyor.forge-status";
/// apalis keeps its migrations apart from conveyor's.
const MIGRATIONS_TABLE: &str = "_apalis_migrations";
/// Tries in the worker before the task rests as failed; with the backoff below, about an
/// hour of a forge being down.
const RETRIES: usize = 12;
const POLL: Duration = Duration::from_millis(500);
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Where tasks are pushed.
#[derive(Clone)]
pub enum StatusQueue {
    Sqlite(SqliteStorage<StatusTask>),
    Postgres(PostgresStorage<StatusTask>),
}

impl StatusQueue {
    /// Queues a report; a failure is logged (the build's row still says a report is due,
    /// and the next start of an orchestrator queues it again).
    pub async fn push(&self, build_id: &str) {
        let task = StatusTask {
            build_id: build_id.to_string(),
        };
        let result = match self.clone() {
            StatusQueue::Sqlite(mut s) => s.push(task).await.map_err(|e| e.to_string()),
            StatusQueue::Postgres(mut s) => s.push(task).await.map_err(|e| e.to_string()),
        };
        if let Err(e) = result {
            tracing::warn!(build = build_id, "could not queue a commit status: {e}");
        }
    }
}

async fn handle(task: StatusTask, reporter: Data<Arc<Reporter>>) -> Result<(), BoxDynError> {
    reporter.report(&task.build_id).await.map_err(|e| {
        tracing::warn!(build = %task.build_id, "commit status not delivered, will retry: {e}");
        e.into()
    })
}

type Backoff = tower::retry::backoff::ExponentialBackoff<HasherRng>;

fn retry_policy() -> Result<BackoffRetryPolicy<Backoff>, String> {
    let backoff = ExponentialBackoffMaker::new(
        Duration::from_millis(500),
        Duration::from_secs(600),
        0.5,
        HasherRng::default(),
    )
    .map_err(|e| e.to_string())?
    .make_backoff();
    Ok(RetryPolicy::retries(RETRIES).with_backoff(backoff))
}

/// The same steps for either backend, whose types share no trait for all of them.
macro_rules! start_on {
    ($storage:ident, $krate:ident, $pool:expr, $name:expr, $policy:expr, $reporter:expr) => {{
        let mut m = $storage::<()>::migrations();
        m.dangerous_set_table_name(MIGRATIONS_TABLE);
        m.run(&$pool).await.map_err(|e| e.to_string())?;
        let config = $krate::Config::default()
            .queue(QUEUE)
            .batch_size(1)
            .heartbeat_interval(HEARTBEAT);
        let storage = $storage::new(&$pool).with_config(config);
        let (backend, name, policy, reporter) = (storage.clone(), $name, $policy, $reporter);
        tokio::spawn(
            Monitor::new()
                .register(move |restarts| {
                    WorkerBuilder::new(format!("{name}-{restarts}"))
                        .backend(backend.clone().poll_with_interval(POLL))
                        .retry(policy.clone())
                        .data(reporter.clone())
                        .build(handle)
                })
                .should_restart(|_, _| true)
                .run(),
        );
        storage
    }};
}

/// Starts reporting when a forge has a token: the task worker in this process, and a task
/// for every recent build whose forge is behind (reports lost to a crash before they were
/// queued).
pub async fn start(
    store: Arc<dyn Store>,
    config: StatusConfig,
) -> Result<Option<StatusQueue>, String> {
    if config.apis.is_empty() {
        return Ok(None);
    }
    let reporter = Arc::new(Reporter::new(store.clone(), config)?);
    let queue = start_worker(store.pool_handle(), reporter).await?;
    let week_ago = crate::clock::now_ms() - 7 * 24 * 3600 * 1000;
    let due = store
        .forge_status_due(week_ago, 10_000)
        .await
        .map_err(|e| e.to_string())?;
    for id in due {
        queue.push(&id).await;
    }
    Ok(Some(queue))
}

/// Migrates apalis' tables, starts the worker and returns the queue to push to.
async fn start_worker(pool: PoolHandle, reporter: Arc<Reporter>) -> Result<StatusQueue, String> {
    let policy = retry_policy()?;
    let name = format!("conveyor-status-{}", uuid::Uuid::now_v7().simple());
    Ok(match pool {
        PoolHandle::Sqlite(pool) => StatusQueue::Sqlite(start_on!(
            SqliteStorage,
            apalis_sqlite,
            pool,
            name,
            policy,
            reporter
        )),
        PoolHandle::Postgres(pool) => StatusQueue::Postgres(start_on!(
            PostgresStorage,
            apalis_postgres,
            pool,
            name,
            policy,
            reporter
        )),
    })
}
