//! `conveyor bench --history N`: a long history under load. Seeds N finished builds into a
//! fresh database (`store::seed`), starts `conveyor serve` on it as a child process, and
//! drives a bounded concurrent load at the build list, the dashboard's pages and
//! `/metrics` from a second process (`conveyor bench load`); prints each endpoint's
//! latency and the orchestrator's memory before, during and after, then the latency from a
//! signed push webhook to its first job running (`bench_hook`).

use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::bench_load::Targets;
use super::bench_server::{Server, exe};
use super::bench_stats::{Fresh, Mem};
use crate::store::seed::SeedPlan;
use crate::store::{BuildView, ProductRecord};

pub struct HistoryBench {
    pub builds: u64,
    pub backend: String,
    pub database_url: Option<String>,
    pub redis_url: String,
    pub readers: usize,
    pub writers: usize,
    pub secs: f64,
    pub webhooks: usize,
    pub json: bool,
}

/// The seeded products: two belts of four and two jobs, one of three and one, one of one.
pub const PRODUCTS: [&str; 3] = [
    "product: web\nbelts:\n  - name: ci\n    jobs:\n      - name: build\n        commands: make build\n      - name: test\n        needs: [build]\n        commands: make test\n      - name: lint\n        needs: [build]\n        commands: make lint\n      - name: package\n        needs: [test, lint]\n        commands: make package\n  - name: deploy\n    jobs:\n      - name: ship\n        commands: ./deploy.sh\n      - name: smoke\n        needs: [ship]\n        commands: ./smoke.sh\n",
    "product: api\nbelts:\n  - name: ci\n    jobs:\n      - name: compile\n        commands: cargo build\n      - name: unit\n        needs: [compile]\n        commands: cargo test\n      - name: integration\n        needs: [compile]\n        commands: ./it.sh\n  - name: nightly\n    jobs:\n      - name: fuzz\n        commands: ./fuzz.sh\n",
    "product: docs\nbelts:\n  - name: site\n    jobs:\n      - name: render\n        commands: mdbook build\n",
];

