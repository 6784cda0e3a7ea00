//! Exactly once under faults, with real processes: `conveyor serve` nodes on Postgres,
//! `conveyor-runner`s on Redis, then kill -9, duplicate messages, and restarts
//! (`scenarios.rs`), and a randomized soak of short jobs under kills at arbitrary moments
//! (`soak.rs`), and a million-line log read every way with flat memory (`big_log.rs`).
//! Jobs append a line to a file when they finish, so the tests count executions; `files.rs` kills a runner whose job hands on artifacts stored in S3. Services a test restarts are its own (a private Redis, a private Postgres
//! from `pg.rs`), never the shared ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod big_log;
#[path = "../common/mod.rs"]
mod common;
mod files;
mod pg;
mod redis_ha;
mod scenarios;
mod schedules;
mod soak;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "faults-admin-token";
const RUNNER: &str = "faults-runner-token";

/// The fault tests restart shared services; they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

use common::{Proc, bin};

struct Cluster {
    db: String,
    redis: String,
    prefix: String,
    dir: PathBuf,
    http: reqwest::Client,
}

impl Cluster {
    async fn new(redis: &str) -> Cluster {
        Cluster {
            db: common::fresh_pg_url().await,
            redis: redis.to_string(),
            prefix: format!("conveyor-fault-{}", uuid::Uuid::now_v7().simple()),
            dir: common::temp_dir("faults"),
            http: common::http(),
        }
    }

    /// Starts an orchestrator with a 2 s lease; returns it and its URL once it answers.
    async fn serve(&self) -> (Proc, String) {
        let port = common::free_port();
        let proc = self.serve_on(port).await;
        (proc, format!("http://127.0.0.1:{port}"))
    }

    /// Starts an orchestrator with a 2 s lease on `port`, once it answers.
    async fn serve_on(&self, port: u16) -> Proc {
        self.serve_with(port, &[], &[]).await
    }

    /// [`Cluster::serve_on`] with more arguments and environment variables.
    async fn serve_with(&self, port: u16, more: &[&str], env: &[(String, String)]) -> Proc {
        let log = std::fs::File::create(self.dir.join(format!("serve-{port}.log"))).unwrap();
        let child = Command::new(bin("conveyor"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                &self.db,
            ])
            .args([
                "--redis-url",
                &self.redis,
                "--admin-token",
                ADMIN,
                "--runner-token",
                RUNNER,
            ])
            .args(["--queue-prefix", &self.prefix, "--lease-secs", "2"])
            .args(more)
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let proc = Proc(child);
        self.until("the orchestrator answers", || async {
            self.http.get(format!("{url}/health")).send().await.is_ok()
        })
        .await;
        proc
    }

    fn runner(&self, name: &str, servers: &[&str]) -> Proc {
        self.runner_on(name, servers, "default")
    }

    /// A runner of `fleet`, in a work directory of its own.
    fn runner_on(&self, name: &str, servers: &[&str], fleet: &str) -> Proc {
        let log = std::fs::File::create(self.dir.join(format!("runner-{name}.log"))).unwrap();
        let mut cmd = Command::new(bin("conveyor-runner"));
        for s in servers {
            cmd.args(["--server", s]);
        }
        let child = cmd
            .args([
                "--redis-url",
                &self.redis,
                "--token",
                RUNNER,
                "--name",
                name,
                "--queue-prefix",
                &self.prefix,
                "--fleet",
                fleet,
            ])
            .arg("--work-dir")
            .arg(self.dir.join(format!("work-{name}")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Proc(child)
    }

    /// Registers a product whose jobs append to `count` when they finish.
    async fn product(&self, url: &str, yaml: &str) {
        let resp = self
            .http
            .post(format!("{url}/api/v1/products"))
            .bearer_auth(ADMIN)
            .json(&json!({ "yaml": yaml }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }

    async fn build(&self, url: &str, product: &str, belt: &str) -> String {
        let resp = self
            .http
            .post(format!(
                "{url}/api/v1/products/{product}/belts/{belt}/builds"
            ))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn get_build(&self, url: &str, id: &str) -> Option<Value> {
        self.http
            .get(format!("{url}/api/v1/builds/{id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// Waits for the build to finish and returns it.
    async fn finished(&self, url: &str, id: &str) -> Value {
        self.finished_within(url, id, Duration::from_secs(60)).await
    }

    async fn finished_within(&self, url: &str, id: &str, limit: Duration) -> Value {
        let mut last = Value::Null;
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(b) = self.get_build(url, id).await {
                if b["status"] != "running" {
                    return b;
                }
                last = b;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "build did not finish: {last}\nlogs in {}",
            self.dir.display()
        );
    }

    async fn until<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !check().await {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}; logs in {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn count(&self) -> PathBuf {
        self.dir.join("count")
    }
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn job<'a>(build: &'a Value, name: &str) -> &'a Value {
    build["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap()
}

/// One job that works for `secs` seconds and then records that it finished.
fn slow_job(product: &str, count: &Path, secs: u32) -> String {
    format!(
        "product: {product}\nbelts:\n  - name: b\n    jobs:\n      - name: work\n        env: {{COUNT: '{}'}}\n        commands: |\n          sleep {secs}\n          echo \"$CONVEYOR_JOB_RUN_ID $CONVEYOR_ATTEMPT\" >> \"$COUNT\"\n",
        count.display()
    )
}

/// Milliseconds since the Unix epoch, the clock jobs' `date +%s%3N` reads too.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
