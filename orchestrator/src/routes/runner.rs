//! The runner protocol (see `conveyor_core::protocol`): claim, heartbeat, logs, complete,
//! release. Each call names its runner by the runner's own token; a fenced-out call (the
//! lease is gone, or is another runner's) answers 409.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use conveyor_core::protocol::{ClaimRequest, Completion, HeartbeatReply, JobSpec, Lease, LogBatch};

use crate::auth::RunnerAuth;
use crate::error::{AppError, AppResult};
use crate::state::{Event, SharedState, now_ms};

fn fenced() -> AppError {
    AppError::Conflict("this job run is not yours: it was taken, or your lease is gone".into())
}

pub async fn claim(
    State(state): State<SharedState>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<ClaimRequest>, JsonRejection>,
) -> AppResult<Json<JobSpec>> {
    let Json(req) = body?;
    let claim = state
        .store
        .claim(&req, &owner, state.lease_ms, now_ms())
        .await?
        .ok_or_else(fenced)?;
    state.metrics.dispatch.observe_ms(claim.waited_ms);
    Ok(Json(claim.spec))
}

pub async fn heartbeat(
    State(state): State<SharedState>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<Lease>, JsonRejection>,
) -> AppResult<Json<HeartbeatReply>> {
    let Json(lease) = body?;
    let cancel = state
        .store
        .heartbeat(&lease, &owner.name, state.lease_ms, now_ms())
        .await?
        .ok_or_else(fenced)?;
    Ok(Json(HeartbeatReply { cancel }))
}

pub async fn logs(
    State(state): State<SharedState>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<LogBatch>, JsonRejection>,
) -> AppResult<StatusCode> {
    let Json(batch) = body?;
    if !state
        .store
        .append_logs(&batch, &owner.name, now_ms())
        .await?
    {
        return Err(fenced());
    }
    let _ = state.events.send(Event::Logs {
        job_run_id: batch.lease.job_run_id,
        lines: batch.lines,
    });
    Ok(StatusCode::NO_CONTENT)
}

pub async fn complete(
    State(state): State<SharedState>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<Completion>, JsonRejection>,
) -> AppResult<StatusCode> {
    let Json(c) = body?;
    let effects = state
        .store
        .complete(&c, &owner.name, now_ms())
        .await?
        .ok_or_else(fenced)?;
    state.apply(effects).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A runner shutting down hands back a job run it stopped: re-queued at once, as a lost
/// attempt.
pub async fn release(
    State(state): State<SharedState>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<Lease>, JsonRejection>,
) -> AppResult<StatusCode> {
    let Json(lease) = body?;
    let effects = state
        .store
        .release(&lease, &owner.name, state.max_lost, now_ms())
        .await?
        .ok_or_else(fenced)?;
    state.apply(effects).await;
    Ok(StatusCode::NO_CONTENT)
}
