//! `conveyor bench`: the engine's speed on generated graphs of `true` jobs — wall time,
//! jobs/s, per-step overhead, dispatch latency, peak memory — beside ninja running the same
//! graph when it is installed (the process-spawn limit).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::services::{Event, builds, products};
use crate::startup::{Embedded, Options};
use crate::store::{BuildTrigger, BuildView, NewBuild};

pub struct EngineBench {
    pub shapes: Vec<String>,
    pub jobs: usize,
    pub width: usize,
    pub backend: String,
    pub database_url: Option<String>,
    pub redis_url: String,
    pub concurrency: usize,
    pub json: bool,
}

/// Each job's dependencies (indices) for a shape.
pub fn graph(shape: &str, jobs: usize, width: usize) -> Option<Vec<Vec<usize>>> {
    let n = jobs.max(2);
    Some(match shape {
        "chain" => (0..n)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect(),
        "fanout" => (0..n)
            .map(|i| {
                if i + 1 < n {
                    vec![]
                } else {
                    (0..n - 1).collect()
                }
            })
            .collect(),
        "grid" => {
            let w = width.clamp(3, n);
            (0..n)
                .map(|i| {
                    let (layer, col) = (i / w, i % w);
                    if layer == 0 {
                        return vec![];
                    }
                    let prev = (layer - 1) * w;
                    let mut deps: Vec<usize> = (0..3).map(|k| prev + (col + k) % w).collect();
                    deps.dedup();
                    deps
                })
                .collect()
        }
        _ => return None,
    })
}

fn yaml(deps: &[Vec<usize>]) -> String {
    let mut s = String::from("product: bench\nbelts:\n  - name: run\n    jobs:\n");
    for (i, d) in deps.iter().enumerate() {
        s.push_str(&format!("      - name: j{i}\n        commands: 'true'\n"));
        if !d.is_empty() {
            let names: Vec<String> = d.iter().map(|x| format!("j{x}")).collect();
            s.push_str(&format!("        needs: [{}]\n", names.join(", ")));
        }
    }
    s
}

