//! Drivers over HTTP (docs/drivers.md): outputs into a downstream bash job, failures with
//! their message, fencing of a late result, cancelling, Redis, registration scopes, and a
//! driver job with no driver connected waiting and saying so. Real driver processes:
//! `driver_processes.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor::services::{Services, maintenance};
use conveyor_core::protocol::JobSpec;
use conveyor_runner::queue::{LocalQueue, Queue};
use serde_json::{Value, json};

use super::{ADMIN, App, RUNNER};
use crate::common;

const REGISTER: &str = "/api/v1/drivers/register";
const CLAIM: &str = "/api/v1/drivers/claim";
const COMPLETE: &str = "/api/v1/drivers/complete";

/// A belt whose driver job's output feeds a bash job.
const CHAIN: &str = "product: chain
belts:
  - name: main
    jobs:
      - name: provision
        driver: cloud
        env: {SIZE: small}
        outputs: [HOST]
      - name: use
        needs: [provision]
        commands: echo ${provision.HOST}
";

/// `n` driver jobs of driver `worker`, none depending on another.
pub(crate) fn parallel(n: usize) -> String {
    let mut yaml = "product: many\nbelts:\n  - name: main\n    jobs:\n".to_string();
    for i in 0..n {
        yaml.push_str(&format!("      - name: j{i}\n        driver: worker\n"));
    }
    yaml
}

/// The API over a store and queue whose services lease for `lease_ms` and whose upkeep
/// (reaper, re-sender) runs every 100 ms.
pub(crate) async fn spawn_with_lease(lease_ms: i64) -> App {
    spawn_with(lease_ms, 3).await
}

