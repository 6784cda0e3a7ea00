//! Webhook → first job running, for `bench --history`: a product on a local bare
//! repository, a runner connected (in this process, over HTTP and the server's Redis
//! queue), then one signed GitHub push per new commit; each sample is the time from sending
//! the delivery to its build's first job's claim (`started_at`), one build at a time.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor_runner::client::Client;
use conveyor_runner::executor::ExecConfig;
use conveyor_runner::queue::RedisQueue;
use conveyor_runner::worker::{Stop, Worker};
use serde_json::{Value, json};

use super::bench_server::Server;
use super::bench_stats::summary;

const SECRET: &str = "bench-webhook-secret";
const CONFIG: &str = "product: hooked\ntriggers:\n  - scm-event:\n    type: merge\n    belts: [ci]\nbelts:\n  - name: ci\n    jobs:\n      - name: check\n        commands: 'true'\n";

pub async fn measure(server: &Server, webhooks: usize, dir: &Path) -> Result<Value, String> {
    let (url, work) = repo(dir)?;
    let mut head = commit(&work, 0)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let r = http
        .post(format!("{}/api/v1/products", server.url))
        .bearer_auth(&server.admin_token)
        .json(&json!({ "repo": url, "webhook_secret": SECRET }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("registering the webhook's product: {}", r.status()));
    }
    let (stop, worker) = runner(server, dir).await?;
    let mut samples = Vec::new();
    for i in 1..=webhooks {
        let sha = commit(&work, i)?;
        let push = json!({ "ref": "refs/heads/main", "before": head, "after": sha,
            "repository": { "clone_url": url, "html_url": "https://example.test/acme/hooked" } });
        samples.push(one(server, &http, &push, i).await?);
        head = sha;
    }
    let _ = stop.send(Some(Stop::HandBack));
    let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    Ok(summary(&mut samples))
}

/// Sends one delivery; ms from sending it to its first job's claim, once the build ended.
async fn one(
    server: &Server,
    http: &reqwest::Client,
    push: &Value,
    n: usize,
) -> Result<f64, String> {
    let body = serde_json::to_vec(push).map_err(|e| e.to_string())?;
    let sig = format!(
        "sha256={}",
        crate::secrets::hmac_hex(SECRET.as_bytes(), &body)
    );
    let sent = crate::clock::now_ms();
    let r = http
        .post(format!("{}/hooks/github", server.url))
        .header("x-github-event", "push")
        .header("x-github-delivery", format!("bench-{}-{n}", server.pid))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let answer: Value = r.json().await.map_err(|e| e.to_string())?;
    let id = answer["builds"][0]["id"]
        .as_str()
        .ok_or_else(|| format!("the webhook started no build: {answer}"))?
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut started = None;
    while Instant::now() < deadline {
        let b = server.get(http, &format!("/api/v1/builds/{id}")).await?;
        started = started.or(b["jobs"][0]["started_at"].as_i64());
        if b["status"] != "running" {
            let at = started.ok_or_else(|| format!("the webhook's build never ran: {b}"))?;
            return Ok((at - sent) as f64);
        }
        let pause = if started.is_some() { 20 } else { 2 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    Err(format!(
        "the webhook's build {id} did not finish within a minute"
    ))
}

/// A runner of the `default` fleet against `server`: its stop switch and its worker.
async fn runner(
    server: &Server,
    dir: &Path,
) -> Result<
    (
        tokio::sync::watch::Sender<Option<Stop>>,
        tokio::task::JoinHandle<()>,
    ),
    String,
> {
    let queue = RedisQueue::connect(&server.redis_url, &server.queue_prefix)
        .await
        .map_err(|e| format!("cannot reach Redis: {e}"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let name = format!("bench-{}", std::process::id());
    let fleets = vec!["default".to_string()];
    let token = Client::with_http(
        vec![server.url.clone()],
        server.runner_token.clone(),
        http.clone(),
    )
    .register(&name, &fleets)
    .await
    .map_err(|e| format!("the runner did not register: {e}"))?;
    let client = Arc::new(Client::with_http(vec![server.url.clone()], token, http));
    tokio::spawn(conveyor_runner::client::beat(client.clone()));
    let worker = Arc::new(Worker {
        name,
        fleets,
        concurrency: 2,
        client,
        queue: Arc::new(queue),
        exec: ExecConfig::new(dir.join("work")),
    });
    let (stop, rx) = tokio::sync::watch::channel(None);
    Ok((stop, tokio::spawn(worker.run(rx))))
}

/// A bare repository `hooked.git` and a clone to commit from: its `file://` URL and the
/// clone.
fn repo(dir: &Path) -> Result<(String, std::path::PathBuf), String> {
    let (origin, work) = (dir.join("hooked.git"), dir.join("hooked"));
    git(
        dir,
        &["init", "--quiet", "--bare", "-b", "main"],
        Some(&origin),
    )?;
    // Cloning `hooked.git` makes `hooked`.
    git(dir, &["clone", "--quiet"], Some(&origin))?;
    Ok((format!("file://{}", origin.display()), work))
}

/// Commit `n` on `main`, pushed; its SHA.
fn commit(work: &Path, n: usize) -> Result<String, String> {
    std::fs::write(work.join(".conveyor.yml"), CONFIG).map_err(|e| e.to_string())?;
    std::fs::write(work.join("n.txt"), n.to_string()).map_err(|e| e.to_string())?;
    git(work, &["add", "."], None)?;
    git(
        work,
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "--quiet",
            "-m",
            &format!("change {n}"),
        ],
        None,
    )?;
    git(work, &["push", "--quiet", "origin", "HEAD:main"], None)?;
    git(work, &["rev-parse", "HEAD"], None)
}

fn git(dir: &Path, args: &[&str], path: Option<&Path>) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    if let Some(p) = path {
        cmd.arg(p);
    }
    let out = cmd.output().map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
