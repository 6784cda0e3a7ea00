//! The file calls of the protocol: artifacts and cache archives streamed to and from the
//! orchestrator under a job's lease (never straight to storage: runners hold no storage
//! credentials), each checked against its SHA-256.

use std::path::Path;
use std::time::Duration;

use conveyor_core::protocol::{CacheHit, CacheLookup, LEASE_HEADERS, Lease, SHA256_HEADER};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{Client, ClientError, Reply};

/// How long one file may take to move, whatever its size.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(3600);

/// What an upload came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Stored (201).
    Stored,
    /// The orchestrator had it already (204).
    Had,
    /// Refused, with the orchestrator's reason (a 4xx other than 409).
    Refused(String),
}

fn with_lease(req: reqwest::RequestBuilder, lease: &Lease) -> reqwest::RequestBuilder {
    let [run, attempt, token] = LEASE_HEADERS;
    req.header(run, &lease.job_run_id)
        .header(attempt, lease.attempt.to_string())
        .header(token, &lease.lease_token)
        .timeout(TRANSFER_TIMEOUT)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// Uploads `file` as the artifact `path` of the job run `lease` holds.
    pub async fn upload_artifact(
        &self,
        lease: &Lease,
        path: &str,
        file: &Path,
        sha256: &str,
    ) -> Result<Reply<Sent>, ClientError> {
        let target = format!("runner/artifacts?path={}", escape(path));
        self.upload("runner/artifacts", &target, lease, file, sha256)
            .await
    }

    /// Uploads a cache archive under `name` and `key`.
    pub async fn upload_cache(
        &self,
        lease: &Lease,
        (name, key): (&str, &str),
        file: &Path,
        sha256: &str,
    ) -> Result<Reply<Sent>, ClientError> {
        let target = format!("runner/caches?name={}&key={}", escape(name), escape(key));
        self.upload("runner/caches", &target, lease, file, sha256)
            .await
    }

    async fn upload(
        &self,
        what: &'static str,
        target: &str,
        lease: &Lease,
        file: &Path,
        sha256: &str,
    ) -> Result<Reply<Sent>, ClientError> {
        let build = |http: &reqwest::Client, url: &str| {
            let f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let len = f.metadata().map_err(|e| e.to_string())?.len();
            let file = tokio::fs::File::from_std(f);
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
            let req = http
                .put(url)
                .header(SHA256_HEADER, sha256)
                .header(reqwest::header::CONTENT_LENGTH, len)
                .body(reqwest::Body::wrap_stream(stream));
            Ok(with_lease(req, lease))
        };
        let resp = match self.send_to(what, target, build).await? {
            Reply::Ok(resp) => resp,
            Reply::Fenced => return Ok(Reply::Fenced),
        };
        let status = resp.status();
        Ok(Reply::Ok(match status.as_u16() {
            201 | 200 => Sent::Stored,
            204 => Sent::Had,
            _ => {
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                let reason = body["error"].as_str().unwrap_or("refused").to_string();
                Sent::Refused(format!("{reason} ({status})"))
            }
        }))
    }

    /// Downloads an artifact into `dest`; its size and SHA-256.
    pub async fn download_artifact(
        &self,
        lease: &Lease,
        id: &str,
        dest: &Path,
    ) -> Result<Reply<(u64, String)>, ClientError> {
        let path = format!("runner/artifacts/{}", escape(id));
        self.download("runner/artifacts", &path, lease, dest).await
    }

    /// Downloads a cache archive into `dest`; its size and SHA-256.
    pub async fn download_cache(
        &self,
        lease: &Lease,
        id: &str,
        dest: &Path,
    ) -> Result<Reply<(u64, String)>, ClientError> {
        let path = format!("runner/caches/{}", escape(id));
        self.download("runner/caches", &path, lease, dest).await
    }

    async fn download(
        &self,
        what: &'static str,
        path: &str,
        lease: &Lease,
        dest: &Path,
    ) -> Result<Reply<(u64, String)>, ClientError> {
        let build = |http: &reqwest::Client, url: &str| Ok(with_lease(http.get(url), lease));
        let resp = match self.send_to(what, path, build).await? {
            Reply::Ok(resp) => resp,
            Reply::Fenced => return Ok(Reply::Fenced),
        };
        let url = resp.url().to_string();
        if !resp.status().is_success() {
            return Err(ClientError::Status {
                call: what,
                url,
                status: resp.status().as_u16(),
            });
        }
        let broke = |detail: String| ClientError::Transport {
            call: what,
            url: url.clone(),
            detail,
        };
        let mut out = tokio::fs::File::create(dest)
            .await
            .map_err(|e| broke(format!("{}: {e}", dest.display())))?;
        let (mut size, mut hasher) = (0u64, Sha256::new());
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| broke(crate::tls::explain(&e)))?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| broke(format!("{}: {e}", dest.display())))?;
        }
        out.flush().await.map_err(|e| broke(e.to_string()))?;
        Ok(Reply::Ok((size, hex(&hasher.finalize()))))
    }

    /// The cache the job should restore, if the orchestrator has one.
    pub async fn find_cache(
        &self,
        q: &CacheLookup,
    ) -> Result<Reply<Option<CacheHit>>, ClientError> {
        self.call("runner/caches/lookup", q).await
    }
}
