//! Command-line arguments and dispatch to the commands.

use std::path::PathBuf;
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

// Parsed once at startup: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check .conveyor.yml files; several files are checked across products.
    Validate {
        /// The files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a belt locally through the real engine, following downstream products among the
    /// given files; exit 0 if every build succeeded.
    Run {
        /// The product files (their downstream products among them).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The product to build (needed when several have the belt).
        #[arg(long, env = "CONVEYOR_PRODUCT")]
        product: Option<String>,
        /// The belt to run.
        #[arg(long, env = "CONVEYOR_BELT")]
        belt: String,
        /// Print the builds as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Start conveyor on this machine: SQLite, local runners, the example products.
    Up {
        #[arg(long, env = "CONVEYOR_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        #[arg(long, env = "CONVEYOR_DATA_DIR", default_value = ".conveyor")]
        data_dir: PathBuf,
        /// The bearer token for mutating API calls; generated and printed when absent.
        #[arg(long, env = "CONVEYOR_ADMIN_TOKEN")]
        admin_token: Option<String>,
        /// How many jobs the local runners run at once.
        #[arg(long, env = "CONVEYOR_RUNNERS", default_value_t = 4)]
        runners: usize,
        /// The directory of example products to register.
        #[arg(long, env = "CONVEYOR_EXAMPLES", default_value = "examples")]
        examples: PathBuf,
    },
    /// Register or update products on a running orchestrator.
    Product {
        #[command(subcommand)]
        what: ProductCommand,
    },
    /// Start a build on a running orchestrator.
    Trigger {
        product: String,
        belt: String,
        /// The git ref the build is for.
        #[arg(long = "ref")]
        git_ref: Option<String>,
        /// The commit the build is for.
        #[arg(long)]
        sha: Option<String>,
        /// Follow the build's logs and exit 0 only if it succeeds.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List recent builds of a running orchestrator.
    Builds {
        #[arg(long)]
        product: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print a build's logs.
    Logs {
        /// The build id.
        build: String,
        /// Keep printing until the build finishes.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Run one orchestrator node against a shared database and Redis.
    Serve {
        #[arg(long, env = "CONVEYOR_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// `sqlite://PATH` or `postgres://…`.
        #[arg(long, env = "CONVEYOR_DATABASE_URL")]
        database_url: String,
        #[arg(long, env = "CONVEYOR_REDIS_URL")]
        redis_url: String,
        /// The bearer token for mutating API calls.
        #[arg(long, env = "CONVEYOR_ADMIN_TOKEN")]
        admin_token: String,
        /// A registration token for runners of any fleet. Prefer `--fleet-token`, which
        /// limits the fleets a runner may register for.
        #[arg(long, env = "CONVEYOR_RUNNER_TOKEN", hide_env_values = true)]
        runner_token: Option<String>,
        /// A registration token for some fleets only, as `FLEET[,FLEET...]=TOKEN` (give it
        /// once per token; in the environment, separate tokens with `;`). A runner that
        /// registers with it may serve only those fleets.
        #[arg(
            long = "fleet-token",
            env = "CONVEYOR_FLEET_TOKENS",
            value_delimiter = ';',
            hide_env_values = true
        )]
        fleet_tokens: Vec<crate::state::FleetToken>,
        /// Prefix of the Redis keys (one conveyor per prefix).
        #[arg(long, env = "CONVEYOR_QUEUE_PREFIX", default_value = "conveyor")]
        queue_prefix: String,
        /// How long a runner holds a job run without a heartbeat.
        #[arg(long, env = "CONVEYOR_LEASE_SECS", default_value_t = 30)]
        lease_secs: u64,
        /// Where this node keeps mirrors of product repositories.
        #[arg(long, env = "CONVEYOR_DATA_DIR", default_value = ".conveyor")]
        data_dir: PathBuf,
        #[command(flatten)]
        statuses: crate::statuses::StatusArgs,
        /// Let anyone read the dashboard's pages without signing in (actions still need the
        /// admin token's session).
        #[arg(long, env = "CONVEYOR_PUBLIC_UI")]
        public_ui: bool,
    },
    /// Measure conveyor's performance: builds of generated graphs of `true` jobs.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        what: Option<BenchCommand>,
        /// Shapes to run: chain, fanout, grid.
        #[arg(long, value_delimiter = ',', default_value = "chain,fanout,grid")]
        shape: Vec<String>,
        /// Jobs per graph.
        #[arg(long, default_value_t = 200)]
        jobs: usize,
        /// Layer width of the grid.
        #[arg(long, default_value_t = 20)]
        width: usize,
        /// `embedded` (SQLite, in-process queue) or `postgres` (Postgres and Redis).
        #[arg(long, default_value = "embedded")]
        backend: String,
        #[arg(long, env = "CONVEYOR_DATABASE_URL")]
        database_url: Option<String>,
        #[arg(
            long,
            env = "CONVEYOR_REDIS_URL",
            default_value = "redis://127.0.0.1:6379"
        )]
        redis_url: String,
        /// Jobs the runners run at once (ninja gets the same -j).
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// One JSON object per run.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProductCommand {
    /// Register a product from its repository's `.conveyor.yml`, or from a file.
    Add {
        /// The repository (its `.conveyor.yml` is read at the branch head).
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        repo: Option<String>,
        #[arg(long, requires = "repo")]
        branch: Option<String>,
        /// The secret the forge signs webhooks with.
        #[arg(long, requires = "repo")]
        webhook_secret: Option<String>,
        /// A `.conveyor.yml` to register as it is.
        #[arg(long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Where the API client commands send their requests.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The orchestrator's URL.
    #[arg(long, env = "CONVEYOR_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The admin token (needed to start builds, and to read from a server without
    /// `--public-ui`).
    #[arg(long, env = "CONVEYOR_TOKEN")]
    pub token: Option<String>,
}

impl ApiArgs {
    fn client(self) -> crate::client_cmds::Api {
        crate::client_cmds::Api::new(self.server, self.token)
    }
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time validating a generated belt.
    Validate {
        /// Jobs in the generated belt.
        #[arg(long, default_value_t = 2000)]
        jobs: usize,
        /// How many times to validate it.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Write the generated file here instead of only timing it.
        #[arg(long)]
        write: Option<PathBuf>,
    },
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate { files } => crate::validate::run(&files),
        Command::Run {
            files,
            product,
            belt,
            json,
        } => {
            init_logging("warn");
            block_on(crate::run_cmd::run(crate::run_cmd::RunArgs {
                files,
                product,
                belt,
                json,
            }))
        }
        Command::Product {
            what:
                ProductCommand::Add {
                    repo,
                    branch,
                    webhook_secret,
                    file,
                    api,
                },
        } => block_on(crate::client_cmds::product_add(
            api.client(),
            repo,
            branch,
            webhook_secret,
            file,
        )),
        Command::Trigger {
            product,
            belt,
            git_ref,
            sha,
            wait,
            api,
        } => block_on(crate::client_cmds::trigger(
            api.client(),
            product,
            belt,
            git_ref,
            sha,
            wait,
        )),
        Command::Builds {
            product,
            status,
            limit,
            json,
            api,
        } => block_on(crate::client_cmds::builds(
            api.client(),
            product,
            status,
            limit,
            json,
        )),
        Command::Logs { build, follow, api } => {
            block_on(crate::client_cmds::logs(api.client(), build, follow))
        }
        Command::Serve {
            listen,
            database_url,
            redis_url,
            admin_token,
            runner_token,
            fleet_tokens,
            queue_prefix,
            lease_secs,
            data_dir,
            statuses,
            public_ui,
        } => {
            init_logging("info");
            block_on(crate::serve::run(crate::serve::ServeArgs {
                statuses: statuses.config(listen),
                listen,
                database_url,
                redis_url,
                admin_token,
                // Without `--runner-token`, only fleet tokens register runners.
                runner_token: runner_token.unwrap_or_else(crate::store::token),
                fleet_tokens,
                queue_prefix,
                lease_secs,
                data_dir,
                public_ui,
            }))
        }
        Command::Up {
            listen,
            data_dir,
            admin_token,
            runners,
            examples,
        } => {
            init_logging("info");
            block_on(crate::up::run(crate::up::UpArgs {
                listen,
                data_dir,
                admin_token,
                runners,
                examples,
            }))
        }
        Command::Bench {
            what:
                Some(BenchCommand::Validate {
                    jobs,
                    runs,
                    json,
                    write,
                }),
            ..
        } => crate::bench::validate(jobs, runs, json, write.as_deref()),
        Command::Bench {
            what: None,
            shape,
            jobs,
            width,
            backend,
            database_url,
            redis_url,
            concurrency,
            json,
        } => {
            init_logging("warn");
            block_on(crate::bench_engine::run(crate::bench_engine::EngineBench {
                shapes: shape,
                jobs,
                width,
                backend,
                database_url,
                redis_url,
                concurrency,
                json,
            }))
        }
    }
}

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
