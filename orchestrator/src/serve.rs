//! `conveyor serve`: one orchestrator node against a shared database and Redis. Several
//! nodes may run at once; each runs the reaper, which is safe to run everywhere.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use conveyor_runner::queue::{Queue, RedisQueue};

use crate::state::AppState;

pub struct ServeArgs {
    pub listen: SocketAddr,
    pub database_url: String,
    pub redis_url: String,
    pub admin_token: String,
    pub runner_token: String,
    pub fleet_tokens: Vec<crate::state::FleetToken>,
    pub queue_prefix: String,
    pub lease_secs: u64,
    pub data_dir: std::path::PathBuf,
    pub statuses: crate::statuses::StatusConfig,
    /// Whether the dashboard's read-only pages need no sign-in.
    pub public_ui: bool,
}

pub async fn run(args: ServeArgs) -> ExitCode {
    let store = match crate::store::open(&args.database_url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: cannot open the database {}: {e}",
                redact(&args.database_url)
            );
            return ExitCode::FAILURE;
        }
    };
    let queue: Arc<dyn Queue> = match RedisQueue::connect(&args.redis_url, &args.queue_prefix).await
    {
        Ok(q) => Arc::new(q),
        Err(e) => {
            eprintln!(
                "error: cannot reach Redis at {}: {e}",
                redact(&args.redis_url)
            );
            return ExitCode::FAILURE;
        }
    };
    let statuses = match crate::statuses::start(store.clone(), args.statuses).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the commit-status tasks: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut state = AppState::new(store, queue, args.admin_token, args.runner_token);
    state.statuses = statuses;
    state.fleet_tokens = args.fleet_tokens;
    state.repos = crate::repos::Repos::new(args.data_dir.join("mirrors"));
    state.public_ui = args.public_ui;
    state.lease_ms = i64::try_from(args.lease_secs.max(1)).unwrap_or(30) * 1000;
    let state = Arc::new(state);
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    crate::scheduler::spawn(state.clone(), Duration::from_secs(1));
    tracing::info!("conveyor serving on http://{}", args.listen);
    let app = crate::routes::app(state);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A URL with its password hidden, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
