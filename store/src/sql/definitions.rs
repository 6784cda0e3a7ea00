//! Resource definitions, pipelines and the products they manage, as rows.

use serde_json::{Map, Value};
use sqlx::FromRow;

use super::conn::{Conn, sql};
use super::{from_json, registry, to_json};
use crate::catalog::{DefinitionRecord, MANAGED_BY_PIPELINE, PipelineRecord, StepRecord, Write};
use crate::error::{Result, StoreError};
use crate::types::ProductRecord;

const DEFINITION_COLUMNS: &str = "SELECT name, id, description, version, schema, created_at, updated_at FROM resource_definitions";

#[derive(FromRow)]
struct DefinitionRow {
    name: String,
    id: String,
    description: String,
    version: String,
    schema: String,
    created_at: i64,
    updated_at: i64,
}

impl DefinitionRow {
    fn record(self) -> Result<DefinitionRecord> {
        Ok(DefinitionRecord {
            schema: from_json(&self.schema)?,
            id: self.id,
            name: self.name,
            description: self.description,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Refuses a write that does not fit what is stored (`existed`: a row of that name was
/// there).
fn check_mode(mode: Write, existed: bool, what: &str) -> Result<()> {
    match (mode, existed) {
        (Write::Create, true) => Err(StoreError::Conflict(format!(
            "{what} exists already: update it with PUT, or choose another name"
        ))),
        (Write::Replace, false) => Err(StoreError::NotFound(format!("no {what}"))),
        _ => Ok(()),
    }
}

pub(crate) async fn put_definition<C: Conn>(
    conn: &mut C,
    def: &DefinitionRecord,
    mode: Write,
    now: i64,
) -> Result<DefinitionRecord> {
    let old = definition(conn, &def.name).await?;
    check_mode(
        mode,
        old.is_some(),
        &format!("resource definition `{}`", def.name),
    )?;
    let (id, created_at) = old.map_or((def.id.clone(), now), |o| (o.id, o.created_at));
    let written = conn
        .exec(
            sql(
                "INSERT INTO resource_definitions (name, id, description, version, schema, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (name) DO UPDATE SET description = excluded.description, \
             version = excluded.version, schema = excluded.schema, \
             updated_at = excluded.updated_at WHERE $8",
            )
            .bind(&def.name)
            .bind(&id)
            .bind(&def.description)
            .bind(&def.version)
            .bind(to_json(&def.schema)?)
            .bind(created_at)
            .bind(now)
            .bind(mode != Write::Create),
        )
        .await?;
    // A create that met a row written since it looked (two at once) changes nothing.
    if written == 0 {
        check_mode(mode, true, &format!("resource definition `{}`", def.name))?;
    }
    definition(conn, &def.name)
        .await?
        .ok_or_else(|| StoreError::Database("a definition just saved is missing".into()))
}

pub(crate) async fn definition<C: Conn>(
    conn: &mut C,
    name: &str,
) -> Result<Option<DefinitionRecord>> {
    let q = format!("{DEFINITION_COLUMNS} WHERE name = $1");
    let row: Option<DefinitionRow> = conn.opt(super::conn::Sql::owned(q).bind(name)).await?;
    row.map(DefinitionRow::record).transpose()
}

pub(crate) async fn definitions<C: Conn>(conn: &mut C) -> Result<Vec<DefinitionRecord>> {
    let q = format!("{DEFINITION_COLUMNS} ORDER BY name");
    let rows: Vec<DefinitionRow> = conn.all(super::conn::Sql::owned(q)).await?;
    rows.into_iter().map(DefinitionRow::record).collect()
}

/// Removes a definition unless resources or pipelines use it.
pub(crate) async fn delete_definition<C: Conn>(conn: &mut C, name: &str) -> Result<bool> {
    let (resources,): (i64,) = conn
        .one(sql("SELECT COUNT(*) FROM resources WHERE type = $1").bind(name))
        .await?;
    let users: Vec<(String,)> = conn
        .all(sql("SELECT name FROM pipelines WHERE resource = $1 ORDER BY name").bind(name))
        .await?;
    let mut users: Vec<String> = users
        .into_iter()
        .map(|(n,)| format!("pipeline `{n}`"))
        .collect();
    if resources > 0 {
        users.insert(0, format!("{resources} resource(s)"));
    }
    if !users.is_empty() {
        return Err(StoreError::Conflict(format!(
            "resource definition `{name}` is still used by {}: delete them first",
            users.join(", ")
        )));
    }
    let n = conn
        .exec(sql("DELETE FROM resource_definitions WHERE name = $1").bind(name))
        .await?;
    Ok(n == 1)
}

/// Registers a product an owner manages, unless a product of that name belongs to
/// someone else.
pub(crate) async fn put_managed_product<C: Conn>(
    conn: &mut C,
    p: &ProductRecord,
    owner: &str,
    now: i64,
) -> Result<()> {
    if let Some(current) = product_owner(conn, &p.name).await?
        && current.as_deref() != Some(owner)
    {
        let whose = current.map_or("a registered".to_string(), |o| format!("a {o}'s"));
        return Err(StoreError::Conflict(format!(
            "the name `{}` is taken by {whose} product: choose another name",
            p.name
        )));
    }
    registry::put_product(conn, p, now).await?;
    conn.exec(
        sql("UPDATE products SET managed_by = $2 WHERE name = $1")
            .bind(&p.name)
            .bind(owner),
    )
    .await?;
    Ok(())
}

pub(crate) async fn product_owner<C: Conn>(
    conn: &mut C,
    name: &str,
) -> Result<Option<Option<String>>> {
    let row: Option<(Option<String>,)> = conn
        .opt(sql("SELECT managed_by FROM products WHERE name = $1").bind(name))
        .await?;
    Ok(row.map(|(o,)| o))
}

const PIPELINE_COLUMNS: &str = "SELECT name, resource, description, version, steps, metadata, \
     created_at, updated_at FROM pipelines";

#[derive(FromRow)]
struct PipelineRow {
    name: String,
    resource: String,
    description: String,
    version: String,
    steps: String,
    metadata: String,
    created_at: i64,
    updated_at: i64,
}

impl PipelineRow {
    fn record(self) -> Result<PipelineRecord> {
        let steps: Vec<StepRecord> = from_json(&self.steps)?;
        let metadata: Map<String, Value> = from_json(&self.metadata)?;
        Ok(PipelineRecord {
            name: self.name,
            resource: self.resource,
            description: self.description,
            version: self.version,
            steps,
            metadata,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(crate) async fn put_pipeline<C: Conn>(
    conn: &mut C,
    p: &PipelineRecord,
    product: &ProductRecord,
    mode: Write,
    now: i64,
) -> Result<PipelineRecord> {
    let old = pipeline(conn, &p.name).await?;
    check_mode(mode, old.is_some(), &format!("pipeline `{}`", p.name))?;
    put_managed_product(conn, product, MANAGED_BY_PIPELINE, now).await?;
    let created_at = old.map_or(now, |o| o.created_at);
    let written = conn
        .exec(
            sql(
                "INSERT INTO pipelines (name, resource, description, version, steps, metadata, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (name) DO UPDATE SET resource = excluded.resource, \
             description = excluded.description, version = excluded.version, \
             steps = excluded.steps, metadata = excluded.metadata, \
             updated_at = excluded.updated_at WHERE $9",
            )
            .bind(&p.name)
            .bind(&p.resource)
            .bind(&p.description)
            .bind(&p.version)
            .bind(to_json(&p.steps)?)
            .bind(to_json(&p.metadata)?)
            .bind(created_at)
            .bind(now)
            .bind(mode != Write::Create),
        )
        .await?;
    if written == 0 {
        check_mode(mode, true, &format!("pipeline `{}`", p.name))?;
    }
    pipeline(conn, &p.name)
        .await?
        .ok_or_else(|| StoreError::Database("a pipeline just saved is missing".into()))
}

pub(crate) async fn pipeline<C: Conn>(conn: &mut C, name: &str) -> Result<Option<PipelineRecord>> {
    let q = format!("{PIPELINE_COLUMNS} WHERE name = $1");
    let row: Option<PipelineRow> = conn.opt(super::conn::Sql::owned(q).bind(name)).await?;
    row.map(PipelineRow::record).transpose()
}

/// Every pipeline, or those over one resource type, by name.
pub(crate) async fn pipelines<C: Conn>(
    conn: &mut C,
    resource_type: Option<&str>,
) -> Result<Vec<PipelineRecord>> {
    let q = format!(
        "{PIPELINE_COLUMNS} WHERE (CAST($1 AS TEXT) IS NULL OR resource = $1) ORDER BY name"
    );
    let rows: Vec<PipelineRow> = conn
        .all(super::conn::Sql::owned(q).bind(resource_type))
        .await?;
    rows.into_iter().map(PipelineRow::record).collect()
}

pub(crate) async fn delete_pipeline<C: Conn>(conn: &mut C, name: &str) -> Result<bool> {
    let n = conn
        .exec(sql("DELETE FROM pipelines WHERE name = $1").bind(name))
        .await?;
    Ok(n == 1)
}
