//! `conveyor bench load` (hidden): the load generator `bench --history` starts as a second
//! process, so that its requests cost the orchestrator's process nothing but serving them.
//! Readers take the endpoints in turn (a random path of each), writers start builds and
//! cancel them; one JSON object with each endpoint's latency is printed at the end.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::bench_stats::summary;
use crate::store::seed::Rng;

/// What the load generator is given: the endpoints by name, each a list of paths (one is
/// picked at random per request), and where writers start builds.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Targets {
    pub read: BTreeMap<String, Vec<String>>,
    /// `POST` here starts a build (`/api/v1/products/P/belts/B/builds`).
    pub write: Option<String>,
}

pub struct Load {
    pub url: String,
    pub token: String,
    pub targets: Targets,
    pub readers: usize,
    pub writers: usize,
    pub secs: f64,
}

/// One request's outcome: its endpoint, how long it took (ms), and whether it succeeded.
type Sample = (String, f64, bool);

pub async fn run(load: Load) -> ExitCode {
    match drive(&load).await {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the readers and writers for `secs`; each endpoint's figures.
pub async fn drive(load: &Load) -> Result<Value, String> {
    if load.targets.read.is_empty() {
        return Err("no endpoints to read".into());
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(load.readers + load.writers)
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs_f64(load.secs);
    let mut tasks = Vec::new();
    for r in 0..load.readers {
        let (http, load) = (http.clone(), share(load));
        tasks.push(tokio::spawn(async move {
            read(&http, &load, r, deadline).await
        }));
    }
    for w in 0..load.writers {
        let (http, load) = (http.clone(), share(load));
        tasks.push(tokio::spawn(async move {
            write(&http, &load, w, deadline).await
        }));
    }
    let mut by: BTreeMap<String, (Vec<f64>, u64)> = BTreeMap::new();
    for t in tasks {
        for (name, ms, ok) in t.await.map_err(|e| e.to_string())? {
            let e = by.entry(name).or_default();
            if ok {
                e.0.push(ms);
            } else {
                e.1 += 1;
            }
        }
    }
    let mut endpoints = serde_json::Map::new();
    for (name, (mut ms, errors)) in by {
        let mut s = summary(&mut ms);
        s["errors"] = json!(errors);
        endpoints.insert(name, s);
    }
    Ok(
        json!({ "secs": load.secs, "readers": load.readers, "writers": load.writers, "endpoints": endpoints }),
    )
}

fn share(load: &Load) -> Load {
    Load {
        url: load.url.clone(),
        token: load.token.clone(),
        targets: load.targets.clone(),
        ..*load
    }
}

async fn read(http: &reqwest::Client, load: &Load, reader: usize, until: Instant) -> Vec<Sample> {
    let names: Vec<(&String, &Vec<String>)> = load.targets.read.iter().collect();
    let mut rng = Rng::new(reader as u64 + 1);
    let mut out = Vec::new();
    let mut turn = reader;
    while Instant::now() < until {
        let (name, paths) = names[turn % names.len()];
        turn += 1;
        let Some(path) = paths.get(rng.below(paths.len() as u64) as usize) else {
            continue;
        };
        let start = Instant::now();
        let ok = get(http, load, path).await;
        out.push((name.clone(), start.elapsed().as_secs_f64() * 1000.0, ok));
    }
    out
}

/// A GET with the admin token; true on a 2xx whose body was read whole.
async fn get(http: &reqwest::Client, load: &Load, path: &str) -> bool {
    let r = http
        .get(format!("{}{path}", load.url))
        .bearer_auth(&load.token)
        .send()
        .await;
    match r {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        Ok(r) => {
            eprintln!("GET {path}: {}", r.status());
            false
        }
        Err(e) => {
            eprintln!("GET {path}: {e}");
            false
        }
    }
}

/// Starts a build and cancels it, in a loop; both calls' times under `write`.
async fn write(http: &reqwest::Client, load: &Load, _: usize, until: Instant) -> Vec<Sample> {
    let Some(path) = &load.targets.write else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while Instant::now() < until {
        let start = Instant::now();
        let made = http
            .post(format!("{}{path}", load.url))
            .bearer_auth(&load.token)
            .send()
            .await;
        let id = match made {
            Ok(r) if r.status().is_success() => r
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string)),
            _ => None,
        };
        out.push((
            "write".to_string(),
            start.elapsed().as_secs_f64() * 1000.0,
            id.is_some(),
        ));
        if let Some(id) = id {
            let _ = http
                .post(format!("{}/api/v1/builds/{id}/cancel", load.url))
                .bearer_auth(&load.token)
                .send()
                .await;
        }
    }
    out
}
