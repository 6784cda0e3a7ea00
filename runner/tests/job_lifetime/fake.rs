//! A fake orchestrator: the runner protocol over plain HTTP/1.1 on a random port, with the
//! jobs a test hands it and a record of every claim, completion and release.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conveyor_core::protocol::{ClaimRequest, Completion, JobSpec, Lease, LogBatch};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the fake has seen; tests wait on it with [`Fake::until`].
#[derive(Default, Debug, Clone)]
pub struct Seen {
    pub claims: Vec<String>,
    pub completions: Vec<Completion>,
    pub releases: Vec<Lease>,
    pub log_lines: Vec<String>,
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, JobSpec>,
    /// The job run a completion asking to take the next job gets back, by the job run
    /// completed.
    follows: HashMap<String, JobSpec>,
    claimed: Vec<String>,
    seen: Seen,
}

#[derive(Clone)]
pub struct Fake {
    pub url: String,
    state: Arc<Mutex<State>>,
    changed: watch::Sender<u64>,
    /// While true, answers to completions wait (each is recorded on arrival).
    hold: watch::Sender<bool>,
}

impl Fake {
    pub async fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let fake = Fake {
            url,
            state: Arc::default(),
            changed: watch::Sender::new(0),
            hold: watch::Sender::new(false),
        };
        let server = fake.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(server.clone().serve(conn));
            }
        });
        fake
    }

    /// Makes a job run claimable: `id` at attempt 1, with this script.
    pub fn add_job(&self, id: &str, script: &str) {
        let spec = super::spec(id, script);
        self.state().jobs.insert(id.to_string(), spec);
    }

    /// A job run (at attempt 1, with this script) that a completion of `after` asking to
    /// take the next job gets back, claimed.
    pub fn add_next(&self, after: &str, id: &str, script: &str) {
        let spec = super::spec(id, script);
        self.state().follows.insert(after.to_string(), spec);
    }

    /// Holds the answers to completions (`true`) until released (`false`).
    pub fn hold_completions(&self, hold: bool) {
        self.hold.send_replace(hold);
    }

    pub fn seen(&self) -> Seen {
        self.state().seen.clone()
    }

    /// Waits until `cond` holds for what the fake has seen; fails after `within`.
    pub async fn until(&self, what: &str, within: Duration, cond: impl Fn(&Seen) -> bool) -> Seen {
        let mut rx = self.changed.subscribe();
        let wait = rx.wait_for(|_| cond(&self.state().seen));
        match tokio::time::timeout(within, wait).await {
            Ok(_) => self.seen(),
            Err(_) => panic!("{what}: not within {within:?}; seen {:?}", self.seen()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn serve(self, conn: TcpStream) {
        let mut conn = BufReader::new(conn);
        while let Some((path, body)) = read_request(&mut conn).await {
            let (status, reply) = self.answer(&path, body);
            self.changed.send_modify(|n| *n += 1);
            if path == "/api/v1/runner/complete" {
                let _ = self.hold.subscribe().wait_for(|held| !held).await;
            }
            let text = reply.map(|v| v.to_string()).unwrap_or_default();
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                text.len()
            );
            let out = conn.get_mut();
            if out.write_all(head.as_bytes()).await.is_err()
                || out.write_all(text.as_bytes()).await.is_err()
            {
                return;
            }
        }
    }

    fn answer(&self, path: &str, body: Value) -> (u16, Option<Value>) {
        let mut state = self.state();
        match path {
            "/api/v1/runners/register" => (201, Some(json!({ "token": "runner-token" }))),
            "/api/v1/runners/heartbeat" | "/api/v1/runner/logs" => {
                if let Ok(batch) = serde_json::from_value::<LogBatch>(body) {
                    let lines = batch.lines.into_iter().map(|l| l.text);
                    state.seen.log_lines.extend(lines);
                }
                (204, None)
            }
            "/api/v1/runner/claim" => {
                let Ok(req) = serde_json::from_value::<ClaimRequest>(body) else {
                    return (400, None);
                };
                state.seen.claims.push(req.job_run_id.clone());
                if state.claimed.contains(&req.job_run_id) {
                    return (409, None);
                }
                let Some(spec) = state.jobs.get(&req.job_run_id).cloned() else {
                    return (409, None);
                };
                state.claimed.push(req.job_run_id);
                (200, serde_json::to_value(spec).ok())
            }
            "/api/v1/runner/heartbeat" => (200, Some(json!({ "cancel": false }))),
            "/api/v1/runner/complete" => match serde_json::from_value::<Completion>(body) {
                Ok(c) if c.take_next => {
                    let next = state.follows.remove(&c.lease.job_run_id);
                    state.seen.completions.push(c);
                    (200, Some(json!({ "next": next })))
                }
                Ok(c) => {
                    state.seen.completions.push(c);
                    (204, None)
                }
                Err(_) => (400, None),
            },
            "/api/v1/runner/release" => match serde_json::from_value(body) {
                Ok(lease) => {
                    state.seen.releases.push(lease);
                    (204, None)
                }
                Err(_) => (400, None),
            },
            _ => (404, None),
        }
    }
}

/// One request: its path and JSON body; `None` when the connection ends.
async fn read_request(conn: &mut BufReader<TcpStream>) -> Option<(String, Value)> {
    let mut line = String::new();
    if conn.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let path = line.split(' ').nth(1)?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        conn.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).await.ok()?;
    Some((path, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}
