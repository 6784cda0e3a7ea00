//! Conveyor CI's resource API, at its paths and in its JSON shapes: resource definitions
//! (`/resource-definitions`) and resources (`/resources`). Reads take a reader, writes the
//! admin token; lists answer a JSON array, as Conveyor CI's do.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::http::auth::{Admin, ApiReader};
use crate::http::error::{AppError, AppResult};
use crate::services::catalog::{self, DefinitionInput};
use crate::services::pipelines::resource_json;
use crate::services::resources::{self, ResourceBody};
use crate::services::{Services, input};
use crate::store::{ResourceChanged, ResourceVerb, Write};

#[derive(Deserialize)]
pub struct Definition {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    version: String,
    schema: Value,
}

/// The name in the path, else the body's; both given must agree.
pub(super) fn same_name(path: Option<&str>, body: Option<String>, what: &str) -> AppResult<String> {
    match (path, body) {
        (Some(p), Some(b)) if p != b => Err(AppError::InvalidField {
            field: "name".into(),
            message: format!("the {what}'s `name` `{b}` is not `{p}`, the name in the path"),
        }),
        (Some(p), _) => Ok(p.to_string()),
        (None, Some(b)) => Ok(b),
        (None, None) => Err(AppError::InvalidField {
            field: "name".into(),
            message: format!("the {what} has no `name`"),
        }),
    }
}

async fn save_definition(
    services: &Services,
    name: Option<&str>,
    body: Result<Json<Definition>, JsonRejection>,
    mode: Write,
) -> AppResult<Json<Value>> {
    let Json(d) = body?;
    let input = DefinitionInput {
        name: same_name(name, d.name, "resource definition")?,
        description: d.description,
        version: d.version,
        schema: d.schema,
    };
    Ok(Json(json!(
        catalog::save_definition(services, input, mode).await?
    )))
}

pub async fn create_definition(
    State(services): State<Arc<Services>>,
    _: Admin,
    body: Result<Json<Definition>, JsonRejection>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let saved = save_definition(&services, None, body, Write::Create).await?;
    Ok((StatusCode::CREATED, saved))
}

pub async fn apply_definition(
    State(services): State<Arc<Services>>,
    _: Admin,
    body: Result<Json<Definition>, JsonRejection>,
) -> AppResult<Json<Value>> {
    save_definition(&services, None, body, Write::Apply).await
}

pub async fn update_definition(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(name): Path<String>,
    body: Result<Json<Definition>, JsonRejection>,
) -> AppResult<Json<Value>> {
    save_definition(&services, Some(&name), body, Write::Replace).await
}

pub async fn show_definition(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path(name): Path<String>,
) -> AppResult<Json<Value>> {
    Ok(Json(json!(catalog::definition(&services, &name).await?)))
}

pub async fn list_definitions(
    State(services): State<Arc<Services>>,
    _: ApiReader,
) -> AppResult<Json<Value>> {
    Ok(Json(json!(services.store.definitions().await?)))
}

pub async fn delete_definition(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path(name): Path<String>,
) -> AppResult<StatusCode> {
    catalog::delete_definition(&services, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Resource {
    name: Option<String>,
    resource: Option<String>,
    pipeline: Option<String>,
    #[serde(default)]
    metadata: Map<String, Value>,
    #[serde(default)]
    spec: Value,
}

/// What a change answers: Conveyor CI's `name`, `runid`, `message` and `version`, the
/// resource, and every run it started (`runid` is the first, null when none).
fn changed(c: &ResourceChanged, event: ResourceVerb) -> Value {
    let message = match c.builds.len() {
        0 => format!(
            "resource {}d; no pipeline or driver takes resources of type `{}`, so nothing runs",
            event.as_str(),
            c.record.resource_type
        ),
        n => format!("resource {}d; {n} run(s) started", event.as_str()),
    };
    json!({ "name": c.record.name, "runid": c.builds.first(), "runs": c.builds,
            "message": message, "version": c.record.version, "resource": resource_json(&c.record) })
}

fn body_of(r: Resource, path: Option<(&str, &str)>) -> AppResult<ResourceBody> {
    let t = match (path, r.resource) {
        (Some((p, _)), Some(b)) if p != b => {
            return Err(AppError::InvalidField {
                field: "resource".into(),
                message: format!("the resource's type `{b}` is not `{p}`, the type in the path"),
            });
        }
        (Some((p, _)), _) => p.to_string(),
        (None, Some(b)) => b,
        (None, None) => {
            return Err(AppError::InvalidField {
                field: "resource".into(),
                message: "the resource has no `resource` (its type)".into(),
            });
        }
    };
    Ok(ResourceBody {
        name: same_name(path.map(|(_, n)| n), r.name, "resource")?,
        resource_type: t,
        pipeline: r.pipeline.filter(|p| !p.is_empty()),
        metadata: r.metadata,
        spec: r.spec,
    })
}

pub async fn create_resource(
    State(services): State<Arc<Services>>,
    _: Admin,
    body: Result<Json<Resource>, JsonRejection>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let Json(r) = body?;
    let event = ResourceVerb::Create;
    let c = resources::save(&services, body_of(r, None)?, event).await?;
    Ok((StatusCode::CREATED, Json(changed(&c, event))))
}

pub async fn update_resource(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path((t, name)): Path<(String, String)>,
    body: Result<Json<Resource>, JsonRejection>,
) -> AppResult<Json<Value>> {
    let Json(r) = body?;
    let event = ResourceVerb::Update;
    let c = resources::save(&services, body_of(r, Some((&t, &name)))?, event).await?;
    Ok(Json(changed(&c, event)))
}

pub async fn delete_resource(
    State(services): State<Arc<Services>>,
    _: Admin,
    Path((t, name)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let c = resources::delete(&services, &t, &name).await?;
    Ok(Json(changed(&c, ResourceVerb::Delete)))
}

pub async fn show_resource(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path((t, name)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let r = resources::get(&services, &t, &name, None).await?;
    Ok(Json(resource_json(&r)))
}

pub async fn show_version(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path((t, name, version)): Path<(String, String, String)>,
) -> AppResult<Json<Value>> {
    let v: u64 = version.parse().map_err(|_| AppError::InvalidField {
        field: "version".into(),
        message: format!("`version` `{version}` is not a version number (1, 2, …)"),
    })?;
    let r = resources::get(&services, &t, &name, Some(v)).await?;
    Ok(Json(resource_json(&r)))
}

pub async fn list_resources(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path(t): Path<String>,
) -> AppResult<Json<Value>> {
    input::name("type", &t)?;
    catalog::definition(&services, &t).await?;
    let found = services.store.resources(&t).await?;
    Ok(Json(Value::Array(
        found.iter().map(resource_json).collect(),
    )))
}
