//! A build started by hand (API, CLI, dashboard) of a repository's product, without a
//! commit, builds the head of the ref it names, or of the product's branch, as the
//! repository has it now — not an empty workspace, not the head seen at registration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use crate::common::git::{commit_and_push, git};
use crate::webhooks::Hooks;

impl Hooks {
    pub(crate) async fn start_build(&self, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!(
                "{}/api/v1/products/hooked/belts/ci/builds",
                self.engine.url
            ))
            .bearer_auth("admin")
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn log_of(&self, build: &Value) -> String {
        let job = &build["jobs"][0]["id"];
        let v: Value = self
            .http
            .get(format!(
                "{}/api/v1/job-runs/{}/logs",
                self.engine.url,
                job.as_str().unwrap()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let lines = v["lines"].as_array().cloned().unwrap_or_default();
        lines
            .iter()
            .map(|l| l["text"].as_str().unwrap_or(""))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_started_without_a_commit_builds_the_head_of_its_ref_now() {
    let (hooks, _url, _first, registered) = Hooks::start().await;
    // Pushed after registration: the head moved and no webhook told conveyor.
    std::fs::write(hooks.work.join("version.txt"), "3.0").unwrap();
    let third = commit_and_push(&hooks.work, "3.0");
    assert_ne!(third, registered);

    let (status, build) = hooks.start_build(json!({})).await;
    assert_eq!(status, 201, "{build}");
    assert_eq!(
        (build["sha"].as_str(), build["git_ref"].as_str()),
        (Some(third.as_str()), Some("refs/heads/main")),
        "{build}"
    );
    let done = hooks.finished(build["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(hooks.log_of(&done).await.contains("3.0"));

    // A branch by its short name, and a tag.
    std::fs::write(hooks.work.join("version.txt"), "topic").unwrap();
    let topic = commit_and_push(&hooks.work, "topic");
    git(
        &hooks.work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/topic"],
    );
    git(&hooks.work, &["reset", "--quiet", "--hard", &third]);
    git(
        &hooks.work,
        &["push", "--quiet", "--force", "origin", "HEAD:main"],
    );
    git(&hooks.work, &["tag", "v3", &third]);
    git(&hooks.work, &["push", "--quiet", "origin", "v3"]);
    for (wanted, full, sha) in [
        ("topic", "refs/heads/topic", &topic),
        ("v3", "refs/tags/v3", &third),
    ] {
        let (status, build) = hooks.start_build(json!({ "ref": wanted })).await;
        assert_eq!(status, 201, "{build}");
        assert_eq!(
            (build["sha"].as_str(), build["git_ref"].as_str()),
            (Some(sha.as_str()), Some(full)),
            "{wanted}: {build}"
        );
    }

    // A ref the repository does not have creates nothing and says so.
    let before = hooks.builds().await.len();
    let (status, body) = hooks.start_build(json!({ "ref": "no-such-branch" })).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "ref", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("has no branch, tag or commit `no-such-branch`"),
        "{body}"
    );
    assert_eq!(hooks.builds().await.len(), before);
}
