//! Conveyor CI's pipelines over HTTP: a pipeline is a product of its name whose belt runs
//! its steps in order as driver jobs; a resource's change starts a build of it (run id =
//! build id) on the drivers' queues; names never clash with registered products.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use conveyor_runner::queue::Queue;
use serde_json::{Value, json};

use super::resources::app_schema;
use crate::{App, SHOP, spawn_app};

fn pipeline(name: &str) -> Value {
    json!({ "name": name, "description": "ship it", "resource": "app",
            "steps": [{"driver": "builder"}, {"name": "check", "driver": "tester"},
                      {"driver": "deployer"}] })
}

impl App {
    async fn app_pipeline(&self, name: &str) {
        self.define("app", app_schema()).await;
        let (status, body) = self.call("POST", "/pipelines", Some(&pipeline(name))).await;
        assert_eq!(status, 201, "{body}");
    }
}

fn web(tag: &str) -> Value {
    json!({ "name": "web", "resource": "app",
            "spec": {"image": {"repo": "shop", "tag": tag}} })
}

#[tokio::test]
async fn a_pipeline_is_a_product_whose_belt_chains_its_steps_as_driver_jobs() {
    let app = spawn_app().await;
    app.app_pipeline("release").await;
    let (status, got) = app.get("/pipelines/release").await;
    assert_eq!(status, 200);
    let steps: Vec<(&str, &str, &str)> = got["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap(),
                s["name"].as_str().unwrap(),
                s["driver"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("builder", "builder", "builder"),
            ("check", "check", "tester"),
            ("deployer", "deployer", "deployer")
        ]
    );
    let (status, product) = app.get("/api/v1/products/release").await;
    assert_eq!(status, 200, "{product}");
    let belt = &product["model"]["belts"][0];
    assert_eq!(belt["name"], "release");
    let jobs: Vec<(&str, Value)> = belt["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["name"].as_str().unwrap(), j["needs"].clone()))
        .collect();
    assert_eq!(
        jobs,
        [
            ("builder", json!([])),
            ("check", json!(["builder"])),
            ("deployer", json!(["check"]))
        ]
    );
    let (_, list) = app.get("/pipelines").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_pipeline_is_refused_twice_with_repeated_or_no_steps_or_an_unknown_type() {
    let app = spawn_app().await;
    app.app_pipeline("release").await;
    let (status, body) = app
        .call("POST", "/pipelines", Some(&pipeline("release")))
        .await;
    assert_eq!(status, 409, "{body}");
    let mut two = pipeline("release");
    two["steps"] = json!([{"driver": "builder"}, {"driver": "builder"}]);
    let (status, body) = app.call("PUT", "/pipelines/release", Some(&two)).await;
    assert_eq!(
        (status, body["field"].clone()),
        (422, json!("steps/1/name")),
        "{body}"
    );
    two["steps"] = json!([]);
    let (status, body) = app.call("PUT", "/pipelines/release", Some(&two)).await;
    assert_eq!(
        (status, body["field"].clone()),
        (422, json!("steps")),
        "{body}"
    );
    let mut other_type = pipeline("other");
    other_type["resource"] = json!("nope");
    let (status, body) = app.call("POST", "/pipelines", Some(&other_type)).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn a_pipeline_name_never_takes_a_registered_product_nor_a_product_a_pipeline() {
    let app = spawn_app().await;
    app.register(SHOP).await;
    app.define("app", app_schema()).await;
    let (status, body) = app
        .call("POST", "/pipelines", Some(&pipeline("shop")))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"],
        "the name `shop` is taken by a registered product: choose another name"
    );
    app.call("POST", "/pipelines", Some(&pipeline("release")))
        .await;
    let (status, body) = app.try_register("product: release\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"],
        "the name `release` belongs to a pipeline's product: choose another product name"
    );
    let (status, body) = app.call("DELETE", "/resource-definitions/app", None).await;
    assert_eq!(status, 409, "the pipeline still uses the type");
    assert_eq!(
        body["error"],
        "resource definition `app` is still used by pipeline `release`: delete them first"
    );
    let (status, _) = app.call("DELETE", "/pipelines/release", None).await;
    assert_eq!(status, 204);
    let (status, _) = app.get("/pipelines/release").await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call("POST", "/pipelines", Some(&pipeline("release")))
        .await;
    assert_eq!(status, 201, "a pipeline takes back its own product's name");
}

#[tokio::test]
async fn a_resource_change_starts_a_build_of_its_pipeline_on_the_first_drivers_queue() {
    let app = spawn_app().await;
    app.app_pipeline("release").await;
    let (status, made) = app.call("POST", "/resources", Some(&web("v1"))).await;
    assert_eq!(status, 201, "{made}");
    let runid = made["runid"].as_str().unwrap().to_string();
    assert_eq!(made["runs"], json!([runid]));
    let (_, build) = app.get(&format!("/api/v1/builds/{runid}")).await;
    assert_eq!(
        (build["product"].clone(), build["belt"].clone()),
        (json!("release"), json!("release"))
    );
    assert_eq!(build["number"], 1);
    assert_eq!(
        build["trigger"],
        json!({"kind": "resource", "resource": "app", "name": "web", "version": 1, "event": "create"})
    );
    let statuses: Vec<&str> = build["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["queued", "pending", "pending"]);
    assert_eq!(app.queue.depth("driver:builder").await.unwrap(), 1);
    assert_eq!(app.queue.depth("driver:tester").await.unwrap(), 0);

    let (_, updated) = app
        .call("PUT", "/resources/app/web", Some(&web("v2")))
        .await;
    let second = updated["runid"].as_str().unwrap();
    assert_ne!(second, runid);
    let (_, build) = app.get(&format!("/api/v1/builds/{second}")).await;
    assert_eq!(build["number"], 2, "builds are numbered per pipeline");
    assert_eq!(build["trigger"]["event"], "update");
    assert_eq!(build["trigger"]["version"], 2);
}

#[tokio::test]
async fn with_private_reads_the_catalog_needs_a_token_and_writes_need_the_admin_token() {
    let mut state = conveyor::http::AppState::new(
        crate::common::sqlite().await,
        std::sync::Arc::new(conveyor_runner::queue::LocalQueue::new()),
        crate::ADMIN.into(),
        crate::RUNNER.into(),
    );
    state.public_ui = false;
    let base = crate::common::serve_app(conveyor::http::app(std::sync::Arc::new(state))).await;
    let http = crate::common::http();
    for path in [
        "/resource-definitions",
        "/pipelines",
        "/resources/app",
        "/resources/app/web",
    ] {
        let res = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 401, "GET {path} without a token");
    }
    let res = http
        .get(format!("{base}/pipelines"))
        .bearer_auth(crate::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let writes = [
        (
            "/resource-definitions",
            json!({"name": "app", "schema": {}}),
        ),
        ("/pipelines", pipeline("release")),
        ("/resources", web("v1")),
    ];
    for (path, body) in writes {
        let res = http
            .post(format!("{base}{path}"))
            .bearer_auth(crate::RUNNER)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "POST {path} with a runner token");
    }
}

#[tokio::test]
async fn a_pipeline_run_is_on_the_dashboard_like_any_build() {
    let app = spawn_app().await;
    app.app_pipeline("release").await;
    let (_, made) = app.call("POST", "/resources", Some(&web("v1"))).await;
    let runid = made["runid"].as_str().unwrap();
    let page = app
        .http
        .get(format!("{}/builds/{runid}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let trigger = r#"create of resource <a href="/resources/app/web/1">app/web version 1</a>"#;
    assert!(html.contains(trigger), "{html}");
    for step in ["builder", "check", "deployer"] {
        assert!(html.contains(step), "the graph shows step {step}");
    }
    let product = app
        .http
        .get(format!("{}/products/release", app.base))
        .send()
        .await
        .unwrap();
    let text = product.text().await.unwrap();
    assert!(
        text.contains("over resources of type"),
        "the pipeline's description: {text}"
    );
}

#[tokio::test]
async fn a_pipeline_run_re_runs_the_same_change_and_a_delete_is_a_run_too() {
    let app = spawn_app().await;
    app.app_pipeline("release").await;
    app.call("POST", "/resources", Some(&web("v1"))).await;
    let (_, updated) = app
        .call("PUT", "/resources/app/web", Some(&web("v2")))
        .await;
    let second = updated["runid"].as_str().unwrap();
    let (status, rerun) = app
        .call("POST", &format!("/api/v1/builds/{second}/rerun"), None)
        .await;
    assert_eq!(status, 201, "{rerun}");
    assert_eq!(
        (rerun["product"].clone(), rerun["number"].clone()),
        (json!("release"), json!(3))
    );
    assert_eq!(
        rerun["event"], "update",
        "a re-run reconciles the same change"
    );
    assert_eq!(rerun["resource"]["version"], 2);

    let (status, gone) = app.call("DELETE", "/resources/app/web", None).await;
    assert_eq!(status, 200, "{gone}");
    let (_, build) = app
        .get(&format!(
            "/api/v1/builds/{}",
            gone["runid"].as_str().unwrap()
        ))
        .await;
    assert_eq!(build["event"], "delete", "a delete is a run too");
    assert_eq!(
        build["resource"]["spec"]["image"]["tag"], "v2",
        "with the last version"
    );
}
