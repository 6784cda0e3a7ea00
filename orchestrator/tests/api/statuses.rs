//! Commit statuses reach the forge — here a local server that records every call — as
//! pending, then success or failure, in each forge's format; through the forge failing for
//! a while, and through the orchestrator being killed between the two; and over HTTPS, to a
//! forge whose CA `serve` is given with `--ca-cert`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use conveyor::forges::{Forge, ForgeApi, StatusConfig};
use conveyor::startup::{Embedded, Options, ServerTls};
use conveyor_runner::tls::testing::Pki;
use serde_json::{Value, json};

use crate::common;
use crate::common::git::hmac_hex;
use crate::common::{Proc, bin};
use crate::forge_stub::*;

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
        max_log_bytes: conveyor::services::DEFAULT_MAX_LOG_MIB << 20,
        retention: Default::default(),
        fleets: vec!["default".into()],
        admin_token: ADMIN.into(),
        job_user: None,
        statuses: StatusConfig {
            apis: vec![
                api(Forge::GitLab, "/gl/api/v4"),
                api(Forge::Gitea, "/gt/api/v1"),
            ],
            public_url: "https://ci.example".into(),
            ..Default::default()
        },
        tls: None,
        files: None,
        local_caches: None,
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
        .bearer_auth(ADMIN)
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
    let a = serve(&dir, first, &forge, &prefix, &[]).await;
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
            .args(["--token", RUNNER, "--name", "r1"])
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
    let _b = serve(&dir, second, &forge, &prefix, &[]).await;
    forge
        .until("the forge hears the outcome after the restart", |_| {
            forge.accepted(&path).last().map(String::as_str) == Some("success")
        })
        .await;
    assert_eq!(forge.accepted(&path)[0], "pending");
    let b: Value = http
        .get(format!("http://127.0.0.1:{second}/api/v1/builds/{build}"))
        .bearer_auth(ADMIN)
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

/// A forge over HTTPS with a certificate from a CA made for the test.
async fn https_forge(dir: &Path) -> (Forger, Pki) {
    let pki = Pki::generate(&dir.join("pki"));
    let tls = ServerTls::load(&pki.cert, &pki.key).unwrap();
    (Forger::start_https(&tls).await, pki)
}

fn runner(dir: &Path, server: &str, prefix: &str) -> Proc {
    let log = std::fs::File::create(dir.join("runner.log")).unwrap();
    let child = Command::new(bin("conveyor-runner"))
        .args(["--server", server, "--redis-url", "redis://127.0.0.1:6379"])
        .args([
            "--queue-prefix",
            prefix,
            "--token",
            RUNNER,
            "--name",
            "r-tls",
        ])
        .arg("--work-dir")
        .arg(dir.join("work"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_reach_an_https_forge_whose_ca_serve_trusts_through_ca_cert() {
    let dir = common::temp_dir("statuses-https");
    let (forge, pki) = https_forge(&dir).await;
    assert!(forge.url.starts_with("https://127.0.0.1:"), "{}", forge.url);
    let (repo, sha) = product_repo(&dir, "shop", "true");
    let prefix = format!("conveyor-status-{}", uuid::Uuid::now_v7().simple());
    let port = common::free_port();
    let ca = pki.ca.to_str().unwrap();
    let _serve = serve(&dir, port, &forge, &prefix, &["--ca-cert", ca]).await;
    let server = format!("http://127.0.0.1:{port}");
    let _runner = runner(&dir, &server, &prefix);
    let http = common::http();
    register(&http, &server, &repo).await;
    let (headers, body) = github_push(&repo, "acme/shop", &sha, "https-1");
    deliver(&http, &format!("{server}/hooks/github"), &headers, &body).await;
    let path = format!("/gh/repos/acme/shop/statuses/{sha}");
    forge
        .until("the forge hears the outcome over HTTPS", |_| {
            forge.accepted(&path).last().map(String::as_str) == Some("success")
        })
        .await;
    assert_eq!(forge.accepted(&path)[0], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_forges_ca_serve_keeps_the_status_and_logs_what_to_pass() {
    let dir = common::temp_dir("statuses-untrusted");
    let (forge, _pki) = https_forge(&dir).await;
    let (repo, sha) = product_repo(&dir, "shop", "true");
    let prefix = format!("conveyor-status-{}", uuid::Uuid::now_v7().simple());
    let port = common::free_port();
    let _serve = serve(&dir, port, &forge, &prefix, &[]).await;
    let server = format!("http://127.0.0.1:{port}");
    let http = common::http();
    register(&http, &server, &repo).await;
    let (headers, body) = github_push(&repo, "acme/shop", &sha, "https-2");
    deliver(&http, &format!("{server}/hooks/github"), &headers, &body).await;
    let log = dir.join(format!("serve-{port}.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("commit status not delivered, will retry: ")
            && text.contains("invalid peer certificate: UnknownIssuer")
            && text.contains("pass the CA's certificate (PEM) with --ca-cert")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no clear warning: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(forge.calls().is_empty(), "{:#?}", forge.calls());
}
