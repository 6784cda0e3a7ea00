//! What a person does to a build besides starting and cancelling it: approve a manual job
//! run, cancel one job run, re-run a build. The dashboard's forms call the same functions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::auth::Admin;
use crate::error::{AppError, AppResult};
use crate::state::{SharedState, now_ms};
use crate::store::BuildView;

pub async fn approve(
    State(state): State<SharedState>,
    _: Admin,
    Path(id): Path<String>,
) -> AppResult<Json<BuildView>> {
    Ok(Json(approve_job_run(&state, &id).await?))
}

pub async fn cancel_job(
    State(state): State<SharedState>,
    _: Admin,
    Path(id): Path<String>,
) -> AppResult<Json<BuildView>> {
    Ok(Json(cancel_job_run(&state, &id).await?))
}

pub async fn rerun(
    State(state): State<SharedState>,
    _: Admin,
    Path(id): Path<String>,
) -> AppResult<(StatusCode, Json<BuildView>)> {
    Ok((StatusCode::CREATED, Json(rerun_build(&state, &id).await?)))
}

/// Queues a waiting manual job run; returns its build.
pub async fn approve_job_run(state: &SharedState, id: &str) -> AppResult<BuildView> {
    let build_id = build_of(state, id).await?;
    let effects = state
        .store
        .approve_job_run(id, now_ms())
        .await?
        .ok_or_else(|| {
            AppError::Conflict(format!(
                "job run `{id}` is not waiting for approval: only a manual job that is waiting can be approved"
            ))
        })?;
    state.apply(effects).await;
    build_view(state, &build_id).await
}

/// Cancels one job run (a finished one stays as it is); returns its build.
pub async fn cancel_job_run(state: &SharedState, id: &str) -> AppResult<BuildView> {
    let build_id = build_of(state, id).await?;
    let effects = state
        .store
        .cancel_job_run(id, now_ms())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no job run `{id}`")))?;
    state.apply(effects).await;
    build_view(state, &build_id).await
}

/// Starts a new build running what build `id` ran; returns the new build.
pub async fn rerun_build(state: &SharedState, id: &str) -> AppResult<BuildView> {
    let (new_id, effects) = state
        .store
        .rerun_build(id, now_ms())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no build `{id}`")))?;
    state.apply(effects).await;
    build_view(state, &new_id).await
}

async fn build_of(state: &SharedState, job_run_id: &str) -> AppResult<String> {
    state
        .store
        .build_of_job_run(job_run_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no job run `{job_run_id}`")))
}

async fn build_view(state: &SharedState, id: &str) -> AppResult<BuildView> {
    state
        .store
        .build(id)
        .await?
        .ok_or_else(|| AppError::Internal(format!("build {id} vanished")))
}
