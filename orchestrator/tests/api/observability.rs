//! `/health` and `/metrics` as an operator and Prometheus see them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_runner::queue::{Queue, RedisQueue};
use serde_json::{Value, json};

use crate::common;

/// Serves the router over a fresh SQLite store and the given queue.
async fn serve(queue: Arc<dyn Queue>) -> String {
    common::serve_router(queue, "admin", "runner").await
}

#[tokio::test]
async fn health_reports_the_database_and_redis_and_fails_when_redis_is_gone() {
    let port = common::free_port();
    let mut redis = common::start_redis(port);
    let url = format!("redis://127.0.0.1:{port}");
    let mut queue = None;
    for _ in 0..100 {
        if let Ok(q) = RedisQueue::connect(&url, "health-test").await {
            queue = Some(q);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let base = serve(Arc::new(queue.expect("redis came up"))).await;
    let res = crate::common::http()
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "ok", "database": "ok", "queue": "ok"})
    );
    redis.kill().unwrap();
    redis.wait().unwrap();
    let res = crate::common::http()
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "degraded", "database": "ok", "queue": "unreachable"})
    );
}

/// Registers the product `yaml` describes (named `product`) and starts its belt `b`.
async fn register_and_build(base: &str, yaml: &str, product: &str) {
    let http = common::http();
    let r = http
        .post(format!("{base}/api/v1/products"))
        .bearer_auth("admin")
        .json(&json!({"yaml": yaml}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{base}/api/v1/products/{product}/belts/b/builds"))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn metrics_count_job_runs_by_state_and_fleet_and_show_queue_depth() {
    let queue = Arc::new(conveyor_runner::queue::LocalQueue::new());
    let base = serve(queue.clone()).await;
    let http = crate::common::http();
    let yaml = "product: m\nbelts:\n  - name: b\n    jobs:\n      - name: a\n        commands: 'true'\n      - name: g\n        fleet: gpu\n        needs: [a]\n        commands: 'true'\n";
    register_and_build(&base, yaml, "m").await;
    let r = http
        .post(format!("{base}/api/v1/runners/register"))
        .bearer_auth("runner")
        .json(&json!({"name": "r1", "fleets": ["default"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let res = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; version=0.0.4");
    let text = res.text().await.unwrap();
    for line in [
        "conveyor_job_runs{state=\"queued\",fleet=\"default\"} 1",
        "conveyor_job_runs{state=\"pending\",fleet=\"gpu\"} 1",
        "conveyor_queue_depth{fleet=\"default\"} 1",
        "conveyor_queue_depth{fleet=\"gpu\"} 0",
        "conveyor_runners_online 1",
        "conveyor_runners_busy 0",
        "conveyor_dispatch_latency_seconds_count 0",
        "conveyor_job_duration_seconds_bucket{le=\"+Inf\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
}

#[tokio::test]
async fn an_unknown_path_is_a_page_with_a_way_back_for_browsers_and_json_for_the_api() {
    let base = serve(Arc::new(conveyor_runner::queue::LocalQueue::new())).await;
    let http = crate::common::http();
    let page = http
        .get(format!("{base}/no/such/page"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("There is no page at /no/such/page."),
        "{html}"
    );
    assert!(
        html.contains(r#"<a href="/">Back to the overview</a>"#),
        "{html}"
    );
    for (path, accept) in [("/api/v1/nope", "text/html"), ("/no/such/page", "*/*")] {
        let res = http
            .get(format!("{base}{path}"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], format!("no route for GET {path}"));
    }
}

#[tokio::test]
async fn while_metrics_are_scraped_the_upkeep_keeps_the_gauges_current() {
    let queue = Arc::new(conveyor_runner::queue::LocalQueue::new());
    let state = conveyor::http::AppState::new(
        common::sqlite().await,
        queue,
        "admin".into(),
        "runner".into(),
    );
    let services = state.services.clone();
    let base = common::serve_app(conveyor::http::app(Arc::new(state))).await;
    let http = common::http();
    let scrape = || async {
        let res = http.get(format!("{base}/metrics")).send().await.unwrap();
        res.text().await.unwrap()
    };
    let queued = "conveyor_job_runs{state=\"queued\",fleet=\"default\"} 1";
    // The first scrape reads the gauges: nothing in flight yet.
    assert!(!scrape().await.contains(queued));
    let yaml =
        "product: k\nbelts:\n  - name: b\n    jobs:\n      - name: a\n        commands: 'true'\n";
    register_and_build(&base, yaml, "k").await;
    // Within a second of the first read the scrape renders the kept gauges; the upkeep of a
    // scraped node reads them again, and the next scrape shows the queued job run.
    conveyor::services::maintenance::tick(&services)
        .await
        .unwrap();
    let text = scrape().await;
    assert!(text.lines().any(|l| l == queued), "{text}");
}
