//! Starting, reading and cancelling builds; reading logs.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Admin, ApiReader};
use crate::error::{AppError, AppResult};
use crate::state::{SharedState, now_ms};
use crate::store::{BuildFilter, BuildTrigger, BuildView, NewBuild};

#[derive(Deserialize, Default)]
pub struct Start {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    sha: Option<String>,
}

pub async fn create(
    State(state): State<SharedState>,
    _: Admin,
    Path((product, belt)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> AppResult<(StatusCode, Json<BuildView>)> {
    let start: Start = if body.iter().all(u8::is_ascii_whitespace) {
        Start::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    let new = NewBuild {
        product,
        belt,
        trigger: BuildTrigger::Manual,
        git_ref: start.git_ref,
        sha: start.sha,
        model: None,
    };
    let view = start_build(&state, &new).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Creates a build, dispatches its ready jobs, and returns it.
pub async fn start_build(state: &SharedState, new: &NewBuild) -> AppResult<BuildView> {
    let (id, effects) = state.store.create_build(new, now_ms()).await?;
    state.apply(effects).await;
    state
        .store
        .build(&id)
        .await?
        .ok_or_else(|| AppError::Internal(format!("build {id} vanished")))
}

pub async fn list(
    State(state): State<SharedState>,
    _: ApiReader,
    Query(filter): Query<BuildFilter>,
) -> AppResult<Json<Value>> {
    Ok(Json(
        json!({ "builds": state.store.builds(&filter).await? }),
    ))
}

/// The build, and the builds it triggered (`triggered`, ids) beside the one that triggered
/// it (`upstream_build_id`).
pub async fn show(
    State(state): State<SharedState>,
    _: ApiReader,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let build = state
        .store
        .build(&id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no build `{id}`")))?;
    let mut v = serde_json::to_value(&build).map_err(|e| AppError::Internal(e.to_string()))?;
    v["triggered"] = json!(state.store.downstream_builds(&id).await?);
    Ok(Json(v))
}

pub async fn cancel(
    State(state): State<SharedState>,
    _: Admin,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let effects = state
        .store
        .cancel_build(&id, now_ms())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no build `{id}`")))?;
    state.apply(effects).await;
    show(State(state), ApiReader, Path(id)).await
}

#[derive(Deserialize)]
pub struct LogQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

pub async fn logs(
    State(state): State<SharedState>,
    _: ApiReader,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> AppResult<Json<Value>> {
    let lines = state
        .store
        .logs(
            &id,
            q.after.unwrap_or(0),
            q.limit.unwrap_or(1000).min(10_000),
        )
        .await?;
    Ok(Json(json!({ "lines": lines })))
}
