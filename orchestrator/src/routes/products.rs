//! Registering and reading products.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Admin, ApiReader};
use crate::error::{AppError, AppResult};
use crate::registry;
use crate::state::{SharedState, now_ms};

#[derive(Deserialize)]
pub struct Register {
    yaml: Option<String>,
    repo: Option<String>,
    branch: Option<String>,
    webhook_secret: Option<String>,
}

pub async fn register(
    State(state): State<SharedState>,
    _: Admin,
    body: Result<Json<Register>, JsonRejection>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let Json(body) = body?;
    let (record, warnings, sha) = match (body.yaml, body.repo) {
        (Some(yaml), None) => {
            let (r, w) =
                registry::compile_for_registration(state.store.as_ref(), "request", &yaml).await?;
            (r, w, None)
        }
        (None, Some(repo)) => {
            let at = registry::read_from_repo(&state.repos, &repo, body.branch.clone()).await?;
            let (mut r, w) =
                registry::compile_for_registration(state.store.as_ref(), ".conveyor.yml", &at.yaml)
                    .await?;
            (r.repo, r.branch, r.webhook_secret, r.head_sha) = (
                Some(repo),
                Some(at.branch),
                body.webhook_secret,
                Some(at.sha.clone()),
            );
            (r, w, Some(at.sha))
        }
        _ => {
            return Err(AppError::BadRequest(
                "send exactly one of `yaml` or `repo`".into(),
            ));
        }
    };
    state.store.put_product(&record, now_ms()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "product": record, "warnings": warnings, "sha": sha })),
    ))
}

pub async fn list(State(state): State<SharedState>, _: ApiReader) -> AppResult<Json<Value>> {
    Ok(Json(json!({ "products": state.store.products().await? })))
}

pub async fn show(
    State(state): State<SharedState>,
    _: ApiReader,
    Path(product): Path<String>,
) -> AppResult<Json<Value>> {
    let p = state
        .store
        .product(&product)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no product `{product}`")))?;
    Ok(Json(json!(p)))
}