pub async fn run(h: HistoryBench) -> ExitCode {
    match measure(&h).await {
        Ok(v) if h.json => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(v) => {
            print!("{}", text(&v));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn measure(h: &HistoryBench) -> Result<Value, String> {
    let dir = std::env::temp_dir().join(format!(
        "conveyor-bench-history-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let db = Fresh::create(&h.backend, h.database_url.as_deref(), &dir).await?;
    let result = measure_on(h, &dir, &db).await;
    db.drop_database().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure_on(h: &HistoryBench, dir: &Path, db: &Fresh) -> Result<Value, String> {
    let started = Instant::now();
    let seeded = seed(&db.url, h.builds).await?;
    db.analyze().await?;
    let seed_s = started.elapsed().as_secs_f64();
    let size = db.size().await?;
    let server = Server::start(&h.redis_url, dir, &db.url).await?;
    let outcome = drive(h, dir, &server).await;
    server.stop().await;
    let mut v = outcome?;
    v["backend"] = json!(h.backend);
    v["builds"] = json!(seeded.builds);
    v["seeded"] = json!({"builds": seeded.builds, "job_runs": seeded.job_runs, "edges": seeded.edges,
        "log_lines": seeded.log_lines, "secs": (seed_s * 10.0).round() / 10.0, "database_mb": size >> 20});
    Ok(v)
}

/// The load, the memory around it, and the webhooks, against a started server.
async fn drive(h: &HistoryBench, dir: &Path, server: &Server) -> Result<Value, String> {
    let before = Mem::of(Some(server.pid));
    let targets = targets(server, h.builds).await?;
    let (load, during) = load(h, dir, server, &targets).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = Mem::of(Some(server.pid));
    let hooks = if h.webhooks > 0 {
        super::bench_hook::measure(server, h.webhooks, dir).await?
    } else {
        Value::Null
    };
    let end = Mem::of(Some(server.pid));
    Ok(json!({
        "load": load,
        "rss_mb": {"before": before.rss_mb(), "during_max": during.rss_mb(), "after": after.rss_mb(),
            "after_webhooks": end.rss_mb(), "peak": end.hwm_mb(),
            "during_max_anon": during.anon_mb(), "during_max_file": during.file_mb()},
        "webhooks": hooks,
    }))
}

/// The store at `url` with the benchmark's products registered.
pub async fn open_seeded(
    url: &str,
) -> Result<(std::sync::Arc<dyn crate::store::Store>, Vec<ProductRecord>), String> {
    let store = crate::store::open(url).await.map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    for yaml in PRODUCTS {
        let record = record(yaml)?;
        store
            .put_product(&record, 0)
            .await
            .map_err(|e| e.to_string())?;
        records.push(record);
    }
    Ok((store, records))
}

/// Registers the products and seeds `builds` builds ending now.
async fn seed(url: &str, builds: u64) -> Result<crate::store::seed::Seeded, String> {
    let (store, records) = open_seeded(url).await?;
    let plan = SeedPlan::ending_at(builds, crate::clock::now_ms());
    store
        .seed_builds(&records, &plan)
        .await
        .map_err(|e| format!("seeding failed: {e}"))
}

pub fn record(yaml: &str) -> Result<ProductRecord, String> {
    let model = conveyor_core::compile::compile("bench.yml", yaml)
        .product
        .ok_or("a benchmark product did not compile")?;
    Ok(ProductRecord {
        repo: None,
        ..ProductRecord::of(model, yaml.to_string())
    })
}

/// The endpoints read under load: the build list's first page, deep pages (cursors at a
/// tenth, half and nine tenths of the history) and filters; the overview, a product, builds
/// and jobs from the first and a deep page; `/metrics`.
async fn targets(server: &Server, builds: u64) -> Result<Targets, String> {
    let http = reqwest::Client::new();
    let first: Vec<BuildView> = builds_of(server.get(&http, "/api/v1/builds").await?)?;
    let newest = first.first().ok_or("the seeded list is empty")?;
    // Seeded builds are a minute apart.
    let span = builds as i64 * 60_000;
    let deep: Vec<String> = [1, 5, 9]
        .iter()
        .map(|tenth| format!("{}.~", newest.created_at - span * tenth / 10))
        .collect();
    let mut list = vec!["/api/v1/builds?limit=50".to_string()];
    let mut pages = Vec::new();
    for cursor in &deep {
        let path = format!("/api/v1/builds?before={cursor}");
        pages.extend(
            builds_of(server.get(&http, &path).await?)?
                .into_iter()
                .take(3),
        );
        list.push(path);
    }
    pages.extend(first.into_iter().take(3));
    let read = [
        ("api_builds", list),
        ("api_builds_filtered", filters(&deep)),
        ("page_overview", vec!["/".to_string()]),
        (
            "page_product",
            ["web", "api", "docs"]
                .map(|p| format!("/products/{p}"))
                .to_vec(),
        ),
        (
            "page_build",
            pages.iter().map(|b| format!("/builds/{}", b.id)).collect(),
        ),
        (
            "page_job",
            pages
                .iter()
                .flat_map(|b| b.jobs.first())
                .map(|j| format!("/jobs/{}", j.id))
                .collect(),
        ),
        ("metrics", vec!["/metrics".to_string()]),
    ];
    Ok(Targets {
        read: read.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        write: Some("/api/v1/products/web/belts/ci/builds".into()),
    })
}

/// Filtered lists, some from deep cursors: by belt, state, ref, trigger, and two at once.
fn filters(deep: &[String]) -> Vec<String> {
    vec![
        format!("/api/v1/builds?product=web&belt=ci&before={}", deep[1]),
        "/api/v1/builds?status=failed".to_string(),
        format!("/api/v1/builds?ref=main&before={}", deep[2]),
        "/api/v1/builds?trigger=schedule".to_string(),
        format!(
            "/api/v1/builds?product=api&status=cancelled&before={}",
            deep[0]
        ),
    ]
}

fn builds_of(v: Value) -> Result<Vec<BuildView>, String> {
    serde_json::from_value(v["builds"].clone()).map_err(|e| format!("a build list: {e}"))
}

/// Runs the load generator as a second process, sampling the server's memory meanwhile;
/// its figures and the largest memory seen.
async fn load(
    h: &HistoryBench,
    dir: &Path,
    server: &Server,
    targets: &Targets,
) -> Result<(Value, Mem), String> {
    let file = dir.join("targets.json");
    std::fs::write(
        &file,
        serde_json::to_vec(targets).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let child = tokio::process::Command::new(exe()?)
        .args(["bench", "load", "--url", &server.url, "--targets"])
        .arg(&file)
        .args([
            "--readers",
            &h.readers.to_string(),
            "--writers",
            &h.writers.to_string(),
        ])
        .args(["--secs", &h.secs.to_string()])
        .env("CONVEYOR_ADMIN_TOKEN", &server.admin_token)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the load generator: {e}"))?;
    let output = child.wait_with_output();
    tokio::pin!(output);
    let mut max = Mem::default();
    let output = loop {
        tokio::select! {
            out = &mut output => break out.map_err(|e| e.to_string())?,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                let m = Mem::of(Some(server.pid));
                if m.rss_kb > max.rss_kb { max = m; }
            }
        }
    };
    if !output.status.success() {
        return Err("the load generator failed".into());
    }
    let v = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("the load generator's figures: {e}"))?;
    Ok((v, max))
}

/// The figures as text: one line per endpoint, then memory and webhooks.
pub fn text(v: &Value) -> String {
    let mut out = format!(
        "history: {} builds on {} (seeded in {} s, {} job runs, {} MB)\n",
        v["builds"],
        v["backend"].as_str().unwrap_or(""),
        v["seeded"]["secs"],
        v["seeded"]["job_runs"],
        v["seeded"]["database_mb"]
    );
    let load = &v["load"];
    out.push_str(&format!(
        "load: {} readers, {} writers, {} s\n",
        load["readers"], load["writers"], load["secs"]
    ));
    if let Some(endpoints) = load["endpoints"].as_object() {
        for (name, e) in endpoints {
            let ms = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
            let (c, s) = (e, &e["server"]);
            out.push_str(&format!(
                "  {name:20} n {:6}  client p50 {:7.2} p99 {:7.2} max {:7.2} ms  \
                 server p50 {:7.2} p99 {:7.2} ms  errors {}\n",
                e["n"],
                ms(c, "p50_ms"),
                ms(c, "p99_ms"),
                ms(c, "max_ms"),
                ms(s, "p50_ms"),
                ms(s, "p99_ms"),
                e["errors"]
            ));
        }
    }
    let m = &v["rss_mb"];
    out.push_str(&format!(
        "orchestrator rss: before {} MB, during load max {} MB ({} MB anonymous, {} MB of files), after {} MB, after webhooks {} MB, peak {} MB\n",
        m["before"], m["during_max"], m["during_max_anon"], m["during_max_file"], m["after"], m["after_webhooks"], m["peak"]
    ));
    if let Some(w) = v["webhooks"].as_object() {
        out.push_str(&format!(
            "webhook -> first job running: n {}  p50 {} ms  p99 {} ms  max {} ms\n",
            w["n"], w["p50_ms"], w["p99_ms"], w["max_ms"]
        ));
    }
    out
}
