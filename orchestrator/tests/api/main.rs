//! The orchestrator over HTTP, one test binary: the JSON API as a client sees it (a real
//! server on a random port over a fresh SQLite store), the OpenAPI document, health and
//! metrics, runner registration, Conveyor CI's log API, and forges' webhooks and commit
//! statuses against local repositories and a recording forge.
//! This file holds the API client and its fixtures; `products.rs` registration and request
//! limits, `protocol.rs` builds and the runner protocol, `actions.rs` the pages, re-run,
//! approve and cancel; the other modules bring their own helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod auth;
mod build_context;
#[path = "../common/mod.rs"]
mod common;
mod compat;
mod deliveries;
mod driver_processes;
mod drivers;
mod files;
mod forge_stub;
mod gating;
mod history;
mod inputs;
mod logs;
mod multi_product;
mod observability;
mod openapi;
mod pipeline_runs;
mod pipelines;
mod products;
mod protocol;
mod resources;
mod runners;
mod sdk_rust;
mod secrets;
mod start_at_head;
mod statuses;
mod waiting;
mod webhooks;

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
const RELEASE: &str = "/api/v1/runner/release";

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
    /// Runner `r1`'s own token (it serves the default fleet).
    r1: String,
}

/// Starts the real router on a random port over a fresh SQLite store, with runner `r1`
/// registered.
async fn spawn_app() -> App {
    let queue = Arc::new(LocalQueue::new());
    let base = common::serve_router(queue.clone(), ADMIN, RUNNER).await;
    let http = crate::common::http();
    let r1 = common::register_runner(&http, &base, RUNNER, "r1", &["default"]).await;
    App {
        base,
        http,
        queue,
        r1,
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
        self.post(path, Some(&self.r1), body).await
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
            log: Vec::new(),
            take_next: false,
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
        labels: Default::default(),
        at: None,
    }
}
