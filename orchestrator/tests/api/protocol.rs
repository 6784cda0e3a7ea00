//! Builds, and the runner protocol: claim, heartbeat, logs, complete, cancel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[tokio::test]
async fn starting_a_build_returns_it_numbered_with_its_ready_job_queued() {
    let app = spawn_app().await;
    app.register(SHOP).await;
    let (status, build) = app.start("shop", "ci").await;
    assert_eq!(status, 201, "{build}");
    assert!(build["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(build["product"], "shop");
    assert_eq!(build["belt"], "ci");
    assert_eq!(build["number"], 1);
    assert_eq!(build["status"], "running");
    assert_eq!(build["trigger"], json!({ "kind": "manual" }));
    let jobs = build["jobs"].as_array().unwrap();
    let mut names = pluck(&build["jobs"], "name");
    names.sort_unstable();
    assert_eq!(names, ["build", "test"]);
    for j in jobs {
        for field in JOB_FIELDS.split(' ') {
            assert!(j.get(field).is_some(), "job lacks `{field}`: {j}");
        }
        assert_eq!(j["fleet"], "default");
        assert_eq!(j["exit_code"], Value::Null);
        assert_eq!(j["outputs"], json!({}));
    }
    assert_eq!(app.depth().await, 1, "only `build` has no dependency");
    let d = app.take().await;
    let build_job = jobs.iter().find(|j| j["name"] == "build").unwrap();
    assert_eq!(build_job["id"], d.msg.job_run_id.as_str());

    let (status, second) = app.start("shop", "ci").await;
    assert_eq!(status, 201);
    assert_eq!(second["number"], 2);
}

#[tokio::test]
async fn starting_a_build_of_a_missing_belt_or_product_is_a_404() {
    let app = spawn_app().await;
    app.register(SHOP).await;
    for (product, belt) in [("shop", "nope"), ("nope", "ci")] {
        let (status, body) = app.start(product, belt).await;
        assert_eq!(status, 404, "{product}/{belt}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert!(app.build_ids("").await.is_empty());
    assert_eq!(app.depth().await, 0);
}

#[tokio::test]
async fn a_claimed_job_run_is_fenced_and_its_heartbeats_and_logs_are_accepted() {
    let app = spawn_app().await;
    let build_id = app.shop_build().await;
    let claim = claim_of(&app.take().await);
    let (status, body) = app.runner(CLAIM, &claim).await;
    assert_eq!(status, 200, "{body}");
    let spec: JobSpec = serde_json::from_value(body).unwrap();
    assert_eq!(
        (spec.job.as_str(), spec.build_id.as_str()),
        ("build", build_id.as_str())
    );
    let (status, body) = app.runner(CLAIM, &claim).await;
    assert_eq!(status, 409, "a second claim is fenced out");
    assert_eq!(body["error"], FENCED);

    let lease = json!(spec.lease);
    let beat = app.runner(HEARTBEAT, &lease).await;
    assert_eq!(
        beat,
        (200, json!({ "cancel": false, "lease_ms_left": 30_000 }))
    );
    // Asked to renew only when due, a lease just renewed is read: what is left of it.
    let mut when_due = lease.clone();
    when_due["when_due"] = json!(true);
    let (status, beat) = app.runner(HEARTBEAT, &when_due).await;
    let left = beat["lease_ms_left"].as_u64().unwrap();
    assert!(status == 200 && (20_001..=30_000).contains(&left), "{beat}");

    let lines = vec![
        line(Stream::Stdout, "compiling"),
        line(Stream::Stderr, "warning: x"),
    ];
    let batch = json!(LogBatch {
        lease: spec.lease.clone(),
        seq: 1,
        lines
    });
    assert_eq!(app.runner("/api/v1/runner/logs", &batch).await.0, 204);
    let path = format!("/api/v1/job-runs/{}/logs", spec.lease.job_run_id);
    let (status, logs) = app.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(pluck(&logs["lines"], "stream"), ["stdout", "stderr"]);
    assert_eq!(pluck(&logs["lines"], "text"), ["compiling", "warning: x"]);
}

#[tokio::test]
async fn completing_jobs_hands_outputs_downstream_byte_exact_and_finishes_the_build() {
    let app = spawn_app().await;
    let build_id = app.shop_build().await;
    let build = app.take_and_claim().await;
    assert_eq!(
        app.complete(&build.lease, Outcome::Succeeded, &[("VERSION", HOSTILE)])
            .await,
        204
    );
    assert_eq!(
        app.complete(&build.lease, Outcome::Succeeded, &[("VERSION", "2")])
            .await,
        409
    );

    assert_eq!(app.depth().await, 1, "the dependent job is queued");
    let test = app.take_and_claim().await;
    assert_eq!(test.job, "test");
    let env: BTreeMap<_, _> = test.env.iter().cloned().collect();
    assert_eq!(
        env["CONVEYOR_REF_1"], HOSTILE,
        "the value travels byte-exact"
    );
    assert_eq!(
        app.complete(&test.lease, Outcome::Succeeded, &[]).await,
        204
    );

    let (status, view) = app.get(&format!("/api/v1/builds/{build_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(view["status"], "succeeded");
    let jobs = view["jobs"].as_array().unwrap();
    let job = jobs.iter().find(|j| j["name"] == "build").unwrap();
    assert_eq!(
        (&job["status"], &job["exit_code"]),
        (&json!("succeeded"), &json!(0))
    );
    assert_eq!(job["outputs"], json!({ "VERSION": HOSTILE }));

    assert_eq!(app.build_ids("?product=shop").await, [build_id]);
    assert!(app.build_ids("?product=other").await.is_empty());
}

#[tokio::test]
async fn reading_an_unknown_build_answers_404_with_a_sentence() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/builds/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no build `nope`");
}

#[tokio::test]
async fn runner_routes_take_only_a_runners_own_token_and_its_own_leases() {
    let app = spawn_app().await;
    app.shop_build().await;
    let claim = claim_of(&app.take().await);
    // Neither the admin token nor a registration token is a runner: a lease needs an owner.
    for token in [None, Some("wrong"), Some(ADMIN), Some(RUNNER)] {
        let (status, _) = app.post(CLAIM, token, &claim).await;
        assert_eq!(status, 401, "token {token:?}");
    }
    let (status, body) = app.runner(CLAIM, &claim).await;
    assert_eq!(status, 200, "{body}");
    let lease = &body["lease"];
    for path in [HEARTBEAT, "/api/v1/runner/complete", RELEASE] {
        assert_eq!(app.post(path, None, lease).await.0, 401, "{path}");
    }
    // Another registered runner holds a token, but not this lease.
    let r2 = common::register_runner(&app.http, &app.base, RUNNER, "r2", &["default"]).await;
    for path in [HEARTBEAT, RELEASE] {
        let (status, body) = app.post(path, Some(&r2), lease).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some(FENCED)),
            "{path}"
        );
    }
    let (status, reply) = app.runner(HEARTBEAT, lease).await;
    assert_eq!((status, reply["cancel"].as_bool()), (200, Some(false)));
}

#[tokio::test]
async fn a_runner_claims_only_from_the_fleets_it_registered_for() {
    let app = spawn_app().await;
    app.shop_build().await;
    let claim = claim_of(&app.take().await);
    let gpu = common::register_runner(&app.http, &app.base, RUNNER, "gpu-1", &["gpu"]).await;
    let (status, body) = app.post(CLAIM, Some(&gpu), &claim).await;
    assert_eq!((status, body["error"].as_str()), (409, Some(FENCED)));
    let (_, view) = app.get("/api/v1/builds").await;
    assert_eq!(
        pluck(&view["builds"][0]["jobs"], "status"),
        ["queued", "pending"]
    );
    assert_eq!(app.runner(CLAIM, &claim).await.0, 200);
}

#[tokio::test]
async fn a_handed_back_job_run_is_queued_again_at_once() {
    let app = spawn_app().await;
    let build_id = app.shop_build().await;
    let spec = app.take_and_claim().await;
    assert_eq!(app.runner(RELEASE, &json!(spec.lease)).await.0, 204);
    let (_, view) = app.get(&format!("/api/v1/builds/{build_id}")).await;
    assert_eq!(view["jobs"][0]["status"], "queued");
    assert_eq!(view["jobs"][0]["attempts"], 2);
    let again = app.take().await;
    assert_eq!(
        (again.msg.job_run_id.as_str(), again.msg.attempt),
        (spec.lease.job_run_id.as_str(), 2)
    );
    let (status, body) = app.runner(RELEASE, &json!(spec.lease)).await;
    assert_eq!((status, body["error"].as_str()), (409, Some(FENCED)));
}

#[tokio::test]
async fn cancelling_a_build_tells_its_running_job_at_the_next_heartbeat() {
    let app = spawn_app().await;
    let build_id = app.shop_build().await;
    let spec = app.take_and_claim().await;
    let cancel = format!("/api/v1/builds/{build_id}/cancel");

    assert_eq!(app.post(&cancel, None, &json!({})).await.0, 401);
    assert_eq!(app.runner(&cancel, &json!({})).await.0, 401);
    let (status, build) = app.admin(&cancel, &json!({})).await;
    assert_eq!(status, 200, "{build}");
    assert_eq!(build["status"], "cancelled");

    assert_eq!(pluck(&build["jobs"], "status"), ["running", "cancelled"]);
    let beat = app.runner(HEARTBEAT, &json!(spec.lease)).await;
    assert_eq!((beat.0, beat.1["cancel"].as_bool()), (200, Some(true)));

    assert_eq!(
        app.complete(&spec.lease, Outcome::Cancelled, &[]).await,
        204
    );
    let (_, view) = app.get(&format!("/api/v1/builds/{build_id}")).await;
    assert_eq!(view["status"], "cancelled");
    assert_eq!(pluck(&view["jobs"], "status"), ["cancelled", "cancelled"]);
    assert_eq!(app.depth().await, 0);

    let (status, body) = app.admin("/api/v1/builds/nope/cancel", &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no build `nope`");
}

/// A completion that asks to take the next job gets the job it readies, claimed, in a 200
/// (not pushed onto the queue); `null` once nothing is readied; without the flag, a 204.
#[tokio::test]
async fn a_completion_taking_the_next_job_answers_with_it_claimed() {
    let app = spawn_app().await;
    let build_id = app.shop_build().await;
    let spec = app.take_and_claim().await;
    let mut c = json!(Completion {
        lease: spec.lease.clone(),
        outcome: Outcome::Succeeded,
        exit_code: Some(0),
        outputs: [("VERSION".to_string(), "1.2".to_string())].into(),
        error: None,
        log: Vec::new(),
        take_next: true,
    });
    let (status, body) = app.runner("/api/v1/runner/complete", &c).await;
    assert_eq!(status, 200, "{body}");
    let next: JobSpec = serde_json::from_value(body["next"].clone()).unwrap();
    assert_eq!(
        (next.job.as_str(), next.build_id.as_str()),
        ("test", build_id.as_str())
    );
    assert!(next.env.contains(&("CONVEYOR_REF_1".into(), "1.2".into())));
    assert_eq!(app.depth().await, 0, "the next job is not pushed");
    let beat = app.runner(HEARTBEAT, &json!(next.lease)).await;
    assert_eq!(beat.0, 200, "the lease is r1's: {beat:?}");
    // A replay of the first completion (its answer lost) is answered with the same job.
    let (status, replayed) = app.runner("/api/v1/runner/complete", &c).await;
    let again: JobSpec = serde_json::from_value(replayed["next"].clone()).unwrap();
    assert_eq!(
        (status, &again.lease.job_run_id),
        (200, &next.lease.job_run_id)
    );
    c["lease"] = json!(again.lease);
    let (status, body) = app.runner("/api/v1/runner/complete", &c).await;
    assert_eq!((status, body), (200, json!({ "next": null })));
    let done = app.get(&format!("/api/v1/builds/{build_id}")).await.1;
    assert_eq!(done["status"], "succeeded", "{done}");
    // Without the flag, the answer is a 204, as for older runners.
    let second = app.shop_build().await;
    let spec = app.take_and_claim().await;
    assert_eq!(spec.build_id, second);
    let plain = app.complete(&spec.lease, Outcome::Succeeded, &[]).await;
    assert_eq!((plain, app.depth().await), (204, 1));
}
