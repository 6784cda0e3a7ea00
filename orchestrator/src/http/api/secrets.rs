//! Secrets over the API, all behind the admin token: set with `PUT` (the value in the body,
//! never given back), listed by name, removed; per product under
//! `/api/v1/products/{product}/secrets`, global under `/api/v1/secrets`. And whether a
//! product's pull-request builds get secrets.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::Admin;
use crate::http::error::AppResult;
use crate::services::Services;
use crate::services::secrets::{self, Scope};

#[derive(Deserialize)]
pub struct SecretValue {
    value: String,
}

#[derive(Deserialize)]
pub struct PullRequests {
    allowed: bool,
}

pub async fn list_global(
    State(services): State<Arc<Services>>,
    _: Admin,
) -> AppResult<Json<Value>> {
    list(&services, Scope::Global).await
}

pub async fn list_product(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(product): Path<String>,
) -> AppResult<Json<Value>> {
    list(&services, Scope::Product(product)).await
}

async fn list(services: &Services, scope: Scope) -> AppResult<Json<Value>> {
    let found = secrets::list(services, &scope).await?;
    Ok(Json(json!({ "secrets": found })))
}

pub async fn set_global(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(name): Path<String>,
    body: Result<Json<SecretValue>, JsonRejection>,
) -> AppResult<StatusCode> {
    let Json(v) = body?;
    secrets::set(&services, &Scope::Global, &name, &v.value).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn set_product(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path((product, name)): Path<(String, String)>,
    body: Result<Json<SecretValue>, JsonRejection>,
) -> AppResult<StatusCode> {
    let Json(v) = body?;
    secrets::set(&services, &Scope::Product(product), &name, &v.value).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_global(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(name): Path<String>,
) -> AppResult<StatusCode> {
    secrets::remove(&services, &Scope::Global, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_product(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path((product, name)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    secrets::remove(&services, &Scope::Product(product), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pull_requests(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(product): Path<String>,
    body: Result<Json<PullRequests>, JsonRejection>,
) -> AppResult<Json<Value>> {
    let Json(p) = body?;
    secrets::allow_pull_requests(&services, &product, p.allowed).await?;
    Ok(Json(json!({ "product": product, "pr_secrets": p.allowed })))
}
