//! `conveyor serve`: one orchestrator node against a shared database and Redis; its flags,
//! including where commit statuses go.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use conveyor_runner::credentials::{Credential, secret};
use conveyor_runner::tls::Trust;

use super::tls::TlsArgs;
use crate::forges::{Forge, ForgeApi, StatusConfig};
use crate::http::FleetToken;
use crate::services::DEFAULT_MAX_LOG_MIB;
use crate::startup::serve::{ServeConfig, run as serve};
use crate::startup::{FileConfig, StartupError, check_token, scheme};

// `conveyor serve`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[arg(long, env = "CONVEYOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`. Prefer CONVEYOR_DATABASE_URL or
    /// --database-url-file when it carries a password: every process on the machine can read
    /// a command line.
    #[arg(
        long,
        env = "CONVEYOR_DATABASE_URL",
        hide_env_values = true,
        required_unless_present = "database_url_file"
    )]
    pub database_url: Option<String>,
    /// A file holding the database URL (one trailing newline is ignored).
    #[arg(long, env = "CONVEYOR_DATABASE_URL_FILE", value_name = "PATH")]
    pub database_url_file: Option<PathBuf>,
    /// The Redis URL (with its password, if it has one): redis[s]://host:port for one server,
    /// redis://a:7000,redis://b:7001 or redis+cluster://a:7000,b:7001 for a Redis Cluster,
    /// redis+sentinel://s1:26379,s2:26379/mymaster for a Sentinel-managed master.
    /// Prefer CONVEYOR_REDIS_URL or
    /// --redis-url-file.
    #[arg(
        long,
        env = "CONVEYOR_REDIS_URL",
        hide_env_values = true,
        required_unless_present = "redis_url_file"
    )]
    pub redis_url: Option<String>,
    /// A file holding the Redis URL.
    #[arg(long, env = "CONVEYOR_REDIS_URL_FILE", value_name = "PATH")]
    pub redis_url_file: Option<PathBuf>,
    /// The bearer token for mutating API calls and signing in (at least 16 characters).
    /// Prefer CONVEYOR_ADMIN_TOKEN or --admin-token-file.
    #[arg(
        long,
        env = "CONVEYOR_ADMIN_TOKEN",
        hide_env_values = true,
        required_unless_present = "admin_token_file"
    )]
    pub admin_token: Option<String>,
    /// A file holding the admin token.
    #[arg(long, env = "CONVEYOR_ADMIN_TOKEN_FILE", value_name = "PATH")]
    pub admin_token_file: Option<PathBuf>,
    /// A registration token for runners of any fleet (at least 16 characters). Prefer
    /// `--fleet-token`, which limits the fleets a runner may register for.
    #[arg(long, env = "CONVEYOR_RUNNER_TOKEN", hide_env_values = true)]
    pub runner_token: Option<String>,
    /// A file holding the runner registration token.
    #[arg(long, env = "CONVEYOR_RUNNER_TOKEN_FILE", value_name = "PATH")]
    pub runner_token_file: Option<PathBuf>,
    /// A registration token for some fleets only, as `FLEET[,FLEET...]=TOKEN` (give it once
    /// per token; in the environment, separate tokens with `;`). A runner that registers
    /// with it may serve only those fleets; a fleet `driver:NAME` lets it register instances
    /// of driver NAME.
    #[arg(
        long = "fleet-token",
        env = "CONVEYOR_FLEET_TOKENS",
        value_delimiter = ';',
        hide_env_values = true
    )]
    pub fleet_tokens: Vec<FleetToken>,
    /// A file of fleet tokens, one `FLEET[,FLEET...]=TOKEN` a line.
    #[arg(
        long = "fleet-token-file",
        env = "CONVEYOR_FLEET_TOKENS_FILE",
        value_name = "PATH"
    )]
    pub fleet_tokens_file: Option<PathBuf>,
    /// Prefix of the Redis keys (one conveyor per prefix).
    #[arg(long, env = "CONVEYOR_QUEUE_PREFIX", default_value = "conveyor")]
    pub queue_prefix: String,
    /// How long a runner holds a job run without a heartbeat.
    #[arg(long, env = "CONVEYOR_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
    /// How many MiB of log each attempt of a job keeps; past that, one marker line says the
    /// rest was dropped.
    #[arg(
        long,
        env = "CONVEYOR_MAX_LOG_MIB",
        value_name = "MIB",
        default_value_t = DEFAULT_MAX_LOG_MIB,
        value_parser = clap::value_parser!(u64).range(1..=1 << 20)
    )]
    pub max_log_mib: u64,
    #[command(flatten)]
    pub keep: crate::cmd::keep::Keep,
    /// Database connections this node holds at most (default: 8 on SQLite, 16 on
    /// Postgres). With SQLite, each keeps a page cache of --sqlite-cache-kib.
    #[arg(long, env = "CONVEYOR_DB_CONNECTIONS", value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_connections: Option<u32>,
    /// SQLite's page cache per connection, in KiB.
    #[arg(long, env = "CONVEYOR_SQLITE_CACHE_KIB", value_name = "KIB",
        default_value_t = crate::store::DEFAULT_SQLITE_CACHE_KIB,
        value_parser = clap::value_parser!(u32).range(64..=1 << 20))]
    pub sqlite_cache_kib: u32,
    /// The dashboard's live streams (SSE) this node keeps open at once; past them a page
    /// works without live updates.
    #[arg(long, env = "CONVEYOR_MAX_LIVE_STREAMS", value_name = "N",
        default_value_t = crate::http::DEFAULT_LIVE_STREAMS as u32,
        value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_live_streams: u32,
    /// Where this node keeps mirrors of product repositories.
    #[arg(long, env = "CONVEYOR_DATA_DIR", default_value = ".conveyor")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub statuses: StatusArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// The file holding the key secrets are sealed with (64 hex digits; every node of one
    /// conveyor needs the same). Without it, this node keeps no secrets.
    #[arg(long, env = "CONVEYOR_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust besides the system's (SSL_CERT_FILE and
    /// SSL_CERT_DIR, when set, name the system's): for forge APIs, a `rediss://` Redis, and
    /// a Postgres URL without `sslrootcert`.
    #[arg(long, env = "CONVEYOR_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Let anyone read the dashboard's pages without signing in (actions still need the
    /// admin token's session).
    #[arg(long, env = "CONVEYOR_PUBLIC_UI")]
    pub public_ui: bool,
}

