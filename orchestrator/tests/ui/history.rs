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

    // The filter form: succeeded builds only, then cancelled ones of belt spam, paged with
    // the filter kept.
    b.goto(&format!("{}/products/busy", c.url)).await;
    b.exec(
        "document.querySelector('#history-filter select[name=status]').value = 'succeeded'",
        json!([]),
    )
    .await;
    b.click("#filter-history").await;
    b.wait_for(
        "the filtered history",
        "return location.search.includes('status=succeeded');",
    )
    .await;
    let rows = b
        .exec(
            "return [...document.querySelectorAll('tr[data-build]')].map(r => r.innerText)",
            json!([]),
        )
        .await;
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert!(rows[0].as_str().unwrap().contains("check #1"), "{rows}");
    b.goto(&format!(
        "{}/products/busy?belt=spam&status=cancelled",
        c.url
    ))
    .await;
    let (seen, pages) = walk_older(&b).await;
    assert_eq!((seen, pages), (160, 4), "the filter holds across pages");
    assert!(b.url().await.contains("belt=spam"));
    b.goto(&format!("{}/products/busy?status=failed", c.url))
        .await;
    assert!(b.text("#no-match").await.contains("No build matches"));
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

const MAKER: &str = "product: maker
belts:
  - name: ci
    jobs:
      - name: make
        commands: echo made > out.txt
        artifacts: [out.txt]
";

/// Retention end to end: real builds with artifacts, swept as the upkeep sweeps; the old
/// builds' objects leave the object store, the kept build's stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_builds_and_their_artifacts_objects() {
    let c = conveyor(&[MAKER]).await;
    let mut builds = Vec::new();
    for _ in 0..3 {
        let id = c.build("maker", "ci").await;
        assert_eq!(c.until_finished(&id).await, "succeeded");
        builds.push(id);
    }
    let s = &c.state;
    let object = |b: String| async move {
        let a = s.store.build_artifacts(&b).await.unwrap();
        assert_eq!(a.len(), 1, "one artifact of {b}");
        a[0].object.clone()
    };
    let oldest = object(builds[0].clone()).await;
    let newest = object(builds[2].clone()).await;
    assert!(s.blobs.get(&oldest).await.is_ok());
    let keep_one = conveyor::store::Retention {
        keep_last: Some(1),
        ..Default::default()
    };
    let now = conveyor::clock::now_ms();
    assert_eq!(
        conveyor::services::maintenance::sweep(s, now)
            .await
            .unwrap(),
        0,
        "off by default"
    );
    let swept = conveyor::services::maintenance::sweep_with(s, &keep_one, now).await;
    assert_eq!(swept.unwrap(), 2);
    let left = s.store.builds(&Default::default()).await.unwrap();
    assert_eq!(
        left.iter().map(|b| b.id.clone()).collect::<Vec<_>>(),
        [builds[2].clone()]
    );
    assert!(
        s.blobs.get(&oldest).await.is_err(),
        "the old object is gone"
    );
    assert!(
        s.blobs.get(&newest).await.is_ok(),
        "the kept build's object stays"
    );
}
