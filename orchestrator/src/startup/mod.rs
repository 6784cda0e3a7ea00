//! Building a node: the services over a store and a queue, the HTTP server on its address,
//! and the maintenance loop beside it — for `conveyor serve` (`serve`: Postgres or SQLite and
//! Redis) and for `conveyor up`, `conveyor run` and the benchmarks (`embedded`: SQLite, the
//! in-process queue and local runners), over HTTP or HTTPS (`tls`). What can go wrong on
//! the way is a [`StartupError`].

pub mod embedded;
mod in_process;
pub mod serve;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use embedded::{Embedded, Options, fleets_of};
pub use tls::ServerTls;

use crate::http::ClientAddr;
use crate::services::{ServiceError, Services, maintenance};
use crate::store::StoreError;

/// Why a node did not start (or stopped serving).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create {path}: {reason}")]
    DataDir { path: String, reason: String },
    /// `url` has its password hidden.
    #[error("cannot open the database {url}: {source}")]
    Database { url: String, source: StoreError },
    #[error("cannot reach Redis at {url}: {reason}")]
    Queue { url: String, reason: String },
    #[error("cannot start the commit-status tasks: {0}")]
    Statuses(String),
    #[error("cannot listen on {addr}: {source}{}", busy_hint(source))]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A `--tls-cert`/`--tls-key` or `--ca-cert` problem, naming the file.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// Where artifacts and caches go cannot be used.
    #[error("cannot use the artifact store: {0}")]
    Storage(String),
    #[error("cannot register the local runners: {0}")]
    Runners(ServiceError),
    #[error("{0}")]
    SecretKey(crate::vault::VaultError),
    /// An environment setting (named) that is not a number in its range.
    #[error("{name}={value}: {problem}")]
    Setting {
        name: &'static str,
        value: String,
        problem: String,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    /// An admin or runner token anyone could guess, or no bearer header could carry.
    #[error("the {what} {problem}, e.g. from `openssl rand -hex 32`")]
    WeakToken { what: &'static str, problem: String },
}

/// The shortest admin or runner token a node accepts, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// Refuses an admin or runner token (`what`) that is short, or that a bearer header could
/// not carry as it is (spaces, control characters).
pub fn check_token(what: &'static str, token: &str) -> Result<(), StartupError> {
    let problem = if token.is_empty() {
        format!("is empty: give one of at least {MIN_TOKEN_LEN} bytes")
    } else if token.len() < MIN_TOKEN_LEN {
        format!(
            "is {} bytes long: give one of at least {MIN_TOKEN_LEN}",
            token.len()
        )
    } else if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "contains a space or a control character, which a bearer token cannot carry: give \
         one without"
            .to_string()
    } else {
        return Ok(());
    };
    Err(StartupError::WeakToken { what, problem })
}

/// Where a node keeps artifacts and caches, and how much.
#[derive(Clone)]
pub struct FileConfig {
    pub blobs: crate::blobs::Blobs,
    pub max_artifact_bytes: u64,
    pub cache_limit_bytes: u64,
}

impl FileConfig {
    /// The filesystem under `data_dir/objects`, with the default limits.
    pub fn under(data_dir: &std::path::Path) -> Result<FileConfig, StartupError> {
        Ok(FileConfig {
            blobs: crate::blobs::Blobs::filesystem(&data_dir.join("objects"))
                .map_err(StartupError::Storage)?,
            max_artifact_bytes: crate::services::files::DEFAULT_MAX_ARTIFACT_MB << 20,
            cache_limit_bytes: crate::services::files::DEFAULT_CACHE_LIMIT_MB << 20,
        })
    }

    /// Gives `services` these settings.
    pub fn apply(self, services: &mut Services) {
        services.blobs = self.blobs;
        services.max_artifact_bytes = self.max_artifact_bytes;
        services.cache_limit_bytes = self.cache_limit_bytes;
    }
}

/// A listener on `addr`.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartupError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })
}

/// What to do about a port another process holds.
fn busy_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        " — another process (another conveyor?) holds that port; stop it, or choose another with --listen"
    } else {
        ""
    }
}

/// Serves `app` on `listener` — over TLS when `tls` is given — until `shutdown` resolves;
/// then stops accepting and lets open requests finish.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    tls: Option<&ServerTls>,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Each request knows its client's address: the throttle counts failures by it.
    let app = app.into_make_service_with_connect_info::<ClientAddr>();
    match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => {
            axum::serve(tls.listen(listener)?, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// The URL scheme a node serves.
pub fn scheme(tls: Option<&ServerTls>) -> &'static str {
    if tls.is_some() { "https" } else { "http" }
}

/// Runs the maintenance tick (reaper and re-sender) every `every` until the process ends.
pub fn spawn_maintenance(services: Arc<Services>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = maintenance::tick(&services).await {
                tracing::warn!("scheduler tick failed: {e}");
            }
        }
    })
}

/// Resolves when the process is asked to stop: SIGINT (Ctrl-C) or SIGTERM.
pub async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM ({e}); stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// How long a stopping server waits for open connections (a dashboard's live stream never
/// ends on its own) before it exits anyway.
pub const STOP_BOUND: Duration = Duration::from_secs(3);
