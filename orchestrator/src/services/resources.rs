//! Resources (Conveyor CI's model): every resource is checked against its type's schema (a
//! failure names the JSON path), each create or update writes a new version, and each
//! create, update or delete starts its runs (`pipelines::targets`) in the same transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value};

use super::catalog::{compile, definition, resource_name};
use super::{Result, ServiceError, Services, input, pipelines as runs};
use crate::clock::now_ms;
use crate::store::{
    DefinitionRecord, ResourceChanged, ResourceInput, ResourceRecord, ResourceVerb,
};

/// A resource as a request gives it; `spec` is checked against its type's schema.
pub struct ResourceBody {
    pub resource_type: String,
    pub name: String,
    pub pipeline: Option<String>,
    pub metadata: Map<String, Value>,
    pub spec: Value,
}

/// Checks `spec` against the schema; the first failure names its JSON path (`spec/…`).
fn validate(def: &DefinitionRecord, spec: &Value) -> Result<()> {
    let validator = compiled(&def.schema)?;
    let Some(e) = validator.iter_errors(spec).next() else {
        return Ok(());
    };
    let path = format!("spec{}", e.instance_path().as_str());
    Err(ServiceError::InvalidField {
        message: format!(
            "`{path}` does not match the schema of resource type `{}`: {e}",
            def.name
        ),
        field: path,
    })
}

/// The most compiled schemas kept; past it the cache starts again.
const CACHED_SCHEMAS: usize = 256;

/// A schema compiled once and kept, by its text: a pure function's cache, so it needs no
/// invalidation when a definition changes (its new schema is another key).
fn compiled(schema: &Value) -> Result<Arc<jsonschema::Validator>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let key = schema.to_string();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(v) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(v.clone());
    }
    let v = Arc::new(compile(schema)?);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= CACHED_SCHEMAS {
        map.clear();
    }
    map.insert(key, v.clone());
    Ok(v)
}

/// Creates or updates a resource (a new version) and starts its runs.
pub async fn save(
    s: &Services,
    body: ResourceBody,
    event: ResourceVerb,
) -> Result<ResourceChanged> {
    resource_name("name", &body.name)?;
    let def = definition(s, &body.resource_type).await?;
    validate(&def, &body.spec)?;
    if let Some(p) = &body.pipeline {
        runs::check_pipeline(s, p, &def.name).await?;
    }
    let input = ResourceInput {
        resource_type: body.resource_type,
        name: body.name,
        pipeline: body.pipeline,
        metadata: body.metadata,
        spec: body.spec,
    };
    change(s, event, &input).await
}

/// Deletes a resource and starts its runs (event `delete`, with its last version).
pub async fn delete(s: &Services, resource_type: &str, name: &str) -> Result<ResourceChanged> {
    input::name("type", resource_type)?;
    input::name("name", name)?;
    let current = get(s, resource_type, name, None).await?;
    let input = ResourceInput {
        resource_type: current.resource_type,
        name: current.name,
        pipeline: current.pipeline,
        metadata: current.metadata,
        spec: current.spec,
    };
    change(s, ResourceVerb::Delete, &input).await
}

async fn change(
    s: &Services,
    event: ResourceVerb,
    input: &ResourceInput,
) -> Result<ResourceChanged> {
    let targets = runs::targets(s, input).await?;
    let plan = |r: &ResourceRecord| runs::plan(&targets, r, event);
    let changed = s
        .store
        .change_resource(event, input, &plan, now_ms())
        .await?;
    s.apply(changed.effects.clone()).await;
    Ok(changed)
}

/// A resource at a version (its latest when `None`), or not found.
pub async fn get(
    s: &Services,
    resource_type: &str,
    name: &str,
    version: Option<u64>,
) -> Result<ResourceRecord> {
    input::name("type", resource_type)?;
    input::name("name", name)?;
    let found = match version {
        Some(v) => s.store.resource_version(resource_type, name, v).await?,
        None => s.store.resource(resource_type, name).await?,
    };
    found.ok_or_else(|| {
        let at = version.map_or(String::new(), |v| format!(" at version {v}"));
        ServiceError::NotFound(format!(
            "no resource `{name}` of type `{resource_type}`{at}"
        ))
    })
}
