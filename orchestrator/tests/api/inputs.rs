//! Input limits, over Postgres (which cannot store a NUL, where the 500s came from): a NUL,
//! a control character or an over-long value in any path, query or field answers 4xx — a
//! 422 naming the field where there is one — and log lines, outputs and errors keep their
//! NULs as U+FFFD.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// The real router over a fresh Postgres database, with runner `r1` registered.
async fn spawn_on_postgres() -> App {
    let queue = Arc::new(LocalQueue::new());
    let state = conveyor::http::AppState::new(
        common::postgres().await,
        queue.clone(),
        ADMIN.into(),
        RUNNER.into(),
    );
    let base = common::serve_app(conveyor::http::app(Arc::new(state))).await;
    let http = common::http();
    let r1 = common::register_runner(&http, &base, RUNNER, "r1", &["default"]).await;
    App {
        base,
        http,
        queue,
        r1,
    }
}

/// Values no name, id or ref may hold: a NUL, a control character, 4 KiB.
fn hostile() -> [(&'static str, String); 3] {
    [
        ("NUL", "a%00b".to_string()),
        ("control character", "a%1Bb".to_string()),
        ("over-long value", "a".repeat(4096)),
    ]
}

/// Every API path and query taking a name or id, with `v` in it (a `POST ` prefix for
/// actions), and the field it is in.
fn api_paths(v: &str, build: &str) -> Vec<(String, &'static str)> {
    vec![
        (format!("/api/v1/products/{v}"), "product"),
        (format!("/api/v1/builds/{v}"), "id"),
        (format!("/api/v1/builds?product={v}"), "product"),
        (format!("/api/v1/builds?status={v}"), "status"),
        (format!("/api/v1/job-runs/{v}/logs"), "id"),
        (format!("/logs?runid={v}"), "runid"),
        (format!("/logs?runid={build}&driver={v}"), "driver"),
        (format!("/logs?runid={build}&pipeline={v}"), "pipeline"),
        (format!("/logs/streams/{v}/{build}"), "driver"),
        (format!("/logs/streams/build/{v}"), "runid"),
        (
            format!("POST /api/v1/products/{v}/belts/ci/builds"),
            "product",
        ),
        (
            format!("POST /api/v1/products/shop/belts/{v}/builds"),
            "belt",
        ),
        (format!("POST /api/v1/builds/{v}/cancel"), "id"),
        (format!("POST /api/v1/builds/{v}/rerun"), "id"),
        (format!("POST /api/v1/job-runs/{v}/approve"), "id"),
        (format!("POST /api/v1/job-runs/{v}/cancel"), "id"),
    ]
}

#[tokio::test]
async fn hostile_values_in_paths_and_queries_are_refused_with_a_4xx_naming_the_field() {
    let app = spawn_on_postgres().await;
    let build = app.shop_build().await;
    let job = app.get(&format!("/api/v1/builds/{build}")).await.1["jobs"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (what, v) in hostile() {
        for (path, field) in api_paths(&v, &build) {
            let (status, body) = match path.strip_prefix("POST ") {
                Some(action) => app.admin(action, &json!({})).await,
                None => app.get(&path).await,
            };
            let answer = (status, body["field"].as_str());
            assert_eq!(answer, (422, Some(field)), "{what}: {path}: {body}");
        }
        for path in [
            format!("/products/{v}"),
            format!("/builds/{v}"),
            format!("/jobs/{v}"),
            format!("/jobs/{v}/log.txt"),
            format!("/jobs/{v}/events"),
            format!("/builds/{v}/events"),
        ] {
            let res = app.http.get(format!("{}{path}", app.base)).send().await;
            assert_eq!(res.unwrap().status(), 422, "{what}: the page {path}");
        }
    }
    let (status, body) = app.get("/api/v1/builds?limit=many").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some(
                "invalid query: Failed to deserialize query string: limit: invalid digit found in string"
            )
        )
    );
    // The real ones still answer.
    assert_eq!(
        app.get(&format!("/api/v1/job-runs/{job}/logs")).await.0,
        200
    );
    let (status, body) = app.get("/api/v1/builds?status=done").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            422,
            Some("`status` must be one of running, succeeded, failed, cancelled, config_error")
        )
    );
}

#[tokio::test]
async fn a_build_request_with_a_bad_ref_or_commit_is_a_422_naming_it() {
    let app = spawn_on_postgres().await;
    app.register(SHOP).await;
    let path = "/api/v1/products/shop/belts/ci/builds";
    let cases = [
        (
            json!({ "ref": "main\u{0}" }),
            "ref",
            "`ref` contains the control character U+0000; remove it".to_string(),
        ),
        (
            json!({ "ref": "r".repeat(4 << 20) }),
            "ref",
            "`ref` is 4194304 bytes long; at most 255 are allowed".to_string(),
        ),
        (
            json!({ "ref": "--output=/tmp/x" }),
            "ref",
            "`ref` is not a ref git accepts (`git check-ref-format`): `--output=/tmp/x`; e.g. \
             `main` or `refs/tags/v1.0`"
                .to_string(),
        ),
        (
            json!({ "sha": "abc\u{0}" }),
            "sha",
            "`sha` contains the control character U+0000; remove it".to_string(),
        ),
        (
            json!({ "sha": "abc" }),
            "sha",
            "`sha` must be a commit id: 40 or 64 hex digits".to_string(),
        ),
    ];
    for (body, field, error) in cases {
        let (status, reply) = app.admin(path, &body).await;
        assert_eq!(status, 422, "{reply}");
        assert_eq!(reply, json!({ "error": error, "field": field }));
    }
    assert!(app.build_ids("").await.is_empty());
    let ok = json!({ "ref": "refs/heads/main", "sha": "a".repeat(40) });
    assert_eq!(app.admin(path, &ok).await.0, 201);
}

