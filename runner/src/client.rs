//! The runner's side of the protocol: HTTP calls to the orchestrator, failing over between
//! the servers it was given.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conveyor_core::protocol::{ClaimRequest, Completion, HeartbeatReply, JobSpec, Lease, LogBatch};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a protocol call came to.
#[derive(Debug)]
pub enum Reply<T> {
    Ok(T),
    /// 409: the job run is not ours (taken, stale, or the lease is gone).
    Fenced,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

pub struct Client {
    servers: Vec<String>,
    current: AtomicUsize,
    token: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(servers: Vec<String>, token: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Client {
            servers,
            current: AtomicUsize::new(0),
            token,
            http,
        }
    }

    pub async fn claim(&self, req: &ClaimRequest) -> Result<Reply<JobSpec>, ClientError> {
        self.call("runner/claim", req).await
    }

    pub async fn heartbeat(&self, lease: &Lease) -> Result<Reply<HeartbeatReply>, ClientError> {
        self.call("runner/heartbeat", lease).await
    }

    pub async fn logs(&self, batch: &LogBatch) -> Result<Reply<()>, ClientError> {
        self.call("runner/logs", batch).await
    }

    pub async fn complete(&self, c: &Completion) -> Result<Reply<()>, ClientError> {
        self.call("runner/complete", c).await
    }

    /// Registers this runner with the fleet registration token; returns its own token.
    pub async fn register(&self, name: &str, fleets: &[String]) -> Result<String, ClientError> {
        let body = serde_json::json!({ "name": name, "fleets": fleets });
        match self
            .call::<_, serde_json::Value>("runners/register", &body)
            .await?
        {
            Reply::Ok(v) => v["token"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ClientError("register: the answer has no token".into())),
            Reply::Fenced => Err(ClientError("register: refused".into())),
        }
    }

    /// An idle runner's sign of life.
    pub async fn runner_heartbeat(&self) -> Result<(), ClientError> {
        self.call::<_, ()>("runners/heartbeat", &serde_json::Value::Null)
            .await
            .map(|_| ())
    }

    /// Posts to each server in turn, starting with the last one that answered.
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &str,
        body: &B,
    ) -> Result<Reply<T>, ClientError> {
        let n = self.servers.len().max(1);
        let start = self.current.load(Ordering::Relaxed);
        let mut last = String::from("no server given");
        for i in 0..n {
            let at = (start + i) % n;
            let Some(server) = self.servers.get(at) else {
                break;
            };
            let url = format!("{}/api/v1/{what}", server.trim_end_matches('/'));
            match self
                .http
                .post(&url)
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await
            {
                Ok(resp) => {
                    self.current.store(at, Ordering::Relaxed);
                    let status = resp.status();
                    if status == reqwest::StatusCode::CONFLICT {
                        return Ok(Reply::Fenced);
                    }
                    if status == reqwest::StatusCode::NO_CONTENT {
                        return serde_json::from_value(serde_json::Value::Null)
                            .map(Reply::Ok)
                            .map_err(|e| ClientError(format!("{what}: expected a body: {e}")));
                    }
                    if status.is_success() {
                        return resp
                            .json()
                            .await
                            .map(Reply::Ok)
                            .map_err(|e| ClientError(format!("{what}: bad reply: {e}")));
                    }
                    last = format!("{what}: {url} answered {status}");
                    if status.is_client_error() {
                        return Err(ClientError(last));
                    }
                }
                Err(e) => last = format!("{what}: {url}: {e}"),
            }
        }
        Err(ClientError(last))
    }
}

/// Tells the orchestrators a runner is alive, every 20 s: the only request an idle runner
/// makes besides its blocking read of the queue.
pub async fn beat(client: std::sync::Arc<Client>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(20));
    loop {
        every.tick().await;
        if let Err(e) = client.runner_heartbeat().await {
            tracing::warn!("runner heartbeat failed: {e}");
        }
    }
}
