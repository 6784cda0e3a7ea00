//! What the commit-status tests stand on: a forge's API that records every call — over
//! HTTP, or HTTPS with a certificate made by the test — repositories whose pushes build, and
//! `conveyor serve` telling that forge its statuses.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use conveyor::startup::ServerTls;
use serde_json::{Value, json};

use crate::common::git::{bare_repo, commit_and_push, hmac_hex};
use crate::common::{Proc, bin};

pub(crate) const SECRET: &str = "hook-secret";
pub(crate) const TOKEN: &str = "forge-token";
/// `serve`'s admin and runner tokens (16 bytes at least, as `serve` wants).
pub(crate) const ADMIN: &str = "stub-admin-token-0001";
pub(crate) const RUNNER: &str = "stub-runner-token-0001";

/// One call the forge received, and what it answered.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    pub(crate) answered: u16,
}

impl Call {
    pub(crate) fn state(&self) -> &str {
        self.body["state"].as_str().unwrap_or("")
    }
}

/// A forge's API that records status calls; while `down`, it answers 503.
#[derive(Clone)]
pub(crate) struct Forger {
    pub(crate) url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    pub(crate) down: Arc<AtomicBool>,
}

impl Forger {
    pub(crate) async fn start() -> Forger {
        Self::start_with(None).await
    }

    /// The forge over HTTPS, with `tls`'s certificate.
    pub(crate) async fn start_https(tls: &ServerTls) -> Forger {
        Self::start_with(Some(tls)).await
    }

    async fn start_with(tls: Option<&ServerTls>) -> Forger {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let down = Arc::new(AtomicBool::new(false));
        let (c, d) = (calls.clone(), down.clone());
        let app =
            axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
                let (calls, down) = (c.clone(), d.clone());
                async move {
                    let answered = if down.load(Ordering::SeqCst) {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::CREATED
                    };
                    calls.lock().unwrap().push(Call {
                        path: uri.path().to_string(),
                        headers,
                        body: serde_json::from_str(&body).unwrap_or(Value::Null),
                        answered: answered.as_u16(),
                    });
                    (answered, "{}")
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = conveyor::startup::scheme(tls);
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let (tls, forever) = (tls.cloned(), std::future::pending());
        tokio::spawn(async move {
            conveyor::startup::serve_http(listener, tls.as_ref(), app, forever)
                .await
                .unwrap()
        });
        Forger { url, calls, down }
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The states the forge accepted for calls to `path`, in order.
    pub(crate) fn accepted(&self, path: &str) -> Vec<String> {
        self.calls()
            .iter()
            .filter(|c| c.path == path && c.answered < 300)
            .map(|c| c.state().to_string())
            .collect()
    }

    pub(crate) async fn until(&self, what: &str, check: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let calls = self.calls();
            if check(&calls) {
                return calls;
            }
            assert!(
                Instant::now() < deadline,
                "{what}; the forge saw {calls:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A bare repository whose `.conveyor.yml` builds belt `ci` on every push to `main`.
pub(crate) fn product_repo(dir: &Path, product: &str, script: &str) -> (String, String) {
    let (url, work) = bare_repo(dir, product);
    let config = format!(
        "product: {product}\ntriggers:\n  - scm-event:\n    type: merge\n    belts: [ci]\nbelts:\n  - name: ci\n    jobs:\n      - name: check\n        commands: {script}\n"
    );
    std::fs::write(work.join(".conveyor.yml"), config).unwrap();
    (url.clone(), commit_and_push(&work, "first"))
}

pub(crate) async fn register(http: &reqwest::Client, server: &str, repo: &str) {
    let r = http
        .post(format!("{server}/api/v1/products"))
        .bearer_auth(ADMIN)
        .json(&json!({ "repo": repo, "webhook_secret": SECRET }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// Sends a delivery; returns the id of the one build it created.
pub(crate) async fn deliver(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
    body: &Value,
) -> String {
    let mut req = http.post(url).body(serde_json::to_vec(body).unwrap());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    let (status, body): (u16, Value) = (r.status().as_u16(), r.json().await.unwrap());
    assert_eq!(status, 201, "{body}");
    body["builds"][0]["id"].as_str().unwrap().to_string()
}

pub(crate) fn github_push(
    repo_url: &str,
    full_name: &str,
    sha: &str,
    delivery: &str,
) -> (Vec<(&'static str, String)>, Value) {
    let body = json!({ "ref": "refs/heads/main", "after": sha, "repository": { "full_name": full_name, "clone_url": repo_url } });
    let sig = format!(
        "sha256={}",
        hmac_hex(SECRET, &serde_json::to_vec(&body).unwrap())
    );
    let headers = vec![
        ("x-github-event", "push".to_string()),
        ("x-github-delivery", delivery.to_string()),
        ("x-hub-signature-256", sig),
    ];
    (headers, body)
}

/// `conveyor serve` on the SQLite file in `dir`, telling "GitHub" (the forge) its statuses;
/// `extra` are more flags.
pub(crate) async fn serve(
    dir: &Path,
    port: u16,
    forge: &Forger,
    prefix: &str,
    extra: &[&str],
) -> Proc {
    let log = std::fs::File::create(dir.join(format!("serve-{port}.log"))).unwrap();
    let child = Command::new(bin("conveyor"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.join("conveyor.db").display()))
        .args([
            "--redis-url",
            "redis://127.0.0.1:6379",
            "--queue-prefix",
            prefix,
        ])
        .env("CONVEYOR_ADMIN_TOKEN", ADMIN)
        .env("CONVEYOR_RUNNER_TOKEN", RUNNER)
        .args([
            "--github-api",
            &format!("{}/gh", forge.url),
            "--github-token",
            TOKEN,
        ])
        .args(["--public-url", "https://ci.example"])
        .args(extra)
        .env_remove("SSL_CERT_FILE")
        .arg("--data-dir")
        .arg(dir.join(format!("data-{port}")))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while crate::common::http()
        .get(format!("{url}/health"))
        .send()
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the orchestrator on {port} did not answer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Proc(child)
}
