//! How the client commands reach an orchestrator: its URL and token (`--server`,
//! `--token`, trusting `--ca-cert`), and JSON requests that turn HTTP errors into what the
//! server said.

use std::path::PathBuf;
use std::time::Duration;

use conveyor_runner::tls::{Trust, explain};
use serde_json::Value;

/// Where the API client commands send their requests.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The orchestrator's URL.
    #[arg(long, env = "CONVEYOR_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The admin token (needed to start builds, and to read from a server without
    /// `--public-ui`).
    #[arg(long, env = "CONVEYOR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A PEM file of CA certificates to trust besides the system's (SSL_CERT_FILE and
    /// SSL_CERT_DIR, when set, name the system's), for an `https://` server.
    #[arg(long, env = "CONVEYOR_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

impl ApiArgs {
    pub(super) fn client(self) -> Result<Api, String> {
        let trust = Trust::with_ca_file(self.ca_cert.as_deref()).map_err(|e| e.to_string())?;
        let http = trust
            .http()
            .map_err(|e| e.to_string())?
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| explain(&e))?;
        Ok(Api::with_http(self.server, self.token, http))
    }
}

pub struct Api {
    pub server: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// A client of `server` whose requests go through `http`.
    pub fn with_http(server: String, token: Option<String>, http: reqwest::Client) -> Api {
        Api {
            server: server.trim_end_matches('/').to_string(),
            token,
            http,
        }
    }

    pub(super) async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, String> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {}", self.server, explain(&e)))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let error = body["error"].as_str().unwrap_or("request failed");
        let mut msg = format!("{error} ({status})");
        for e in body["errors"].as_array().into_iter().flatten() {
            msg.push_str(&format!("\n{}", e.as_str().unwrap_or_default()));
        }
        Err(msg)
    }

    pub(super) async fn get(&self, path: &str) -> Result<Value, String> {
        self.send(self.http.get(format!("{}{path}", self.server)))
            .await
    }

    /// Streams `path`'s body into `dest` (its directories made); its size and SHA-256.
    pub async fn download(
        &self,
        path: &str,
        dest: &std::path::Path,
    ) -> Result<(u64, String), String> {
        use futures_util::StreamExt;
        use sha2::Digest;
        use tokio::io::AsyncWriteExt;
        let mut req = self
            .http
            .get(format!("{}{path}", self.server))
            .timeout(Duration::from_secs(3600));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {}", self.server, explain(&e)))?;
        if !resp.status().is_success() {
            return Err(format!("{path}: {}", resp.status()));
        }
        let shown = dest.display().to_string();
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| format!("{shown}: {e}"))?;
        }
        let mut out = tokio::fs::File::create(dest)
            .await
            .map_err(|e| format!("{shown}: {e}"))?;
        let (mut size, mut hasher) = (0u64, sha2::Sha256::new());
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("{path}: {}", explain(&e)))?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| format!("{shown}: {e}"))?;
        }
        out.flush().await.map_err(|e| format!("{shown}: {e}"))?;
        Ok((size, conveyor_runner::client::hex(&hasher.finalize())))
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.send(self.http.post(format!("{}{path}", self.server)).json(&body))
            .await
    }

    /// A request to `path` of the server, for the commands that need other methods.
    pub(super) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.server))
    }
}

/// Who a build started or a decision made on this machine is recorded as: `$USER`.
pub fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "cli".into())
}
