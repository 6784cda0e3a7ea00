//! Forge webhooks against local bare repositories: payloads in each forge's format, signed as
//! it signs them; the right belts run at the pushed commit; forged or replayed deliveries
//! create nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use conveyor::startup::{Embedded, Options};
use serde_json::{Value, json};

use crate::common;
use crate::common::git::{bare_repo, commit_and_push};

pub(crate) const SECRET: &str = "s3cret";

const CONFIG: &str = "product: hooked
triggers:
  - scm-event:
    type: merge
    belts: [release]
  - scm-event:
    type: push
    branches: [feature/*]
    belts: [ci]
  - scm-event:
    type: pull-request
    belts: [ci]
  - scm-event:
    type: tag
    belts: [release]
belts:
  - name: ci
    jobs:
      - name: test
        inputs: source
        commands: cat version.txt
  - name: release
    jobs:
      - name: ship
        inputs: source
        commands: cat version.txt
";

fn repo(dir: &Path) -> (String, String, String) {
    let (url, work) = bare_repo(dir, "repo");
    let commit = |version: &str| {
        std::fs::write(work.join(".conveyor.yml"), CONFIG).unwrap();
        std::fs::write(work.join("version.txt"), version).unwrap();
        commit_and_push(&work, version)
    };
    let first = commit("1.0");
    let second = commit("2.0");
    (url, first, second)
}

fn hmac_hex(body: &[u8]) -> String {
    common::git::hmac_hex(SECRET, body)
}

pub(crate) struct Hooks {
    pub(crate) engine: Embedded,
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    /// A clone to push more commits from.
    pub(crate) work: PathBuf,
}

impl Hooks {
    pub(crate) async fn start() -> (Hooks, String, String, String) {
        let dir = common::temp_dir("hooks");
        let (url, first, second) = repo(&dir);
        let hooks = Hooks::engine(&dir, &url).await;
        let reg = json!({ "repo": url, "webhook_secret": SECRET });
        let r = hooks
            .http
            .post(format!("{}/api/v1/products", hooks.engine.url))
            .bearer_auth("admin")
            .json(&reg)
            .send()
            .await
            .unwrap();
        let (status, body): (u16, Value) = (r.status().as_u16(), r.json().await.unwrap());
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            (body["product"]["branch"].as_str(), body["sha"].as_str()),
            (Some("main"), Some(second.as_str()))
        );
        assert!(
            body["product"].get("webhook_secret").is_none(),
            "the secret is never shown"
        );
        (hooks, url, first, second)
    }

    /// An embedded orchestrator for the repository at `url` (cloned in `dir/repo`), with
    /// nothing registered.
    pub(crate) async fn engine(dir: &Path, url: &str) -> Hooks {
        let opts = Options {
            data_dir: dir.join("data"),
            listen: "127.0.0.1:0".parse().unwrap(),
            runners: 2,
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
        Hooks {
            engine,
            http: crate::common::http(),
            url: url.to_string(),
            work: dir.join("repo"),
        }
    }

    async fn send(&self, forge: &str, headers: &[(&str, String)], body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut req = self
            .http
            .post(format!("{}/hooks/{forge}", self.engine.url))
            .body(bytes);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// A GitHub delivery signed with the product's secret.
    pub(crate) async fn github(&self, event: &str, delivery: &str, body: Value) -> (u16, Value) {
        let sig = format!("sha256={}", hmac_hex(&serde_json::to_vec(&body).unwrap()));
        let h = [
            ("x-github-event", event.to_string()),
            ("x-github-delivery", delivery.to_string()),
            ("x-hub-signature-256", sig),
        ];
        self.send("github", &h, &body).await
    }

    pub(crate) async fn builds(&self) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!("{}/api/v1/builds", self.engine.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["builds"].as_array().cloned().unwrap_or_default()
    }

    /// Waits for a build to finish and returns it.
    pub(crate) async fn finished(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let b: Value = self
                .http
                .get(format!("{}/api/v1/builds/{id}", self.engine.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if b["status"] != "running" {
                return b;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "build {id} did not finish: {b}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn push(&self, git_ref: &str, after: &str) -> Value {
        json!({ "ref": git_ref, "after": after, "repository": { "clone_url": self.url, "html_url": "https://example.test/hooked" } })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_github_push_to_the_default_branch_builds_at_the_pushed_commit() {
    let (hooks, _, first, _) = Hooks::start().await;
    // The branch head is at 2.0 now, but the delivery names the first commit.
    let (status, body) = hooks
        .github("push", "d-1", hooks.push("refs/heads/main", &first))
        .await;
    assert_eq!(status, 201, "{body}");
    let builds = body["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 1, "{body}");
    assert_eq!(
        (builds[0]["belt"].as_str(), builds[0]["sha"].as_str()),
        (Some("release"), Some(first.as_str()))
    );
    let b = hooks.finished(builds[0]["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(b["sha"], first);
    assert_eq!(
        b["trigger"],
        json!({"kind": "webhook", "forge": "github", "git_ref": "refs/heads/main"})
    );
    assert_eq!(
        b["jobs"][0]["outputs"]["STDOUT"], "1.0",
        "the job saw the pushed commit, not the branch head"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_unsigned_and_replayed_deliveries_create_nothing() {
    let (hooks, _, first, second) = Hooks::start().await;
    let body = hooks.push("refs/heads/main", &second);
    let forged = [
        ("x-github-event", "push".to_string()),
        ("x-github-delivery", "f-1".into()),
        ("x-hub-signature-256", format!("sha256={}", "0".repeat(64))),
    ];
    let (status, reply) = hooks.send("github", &forged, &body).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (
            401,
            Some("the signature is missing or wrong for every product of this repository")
        )
    );
    let unsigned = [
        ("x-github-event", "push".to_string()),
        ("x-github-delivery", "f-2".into()),
    ];
    assert_eq!(hooks.send("github", &unsigned, &body).await.0, 401);
    assert!(hooks.builds().await.is_empty(), "nothing recorded");

    assert_eq!(
        hooks
            .github("push", "once", hooks.push("refs/heads/main", &first))
            .await
            .0,
        201
    );
    let (status, reply) = hooks
        .github("push", "once", hooks.push("refs/heads/main", &first))
        .await;
    assert_eq!(
        (status, &reply),
        (200, &json!({"builds": [], "duplicate": true}))
    );
    assert_eq!(hooks.builds().await.len(), 1, "the replay created no build");
    let bad = hooks
        .send("github", &unsigned, &json!("not an object"))
        .await
        .0;
    assert_eq!(bad, 401);
    let r = hooks
        .http
        .post(format!("{}/hooks/github", hooks.engine.url))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_and_gitea_deliveries_and_pull_requests_tags_and_pings_pick_their_belts() {
    let (hooks, url, first, second) = Hooks::start().await;
    let (status, body) = hooks
        .github(
            "ping",
            "p-1",
            json!({ "zen": "hi", "repository": { "clone_url": url } }),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({"builds": [], "pong": true})));

    let gl = json!({ "object_kind": "push", "ref": "refs/heads/feature/x", "checkout_sha": first, "project": { "git_http_url": url } });
    let h = [
        ("x-gitlab-event", "Push Hook".to_string()),
        ("x-gitlab-token", SECRET.to_string()),
        ("x-gitlab-event-uuid", "g-1".into()),
    ];
    let (status, body) = hooks.send("gitlab", &h, &gl).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["builds"][0]["belt"], "ci",
        "feature branches run ci only"
    );
    let wrong = [
        ("x-gitlab-event", "Push Hook".to_string()),
        ("x-gitlab-token", "nope".to_string()),
        ("x-gitlab-event-uuid", "g-2".into()),
    ];
    assert_eq!(hooks.send("gitlab", &wrong, &gl).await.0, 401);

    let pr = json!({ "action": "synchronized", "number": 7, "pull_request": { "head": { "ref": "topic", "sha": second } }, "repository": { "clone_url": url } });
    let bytes = serde_json::to_vec(&pr).unwrap();
    let h = [
        ("x-gitea-event", "pull_request".to_string()),
        ("x-gitea-delivery", "t-1".into()),
        ("x-gitea-signature", hmac_hex(&bytes)),
    ];
    let (status, body) = hooks.send("gitea", &h, &pr).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (
            body["builds"][0]["belt"].as_str(),
            body["builds"][0]["sha"].as_str()
        ),
        (Some("ci"), Some(second.as_str()))
    );

    let (status, body) = hooks
        .github("push", "tag-1", hooks.push("refs/tags/v1.0", &first))
        .await;
    assert_eq!(
        (status, body["builds"][0]["belt"].as_str()),
        (201, Some("release"))
    );

    let merged = json!({ "action": "closed", "number": 7, "pull_request": { "merged": true, "head": { "sha": second } }, "repository": { "clone_url": url } });
    let (status, body) = hooks.github("pull_request", "m-1", merged).await;
    assert_eq!(
        (status, body["ignored"].as_str()),
        (200, Some("pull request closed")),
        "the push of the merge builds it, once"
    );
    let b = hooks.builds().await;
    assert_eq!(b.len(), 3);
    for build in &b {
        let id = build["id"].as_str().unwrap();
        assert_eq!(hooks.finished(id).await["status"], "succeeded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_with_a_broken_config_records_a_config_error_build_and_runs_nothing() {
    let (hooks, _, _, _) = Hooks::start().await;
    std::fs::write(
        hooks.work.join(".conveyor.yml"),
        CONFIG.replace("commands: cat version.txt", "needs: [nope]"),
    )
    .unwrap();
    let sha = commit_and_push(&hooks.work, "broken");
    let (status, body) = hooks
        .github("push", "broken-1", hooks.push("refs/heads/main", &sha))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["builds"][0]["status"], "config_error");
    let id = body["builds"][0]["id"].as_str().unwrap();
    let b: Value = hooks
        .http
        .get(format!("{}/api/v1/builds/{id}", hooks.engine.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (b["status"].as_str(), b["belt"].as_str(), b["sha"].as_str()),
        (Some("config_error"), Some("release"), Some(sha.as_str()))
    );
    assert_eq!(b["jobs"], json!([]), "nothing runs");
    let error = b["error"].as_str().unwrap();
    assert!(
        error.contains(".conveyor.yml:19:9: error: job `test` has neither `commands` nor `driver`"),
        "{error}"
    );
    assert!(
        error.contains(".conveyor.yml:21:17: error: unknown job `nope` in `needs` of job `test`"),
        "{error}"
    );
}

/// A bare repository holding `config` as its `.conveyor.yml`; returns its URL and commit.
fn product_repo(dir: &Path, name: &str, config: &str) -> (String, String) {
    let (url, work) = bare_repo(dir, name);
    // Every job first checks that its source is its own product's repository.
    let config = config.replace("file:///srv/gem.git", &url).replace(
        "        commands: |\n",
        &format!("        commands: |\n          grep -q '^product: {name}' .conveyor.yml\n"),
    );
    std::fs::write(work.join(".conveyor.yml"), config).unwrap();
    (url, commit_and_push(&work, name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_push_runs_the_seed_chain_gem_to_ami_to_terraform_with_every_hops_outputs() {
    let dir = common::temp_dir("chain");
    let fixture = |f: &str| {
        std::fs::read_to_string(format!("{}/tests/fixtures/{f}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    };
    let (gem, sha) = product_repo(&dir, "gem", &fixture("seed-gem.yml"));
    let (ami, ami_head) = product_repo(&dir, "ami", &fixture("seed-ami.yml"));
    let (tf, tf_head) = product_repo(&dir, "terraform", &fixture("seed-terraform.yml"));
    let opts = Options {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        runners: 2,
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
    let http = crate::common::http();
    for repo in [&gem, &ami, &tf] {
        let r = http
            .post(format!("{}/api/v1/products", engine.url))
            .bearer_auth("admin")
            .json(&json!({ "repo": repo, "webhook_secret": SECRET }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let hooks = Hooks {
        engine,
        http,
        url: gem.clone(),
        work: dir.join("gem"),
    };
    let (status, body) = hooks
        .github("push", "chain-1", hooks.push("refs/heads/main", &sha))
        .await;
    assert_eq!(
        (status, body["builds"][0]["product"].as_str()),
        (201, Some("gem")),
        "{body}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let builds = loop {
        let b = hooks.builds().await;
        if b.len() == 3 && b.iter().all(|x| x["status"] != "running") {
            break b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the chain did not finish: {b:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let by = |p: &str| {
        builds
            .iter()
            .find(|b| b["product"] == p)
            .unwrap_or_else(|| panic!("no {p} build"))
    };
    let (g, a, t) = (by("gem"), by("ami"), by("terraform"));
    for b in [g, a, t] {
        assert_eq!(b["status"], "succeeded", "{b}");
    }
    assert_eq!(g["sha"], sha);
    // Downstream products build the head of their own repository's branch.
    assert_eq!(
        (a["sha"].as_str(), a["git_ref"].as_str()),
        (Some(ami_head.as_str()), Some("refs/heads/main"))
    );
    assert_eq!(t["sha"].as_str(), Some(tf_head.as_str()));
    let show = |id: &Value| {
        let url = format!(
            "{}/api/v1/builds/{}",
            hooks.engine.url,
            id.as_str().unwrap()
        );
        let http = hooks.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // Each hop names the build it triggered, as the next names the one that triggered it.
    assert_eq!(show(&g["id"]).await["triggered"], json!([a["id"]]));
    assert_eq!(show(&a["id"]).await["triggered"], json!([t["id"]]));
    assert_eq!(show(&t["id"]).await["triggered"], json!([]));
    assert_eq!(a["upstream_build_id"], g["id"]);
    assert_eq!(t["upstream_build_id"], a["id"]);
    assert_eq!(g["jobs"][0]["outputs"]["PACKER_FILE"], "ror_ami.json");
    assert_eq!(a["jobs"][0]["outputs"]["AMI_ID"], "ami-241");
    assert_eq!(t["jobs"][0]["outputs"]["PLAN"], "ami=ami-241");
}
