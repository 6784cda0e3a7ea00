//! An orchestrator and its runners in one process: SQLite, the in-process queue, local
//! runners speaking the real protocol over HTTP. `conveyor up` and `conveyor run` use it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use conveyor_runner::client::Client;
use conveyor_runner::executor::ExecConfig;
use conveyor_runner::queue::{LocalQueue, Queue};
use conveyor_runner::worker::{HAND_BACK_BOUND, Stop, Worker};
use tokio::sync::watch;

use crate::state::{AppState, SharedState};
use crate::store::{self, StoreError};

pub struct Options {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub runners: usize,
    /// The fleets the local runners serve.
    pub fleets: Vec<String>,
    pub admin_token: String,
    /// Commit statuses to forges (none by default).
    pub statuses: crate::statuses::StatusConfig,
}

pub struct Embedded {
    pub url: String,
    pub state: SharedState,
    stop: watch::Sender<Option<Stop>>,
    worker: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Embedded {
    /// SQLite in `data_dir` and the in-process queue.
    pub async fn start(opts: Options) -> Result<Embedded, StoreError> {
        std::fs::create_dir_all(&opts.data_dir).map_err(|e| {
            StoreError::Database(format!("cannot create {}: {e}", opts.data_dir.display()))
        })?;
        let db = opts.data_dir.join("conveyor.db");
        let store = store::open(&format!("sqlite://{}", db.display())).await?;
        Self::start_with(store, Arc::new(LocalQueue::new()), opts).await
    }

    /// Any store and queue, with the server, reaper and local runners in this process.
    pub async fn start_with(
        store: Arc<dyn crate::store::Store>,
        queue: Arc<dyn Queue>,
        opts: Options,
    ) -> Result<Embedded, StoreError> {
        let runner_token = crate::store::token();
        let statuses = crate::statuses::start(store.clone(), opts.statuses.clone())
            .await
            .map_err(StoreError::Database)?;
        let mut state = AppState::new(
            store,
            queue.clone(),
            opts.admin_token.clone(),
            runner_token.clone(),
        );
        state.repos = crate::repos::Repos::new(opts.data_dir.join("mirrors"));
        state.statuses = statuses;
        let state = Arc::new(state);
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| StoreError::Database(format!("cannot listen on {}: {e}", opts.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let url = format!("http://{addr}");
        let (stop, stop_rx) = watch::channel(None);
        let app = crate::routes::app(state.clone());
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("server stopped: {e}");
            }
        })];
        tasks.push(crate::scheduler::spawn(
            state.clone(),
            Duration::from_secs(1),
        ));
        // The local runners register like any other, so the fleets page lists them.
        let name = format!("local-{}", std::process::id());
        let own_token = crate::store::token();
        state
            .store
            .register_runner(
                &name,
                &opts.fleets,
                &crate::auth::token_hash(&own_token),
                crate::state::now_ms(),
            )
            .await?;
        let client = Arc::new(Client::new(vec![url.clone()], own_token));
        tasks.push(tokio::spawn(conveyor_runner::client::beat(client.clone())));
        let worker = Arc::new(Worker {
            name,
            fleets: opts.fleets.clone(),
            concurrency: opts.runners.max(1),
            client,
            queue,
            exec: ExecConfig::new(opts.data_dir.join("work")),
        });
        let worker = tokio::spawn(worker.run(stop_rx));
        Ok(Embedded {
            url,
            state,
            stop,
            worker,
            tasks,
        })
    }

    /// Stops taking new jobs, kills the running ones and hands them back (to this server,
    /// so it waits for that, boundedly), and stops the server.
    pub async fn shutdown(self) {
        let _ = self.stop.send(Some(Stop::HandBack));
        let bound = HAND_BACK_BOUND + Duration::from_secs(1);
        if tokio::time::timeout(bound, self.worker).await.is_err() {
            tracing::warn!("the local runners did not stop in time");
        }
        for t in self.tasks.into_iter().rev() {
            t.abort();
        }
    }
}

/// Every fleet the products' jobs name, and `default`.
pub fn fleets_of<'a>(
    products: impl IntoIterator<Item = &'a conveyor_core::model::Product>,
) -> Vec<String> {
    let mut fleets = vec![conveyor_core::compile::DEFAULT_FLEET.to_string()];
    for job in products
        .into_iter()
        .flat_map(|p| &p.belts)
        .flat_map(|b| &b.jobs)
    {
        if !fleets.contains(&job.fleet) {
            fleets.push(job.fleet.clone());
        }
    }
    fleets
}