#[tokio::test]
async fn a_product_or_runner_with_a_nul_or_control_character_is_a_422_naming_the_field() {
    let app = spawn_on_postgres().await;
    let cases = [
        (
            json!({ "yaml": format!("{SHOP}\u{0}") }),
            "yaml",
            "`yaml` contains a NUL byte, which YAML does not allow; remove it",
        ),
        (
            json!({ "repo": "https://x.test/a\u{0}" }),
            "repo",
            "`repo` contains the control character U+0000; remove it",
        ),
        (
            json!({ "repo": "https://x.test/a", "branch": "main\u{7f}" }),
            "branch",
            "`branch` contains the control character U+007F; remove it",
        ),
        (
            json!({ "repo": "https://x.test/a", "webhook_secret": "s\u{0}" }),
            "webhook_secret",
            "`webhook_secret` contains the control character U+0000; remove it",
        ),
    ];
    for (body, field, error) in cases {
        let (status, reply) = app.admin(PRODUCTS, &body).await;
        assert_eq!(status, 422, "{reply}");
        assert_eq!(reply, json!({ "error": error, "field": field }));
    }
    let (status, reply) = app
        .post(
            "/api/v1/runners/register",
            Some(RUNNER),
            &json!({ "name": "r\u{0}", "fleets": ["default"] }),
        )
        .await;
    assert_eq!(
        (status, reply["field"].as_str(), reply["error"].as_str()),
        (
            422,
            Some("name"),
            Some("`name` contains the control character U+0000; remove it")
        )
    );
    let (status, reply) = app
        .post(
            "/api/v1/runners/register",
            Some(RUNNER),
            &json!({ "name": "r2", "fleets": ["default\u{0}"] }),
        )
        .await;
    assert_eq!((status, reply["field"].as_str()), (422, Some("fleets")));
}

#[tokio::test]
async fn a_runner_call_with_a_hostile_lease_is_a_422_and_nul_bytes_in_logs_and_outputs_are_kept_as_replacement_characters()
 {
    let app = spawn_on_postgres().await;
    app.shop_build().await;
    let spec = app.take_and_claim().await;
    let mut bad = spec.lease.clone();
    bad.lease_token = "t\u{0}".into();
    let (status, reply) = app.runner(HEARTBEAT, &json!(bad)).await;
    assert_eq!(
        (status, reply["field"].as_str()),
        (422, Some("lease.lease_token"))
    );
    let claim = json!({ "job_run_id": "x\u{0}", "attempt": 1, "runner": "r1" });
    assert_eq!(app.runner(CLAIM, &claim).await.1["field"], "job_run_id");

    let batch = json!(LogBatch {
        lease: spec.lease.clone(),
        seq: 1,
        lines: vec![line(Stream::Stdout, "before\u{0}after")],
    });
    assert_eq!(app.runner("/api/v1/runner/logs", &batch).await.0, 204);
    let id = &spec.lease.job_run_id;
    let (status, logs) = app.get(&format!("/api/v1/job-runs/{id}/logs")).await;
    assert_eq!(status, 200);
    assert_eq!(logs["lines"][0]["text"], "before\u{FFFD}after");

    let done = app
        .complete(&spec.lease, Outcome::Succeeded, &[("VERSION", "1\u{0}2")])
        .await;
    assert_eq!(done, 204);
    let build = app
        .get(&format!("/api/v1/builds/{}", spec.build_id))
        .await
        .1;
    let job = build["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id.as_str());
    assert_eq!(job.unwrap()["outputs"]["VERSION"], "1\u{FFFD}2");
}

#[tokio::test]
async fn a_log_past_the_nodes_cap_ends_with_a_visible_marker_and_the_rest_is_dropped() {
    let queue = Arc::new(LocalQueue::new());
    let mut services = conveyor::services::Services::new(common::sqlite().await, queue.clone());
    services.max_log_bytes = 2048;
    let state =
        conveyor::http::AppState::with_services(Arc::new(services), ADMIN.into(), RUNNER.into());
    let base = common::serve_app(conveyor::http::app(Arc::new(state))).await;
    let http = common::http();
    let r1 = common::register_runner(&http, &base, RUNNER, "r1", &["default"]).await;
    let app = App {
        base,
        http,
        queue,
        r1,
    };
    app.shop_build().await;
    let spec = app.take_and_claim().await;
    let kib = "k".repeat(1024);
    for seq in 0..3 {
        let lines = vec![line(Stream::Stdout, &kib)];
        let batch = json!(LogBatch {
            lease: spec.lease.clone(),
            seq,
            lines
        });
        assert_eq!(app.runner("/api/v1/runner/logs", &batch).await.0, 204);
    }
    let id = &spec.lease.job_run_id;
    let logs = app.get(&format!("/api/v1/job-runs/{id}/logs")).await.1;
    let texts: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [&kib, &kib, "… log truncated at 2 KiB: the rest was dropped"]
    );
    assert_eq!(logs["lines"][2]["stream"], "system");
}
