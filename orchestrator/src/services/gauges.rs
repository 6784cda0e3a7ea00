//! What `/metrics` shows: the gauges (job runs in flight by state and fleet, queue depth per
//! fleet, runners online and busy) and the histograms kept in process.
//!
//! While the node is scraped (a scrape within [`WATCHED`]), its upkeep reads the gauges
//! every second and keeps them: a scrape renders what was last read, and reads afresh only
//! when nothing was read in the last [`FRESH`] (the first scrape, or a node whose upkeep is
//! not running). So a scrape never queues for a database connection or the queue behind a
//! busy node's requests, a gauge is at most about a second old — finer than any scrape
//! interval — and a node nobody scrapes reads nothing for it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conveyor_core::driver::driver_of;

use super::drivers::heard_from;
use super::{Result, Services};
use crate::clock::now_ms;
use crate::metrics::gauge;
use crate::store::RunCount;

/// How old kept gauges may be before a scrape reads them itself.
pub const FRESH: Duration = Duration::from_secs(2);

/// How long after a scrape the upkeep keeps the gauges fresh (four of Prometheus' default
/// 15 s intervals).
pub const WATCHED: Duration = Duration::from_secs(60);

/// The gauges as last read.
pub struct Gauges {
    counts: Vec<RunCount>,
    busy: u64,
    online: u64,
    depths: Vec<(String, u64)>,
}

/// The gauges last read and when, and when the node was last scraped.
#[derive(Default)]
pub struct Kept(Mutex<KeptState>);

#[derive(Default)]
struct KeptState {
    read: Option<(Instant, Arc<Gauges>)>,
    scraped: Option<Instant>,
}

impl Kept {
    fn state(&self) -> std::sync::MutexGuard<'_, KeptState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For a scrape: the gauges if read within [`FRESH`].
    fn scrape(&self) -> Option<Arc<Gauges>> {
        let mut state = self.state();
        state.scraped = Some(Instant::now());
        state
            .read
            .as_ref()
            .filter(|(at, _)| at.elapsed() < FRESH)
            .map(|(_, g)| g.clone())
    }

    fn watched(&self) -> bool {
        self.state()
            .scraped
            .is_some_and(|at| at.elapsed() < WATCHED)
    }

    fn keep(&self, gauges: Arc<Gauges>) {
        self.state().read = Some((Instant::now(), gauges));
    }
}

/// The upkeep's part: reads the gauges while the node is scraped.
pub async fn refresh_if_watched(s: &Services) -> Result<()> {
    if s.gauges.watched() {
        refresh(s).await?;
    }
    Ok(())
}

/// Reads the gauges from the store and the queue, and keeps them.
async fn refresh(s: &Services) -> Result<Arc<Gauges>> {
    let (counts, busy) = s.store.run_counts().await?;
    let now = now_ms();
    let online = s
        .store
        .runners()
        .await?
        .iter()
        .filter(|r| heard_from(r, now))
        .filter(|r| r.fleets.iter().any(|f| driver_of(f).is_none()))
        .count() as u64;
    let mut fleets: Vec<&str> = counts.iter().map(|c| c.fleet.as_str()).collect();
    fleets.push(conveyor_core::compile::DEFAULT_FLEET);
    fleets.sort_unstable();
    fleets.dedup();
    let mut depths = Vec::new();
    for f in fleets {
        match s.queue.depth(f).await {
            Ok(d) => depths.push((f.to_string(), d)),
            Err(e) => tracing::warn!("queue depth of {f}: {e}"),
        }
    }
    let gauges = Arc::new(Gauges {
        counts,
        busy,
        online,
        depths,
    });
    s.gauges.keep(gauges.clone());
    Ok(gauges)
}

/// The Prometheus exposition: the kept gauges (read now if none are fresh) and the
/// histograms.
pub async fn exposition(s: &Services) -> Result<String> {
    let g = match s.gauges.scrape() {
        Some(g) => g,
        None => refresh(s).await?,
    };
    let mut out = String::new();
    let runs: Vec<_> = g
        .counts
        .iter()
        .map(|c| {
            let labels = vec![("state", c.status.clone()), ("fleet", c.fleet.clone())];
            (labels, c.count)
        })
        .collect();
    gauge(
        &mut out,
        "conveyor_job_runs",
        "Job runs by state and fleet.",
        &runs,
    );
    let depths: Vec<_> = g
        .depths
        .iter()
        .map(|(f, d)| (vec![("fleet", f.clone())], *d))
        .collect();
    gauge(
        &mut out,
        "conveyor_queue_depth",
        "Messages waiting or in flight per fleet queue.",
        &depths,
    );
    let (online, busy) = ([(vec![], g.online)], [(vec![], g.busy)]);
    let online_help = "Runners heard from in the last minute.";
    gauge(&mut out, "conveyor_runners_online", online_help, &online);
    let busy_help = "Runners holding a running job run.";
    gauge(&mut out, "conveyor_runners_busy", busy_help, &busy);
    s.metrics.dispatch.render(
        &mut out,
        "conveyor_dispatch_latency_seconds",
        "From a job run becoming ready to its claim.",
    );
    s.metrics.duration.render(
        &mut out,
        "conveyor_job_duration_seconds",
        "From claim to completion.",
    );
    Ok(out)
}
