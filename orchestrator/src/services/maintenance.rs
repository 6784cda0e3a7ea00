//! The upkeep every orchestrator node does (startup runs it every second): re-queue job
//! runs whose runner was lost, fire the schedules that are due, start concurrency group
//! members promoted but left unstarted by a crash, sweep what retention no longer keeps,
//! read the gauges `/metrics` shows (while it is scraped), and re-send queued job runs
//! whose message may have been lost. Safe when every node does it at once: each re-queue is
//! a fenced UPDATE, and a duplicate message is dropped at claim time.

use super::Services;
use crate::clock::now_ms;
use crate::store::{Result, Retention};

/// One pass of the reaper and the re-sender.
pub async fn tick(s: &Services) -> Result<()> {
    let now = now_ms();
    let effects = s.store.reap(now, s.max_lost).await?;
    s.apply(effects).await;
    let effects = s.store.start_held_groups(now).await?;
    s.apply(effects).await;
    if let Err(e) = super::schedules::fire_due(s, now).await {
        tracing::warn!("firing schedules: {e}");
    }
    if let Err(e) = sweep(s, now).await {
        tracing::warn!("retention: {e}");
    }
    if let Err(e) = super::gauges::refresh_if_watched(s).await {
        tracing::warn!("reading the gauges: {e}");
    }
    resend_lost(s, now - s.lease_ms / 2).await
}

/// Builds one retention pass deletes at most (one short transaction).
pub const SWEEP_BATCH: u32 = 100;

/// One batch of retention: builds no rule keeps, then their artifacts' objects (an object
/// left by a crash in between is only space; a missing one is no error).
pub async fn sweep(s: &Services, now: i64) -> Result<u64> {
    sweep_with(s, &s.retention, now).await
}

/// One batch of retention by `retention` rather than the node's own.
pub async fn sweep_with(s: &Services, retention: &Retention, now: i64) -> Result<u64> {
    if *retention == Retention::default() {
        return Ok(0);
    }
    let swept = s.store.sweep(retention, now, SWEEP_BATCH).await?;
    for object in &swept.objects {
        if let Err(e) = s.blobs.delete(object).await {
            tracing::warn!("retention: deleting {object}: {e}");
        }
    }
    if swept.builds > 0 {
        tracing::info!(builds = swept.builds, "retention deleted old builds");
    }
    Ok(swept.builds)
}

/// Sends every queued job run again at once: for a queue known to be empty (the in-process
/// queue of a node that just started), so work handed back at the last stop starts now,
/// not half a lease later.
pub async fn resend_all(s: &Services) -> Result<()> {
    resend_lost(s, i64::MAX).await
}

/// Re-sends queued job runs whose message may be lost: those queued before `before`, on a
/// fleet whose queue holds fewer messages than it has queued job runs (so a long backlog is
/// not flooded with duplicates). The oldest go first.
async fn resend_lost(s: &Services, before: i64) -> Result<()> {
    for (fleet, queued) in s.store.queued_by_fleet().await? {
        let depth = match s.queue.depth(&fleet).await {
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
        for d in s.store.stale_queued(before, &fleet, missing).await? {
            if let Err(e) = s.queue.push(&d.fleet, &d.msg).await {
                tracing::warn!("re-send failed: {e}");
            }
        }
    }
    Ok(())
}
