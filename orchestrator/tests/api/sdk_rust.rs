//! The Rust SDK (sdk/rust) against a real orchestrator: its resources client; a type
//! without a pipeline fanning out to every driver listening to it; and a lease lost while
//! `reconcile` runs — the SDK stops heartbeating and drops the late result (the orchestrator
//! would refuse it anyway: this proves the recorded result is the re-delivery's, and that
//! the instance goes on to take it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use conveyor::http::AppState;
use conveyor::services::Services;
use conveyor_driver::{Client, Driver, DriverManager, DriverPayload, DriverResult, Error, Logger};
use conveyor_runner::queue::LocalQueue;
use serde_json::{Value, json};

use super::resources::app_schema;
use crate::{ADMIN, RUNNER, common, spawn_app};

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn build(base: &str, id: &str) -> Value {
    let url = format!("{base}/api/v1/builds/{id}");
    common::http()
        .get(url)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn finished(base: &str, id: &str) -> Value {
    let mut last = Value::Null;
    until("the build to finish", async || {
        last = build(base, id).await;
        last["finished_at"].is_i64()
    })
    .await;
    last
}

#[tokio::test]
async fn the_client_creates_reads_updates_and_deletes_resources_and_says_why_one_is_refused() {
    let app = spawn_app().await;
    let client = Client::new(&app.base, ADMIN).unwrap();
    client.apply_definition("app", app_schema()).await.unwrap();
    let spec = |tag: &str| json!({"image": {"repo": "shop", "tag": tag}});
    let made = client
        .create_resource("app", "web", spec("v1"))
        .await
        .unwrap();
    assert_eq!((made.version, made.runid), (1, None));
    let next = client
        .update_resource("app", "web", spec("v2"))
        .await
        .unwrap();
    assert_eq!(next.version, 2);
    let v1 = client.resource_version("app", "web", 1).await.unwrap();
    assert_eq!(v1.spec, spec("v1"));
    assert_eq!(client.resource("app", "web").await.unwrap().version, 2);
    assert_eq!(client.resources("app").await.unwrap().len(), 1);
    match client.create_resource("app", "api", spec("latest")).await {
        Err(Error::Status {
            status: 422, field, ..
        }) => {
            assert_eq!(field.as_deref(), Some("spec/image/tag"));
        }
        other => panic!("not refused: {other:?}"),
    }
    let gone = client.delete_resource("app", "web").await.unwrap();
    assert_eq!(gone.version, 2);
    let missing = client.resource("app", "web").await.unwrap_err();
    assert_eq!(missing.status(), Some(404));
}

async fn tagged(p: DriverPayload, event: String, run_id: String, log: Logger) -> DriverResult {
    log.log(format!("{} reconciles {event}", p.job));
    let tag = p.resource.unwrap()["spec"]["image"]["tag"].clone();
    DriverResult::ok("done")
        .with("TAG", tag.as_str().unwrap_or(""))
        .with("RUN", run_id)
        .with("EVENT", event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_type_without_a_pipeline_fans_out_to_every_driver_listening_to_it() {
    let app = spawn_app().await;
    app.define("app", app_schema()).await;
    let mut tasks = Vec::new();
    for name in ["alpha", "beta"] {
        let m = DriverManager::new(Driver::new(name, &["app", "other"], tagged))
            .server(app.base.clone())
            .token(ADMIN);
        tasks.push(tokio::spawn(async move {
            m.run_until(std::future::pending()).await.unwrap()
        }));
    }
    until("both drivers to register", async || {
        app.get("/api/v1/drivers").await.1["drivers"]
            .as_array()
            .unwrap()
            .len()
            == 2
    })
    .await;
    let body = json!({ "name": "web", "resource": "app",
                       "spec": {"image": {"repo": "shop", "tag": "v3"}} });
    let (status, made) = app.call("POST", "/resources", Some(&body)).await;
    assert_eq!(status, 201, "{made}");
    let runid = made["runid"].as_str().unwrap();
    let b = finished(&app.base, runid).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(
        (b["product"].clone(), b["belt"].clone()),
        (json!("app.drivers"), json!("drivers"))
    );
    for job in b["jobs"].as_array().unwrap() {
        assert_eq!(
            job["outputs"]["TAG"], "v3",
            "each driver's result is recorded: {job}"
        );
        assert_eq!(job["outputs"]["RUN"], runid);
        assert_eq!(
            job["outputs"]["EVENT"], "create",
            "no step runs after another"
        );
    }
    let names: Vec<&str> = b["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    tasks.iter().for_each(|t| t.abort());
}

const SLOW: &str = "product: lost
belts:
  - name: b
    jobs:
      - name: slow
        driver: slow
        outputs: [ATTEMPT]
";

/// Driver `slow`: its first attempt finishes only after the test has reaped its lease.
fn slow_driver(calls: Arc<AtomicU32>, reaped: Arc<AtomicBool>) -> Driver {
    let (c, r) = (calls, reaped);
    Driver::new("slow", &[], move |p: DriverPayload, _e, _run, _log| {
        let (c, r) = (c.clone(), r.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            if p.attempt == 1 {
                while !r.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // Two heartbeats' time: the next one is answered 409.
                tokio::time::sleep(Duration::from_millis(1_200)).await;
            }
            DriverResult::ok("done").with("ATTEMPT", p.attempt.to_string())
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_result_reconciled_after_the_lease_was_lost_is_dropped_and_the_redelivery_recorded() {
    let store = common::sqlite().await;
    let mut services = Services::new(store.clone(), Arc::new(LocalQueue::new()));
    services.lease_ms = 1_500;
    let services = Arc::new(services);
    let state = AppState::with_services(services.clone(), ADMIN.into(), RUNNER.into());
    let base = common::serve_app(conveyor::http::app(Arc::new(state))).await;
    let http = common::http();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    assert_eq!(
        post("/api/v1/products", json!({"yaml": SLOW}))
            .await
            .unwrap()
            .status(),
        201
    );

    let (calls, reaped) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let driver = slow_driver(calls.clone(), reaped.clone());
    let m = DriverManager::new(driver).server(base.clone()).token(ADMIN);
    let task = tokio::spawn(async move { m.run_until(std::future::pending()).await.unwrap() });
    let res = post("/api/v1/products/lost/belts/b/builds", json!({}))
        .await
        .unwrap();
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    until("the first attempt to run", async || {
        calls.load(Ordering::SeqCst) == 1
    })
    .await;
    // The orchestrator's reaper, as if the lease had expired: the job is queued again.
    let effects = store.reap(i64::MAX / 2, 3).await.unwrap();
    assert_eq!(effects.dispatch.len(), 1, "the running job was re-queued");
    services.apply(effects).await;
    reaped.store(true, Ordering::SeqCst);

    let b = finished(&base, &id).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    let job = &b["jobs"][0];
    assert_eq!(
        job["outputs"]["ATTEMPT"], "2",
        "only the redelivery's result counts: {job}"
    );
    assert_eq!(
        (job["attempts"].clone(), calls.load(Ordering::SeqCst)),
        (json!(2), 2)
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manager_told_to_stop_records_the_reconcile_under_way_first() {
    let app = spawn_app().await;
    app.register(&SLOW.replace("lost", "stops")).await;
    let (calls, release) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let m = DriverManager::new(slow_driver(calls.clone(), release.clone()))
        .server(app.base.clone())
        .token(ADMIN);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(m.run_until(async {
        let _ = stopped.await;
    }));
    let (_, b) = app.start("stops", "b").await;
    until("the reconcile to start", async || {
        calls.load(Ordering::SeqCst) == 1
    })
    .await;
    stop.send(()).unwrap();
    release.store(true, Ordering::SeqCst);
    let ended = tokio::time::timeout(Duration::from_secs(30), task).await;
    assert!(ended.unwrap().unwrap().is_ok(), "the manager returned");
    let b = build(&app.base, b["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "succeeded", "recorded before stopping: {b}");
    assert_eq!(b["jobs"][0]["outputs"]["ATTEMPT"], "1");
}
