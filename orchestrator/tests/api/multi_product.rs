//! Several products in one repository: `.conveyor.yml` and `.conveyor/*.yml` are each a
//! product, registered together, built by one push each from its own file, and refused
//! together when one of them is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{Value, json};

use crate::common;
use crate::common::git::{bare_repo, commit_and_push};
use crate::webhooks::{Hooks, SECRET};

const APP: &str = "product: app
triggers:
  - scm-event: {type: push, belts: [ci]}
belts:
  - name: ci
    jobs:
      - name: test
        inputs: source
        commands: cat version.txt
";

const DOCS: &str = "product: docs
triggers:
  - scm-event: {type: push, belts: [site]}
belts:
  - name: site
    jobs:
      - name: render
        inputs: source
        commands: ls .conveyor
";

/// A repository holding `files` (path, text) and a version file; its URL and commit.
fn repo_with(dir: &Path, files: &[(&str, &str)]) -> (String, String) {
    let (url, work) = bare_repo(dir, "repo");
    std::fs::create_dir_all(work.join(".conveyor")).unwrap();
    for (path, text) in files {
        std::fs::write(work.join(path), text).unwrap();
    }
    std::fs::write(work.join("version.txt"), "1.0").unwrap();
    let sha = commit_and_push(&work, "configs");
    (url, sha)
}

async fn register(hooks: &Hooks, url: &str) -> (u16, Value) {
    let r = hooks
        .http
        .post(format!("{}/api/v1/products", hooks.engine.url))
        .bearer_auth("admin")
        .json(&json!({ "repo": url, "webhook_secret": SECRET }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn product_names(hooks: &Hooks) -> Vec<String> {
    let v: Value = hooks
        .http
        .get(format!("{}/api/v1/products", hooks.engine.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = v["products"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_config_file_of_a_repository_is_a_product_built_by_one_push() {
    let dir = common::temp_dir("multi");
    let files = [
        (".conveyor.yml", APP),
        (".conveyor/docs.yml", DOCS),
        (".conveyor/notes.txt", "not a config"),
    ];
    let (url, first) = repo_with(&dir, &files);
    let hooks = Hooks::engine(&dir, &url).await;
    let (status, body) = register(&hooks, &url).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["product"]["name"], "app");
    assert_eq!(body["others"][0]["name"], "docs", "{body}");
    assert_eq!(body["others"][0]["config_path"], ".conveyor/docs.yml");
    assert_eq!(body["others"].as_array().unwrap().len(), 1);
    assert_eq!(product_names(&hooks).await, ["app", "docs"]);

    // One push builds each product from its own file, at the pushed commit.
    std::fs::write(hooks.work.join("version.txt"), "2.0").unwrap();
    let second = commit_and_push(&hooks.work, "2.0");
    assert_ne!(first, second);
    let (status, reply) = hooks
        .github("push", "multi-1", hooks.push("refs/heads/main", &second))
        .await;
    assert_eq!(status, 201, "{reply}");
    let mut built: Vec<(String, String)> = Vec::new();
    for b in hooks.builds().await {
        let done = hooks.finished(b["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["sha"], second.as_str());
        built.push((
            done["product"].as_str().unwrap().into(),
            done["belt"].as_str().unwrap().into(),
        ));
    }
    built.sort();
    assert_eq!(
        built,
        [("app".into(), "ci".into()), ("docs".into(), "site".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_or_clashing_config_registers_none_of_the_repositorys_products() {
    let dir = common::temp_dir("multi-bad");
    let clash = DOCS.replace("product: docs", "product: app");
    let (url, _) = repo_with(&dir, &[(".conveyor.yml", APP), (".conveyor/b.yml", &clash)]);
    let hooks = Hooks::engine(&dir, &url).await;
    let (status, body) = register(&hooks, &url).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string()
            .contains("product `app` is also defined in .conveyor.yml"),
        "{body}"
    );
    assert!(product_names(&hooks).await.is_empty());

    let dir = common::temp_dir("multi-broken");
    let broken = DOCS.replace("belts: [site]", "belts: [nope]");
    let (url, _) = repo_with(
        &dir,
        &[(".conveyor.yml", APP), (".conveyor/docs.yml", &broken)],
    );
    let hooks = Hooks::engine(&dir, &url).await;
    let (status, body) = register(&hooks, &url).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains(".conveyor/docs.yml:3:"), "{body}");
    assert!(product_names(&hooks).await.is_empty());
}
