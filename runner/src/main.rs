//! `conveyor-runner`: takes job runs from its fleets' Redis queues and executes them,
//! talking to the orchestrators over the runner protocol. Parses arguments, registers, and
//! turns signals into the worker's stop modes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser};
use conveyor_runner::client::{Client, ClientError};
use conveyor_runner::credentials::{Credential, secret, warn_about_argv};
use conveyor_runner::executor::{ExecConfig, JobUser};
use conveyor_runner::queue::{Queue, RedisQueue};
use conveyor_runner::tls::{TlsError, Trust};
use conveyor_runner::worker::{Stop, Worker};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

const AFTER_HELP: &str = "\
Stopping:
  SIGINT, SIGTERM  hand back: take no new job, kill the running jobs (every process they
                   started) at once, hand them back to be re-queued as lost attempts, and
                   exit within a few seconds. With --on-term drain, these drain instead,
                   and a second one hands back.
  SIGQUIT          drain: take no new job, let the running jobs finish and report, exit.
  SIGKILL          the runner's guard process kills every job within milliseconds; the
                   jobs run again once their leases expire.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnTerm {
    /// Kill the running jobs and hand them back at once.
    HandBack,
    /// Let the running jobs finish first.
    Drain,
}

#[derive(Debug, Parser)]
#[command(
    name = "conveyor-runner",
    version,
    about = "Runs conveyor jobs from fleet queues.",
    after_help = AFTER_HELP
)]
struct Args {
    /// An orchestrator URL; give it more than once to fail over between orchestrators.
    #[arg(
        long = "server",
        env = "CONVEYOR_SERVER",
        required = true,
        value_delimiter = ','
    )]
    servers: Vec<String>,
    /// The Redis URL (with its password, if it has one): redis[s]://host:port for one server,
    /// redis://a:7000,redis://b:7001 or redis+cluster://a:7000,b:7001 for a Redis Cluster,
    /// redis+sentinel://s1:26379,s2:26379/mymaster for a Sentinel-managed master.
    /// Prefer CONVEYOR_REDIS_URL or
    /// --redis-url-file: every process on the machine can read a command line.
    #[arg(
        long,
        env = "CONVEYOR_REDIS_URL",
        hide_env_values = true,
        required_unless_present = "redis_url_file"
    )]
    redis_url: Option<String>,
    /// A file holding the Redis URL (one trailing newline is ignored).
    #[arg(long, env = "CONVEYOR_REDIS_URL_FILE", value_name = "PATH")]
    redis_url_file: Option<PathBuf>,
    /// A fleet to serve; give it more than once to serve several.
    #[arg(
        long = "fleet",
        env = "CONVEYOR_FLEET",
        default_value = "default",
        value_delimiter = ','
    )]
    fleets: Vec<String>,
    /// How many jobs to run at once.
    #[arg(long, env = "CONVEYOR_CONCURRENCY", default_value_t = 2)]
    concurrency: usize,
    /// The fleet registration token (`--runner-token` of `conveyor serve`); the runner
    /// registers with it and then uses a token of its own. Prefer CONVEYOR_TOKEN or
    /// --token-file: every process on the machine can read a command line.
    #[arg(
        long,
        env = "CONVEYOR_TOKEN",
        hide_env_values = true,
        required_unless_present = "token_file"
    )]
    token: Option<String>,
    /// A file holding the registration token (one trailing newline is ignored).
    #[arg(long, env = "CONVEYOR_TOKEN_FILE", value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// This runner's name (unique per runner); defaults to host and process id.
    #[arg(long, env = "CONVEYOR_RUNNER_NAME")]
    name: Option<String>,
    /// Prefix of the Redis keys (as given to `conveyor serve`).
    #[arg(long, env = "CONVEYOR_QUEUE_PREFIX", default_value = "conveyor")]
    queue_prefix: String,
    /// Where job workspaces are created.
    #[arg(long, env = "CONVEYOR_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// What SIGINT and SIGTERM do: hand the running jobs back at once, or drain (let them
    /// finish; a second signal hands back). SIGQUIT always drains.
    #[arg(
        long,
        env = "CONVEYOR_ON_TERM",
        value_enum,
        default_value = "hand-back"
    )]
    on_term: OnTerm,
    /// Do not give each job a cgroup of its own even where the machine allows it: jobs are
    /// then found by process group and environment cookie only.
    #[arg(long, env = "CONVEYOR_NO_JOB_CGROUPS")]
    no_job_cgroups: bool,
    /// Run jobs as this user instead of the runner's own (the runner must be root), so that
    /// they cannot read the runner's credentials and files; see docs/security.md.
    #[arg(long, env = "CONVEYOR_JOB_USER", value_name = "NAME")]
    job_user: Option<String>,
    /// A PEM file of CA certificates to trust besides the system's (`SSL_CERT_FILE` names the
    /// system's), for `https://` orchestrators and a `rediss://` Redis.
    #[arg(long, env = "CONVEYOR_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Where the runner keeps its copies of cache archives, so a warm restore transfers
    /// nothing (default: `caches` in the work directory).
    #[arg(long, env = "CONVEYOR_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// The most the copies of one product's caches may take, in MiB (least recently used go).
    #[arg(long, env = "CONVEYOR_CACHE_DIR_LIMIT_MB", default_value_t = 5120)]
    cache_dir_limit_mb: u64,
}

