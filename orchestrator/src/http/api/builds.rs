//! Starting, reading and cancelling builds.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::{Admin, ApiReader};
use crate::http::error::{AppError, AppResult};
use crate::services::{Services, builds, history, input, waiting};
use crate::store::{BuildFilter, BuildTrigger, BuildView, NewBuild};

#[derive(Deserialize, Default)]
pub struct Start {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    sha: Option<String>,
    /// `{"KEY": "VALUE"}`: every job gets them in its environment.
    #[serde(default)]
    variables: std::collections::BTreeMap<String, String>,
}

pub async fn create(
    State(services): State<Arc<Services>>,
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
        resource: None,
        product,
        belt,
        trigger: BuildTrigger::Manual,
        git_ref: start.git_ref,
        sha: start.sha,
        model: None,
        context: None,
    };
    let variables = start.variables.into_iter().collect();
    let view = builds::start_with(&services, &new, variables).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn list(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    filter: Result<Query<BuildFilter>, QueryRejection>,
) -> AppResult<Json<Value>> {
    let Query(filter) = filter?;
    let (mut builds, next) = history::page(&services, &filter).await?;
    waiting::note_waiting(&services, &mut builds).await?;
    Ok(Json(json!({ "builds": builds, "next": next })))
}

/// The build, and the builds it triggered (`triggered`, ids) beside the one that triggered
/// it (`upstream_build_id`).
pub async fn show(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    input::id("id", &id)?;
    let mut build = services
        .store
        .build(&id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no build `{id}`")))?;
    waiting::note_waiting(&services, std::slice::from_mut(&mut build)).await?;
    let mut v = serde_json::to_value(&build).map_err(|e| AppError::Internal(e.to_string()))?;
    v["triggered"] = json!(services.store.downstream_builds(&id).await?);
    Ok(Json(v))
}

pub async fn cancel(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    builds::cancel(&services, &id).await?;
    show(State(services), ApiReader, Path(id)).await
}
