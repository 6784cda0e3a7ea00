//! `conveyor serve` as a child process for the benchmarks: on a free port, with fresh
//! tokens and queue prefix, its log in the benchmark's directory. Settings of `serve` given
//! in the environment (`CONVEYOR_DB_CONNECTIONS`, `CONVEYOR_SQLITE_CACHE_KIB`, …) reach it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

/// `conveyor serve` on the seeded database, as a child process.
pub struct Server {
    pub url: String,
    pub pid: u32,
    pub admin_token: String,
    pub runner_token: String,
    pub redis_url: String,
    pub queue_prefix: String,
    child: tokio::process::Child,
}

impl Server {
    pub async fn start(redis_url: &str, dir: &Path, database_url: &str) -> Result<Server, String> {
        let port = free_port()?;
        let (admin_token, runner_token) = (crate::store::token(), crate::store::token());
        let queue_prefix = format!("conveyor-bench-{}", uuid::Uuid::now_v7().simple());
        let log = std::fs::File::create(dir.join("serve.log")).map_err(|e| e.to_string())?;
        let child = tokio::process::Command::new(exe()?)
            .args([
                "serve",
                "--public-ui",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("CONVEYOR_DATABASE_URL", database_url)
            .env("CONVEYOR_REDIS_URL", redis_url)
            .env("CONVEYOR_ADMIN_TOKEN", &admin_token)
            .env("CONVEYOR_RUNNER_TOKEN", &runner_token)
            .env("CONVEYOR_QUEUE_PREFIX", &queue_prefix)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start conveyor serve: {e}"))?;
        let pid = child.id().ok_or("conveyor serve exited at once")?;
        let server = Server {
            url: format!("http://127.0.0.1:{port}"),
            pid,
            admin_token,
            runner_token,
            redis_url: redis_url.to_string(),
            queue_prefix,
            child,
        };
        server.ready(dir).await?;
        Ok(server)
    }

    /// Waits for `/health` (a minute at most: migrations run first).
    async fn ready(&self, dir: &Path) -> Result<(), String> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let r = http.get(format!("{}/health", self.url)).send().await;
            if r.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
        Err(format!(
            "conveyor serve did not answer within a minute:\n{log}"
        ))
    }

    /// SIGTERM, then a kill if it has not stopped in 5 s.
    pub async fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// A GET of the JSON API with the admin token.
    pub async fn get(&self, http: &reqwest::Client, path: &str) -> Result<Value, String> {
        let r = http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("GET {path}: {}", r.status()));
        }
        r.json().await.map_err(|e| format!("GET {path}: {e}"))
    }
}

/// This program, to start as `serve` and as the load generator.
pub fn exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}
