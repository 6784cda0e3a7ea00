//! Secrets end to end on a real embedded conveyor (SQLite, local runners, its own key): set
//! through the API, handed to the job that names them, masked wherever the job printed
//! them, and found in no API answer, page, output or database file; a job naming a secret
//! nobody set fails saying which; the API refuses bad names, short values and strangers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use conveyor::startup::{Embedded, Options};
use serde_json::{Value, json};

use crate::common;

const ADMIN: &str = "admin-token-0123456789";

fn publish(out: &Path) -> String {
    format!(
        "product: pub
belts:
  - name: release
    jobs:
      - name: publish
        secrets: [NPM_TOKEN]
        env: {{OUT: '{}'}}
        outputs: [PUBLISHED]
        commands: |
          printf '%s\\n' \"$NPM_TOKEN\"
          printf 'split:%s' \"${{NPM_TOKEN:0:6}}\"; sleep 0.2; printf '%s\\n' \"${{NPM_TOKEN:6}}\"
          echo \"//registry.example/:_authToken=$NPM_TOKEN always-auth=true\"
          printf '%s' \"$NPM_TOKEN\" > \"$OUT\"
          PUBLISHED=yes
      - name: needs-missing
        secrets: [NOBODY_SET_THIS]
        commands: echo never
",
        out.display()
    )
}

struct Conveyor {
    engine: Embedded,
    http: reqwest::Client,
    data: std::path::PathBuf,
}

