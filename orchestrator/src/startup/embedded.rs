//! An orchestrator and its runners in one process: SQLite, the in-process queue, local
//! runners speaking the real protocol to the server's router in the process (artifacts and
//! caches over HTTP). `conveyor up`, `conveyor run`, the benchmarks and the tests use it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use conveyor_runner::client::Client;
use conveyor_runner::executor::{ExecConfig, JobUser};
use conveyor_runner::queue::{LocalQueue, Queue};
use conveyor_runner::tls::{self, TlsError, Trust};
use conveyor_runner::worker::{HAND_BACK_BOUND, Stop, Worker};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ServerTls, StartupError, bind, in_process, scheme, serve_http, spawn_maintenance};
use crate::forges::StatusConfig;
use crate::git::Repos;
use crate::http::AppState;
use crate::services::{Services, maintenance, runs};
use crate::store::{self, Store};
use crate::vault::Vault;

pub struct Options {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub runners: usize,
    /// How many bytes of log each attempt of a job keeps.
    pub max_log_bytes: u64,
    /// What retention keeps (`--keep-days`, `--keep-builds`).
    pub retention: crate::store::Retention,
    /// The fleets the local runners serve.
    pub fleets: Vec<String>,
    pub admin_token: String,
    /// Commit statuses to forges (none by default).
    pub statuses: StatusConfig,
    /// The user the local runners run jobs as (`--job-user`); `None`: this process's user.
    pub job_user: Option<JobUser>,
    /// Serve HTTPS with this certificate, not HTTP (the local runners pin it).
    pub tls: Option<ServerTls>,
    /// Where artifacts and caches are kept; `None`: `objects` in the data directory.
    pub files: Option<super::FileConfig>,
    /// Where the local runners keep their cache copies, and whether those are the only
    /// caches (`conveyor run`); `None`: `caches` in their work directory, saved to the
    /// orchestrator too.
    pub local_caches: Option<PathBuf>,
}

pub struct Embedded {
    pub url: String,
    pub services: Arc<Services>,
    stop: watch::Sender<Option<Stop>>,
    worker: JoinHandle<()>,
    /// The server, and how it is asked to stop (after the requests under way are answered).
    server: (JoinHandle<()>, tokio::sync::oneshot::Sender<()>),
    tasks: Vec<JoinHandle<()>>,
}

impl Embedded {
    /// SQLite in `data_dir` and the in-process queue.
    pub async fn start(opts: Options) -> Result<Embedded, StartupError> {
        std::fs::create_dir_all(&opts.data_dir).map_err(|e| StartupError::DataDir {
            path: opts.data_dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let url = format!("sqlite://{}", opts.data_dir.join("conveyor.db").display());
        let store = store::open_with(&url, None, pool_limits()?)
            .await
            .map_err(|source| StartupError::Database { url, source })?;
        if opts.job_user.is_some() {
            keep_from_jobs(&opts.data_dir);
        }
        Self::start_with(store, Arc::new(LocalQueue::new()), opts).await
    }

    /// Any store and queue, with the server, the maintenance loop and local runners in this
    /// process.
    pub async fn start_with(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        opts: Options,
    ) -> Result<Embedded, StartupError> {
        let statuses = crate::forges::start(store.clone(), opts.statuses.clone())
            .await
            .map_err(StartupError::Statuses)?;
        let mut services = Services::new(store, queue.clone());
        services.max_log_bytes = opts.max_log_bytes;
        services.retention = opts.retention;
        services.repos = Repos::new(opts.data_dir.join("mirrors"));
        services.statuses = statuses;
        let files = match opts.files.clone() {
            Some(files) => files,
            None => super::FileConfig::under(&opts.data_dir)?,
        };
        files.apply(&mut services);
        let key = opts.data_dir.join("secret.key");
        services.vault = Some(Vault::load_or_create(&key).map_err(StartupError::SecretKey)?);
        let services = Arc::new(services);
        let mut state =
            AppState::with_services(services.clone(), opts.admin_token.clone(), store::token());
        state.secure_cookies = opts.tls.is_some();
        let listener = bind(opts.listen).await?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: opts.listen,
            source,
        })?;
        let url = format!("{}://{addr}", scheme(opts.tls.as_ref()));
        let app = crate::http::app(Arc::new(state));
        let local = Arc::new(in_process::Router(app.clone()));
        let server = serve(listener, opts.tls.clone(), app);
        let mut tasks = Vec::new();
        // The in-process queue starts empty: what the database has queued (handed back at
        // the last stop) is sent now.
        if let Err(e) = maintenance::resend_all(&services).await {
            tracing::warn!("re-sending queued job runs: {e}");
        }
        tasks.push(spawn_maintenance(services.clone(), Duration::from_secs(1)));
        let (stop, stop_rx) = watch::channel(None);
        let (beat, worker) = local_runners(&services, &url, local, queue, &opts, stop_rx).await?;
        tasks.push(beat);
        Ok(Embedded {
            url,
            services,
            stop,
            worker,
            server,
            tasks,
        })
    }

