//! `conveyor run FILE… [--product P] --belt B [--json]`: runs a belt through the real
//! engine — store, queue, protocol, executor — in a temporary directory, following the
//! downstream products among the given files.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use tokio::sync::broadcast::error::RecvError;

use crate::embedded::{Embedded, Options, fleets_of};
use crate::state::{Event, now_ms};
use crate::store::{BuildTrigger, BuildView, NewBuild, ProductRecord};
use crate::validate;

pub struct RunArgs {
    pub files: Vec<PathBuf>,
    pub product: Option<String>,
    pub belt: String,
    pub json: bool,
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
    let opts = Options {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        runners: std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(4),
        fleets: fleets_of(products.iter().map(|(_, p)| p)),
        admin_token: crate::store::token(),
        statuses: Default::default(),
    };
    let engine = Embedded::start(opts)
        .await
        .map_err(|e| format!("error: {e}"))?;
    let store = engine.state.store.clone();
    let mut root_sha = None;
    let mut root_branch = None;
    for (i, (file, model)) in products.iter().enumerate() {
        let snap = crate::source::snapshot(
            std::path::Path::new(file),
            &dir.join("src").join(i.to_string()),
        )
        .map_err(|e| format!("error: cannot snapshot the source of {file}: {e}"))?;
        if model.name == root {
            root_sha = snap.sha.clone();
            root_branch = snap.branch.clone();
        }
        let yaml = std::fs::read_to_string(file).map_err(|e| format!("error: {file}: {e}"))?;
        let record = ProductRecord {
            name: model.name.clone(),
            yaml,
            model: model.clone(),
            repo: model.repo.clone(),
            branch: None,
            webhook_secret: None,
            source_path: Some(snap.path.display().to_string()),
            head_sha: None,
        };
        store
            .put_product(&record, now_ms())
            .await
            .map_err(|e| format!("error: {e}"))?;
    }
    let mut events = engine.state.events.subscribe();
    let new = NewBuild {
        product: root.to_string(),
        belt: args.belt.clone(),
        trigger: BuildTrigger::Manual,
        git_ref: root_branch,
        sha: root_sha,
        model: None,
    };
    let (id, effects) = store
        .create_build(&new, now_ms())
        .await
        .map_err(|e| format!("error: {e}"))?;
    let mut open: HashSet<String> = effects.created.iter().cloned().collect();
    let mut order: Vec<String> = effects.created.clone();
    let finished_now: Vec<String> = effects.finished.clone();
    engine.state.apply(effects).await;
    for f in finished_now {
        open.remove(&f);
    }
    let mut names: HashMap<String, String> = HashMap::new();
    while !open.is_empty() {
        match events.recv().await {
            Ok(Event::BuildCreated { id }) => {
                if open.insert(id.clone()) {
                    order.push(id);
                }
            }
            Ok(Event::BuildFinished { id }) => {
                open.remove(&id);
            }
            Ok(Event::Logs { job_run_id, lines }) => {
                let label = job_label(&engine, &order, &mut names, &job_run_id).await;
                for l in lines {
                    eprintln!("[{label}] {}", l.text);
                }
            }
            Err(RecvError::Lagged(_)) => {
                // Missed events: fall back to the store's word on what is still open.
                let mut still = HashSet::new();
                for b in &order {
                    if store
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
    let mut builds = Vec::new();
    for b in std::iter::once(&id).chain(order.iter().filter(|b| **b != id)) {
        if let Ok(Some(v)) = store.build(b).await {
            builds.push(v);
        }
    }
    engine.shutdown().await;
    Ok(builds)
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
        if let Ok(Some(v)) = engine.state.store.build(b).await {
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