/// The runner's credentials and the user its jobs run as, read and checked before anything
/// starts.
struct Resolved {
    token: String,
    redis_url: String,
    job_user: Option<JobUser>,
}

impl Args {
    fn resolve(&self) -> Result<Resolved, String> {
        // clap has made sure that each is given one way or the other.
        let token = secret(&self.token, &self.token_file, TOKEN)?.unwrap_or_default();
        let redis_url =
            secret(&self.redis_url, &self.redis_url_file, REDIS_URL)?.unwrap_or_default();
        let job_user = self.job_user.as_deref().map(JobUser::resolve).transpose();
        Ok(Resolved {
            token,
            redis_url,
            job_user: job_user.map_err(|e| e.to_string())?,
        })
    }
}

/// The runner's credentials, as its flags name them.
const TOKEN: Credential = Credential {
    id: "token",
    what: "token",
    flag: "--token",
    var: "CONVEYOR_TOKEN",
};
const REDIS_URL: Credential = Credential {
    id: "redis_url",
    what: "Redis URL",
    flag: "--redis-url",
    var: "CONVEYOR_REDIS_URL",
};

fn main() -> ExitCode {
    conveyor_runner::harden();
    conveyor_runner::tls::install_crypto_provider();
    let matches = Args::command().get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    warn_about_argv(&matches, &[TOKEN, REDIS_URL]);
    let resolved = match args.resolve() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONVEYOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => {
            let code = rt.block_on(run(args, resolved));
            // A blocking task stuck in a file system must not hold up the exit.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            code
        }
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, resolved: Resolved) -> ExitCode {
    let (trust, http) = match trust(args.ca_cert.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let queue = RedisQueue::connect_trusting(&resolved.redis_url, &args.queue_prefix, &trust).await;
    let queue: Arc<dyn Queue> = match queue {
        Ok(q) => Arc::new(q),
        Err(e) => {
            eprintln!("error: cannot reach Redis: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "runner".into());
    let name = args
        .name
        .unwrap_or_else(|| format!("{host}-{}", std::process::id()));
    let work = args
        .work_dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("conveyor-runner-{name}")));
    let own_token = match register(&args.servers, &resolved.token, &name, &args.fleets, &http).await
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot register with the orchestrator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = Arc::new(Client::with_http(args.servers, own_token, http));
    tokio::spawn(conveyor_runner::client::beat(client.clone()));
    let mut exec = ExecConfig::new(work);
    exec.job_cgroups = !args.no_job_cgroups;
    exec.job_user = resolved.job_user;
    if let Some(dir) = args.cache_dir {
        exec.cache_dir = dir;
    }
    exec.cache_dir_limit = args.cache_dir_limit_mb << 20;
    let worker = Arc::new(Worker {
        name: name.clone(),
        fleets: args.fleets.clone(),
        concurrency: args.concurrency,
        client,
        queue,
        exec,
    });
    let (stop, stop_rx) = watch::channel(None);
    if let Err(e) = listen_for_signals(stop, args.on_term) {
        eprintln!("error: cannot listen for signals: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!(runner = %name, fleets = ?args.fleets, "waiting for jobs");
    worker.run(stop_rx).await;
    tracing::info!(runner = %name, "stopped");
    ExitCode::SUCCESS
}

/// Turns signals into stop modes. Listening starts before the first job, so a signal is
/// never the default action (which would kill the runner and leave the jobs to the guard).
fn listen_for_signals(stop: watch::Sender<Option<Stop>>, on_term: OnTerm) -> std::io::Result<()> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut quit = signal(SignalKind::quit())?;
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = int.recv() => Signal::Term,
                _ = term.recv() => Signal::Term,
                _ = quit.recv() => Signal::Quit,
            };
            stop.send_if_modified(|s| match next_stop(*s, signal, on_term) {
                Some(next) => {
                    tracing::info!(?next, "stopping");
                    *s = Some(next);
                    true
                }
                None => false,
            });
        }
    });
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Signal {
    /// SIGINT or SIGTERM.
    Term,
    Quit,
}

