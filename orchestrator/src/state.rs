//! Shared state of one orchestrator node, and applying what the store's transactions caused.

use std::sync::Arc;

use conveyor_core::protocol::LogLine;
use conveyor_runner::queue::Queue;
use tokio::sync::broadcast;

use crate::store::{Effects, Store};

/// Something that happened, for live views (`conveyor run`, the UI).
#[derive(Debug, Clone)]
pub enum Event {
    Logs {
        job_run_id: String,
        lines: Vec<LogLine>,
    },
    BuildCreated {
        id: String,
    },
    BuildFinished {
        id: String,
    },
}

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub admin_token: String,
    pub runner_token: String,
    /// How long a claim or heartbeat holds a job run.
    pub lease_ms: i64,
    /// How often a job run may lose its runner before it fails.
    pub max_lost: u32,
    pub events: broadcast::Sender<Event>,
    pub metrics: crate::metrics::Metrics,
    /// Hashes of runner tokens recently confirmed, and when.
    pub runner_tokens: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// Mirrors of product repositories.
    pub repos: crate::repos::Repos,
    /// Commit statuses to forges, when a forge has a token.
    pub statuses: Option<crate::statuses::StatusQueue>,
    /// Whether the dashboard's read-only pages are open to anyone (actions always need
    /// the admin token's session).
    pub public_ui: bool,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        admin_token: String,
        runner_token: String,
    ) -> Self {
        AppState {
            store,
            queue,
            admin_token,
            runner_token,
            lease_ms: 30_000,
            max_lost: 3,
            events: broadcast::channel(4096).0,
            metrics: crate::metrics::Metrics::default(),
            runner_tokens: Default::default(),
            repos: crate::repos::Repos::new(std::env::temp_dir().join(format!(
                "conveyor-mirrors-{}",
                uuid::Uuid::now_v7().simple()
            ))),
            statuses: None,
            public_ui: true,
        }
    }

    /// After commit: dispatch ready job runs and announce builds created and finished.
    pub async fn apply(&self, effects: Effects) {
        for ms in &effects.durations_ms {
            self.metrics.duration.observe_ms(*ms);
        }
        for d in &effects.dispatch {
            if let Err(e) = self.queue.push(&d.fleet, &d.msg).await {
                // The job run stays queued in the database; the re-sender will push it again.
                tracing::warn!(job_run = %d.msg.job_run_id, "dispatch failed: {e}");
            }
        }
        if let Some(statuses) = &self.statuses {
            for id in &effects.report {
                statuses.push(id).await;
            }
        }
        for id in effects.created {
            let _ = self.events.send(Event::BuildCreated { id });
        }
        for id in effects.finished {
            let _ = self.events.send(Event::BuildFinished { id });
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