/// As [`spawn_with_lease`], failing a job only after its driver was lost `max_lost` times.
pub(crate) async fn spawn_with(lease_ms: i64, max_lost: u32) -> App {
    let queue = Arc::new(LocalQueue::new());
    let mut services = Services::new(common::sqlite().await, queue.clone());
    services.lease_ms = lease_ms;
    services.max_lost = max_lost;
    let services = Arc::new(services);
    let state =
        conveyor::http::AppState::with_services(services.clone(), ADMIN.into(), RUNNER.into());
    let base = common::serve_app(conveyor::http::app(Arc::new(state))).await;
    tokio::spawn(async move {
        loop {
            let _ = maintenance::tick(&services).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let http = common::http();
    let r1 = common::register_runner(&http, &base, RUNNER, "r1", &["default"]).await;
    App {
        base,
        http,
        queue,
        r1,
    }
}

impl App {
    /// Registers instance `instance` of `driver` with the admin token; its own token.
    pub(crate) async fn driver(&self, driver: &str, instance: &str) -> String {
        let body = json!({ "driver": driver, "instance": instance, "resources": ["vm"] });
        let (status, reply) = self.admin(REGISTER, &body).await;
        assert_eq!(status, 201, "{reply}");
        reply["token"].as_str().unwrap().to_string()
    }

    /// A claim with `token`, waiting up to `wait` seconds: the status and the work item.
    pub(crate) async fn claim_as(&self, token: &str, wait: u64) -> (u16, Value) {
        self.post(CLAIM, Some(token), &json!({ "wait_secs": wait }))
            .await
    }

    /// The body of a GET, as text.
    pub(crate) async fn text(&self, path: &str) -> String {
        let res = self.http.get(format!("{}{path}", self.base)).send().await;
        res.unwrap().text().await.unwrap()
    }

    pub(crate) async fn build_of(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/builds/{id}")).await.1
    }

    /// The build once it has finished (panics after `within`).
    pub(crate) async fn finished(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let b = self.build_of(id).await;
            if !b["finished_at"].is_null() {
                return b;
            }
            assert!(Instant::now() < deadline, "build did not finish: {b}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn started(&self, yaml: &str, product: &str) -> String {
        self.register(yaml).await;
        let (status, body) = self.start(product, "main").await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }
}

pub(crate) fn job<'a>(build: &'a Value, name: &str) -> &'a Value {
    build["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {build}"))
}

#[tokio::test]
async fn a_driver_jobs_result_data_reaches_the_downstream_bash_job() {
    let app = super::spawn_app().await;
    let token = app.driver("cloud", "host-1").await;
    let id = app.started(CHAIN, "chain").await;
    let (status, work) = app.claim_as(&token, 5).await;
    assert_eq!(status, 200, "{work}");
    assert_eq!(work["driver"], "cloud");
    assert_eq!(work["event"], "create");
    assert_eq!(work["run_id"], id.as_str());
    assert_eq!(work["payload"]["env"]["SIZE"], "small");
    assert_eq!(work["payload"]["job"], "provision");
    assert_eq!(work["payload"]["outputs"], json!(["HOST"]));
    assert_eq!(work["payload"]["steps"], json!({}));
    let logs = json!({ "lease": work["lease"], "seq": 0,
                       "lines": [{ "message": "creating", "labels": { "zone": "a" } }] });
    let (status, _) = app.post("/api/v1/drivers/logs", Some(&token), &logs).await;
    assert_eq!(status, 204);
    let done = json!({ "lease": work["lease"], "success": true, "message": "made it",
                       "data": { "HOST": super::HOSTILE } });
    assert_eq!(app.post(COMPLETE, Some(&token), &done).await.0, 204);

    let spec: JobSpec = app.take_and_claim().await;
    assert_eq!(spec.job, "use");
    assert!(
        spec.env
            .contains(&("CONVEYOR_REF_1".into(), super::HOSTILE.into()))
    );
    let build = app.build_of(&id).await;
    assert_eq!(job(&build, "provision")["status"], "succeeded");
    assert_eq!(job(&build, "provision")["runner"], "cloud/host-1");
    let (_, lines) = app.get(&format!("/logs?runid={id}&driver=cloud")).await;
    let texts: Vec<(&str, &Value)> = lines["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["message"].as_str().unwrap(), &l["labels"]))
        .collect();
    assert_eq!(
        texts,
        [("creating", &json!({"zone": "a"})), ("made it", &json!({}))]
    );
    // The live stream names the driver too, and ends once the job has.
    let stream = app.text(&format!("/logs/streams/cloud/{id}")).await;
    assert!(stream.contains("data: creating\n"), "{stream}");
    assert!(stream.contains("data: made it\n"), "{stream}");
    assert!(stream.contains("event: end"), "{stream}");
}

#[tokio::test]
async fn a_failed_result_fails_the_job_with_its_message_and_non_text_data_is_refused() {
    let app = super::spawn_app().await;
    let token = app.driver("cloud", "host-1").await;
    let id = app.started(CHAIN, "chain").await;
    let (_, work) = app.claim_as(&token, 5).await;
    let numeric = json!({ "lease": work["lease"], "success": true, "data": { "HOST": 7 } });
    let (status, body) = app.post(COMPLETE, Some(&token), &numeric).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "data.HOST");
    let failed = json!({ "lease": work["lease"], "success": false,
                         "message": "quota exceeded in zone a" });
    assert_eq!(app.post(COMPLETE, Some(&token), &failed).await.0, 204);
    let build = app.finished(&id, Duration::from_secs(5)).await;
    assert_eq!(build["status"], "failed");
    assert_eq!(
        job(&build, "provision")["error"],
        "quota exceeded in zone a"
    );
    assert_eq!(job(&build, "use")["status"], "skipped");
}

#[tokio::test]
async fn a_late_result_of_an_expired_lease_is_refused_and_the_redelivery_wins() {
    let app = spawn_with_lease(1000).await;
    let (a, b) = (
        app.driver("cloud", "a").await,
        app.driver("cloud", "b").await,
    );
    let id = app.started(CHAIN, "chain").await;
    let (_, first) = app.claim_as(&a, 5).await;
    // `a` goes quiet; its lease expires and the job run is queued again for `b`.
    let (status, second) = app.claim_as(&b, 10).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["lease"]["attempt"], 2);
    assert_eq!(second["payload"]["attempt"], 2);
    let late = json!({ "lease": first["lease"], "success": true, "data": { "HOST": "from-a" } });
    let (status, body) = app.post(COMPLETE, Some(&a), &late).await;
    assert_eq!(status, 409, "{body}");
    let beat = app
        .post("/api/v1/drivers/heartbeat", Some(&a), &first["lease"])
        .await;
    assert_eq!(beat.0, 409);
    let won = json!({ "lease": second["lease"], "success": true, "data": { "HOST": "from-b" } });
    assert_eq!(app.post(COMPLETE, Some(&b), &won).await.0, 204);
    let build = app.build_of(&id).await;
    let provision = job(&build, "provision");
    assert_eq!(provision["outputs"], json!({ "HOST": "from-b" }));
    assert_eq!(provision["attempts"], 2);
}

#[tokio::test]
async fn a_driver_job_with_no_driver_connected_waits_queued_and_says_so() {
    let app = super::spawn_app().await;
    let id = app.started(CHAIN, "chain").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let build = app.build_of(&id).await;
    let provision = job(&build, "provision");
    assert_eq!(provision["status"], "queued");
    assert_eq!(provision["driver"], "cloud");
    assert_eq!(provision["waiting"], "no driver `cloud` is connected");
    let listed = app.get("/api/v1/builds").await.1;
    assert_eq!(
        job(&listed["builds"][0], "provision")["waiting"],
        "no driver `cloud` is connected"
    );
    let job_page = format!("/jobs/{}", provision["id"].as_str().unwrap());
    let page = app.text(&job_page).await;
    assert!(page.contains("id=\"job-waiting\""), "{page}");
    assert!(page.contains("no driver"), "{page}");
    let build_page = app.text(&format!("/builds/{id}")).await;
    assert!(build_page.contains("no driver"), "{build_page}");
    // Its message waits on the driver's queue, which no runner serves.
    assert_eq!(app.queue.depth("driver:cloud").await.unwrap(), 1);
    // Once an instance registers, the job is no longer said to be stranded.
    app.driver("cloud", "late").await;
    let build = app.build_of(&id).await;
    assert!(job(&build, "provision").get("waiting").is_none(), "{build}");
    assert_eq!(job(&build, "provision")["status"], "queued");
}