/// What a signal changes the stop mode to, if anything.
fn next_stop(current: Option<Stop>, signal: Signal, on_term: OnTerm) -> Option<Stop> {
    let next = match (signal, on_term, current) {
        (Signal::Term, OnTerm::HandBack, _) => Stop::HandBack,
        // A second INT/TERM while draining: stop waiting for the jobs, hand back.
        (Signal::Term, OnTerm::Drain, Some(_)) => Stop::HandBack,
        (Signal::Term, OnTerm::Drain, None) | (Signal::Quit, _, _) => Stop::Drain,
    };
    // Never from a hand-back back to a drain: the jobs are dead already.
    (current != Some(Stop::HandBack) && current != Some(next)).then_some(next)
}

/// Whom the runner trusts (`--ca-cert`), and its HTTP client.
fn trust(ca_cert: Option<&Path>) -> Result<(Trust, reqwest::Client), TlsError> {
    let trust = Trust::with_ca_file(ca_cert)?;
    let http = conveyor_runner::client::http(&trust)?;
    Ok((trust, http))
}

/// Registers, retrying for a minute while the orchestrators start; a refusal (a 4xx: a
/// wrong token, a bad name; an untrusted certificate) is final.
async fn register(
    servers: &[String],
    token: &str,
    name: &str,
    fleets: &[String],
    http: &reqwest::Client,
) -> Result<String, ClientError> {
    let client = Client::with_http(servers.to_vec(), token.to_string(), http.clone());
    let mut tries = 0;
    loop {
        match client.register(name, fleets).await {
            Ok(t) => return Ok(t),
            Err(e) if e.is_refusal() => return Err(e),
            Err(e) if tries >= 29 => return Err(e),
            Err(e) => {
                tracing::warn!("registering: {e}; retrying in 2s");
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_hands_back_and_quit_drains_by_default() {
        assert_eq!(
            next_stop(None, Signal::Term, OnTerm::HandBack),
            Some(Stop::HandBack)
        );
        assert_eq!(
            next_stop(None, Signal::Quit, OnTerm::HandBack),
            Some(Stop::Drain)
        );
        let draining = Some(Stop::Drain);
        assert_eq!(
            next_stop(draining, Signal::Term, OnTerm::HandBack),
            Some(Stop::HandBack)
        );
        assert_eq!(next_stop(draining, Signal::Quit, OnTerm::HandBack), None);
    }

    #[test]
    fn with_on_term_drain_a_second_term_hands_back() {
        assert_eq!(
            next_stop(None, Signal::Term, OnTerm::Drain),
            Some(Stop::Drain)
        );
        let draining = Some(Stop::Drain);
        assert_eq!(
            next_stop(draining, Signal::Term, OnTerm::Drain),
            Some(Stop::HandBack)
        );
    }

    #[test]
    fn nothing_turns_a_hand_back_into_a_drain() {
        let handing_back = Some(Stop::HandBack);
        for on_term in [OnTerm::HandBack, OnTerm::Drain] {
            assert_eq!(next_stop(handing_back, Signal::Quit, on_term), None);
            assert_eq!(next_stop(handing_back, Signal::Term, on_term), None);
        }
    }

    #[test]
    fn no_help_text_shows_the_value_of_a_credential() {
        let cmd = Args::command();
        for id in ["token", "redis_url"] {
            let arg = cmd.get_arguments().find(|a| a.get_id() == id);
            assert!(arg.is_some_and(|a| a.is_hide_env_values_set()), "{id}");
        }
    }
}
