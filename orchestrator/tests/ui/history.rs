//! A long history in a real browser: past 150 builds the product page still shows each
//! belt's latest build per state, and "Older builds" pages through every build without JS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use crate::in_browser::ONE_BROWSER;
use crate::ui_support::{Browser, Conveyor, conveyor};

const TWO_BELTS: &str = "product: busy
belts:
  - name: check
    jobs:
      - name: ok
        commands: 'true'
  - name: spam
    jobs:
      - name: wait
        commands: 'true'
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_product_page_pages_past_150_builds_and_keeps_each_belts_latest() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[TWO_BELTS]).await;
    let check = c.build("busy", "check").await;
    assert_eq!(c.until_finished(&check).await, "succeeded");
    seed_cancelled(&c, 160).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/products/busy", c.url)).await;
    let check_row = b.text("tr[data-belt=check]").await;
    assert!(check_row.contains("#1"), "{check_row}");
    assert!(!check_row.contains("none yet"), "{check_row}");
    let (seen, pages) = walk_older(&b).await;
    assert_eq!(seen, 161, "every build once");
    assert_eq!(pages, 4);
    let last = b.text("main").await;
    assert!(
        last.contains("check #1"),
        "the oldest page has the first build: {last}"
    );
}

/// `count` newer builds of belt `spam`, cancelled before any runner takes them.
async fn seed_cancelled(c: &Conveyor, count: i64) {
    let store = &c.state.store;
    for n in 0..count {
        let new = conveyor::store::NewBuild {
            resource: None,
            product: "busy".into(),
            belt: "spam".into(),
            trigger: conveyor::store::BuildTrigger::Manual,
            git_ref: None,
            sha: None,
            model: None,
            context: None,
        };
        let now = conveyor::clock::now_ms() + n;
        let (id, _) = store.create_build(&new, now).await.unwrap();
        store.cancel_build(&id, now).await.unwrap();
    }
}

/// Follows "Older builds" to the end: the builds seen and the pages.
async fn walk_older(b: &Browser) -> (u64, u32) {
    let mut seen = 0;
    let mut pages = 0;
    loop {
        pages += 1;
        let rows = b
            .exec(
                "return document.querySelectorAll('tr[data-build]').length",
                json!([]),
            )
            .await;
        seen += rows.as_u64().unwrap();
        let older = b
            .exec(
                "return document.getElementById('older') !== null",
                json!([]),
            )
            .await;
        if older != json!(true) {
            break;
        }
        let first = b
            .exec(
                "return document.querySelector('tr[data-build]').dataset.build",
                json!([]),
            )
            .await;
        b.click("#older").await;
        let moved = format!(
            "const r = document.querySelector('tr[data-build]'); \
             return r !== null && r.dataset.build !== {first}"
        );
        b.wait_for("the next page", &moved).await;
        assert!(pages < 10, "the pages end");
    }
    (seen, pages)
}
