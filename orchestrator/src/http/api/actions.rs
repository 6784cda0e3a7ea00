//! What a person does to a build besides starting and cancelling it: approve or decline a
//! manual job run, cancel one job run, re-run a build or retry its failed jobs. The dashboard's forms call the same
//! use cases.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::http::auth::Admin;
use crate::http::error::{AppError, AppResult};
use crate::services::{Services, builds};
use crate::store::BuildView;

/// Who decides, and why (a decline's reason); both optional.
#[derive(Deserialize, Default)]
pub struct Decision {
    by: Option<String>,
    #[serde(default)]
    reason: String,
}

/// Who decided when the caller names nobody: the holder of the admin token.
pub const ADMIN: &str = "admin";

fn decision(body: &[u8]) -> AppResult<Decision> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Decision::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))
}

pub async fn approve(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> AppResult<Json<BuildView>> {
    let d = decision(&body)?;
    let by = d.by.as_deref().unwrap_or(ADMIN);
    Ok(Json(builds::approve_job_run(&services, &id, by).await?))
}

pub async fn decline(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> AppResult<Json<BuildView>> {
    let d = decision(&body)?;
    let by = d.by.as_deref().unwrap_or(ADMIN);
    Ok(Json(
        builds::decline_job_run(&services, &id, by, &d.reason).await?,
    ))
}

pub async fn cancel_job(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(id): Path<String>,
) -> AppResult<Json<BuildView>> {
    Ok(Json(builds::cancel_job_run(&services, &id).await?))
}

pub async fn rerun(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(id): Path<String>,
) -> AppResult<(StatusCode, Json<BuildView>)> {
    Ok((
        StatusCode::CREATED,
        Json(builds::rerun(&services, &id).await?),
    ))
}

pub async fn retry(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(id): Path<String>,
) -> AppResult<Json<BuildView>> {
    Ok(Json(builds::retry(&services, &id).await?))
}
