//! The runner's side of the protocol: HTTP calls to the orchestrator, failing over between
//! the servers it was given, or calls to an orchestrator in the runner's own process
//! ([`InProcess`]); `files` holds the calls that move artifacts and caches (always HTTP).

mod files;

pub use files::{Sent, hex};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conveyor_core::protocol::{
    ClaimRequest, Completion, CompletionReply, Heartbeat, HeartbeatReply, JobSpec, Lease, LogBatch,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::tls::{TlsError, Trust};

/// What a protocol call came to.
#[derive(Debug)]
pub enum Reply<T> {
    Ok(T),
    /// 409: the job run is not ours (taken, stale, or the lease is gone).
    Fenced,
}

/// Why a call got no [`Reply`]. Typed so callers decide by kind, never by wording: a
/// server's 4xx is final, a transport failure or a 5xx is worth another try.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A server answered with a status the protocol does not expect (anything but 2xx and
    /// 409). A 4xx is the last server's answer; a 5xx the last of the servers tried.
    #[error("{call}: {url} answered {status}")]
    Status {
        call: &'static str,
        url: String,
        status: u16,
    },
    /// No server could be reached (connection refused, timeout, reset).
    #[error("{call}: {url}: {detail}")]
    Transport {
        call: &'static str,
        url: String,
        detail: String,
    },
    /// A server's certificate was not trusted: asking again cannot help until it changes or
    /// the runner is given its CA (`--ca-cert`).
    #[error("{call}: {url}: {detail}")]
    Untrusted {
        call: &'static str,
        url: String,
        detail: String,
    },
    /// A server answered 2xx with a body that is not what the protocol promises.
    #[error("{call}: bad reply: {detail}")]
    BadReply { call: &'static str, detail: String },
    #[error("{call}: no orchestrator URL was given; pass --server")]
    NoServer { call: &'static str },
}

impl ClientError {
    /// The status a server answered with, when the error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the servers refused the request itself (4xx, but 429: too many requests,
    /// which asks to wait), or the runner refused the server's certificate: asking again
    /// cannot help.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ClientError::Untrusted { .. })
            || self
                .status()
                .is_some_and(|s| (400..500).contains(&s) && s != 429)
    }
}

pub struct Client {
    servers: Vec<String>,
    current: AtomicUsize,
    token: String,
    http: reqwest::Client,
    /// The orchestrator in this process, when there is one: the protocol's calls go to it
    /// directly (files still go over HTTP).
    local: Option<Arc<dyn InProcess>>,
}

/// An orchestrator in the runner's own process (`conveyor up`'s and `conveyor run`'s local
/// runners): the protocol's calls reach its router without TCP or HTTP/1's framing, through
/// the same routes, authentication and JSON as a remote runner's.
#[async_trait::async_trait]
pub trait InProcess: Send + Sync {
    /// POSTs the JSON `body` to `/api/v1/{path}` with the bearer `token`: the answer's
    /// status and body, or why there is none.
    async fn post(&self, path: &str, token: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), String>;
}

/// How long one protocol call may take before it counts as failed (and is tried again).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client the protocol's calls go through, trusting `trust`.
pub fn http(trust: &Trust) -> Result<reqwest::Client, TlsError> {
    trust
        .http()?
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(|e| TlsError::Setup(crate::tls::explain(&e)))
}

impl Client {
    /// A client trusting the system's roots only.
    pub fn new(servers: Vec<String>, token: String) -> Self {
        let http = http(&Trust::system()).unwrap_or_default();
        Self::with_http(servers, token, http)
    }

    /// A client whose calls go through `http` (see [`http`]).
    pub fn with_http(servers: Vec<String>, token: String, http: reqwest::Client) -> Self {
        Client {
            servers,
            current: AtomicUsize::new(0),
            token,
            http,
            local: None,
        }
    }

    /// This client with its protocol calls sent to `local` (see [`InProcess`]).
    pub fn in_process(mut self, local: Arc<dyn InProcess>) -> Self {
        self.local = Some(local);
        self
    }

    pub async fn claim(&self, req: &ClaimRequest) -> Result<Reply<JobSpec>, ClientError> {
        self.call("runner/claim", req).await
    }

    /// Renews the lease when it is due (see [`Heartbeat::when_due`]): count the deadline from
    /// the reply's `lease_ms_left`.
    pub async fn heartbeat(&self, lease: &Lease) -> Result<Reply<HeartbeatReply>, ClientError> {
        let hb = Heartbeat {
            lease: lease.clone(),
            when_due: true,
        };
        self.call("runner/heartbeat", &hb).await
    }

    pub async fn logs(&self, batch: &LogBatch) -> Result<Reply<()>, ClientError> {
        self.call("runner/logs", batch).await
    }

    /// Reports a job's end; a completion that asked to `take_next` may bring back the next
    /// job, claimed (`None`: a 204, nothing readied for this runner).
    pub async fn complete(
        &self,
        c: &Completion,
    ) -> Result<Reply<Option<CompletionReply>>, ClientError> {
        self.call("runner/complete", c).await
    }

    /// Hands a job run back unfinished (the runner is stopping and killed it): the
    /// orchestrator re-queues it as a lost attempt at once. `Fenced` means the lease was not
    /// ours anymore, so there is nothing left to hand back.
    pub async fn release(&self, lease: &Lease) -> Result<Reply<()>, ClientError> {
        self.call("runner/release", lease).await
    }

    /// Registers this runner with the fleet registration token; returns its own token.
    pub async fn register(&self, name: &str, fleets: &[String]) -> Result<String, ClientError> {
        const CALL: &str = "runners/register";
        let body = serde_json::json!({ "name": name, "fleets": fleets });
        match self.call::<_, serde_json::Value>(CALL, &body).await? {
            Reply::Ok(v) => {
                v["token"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ClientError::BadReply {
                        call: CALL,
                        detail: "the answer has no token".into(),
                    })
            }
            Reply::Fenced => Err(ClientError::Status {
                call: CALL,
                url: self.url(self.current.load(Ordering::Relaxed), CALL),
                status: 409,
            }),
        }
    }

    /// An idle runner's sign of life.
    pub async fn runner_heartbeat(&self) -> Result<(), ClientError> {
        self.call::<_, ()>("runners/heartbeat", &serde_json::Value::Null)
            .await
            .map(|_| ())
    }

    fn url(&self, at: usize, what: &str) -> String {
        let server = self.servers.get(at).map_or("", String::as_str);
        format!("{}/api/v1/{what}", server.trim_end_matches('/'))
    }

    /// Posts to each server in turn, starting with the last one that answered.
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &'static str,
        body: &B,
    ) -> Result<Reply<T>, ClientError> {
        if let Some(local) = &self.local {
            return self.call_in_process(local.as_ref(), what, body).await;
        }
        let sent = self
            .send(what, |http, url| Ok(http.post(url).json(body)))
            .await?;
        let resp = match sent {
            Reply::Ok(resp) => resp,
            Reply::Fenced => return Ok(Reply::Fenced),
        };
        let status = resp.status();
        if !status.is_success() {
            return Err(ClientError::Status {
                call: what,
                url: resp.url().to_string(),
                status: status.as_u16(),
            });
        }
        let bytes = resp.bytes().await.map_err(|e| ClientError::BadReply {
            call: what,
            detail: e.to_string(),
        })?;
        decode(what, status.as_u16(), &bytes)
    }

    /// [`Client::call`] to the orchestrator in this process.
    async fn call_in_process<B: Serialize, T: DeserializeOwned>(
        &self,
        local: &dyn InProcess,
        what: &'static str,
        body: &B,
    ) -> Result<Reply<T>, ClientError> {
        let url = format!("in-process:/api/v1/{what}");
        let transport = |detail: String| ClientError::Transport {
            call: what,
            url: url.clone(),
            detail,
        };
        let body = serde_json::to_vec(body).map_err(|e| transport(e.to_string()))?;
        // Bounded as an HTTP call is (see [`http`]).
        let post = local.post(what, &self.token, body);
        let (status, reply) = tokio::time::timeout(CALL_TIMEOUT, post)
            .await
            .map_err(|_| transport("timed out".into()))?
            .map_err(transport)?;
        match status {
            409 => Ok(Reply::Fenced),
            200..=299 => decode(what, status, &reply),
            _ => Err(ClientError::Status {
                call: what,
                url,
                status,
            }),
        }
    }

    /// Sends the request `build` makes for each server in turn (starting with the last one
    /// that answered) until one answers below 500: that answer (409 as [`Reply::Fenced`]).
    /// `what` is the path under `/api/v1/`, with its query.
    pub(crate) async fn send(
        &self,
        what: &'static str,
        build: impl Fn(&reqwest::Client, &str) -> Result<reqwest::RequestBuilder, String>,
    ) -> Result<Reply<reqwest::Response>, ClientError> {
        self.send_to(what, what, build).await
    }

    /// [`Client::send`] to `path` (under `/api/v1/`), naming the call `what` in errors.
    pub(crate) async fn send_to(
        &self,
        what: &'static str,
        path: &str,
        build: impl Fn(&reqwest::Client, &str) -> Result<reqwest::RequestBuilder, String>,
    ) -> Result<Reply<reqwest::Response>, ClientError> {
        let n = self.servers.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut last = ClientError::NoServer { call: what };
        for i in 0..n {
            let at = (start + i) % n;
            let url = self.url(at, path);
            let req = build(&self.http, &url).map_err(|detail| ClientError::Transport {
                call: what,
                url: url.clone(),
                detail,
            })?;
            let resp = match req.bearer_auth(&self.token).send().await {
                Ok(resp) => resp,
                Err(e) => {
                    let detail = crate::tls::explain(&e);
                    last = if crate::tls::is_untrusted(&e) {
                        ClientError::Untrusted {
                            call: what,
                            url,
                            detail,
                        }
                    } else {
                        ClientError::Transport {
                            call: what,
                            url,
                            detail,
                        }
                    };
                    continue;
                }
            };
            self.current.store(at, Ordering::Relaxed);
            let status = resp.status();
            if status == reqwest::StatusCode::CONFLICT {
                return Ok(Reply::Fenced);
            }
            // A refusal is the same on every server; a 5xx may be this server's alone.
            if !status.is_server_error() {
                return Ok(Reply::Ok(resp));
            }
            last = ClientError::Status {
                call: what,
                url,
                status: status.as_u16(),
            };
        }
        Err(last)
    }
}

