//! Conveyor CI's log API: a client streams a driver's lines as they are written, and reads
//! a run's stored lines filtered by driver and pipeline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use conveyor::startup::{Embedded, Options};
use serde_json::{Value, json};

use crate::common;

const PRODUCT: &str = "product: talk
belts:
  - name: b
    jobs:
      - name: slow
        commands: |
          for i in 1 2 3 4; do echo \"line $i\"; sleep 0.3; done
      - name: quick
        commands: echo hi
";

/// An embedded conveyor with `yaml` registered, and a build of its belt `b` started: the
/// engine and the build's id.
async fn started(name: &str, yaml: &str) -> (Embedded, reqwest::Client, String) {
    let dir = common::temp_dir(name);
    let engine = Embedded::start(Options {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        runners: 2,
        max_log_bytes: conveyor::services::DEFAULT_MAX_LOG_MIB << 20,
        retention: Default::default(),
        fleets: vec!["default".into()],
        admin_token: "admin".into(),
        job_user: None,
        statuses: Default::default(),
        tls: None,
        files: None,
        local_caches: None,
    })
    .await
    .unwrap();
    let http = crate::common::http();
    let r = http
        .post(format!("{}/api/v1/products", engine.url))
        .bearer_auth("admin")
        .json(&json!({ "yaml": yaml }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let product = yaml.lines().next().unwrap().trim_start_matches("product: ");
    let build: Value = http
        .post(format!(
            "{}/api/v1/products/{product}/belts/b/builds",
            engine.url
        ))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = build["id"].as_str().unwrap().to_string();
    (engine, http, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_streams_its_lines_as_they_come_and_a_run_lists_them_after() {
    let (engine, http, runid) = started("compat", PRODUCT).await;
    let runid = runid.as_str();

    // The stream opens while the job runs and ends after its last line.
    let mut resp = http
        .get(format!("{}/logs/streams/slow/{runid}", engine.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut chunks = 0;
    while let Some(chunk) = tokio::time::timeout(std::time::Duration::from_secs(30), resp.chunk())
        .await
        .expect("the stream goes quiet")
        .unwrap()
    {
        chunks += 1;
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains("event: end") {
            break;
        }
    }
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|l| l.starts_with("line"))
        .collect();
    assert_eq!(lines, ["line 1", "line 2", "line 3", "line 4"], "{text}");
    assert!(
        chunks > 1,
        "the lines arrived over time, not in one piece: {text}"
    );

    let logs = |query: String| {
        let http = http.clone();
        let url = format!("{}/logs?runid={runid}{query}", engine.url);
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let slow = logs("&driver=slow&pipeline=b".into()).await;
    let messages: Vec<&str> = slow["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    // Each command's line first (see docs/language.md), then what it printed.
    assert_eq!(
        messages,
        [
            "$ for i in 1 2 3 4; do echo \"line $i\"; sleep 0.3; done",
            "line 1",
            "line 2",
            "line 3",
            "line 4"
        ]
    );
    assert_eq!(slow["logs"][0]["driver"], "slow");
    assert_eq!(logs("&pipeline=other".into()).await["logs"], json!([]));
    let r = http
        .get(format!("{}/logs/streams/nope/{runid}", engine.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    engine.shutdown().await;
}

async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Build `id` once it has ended.
async fn ended(engine: &Embedded, http: &reqwest::Client, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let b = json_of(http.get(format!("{}/api/v1/builds/{id}", engine.url))).await;
        if !matches!(b["status"].as_str(), Some("running" | "pending")) {
            return b;
        }
        assert!(std::time::Instant::now() < deadline, "{b}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

const LONG: &str = "product: long
belts:
  - name: b
    jobs:
      - name: one
        commands: seq 1 2500
      - name: two
        commands: seq 2501 5000
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_log_of_many_pages_comes_back_whole_and_in_order() {
    let (engine, http, runid) = started("compat-long", LONG).await;
    let b = ended(&engine, &http, &runid).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    let get = |query: &str| {
        let url = format!("{}/logs?runid={runid}{query}", engine.url);
        let http = http.clone();
        async move {
            let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            let lines = v["logs"].as_array().cloned().unwrap_or_default();
            lines
                .iter()
                .map(|l| {
                    (
                        l["driver"].as_str().unwrap().to_string(),
                        l["message"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    // The lines the jobs printed (each job's log starts with its command's line).
    let printed = |lines: Vec<(String, String)>| -> Vec<(String, String)> {
        lines
            .into_iter()
            .filter(|(_, m)| !m.starts_with("$ "))
            .collect()
    };
    let all = printed(get("").await);
    let expected: Vec<(String, String)> = (1..=5000)
        .map(|i| {
            (
                if i <= 2500 { "one" } else { "two" }.to_string(),
                i.to_string(),
            )
        })
        .collect();
    assert_eq!(all.len(), 5000);
    assert!(all == expected, "every line once, each job's in order");
    assert_eq!(printed(get("&driver=two").await), expected[2500..].to_vec());
    engine.shutdown().await;
}

const LOCATED: &str = "product: located
belts:
  - name: b
    jobs:
      - name: j
        commands: |
          echo start
          nosuchtool --now
";

/// (Here for `started`.) A product registered as YAML through the API has no file: its log
/// names its lines after what it was registered as, with the labels the viewer reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_registered_as_yaml_names_its_lines_after_its_registration() {
    let (engine, http, build) = started("compat-located", LOCATED).await;
    let b = ended(&engine, &http, &build).await;
    assert_eq!(b["status"], "failed", "{b}");
    let run = b["jobs"][0]["id"].as_str().unwrap();
    let url = format!("{}/api/v1/job-runs/{run}/logs", engine.url);
    let logs = json_of(http.get(url).bearer_auth("admin")).await;
    let all = logs["lines"].as_array().unwrap();
    let file = "located (registered)";
    // Stderr travels apart from stdout: its line is looked for, not placed.
    let stderr: Vec<&str> = all
        .iter()
        .filter(|l| l["stream"] == "stderr")
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    let told = format!("{file}:8: nosuchtool: command not found");
    assert_eq!(stderr, [told.as_str()]);
    let lines: Vec<(String, Value)> = all
        .iter()
        .filter(|l| l["stream"] != "stderr")
        .map(|l| (l["text"].as_str().unwrap().to_string(), l["labels"].clone()))
        .collect();
    let command = |line: u32| json!({"kind": "command", "source": format!("{file}:{line}")});
    assert_eq!(
        lines,
        [
            ("$ echo start".to_string(), command(7)),
            ("start".to_string(), Value::Null),
            ("$ nosuchtool --now".to_string(), command(8)),
            (
                format!("✗ `nosuchtool --now` failed with exit status 127 ({file}:8)"),
                json!({"kind": "error", "source": format!("{file}:8")})
            ),
        ]
    );
    engine.shutdown().await;
}
