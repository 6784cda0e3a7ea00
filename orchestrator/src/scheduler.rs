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
    // A queued job run that waited half a lease is re-sent (its message may be lost).
    for d in state.store.stale_queued(now - state.lease_ms / 2).await? {
        if let Err(e) = state.queue.push(&d.fleet, &d.msg).await {
            tracing::warn!("re-send failed: {e}");
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
