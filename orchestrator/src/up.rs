//! `conveyor up`: the embedded orchestrator with local runners, the example products
//! registered and built, the dashboard and API on one port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use conveyor_core::model::{ScmEventType, Trigger};

use crate::embedded::{Embedded, Options, fleets_of};
use crate::state::now_ms;
use crate::store::{BuildTrigger, NewBuild, ProductRecord};
use crate::validate;

pub struct UpArgs {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub admin_token: Option<String>,
    pub runners: usize,
    pub examples: PathBuf,
}

pub async fn run(args: UpArgs) -> ExitCode {
    let files = example_files(&args.examples);
    let (texts, unreadable) = validate::read_files(&files);
    let report = validate::validate_texts(&texts);
    let admin_token = args.admin_token.clone().unwrap_or_else(crate::store::token);
    let opts = Options {
        data_dir: args.data_dir.clone(),
        listen: args.listen,
        runners: args.runners,
        fleets: fleets_of(report.products.iter().map(|(_, p)| p)),
        admin_token: admin_token.clone(),
        statuses: Default::default(),
    };
    let engine = match Embedded::start(opts).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("conveyor is up at {}", engine.url);
    println!("  admin token: {admin_token}");
    println!(
        "  dashboard:   {}/ (sign in at {}/sign-in with the admin token to re-run, cancel and approve)",
        engine.url, engine.url
    );
    println!(
        "  database:    {}",
        args.data_dir.join("conveyor.db").display()
    );
    for d in unreadable
        .iter()
        .chain(report.diagnostics.iter().filter(|d| d.is_error()))
    {
        println!("  skipped {d}");
    }
    let store = engine.state.store.clone();
    for (file, model) in &report.products {
        let source = Path::new(file).parent().map(|p| p.display().to_string());
        let record = ProductRecord {
            name: model.name.clone(),
            yaml: texts
                .iter()
                .find(|(f, _)| f == file)
                .map(|(_, t)| t.clone())
                .unwrap_or_default(),
            model: model.clone(),
            repo: model.repo.clone(),
            branch: None,
            webhook_secret: None,
            source_path: source,
            head_sha: None,
        };
        if let Err(e) = store.put_product(&record, now_ms()).await {
            eprintln!("error: registering {}: {e}", model.name);
            return ExitCode::FAILURE;
        }
        println!("  registered {} ({file})", model.name);
    }
    // As if each example had just been pushed: build the belts its `push` triggers name.
    for (_, model) in &report.products {
        for belt in push_belts(model) {
            let new = NewBuild {
                product: model.name.clone(),
                belt: belt.clone(),
                trigger: BuildTrigger::Manual,
                git_ref: None,
                sha: None,
                model: None,
            };
            match crate::routes::start(&engine.state, &new).await {
                Ok(b) => println!(
                    "  started {} {belt} #{}: {}/builds/{}",
                    b.product, b.number, engine.url, b.id
                ),
                Err(e) => eprintln!("error: starting {} {belt}: {e:?}", model.name),
            }
        }
    }
    println!("Press Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    engine.shutdown().await;
    ExitCode::SUCCESS
}

/// Every `.yml`/`.yaml` file under `dir`, sorted.
fn example_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn push_belts(p: &conveyor_core::model::Product) -> Vec<String> {
    let mut out = Vec::new();
    for t in &p.triggers {
        if let Trigger::ScmEvent(s) = t
            && s.event == ScmEventType::Push
        {
            let belts = s
                .belts
                .clone()
                .unwrap_or_else(|| p.belts.iter().map(|b| b.name.clone()).collect());
            for b in belts {
                if !out.contains(&b) {
                    out.push(b);
                }
            }
        }
    }
    out
}
