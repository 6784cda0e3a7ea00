//! Effects after commit: what a store transaction caused, carried out once it has
//! committed — ready job runs pushed to their fleets' queues, commit statuses queued, and
//! builds created and finished announced to live views.

use super::Services;
use crate::store::Effects;

/// Something that happened, for live views (`conveyor run`, the dashboard, log streams):
/// a notice naming what changed, never the data itself (views read that from the store), so
/// that the [`super::EVENT_BUFFER`] events kept for slow subscribers hold ids only.
#[derive(Debug, Clone)]
pub enum Event {
    /// New lines of a job run's log were stored.
    Logs {
        job_run_id: String,
    },
    BuildCreated {
        id: String,
    },
    BuildFinished {
        id: String,
    },
}

impl Services {
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
