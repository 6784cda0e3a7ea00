//! Builds carry who and what started them: the forge account that pushed, or the person who
//! started it by hand; the commit's author and message read from the repository; and the
//! pages show them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use crate::common::git::commit_and_push;
use crate::webhooks::Hooks;

impl Hooks {
    async fn page(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.engine.url))
            .bearer_auth("admin")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_build_names_its_pusher_and_its_commit() {
    let (hooks, _url, _first, _second) = Hooks::start().await;
    std::fs::write(hooks.work.join("version.txt"), "3.0").unwrap();
    let message = "Teach the parser <tags>\n\nThe body says why, over\ntwo lines.";
    let sha = commit_and_push(&hooks.work, message);
    crate::common::git::git(
        &hooks.work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/feature/tags"],
    );
    let mut body = hooks.push("refs/heads/feature/tags", &sha);
    body["before"] = json!("0000000000000000000000000000000000000000");
    body["sender"] = json!({ "login": "alice" });
    let (status, reply) = hooks.github("push", "ctx-1", body).await;
    assert_eq!(status, 201, "{reply}");
    let id = reply["builds"][0]["id"].as_str().unwrap().to_string();
    let b = hooks.finished(&id).await;
    assert_eq!(b["context"]["actor"], "alice", "{b}");
    assert_eq!(b["context"]["commit"]["author"], "t", "{b}");
    assert_eq!(b["context"]["commit"]["message"], message, "{b}");

    let page = hooks.page(&format!("/builds/{id}")).await;
    assert!(page.contains("github push feature/tags by alice"), "{page}");
    assert!(
        page.contains("Teach the parser &#60;tags&#62;") && !page.contains("<tags>"),
        "the subject, escaped: {page}"
    );
    assert!(page.contains("two lines."), "the full message: {page}");
    assert!(
        page.contains(&sha[..12]) && !page.contains(&format!(">{sha}<")),
        "the commit shown short"
    );
    let product = hooks.page("/products/hooked").await;
    assert!(
        product.contains("Teach the parser &#60;tags&#62;"),
        "{product}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_started_by_hand_names_who_started_it() {
    let (hooks, _url, first, second) = Hooks::start().await;
    let (status, b) = hooks.start_build(json!({ "by": "carol" })).await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["context"]["actor"], "carol", "{b}");
    assert_eq!(b["context"]["commit"]["message"], "2.0", "the head's: {b}");
    assert_eq!(b["sha"], second.as_str());

    // Nobody named: the admin token's holder. A commit named: described from the mirror.
    let (status, b) = hooks.start_build(json!({ "sha": first })).await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["context"]["actor"], "admin", "{b}");
    assert_eq!(b["context"]["commit"]["message"], "1.0", "{b}");
    let page = hooks
        .page(&format!("/builds/{}", b["id"].as_str().unwrap()))
        .await;
    assert!(page.contains("started by admin"), "{page}");

    let before = hooks.builds().await.len();
    for bad in ["", "bell\u{7}", &"x".repeat(101)] {
        let (status, body) = hooks.start_build(json!({ "by": bad })).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some("by")),
            "{bad:?}: {body}"
        );
    }
    assert_eq!(hooks.builds().await.len(), before, "nothing was created");
}