/// Where artifacts and caches are kept, and how much (`serve` and `up`).
#[derive(Debug, Clone, clap::Args)]
pub struct FileArgs {
    /// Where artifacts and caches are kept: a directory (several orchestrators share one
    /// volume) or `s3://BUCKET`, configured by the usual AWS_* variables (AWS_ENDPOINT_URL,
    /// AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP). Default:
    /// `objects` in the data directory.
    #[arg(long, env = "CONVEYOR_ARTIFACT_STORE", default_value = "")]
    pub artifact_store: String,
    /// The most one artifact file may hold, in MiB.
    #[arg(long, env = "CONVEYOR_MAX_ARTIFACT_MB", default_value_t = crate::services::files::DEFAULT_MAX_ARTIFACT_MB)]
    pub max_artifact_mb: u64,
    /// The most one product's caches may hold together, in MiB; the least recently used
    /// are evicted beyond it.
    #[arg(long, env = "CONVEYOR_CACHE_LIMIT_MB", default_value_t = crate::services::files::DEFAULT_CACHE_LIMIT_MB)]
    pub cache_limit_mb: u64,
}

impl FileArgs {
    /// The settings, with the object storage opened under `data_dir`.
    pub fn config(&self, data_dir: &std::path::Path) -> Result<FileConfig, StartupError> {
        let blobs = crate::blobs::Blobs::open(&self.artifact_store, data_dir, std::env::vars())
            .map_err(StartupError::Storage)?;
        Ok(FileConfig {
            blobs,
            max_artifact_bytes: self.max_artifact_mb << 20,
            cache_limit_bytes: self.cache_limit_mb << 20,
        })
    }
}

