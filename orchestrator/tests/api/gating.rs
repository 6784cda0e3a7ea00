//! Gating end to end, through signed GitHub webhooks over real git history in local bare
//! repositories and real runners: a product of the usual shape (lint and test in parallel,
//! docs gated on its paths, a package job with an output, a manual promotion, a downstream
//! deploy product). A pull request tests and fires nothing; a push to `main` deploys; a
//! job skipped by `if` or declined fires nothing; two quick pushes build only the second;
//! two deploys in one group never overlap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use conveyor::startup::{Embedded, Options};
use serde_json::{Value, json};

use crate::common;
use crate::common::git::{bare_repo, commit_and_push, git};
use crate::webhooks::Hooks;

const SECRET: &str = "s3cret";

const APP: &str = "product: app
concurrency: {group: \"ci-{{ conveyor.branch }}\", cancel-superseded: true}
triggers:
  - scm-event: {type: push}
  - scm-event: {type: pull-request}
belts:
  - name: ci
    jobs:
      - name: lint
        commands: 'true'
      - name: test
        inputs: [source]
        commands: if [ -f slow ]; then sleep 60; fi
      - name: docs
        if: changed(\"docs/**\")
        commands: echo docs
      - name: package
        needs: [lint, test]
        if: conveyor.event == 'pull_request' || conveyor.branch == 'main'
        commands: VERSION=1.$CONVEYOR_BUILD_NUMBER
        outputs: [VERSION]
        downstreams: [{downstream-product: deploy, belts: [staging]}]
      - name: promote
        needs: [package]
        manual: true
        if: conveyor.branch == 'main' && conveyor.event == 'push'
        commands: 'true'
        downstreams: [{downstream-product: deploy, belts: [prod]}]
";

/// Each deploy holds a lock directory for a second; one that finds it taken overlapped.
const DEPLOY: &str = "product: deploy
belts:
  - name: staging
    concurrency: deploy-staging
    jobs:
      - name: ship
        commands: |
          if ! mkdir LOCK/held 2>/dev/null; then echo overlap >> LOCK/log; fi
          echo ran >> LOCK/log
          sleep 1
          rmdir LOCK/held 2>/dev/null || true
  - name: unguarded
    jobs:
      - name: ship
        commands: |
          if ! mkdir LOCK/free 2>/dev/null; then echo overlap >> LOCK/free-log; fi
          echo ran >> LOCK/free-log
          sleep 1
          rmdir LOCK/free 2>/dev/null || true
  - name: prod
    jobs:
      - name: ship-prod
        commands: 'true'
";

/// The engine with the app and deploy products registered from their repositories.
async fn start(dir: &Path) -> Hooks {
    let (app_url, work) = bare_repo(dir, "app");
    std::fs::write(work.join(".conveyor.yml"), APP).unwrap();
    std::fs::create_dir_all(work.join("docs")).unwrap();
    std::fs::write(work.join("docs/index.md"), "# app\n").unwrap();
    std::fs::write(work.join("app.txt"), "1\n").unwrap();
    commit_and_push(&work, "app");
    let (deploy_url, deploy_work) = bare_repo(dir, "deploy");
    let lock = dir.join("lock");
    std::fs::create_dir_all(&lock).unwrap();
    let deploy = DEPLOY.replace("LOCK", lock.to_str().unwrap());
    std::fs::write(deploy_work.join(".conveyor.yml"), deploy).unwrap();
    commit_and_push(&deploy_work, "deploy");
    let opts = Options {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        runners: 3,
        max_log_bytes: conveyor::services::DEFAULT_MAX_LOG_MIB << 20,
        retention: Default::default(),
        fleets: vec!["default".into()],
        admin_token: "admin".into(),
        job_user: None,
        statuses: Default::default(),
        tls: None,
        files: None,
        local_caches: None,
    };
    let engine = Embedded::start(opts).await.unwrap();
    let http = common::http();
    for repo in [&deploy_url, &app_url] {
        let r = http
            .post(format!("{}/api/v1/products", engine.url))
            .bearer_auth("admin")
            .json(&json!({ "repo": repo, "webhook_secret": SECRET }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    Hooks {
        engine,
        http,
        url: app_url,
        work,
    }
}

/// Commits `files` on `branch` (created from the current head when new) and pushes it;
/// the commit before and after.
fn push_files(work: &Path, branch: &str, files: &[(&str, Option<&str>)]) -> (String, String) {
    let before = git(work, &["rev-parse", "HEAD"]);
    git(work, &["checkout", "--quiet", "-B", branch]);
    for (path, content) in files {
        match content {
            Some(c) => std::fs::write(work.join(path), c).unwrap(),
            None => std::fs::remove_file(work.join(path)).unwrap(),
        }
    }
    git(work, &["add", "-A"]);
    let commit = [
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "--quiet",
        "-m",
        branch,
    ];
    git(work, &commit);
    git(
        work,
        &[
            "push",
            "--quiet",
            "--force",
            "origin",
            &format!("HEAD:{branch}"),
        ],
    );
    (before, git(work, &["rev-parse", "HEAD"]))
}

impl Hooks {
    async fn push_to(&self, delivery: &str, branch: &str, before: &str, after: &str) -> Value {
        let mut body = self.push(&format!("refs/heads/{branch}"), after);
        body["before"] = json!(before);
        let (status, reply) = self.github("push", delivery, body).await;
        assert_eq!(status, 201, "{reply}");
        reply
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.engine.url))
            .bearer_auth("admin")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    async fn build(&self, id: &str) -> Value {
        self.api(
            reqwest::Method::GET,
            &format!("/api/v1/builds/{id}"),
            json!(null),
        )
        .await
    }

    /// Polls a build until `done` says so.
    async fn until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let b = self.build(id).await;
            if done(&b) {
                return b;
            }
            assert!(Instant::now() < deadline, "build {id}: {what}: {b}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn job<'a>(b: &'a Value, name: &str) -> &'a Value {
    b["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name}: {b}"))
}

fn states(b: &Value) -> Vec<(String, String)> {
    b["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let s = |k: &str| j[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("status"))
        })
        .collect()
}

fn id_of(reply: &Value) -> String {
    reply["builds"][0]["id"].as_str().unwrap().to_string()
}

/// A pull request changing code only: tests run, docs do not, nothing deploys.
async fn a_pull_request_tests_and_fires_nothing(hooks: &Hooks) {
    let (_, pr_head) = push_files(&hooks.work, "topic", &[("app.txt", Some("2\n"))]);
    let pr = json!({ "action": "opened", "number": 4,
        "pull_request": { "head": { "ref": "topic", "sha": pr_head }, "base": { "ref": "main" } },
        "repository": { "clone_url": hooks.url } });
    let (status, reply) = hooks.github("pull_request", "pr-1", pr).await;
    assert_eq!(status, 201, "{reply}");
    let b = hooks.finished(&id_of(&reply)).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(b["context"]["event"], "pull_request");
    assert_eq!(b["context"]["changed"], json!(["app.txt"]));
    let expect: Vec<(String, String)> = [
        ("lint", "succeeded"),
        ("test", "succeeded"),
        ("docs", "skipped"),
        ("package", "succeeded"),
        ("promote", "skipped"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(states(&b), expect);
    assert_eq!(b["triggered"], json!([]), "a pull request deploys nothing");
}

/// A new feature branch: docs changed since main run; `package` is skipped by its `if`,
/// so nothing fires.
async fn a_skipped_job_fires_nothing(hooks: &Hooks, main_head: &str) {
    git(&hooks.work, &["checkout", "--quiet", main_head]);
    let zero = "0".repeat(40);
    let (_, feat) = push_files(&hooks.work, "feature/x", &[("docs/guide.md", Some("g\n"))]);
    let reply = hooks.push_to("f-1", "feature/x", &zero, &feat).await;
    let b = hooks.finished(&id_of(&reply)).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(
        b["context"]["changed"],
        json!(["docs/guide.md"]),
        "since main"
    );
    assert_eq!(job(&b, "docs")["status"], "succeeded", "docs changed");
    assert_eq!(job(&b, "package")["status"], "skipped");
    assert_eq!(
        job(&b, "package")["reason"],
        "its `if` is false: conveyor.event == 'pull_request' || conveyor.branch == 'main'"
    );
    assert_eq!(b["triggered"], json!([]), "a skipped job fires nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_tests_and_fires_nothing_and_a_push_to_main_deploys_what_ran() {
    let dir = common::temp_dir("gating");
    let hooks = start(&dir).await;
    let main_head = git(&hooks.work, &["rev-parse", "HEAD"]);
    a_pull_request_tests_and_fires_nothing(&hooks).await;
    a_skipped_job_fires_nothing(&hooks, &main_head).await;

    // A push to main: package runs and deploys to staging; the declined promotion does not
    // reach prod, and the build still succeeds.
    git(&hooks.work, &["checkout", "--quiet", &main_head]);
    let (before, after) = push_files(&hooks.work, "main", &[("app.txt", Some("3\n"))]);
    let reply = hooks.push_to("m-1", "main", &before, &after).await;
    let id = id_of(&reply);
    let b = hooks
        .until(&id, "promote waits", |b| {
            job(b, "promote")["status"] == "waiting"
        })
        .await;
    assert_eq!(job(&b, "docs")["status"], "skipped", "no docs changed");
    assert_eq!(job(&b, "promote")["waiting_for"], "approval");
    let promote = job(&b, "promote")["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/job-runs/{promote}/decline");
    let declined = hooks
        .api(
            reqwest::Method::POST,
            &path,
            json!({"by": "ann", "reason": "not on a Friday"}),
        )
        .await;
    assert_eq!(job(&declined, "promote")["status"], "skipped");
    let b = hooks.finished(&id).await;
    assert_eq!(b["status"], "succeeded", "a decline is no failure: {b}");
    assert_eq!(
        (
            job(&b, "promote")["reason"].as_str(),
            job(&b, "promote")["decided_by"].as_str()
        ),
        (Some("declined by ann: not on a Friday"), Some("ann"))
    );
    let decided_at = job(&b, "promote")["decided_at"].as_i64().unwrap_or(0);
    assert!(
        decided_at >= b["created_at"].as_i64().unwrap()
            && decided_at <= b["finished_at"].as_i64().unwrap(),
        "the decline records when it was made, within the build: {b}"
    );
    let fired = b["triggered"].as_array().unwrap().clone();
    assert_eq!(fired.len(), 1, "staging only: {b}");
    let deploy = hooks.finished(fired[0].as_str().unwrap()).await;
    assert_eq!(
        (
            deploy["product"].as_str(),
            deploy["belt"].as_str(),
            deploy["status"].as_str()
        ),
        (Some("deploy"), Some("staging"), Some("succeeded"))
    );
    assert_eq!(deploy["context"]["event"], "upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_quick_pushes_build_only_the_second_and_deploys_in_one_group_never_overlap() {
    let dir = common::temp_dir("gating-race");
    let hooks = start(&dir).await;
    let (before, slow) = push_files(&hooks.work, "feature/q", &[("slow", Some("1\n"))]);
    let first = id_of(&hooks.push_to("q-1", "feature/q", &before, &slow).await);
    hooks
        .until(&first, "test runs", |b| {
            job(b, "test")["status"] == "running"
        })
        .await;
    let (_, quick) = push_files(&hooks.work, "feature/q", &[("slow", None)]);
    let second = id_of(&hooks.push_to("q-2", "feature/q", &slow, &quick).await);
    let waiting = hooks.build(&second).await;
    assert_eq!(
        waiting["waiting_for"].as_str().unwrap_or_default(),
        format!(
            "concurrency group `ci-feature/q`, held by build #{}",
            hooks.build(&first).await["number"]
        )
    );
    let b1 = hooks.finished(&first).await;
    assert_eq!(b1["status"], "cancelled", "superseded: {b1}");
    let b2 = hooks.finished(&second).await;
    assert_eq!(b2["status"], "succeeded", "{b2}");

    // Deploys: three at once in one group run one after the other; the same deploys
    // without the group overlap, so the count can see an overlap.
    for belt in ["staging", "unguarded"] {
        let path = format!("/api/v1/products/deploy/belts/{belt}/builds");
        let mut ids = Vec::new();
        for _ in 0..3 {
            let b = hooks.api(reqwest::Method::POST, &path, json!({})).await;
            ids.push(b["id"].as_str().unwrap().to_string());
        }
        for id in &ids {
            assert_eq!(hooks.finished(id).await["status"], "succeeded");
        }
    }
    let log = std::fs::read_to_string(dir.join("lock/log")).unwrap();
    assert_eq!(log, "ran\nran\nran\n", "no deploy of the group overlapped");
    let free = std::fs::read_to_string(dir.join("lock/free-log")).unwrap();
    assert!(
        free.contains("overlap"),
        "without the group they overlap: {free}"
    );
}
