//! Shared state of one orchestrator node, and applying what the store's transactions caused.

use std::sync::Arc;

use conveyor_core::protocol::LogLine;
use conveyor_runner::queue::Queue;
use tokio::sync::broadcast;

use crate::store::{Effects, Owner, Store};

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
    /// The registration token for runners of any fleet (`--runner-token`).
    pub runner_token: String,
    /// Registration tokens scoped to fleets (`--fleet-token FLEETS=TOKEN`): a runner
    /// registering with one may serve only those fleets.
    pub fleet_tokens: Vec<FleetToken>,
    /// How long a claim or heartbeat holds a job run.
    pub lease_ms: i64,
    /// How often a job run may lose its runner before it fails.
    pub max_lost: u32,
    pub events: broadcast::Sender<Event>,
    pub metrics: crate::metrics::Metrics,
    /// Hashes of runner tokens recently confirmed: when, and whose.
    pub runner_tokens: std::sync::Mutex<std::collections::HashMap<String, (i64, Owner)>>,
    /// Mirrors of product repositories.
    pub repos: crate::repos::Repos,
    /// Commit statuses to forges, when a forge has a token.
    pub statuses: Option<crate::statuses::StatusQueue>,
    /// Whether the dashboard's read-only pages are open to anyone (actions always need
    /// the admin token's session).
    pub public_ui: bool,
}

pub type SharedState = Arc<AppState>;

/// A registration token that registers runners for some fleets only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetToken {
    pub fleets: Vec<String>,
    pub token: String,
}

impl std::str::FromStr for FleetToken {
    type Err = String;

    /// `FLEET[,FLEET…]=TOKEN`.
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "expected FLEET[,FLEET...]=TOKEN, e.g. `deploy=s3cret`";
        let (fleets, token) = s.split_once('=').ok_or_else(|| usage.to_string())?;
        let fleets: Vec<String> = fleets.split(',').map(|f| f.trim().to_string()).collect();
        if let Some(bad) = fleets
            .iter()
            .find(|f| !conveyor_core::names::is_fleet_name(f))
        {
            return Err(format!("invalid fleet name `{bad}`: {usage}"));
        }
        if token.trim().len() < 16 {
            return Err("a fleet token needs at least 16 characters".into());
        }
        Ok(FleetToken {
            fleets,
            token: token.trim().to_string(),
        })
    }
}

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
            fleet_tokens: Vec::new(),
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
