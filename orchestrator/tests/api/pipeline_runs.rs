//! Pipelines end to end, with real drivers: a resource created through the API runs a
//! three-step pipeline — a Python driver (sdk/python, run by `CONVEYOR_TEST_PYTHON`) then
//! two Rust drivers (sdk/rust) — in order with one run id; a failing step stops it and the
//! build says which; the logs come back through Conveyor CI's `/logs` and its live stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conveyor_driver::{Driver, DriverManager, DriverPayload, DriverResult, Logger};
use serde_json::{Value, json};

use super::resources::app_schema;
use crate::{ADMIN, App, spawn_app};

/// The Python step: builds `shop:TAG` from the resource's spec.
const BUILDER: &str = r#"
from conveyor_driver import Driver, DriverManager, DriverResult

def reconcile(payload, event, run_id, logger):
    tag = payload["resource"]["spec"]["image"]["tag"]
    logger.log(f"building shop:{tag} ({event})", step="build")
    return DriverResult(success=True, message="built",
                        data={"ARTIFACT": f"shop:{tag}", "RUN": run_id, "EVENT": event})

DriverManager(Driver(name="builder", resources=[], reconcile=reconcile)).run()
"#;

/// The interpreter with `conveyor_driver` installed: `CONVEYOR_TEST_PYTHON` (CI sets it;
/// without it, CI fails), else a virtualenv made once under the user's cache.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("CONVEYOR_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CONVEYOR_TEST_PYTHON is not set: CI must install sdk/python (see .ci/run)"
    );
    let home = std::env::var("HOME").unwrap();
    let venv = Path::new(&home).join(".cache/conveyor-ci/sdk-python-local");
    let python = venv.join("bin/python");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/python");
    // A copy, so that pip's build files stay out of the clone.
    let copy = crate::common::temp_dir("sdk-python");
    for entry in ["conveyor_driver", "pyproject.toml", "README.md"] {
        let ok = std::process::Command::new("cp")
            .arg("-r")
            .arg(sdk.join(entry))
            .arg(&copy)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    if !python.exists() {
        let made = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(made.success(), "python3 -m venv failed");
    }
    let pip = std::process::Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--no-deps", "--force-reinstall"])
        .arg(&copy)
        .status()
        .unwrap();
    assert!(pip.success(), "pip install sdk/python failed");
    python
}

fn rust_driver(app: &App, name: &str) -> tokio::task::JoinHandle<()> {
    let driver = Driver::new(name, &["app"], reconcile);
    let manager = DriverManager::new(driver)
        .server(app.base.clone())
        .token(ADMIN)
        .instance("test");
    tokio::spawn(async move {
        manager.run_until(std::future::pending()).await.unwrap();
    })
}

/// Both Rust steps: `tester` fails an artifact tagged v13, `deployer` deploys.
async fn reconcile(p: DriverPayload, event: String, run_id: String, log: Logger) -> DriverResult {
    let artifact = p.steps["builder"]["ARTIFACT"].clone();
    log.log_with(&[("event", &event)], format!("{} sees {artifact}", p.job));
    if p.job == "tester" && artifact.ends_with(":v13") {
        return DriverResult::failed(format!("{artifact} fails its tests"));
    }
    DriverResult::ok(format!("{} done", p.job))
        .with("RUN", run_id)
        .with("EVENT", event)
        .with("SEEN", artifact)
}

