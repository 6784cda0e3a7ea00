//! Why a queued job run is not being taken, when nothing could take it: no runner of its
//! fleet, or no instance of its driver, has been heard from within
//! [`CONNECTED_MS`](super::drivers::CONNECTED_MS). The API, the dashboard and `conveyor run`
//! show it as the job run's `waiting`.

use super::drivers::{connected, heard_from, not_connected};
use super::{Result, Services};
use crate::clock::now_ms;
use crate::store::{BuildView, JobRunView, RunnerView};

/// What a queued job run of a fleet no runner of which is connected says.
pub fn no_runner(fleet: &str) -> String {
    format!(
        "no runner of fleet `{fleet}` is connected: start one with `conveyor-runner --fleet {fleet}`"
    )
}

/// Notes on each queued job run of `builds` that nothing connected can take, why.
pub async fn note_waiting(s: &Services, builds: &mut [BuildView]) -> Result<()> {
    let queued = |j: &JobRunView| j.status == "queued";
    if !builds.iter().flat_map(|b| &b.jobs).any(queued) {
        return Ok(());
    }
    let (runners, now) = (s.store.runners().await?, now_ms());
    for job in builds.iter_mut().flat_map(|b| &mut b.jobs) {
        if !queued(job) {
            continue;
        }
        job.waiting = match &job.driver {
            Some(d) => (!connected(&runners, d, now)).then(|| not_connected(d)),
            None => (!serves(&runners, &job.fleet, now)).then(|| no_runner(&job.fleet)),
        };
    }
    Ok(())
}

/// Whether a runner of `fleet` was heard from within
/// [`CONNECTED_MS`](super::drivers::CONNECTED_MS) of `now`.
fn serves(runners: &[RunnerView], fleet: &str, now: i64) -> bool {
    runners
        .iter()
        .any(|r| r.fleets.iter().any(|f| f == fleet) && heard_from(r, now))
}
