//! The command line: the arguments of every command (each command's module declares its
//! own), and dispatch. Commands start nodes through `startup`, act through `services`, or
//! talk to a running orchestrator's API (`client`).

pub mod api;
mod approvals;
pub mod bench;
pub mod bench_engine;
mod bench_history;
mod bench_hook;
mod bench_load;
mod bench_retention;
mod bench_server;
pub mod bench_stats;
pub mod client;
pub mod decide;
pub mod drivers;
pub mod follow;
pub mod keep;
pub mod retry;
pub mod run;
pub mod secret;
pub mod serve;
pub mod tls;
pub mod up;
pub mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "conveyor",
    version,
    about = "A CI/CD platform: belts of jobs, chained products."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check .conveyor.yml files; several files are checked across products.
    Validate(validate::ValidateArgs),
    /// Run a belt locally through the real engine, following downstream products among the
    /// given files; exit 0 if every build succeeded.
    Run(run::RunArgs),
    /// Start conveyor on this machine: SQLite, local runners, the example products.
    Up(up::UpArgs),
    /// Register or update products on a running orchestrator.
    Product {
        #[command(subcommand)]
        what: client::ProductCommand,
    },
    /// Set, list or remove secrets on a running orchestrator (values from stdin, never shown).
    Secret {
        #[command(subcommand)]
        what: secret::SecretCommand,
    },
    /// Start a build on a running orchestrator.
    Trigger(client::TriggerArgs),
    /// List recent builds of a running orchestrator.
    Builds(client::BuildsArgs),
    /// Print a build's logs.
    Logs(client::LogsArgs),
    /// Download a build's artifacts, as DIR/JOB/PATH.
    Artifacts(client::ArtifactsArgs),
    /// Retry a finished build's failed and cancelled jobs (and what they skipped) in place.
    Retry(retry::RetryArgs),
    /// Approve a manual job run waiting for approval.
    Approve(decide::DecideArgs),
    /// Decline a manual job run waiting for approval: it is skipped, with the reason.
    Decline(decide::DecideArgs),
    /// Run one orchestrator node against a shared database and Redis.
    Serve(Box<serve::ServeArgs>),
    /// Measure conveyor's performance: builds of generated graphs of `true` jobs.
    #[command(args_conflicts_with_subcommands = true)]
    Bench(bench::BenchArgs),
}

/// Warns about each credential given on the command line, which every process on the
/// machine can read (`/proc/<pid>/cmdline`).
pub fn warn_about_argv(matches: &clap::ArgMatches) {
    use conveyor_runner::credentials::warn_about_argv;
    match matches.subcommand() {
        Some(("serve", m)) => warn_about_argv(m, &serve::CREDENTIALS),
        Some(("up", m)) => warn_about_argv(m, &[up::ADMIN_TOKEN]),
        _ => {}
    }
}

/// Runs the command; its exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate(args) => validate::run(&args.files),
        Command::Run(args) => {
            init_logging("warn");
            block_on(run::run(args))
        }
        Command::Up(args) => {
            init_logging("info");
            block_on(up::run(args))
        }
        Command::Product {
            what: client::ProductCommand::Add(args),
        } => block_on(client::product_add(args)),
        Command::Secret { what } => block_on(secret::run(what)),
        Command::Trigger(args) => block_on(client::trigger(args)),
        Command::Builds(args) => block_on(client::builds(args)),
        Command::Logs(args) => block_on(client::logs(args)),
        Command::Artifacts(args) => block_on(client::artifacts(args)),
        Command::Retry(args) => block_on(retry::run(args)),
        Command::Approve(args) => block_on(decide::run(args, true)),
        Command::Decline(args) => block_on(decide::run(args, false)),
        Command::Serve(args) => {
            init_logging("info");
            block_on(serve::run(*args))
        }
        Command::Bench(args) => bench::run(args),
    }
}

/// Runs `f` on a multi-threaded runtime.
fn block_on(f: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `CONVEYOR_LOG` (e.g. `debug`, `conveyor=trace`) overrides the level.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONVEYOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