async fn finished(app: &App, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, b) = app.get(&format!("/api/v1/builds/{id}")).await;
        if ["succeeded", "failed", "cancelled"].contains(&b["status"].as_str().unwrap()) {
            return b;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn resource(tag: &str) -> Value {
    json!({ "name": "web", "resource": "app", "spec": {"image": {"repo": "shop", "tag": tag}} })
}

/// The live stream of a step, read to its end in the background.
fn stream(app: &App, driver: &str, runid: &str) -> tokio::task::JoinHandle<String> {
    let url = format!("{}/logs/streams/{driver}/{runid}", app.base);
    let http = app.http.clone();
    tokio::spawn(async move {
        let res = http.get(url).bearer_auth(ADMIN).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    })
}

/// Starts the three drivers; the Python process dies with the returned guard.
async fn drivers(app: &App) -> (tokio::process::Child, Vec<tokio::task::JoinHandle<()>>) {
    let script = crate::common::temp_dir("builder").join("builder.py");
    std::fs::write(&script, BUILDER).unwrap();
    let child = tokio::process::Command::new(python())
        .arg(&script)
        .env("CONVEYOR_SERVER", &app.base)
        .env("CONVEYOR_TOKEN", ADMIN)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let rust = vec![rust_driver(app, "tester"), rust_driver(app, "deployer")];
    (child, rust)
}

async fn release_pipeline(app: &App) {
    app.define("app", app_schema()).await;
    let pipeline = json!({ "name": "release", "resource": "app",
        "steps": [{"driver": "builder"}, {"driver": "tester"}, {"driver": "deployer"}] });
    let (status, body) = app.call("POST", "/pipelines", Some(&pipeline)).await;
    assert_eq!(status, 201, "{body}");
}

fn job<'a>(build: &'a Value, name: &str) -> &'a Value {
    build["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap()
}