/// Decodes a 2xx's body; a 204 stands for `null`, so calls answered without a body read `()`.
fn decode<T: DeserializeOwned>(
    what: &'static str,
    status: u16,
    body: &[u8],
) -> Result<Reply<T>, ClientError> {
    let bad = |detail: String| ClientError::BadReply { call: what, detail };
    if status == 204 {
        return serde_json::from_value(serde_json::Value::Null)
            .map(Reply::Ok)
            .map_err(|e| bad(format!("expected a body: {e}")));
    }
    serde_json::from_slice(body)
        .map(Reply::Ok)
        .map_err(|e| bad(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every request with `status` and closes.
    async fn answering(status: u16) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        });
        url
    }

    /// A URL nothing listens on.
    async fn closed() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    #[tokio::test]
    async fn a_refusal_carries_its_status_and_is_not_worth_retrying() {
        let client = Client::new(vec![answering(401).await], "t".into());
        let err = client.register("r", &["default".into()]).await.unwrap_err();
        assert_eq!(err.status(), Some(401));
        assert!(err.is_refusal(), "{err}");
    }

    #[tokio::test]
    async fn a_server_error_a_429_or_no_server_is_worth_retrying() {
        let client = Client::new(vec![answering(429).await], "t".into());
        let err = client.register("r", &["default".into()]).await.unwrap_err();
        assert_eq!(err.status(), Some(429));
        assert!(!err.is_refusal());
        let client = Client::new(vec![answering(503).await], "t".into());
        let err = client.register("r", &["default".into()]).await.unwrap_err();
        assert_eq!(err.status(), Some(503));
        assert!(!err.is_refusal());
        let client = Client::new(vec![closed().await], "t".into());
        let err = client.register("r", &["default".into()]).await.unwrap_err();
        assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
        assert!(!err.is_refusal());
    }

    /// An orchestrator in this process that answers every call alike, and records them.
    struct Answering(
        u16,
        &'static str,
        std::sync::Mutex<Vec<(String, String, String)>>,
    );

    #[async_trait::async_trait]
    impl InProcess for Answering {
        async fn post(
            &self,
            path: &str,
            token: &str,
            body: Vec<u8>,
        ) -> Result<(u16, Vec<u8>), String> {
            let body = String::from_utf8(body).unwrap();
            self.2
                .lock()
                .unwrap()
                .push((path.into(), token.into(), body));
            match self.0 {
                0 => Err("gone".into()),
                status => Ok((status, self.1.as_bytes().to_vec())),
            }
        }
    }

    fn in_process(status: u16, body: &'static str) -> (Client, Arc<Answering>) {
        let local = Arc::new(Answering(status, body, Default::default()));
        // No server listens there: every call must go in process.
        let client = Client::new(vec!["http://127.0.0.1:9".into()], "tok".into());
        (client.in_process(local.clone()), local)
    }

    #[tokio::test]
    async fn calls_in_process_carry_the_token_and_json_and_read_answers_as_over_http() {
        let lease = Lease {
            job_run_id: "j".into(),
            attempt: 1,
            lease_token: "l".into(),
        };
        let (client, local) = in_process(204, "");
        assert!(matches!(client.release(&lease).await, Ok(Reply::Ok(()))));
        let (path, token, body) = local.2.lock().unwrap()[0].clone();
        assert_eq!((path.as_str(), token.as_str()), ("runner/release", "tok"));
        assert_eq!(body, serde_json::to_string(&lease).unwrap());
        let (client, _) = in_process(409, "");
        assert!(matches!(client.release(&lease).await, Ok(Reply::Fenced)));
        let (client, _) = in_process(200, r#"{"token":"own"}"#);
        assert_eq!(client.register("r", &[]).await.unwrap(), "own");
        let (client, _) = in_process(200, "not json");
        let err = client.register("r", &[]).await.unwrap_err();
        assert!(matches!(err, ClientError::BadReply { .. }), "{err:?}");
        let (client, _) = in_process(401, "");
        let err = client.register("r", &[]).await.unwrap_err();
        assert!(err.is_refusal() && err.status() == Some(401), "{err:?}");
        let (client, _) = in_process(0, "");
        let err = client.release(&lease).await.unwrap_err();
        assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_release_answered_409_is_fenced_and_204_is_done() {
        let lease = Lease {
            job_run_id: "j".into(),
            attempt: 1,
            lease_token: "l".into(),
        };
        let fenced = Client::new(vec![answering(409).await], "t".into());
        assert!(matches!(fenced.release(&lease).await, Ok(Reply::Fenced)));
        let done = Client::new(vec![closed().await, answering(204).await], "t".into());
        assert!(matches!(done.release(&lease).await, Ok(Reply::Ok(()))));
    }
}
