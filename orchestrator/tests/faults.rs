//! Exactly once under faults, with real processes: `conveyor serve` nodes on Postgres,
//! `conveyor-runner`s on Redis, then kill -9, duplicate messages, and restarts. Jobs append a
//! line to a file when they finish, so the test counts executions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "admin-token";
const RUNNER: &str = "runner-token";

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
        (proc, url)
    }

    fn runner(&self, name: &str, servers: &[&str]) -> Proc {
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
        let mut last = Value::Null;
        let deadline = Instant::now() + Duration::from_secs(60);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_runner_is_killed_finishes_exactly_once_elsewhere() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::new("redis://127.0.0.1:6379").await;
    let (_serve, url) = c.serve().await;
    c.product(&url, &slow_job("p", &c.count(), 3)).await;
    let mut doomed = c.runner("doomed", &[&url]);
    let id = c.build(&url, "p", "b").await;
    c.until("the job runs", || async {
        c.get_build(&url, &id)
            .await
            .is_some_and(|b| job(&b, "work")["status"] == "running")
    })
    .await;
    doomed.0.kill().unwrap();
    let _ = doomed.0.wait();
    let _survivor = c.runner("survivor", &[&url]);
    let b = c.finished(&url, &id).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(
        job(&b, "work")["attempts"],
        2,
        "the lost attempt was re-queued once"
    );
    tokio::time::sleep(Duration::from_secs(1)).await; // anything still running of the dead runner would write now
    assert_eq!(lines(&c.count()), 1, "the job finished exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_queue_message_runs_the_job_once() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::new("redis://127.0.0.1:6379").await;
    let (_serve, url) = c.serve().await;
    c.product(&url, &slow_job("p", &c.count(), 1)).await;
    let id = c.build(&url, "p", "b").await;
    let b = c.get_build(&url, &id).await.unwrap();
    let msg = conveyor_core::protocol::QueueMessage {
        job_run_id: job(&b, "work")["id"].as_str().unwrap().into(),
        attempt: 1,
    };
    use conveyor_runner::queue::Queue;
    let queue = conveyor_runner::queue::RedisQueue::connect(&c.redis, &c.prefix)
        .await
        .unwrap();
    for _ in 0..3 {
        queue.push("default", &msg).await.unwrap();
    }
    let (_r1, _r2) = (c.runner("one", &[&url]), c.runner("two", &[&url]));
    let b = c.finished(&url, &id).await;
    assert_eq!(
        (b["status"].as_str(), job(&b, "work")["attempts"].as_u64()),
        (Some("succeeded"), Some(1))
    );
    assert_eq!(lines(&c.count()), 1, "four messages, one execution");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_completes_when_one_of_two_orchestrators_is_killed() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::new("redis://127.0.0.1:6379").await;
    let (mut first, a) = c.serve().await;
    let (_second, b_url) = c.serve().await;
    let chain = format!(
        "product: chain\nbelts:\n  - name: b\n    jobs:\n      - name: one\n        env: {{COUNT: '{n}'}}\n        commands: sleep 1; echo one >> \"$COUNT\"; V=1\n        outputs: [V]\n      - name: two\n        env: {{COUNT: '{n}'}}\n        commands: sleep 1; echo two ${{one.V}} >> \"$COUNT\"\n      - name: three\n        needs: [two]\n        env: {{COUNT: '{n}'}}\n        commands: echo three >> \"$COUNT\"\n",
        n = c.count().display()
    );
    c.product(&a, &chain).await;
    let _runner = c.runner("r", &[&a, &b_url]);
    let id = c.build(&a, "chain", "b").await;
    c.until("the first job runs", || async {
        c.get_build(&a, &id)
            .await
            .is_some_and(|b| job(&b, "one")["status"] == "running")
    })
    .await;
    first.0.kill().unwrap();
    let _ = first.0.wait();
    let b = c.finished(&b_url, &id).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(
        std::fs::read_to_string(c.count()).unwrap(),
        "one\ntwo 1\nthree\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_work_resumes_after_redis_restarts_empty() {
    let _serial = SERIAL.lock().await;
    let port = common::free_port();
    let start_redis = || Proc(common::start_redis(port));
    let mut redis = start_redis();
    let c = Cluster::new(&format!("redis://127.0.0.1:{port}")).await;
    let (_serve, url) = c.serve().await;
    let three = format!(
        "product: p\nbelts:\n  - name: b\n    jobs:\n{}",
        ["a", "b", "c"].map(|j| format!("      - name: {j}\n        env: {{COUNT: '{}'}}\n        commands: echo {j} >> \"$COUNT\"\n", c.count().display())).concat()
    );
    c.product(&url, &three).await;
    let id = c.build(&url, "p", "b").await;
    redis.0.kill().unwrap();
    let _ = redis.0.wait();
    let _redis = start_redis();
    let _runner = c.runner("r", &[&url]);
    let b = c.finished(&url, &id).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    let mut got: Vec<String> = std::fs::read_to_string(c.count())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    got.sort();
    assert_eq!(got, ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_reconnects_after_postgres_restarts_and_nothing_is_lost() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::new("redis://127.0.0.1:6379").await;
    let (_serve, url) = c.serve().await;
    c.product(&url, &slow_job("p", &c.count(), 4)).await;
    let _runner = c.runner("r", &[&url]);
    let id = c.build(&url, "p", "b").await;
    c.until("the job runs", || async {
        c.get_build(&url, &id)
            .await
            .is_some_and(|b| job(&b, "work")["status"] == "running")
    })
    .await;
    let cluster = std::fs::read_dir("/etc/postgresql")
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let status = Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            &cluster.to_string_lossy(),
            "main",
            "restart",
        ])
        .status()
        .expect("pg_ctlcluster");
    assert!(status.success());
    let b = c.finished(&url, &id).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(lines(&c.count()), 1);
}
