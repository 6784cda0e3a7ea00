//! Registering products, and what the API refuses: bad tokens, bad configs, bad JSON, big bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[tokio::test]
async fn a_registered_product_is_listed_and_readable_by_name() {
    let app = spawn_app().await;
    let body = app.register(SHOP).await;
    assert_eq!(body["product"]["name"], "shop");
    assert_eq!(body["warnings"], json!([]));

    assert_eq!(app.get(PRODUCTS).await.0, 200);
    assert_eq!(app.product_names().await, ["shop"]);

    let (status, one) = app.get("/api/v1/products/shop").await;
    assert_eq!(status, 200);
    assert_eq!(one["name"], "shop");
    assert_eq!(one["yaml"], SHOP);
}

#[tokio::test]
async fn reading_an_unknown_product_answers_404_with_a_sentence() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/products/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no product `nope`");
}

#[tokio::test]
async fn mutating_calls_without_the_admin_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let register = json!({ "yaml": SHOP });
    for token in [None, Some("wrong"), Some(RUNNER)] {
        let (status, body) = app.post(PRODUCTS, token, &register).await;
        assert_eq!(status, 401, "token {token:?}");
        assert_eq!(
            body["error"],
            "missing or wrong token: send `Authorization: Bearer <token>`"
        );
    }
    assert!(app.product_names().await.is_empty());

    app.register(SHOP).await;
    let start = "/api/v1/products/shop/belts/ci/builds";
    for token in [None, Some("wrong"), Some(RUNNER)] {
        assert_eq!(app.post(start, token, &json!({})).await.0, 401);
    }
    assert!(app.build_ids("").await.is_empty());
    assert_eq!(app.depth().await, 0);
}

#[tokio::test]
async fn a_config_with_errors_is_refused_with_every_located_message_and_nothing_registered() {
    let app = spawn_app().await;
    let (status, body) = app.try_register(NO_SCRIPT).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"], "the config has errors");
    assert_eq!(
        body["errors"],
        json!([
            "request:5:9: error: job `j` has neither `commands` nor `driver`: give it a script to run"
        ])
    );
    assert!(app.product_names().await.is_empty());
}

#[tokio::test]
async fn malformed_json_is_a_400_with_an_error_sentence() {
    let app = spawn_app().await;
    for path in [PRODUCTS, "/api/v1/products/shop/belts/ci/builds"] {
        let (status, body) = app.post_raw(path, "{\"yaml\": ").await;
        assert_eq!(status, 400, "{path}");
        let error = body["error"].as_str().unwrap();
        assert!(error.starts_with(BAD_JSON), "{path}: {error}");
    }
}

#[tokio::test]
async fn a_body_over_five_mebibytes_is_refused_with_413() {
    let app = spawn_app().await;
    let res = app
        .http
        .post(format!("{}/api/v1/products", app.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(vec![b' '; 5 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    assert!(app.product_names().await.is_empty());
}

/// Sends a chunked body of `len` bytes without a `Content-Length` and returns the status
/// line. The terminating chunk is withheld, so the server never leaves bytes unread.
async fn post_chunked(app: &App, path: &str, len: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {ADMIN}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{len:x}\r\n"
    );
    let (mut rx, mut tx) = tcp.into_split();
    // The server may answer before it has read everything: write and read at once.
    let writer = tokio::spawn(async move {
        tx.write_all(head.as_bytes()).await?;
        tx.write_all(&vec![b' '; len]).await?;
        Ok::<_, std::io::Error>(tx)
    });
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    while !reply.windows(2).any(|w| w == b"\r\n") {
        let n = rx.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed without a reply");
        reply.extend_from_slice(&buf[..n]);
    }
    drop(writer);
    let text = String::from_utf8_lossy(&reply);
    text.lines().next().unwrap().to_string()
}

#[tokio::test]
async fn a_streamed_body_over_five_mebibytes_is_refused_with_413() {
    let app = spawn_app().await;
    let status = post_chunked(&app, PRODUCTS, 5 * 1024 * 1024 + 1).await;
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
}

#[tokio::test]
async fn a_config_of_three_mebibytes_is_within_the_five_mebibyte_limit() {
    let app = spawn_app().await;
    let yaml = format!("{SHOP}# {}\n", "x".repeat(3 * 1024 * 1024));
    let (status, body) = app.try_register(&yaml).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn registering_from_a_repository_that_cannot_be_cloned_names_the_problem() {
    let app = spawn_app().await;
    let (status, body) = app
        .admin(PRODUCTS, &json!({ "repo": "file:///nonexistent/shop.git" }))
        .await;
    assert_eq!(status, 400);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("cloning file:///nonexistent/shop.git failed: "),
        "{error}"
    );
}

#[tokio::test]
async fn sending_both_yaml_and_repo_or_neither_is_a_400() {
    let app = spawn_app().await;
    let both = json!({ "yaml": SHOP, "repo": "https://example.com/shop.git" });
    for body in [both, json!({})] {
        let (status, reply) = app.admin(PRODUCTS, &body).await;
        assert_eq!(status, 400);
        assert_eq!(reply["error"], "send exactly one of `yaml` or `repo`");
    }
    assert!(app.product_names().await.is_empty());
}