pub async fn run(b: EngineBench) -> ExitCode {
    for shape in &b.shapes {
        let Some(deps) = graph(shape, b.jobs, b.width) else {
            eprintln!("error: unknown shape `{shape}`: use chain, fanout or grid");
            return ExitCode::FAILURE;
        };
        match one(&b, shape, &deps).await {
            Ok(v) if b.json => println!("{v}"),
            Ok(v) => println!(
                "{shape:7} {:5} jobs  {:10}  {} slots  wall {:.3}s  {:.0} jobs/s  step {:.2} ms  dispatch p50 {} ms p99 {} ms  rss {} MB (anonymous {} MB){}",
                v["jobs"],
                v["backend"].as_str().unwrap_or(""),
                v["slots"],
                v["wall_s"].as_f64().unwrap_or(0.0),
                v["jobs_per_s"].as_f64().unwrap_or(0.0),
                v["step_ms"].as_f64().unwrap_or(0.0),
                v["dispatch_p50_ms"],
                v["dispatch_p99_ms"],
                v["orchestrator_rss_mb"],
                v["anon_mb"],
                v.get("ninja_wall_s").and_then(|n| n.as_f64()).map_or(
                    "  (no ninja to compare with: install ninja-build)".into(),
                    |n| { format!("  (ninja -j{} {n:.3}s)", v["slots"]) }
                ),
            ),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

async fn one(
    b: &EngineBench,
    shape: &str,
    deps: &[Vec<usize>],
) -> Result<serde_json::Value, String> {
    let dir =
        std::env::temp_dir().join(format!("conveyor-bench-{}", uuid::Uuid::now_v7().simple()));
    let engine = start(b, &dir).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let sampler = tokio::spawn(largest_anon(stopped));
    let (done, wall) = build(&engine, deps).await?;
    let _ = stop.send(());
    let anon_mb = sampler.await.unwrap_or(0) / 1024;
    engine.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    if done.status != "succeeded" {
        return Err(format!("the benchmark build {}", done.status));
    }
    let mut latency: Vec<i64> = done
        .jobs
        .iter()
        .filter_map(|j| Some(j.started_at? - j.queued_at?))
        .collect();
    latency.sort_unstable();
    let pct = |p: f64| {
        latency
            .get(((latency.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let n = deps.len();
    let rss = peak_rss_mb();
    let mut v = json!({
        "shape": shape, "jobs": n, "backend": b.backend, "wall_s": wall, "jobs_per_s": n as f64 / wall,
        "step_ms": wall * 1000.0 / n as f64, "dispatch_p50_ms": pct(0.5), "dispatch_p99_ms": pct(0.99),
        "orchestrator_rss_mb": rss, "runner_rss_mb": rss, "anon_mb": anon_mb, "slots": b.concurrency,
    });
    if let Some(ninja) = ninja_wall(deps, b.concurrency) {
        v["ninja_wall_s"] = json!(ninja);
        v["ninja_j"] = json!(b.concurrency);
    }
    Ok(v)
}

/// An embedded conveyor on the chosen backend, its data in `dir`.
async fn start(b: &EngineBench, dir: &std::path::Path) -> Result<Embedded, String> {
    let opts = Options {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        runners: b.concurrency,
        max_log_bytes: crate::services::DEFAULT_MAX_LOG_MIB << 20,
        retention: Default::default(),
        fleets: vec!["default".into()],
        admin_token: crate::store::token(),
        job_user: None,
        statuses: Default::default(),
        tls: None,
        files: None,
        local_caches: None,
    };
    match b.backend.as_str() {
        "embedded" => Embedded::start(opts).await.map_err(|e| e.to_string()),
        "postgres" => {
            let url = b
                .database_url
                .clone()
                .ok_or("--database-url is needed for the postgres backend")?;
            let store = crate::store::open(&url).await.map_err(|e| e.to_string())?;
            let prefix = format!("conveyor-bench-{}", uuid::Uuid::now_v7().simple());
            let queue = conveyor_runner::queue::RedisQueue::connect(&b.redis_url, &prefix)
                .await
                .map_err(|e| e.to_string())?;
            Embedded::start_with(store, Arc::new(queue), opts)
                .await
                .map_err(|e| e.to_string())
        }
        other => Err(format!(
            "unknown backend `{other}`: use embedded or postgres"
        )),
    }
}

/// Registers the graph as a product and builds it; the finished build and its wall time.
async fn build(engine: &Embedded, deps: &[Vec<usize>]) -> Result<(BuildView, f64), String> {
    let text = yaml(deps);
    let model = conveyor_core::compile::compile("bench.yml", &text)
        .product
        .ok_or("the generated belt did not compile")?;
    products::register_local(&engine.services, model, text, None)
        .await
        .map_err(|e| e.to_string())?;
    let mut events = engine.services.events.subscribe();
    let new = NewBuild {
        resource: None,
        product: "bench".into(),
        belt: "run".into(),
        trigger: BuildTrigger::Manual,
        git_ref: None,
        sha: None,
        model: None,
        context: None,
    };
    let started = Instant::now();
    let view = builds::start(&engine.services, &new)
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match events.recv().await {
            Ok(Event::BuildFinished { id }) if id == view.id => break,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let done = engine
        .services
        .store
        .build(&view.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the build vanished")?;
    Ok((done, wall))
}

/// The largest anonymous memory (heap, stacks; not the program's code) of this process, in
/// KiB, read every 50 ms until `stop`.
async fn largest_anon(mut stop: tokio::sync::oneshot::Receiver<()>) -> u64 {
    let mut max = 0;
    loop {
        max = max.max(super::bench_stats::Mem::of(None).anon_kb);
        tokio::select! {
            _ = &mut stop => return max,
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
        }
    }
}

/// The process's peak resident memory in MB (orchestrator and runners share the process).
fn peak_rss_mb() -> u64 {
    super::bench_stats::Mem::of(None).hwm_kb / 1024
}

/// ninja running the same graph of `bash -c true`, when ninja is installed.
fn ninja_wall(deps: &[Vec<usize>], jobs: usize) -> Option<f64> {
    let dir =
        std::env::temp_dir().join(format!("conveyor-ninja-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).ok()?;
    let mut file = String::from("rule t\n  command = bash -c true && touch $out\n");
    for (i, d) in deps.iter().enumerate() {
        let inputs: Vec<String> = d.iter().map(|x| format!("j{x}")).collect();
        file.push_str(&format!("build j{i}: t {}\n", inputs.join(" ")));
    }
    std::fs::write(dir.join("build.ninja"), file).ok()?;
    let start = Instant::now();
    let status = std::process::Command::new("ninja")
        .args(["-C", &dir.display().to_string(), "-j", &jobs.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .ok()?;
    let wall = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    status.success().then_some(wall)
}

#[cfg(test)]
mod tests {
    use super::graph;

    #[test]
    fn shapes_have_the_documented_dependencies() {
        assert_eq!(graph("chain", 3, 0), Some(vec![vec![], vec![0], vec![1]]));
        assert_eq!(
            graph("fanout", 3, 0),
            Some(vec![vec![], vec![], vec![0, 1]])
        );
        let grid = graph("grid", 8, 4).unwrap();
        assert_eq!(grid[4], vec![0, 1, 2]);
        assert_eq!(grid[7], vec![3, 0, 1]);
        assert_eq!(graph("star", 3, 0), None);
    }
}
