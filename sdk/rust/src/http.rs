//! The SDK's HTTP: one reqwest client over rustls with the ring provider, trusting the
//! system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` name others) and `CONVEYOR_CA_CERT`'s
//! certificates when set; JSON in and out, every failure an [`Error`], never a panic.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What went wrong talking to the orchestrator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No server or token was given, nor found in the environment.
    #[error("{0}")]
    Config(String),
    /// The orchestrator could not be reached, or its answer could not be read.
    #[error("cannot reach the orchestrator at {url}: {reason}")]
    Transport { url: String, reason: String },
    /// The orchestrator answered with an error status; `message` is its `error`.
    #[error("{status} from {url}: {message}")]
    Status {
        status: u16,
        url: String,
        message: String,
        /// The field a 422 names, if any.
        field: Option<String>,
    },
}

impl Error {
    /// The HTTP status, for an answer with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A client for one orchestrator with one bearer token.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
    pub(crate) server: String,
    token: String,
}

fn tls_config() -> Result<rustls::ClientConfig> {
    let setup = |reason: String| Error::Config(format!("cannot set up TLS: {reason}"));
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if let Ok(path) = std::env::var("CONVEYOR_CA_CERT") {
        let pem = std::fs::read(&path).map_err(|e| setup(format!("{path}: {e}")))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| setup(format!("{path}: {e}")))?;
            roots.add(cert).map_err(|e| setup(format!("{path}: {e}")))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Http {
    pub(crate) fn new(server: &str, token: &str) -> Result<Http> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Config(format!("cannot build an HTTP client: {e}")))?;
        Ok(Http {
            client,
            server: server.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// The same server with another token.
    pub(crate) fn with_token(&self, token: &str) -> Http {
        Http {
            token: token.to_string(),
            ..self.clone()
        }
    }

    /// Sends a request; the status and the body's bytes. `timeout` bounds the whole call.
    pub(crate) async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let url = format!("{}{path}", self.server);
        let transport = |e: reqwest::Error| Error::Transport {
            url: url.clone(),
            reason: e.to_string(),
        };
        let mut req = self
            .client
            .request(method, &url)
            .bearer_auth(&self.token)
            .timeout(timeout);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(transport)?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(transport)?;
        if status.is_client_error() || status.is_server_error() {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let text = |k: &str| v.get(k).and_then(|m| m.as_str()).map(str::to_string);
            return Err(Error::Status {
                status: status.as_u16(),
                url,
                message: text("error")
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
                field: text("field"),
            });
        }
        Ok((status, bytes.to_vec()))
    }

    /// A JSON call whose answer is decoded as `T` (`null` for an empty body).
    pub(crate) async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let (_, bytes) = self
            .send(method, path, body, Duration::from_secs(30))
            .await?;
        let bytes = if bytes.is_empty() {
            b"null".to_vec()
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::Transport {
            url: format!("{}{path}", self.server),
            reason: format!("unexpected answer: {e}"),
        })
    }
}
