//! Pipelines (Conveyor CI's model) on the engine: a pipeline is a product of its own name
//! whose one belt, of the same name, runs its steps in order as driver jobs (each `needs`
//! the one before, so the first failure skips the rest); a run is a build of that belt, its
//! id the run id every step sees. A resource with no pipeline fans out: one build of its
//! type's product `TYPE.drivers` with one job per driver listening to the type.

use std::collections::BTreeSet;

use conveyor_core::{compile, names};
use serde_json::{Map, Value};

use super::catalog::{self, FANOUT_SUFFIX, MAX_TEXT_LEN, kind_name};
use super::{Result, ServiceError, Services, input};
use crate::clock::now_ms;
use crate::store::{
    BuildTrigger, MANAGED_BY_RESOURCE_TYPE, NewBuild, PipelineRecord, ProductRecord, ResourceEvent,
    ResourceInput, ResourceRecord, ResourceVerb, StepRecord, Write,
};

/// The belt of a fan-out product.
pub const FANOUT_BELT: &str = "drivers";

/// A pipeline as a request gives it.
pub struct PipelineInput {
    pub name: String,
    pub description: String,
    pub version: String,
    pub resource: String,
    pub steps: Vec<StepInput>,
    pub metadata: Map<String, Value>,
}

/// A step as a request gives it: its name defaults to its driver's, its id to its name.
pub struct StepInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub driver: String,
}

/// Saves a pipeline and its product.
pub async fn save(s: &Services, p: PipelineInput, mode: Write) -> Result<PipelineRecord> {
    kind_name("name", &p.name, names::MAX_NAME_LEN)?;
    input::text("description", &p.description, MAX_TEXT_LEN)?;
    input::text("version", &p.version, MAX_TEXT_LEN)?;
    catalog::definition(s, &p.resource).await?;
    let steps = steps(p.steps)?;
    let record = PipelineRecord {
        name: p.name,
        description: p.description,
        version: p.version,
        resource: p.resource,
        steps,
        metadata: p.metadata,
        created_at: 0,
        updated_at: 0,
    };
    let summary = format!(
        "pipeline `{}` over resources of type `{}`",
        record.name, record.resource
    );
    let jobs: Vec<(&str, &str)> = record
        .steps
        .iter()
        .map(|st| (st.name.as_str(), st.driver.as_str()))
        .collect();
    let product = product(&record.name, &record.name, &summary, &jobs, true)?;
    Ok(s.store
        .put_pipeline(&record, &product, mode, now_ms())
        .await?)
}

