//! One orchestrator node against a shared database and Redis (`conveyor serve`). Several
//! nodes may run at once; each runs the maintenance loop, which is safe to run everywhere.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conveyor_runner::queue::RedisQueue;
use conveyor_runner::tls::Trust;

use super::{ServerTls, StartupError, bind, scheme, serve_http, spawn_maintenance};
use crate::forges::StatusConfig;
use crate::git::Repos;
use crate::http::{AppState, FleetToken};
use crate::services::Services;
use crate::vault::Vault;

/// What a node needs to know.
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub redis_url: String,
    pub admin_token: String,
    pub runner_token: String,
    pub fleet_tokens: Vec<FleetToken>,
    pub queue_prefix: String,
    pub lease_secs: u64,
    /// How many bytes of log each attempt of a job keeps.
    pub max_log_bytes: u64,
    /// What retention keeps (`--keep-days`, `--keep-builds`).
    pub retention: crate::store::Retention,
    /// The database connections and caches this node holds (`--db-connections`,
    /// `--sqlite-cache-kib`).
    pub pool: crate::store::PoolLimits,
    /// The dashboard's live streams open at once (`--max-live-streams`).
    pub max_live_streams: usize,
    pub data_dir: std::path::PathBuf,
    pub statuses: StatusConfig,
    /// Whether the dashboard's read-only pages need no sign-in.
    pub public_ui: bool,
    /// Serve HTTPS with this certificate, not HTTP.
    pub tls: Option<ServerTls>,
    /// Where artifacts and caches are kept.
    pub files: super::FileConfig,
    /// The key secrets are sealed with; none, no secrets.
    pub secret_key_file: Option<std::path::PathBuf>,
    /// Whose certificates Redis (`rediss://`) and Postgres may present (`--ca-cert`; a
    /// Postgres URL's own `sslrootcert` comes first). Forges: see `statuses`.
    pub trust: Trust,
}

/// Serves until SIGINT or SIGTERM, then stops within [`super::STOP_BOUND`].
pub async fn run(c: ServeConfig) -> Result<(), StartupError> {
    let store = crate::store::open_with(&c.database_url, c.trust.ca_file(), c.pool)
        .await
        .map_err(|source| StartupError::Database {
            url: redact(&c.database_url),
            source,
        })?;
    let queue = RedisQueue::connect_trusting(&c.redis_url, &c.queue_prefix, &c.trust)
        .await
        .map_err(|e| StartupError::Queue {
            url: redact(&c.redis_url),
            reason: e.to_string(),
        })?;
    // Behind a proxy that terminates TLS, the public URL tells browsers come over HTTPS.
    let secure_cookies = c.tls.is_some() || c.statuses.public_url.starts_with("https://");
    let statuses = crate::forges::start(store.clone(), c.statuses)
        .await
        .map_err(StartupError::Statuses)?;
    let mut services = Services::new(store, Arc::new(queue));
    services.statuses = statuses;
    services.vault = match &c.secret_key_file {
        Some(path) => Some(Vault::from_file(path).map_err(StartupError::SecretKey)?),
        None => None,
    };
    services.repos = Repos::new(c.data_dir.join("mirrors"));
    services.lease_ms = i64::try_from(c.lease_secs.max(1)).unwrap_or(30) * 1000;
    tracing::info!("artifacts and caches in {}", c.files.blobs.location);
    c.files.apply(&mut services);
    services.max_log_bytes = c.max_log_bytes;
    services.retention = c.retention;
    let services = Arc::new(services);
    let mut state = AppState::with_services(services.clone(), c.admin_token, c.runner_token);
    state.public_ui = c.public_ui;
    state.fleet_tokens = c.fleet_tokens;
    state.secure_cookies = secure_cookies;
    state.live_streams = Arc::new(tokio::sync::Semaphore::new(c.max_live_streams));
    let listener = bind(c.listen).await?;
    spawn_maintenance(services, Duration::from_secs(1));
    tracing::info!(
        "conveyor serving on {}://{}",
        scheme(c.tls.as_ref()),
        c.listen
    );
    let app = crate::http::app(Arc::new(state));
    serve_until_stopped(listener, c.tls.as_ref(), app).await
}

/// Serves until SIGINT or SIGTERM; open requests then get [`super::STOP_BOUND`] to finish.
async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    tls: Option<&ServerTls>,
    app: axum::Router,
) -> Result<(), StartupError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        super::terminated().await;
        tracing::info!(
            "stopping: no new requests; open ones get {:?}",
            super::STOP_BOUND
        );
        let _ = stop.send(true);
    });
    let mut graceful = stopped.clone();
    let shutdown = async move {
        let _ = graceful.wait_for(|s| *s).await;
    };
    let serving = serve_http(listener, tls, app, shutdown);
    let mut bounded = stopped;
    tokio::select! {
        served = serving => served.map_err(StartupError::Serve),
        _ = async move {
            let _ = bounded.wait_for(|s| *s).await;
            tokio::time::sleep(super::STOP_BOUND).await;
        } => Ok(()),
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
