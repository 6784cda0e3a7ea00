//! Commit statuses: a build started by a forge's webhook tells that forge its state —
//! pending when it starts, success or failure when it ends, with a link to the build page.
//!
//! Each report is a durable background task (`tasks`). A task names only the build: the
//! reporter reads the build's status when it runs, so a late or duplicated task never sets an
//! older state, and the build row records what the forge was last told.

use std::sync::Arc;

use conveyor_runner::tls::{Trust, explain};
use serde_json::Value;

use super::{ForgeApi, Post, Status, request};
use crate::store::Store;

/// Where statuses go: the forges with a token, and the URL build links start with.
#[derive(Debug, Clone, Default)]
pub struct StatusConfig {
    pub apis: Vec<ForgeApi>,
    /// The orchestrator's public URL, for links to build pages.
    pub public_url: String,
    /// Whose certificates an `https://` forge API may present (`--ca-cert`).
    pub trust: Trust,
}

impl StatusConfig {
    fn api(&self, forge: &str) -> Option<&ForgeApi> {
        self.apis.iter().find(|a| a.forge.name() == forge)
    }
}

/// Tells forges what their builds are doing.
pub struct Reporter {
    store: Arc<dyn Store>,
    http: reqwest::Client,
    config: StatusConfig,
}

/// A report that did not reach the forge; the task is retried.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReportError(String);

impl Reporter {
    /// A reporter over `store`; fails only when its HTTP client cannot be set up.
    pub fn new(store: Arc<dyn Store>, config: StatusConfig) -> Result<Self, String> {
        let http = config
            .trust
            .http()
            .map_err(|e| e.to_string())?
            .user_agent(concat!("conveyor/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| explain(&e))?;
        Ok(Reporter {
            store,
            http,
            config,
        })
    }

    /// Brings the forge up to date with the build, until what it was told is what the build
    /// is (a build may finish while its pending status is on the way).
    pub async fn report(&self, build_id: &str) -> Result<(), ReportError> {
        for _ in 0..5 {
            let b = self
                .store
                .build(build_id)
                .await
                .map_err(|e| ReportError(e.to_string()))?;
            let Some(b) = b else { return Ok(()) };
            let Some(told) = b.forge_status.as_deref() else {
                return Ok(());
            };
            if told == b.status {
                return Ok(());
            }
            // The forge hears that a build started before how it ended, even when it ended
            // before the first report went out.
            let status = if told.is_empty() && b.finished_at.is_some() {
                "running"
            } else {
                b.status.as_str()
            };
            let (Some(target), Some(sha)) = (b.trigger.forge_target(), &b.sha) else {
                return Ok(());
            };
            let (forge, repository) = (target.forge.as_str(), target.repository.as_str());
            if let Some(api) = self.config.api(forge) {
                let context = format!("conveyor/{}/{}", b.product, b.belt);
                let description = format!("{} #{} {status}", b.product, b.number);
                let target_url = format!(
                    "{}/builds/{}",
                    self.config.public_url.trim_end_matches('/'),
                    b.id
                );
                let post = request(
                    api,
                    &Status {
                        repository,
                        sha,
                        build_status: status,
                        context: &context,
                        description: &description,
                        target_url: &target_url,
                    },
                );
                self.send(&post).await?;
                tracing::info!(build = %b.id, forge, status, "commit status sent");
            }
            self.store
                .set_forge_status(&b.id, status)
                .await
                .map_err(|e| ReportError(e.to_string()))?;
        }
        Ok(())
    }

    async fn send(&self, post: &Post) -> Result<(), ReportError> {
        let mut req = self.http.post(&post.url).json(&post.body);
        for (k, v) in &post.headers {
            req = req.header(*k, v);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ReportError(format!("{}: {}", post.url, explain(&e))))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        Err(ReportError(format!(
            "{} answered {status}: {}",
            post.url,
            body.get("message").unwrap_or(&body)
        )))
    }
}