/// Checks each step and fills in its name and id; names are unique.
fn steps(given: Vec<StepInput>) -> Result<Vec<StepRecord>> {
    if given.is_empty() {
        return Err(ServiceError::InvalidField {
            field: "steps".into(),
            message: "`steps` is empty: a pipeline needs at least one step with a `driver`".into(),
        });
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(given.len());
    for (i, st) in given.into_iter().enumerate() {
        let field = format!("steps/{i}");
        kind_name(&format!("{field}/driver"), &st.driver, names::MAX_NAME_LEN)?;
        let name = st
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or(st.driver.clone());
        input::name(&format!("{field}/name"), &name)?;
        if !names::is_node_name(&name) {
            return Err(ServiceError::InvalidField {
                field: format!("{field}/name"),
                message: format!(
                    "`{field}/name` `{name}` is not a valid step name: use letters, digits, \
                     `_` and `-`"
                ),
            });
        }
        if !seen.insert(name.clone()) {
            return Err(ServiceError::InvalidField {
                field: format!("{field}/name"),
                message: format!("two steps are named `{name}`: give each step its own `name`"),
            });
        }
        let id = st.id.filter(|n| !n.is_empty()).unwrap_or(name.clone());
        input::name(&format!("{field}/id"), &id)?;
        out.push(StepRecord {
            id,
            name,
            driver: st.driver,
        });
    }
    Ok(out)
}

/// The config of a managed product: one belt of driver jobs `(name, driver)`, each
/// needing the one before when `chained`. Compiled like any `.conveyor.yml`.
fn product(
    name: &str,
    belt: &str,
    summary: &str,
    jobs: &[(&str, &str)],
    chained: bool,
) -> Result<ProductRecord> {
    let quoted =
        serde_json::to_string(summary).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let mut yaml =
        format!("product: {name}\ndescription: {quoted}\nbelts:\n  - name: {belt}\n    jobs:\n");
    for (i, (job, driver)) in jobs.iter().enumerate() {
        yaml.push_str(&format!("      - name: {job}\n        driver: {driver}\n"));
        if chained && i > 0 {
            yaml.push_str(&format!("        needs: [{}]\n", jobs[i - 1].0));
        }
    }
    let compiled = compile::compile(&format!("{name} (generated)"), &yaml);
    let Some(model) = compiled.product else {
        let errors = compiled
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect();
        return Err(ServiceError::InvalidConfig(errors));
    };
    Ok(ProductRecord::of(model, yaml))
}

/// A pipeline, or not found.
pub async fn get(s: &Services, name: &str) -> Result<PipelineRecord> {
    input::name("name", name)?;
    s.store
        .pipeline(name)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no pipeline `{name}`")))
}

/// Removes a pipeline; its product and builds stay.
pub async fn delete(s: &Services, name: &str) -> Result<()> {
    input::name("name", name)?;
    if s.store.delete_pipeline(name).await? {
        return Ok(());
    }
    Err(ServiceError::NotFound(format!("no pipeline `{name}`")))
}

/// A resource may name a pipeline only if it exists and runs over its type.
pub(super) async fn check_pipeline(s: &Services, name: &str, resource_type: &str) -> Result<()> {
    input::name("pipeline", name)?;
    let invalid = |message| ServiceError::InvalidField {
        field: "pipeline".into(),
        message,
    };
    match s.store.pipeline(name).await? {
        None => Err(invalid(format!(
            "`pipeline` names no pipeline: `{name}` does not exist"
        ))),
        Some(p) if p.resource != resource_type => Err(invalid(format!(
            "`pipeline` `{name}` runs over resources of type `{}`, not `{resource_type}`",
            p.resource
        ))),
        Some(_) => Ok(()),
    }
}

/// Where a resource's change runs: products and their belts.
pub(super) struct Target {
    product: String,
    belt: String,
}

/// The pipeline the resource names, else every pipeline of its type, else its type's
/// fan-out product (re-registered with the drivers listening now), else nothing.
pub(super) async fn targets(s: &Services, r: &ResourceInput) -> Result<Vec<Target>> {
    // A pipeline the resource names may have been deleted since (a delete runs with the
    // resource as it was): then the pipelines of its type run.
    let named = match &r.pipeline {
        Some(p) => s.store.pipeline(p).await?.map(|p| p.name),
        None => None,
    };
    let names: Vec<String> = match named {
        Some(p) => vec![p],
        None => s
            .store
            .pipelines_of(&r.resource_type)
            .await?
            .into_iter()
            .map(|p| p.name)
            .collect(),
    };
    if !names.is_empty() {
        return Ok(names
            .into_iter()
            .map(|n| Target {
                product: n.clone(),
                belt: n,
            })
            .collect());
    }
    let drivers = drivers_of_type(s, &r.resource_type).await?;
    if drivers.is_empty() {
        return Ok(Vec::new());
    }
    let name = format!("{}{FANOUT_SUFFIX}", r.resource_type);
    let summary = format!(
        "the drivers listening to resources of type `{}`",
        r.resource_type
    );
    let jobs: Vec<(&str, &str)> = drivers.iter().map(|d| (d.as_str(), d.as_str())).collect();
    let record = product(&name, FANOUT_BELT, &summary, &jobs, false)?;
    s.store
        .put_managed_product(&record, MANAGED_BY_RESOURCE_TYPE, now_ms())
        .await?;
    Ok(vec![Target {
        product: name,
        belt: FANOUT_BELT.into(),
    }])
}

/// The drivers listening to a resource type (they say so when they register), by name.
async fn drivers_of_type(s: &Services, resource_type: &str) -> Result<Vec<String>> {
    let all = s.store.drivers().await?;
    Ok(all
        .into_iter()
        .filter(|d| d.resources.iter().any(|r| r == resource_type))
        .map(|d| d.name)
        .collect())
}

/// A resource as Conveyor CI shows it (and as a driver's payload carries it): its version
/// also in `metadata.version`, as text.
pub fn resource_json(r: &ResourceRecord) -> Value {
    let mut v = serde_json::json!(r);
    v["metadata"]["version"] = serde_json::json!(r.version.to_string());
    v
}

/// One build per target, triggered by the resource's change.
pub(super) fn plan(targets: &[Target], r: &ResourceRecord, event: ResourceVerb) -> Vec<NewBuild> {
    targets
        .iter()
        .map(|t| NewBuild {
            product: t.product.clone(),
            belt: t.belt.clone(),
            trigger: BuildTrigger::Resource {
                resource_type: r.resource_type.clone(),
                name: r.name.clone(),
                version: r.version,
                event: event.as_str().into(),
            },
            git_ref: None,
            sha: None,
            model: None,
            context: None,
            resource: Some(ResourceEvent {
                resource: resource_json(r),
                event: event.as_str().into(),
            }),
        })
        .collect()
}