#[tokio::test]
async fn only_a_driver_instance_claims_its_drivers_work() {
    let app = super::spawn_app().await;
    app.started(CHAIN, "chain").await;
    let (status, body) = app.claim_as(&app.r1, 0).await;
    assert_eq!(status, 403, "{body}");
    let other = app.driver("storage", "s1").await;
    assert_eq!(app.claim_as(&other, 1).await.0, 204);
    let runner = json!({ "name": "sneaky", "fleets": ["driver:cloud"] });
    let (status, body) = app
        .post("/api/v1/runners/register", Some(RUNNER), &runner)
        .await;
    assert_eq!(status, 422, "{body}");
    let bad = json!({ "driver": "Cloud", "instance": "x" });
    let (status, body) = app.admin(REGISTER, &bad).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("driver")),
        "{body}"
    );
    let listed = app.get("/api/v1/drivers").await.1;
    assert_eq!(listed["drivers"][0]["name"], "storage");
    assert_eq!(listed["drivers"][0]["resources"], json!(["vm"]));
    assert_eq!(listed["drivers"][0]["connected"], true);
}

#[tokio::test]
async fn a_fleet_token_for_a_driver_registers_instances_of_that_driver_only() {
    let queue = Arc::new(LocalQueue::new());
    let mut state =
        conveyor::http::AppState::new(common::sqlite().await, queue, ADMIN.into(), RUNNER.into());
    state.fleet_tokens = vec!["driver:cloud=token-for-cloud-12345".parse().unwrap()];
    let base = common::serve_app(conveyor::http::app(Arc::new(state))).await;
    let http = common::http();
    let register = |body: Value| {
        http.post(format!("{base}{REGISTER}"))
            .bearer_auth("token-for-cloud-12345")
            .json(&body)
            .send()
    };
    let res = register(json!({ "driver": "cloud", "instance": "a" }))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let res = register(json!({ "driver": "storage", "instance": "a" }))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["error"],
        "this registration token is for fleets driver:cloud; it cannot register a runner for fleet `driver:storage`"
    );
}

#[tokio::test]
async fn a_driver_job_cancelled_while_it_runs_is_recorded_cancelled_whatever_it_returns() {
    let app = super::spawn_app().await;
    let token = app.driver("cloud", "host-1").await;
    let id = app.started(CHAIN, "chain").await;
    let (_, work) = app.claim_as(&token, 5).await;
    let heartbeat = "/api/v1/drivers/heartbeat";
    let (_, beat) = app.post(heartbeat, Some(&token), &work["lease"]).await;
    assert_eq!(beat, json!({ "cancel": false, "lease_ms_left": 30_000 }));
    let (status, _) = app
        .admin(&format!("/api/v1/builds/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, beat) = app.post(heartbeat, Some(&token), &work["lease"]).await;
    assert_eq!(beat, json!({ "cancel": true, "lease_ms_left": 30_000 }));
    let done = json!({ "lease": work["lease"], "success": true, "data": { "HOST": "h" } });
    assert_eq!(app.post(COMPLETE, Some(&token), &done).await.0, 204);
    let build = app.finished(&id, Duration::from_secs(5)).await;
    assert_eq!(build["status"], "cancelled");
    let provision = job(&build, "provision");
    assert_eq!(provision["status"], "cancelled");
    assert_eq!(provision["outputs"], json!({}));
}

#[tokio::test]
async fn a_driver_claims_through_redis_streams_and_an_empty_wait_loses_nothing() {
    let prefix = format!("drivers-test-{}", uuid::Uuid::now_v7().simple());
    let queue = conveyor_runner::queue::RedisQueue::connect("redis://127.0.0.1:6379", &prefix)
        .await
        .expect("Redis on 127.0.0.1:6379");
    let state = conveyor::http::AppState::new(
        common::sqlite().await,
        Arc::new(queue),
        ADMIN.into(),
        RUNNER.into(),
    );
    let base = common::serve_app(conveyor::http::app(Arc::new(state))).await;
    let http = common::http();
    let r1 = common::register_runner(&http, &base, RUNNER, "r1", &["default"]).await;
    let app = App {
        base,
        http,
        queue: Arc::new(LocalQueue::new()),
        r1,
    };
    let token = app.driver("cloud", "host-1").await;
    // A wait that times out mid-read, then work that arrives after it.
    assert_eq!(app.claim_as(&token, 1).await.0, 204);
    let id = app.started(CHAIN, "chain").await;
    let (status, work) = app.claim_as(&token, 10).await;
    assert_eq!(status, 200, "{work}");
    assert_eq!(work["run_id"], id.as_str());
    let done = json!({ "lease": work["lease"], "success": true, "data": { "HOST": "h" } });
    assert_eq!(app.post(COMPLETE, Some(&token), &done).await.0, 204);
    let build = app.build_of(&id).await;
    assert_eq!(job(&build, "provision")["status"], "succeeded");
}