    /// Stops taking new jobs, kills the running ones and hands them back (to this server,
    /// so it waits for that, boundedly), and stops the server once the requests under way
    /// are answered (a decline from another terminal that finished the build, say), within
    /// a second: live event streams never end on their own.
    pub async fn shutdown(self) {
        let _ = self.stop.send(Some(Stop::HandBack));
        let bound = HAND_BACK_BOUND + Duration::from_secs(1);
        if tokio::time::timeout(bound, self.worker).await.is_err() {
            tracing::warn!("the local runners did not stop in time");
        }
        for t in self.tasks.into_iter().rev() {
            t.abort();
        }
        let (mut server, quit) = self.server;
        let _ = quit.send(());
        if tokio::time::timeout(Duration::from_secs(1), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
    }
}

/// The server on `listener`, until it is told to quit (see [`Embedded::shutdown`]).
fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<ServerTls>,
    app: axum::Router,
) -> (JoinHandle<()>, tokio::sync::oneshot::Sender<()>) {
    let (quit, quitting) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let asked = async move {
            let _ = quitting.await;
        };
        if let Err(e) = serve_http(listener, tls.as_ref(), app, asked).await {
            tracing::error!("server stopped: {e}");
        }
    });
    (server, quit)
}

/// Jobs run as a job user must reach their workspaces under `data_dir/work`, so they may
/// pass through `data_dir`, but not list it (0711) nor read the database in it (0600; SQLite
/// gives the files it makes later the database's mode).
fn keep_from_jobs(data_dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let private = |path: &std::path::Path, mode| match std::fs::set_permissions(
        path,
        std::fs::Permissions::from_mode(mode),
    ) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!("cannot keep {} from jobs: {e}", path.display())
        }
        _ => {}
    };
    private(data_dir, 0o711);
    for file in ["conveyor.db", "conveyor.db-wal", "conveyor.db-shm"] {
        private(&data_dir.join(file), 0o600);
    }
}

/// The local runners: registered like any other (so the fleets page lists them), beating,
/// and taking jobs from `queue` until `stop`: their beat and their worker. Their protocol
/// calls go to `local`, the server's router in this process; files to `url`.
async fn local_runners(
    services: &Services,
    url: &str,
    local: Arc<in_process::Router>,
    queue: Arc<dyn Queue>,
    opts: &Options,
    stop: watch::Receiver<Option<Stop>>,
) -> Result<(JoinHandle<()>, JoinHandle<()>), StartupError> {
    let name = format!("local-{}", std::process::id());
    let runs::Registered { token, .. } = runs::register_runner(services, &name, &opts.fleets, None)
        .await
        .map_err(StartupError::Runners)?;
    let http = match &opts.tls {
        // The certificate need not name the address they reach it by: they pin it.
        Some(tls) => tls::pinned_http(tls.certificate().clone()),
        None => Trust::system().http(),
    };
    let http = http
        .and_then(|b| {
            b.timeout(conveyor_runner::client::CALL_TIMEOUT)
                .build()
                .map_err(|e| TlsError::Setup(tls::explain(&e)))
        })
        .map_err(|e| StartupError::Tls(e.to_string()))?;
    let client = Client::with_http(vec![url.to_string()], token, http).in_process(local);
    let client = Arc::new(client);
    let beat = tokio::spawn(conveyor_runner::client::beat(client.clone()));
    let worker = Arc::new(Worker {
        name,
        fleets: opts.fleets.clone(),
        concurrency: opts.runners.max(1),
        client,
        queue,
        exec: exec_config(opts),
    });
    Ok((beat, tokio::spawn(worker.run(stop))))
}

/// How the local runners run jobs: in `data_dir/work`, as the job user, with their caches.
fn exec_config(opts: &Options) -> ExecConfig {
    let mut exec = ExecConfig {
        job_user: opts.job_user.clone(),
        ..ExecConfig::new(opts.data_dir.join("work"))
    };
    if let Some(dir) = &opts.local_caches {
        exec.cache_dir = dir.clone();
        exec.local_caches = true;
    }
    exec
}

/// Every fleet the products' jobs name, and `default` (not drivers' queues: drivers take
/// those).
pub fn fleets_of<'a>(
    products: impl IntoIterator<Item = &'a conveyor_core::model::Product>,
) -> Vec<String> {
    let mut fleets = vec![conveyor_core::compile::DEFAULT_FLEET.to_string()];
    for job in products
        .into_iter()
        .flat_map(|p| &p.belts)
        .flat_map(|b| &b.jobs)
    {
        if job.driver.is_none() && !fleets.contains(&job.fleet) {
            fleets.push(job.fleet.clone());
        }
    }
    fleets
}

/// SQLite's page cache per connection in the embedded mode unless told otherwise, in KiB:
/// one user's dashboard and one build's jobs need less than a server's readers.
pub const EMBEDDED_SQLITE_CACHE_KIB: u32 = 512;

/// The embedded store's bounds: `CONVEYOR_DB_CONNECTIONS` (1–1000, default 8) and
/// `CONVEYOR_SQLITE_CACHE_KIB` (64–1048576, default [`EMBEDDED_SQLITE_CACHE_KIB`]), as
/// `serve` reads them.
fn pool_limits() -> Result<store::PoolLimits, StartupError> {
    let connections = env_number("CONVEYOR_DB_CONNECTIONS", 1, 1000)?;
    let cache = env_number("CONVEYOR_SQLITE_CACHE_KIB", 64, 1 << 20)?;
    Ok(store::PoolLimits {
        connections,
        sqlite_cache_kib: cache.unwrap_or(EMBEDDED_SQLITE_CACHE_KIB),
    })
}

/// The environment's `name` as a number in `min..=max`; `None` when unset or empty.
fn env_number(name: &'static str, min: u32, max: u32) -> Result<Option<u32>, StartupError> {
    let Some(value) = std::env::var_os(name) else {
        return Ok(None);
    };
    let value = value.to_string_lossy().trim().to_string();
    if value.is_empty() {
        return Ok(None);
    }
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(StartupError::Setting {
            name,
            value,
            problem: format!("give a whole number from {min} to {max}"),
        }),
    }
}
