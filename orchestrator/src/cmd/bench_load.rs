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

/// One request's outcome: its endpoint, how long it took as the client saw it and as the
/// server says (`Server-Timing`), in ms; `None` when it failed.
type Sample = (String, Option<(f64, f64)>);

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
    let mut by: BTreeMap<String, (Vec<f64>, Vec<f64>, u64)> = BTreeMap::new();
    for t in tasks {
        for (name, times) in t.await.map_err(|e| e.to_string())? {
            let e = by.entry(name).or_default();
            match times {
                Some((client, server)) => {
                    e.0.push(client);
                    e.1.push(server);
                }
                None => e.2 += 1,
            }
        }
    }
    let mut endpoints = serde_json::Map::new();
    for (name, (mut client, mut server, errors)) in by {
        let mut s = summary(&mut client);
        s["errors"] = json!(errors);
        s["server"] = summary(&mut server);
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
        let server = get(http, load, path).await;
        let client = start.elapsed().as_secs_f64() * 1000.0;
        out.push((name.clone(), server.map(|s| (client, s))));
    }
    out
}

/// A GET with the admin token: on a 2xx whose body was read whole, the server's time.
async fn get(http: &reqwest::Client, load: &Load, path: &str) -> Option<f64> {
    let r = http
        .get(format!("{}{path}", load.url))
        .bearer_auth(&load.token)
        .send()
        .await;
    match r {
        Ok(r) if r.status().is_success() => {
            let server = server_time(r.headers());
            r.bytes().await.ok().map(|_| server)
        }
        Ok(r) => {
            eprintln!("GET {path}: {}", r.status());
            None
        }
        Err(e) => {
            eprintln!("GET {path}: {e}");
            None
        }
    }
}

/// The `dur` of a `Server-Timing: app;dur=MS` header (0 without one).
pub fn server_time(headers: &reqwest::header::HeaderMap) -> f64 {
    headers
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("dur=")))
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0)
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
        let (id, server) = match made {
            Ok(r) if r.status().is_success() => {
                let server = server_time(r.headers());
                let v = r.json::<Value>().await.ok();
                (v.and_then(|v| v["id"].as_str().map(str::to_string)), server)
            }
            _ => (None, 0.0),
        };
        let client = start.elapsed().as_secs_f64() * 1000.0;
        out.push(("write".to_string(), id.as_ref().map(|_| (client, server))));
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