/// `conveyor serve`'s forge settings.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// GitHub's API (GitHub Enterprise: `https://HOST/api/v3`).
    #[arg(
        long,
        env = "CONVEYOR_GITHUB_API",
        default_value = "https://api.github.com"
    )]
    pub github_api: String,
    /// A token that may set commit statuses on GitHub; none, no GitHub statuses. Prefer
    /// CONVEYOR_GITHUB_TOKEN or --github-token-file.
    #[arg(long, env = "CONVEYOR_GITHUB_TOKEN", hide_env_values = true)]
    pub github_token: Option<String>,
    /// A file holding the GitHub token (and so for GitLab and Gitea below).
    #[arg(long, env = "CONVEYOR_GITHUB_TOKEN_FILE", value_name = "PATH")]
    pub github_token_file: Option<PathBuf>,
    #[arg(
        long,
        env = "CONVEYOR_GITLAB_API",
        default_value = "https://gitlab.com/api/v4"
    )]
    pub gitlab_api: String,
    #[arg(long, env = "CONVEYOR_GITLAB_TOKEN", hide_env_values = true)]
    pub gitlab_token: Option<String>,
    #[arg(long, env = "CONVEYOR_GITLAB_TOKEN_FILE", value_name = "PATH")]
    pub gitlab_token_file: Option<PathBuf>,
    /// Gitea's or Forgejo's API (`https://HOST/api/v1`); needed with a Gitea token.
    #[arg(long, env = "CONVEYOR_GITEA_API", requires = "gitea_credential")]
    pub gitea_api: Option<String>,
    #[arg(
        long,
        env = "CONVEYOR_GITEA_TOKEN",
        hide_env_values = true,
        requires = "gitea_api",
        group = "gitea_credential"
    )]
    pub gitea_token: Option<String>,
    #[arg(
        long,
        env = "CONVEYOR_GITEA_TOKEN_FILE",
        value_name = "PATH",
        requires = "gitea_api",
        group = "gitea_credential"
    )]
    pub gitea_token_file: Option<PathBuf>,
    /// The URL people reach this orchestrator at, for links from the forge (default: the
    /// listen address). Starting with `https://`, it also makes the session cookie `Secure`
    /// (for a proxy that terminates TLS).
    #[arg(long, env = "CONVEYOR_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// `serve`'s credentials: each may come from the environment, a file or (with a warning)
/// the command line.
pub const CREDENTIALS: [Credential; 8] = [
    credential(
        "database_url",
        "database URL",
        "--database-url",
        "CONVEYOR_DATABASE_URL",
    ),
    credential(
        "redis_url",
        "Redis URL",
        "--redis-url",
        "CONVEYOR_REDIS_URL",
    ),
    credential(
        "admin_token",
        "admin token",
        "--admin-token",
        "CONVEYOR_ADMIN_TOKEN",
    ),
    credential(
        "runner_token",
        "runner token",
        "--runner-token",
        "CONVEYOR_RUNNER_TOKEN",
    ),
    credential(
        "fleet_tokens",
        "fleet tokens",
        "--fleet-token",
        "CONVEYOR_FLEET_TOKENS",
    ),
    credential(
        "github_token",
        "GitHub token",
        "--github-token",
        "CONVEYOR_GITHUB_TOKEN",
    ),
    credential(
        "gitlab_token",
        "GitLab token",
        "--gitlab-token",
        "CONVEYOR_GITLAB_TOKEN",
    ),
    credential(
        "gitea_token",
        "Gitea token",
        "--gitea-token",
        "CONVEYOR_GITEA_TOKEN",
    ),
];

const fn credential(
    id: &'static str,
    what: &'static str,
    flag: &'static str,
    var: &'static str,
) -> Credential {
    Credential {
        id,
        what,
        flag,
        var,
    }
}

/// `serve`'s credentials, read from wherever they were given.
struct Secrets {
    database_url: String,
    redis_url: String,
    admin_token: String,
    runner_token: Option<String>,
    fleet_tokens: Vec<FleetToken>,
}

impl ServeArgs {
    /// The database connections and caches this node may hold.
    fn pool_limits(&self) -> crate::store::PoolLimits {
        crate::store::PoolLimits {
            connections: self.db_connections,
            sqlite_cache_kib: self.sqlite_cache_kib,
        }
    }

