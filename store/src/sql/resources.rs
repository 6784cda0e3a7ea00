//! Resources and their versions: each create or update writes a new version (the first is
//! 1), a delete removes the resource and its versions; each of them, in the same
//! transaction, inserts the builds the caller planned for it.

use sqlx::FromRow;

use super::conn::{Conn, Sql, sql};
use super::{Work, builds, from_json, to_json};
use crate::catalog::{PlanRuns, ResourceInput, ResourceRecord, ResourceVerb};
use crate::error::{Result, StoreError, corrupt};

const RESOURCE_COLUMNS: &str = "SELECT r.id, r.type, r.name, v.version, v.pipeline, \
     v.metadata, v.spec, r.created_at, v.created_at AS updated_at FROM resources r \
     JOIN resource_versions v ON v.type = r.type AND v.name = r.name";

#[derive(FromRow)]
struct ResourceRow {
    id: String,
    r#type: String,
    name: String,
    version: i64,
    pipeline: Option<String>,
    metadata: String,
    spec: String,
    created_at: i64,
    updated_at: i64,
}

impl ResourceRow {
    fn record(self) -> Result<ResourceRecord> {
        Ok(ResourceRecord {
            version: u64::try_from(self.version).map_err(corrupt)?,
            metadata: from_json(&self.metadata)?,
            spec: from_json(&self.spec)?,
            id: self.id,
            resource_type: self.r#type,
            name: self.name,
            pipeline: self.pipeline,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A resource at `version`, or its latest when `None`.
pub(crate) async fn resource<C: Conn>(
    conn: &mut C,
    resource_type: &str,
    name: &str,
    version: Option<u64>,
) -> Result<Option<ResourceRecord>> {
    let q = Sql::owned(format!(
        "{RESOURCE_COLUMNS} WHERE r.type = $1 AND r.name = $2 AND {}",
        match version {
            Some(_) => "v.version = $3",
            None => "v.version = r.version",
        }
    ))
    .bind(resource_type)
    .bind(name);
    let q = match version {
        Some(v) => q.bind(i64::try_from(v).map_err(corrupt)?),
        None => q,
    };
    let row: Option<ResourceRow> = conn.opt(q).await?;
    row.map(ResourceRow::record).transpose()
}

pub(crate) async fn resources<C: Conn>(
    conn: &mut C,
    resource_type: &str,
) -> Result<Vec<ResourceRecord>> {
    let q =
        format!("{RESOURCE_COLUMNS} WHERE r.type = $1 AND v.version = r.version ORDER BY r.name");
    let rows: Vec<ResourceRow> = conn.all(Sql::owned(q).bind(resource_type)).await?;
    rows.into_iter().map(ResourceRow::record).collect()
}

/// Writes the change and the builds `plan` makes of it; the record and the builds' ids.
pub(crate) async fn change<C: Conn>(
    conn: &mut C,
    event: ResourceVerb,
    input: &ResourceInput,
    plan: PlanRuns<'_>,
    now: i64,
    work: &mut Work,
) -> Result<(ResourceRecord, Vec<String>)> {
    let (t, n) = (&input.resource_type, &input.name);
    let current = resource(conn, t, n, None).await?;
    let what = format!("resource `{n}` of type `{t}`");
    let record = match (event, current) {
        (ResourceVerb::Create, Some(_)) => {
            return Err(StoreError::Conflict(format!(
                "{what} exists already: update it with PUT /resources/{t}/{n}"
            )));
        }
        (ResourceVerb::Create, None) => write_version(conn, input, None, now).await?,
        (_, None) => return Err(StoreError::NotFound(format!("no {what}"))),
        (ResourceVerb::Update, Some(old)) => write_version(conn, input, Some(old), now).await?,
        (ResourceVerb::Delete, Some(old)) => {
            for table in ["resource_versions", "resources"] {
                let q = format!("DELETE FROM {table} WHERE type = $1 AND name = $2");
                conn.exec(Sql::owned(q).bind(t).bind(n)).await?;
            }
            old
        }
    };
    let mut ids = Vec::new();
    for new in plan(&record) {
        ids.push(builds::insert_build(conn, &new, None, now, work).await?);
    }
    Ok((record, ids))
}

/// Writes the next version (1 for a new resource).
async fn write_version<C: Conn>(
    conn: &mut C,
    input: &ResourceInput,
    old: Option<ResourceRecord>,
    now: i64,
) -> Result<ResourceRecord> {
    let (t, n) = (&input.resource_type, &input.name);
    let record = ResourceRecord {
        id: old
            .as_ref()
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), |o| o.id.clone()),
        name: n.clone(),
        resource_type: t.clone(),
        pipeline: input.pipeline.clone(),
        version: old.as_ref().map_or(1, |o| o.version + 1),
        metadata: input.metadata.clone(),
        spec: input.spec.clone(),
        created_at: old.as_ref().map_or(now, |o| o.created_at),
        updated_at: now,
    };
    let version = i64::try_from(record.version).map_err(corrupt)?;
    let upsert = "INSERT INTO resources (type, name, id, version, created_at, updated_at) \
                  VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (type, name) DO UPDATE \
                  SET version = excluded.version, updated_at = excluded.updated_at";
    conn.exec(
        sql(upsert)
            .bind(t)
            .bind(n)
            .bind(&record.id)
            .bind(version)
            .bind(now),
    )
    .await?;
    conn.exec(
        sql(
            "INSERT INTO resource_versions (type, name, version, pipeline, metadata, spec, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t)
        .bind(n)
        .bind(version)
        .bind(&record.pipeline)
        .bind(to_json(&record.metadata)?)
        .bind(to_json(&record.spec)?)
        .bind(now),
    )
    .await?;
    Ok(record)
}
