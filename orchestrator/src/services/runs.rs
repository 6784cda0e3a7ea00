//! Job runs as runners see them — claim, heartbeat, logs, complete (the protocol of
//! `conveyor_core::protocol`) — and runners themselves: registering one, and noting that a
//! runner's token was seen. A call whose lease is gone is fenced out with a conflict.

use conveyor_core::protocol::{ClaimRequest, Completion, JobSpec, Lease, LogBatch};

use super::{Event, Result, ServiceError, Services};
use crate::clock::now_ms;
use crate::secrets::token_hash;

fn fenced() -> ServiceError {
    ServiceError::Conflict("this job run is not yours: it was taken, or your lease is gone".into())
}

/// Takes a queued job run for a runner; the job to run.
pub async fn claim(s: &Services, req: &ClaimRequest) -> Result<JobSpec> {
    let claim = s
        .store
        .claim(req, s.lease_ms, now_ms())
        .await?
        .ok_or_else(fenced)?;
    s.metrics.dispatch.observe_ms(claim.waited_ms);
    Ok(claim.spec)
}

/// Extends a lease; whether the runner should cancel the job.
pub async fn heartbeat(s: &Services, lease: &Lease) -> Result<bool> {
    s.store
        .heartbeat(lease, s.lease_ms, now_ms())
        .await?
        .ok_or_else(fenced)
}

/// Stores a batch of log lines and tells live views.
pub async fn append_logs(s: &Services, batch: LogBatch) -> Result<()> {
    if !s.store.append_logs(&batch, now_ms()).await? {
        return Err(fenced());
    }
    let _ = s.events.send(Event::Logs {
        job_run_id: batch.lease.job_run_id,
        lines: batch.lines,
    });
    Ok(())
}

/// Records how a job run ended, and what that sets moving.
pub async fn complete(s: &Services, c: &Completion) -> Result<()> {
    let effects = s.store.complete(c, now_ms()).await?.ok_or_else(fenced)?;
    s.apply(effects).await;
    Ok(())
}

/// A registered runner and the token it authenticates with from now on.
pub struct Registered {
    pub id: String,
    pub token: String,
}

/// Registers a runner serving `fleets`, with a token of its own (stored as its hash).
pub async fn register_runner(s: &Services, name: &str, fleets: &[String]) -> Result<Registered> {
    if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid(
            "a runner needs a `name` of 1 to 100 printable characters".into(),
        ));
    }
    if fleets.is_empty() {
        return Err(ServiceError::Invalid(
            "a runner needs at least one fleet in `fleets`".into(),
        ));
    }
    if let Some(bad) = fleets
        .iter()
        .find(|f| !conveyor_core::names::is_fleet_name(f))
    {
        return Err(ServiceError::Invalid(format!(
            "invalid fleet name `{bad}`: use lowercase letters, digits, `_` and `-`, starting with a letter or digit"
        )));
    }
    let token = crate::store::token();
    let id = s
        .store
        .register_runner(name, fleets, &token_hash(&token), now_ms())
        .await?;
    Ok(Registered { id, token })
}

/// Whether the token hashed as `hash` belongs to a registered runner, noting that it was
/// seen at `now`.
pub async fn seen(s: &Services, hash: &str, now: i64) -> Result<bool> {
    Ok(s.store.runner_seen(hash, now).await?.is_some())
}