    /// Reads the credentials given as files (the forge tokens into `statuses`) and checks
    /// the tokens.
    fn secrets(&mut self) -> Result<Secrets, String> {
        let [
            database,
            redis,
            admin,
            runner,
            fleets,
            github,
            gitlab,
            gitea,
        ] = CREDENTIALS;
        let st = &mut self.statuses;
        st.github_token = secret(&st.github_token, &st.github_token_file, github)?;
        st.gitlab_token = secret(&st.gitlab_token, &st.gitlab_token_file, gitlab)?;
        st.gitea_token = secret(&st.gitea_token, &st.gitea_token_file, gitea)?;
        let admin_token = secret(&self.admin_token, &self.admin_token_file, admin)?;
        let runner_token = secret(&self.runner_token, &self.runner_token_file, runner)?;
        let given = (!self.fleet_tokens.is_empty()).then(String::new);
        let fleet_tokens = match (
            &self.fleet_tokens_file,
            secret(&given, &self.fleet_tokens_file, fleets)?,
        ) {
            (Some(path), Some(text)) => fleet_tokens_in(path, &text)?,
            _ => self.fleet_tokens.clone(),
        };
        let admin_token = admin_token.unwrap_or_default();
        check_token("admin token", &admin_token).map_err(|e| e.to_string())?;
        if let Some(t) = &runner_token {
            check_token("runner token", t).map_err(|e| e.to_string())?;
        }
        Ok(Secrets {
            database_url: secret(&self.database_url, &self.database_url_file, database)?
                .unwrap_or_default(),
            redis_url: secret(&self.redis_url, &self.redis_url_file, redis)?.unwrap_or_default(),
            admin_token,
            runner_token,
            fleet_tokens,
        })
    }
}

/// The fleet tokens of a file's `text`: one `FLEET[,FLEET...]=TOKEN` a line (blank lines
/// and lines starting with `#` are skipped).
fn fleet_tokens_in(path: &std::path::Path, text: &str) -> Result<Vec<FleetToken>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            l.trim()
                .parse()
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

impl StatusArgs {
    /// The forges with a token, and the URL build links start with (`scheme://listen` by
    /// default).
    pub fn config(self, listen: SocketAddr, scheme: &str) -> StatusConfig {
        let apis = [
            (Forge::GitHub, Some(self.github_api), self.github_token),
            (Forge::GitLab, Some(self.gitlab_api), self.gitlab_token),
            (Forge::Gitea, self.gitea_api, self.gitea_token),
        ]
        .into_iter()
        .filter_map(|(forge, base, token)| {
            Some(ForgeApi {
                forge,
                base: base?,
                token: token.filter(|t| !t.is_empty())?,
            })
        })
        .collect();
        StatusConfig {
            apis,
            public_url: self
                .public_url
                .unwrap_or_else(|| format!("{scheme}://{listen}")),
            trust: Trust::system(),
        }
    }
}

pub async fn run(mut a: ServeArgs) -> ExitCode {
    let secrets = match a.secrets() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let loaded = a.tls.load().and_then(|tls| {
        let trust = Trust::with_ca_file(a.ca_cert.as_deref())
            .map_err(|e| StartupError::Tls(e.to_string()))?;
        Ok((tls, trust))
    });
    let (tls, trust) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let files = match a.files.config(&a.data_dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pool = a.pool_limits();
    let mut statuses = a.statuses.config(a.listen, scheme(tls.as_ref()));
    statuses.trust = trust.clone();
    let config = ServeConfig {
        statuses,
        tls,
        trust,
        listen: a.listen,
        database_url: secrets.database_url,
        redis_url: secrets.redis_url,
        admin_token: secrets.admin_token,
        // Without `--runner-token`, only fleet tokens register runners.
        runner_token: secrets.runner_token.unwrap_or_else(crate::store::token),
        fleet_tokens: secrets.fleet_tokens,
        queue_prefix: a.queue_prefix,
        lease_secs: a.lease_secs,
        max_log_bytes: a.max_log_mib << 20,
        retention: a.keep.retention(),
        pool,
        max_live_streams: a.max_live_streams as usize,
        data_dir: a.data_dir,
        public_ui: a.public_ui,
        files,
        secret_key_file: a.secret_key_file,
    };
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
