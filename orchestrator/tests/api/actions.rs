//! The health check and home page, and re-running, approving and cancelling one job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[tokio::test]
async fn the_health_check_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = app.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn the_home_page_lists_recent_builds() {
    let app = spawn_app().await;
    let build_id = app.shop_build().await;
    let res = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!("<a href=\"/builds/{build_id}\">ci #1</a>")),
        "{html}"
    );
    assert!(html.contains("▶</span> running"), "{html}");
}

const GATE: &str = "product: gate
belts:
  - name: ship
    jobs:
      - name: approve
        manual: true
        commands: 'true'
";

#[tokio::test]
async fn approving_a_waiting_manual_job_queues_it_for_a_runner() {
    let app = spawn_app().await;
    app.register(GATE).await;
    let (_, build) = app.start("gate", "ship").await;
    assert_eq!(pluck(&build["jobs"], "status"), ["waiting"]);
    let run = build["jobs"][0]["id"].as_str().unwrap().to_string();
    let approve = format!("/api/v1/job-runs/{run}/approve");

    assert_eq!(app.post(&approve, None, &json!({})).await.0, 401);
    assert_eq!(app.depth().await, 0);
    let (status, view) = app.admin(&approve, &json!({})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(pluck(&view["jobs"], "status"), ["queued"]);
    assert_eq!(app.depth().await, 1);

    let (status, body) = app.admin(&approve, &json!({})).await;
    assert_eq!(status, 409);
    assert_eq!(
        body["error"],
        format!(
            "job run `{run}` is not waiting for approval: only a manual job that is waiting can be approved"
        )
    );
    let (status, body) = app.admin("/api/v1/job-runs/nope/approve", &json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no job run `nope`"))
    );
}

#[tokio::test]
async fn cancelling_one_job_run_skips_the_jobs_that_wait_for_it() {
    let app = spawn_app().await;
    let build_id = app.shop_build().await;
    let (_, build) = app.get(&format!("/api/v1/builds/{build_id}")).await;
    let first = build["jobs"][0]["id"].as_str().unwrap().to_string();
    let cancel = format!("/api/v1/job-runs/{first}/cancel");

    assert_eq!(app.post(&cancel, None, &json!({})).await.0, 401);
    let (status, view) = app.admin(&cancel, &json!({})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(pluck(&view["jobs"], "status"), ["cancelled", "skipped"]);
    assert_eq!(view["status"], "failed");

    let (status, body) = app.admin("/api/v1/job-runs/nope/cancel", &json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no job run `nope`"))
    );
}

#[tokio::test]
async fn re_running_a_build_starts_the_next_numbered_build_naming_the_one_it_reruns() {
    let app = spawn_app().await;
    let build_id = app.shop_build().await;
    let rerun = format!("/api/v1/builds/{build_id}/rerun");

    assert_eq!(app.post(&rerun, None, &json!({})).await.0, 401);
    let (status, view) = app.admin(&rerun, &json!({})).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["number"], 2);
    assert_eq!(
        view["trigger"],
        json!({ "kind": "rerun", "build_id": build_id, "number": 1 })
    );
    assert_eq!(pluck(&view["jobs"], "status"), ["queued", "pending"]);

    let (status, body) = app.admin("/api/v1/builds/nope/rerun", &json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no build `nope`"))
    );
}

#[tokio::test]
async fn retrying_needs_the_admin_token_and_a_finished_build_with_a_failure() {
    let app = spawn_app().await;
    let build_id = app.shop_build().await;
    let retry = format!("/api/v1/builds/{build_id}/retry");
    assert_eq!(app.post(&retry, None, &json!({})).await.0, 401);
    let (status, body) = app.admin(&retry, &json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("is still running"),
        "{body}"
    );
    let (status, _) = app
        .admin(&format!("/api/v1/builds/{build_id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, view) = app.admin(&retry, &json!({})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "running");
    assert_eq!(view["id"], build_id.as_str());
    assert_eq!(pluck(&view["jobs"], "status"), ["queued", "pending"]);
    let (status, body) = app.admin("/api/v1/builds/nope/retry", &json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no build `nope`"))
    );
}
