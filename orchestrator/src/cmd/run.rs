//! `conveyor run FILE… [--product P] --belt B [--json]`: runs a belt through the real
//! engine — store, queue, protocol, executor — in a temporary directory, following the
//! downstream products among the given files.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::approvals::{Local, handle_waiting};
use super::drivers::{DriverCommand, LocalDrivers, fail_stalled};
use super::validate;
use crate::services::products::register_local;
use crate::services::{Event, Services, builds};
use crate::startup::{Embedded, Options, fleets_of};
use crate::store::{BuildTrigger, BuildView, NewBuild};

// `conveyor run`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The product files (their downstream products among them).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The product to build (needed when several have the belt).
    #[arg(long, env = "CONVEYOR_PRODUCT")]
    pub product: Option<String>,
    /// The belt to run.
    #[arg(long, env = "CONVEYOR_BELT")]
    pub belt: String,
    /// Print the builds as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Start a local driver for the run: `sh -c COMMAND` with CONVEYOR_SERVER and
    /// CONVEYOR_TOKEN set, stopped at the end (repeatable); see docs/drivers.md.
    #[arg(long = "driver", value_name = "NAME=COMMAND")]
    pub drivers: Vec<DriverCommand>,
}

pub async fn run(args: RunArgs) -> ExitCode {
    match run_inner(&args).await {
        Ok(builds) => {
            if args.json {
                println!("{}", serde_json::json!({ "builds": builds }));
            } else {
                print_summary(&builds);
            }
            let ok = builds.iter().all(|b| b.status == "succeeded");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_inner(args: &RunArgs) -> Result<Vec<BuildView>, String> {
    let (texts, unreadable) = validate::read_files(&args.files);
    let mut report = validate::validate_texts(&texts);
    report.diagnostics.extend(unreadable);
    for d in &report.diagnostics {
        eprintln!("{d}");
    }
    if report.errors() > 0 {
        return Err(format!(
            "not running: {} error(s) in the config",
            report.errors()
        ));
    }
    let product = pick_product(&report.products, args.product.as_deref(), &args.belt)?;
    let dir = std::env::temp_dir().join(format!("conveyor-run-{}", uuid::Uuid::now_v7().simple()));
    let result = execute(args, &report.products, &product, &dir).await;
    if std::env::var_os("CONVEYOR_KEEP_WORKSPACES").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn pick_product(
    products: &[(String, conveyor_core::model::Product)],
    wanted: Option<&str>,
    belt: &str,
) -> Result<String, String> {
    if let Some(p) = wanted {
        let found = products.iter().find(|(_, m)| m.name == p).ok_or_else(|| {
            let names: Vec<_> = products.iter().map(|(_, m)| m.name.as_str()).collect();
            format!(
                "error: no product `{p}` among the files given{}",
                conveyor_core::names::hint(p, names)
            )
        })?;
        return found
            .1
            .belt(belt)
            .map(|_| p.to_string())
            .ok_or_else(|| no_belt(&found.1, belt));
    }
    // The first file given is the product to build, when it has the belt.
    if let Some((_, first)) = products.first()
        && first.belt(belt).is_some()
    {
        return Ok(first.name.clone());
    }
    let with_belt: Vec<_> = products
        .iter()
        .filter(|(_, m)| m.belt(belt).is_some())
        .collect();
    match with_belt.as_slice() {
        [(_, one)] => Ok(one.name.clone()),
        [] if products.len() == 1 => Err(no_belt(&products[0].1, belt)),
        [] => Err(format!(
            "error: no product among the files given has a belt `{belt}`"
        )),
        _ => Err(format!(
            "error: several products have a belt `{belt}`: choose one with --product"
        )),
    }
}

fn no_belt(p: &conveyor_core::model::Product, belt: &str) -> String {
    let names = p.belts.iter().map(|b| b.name.as_str());
    format!(
        "error: product `{}` has no belt `{belt}`{}",
        p.name,
        conveyor_core::names::hint(belt, names)
    )
}

async fn execute(
    args: &RunArgs,
    products: &[(String, conveyor_core::model::Product)],
    root: &str,
    dir: &std::path::Path,
) -> Result<Vec<BuildView>, String> {
    let token = crate::store::token();
    let opts = Options {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        runners: std::thread::available_parallelism().map_or(4, |n| n.get().max(4)),
        max_log_bytes: crate::services::DEFAULT_MAX_LOG_MIB << 20,
        retention: Default::default(),
        fleets: fleets_of(products.iter().map(|(_, p)| p)),
        admin_token: token.clone(),
        job_user: None,
        statuses: Default::default(),
        tls: None,
        files: None,
        local_caches: Some(user_cache_dir()),
    };
    let engine = Embedded::start(opts)
        .await
        .map_err(|e| format!("error: {e}"))?;
    let (git_ref, sha) = register(&engine.services, products, root, dir).await?;
    let mut drivers = LocalDrivers::start(&args.drivers, &engine.url, &token, &[])?;
    let mut events = engine.services.events.subscribe();
    let new = NewBuild {
        resource: None,
        product: root.to_string(),
        belt: args.belt.clone(),
        trigger: BuildTrigger::Manual,
        git_ref,
        sha,
        model: None,
        context: None,
    };
    let started = builds::create(&engine.services, &new)
        .await
        .map_err(|e| format!("error: {e}"))?;
    let mut open: HashSet<String> = started.created.iter().cloned().collect();
    for f in &started.finished {
        open.remove(f);
    }
    let local = Local {
        engine: &engine,
        token: &token,
    };
    let order = follow(&local, &mut events, open, started.created, &mut drivers).await;
    let mut builds = Vec::new();
    for b in std::iter::once(&started.id).chain(order.iter().filter(|b| **b != started.id)) {
        if let Ok(Some(v)) = engine.services.store.build(b).await {
            builds.push(v);
        }
    }
    drivers.stop().await;
    engine.shutdown().await;
    Ok(builds)
}

/// Where `conveyor run` keeps caches between runs: `$XDG_CACHE_HOME/conveyor`, else
/// `~/.cache/conveyor`, else a directory under the system's temporary one.
fn user_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    base.unwrap_or_else(std::env::temp_dir)
        .join("conveyor")
        .join("caches")
}

/// Registers the products, each with a snapshot of the work tree holding its file as its
/// `source`; the root product's branch and commit.
async fn register(
    services: &Services,
    products: &[(String, conveyor_core::model::Product)],
    root: &str,
    dir: &std::path::Path,
) -> Result<(Option<String>, Option<String>), String> {
    let (mut root_branch, mut root_sha) = (None, None);
    for (i, (file, model)) in products.iter().enumerate() {
        let snap = crate::git::snapshot(
            std::path::Path::new(file),
            &dir.join("src").join(i.to_string()),
        )
        .map_err(|e| format!("error: cannot snapshot the source of {file}: {e}"))?;
        if model.name == root {
            root_sha = snap.sha.clone();
            root_branch = snap.branch.clone();
        }
        let yaml = std::fs::read_to_string(file).map_err(|e| format!("error: {file}: {e}"))?;
        let source = Some(snap.path.display().to_string());
        register_local(services, model.clone(), yaml, source)
            .await
            .map_err(|e| format!("error: {e}"))?;
    }
    Ok((root_branch, root_sha))
}

/// Streams the logs of the `open` builds and of every build they fire, until all have
/// finished; every build seen, in the order they were created. A build with a driver job
/// no driver will take (none of the local `drivers` still running) is cancelled, saying so.
async fn follow(
    local: &Local<'_>,
    events: &mut Receiver<Event>,
    mut open: HashSet<String>,
    mut order: Vec<String>,
    drivers: &mut LocalDrivers,
) -> Vec<String> {
    let engine = local.engine;
    let mut names: HashMap<String, String> = HashMap::new();
    let mut printed: HashMap<String, i64> = HashMap::new();
    let mut asked = HashSet::new();
    let mut told = HashSet::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(300));
    while !open.is_empty() {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = tick.tick() => {
                handle_waiting(local, &order, &mut asked).await;
                let running = drivers.running();
                fail_stalled(&engine.services, &open, &running, &mut told).await;
                continue;
            }
        };
        match event {
            Ok(Event::BuildCreated { id }) => {
                if open.insert(id.clone()) {
                    order.push(id);
                }
            }
            Ok(Event::BuildFinished { id }) => {
                open.remove(&id);
            }
            Ok(Event::Logs { job_run_id }) => {
                let label = job_label(engine, &order, &mut names, &job_run_id).await;
                let after = printed.entry(job_run_id.clone()).or_default();
                print_new_lines(engine, &job_run_id, &label, after).await;
            }
            Err(RecvError::Lagged(_)) => {
                // Missed events: fall back to the store's word on what is still open.
                let mut still = HashSet::new();
                for b in &order {
                    if engine
                        .services
                        .store
                        .build(b)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|v| v.finished_at.is_none())
                    {
                        still.insert(b.clone());
                    }
                }
                open = still;
            }
            Err(RecvError::Closed) => break,
        }
    }
    order
}

