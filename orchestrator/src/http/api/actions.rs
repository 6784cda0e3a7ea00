//! What a person does to a build besides starting and cancelling it: approve a manual job
//! run, cancel one job run, re-run a build. The dashboard's forms call the same use cases.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::http::auth::Admin;
use crate::http::error::AppResult;
use crate::services::{Services, builds};
use crate::store::BuildView;

pub async fn approve(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(id): Path<String>,
) -> AppResult<Json<BuildView>> {
    Ok(Json(builds::approve_job_run(&services, &id).await?))
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
