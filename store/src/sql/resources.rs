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
/// Concurrent changes of one resource queue on its row: a create inserts it (a second
/// create finds it there: a conflict), an update or delete locks it before reading it, so
/// two updates write two versions.
pub(crate) async fn change<C: Conn>(
    conn: &mut C,
    event: ResourceVerb,
    input: &ResourceInput,
    plan: PlanRuns<'_>,
    now: i64,
    work: &mut Work,
) -> Result<(ResourceRecord, Vec<String>)> {
    let (t, n) = (&input.resource_type, &input.name);
    let what = format!("resource `{n}` of type `{t}`");
    let record = if event == ResourceVerb::Create {
        let record = next_record(input, None, now);
        let created = conn
            .exec(
                sql(
                    "INSERT INTO resources (type, name, id, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, 1, $4, $4) ON CONFLICT (type, name) DO NOTHING",
                )
                .bind(t)
                .bind(n)
                .bind(&record.id)
                .bind(now),
            )
            .await?;
        if created == 0 {
            return Err(StoreError::Conflict(format!(
                "{what} exists already: update it with PUT /resources/{t}/{n}"
            )));
        }
        insert_version(conn, &record, now).await?;
        record
    } else {
        let lock = "UPDATE resources SET updated_at = updated_at WHERE type = $1 AND name = $2";
        conn.exec(sql(lock).bind(t).bind(n)).await?;
        let Some(old) = resource(conn, t, n, None).await? else {
            return Err(StoreError::NotFound(format!("no {what}")));
        };
        if event == ResourceVerb::Delete {
            for table in ["resource_versions", "resources"] {
                let q = format!("DELETE FROM {table} WHERE type = $1 AND name = $2");
                conn.exec(Sql::owned(q).bind(t).bind(n)).await?;
            }
            old
        } else {
            let record = next_record(input, Some(old), now);
            let bump = "UPDATE resources SET version = $3, updated_at = $4 \
                        WHERE type = $1 AND name = $2";
            let version = i64::try_from(record.version).map_err(corrupt)?;
            conn.exec(sql(bump).bind(t).bind(n).bind(version).bind(now))
                .await?;
            insert_version(conn, &record, now).await?;
            record
        }
    };
    let mut ids = Vec::new();
    for new in plan(&record) {
        ids.push(builds::insert_build(conn, &new, None, now, work).await?);
    }
    Ok((record, ids))
}

/// The record of the next version (1 for a new resource).
fn next_record(input: &ResourceInput, old: Option<ResourceRecord>, now: i64) -> ResourceRecord {
    ResourceRecord {
        id: old
            .as_ref()
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), |o| o.id.clone()),
        name: input.name.clone(),
        resource_type: input.resource_type.clone(),
        pipeline: input.pipeline.clone(),
        version: old.as_ref().map_or(1, |o| o.version + 1),
        metadata: input.metadata.clone(),
        spec: input.spec.clone(),
        created_at: old.as_ref().map_or(now, |o| o.created_at),
        updated_at: now,
    }
}

async fn insert_version<C: Conn>(conn: &mut C, r: &ResourceRecord, now: i64) -> Result<()> {
    conn.exec(
        sql(
            "INSERT INTO resource_versions (type, name, version, pipeline, metadata, spec, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.resource_type)
        .bind(&r.name)
        .bind(i64::try_from(r.version).map_err(corrupt)?)
        .bind(&r.pipeline)
        .bind(to_json(&r.metadata)?)
        .bind(to_json(&r.spec)?)
        .bind(now),
    )
    .await?;
    Ok(())
}