/// Prints a job run's lines stored after line `after`, moving it on.
async fn print_new_lines(engine: &Embedded, run: &str, label: &str, after: &mut i64) {
    const PAGE: u32 = 1_000;
    loop {
        let rows = match engine.services.store.logs(run, *after, PAGE).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(job_run = %run, "reading its log: {e}");
                return;
            }
        };
        for l in &rows {
            eprintln!("[{label}] {}", l.text);
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE as usize => *after = last.id,
            Some(last) => {
                *after = last.id;
                return;
            }
            None => return,
        }
    }
}

/// `product/job` for a job run, looked up once.
async fn job_label(
    engine: &Embedded,
    builds: &[String],
    names: &mut HashMap<String, String>,
    run: &str,
) -> String {
    if let Some(n) = names.get(run) {
        return n.clone();
    }
    for b in builds {
        if let Ok(Some(v)) = engine.services.store.build(b).await {
            for j in &v.jobs {
                names.insert(j.id.clone(), format!("{}/{}", v.product, j.name));
            }
        }
    }
    names.get(run).cloned().unwrap_or_else(|| run.to_string())
}

fn print_summary(builds: &[BuildView]) {
    for b in builds {
        println!("{} {} #{}: {}", b.product, b.belt, b.number, b.status);
        let width = b.jobs.iter().map(|j| j.name.len()).max().unwrap_or(0);
        for j in &b.jobs {
            let exit = j.exit_code.map_or(String::new(), |c| format!(" exit {c}"));
            let attempts = if j.attempts > 1 {
                format!(" ({} attempts)", j.attempts)
            } else {
                String::new()
            };
            let outputs: Vec<String> = j
                .outputs
                .iter()
                .filter(|(k, _)| k.as_str() != conveyor_core::compile::STDOUT)
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            let error = j
                .error
                .as_ref()
                .map_or(String::new(), |e| format!(" — {e}"));
            println!(
                "  {:width$}  {}{exit}{attempts}{error} {}",
                j.name,
                j.status,
                outputs.join(" ")
            );
        }
    }
}
