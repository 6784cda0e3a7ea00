//! The runner protocol (see `conveyor_core::protocol`): claim, heartbeat, logs, complete,
//! release. Each call names its runner by the runner's own token; a fenced-out call (the
//! lease is gone, or is another runner's) answers 409.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conveyor_core::protocol::{
    ClaimRequest, Completion, CompletionReply, Heartbeat, HeartbeatReply, JobSpec, Lease, LogBatch,
};

use crate::http::auth::RunnerAuth;
use crate::http::error::AppResult;
use crate::services::{Services, runs};

pub async fn claim(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<ClaimRequest>, JsonRejection>,
) -> AppResult<Json<JobSpec>> {
    let Json(req) = body?;
    Ok(Json(runs::claim(&services, &req, &owner).await?))
}

pub async fn heartbeat(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<Heartbeat>, JsonRejection>,
) -> AppResult<Json<HeartbeatReply>> {
    let Json(hb) = body?;
    Ok(Json(runs::heartbeat(&services, &hb, &owner).await?))
}

pub async fn logs(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<LogBatch>, JsonRejection>,
) -> AppResult<StatusCode> {
    let Json(batch) = body?;
    runs::append_logs(&services, batch, &owner).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// 204, or — the completion asked to `take_next` — 200 with the next job, if any.
pub async fn complete(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<Completion>, JsonRejection>,
) -> AppResult<Response> {
    let Json(c) = body?;
    let next = runs::complete(&services, &c, &owner).await?;
    Ok(match c.take_next {
        true => Json(CompletionReply { next }).into_response(),
        false => StatusCode::NO_CONTENT.into_response(),
    })
}

pub async fn release(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<Lease>, JsonRejection>,
) -> AppResult<StatusCode> {
    let Json(lease) = body?;
    runs::release(&services, &lease, &owner).await?;
    Ok(StatusCode::NO_CONTENT)
}
