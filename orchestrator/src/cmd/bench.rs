//! `conveyor bench`: performance measurements printed with the figures that matter — the
//! engine's (`bench_engine`), a long history under load (`--history`: `bench_history`,
//! `bench_load`, `bench_hook`), retention on a simulated clock (`--history --days`:
//! `bench_retention`) and, with `bench validate`, the config compiler's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Subcommand;

use super::bench_engine::{self, EngineBench};
use super::bench_history::{self, HistoryBench};
use super::bench_load::{self, Load};
use super::bench_retention::{self, RetentionBench};

// `conveyor bench`'s arguments.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: Option<BenchCommand>,
    /// Shapes to run: chain, fanout, grid.
    #[arg(long, value_delimiter = ',', default_value = "chain,fanout,grid")]
    pub shape: Vec<String>,
    /// Jobs per graph.
    #[arg(long, default_value_t = 200)]
    pub jobs: usize,
    /// Layer width of the grid.
    #[arg(long, default_value_t = 20)]
    pub width: usize,
    /// `embedded` (SQLite, in-process queue) or `postgres` (Postgres and Redis).
    #[arg(long, default_value = "embedded")]
    pub backend: String,
    #[arg(long, env = "CONVEYOR_DATABASE_URL")]
    pub database_url: Option<String>,
    #[arg(
        long,
        env = "CONVEYOR_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// Jobs the runners run at once, and ninja's -j: the same, so both compare like with
    /// like (default: the machine's cores).
    #[arg(long, default_value_t = cores())]
    pub concurrency: usize,
    /// One JSON object per run.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub history: HistoryArgs,
}

/// `conveyor bench --history N`: a seeded history under load instead of the engine's graphs.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// Seed N finished builds into a fresh database (SQLite, or a new database on the
    /// Postgres server of --database-url with --backend postgres), start `conveyor serve` on
    /// it (with Redis at --redis-url) and measure the build list, the pages and /metrics
    /// under load from a second process, the server's memory, and webhook → first job
    /// running. With --days: N builds a day, for retention.
    #[arg(long, value_name = "N")]
    pub history: Option<u64>,
    /// Concurrent readers of the load (each takes the endpoints in turn).
    #[arg(long, default_value_t = 16, requires = "history")]
    pub readers: usize,
    /// Concurrent writers (each starts a build and cancels it, in a loop).
    #[arg(long, default_value_t = 0, requires = "history")]
    pub writers: usize,
    /// How long the load lasts, in seconds.
    #[arg(long, default_value_t = 15.0, requires = "history")]
    pub secs: f64,
    /// Signed push webhooks to time (one at a time, each to its first job running).
    #[arg(long, default_value_t = 50, requires = "history")]
    pub webhooks: usize,
    /// Simulate this many days of N builds each, sweeping with retention of --keep-days,
    /// and print the database's size after each day (no server, no load).
    #[arg(long, requires = "history")]
    pub days: Option<u32>,
    /// The retention of the --days simulation, in days.
    #[arg(long, default_value_t = 7, requires = "days")]
    pub keep_days: u32,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The load generator `--history` starts as a second process (not for direct use).
    #[command(hide = true)]
    Load {
        #[arg(long)]
        url: String,
        /// A JSON file of the endpoints to read and where to write.
        #[arg(long)]
        targets: PathBuf,
        #[arg(long, default_value_t = 16)]
        readers: usize,
        #[arg(long, default_value_t = 0)]
        writers: usize,
        #[arg(long, default_value_t = 15.0)]
        secs: f64,
        /// The admin token the requests carry.
        #[arg(long, env = "CONVEYOR_ADMIN_TOKEN", hide_env_values = true)]
        token: String,
    },
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

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

pub fn run(args: BenchArgs) -> ExitCode {
    match args.what {
        Some(BenchCommand::Validate {
            jobs,
            runs,
            json,
            write,
        }) => validate(jobs, runs, json, write.as_deref()),
        Some(BenchCommand::Load {
            url,
            targets,
            readers,
            writers,
            secs,
            token,
        }) => load(url, &targets, readers, writers, secs, token),
        None if args.history.history.is_some() => history(args),
        None => {
            super::init_logging("warn");
            super::block_on(bench_engine::run(EngineBench {
                shapes: args.shape,
                jobs: args.jobs,
                width: args.width,
                backend: args.backend,
                database_url: args.database_url,
                redis_url: args.redis_url,
                concurrency: args.concurrency,
                json: args.json,
            }))
        }
    }
}

/// `--history`: the load (or, with `--days`, the retention simulation).
fn history(args: BenchArgs) -> ExitCode {
    super::init_logging("warn");
    let h = args.history;
    let builds = h.history.unwrap_or(0);
    if let Some(days) = h.days {
        return super::block_on(bench_retention::run(RetentionBench {
            per_day: builds,
            days,
            keep_days: h.keep_days,
            backend: args.backend,
            database_url: args.database_url,
            json: args.json,
        }));
    }
    super::block_on(bench_history::run(HistoryBench {
        builds,
        backend: args.backend,
        database_url: args.database_url,
        redis_url: args.redis_url,
        readers: h.readers,
        writers: h.writers,
        secs: h.secs,
        webhooks: h.webhooks,
        json: args.json,
    }))
}

fn load(
    url: String,
    targets: &Path,
    readers: usize,
    writers: usize,
    secs: f64,
    token: String,
) -> ExitCode {
    let targets = match std::fs::read(targets)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", targets.display());
            return ExitCode::FAILURE;
        }
    };
    super::block_on(bench_load::run(Load {
        url,
        token,
        targets,
        readers,
        writers,
        secs,
    }))
}

/// A belt of `jobs` jobs, each reading an output of the one before and needing two
/// earlier ones: references, edges and outputs all exercised.
pub fn generated_belt(jobs: usize) -> String {
    let mut s = String::from(
        "product: bench\ntriggers:\n  - scm-event:\n    type: push\nbelts:\n  - name: big\n    jobs:\n",
    );
    for i in 0..jobs {
        s.push_str(&format!("      - name: job-{i}\n"));
        if i >= 2 {
            s.push_str(&format!("        needs: [job-{}, job-{}]\n", i / 2, i - 2));
        }
        s.push_str("        commands: |\n");
        if i > 0 {
            s.push_str(&format!(
                "          echo \"previous: ${{job-{}.OUT}}\"\n",
                i - 1
            ));
        }
        s.push_str(&format!("          OUT=value-{i}\n"));
        s.push_str("        outputs:\n          - String: OUT\n");
    }
    s
}

pub fn validate(jobs: usize, runs: usize, json: bool, write: Option<&Path>) -> ExitCode {
    let text = generated_belt(jobs);
    if let Some(path) = write
        && let Err(e) = std::fs::write(path, &text)
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    let files = vec![("bench.yml".to_string(), text)];
    let mut times: Vec<Duration> = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let report = super::validate::validate_texts(&files);
        times.push(start.elapsed());
        if report.errors() > 0 {
            eprintln!(
                "error: the generated belt did not validate: {}",
                report.diagnostics[0]
            );
            return ExitCode::FAILURE;
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (min, median, max) = (
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
    );
    if json {
        println!(
            "{}",
            serde_json::json!({"shape": "validate", "jobs": jobs, "runs": times.len(), "bytes": files[0].1.len(),
                "min_ms": min, "median_ms": median, "max_ms": max})
        );
    } else {
        println!(
            "validate: {jobs} jobs ({} bytes), {} runs: min {min:.1} ms, median {median:.1} ms, max {max:.1} ms",
            files[0].1.len(),
            times.len()
        );
    }
    ExitCode::SUCCESS
}
