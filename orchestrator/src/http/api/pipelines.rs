//! Conveyor CI's pipeline API (`/pipelines`): ordered driver steps over a resource type.
//! Each pipeline is also a product of its name, whose builds are its runs.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::resources::same_name;
use crate::http::auth::{Admin, ApiReader};
use crate::http::error::AppResult;
use crate::services::Services;
use crate::services::pipelines::{self, PipelineInput, StepInput};
use crate::store::Write;

#[derive(Deserialize)]
pub struct Pipeline {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    version: String,
    resource: String,
    steps: Vec<Step>,
    #[serde(default)]
    metadata: Map<String, Value>,
}

#[derive(Deserialize)]
pub struct Step {
    id: Option<String>,
    name: Option<String>,
    driver: String,
}

async fn save(
    services: &Services,
    name: Option<&str>,
    body: Result<Json<Pipeline>, JsonRejection>,
    mode: Write,
) -> AppResult<Json<Value>> {
    let Json(p) = body?;
    let input = PipelineInput {
        name: same_name(name, p.name, "pipeline")?,
        description: p.description,
        version: p.version,
        resource: p.resource,
        steps: p
            .steps
            .into_iter()
            .map(|s| StepInput {
                id: s.id,
                name: s.name,
                driver: s.driver,
            })
            .collect(),
        metadata: p.metadata,
    };
    Ok(Json(json!(pipelines::save(services, input, mode).await?)))
}

pub async fn create(
    State(services): State<Arc<Services>>,
    _: Admin,
    body: Result<Json<Pipeline>, JsonRejection>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let saved = save(&services, None, body, Write::Create).await?;
    Ok((StatusCode::CREATED, saved))
}

pub async fn update(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(name): Path<String>,
    body: Result<Json<Pipeline>, JsonRejection>,
) -> AppResult<Json<Value>> {
    save(&services, Some(&name), body, Write::Replace).await
}

pub async fn show(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path(name): Path<String>,
) -> AppResult<Json<Value>> {
    Ok(Json(json!(pipelines::get(&services, &name).await?)))
}

pub async fn list(State(services): State<Arc<Services>>, _: ApiReader) -> AppResult<Json<Value>> {
    Ok(Json(json!(services.store.pipelines().await?)))
}

pub async fn delete(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(name): Path<String>,
) -> AppResult<StatusCode> {
    pipelines::delete(&services, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
