//! The background loop every orchestrator node runs: re-queue job runs whose runner was
//! lost, and re-send queued job runs whose message may have been lost. Safe when every node
//! does it at once: each re-queue is a fenced UPDATE, and a duplicate message is dropped at
//! claim time.

use std::time::Duration;

use crate::state::{SharedState, now_ms};
use crate::store::Result;

/// One pass of the reaper and the re-sender.
pub async fn tick(state: &SharedState) -> Result<()> {
    let now = now_ms();
    let effects = state.store.reap(now, state.max_lost).await?;
    state.apply(effects).await;
    resend_lost(state, now).await
}

/// Re-sends queued job runs whose message may be lost: those that waited half a lease, on a
/// fleet whose queue holds fewer messages than it has queued job runs (so a long backlog is
/// not flooded with duplicates). The oldest go first.
async fn resend_lost(state: &SharedState, now: i64) -> Result<()> {
    for (fleet, queued) in state.store.queued_by_fleet().await? {
        let depth = match state.queue.depth(&fleet).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("queue depth of {fleet}: {e}");
                continue;
            }
        };
        let missing = queued.saturating_sub(depth);
        if missing == 0 {
            continue;
        }
        for d in state
            .store
            .stale_queued(now - state.lease_ms / 2, &fleet, missing)
            .await?
        {
            if let Err(e) = state.queue.push(&d.fleet, &d.msg).await {
                tracing::warn!("re-send failed: {e}");
            }
        }
    }
    Ok(())
}

/// Runs [`tick`] every `every` until the process ends.
pub fn spawn(state: SharedState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = tick(&state).await {
                tracing::warn!("scheduler tick failed: {e}");
            }
        }
    })
}
