//! The paged build list: `before` cursors walk the history newest first, `next` is null on
//! the last page, filters narrow it, and a bad cursor, trigger or limit is a 422 naming it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[tokio::test]
async fn the_build_list_pages_with_a_cursor_and_filters() {
    let app = spawn_app().await;
    app.register(SHOP).await;
    let mut started = Vec::new();
    for _ in 0..7 {
        let (status, b) = app.start("shop", "ci").await;
        assert_eq!(status, 201);
        started.push(b["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/builds?product=shop&limit=3".to_string();
    let mut pages = 0;
    loop {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for b in body["builds"].as_array().unwrap() {
            assert!(
                !b["jobs"].as_array().unwrap().is_empty(),
                "jobs come with the page"
            );
            seen.push(b["id"].as_str().unwrap().to_string());
        }
        match body["next"].as_str() {
            Some(c) => path = format!("/api/v1/builds?product=shop&limit=3&before={c}"),
            None => break,
        }
    }
    let unpaged = app.build_ids("?product=shop").await;
    assert_eq!(seen, unpaged, "every build once, newest first");
    started.sort();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, started);
    assert_eq!(pages, 3);
    let (_, by_trigger) = app
        .get("/api/v1/builds?trigger=manual&belt=ci&limit=2")
        .await;
    assert_eq!(by_trigger["builds"].as_array().unwrap().len(), 2);
    assert!(by_trigger["next"].is_string());
    let (_, none) = app.get("/api/v1/builds?trigger=schedule").await;
    assert_eq!(none["builds"], json!([]));
    assert_eq!(none["next"], Value::Null);
    for (query, field) in [
        ("before=nonsense", "before"),
        ("trigger=cron", "trigger"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/builds?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("`{field}`")),
            "{query}: {message}"
        );
    }
}
