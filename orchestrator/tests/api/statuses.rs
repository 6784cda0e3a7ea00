//! Commit statuses reach the forge — here a local server that records every call — as
//! pending, then success or failure, in each forge's format; through the forge failing for
//! a while, and through the orchestrator being killed between the two.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use conveyor::forges::{Forge, ForgeApi, StatusConfig};
use conveyor::startup::{Embedded, Options};
use serde_json::{Value, json};

use crate::common;
use crate::common::git::{bare_repo, commit_and_push, hmac_hex};

const SECRET: &str = "hook-secret";
const TOKEN: &str = "forge-token";

/// One call the forge received, and what it answered.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    headers: HeaderMap,
    body: Value,
    answered: u16,
}

impl Call {
    fn state(&self) -> &str {
        self.body["state"].as_str().unwrap_or("")
    }
}

/// A forge's API that records status calls; while `down`, it answers 503.
#[derive(Clone)]
struct Forger {
    url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    down: Arc<AtomicBool>,
}

impl Forger {
    async fn start() -> Forger {
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
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Forger { url, calls, down }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The states the forge accepted for calls to `path`, in order.
    fn accepted(&self, path: &str) -> Vec<String> {
        self.calls()
            .iter()
            .filter(|c| c.path == path && c.answered < 300)
            .map(|c| c.state().to_string())
            .collect()
    }

    async fn until(&self, what: &str, check: impl Fn(&[Call]) -> bool) -> Vec<Call> {
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
fn product_repo(dir: &Path, product: &str, script: &str) -> (String, String) {
    let (url, work) = bare_repo(dir, product);
    let config = format!(
        "product: {product}\ntriggers:\n  - scm-event:\n    type: merge\n    belts: [ci]\nbelts:\n  - name: ci\n    jobs:\n      - name: check\n        commands: {script}\n"
    );
    std::fs::write(work.join(".conveyor.yml"), config).unwrap();
    (url.clone(), commit_and_push(&work, "first"))
}

async fn register(http: &reqwest::Client, server: &str, repo: &str) {
    let r = http
        .post(format!("{server}/api/v1/products"))
        .bearer_auth("admin")
        .json(&json!({ "repo": repo, "webhook_secret": SECRET }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// Sends a delivery; returns the id of the one build it created.
async fn deliver(
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

fn github_push(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_and_gitea_are_told_pending_then_the_outcome_in_their_own_formats() {
    let dir = common::temp_dir("statuses");
    let forge = Forger::start().await;
    let (lab, lab_sha) = product_repo(&dir, "lab", "exit 3");
    let (tea, tea_sha) = product_repo(&dir, "tea", "true");
    let api = |f, path: &str| ForgeApi {
        forge: f,
        base: format!("{}{path}", forge.url),
        token: TOKEN.into(),
    };
    let opts = Options {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        runners: 2,
        fleets: vec!["default".into()],
        admin_token: "admin".into(),
        statuses: StatusConfig {
            apis: vec![
                api(Forge::GitLab, "/gl/api/v4"),
                api(Forge::Gitea, "/gt/api/v1"),
            ],
            public_url: "https://ci.example".into(),
            ..Default::default()
        },
        tls: None,
    };
    let engine = Embedded::start(opts).await.unwrap();
    let http = crate::common::http();
    register(&http, &engine.url, &lab).await;
    register(&http, &engine.url, &tea).await;

    let gl = json!({ "object_kind": "push", "ref": "refs/heads/main", "checkout_sha": lab_sha,
        "project": { "id": 42, "path_with_namespace": "acme/lab", "git_http_url": lab } });
    let lab_build = deliver(
        &http,
        &format!("{}/hooks/gitlab", engine.url),
        &[
            ("x-gitlab-event", "Push Hook".into()),
            ("x-gitlab-token", SECRET.into()),
            ("x-gitlab-event-uuid", "gl-1".into()),
        ],
        &gl,
    )
    .await;
    let gt = json!({ "ref": "refs/heads/main", "after": tea_sha,
        "repository": { "full_name": "acme/tea", "clone_url": tea } });
    let sig = hmac_hex(SECRET, &serde_json::to_vec(&gt).unwrap());
    let tea_build = deliver(
        &http,
        &format!("{}/hooks/gitea", engine.url),
        &[
            ("x-gitea-event", "push".into()),
            ("x-gitea-delivery", "gt-1".into()),
            ("x-gitea-signature", sig),
        ],
        &gt,
    )
    .await;

    let lab_path = format!("/gl/api/v4/projects/42/statuses/{lab_sha}");
    let tea_path = format!("/gt/api/v1/repos/acme/tea/statuses/{tea_sha}");
    let calls = forge
        .until("both forges hear the outcome", |_| {
            forge.accepted(&lab_path).last().map(String::as_str) == Some("failed")
                && forge.accepted(&tea_path).last().map(String::as_str) == Some("success")
        })
        .await;
    // What was sent first is the build running; what was sent last is how it ended.
    assert_eq!(
        forge.accepted(&lab_path).first().map(String::as_str),
        Some("running")
    );
    assert_eq!(
        forge.accepted(&tea_path).first().map(String::as_str),
        Some("pending")
    );
    let last = |path: &str| calls.iter().rev().find(|c| c.path == path).unwrap().clone();
    let (l, t) = (last(&lab_path), last(&tea_path));
    assert_eq!(l.headers["private-token"], TOKEN);
    assert_eq!(t.headers["authorization"], format!("token {TOKEN}"));
    assert_eq!(
        (l.body["name"].as_str(), l.body["target_url"].as_str()),
        (
            Some("conveyor/lab/ci"),
            Some(format!("https://ci.example/builds/{lab_build}").as_str())
        )
    );
    assert_eq!(
        (t.body["context"].as_str(), t.body["target_url"].as_str()),
        (
            Some("conveyor/tea/ci"),
            Some(format!("https://ci.example/builds/{tea_build}").as_str())
        )
    );
    // The build records what its forge was last told.
    let b: Value = http
        .get(format!("{}/api/v1/builds/{tea_build}", engine.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["forge_status"], "succeeded", "{b}");

    // A re-run reports to the same forge and commit, with its own link.
    let again: Value = http
        .post(format!("{}/api/v1/builds/{tea_build}/rerun", engine.url))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = format!(
        "https://ci.example/builds/{}",
        again["id"].as_str().unwrap()
    );
    let of_rerun = |calls: &[Call]| -> Vec<String> {
        calls
            .iter()
            .filter(|c| {
                c.path == tea_path && c.answered < 300 && c.body["target_url"] == link.as_str()
            })
            .map(|c| c.state().to_string())
            .collect()
    };
    let calls = forge
        .until("the forge hears the re-run's outcome", |calls| {
            of_rerun(calls).last().map(String::as_str) == Some("success")
        })
        .await;
    assert_eq!(of_rerun(&calls)[0], "pending");
    engine.shutdown().await;
}

use crate::common::{Proc, bin};

/// `conveyor serve` on the SQLite file in `dir`, telling "GitHub" (the forge) its statuses.
async fn serve(dir: &Path, port: u16, forge: &Forger, prefix: &str) -> Proc {
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
        .args(["--admin-token", "admin", "--runner-token", "runner"])
        .args([
            "--github-api",
            &format!("{}/gh", forge.url),
            "--github-token",
            TOKEN,
        ])
        .args(["--public-url", "https://ci.example"])
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outcome_reaches_github_through_a_forge_outage_and_an_orchestrator_killed_meanwhile() {
    let dir = common::temp_dir("statuses-restart");
    let forge = Forger::start().await;
    let go = dir.join("go");
    let (repo, sha) = product_repo(
        &dir,
        "shop",
        &format!("'until [ -e {} ]; do sleep 0.1; done'", go.display()),
    );
    let prefix = format!("conveyor-status-{}", uuid::Uuid::now_v7().simple());
    let (first, second) = (common::free_port(), common::free_port());
    let a = serve(&dir, first, &forge, &prefix).await;
    let runner_log = std::fs::File::create(dir.join("runner.log")).unwrap();
    let _runner = Proc(
        Command::new(bin("conveyor-runner"))
            .args(["--server", &format!("http://127.0.0.1:{first}")])
            .args(["--server", &format!("http://127.0.0.1:{second}")])
            .args([
                "--redis-url",
                "redis://127.0.0.1:6379",
                "--queue-prefix",
                &prefix,
            ])
            .args(["--token", "runner", "--name", "r1"])
            .arg("--work-dir")
            .arg(dir.join("work"))
            .stdout(Stdio::null())
            .stderr(runner_log)
            .spawn()
            .unwrap(),
    );
    let http = crate::common::http();
    let server = format!("http://127.0.0.1:{first}");
    register(&http, &server, &repo).await;
    let (headers, body) = github_push(&repo, "acme/shop", &sha, "d-1");
    let build = deliver(&http, &format!("{server}/hooks/github"), &headers, &body).await;

    let path = format!("/gh/repos/acme/shop/statuses/{sha}");
    let calls = forge
        .until("the forge hears the build is pending", |_| {
            forge.accepted(&path) == ["pending"]
        })
        .await;
    let pending = calls.iter().find(|c| c.path == path).unwrap();
    assert_eq!(pending.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(pending.body["context"], "conveyor/shop/ci");
    assert_eq!(
        pending.body["target_url"],
        format!("https://ci.example/builds/{build}")
    );

    // The forge goes down, the build finishes, the report fails and is retried…
    forge.down.store(true, Ordering::SeqCst);
    std::fs::write(&go, "").unwrap();
    forge
        .until("the outcome is tried while the forge is down", |calls| {
            calls
                .iter()
                .any(|c| c.path == path && c.answered == 503 && c.state() == "success")
        })
        .await;
    // …then the orchestrator is killed, the forge comes back, another orchestrator starts.
    drop(a);
    forge.down.store(false, Ordering::SeqCst);
    let _b = serve(&dir, second, &forge, &prefix).await;
    forge
        .until("the forge hears the outcome after the restart", |_| {
            forge.accepted(&path).last().map(String::as_str) == Some("success")
        })
        .await;
    assert_eq!(forge.accepted(&path)[0], "pending");
    let b: Value = http
        .get(format!("http://127.0.0.1:{second}/api/v1/builds/{build}"))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (b["status"].as_str(), b["forge_status"].as_str()),
        (Some("succeeded"), Some("succeeded"))
    );
}
