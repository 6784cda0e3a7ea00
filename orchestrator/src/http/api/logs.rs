//! A job run's log over the JSON API: a range of lines by line number (after one, or the
//! last before one) with the total so far, and a search that continues with `next`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use crate::http::auth::ApiReader;
use crate::http::error::AppResult;
use crate::services::Services;
use crate::services::logs::{self, LogQuery};
use crate::store::LogMatches;

/// `{"lines": [...], "total": T}`.
pub async fn range(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path(id): Path<String>,
    q: Result<Query<LogQuery>, QueryRejection>,
) -> AppResult<Json<Value>> {
    let Query(q) = q?;
    let (lines, total) = logs::range(&services, &id, &q).await?;
    Ok(Json(json!({ "lines": lines, "total": total })))
}

/// `{"matches": [{"id", "text"}...], "next": N or null}`.
pub async fn search(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path(id): Path<String>,
    q: Result<Query<LogQuery>, QueryRejection>,
) -> AppResult<Json<LogMatches>> {
    let Query(q) = q?;
    Ok(Json(logs::search(&services, &id, &q).await?))
}
