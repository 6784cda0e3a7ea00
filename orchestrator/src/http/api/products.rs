//! Registering and reading products.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::{Admin, ApiReader};
use crate::http::error::{AppError, AppResult};
use crate::services::products::{self, Config};
use crate::services::{Services, input};

#[derive(Deserialize)]
pub struct Register {
    yaml: Option<String>,
    repo: Option<String>,
    branch: Option<String>,
    webhook_secret: Option<String>,
}

pub async fn register(
    State(services): State<Arc<Services>>,
    _: Admin,
    body: Result<Json<Register>, JsonRejection>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let Json(body) = body?;
    let config = match (body.yaml, body.repo) {
        (Some(yaml), None) => Config::Yaml(yaml),
        (None, Some(url)) => Config::Repo {
            url,
            branch: body.branch,
            webhook_secret: body.webhook_secret,
        },
        _ => {
            return Err(AppError::BadRequest(
                "send exactly one of `yaml` or `repo`".into(),
            ));
        }
    };
    let done = products::register(&services, config).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "product": done.record, "others": done.others, "warnings": done.warnings, "sha": done.sha }),
        ),
    ))
}

pub async fn list(State(services): State<Arc<Services>>, _: ApiReader) -> AppResult<Json<Value>> {
    Ok(Json(
        json!({ "products": services.store.products().await? }),
    ))
}

pub async fn show(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path(product): Path<String>,
) -> AppResult<Json<Value>> {
    input::name("product", &product)?;
    let p = services
        .store
        .product(&product)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no product `{product}`")))?;
    Ok(Json(json!(p)))
}