/// The builder's lines through `/logs`, the deployer's through the live stream opened
/// before it started.
async fn logs_come_back(app: &App, runid: &str, live: tokio::task::JoinHandle<String>) {
    let (_, logs) = app
        .get(&format!(
            "/logs?runid={runid}&driver=builder&pipeline=release"
        ))
        .await;
    let lines: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(lines.contains(&"building shop:v1 (create)"), "{logs}");
    assert!(
        lines.iter().all(|l| !l.contains("sees")),
        "only the builder's lines: {lines:?}"
    );
    let (_, other) = app
        .get(&format!(
            "/logs?runid={runid}&driver=builder&pipeline=other"
        ))
        .await;
    assert_eq!(other["logs"], json!([]));
    let live = tokio::time::timeout(Duration::from_secs(30), live)
        .await
        .unwrap()
        .unwrap();
    assert!(live.contains("data: deployer sees shop:v1"), "{live}");
    assert!(live.contains("event: end"), "{live}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resource_runs_a_pipeline_of_python_and_rust_drivers_in_order_with_one_run_id() {
    let app = spawn_app().await;
    release_pipeline(&app).await;
    let (_python, rust) = drivers(&app).await;

    let (status, made) = app.call("POST", "/resources", Some(&resource("v1"))).await;
    assert_eq!(status, 201, "{made}");
    let runid = made["runid"].as_str().unwrap().to_string();
    let live = stream(&app, "deployer", &runid);
    let build = finished(&app, &runid).await;
    assert_eq!(build["status"], "succeeded", "{build}");
    assert_eq!(
        (build["product"].clone(), build["number"].clone()),
        (json!("release"), json!(1))
    );
    let (builder, tester, deployer) = (
        job(&build, "builder"),
        job(&build, "tester"),
        job(&build, "deployer"),
    );
    assert_eq!(builder["outputs"]["RUN"], runid.as_str());
    assert_eq!(builder["outputs"]["EVENT"], "create");
    for step in [tester, deployer] {
        assert_eq!(step["outputs"]["RUN"], runid.as_str(), "one run id: {step}");
        assert_eq!(step["outputs"]["EVENT"], "process");
        assert_eq!(
            step["outputs"]["SEEN"], "shop:v1",
            "a later step sees the earlier's data"
        );
    }
    let at = |j: &Value, k: &str| j[k].as_i64().unwrap();
    assert!(
        at(tester, "started_at") >= at(builder, "finished_at"),
        "{build}"
    );
    assert!(
        at(deployer, "started_at") >= at(tester, "finished_at"),
        "{build}"
    );

    logs_come_back(&app, &runid, live).await;

    let (status, body) = app
        .call("POST", "/resources", Some(&resource("latest")))
        .await;
    assert_eq!(
        (status, body["field"].clone()),
        (422, json!("spec/image/tag")),
        "{body}"
    );
    let (_, all) = app.get("/api/v1/builds?product=release").await;
    assert_eq!(
        all["builds"].as_array().unwrap().len(),
        1,
        "an invalid resource starts nothing"
    );
    rust.iter().for_each(|h| h.abort());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_update_is_a_new_version_and_run_and_a_failing_step_stops_the_pipeline() {
    let app = spawn_app().await;
    release_pipeline(&app).await;
    let (_python, rust) = drivers(&app).await;
    let (_, made) = app.call("POST", "/resources", Some(&resource("v1"))).await;
    finished(&app, made["runid"].as_str().unwrap()).await;

    let (status, updated) = app
        .call("PUT", "/resources/app/web", Some(&resource("v13")))
        .await;
    assert_eq!(
        (status, updated["version"].clone()),
        (200, json!(2)),
        "{updated}"
    );
    let runid = updated["runid"].as_str().unwrap();
    assert_ne!(Some(runid), made["runid"].as_str(), "a new run");
    let build = finished(&app, runid).await;
    assert_eq!(
        (build["status"].clone(), build["number"].clone()),
        (json!("failed"), json!(2))
    );
    assert_eq!(build["event"], "update");
    assert_eq!(build["resource"]["version"], 2);
    assert_eq!(job(&build, "builder")["outputs"]["EVENT"], "update");
    assert_eq!(job(&build, "builder")["status"], "succeeded");
    let tester = job(&build, "tester");
    assert_eq!(
        tester["status"], "failed",
        "the build says which step failed: {build}"
    );
    assert_eq!(tester["error"], "shop:v13 fails its tests");
    assert_eq!(
        job(&build, "deployer")["status"],
        "skipped",
        "the first failure stops the rest"
    );
    let (_, v1) = app.get("/resources/app/web/1").await;
    assert_eq!(
        v1["spec"]["image"]["tag"], "v1",
        "the old version stays readable"
    );
    rust.iter().for_each(|h| h.abort());
}

/// The Rust example driver's own `reconcile` (examples/drivers/rust_driver.rs).
#[allow(dead_code)]
#[path = "../../../examples/drivers/rust_driver.rs"]
mod rust_example;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_example_drivers_run_the_documented_release_pipeline() {
    let app = spawn_app().await;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/drivers");
    let _python = tokio::process::Command::new(python())
        .arg(examples.join("builder.py"))
        .env("CONVEYOR_SERVER", &app.base)
        .env("CONVEYOR_TOKEN", ADMIN)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let driver = Driver::new("deployer", &[], rust_example::reconcile);
    let m = DriverManager::new(driver)
        .server(app.base.clone())
        .token(ADMIN);
    let task = tokio::spawn(async move { m.run_until(std::future::pending()).await.unwrap() });

    let release = |tag: &str| {
        let out = std::process::Command::new(examples.join("release.sh"))
            .arg(tag)
            .env("CONVEYOR_SERVER", &app.base)
            .env("CONVEYOR_TOKEN", ADMIN)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "release.sh {tag}: {stderr}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let build = finished(&app, &release("v2")).await;
    assert_eq!(build["status"], "succeeded", "{build}");
    assert_eq!(job(&build, "deployer")["outputs"]["DEPLOYED"], "shop:v2");
    let build = finished(&app, &release("v0")).await;
    assert_eq!(
        (build["status"].clone(), build["event"].clone()),
        (json!("failed"), json!("update"))
    );
    assert_eq!(
        job(&build, "deployer")["error"],
        "cannot deploy shop:v0: v0 is not a release"
    );
    task.abort();
}