impl Conveyor {
    async fn start() -> Conveyor {
        let dir = common::temp_dir("secrets");
        let data = dir.join("data");
        let opts = Options {
            data_dir: data.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            runners: 2,
            fleets: vec!["default".into()],
            admin_token: ADMIN.into(),
            statuses: Default::default(),
            job_user: None,
            tls: None,
            files: None,
            local_caches: None,
            max_log_bytes: conveyor::services::DEFAULT_MAX_LOG_MIB << 20,
            retention: Default::default(),
        };
        let engine = Embedded::start(opts).await.unwrap();
        Conveyor {
            engine,
            http: common::http(),
            data,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.engine.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn text(&self, path: &str) -> String {
        let r = self
            .http
            .get(format!("{}{path}", self.engine.url))
            .send()
            .await
            .unwrap();
        r.text().await.unwrap()
    }

    async fn finished(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, b) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/builds/{id}"),
                    None,
                    None,
                )
                .await;
            if b["status"] != "running" {
                return b;
            }
            assert!(Instant::now() < deadline, "build {id} did not finish: {b}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Whether `text` holds the secret or any 8-character piece of it.
fn leaks(text: &str, secret: &str) -> bool {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(8)
        .any(|w| text.contains(&w.iter().collect::<String>()))
}

/// Registers `pub`, sets its `NPM_TOKEN`, runs its belt; the token and the finished build.
async fn published(c: &Conveyor, out: &Path) -> (String, Value) {
    use reqwest::Method;
    let product = json!({ "yaml": publish(out) });
    let (status, body) = c
        .call(Method::POST, "/api/v1/products", Some(ADMIN), Some(product))
        .await;
    assert_eq!(status, 201, "{body}");
    let token = format!("npm_{}", uuid::Uuid::new_v4().simple());
    let path = "/api/v1/products/pub/secrets/NPM_TOKEN";
    let value = json!({ "value": token });
    assert_eq!(
        c.call(Method::PUT, path, Some(ADMIN), Some(value)).await.0,
        204
    );
    let start = "/api/v1/products/pub/belts/release/builds";
    let (status, body) = c.call(Method::POST, start, Some(ADMIN), None).await;
    assert_eq!(status, 201, "{body}");
    let build = c.finished(body["id"].as_str().unwrap()).await;
    (token, build)
}

/// Every text a person or a dump could read about the build: API answers and pages.
async fn everything_shown(c: &Conveyor, build: &Value, logs: &Value) -> Vec<String> {
    let (id, run) = (
        build["id"].as_str().unwrap(),
        build["jobs"][0]["id"].as_str().unwrap(),
    );
    let (_, listed) = c
        .call(
            reqwest::Method::GET,
            "/api/v1/products/pub/secrets",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(listed["secrets"][0]["name"], "NPM_TOKEN");
    let mut seen = vec![logs.to_string(), build.to_string(), listed.to_string()];
    let pages = [
        format!("/jobs/{run}"),
        format!("/builds/{id}"),
        format!("/jobs/{run}/log.txt"),
        "/products/pub".into(),
    ];
    for page in pages {
        seen.push(c.text(&page).await);
    }
    for entry in std::fs::read_dir(&c.data).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("conveyor.db")
        {
            seen.push(String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned());
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_belt_publishes_with_a_secret_that_no_log_answer_page_output_or_database_shows() {
    let c = Conveyor::start().await;
    let out = c.data.with_file_name("published");
    let (token, build) = published(&c, &out).await;
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        token,
        "the job received the value"
    );
    let publish = &build["jobs"][0];
    assert_eq!(
        (publish["name"].as_str(), publish["status"].as_str()),
        (Some("publish"), Some("succeeded"))
    );
    assert_eq!(publish["outputs"]["PUBLISHED"], "yes");
    let run = publish["id"].as_str().unwrap();
    let (_, logs) = c
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/job-runs/{run}/logs"),
            None,
            None,
        )
        .await;
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    for expected in [
        "***",
        "split:***",
        "//registry.example/:_authToken=*** always-auth=true",
    ] {
        assert!(
            lines.contains(&expected),
            "no line `{expected}` in {lines:?}"
        );
    }
    let missing = &build["jobs"][1];
    assert_eq!(missing["status"], "failed", "{build}");
    assert_eq!(
        missing["error"],
        "secret `NOBODY_SET_THIS` is set neither for product `pub` nor globally: set it with \
         `conveyor secret set --product pub NOBODY_SET_THIS` (the value on stdin)"
    );
    for (i, text) in everything_shown(&c, &build, &logs).await.iter().enumerate() {
        assert!(!leaks(text, &token), "text {i} shows the secret: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_need_the_admin_token_a_good_name_and_a_maskable_value() {
    use reqwest::Method;
    let c = Conveyor::start().await;
    let put = |name: &str, value: &str, token: Option<&'static str>| {
        let (path, body) = (format!("/api/v1/secrets/{name}"), json!({ "value": value }));
        let c = &c;
        async move { c.call(Method::PUT, &path, token, Some(body)).await }
    };
    assert_eq!(put("GOOD", "long enough", None).await.0, 401);
    let (status, body) = put("1BAD", "long enough", Some(ADMIN)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some(
                "invalid secret name `1BAD`: use letters, digits and `_`, not starting with a digit or `CONVEYOR_`"
            )
        )
    );
    let (status, body) = put("SHORT", "abc", Some(ADMIN)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some("a secret needs at least 4 characters: a shorter one could not be masked in logs")
        )
    );
    assert_eq!(put("GOOD", "long enough", Some(ADMIN)).await.0, 204);
    let (status, listed) = c
        .call(Method::GET, "/api/v1/secrets", Some(ADMIN), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["secrets"][0]["name"], "GOOD");
    assert!(!listed.to_string().contains("long enough"), "{listed}");
    assert_eq!(
        c.call(Method::GET, "/api/v1/secrets", None, None).await.0,
        401
    );
    let (status, _) = c
        .call(
            Method::PUT,
            "/api/v1/products/nope/secrets/X_Y",
            Some(ADMIN),
            Some(json!({ "value": "1234" })),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        c.call(Method::DELETE, "/api/v1/secrets/GOOD", Some(ADMIN), None)
            .await
            .0,
        204
    );
    assert_eq!(
        c.call(Method::DELETE, "/api/v1/secrets/GOOD", Some(ADMIN), None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn an_orchestrator_without_a_secret_key_refuses_to_keep_secrets() {
    let queue = std::sync::Arc::new(conveyor_runner::queue::LocalQueue::new());
    let base = common::serve_router(queue, ADMIN, "runner-token-0123456789").await;
    let r = common::http()
        .put(format!("{base}/api/v1/secrets/TOKEN"))
        .bearer_auth(ADMIN)
        .json(&json!({ "value": "something" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"],
        "this orchestrator keeps no secrets: start it with --secret-key-file"
    );
}
