//! `conveyor-runner`: takes job runs from its fleets' Redis queues and executes them,
//! talking to the orchestrators over the runner protocol. Parses arguments only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use conveyor_runner::client::Client;
use conveyor_runner::executor::ExecConfig;
use conveyor_runner::queue::{Queue, RedisQueue};
use conveyor_runner::worker::Worker;

#[derive(Debug, Parser)]
#[command(
    name = "conveyor-runner",
    version,
    about = "Runs conveyor jobs from fleet queues."
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
    #[arg(long, env = "CONVEYOR_REDIS_URL")]
    redis_url: String,
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
    /// registers with it and then uses a token of its own.
    #[arg(long, env = "CONVEYOR_TOKEN")]
    token: String,
    /// This runner's name (unique per runner); defaults to host and process id.
    #[arg(long, env = "CONVEYOR_RUNNER_NAME")]
    name: Option<String>,
    /// Prefix of the Redis keys (as given to `conveyor serve`).
    #[arg(long, env = "CONVEYOR_QUEUE_PREFIX", default_value = "conveyor")]
    queue_prefix: String,
    /// Where job workspaces are created.
    #[arg(long, env = "CONVEYOR_WORK_DIR")]
    work_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
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
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let queue: Arc<dyn Queue> = match RedisQueue::connect(&args.redis_url, &args.queue_prefix).await
    {
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
    let own_token = match register(&args.servers, &args.token, &name, &args.fleets).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot register with the orchestrator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = Arc::new(Client::new(args.servers, own_token));
    tokio::spawn(conveyor_runner::client::beat(client.clone()));
    let worker = Arc::new(Worker {
        name: name.clone(),
        fleets: args.fleets.clone(),
        concurrency: args.concurrency,
        client,
        queue,
        exec: ExecConfig::new(work),
    });
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
    });
    tracing::info!(runner = %name, fleets = ?args.fleets, "waiting for jobs");
    worker.run(stop_rx).await;
    ExitCode::SUCCESS
}

/// Registers, retrying for a minute while the orchestrators start.
async fn register(
    servers: &[String],
    token: &str,
    name: &str,
    fleets: &[String],
) -> Result<String, String> {
    let client = Client::new(servers.to_vec(), token.to_string());
    let mut last = String::new();
    for _ in 0..30 {
        match client.register(name, fleets).await {
            Ok(t) => return Ok(t),
            Err(e) if e.0.contains(" answered 4") => return Err(e.0),
            Err(e) => {
                tracing::warn!("registering: {e}; retrying in 2s");
                last = e.0;
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
    Err(last)
}
