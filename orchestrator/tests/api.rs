//! The JSON API as a client sees it: a real server on a random port over a fresh SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use conveyor_core::protocol::{
    ClaimRequest, Completion, JobSpec, Lease, LogBatch, LogLine, Outcome, Stream,
};
use conveyor_runner::queue::{Delivery, LocalQueue, Queue};
use serde_json::{Value, json};

const ADMIN: &str = "admin-secret";
const RUNNER: &str = "runner-secret";

const PRODUCTS: &str = "/api/v1/products";
const CLAIM: &str = "/api/v1/runner/claim";
const HEARTBEAT: &str = "/api/v1/runner/heartbeat";

const BAD_JSON: &str = "invalid JSON body: ";
const FENCED: &str = "this job run is not yours: it was taken, or your lease is gone";

const JOB_FIELDS: &str = "id name status attempts exit_code outputs fleet";

const SHOP: &str = "product: shop
belts:
  - name: ci
    jobs:
      - name: build
        commands: VERSION=1.2
        outputs: [VERSION]
      - name: test
        needs: [build]
        commands: echo ${build.VERSION}
";

/// A job with neither `commands` nor `driver`: the `- name` sits at line 5, column 9.
const NO_SCRIPT: &str = "product: shop
belts:
  - name: ci
    jobs:
      - name: j
";

/// A value a shell would love to interpret: it must reach the dependent job untouched.
const HOSTILE: &str = "$(rm -rf ~) \"dq\" 'sq'\tend";

struct App {
    base: String,
    http: reqwest::Client,
    queue: Arc<LocalQueue>,
}

/// Starts the real router on a random port over a fresh SQLite store.
async fn spawn_app() -> App {
    let queue = Arc::new(LocalQueue::new());
    let base = common::serve_router(queue.clone(), ADMIN, RUNNER).await;
    App {
        base,
        http: reqwest::Client::new(),
        queue,
    }
}

impl App {
    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let bytes = res.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    async fn admin(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post(path, Some(ADMIN), body).await
    }

    async fn runner(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post(path, Some(RUNNER), body).await
    }

    async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body);
        self.send(req).await
    }

    async fn try_register(&self, yaml: &str) -> (u16, Value) {
        let body = json!({ "yaml": yaml });
        self.admin(PRODUCTS, &body).await
    }

    async fn register(&self, yaml: &str) -> Value {
        let (status, body) = self.try_register(yaml).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn start(&self, product: &str, belt: &str) -> (u16, Value) {
        let path = format!("/api/v1/products/{product}/belts/{belt}/builds");
        self.admin(&path, &json!({})).await
    }

    /// Registers `SHOP`, starts a build of `shop/ci` and returns its id.
    async fn shop_build(&self) -> String {
        self.register(SHOP).await;
        let (status, body) = self.start("shop", "ci").await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn product_names(&self) -> Vec<String> {
        pluck(&self.get(PRODUCTS).await.1["products"], "name")
    }

    async fn build_ids(&self, query: &str) -> Vec<String> {
        pluck(
            &self.get(&format!("/api/v1/builds{query}")).await.1["builds"],
            "id",
        )
    }

    async fn take(&self) -> Delivery {
        self.queue.pop(&["default".into()], "r1").await.unwrap()
    }

    /// Takes the next message off the default fleet and claims it as runner `r1`.
    async fn take_and_claim(&self) -> JobSpec {
        let claim = claim_of(&self.take().await);
        let (status, body) = self.runner(CLAIM, &claim).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    async fn complete(&self, lease: &Lease, outcome: Outcome, outputs: &[(&str, &str)]) -> u16 {
        let c = Completion {
            lease: lease.clone(),
            outcome,
            exit_code: (outcome == Outcome::Succeeded).then_some(0),
            outputs: outputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            error: None,
        };
        self.runner("/api/v1/runner/complete", &json!(c)).await.0
    }

    async fn depth(&self) -> u64 {
        self.queue.depth("default").await.unwrap()
    }
}

/// The `key` string of each element of an array.
fn pluck(list: &Value, key: &str) -> Vec<String> {
    let items = list
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"));
    items
        .iter()
        .map(|v| v[key].as_str().unwrap().to_string())
        .collect()
}

fn claim_of(d: &Delivery) -> Value {
    json!(ClaimRequest {
        job_run_id: d.msg.job_run_id.clone(),
        attempt: d.msg.attempt,
        runner: "r1".into(),
    })
}

fn line(stream: Stream, text: &str) -> LogLine {
    LogLine {
        stream,
        text: text.into(),
    }
}

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
    assert_eq!(beat, (200, json!({ "cancel": false })));

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
async fn runner_routes_accept_the_admin_token_but_not_a_missing_or_wrong_one() {
    let app = spawn_app().await;
    app.shop_build().await;
    let claim = claim_of(&app.take().await);
    for token in [None, Some("wrong")] {
        let (status, _) = app.post(CLAIM, token, &claim).await;
        assert_eq!(status, 401, "token {token:?}");
    }
    let (status, body) = app.admin(CLAIM, &claim).await;
    assert_eq!(status, 200, "{body}");
    let lease = &body["lease"];
    for path in [HEARTBEAT, "/api/v1/runner/complete"] {
        assert_eq!(app.post(path, None, lease).await.0, 401, "{path}");
    }
    let (status, reply) = app.admin(HEARTBEAT, lease).await;
    assert_eq!((status, reply), (200, json!({ "cancel": false })));
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
    assert_eq!(beat, (200, json!({ "cancel": true })));

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
