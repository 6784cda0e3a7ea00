//! `conveyor serve`: one orchestrator node against a shared database and Redis; its flags,
//! including where commit statuses go.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use conveyor_runner::tls::Trust;

use super::tls::TlsArgs;
use crate::forges::{Forge, ForgeApi, StatusConfig};
use crate::http::FleetToken;
use crate::startup::serve::{ServeConfig, run as serve};
use crate::startup::{FileConfig, StartupError, scheme};

// `conveyor serve`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[arg(long, env = "CONVEYOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`.
    #[arg(long, env = "CONVEYOR_DATABASE_URL")]
    pub database_url: String,
    #[arg(long, env = "CONVEYOR_REDIS_URL")]
    pub redis_url: String,
    /// The bearer token for mutating API calls.
    #[arg(long, env = "CONVEYOR_ADMIN_TOKEN")]
    pub admin_token: String,
    /// A registration token for runners of any fleet. Prefer `--fleet-token`, which
    /// limits the fleets a runner may register for.
    #[arg(long, env = "CONVEYOR_RUNNER_TOKEN", hide_env_values = true)]
    pub runner_token: Option<String>,
    /// A registration token for some fleets only, as `FLEET[,FLEET...]=TOKEN` (give it once
    /// per token; in the environment, separate tokens with `;`). A runner that registers
    /// with it may serve only those fleets.
    #[arg(
        long = "fleet-token",
        env = "CONVEYOR_FLEET_TOKENS",
        value_delimiter = ';',
        hide_env_values = true
    )]
    pub fleet_tokens: Vec<FleetToken>,
    /// Prefix of the Redis keys (one conveyor per prefix).
    #[arg(long, env = "CONVEYOR_QUEUE_PREFIX", default_value = "conveyor")]
    pub queue_prefix: String,
    /// How long a runner holds a job run without a heartbeat.
    #[arg(long, env = "CONVEYOR_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
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
    /// A token that may set commit statuses on GitHub; none, no GitHub statuses.
    #[arg(long, env = "CONVEYOR_GITHUB_TOKEN", hide_env_values = true)]
    pub github_token: Option<String>,
    #[arg(
        long,
        env = "CONVEYOR_GITLAB_API",
        default_value = "https://gitlab.com/api/v4"
    )]
    pub gitlab_api: String,
    #[arg(long, env = "CONVEYOR_GITLAB_TOKEN", hide_env_values = true)]
    pub gitlab_token: Option<String>,
    /// Gitea's or Forgejo's API (`https://HOST/api/v1`); needed with a Gitea token.
    #[arg(long, env = "CONVEYOR_GITEA_API", requires = "gitea_token")]
    pub gitea_api: Option<String>,
    #[arg(
        long,
        env = "CONVEYOR_GITEA_TOKEN",
        hide_env_values = true,
        requires = "gitea_api"
    )]
    pub gitea_token: Option<String>,
    /// The URL people reach this orchestrator at, for links from the forge (default: the
    /// listen address). Starting with `https://`, it also makes the session cookie `Secure`
    /// (for a proxy that terminates TLS).
    #[arg(long, env = "CONVEYOR_PUBLIC_URL")]
    pub public_url: Option<String>,
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

pub async fn run(a: ServeArgs) -> ExitCode {
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
    let mut statuses = a.statuses.config(a.listen, scheme(tls.as_ref()));
    statuses.trust = trust.clone();
    let config = ServeConfig {
        statuses,
        tls,
        trust,
        listen: a.listen,
        database_url: a.database_url,
        redis_url: a.redis_url,
        admin_token: a.admin_token,
        // Without `--runner-token`, only fleet tokens register runners.
        runner_token: a.runner_token.unwrap_or_else(crate::store::token),
        fleet_tokens: a.fleet_tokens,
        queue_prefix: a.queue_prefix,
        lease_secs: a.lease_secs,
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
