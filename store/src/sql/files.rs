//! Artifacts and caches as the store records them: which file of which job run's attempt
//! is where in object storage (recorded only under the attempt's live lease), what a job
//! receives when it is claimed, and caches by product, scope and key with their last use.

use conveyor_core::model::{Input, Job};
use conveyor_core::protocol::{ArtifactRef, Lease};
use sqlx::FromRow;

use super::conn::{Conn, sql};
use super::values;
use crate::error::Result;
use crate::types::{ArtifactView, CacheView, LeaseInfo, StoredFile};

const ARTIFACT_COLUMNS: &str = "a.id, a.build_id, a.job_run_id, j.name AS job, a.path, a.size, \
     a.sha256, a.object, a.created_at FROM artifacts a JOIN job_runs j ON j.id = a.job_run_id \
     AND j.attempt = a.attempt";

#[derive(FromRow)]
struct ArtifactRow {
    id: String,
    build_id: String,
    job_run_id: String,
    job: String,
    path: String,
    size: i64,
    sha256: String,
    object: String,
    created_at: i64,
}

impl ArtifactRow {
    fn view(self) -> ArtifactView {
        ArtifactView {
            id: self.id,
            build_id: self.build_id,
            job_run_id: self.job_run_id,
            job: self.job,
            path: self.path,
            size: u64::try_from(self.size).unwrap_or(0),
            sha256: self.sha256,
            object: self.object,
            created_at: self.created_at,
        }
    }
}

#[derive(FromRow)]
struct LeaseRow {
    build_id: String,
    product: String,
    git_ref: Option<String>,
    branch: Option<String>,
}

/// The job run `owner`'s lease holds while it is live.
pub(crate) async fn lease_info<C: Conn>(
    conn: &mut C,
    lease: &Lease,
    owner: &str,
) -> Result<Option<LeaseInfo>> {
    let row: Option<LeaseRow> = conn
        .opt(
            sql(
                "SELECT j.build_id, b.product, b.git_ref, p.branch FROM job_runs j \
                 JOIN builds b ON b.id = j.build_id JOIN products p ON p.name = b.product \
                 WHERE j.id = $1 AND j.attempt = $2 AND j.lease_token = $3 \
                 AND j.lease_owner = $4 AND j.status = 'running'",
            )
            .bind(&lease.job_run_id)
            .bind(lease.attempt)
            .bind(&lease.lease_token)
            .bind(owner),
        )
        .await?;
    Ok(row.map(|r| LeaseInfo {
        build_id: r.build_id,
        product: r.product,
        git_ref: r.git_ref,
        default_branch: r.branch,
    }))
}

/// Records a file under `owner`'s live lease (the same path sent again replaces it); `None`
/// if the lease is gone.
pub(crate) async fn add_artifact<C: Conn>(
    conn: &mut C,
    lease: &Lease,
    owner: &str,
    file: &StoredFile,
    now: i64,
) -> Result<Option<ArtifactView>> {
    let id: Option<(String,)> = conn
        .opt(
            sql(
                "INSERT INTO artifacts (id, build_id, job_run_id, attempt, path, size, sha256, \
                 object, created_at) SELECT $1, build_id, id, attempt, $5, $6, $7, $8, $9 \
                 FROM job_runs WHERE id = $2 AND attempt = $3 AND lease_token = $4 \
                 AND lease_owner = $10 AND status = 'running' \
                 ON CONFLICT (job_run_id, attempt, path) DO UPDATE SET size = excluded.size, \
                 sha256 = excluded.sha256, object = excluded.object, \
                 created_at = excluded.created_at RETURNING id",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&lease.job_run_id)
            .bind(lease.attempt)
            .bind(&lease.lease_token)
            .bind(&file.name)
            .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
            .bind(&file.sha256)
            .bind(&file.object)
            .bind(now)
            .bind(owner),
        )
        .await?;
    match id {
        Some((id,)) => artifact(conn, &id).await,
        None => Ok(None),
    }
}

pub(crate) async fn artifact<C: Conn>(conn: &mut C, id: &str) -> Result<Option<ArtifactView>> {
    let q = format!("SELECT {ARTIFACT_COLUMNS} WHERE a.id = $1");
    let row: Option<ArtifactRow> = conn.opt(sql_owned(q).bind(id)).await?;
    Ok(row.map(ArtifactRow::view))
}

/// The artifacts of each job run's current attempt, in belt order.
pub(crate) async fn build_artifacts<C: Conn>(
    conn: &mut C,
    build_id: &str,
) -> Result<Vec<ArtifactView>> {
    let q = format!("SELECT {ARTIFACT_COLUMNS} WHERE a.build_id = $1 ORDER BY j.idx, a.path");
    let rows: Vec<ArtifactRow> = conn.all(sql_owned(q).bind(build_id)).await?;
    Ok(rows.into_iter().map(ArtifactRow::view).collect())
}

fn sql_owned(text: String) -> super::conn::Sql {
    super::conn::Sql::owned(text)
}

/// What a claimed job receives: the artifacts of the job runs it depends on, then those of
/// the upstream builds its product inputs name.
pub(crate) async fn inputs_of<C: Conn>(
    conn: &mut C,
    build_id: &str,
    job_run_id: &str,
    job: &Job,
) -> Result<Vec<ArtifactRef>> {
    let q = format!(
        "SELECT {ARTIFACT_COLUMNS} WHERE a.job_run_id IN \
         (SELECT from_run FROM job_edges WHERE to_run = $1) ORDER BY j.idx, a.path"
    );
    let mut rows: Vec<ArtifactRow> = conn.all(sql_owned(q).bind(job_run_id)).await?;
    for input in &job.inputs {
        let Input::Product { target, .. } = input else {
            continue;
        };
        let up = values::upstream_build(conn, build_id, &target.product, target.belt.as_deref());
        let Some(up) = up.await? else { continue };
        let q = format!(
            "SELECT {ARTIFACT_COLUMNS} WHERE a.build_id = $1 \
             AND (CAST($2 AS TEXT) IS NULL OR j.name = $2) ORDER BY j.idx, a.path"
        );
        let more: Vec<ArtifactRow> = conn
            .all(sql_owned(q).bind(&up).bind(target.job.as_deref()))
            .await?;
        rows.extend(more);
    }
    Ok(rows
        .into_iter()
        .map(|r| ArtifactRef {
            id: r.id,
            path: r.path,
            size: u64::try_from(r.size).unwrap_or(0),
            sha256: r.sha256,
        })
        .collect())
}

const CACHE_COLUMNS: &str =
    "SELECT id, product, scope, name, cache_key, size, sha256, object, used_at FROM caches";

#[derive(FromRow)]
struct CacheRow {
    id: String,
    product: String,
    scope: String,
    name: String,
    cache_key: String,
    size: i64,
    sha256: String,
    object: String,
    used_at: i64,
}

impl CacheRow {
    fn view(self) -> CacheView {
        CacheView {
            id: self.id,
            product: self.product,
            scope: self.scope,
            name: self.name,
            key: self.cache_key,
            size: u64::try_from(self.size).unwrap_or(0),
            sha256: self.sha256,
            object: self.object,
            used_at: self.used_at,
        }
    }
}

/// The cache to restore: `key` in the first scope that has it, else the newest cache named
/// `name` in the first scope that has one; marked used at `now`.
pub(crate) async fn find_cache<C: Conn>(
    conn: &mut C,
    product: &str,
    scopes: &[String],
    name: &str,
    key: &str,
    now: i64,
) -> Result<Option<CacheView>> {
    let exact = format!("{CACHE_COLUMNS} WHERE product = $1 AND scope = $2 AND cache_key = $3");
    let newest = format!(
        "{CACHE_COLUMNS} WHERE product = $1 AND scope = $2 AND name = $3 \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    );
    for (q, wanted) in [(exact, key), (newest, name)] {
        for scope in scopes {
            let q = sql_owned(q.clone()).bind(product).bind(scope).bind(wanted);
            let row: Option<CacheRow> = conn.opt(q).await?;
            if let Some(row) = row {
                conn.exec(
                    sql("UPDATE caches SET used_at = $2 WHERE id = $1")
                        .bind(&row.id)
                        .bind(now),
                )
                .await?;
                return Ok(Some(CacheView {
                    used_at: now,
                    ..row.view()
                }));
            }
        }
    }
    Ok(None)
}

pub(crate) async fn cache<C: Conn>(conn: &mut C, id: &str) -> Result<Option<CacheView>> {
    let q = format!("{CACHE_COLUMNS} WHERE id = $1");
    let row: Option<CacheRow> = conn.opt(sql_owned(q).bind(id)).await?;
    Ok(row.map(CacheRow::view))
}

/// Records a cache; `None` if the scope has that key already (the first one stays).
pub(crate) async fn put_cache<C: Conn>(
    conn: &mut C,
    product: &str,
    scope: &str,
    cache_name: &str,
    file: &StoredFile,
    now: i64,
) -> Result<Option<CacheView>> {
    let id: Option<(String,)> = conn
        .opt(
            sql(
                "INSERT INTO caches (id, product, scope, name, cache_key, size, sha256, object, \
                 created_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                 ON CONFLICT (product, scope, cache_key) DO NOTHING RETURNING id",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(product)
            .bind(scope)
            .bind(cache_name)
            .bind(&file.name)
            .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
            .bind(&file.sha256)
            .bind(&file.object)
            .bind(now),
        )
        .await?;
    match id {
        Some((id,)) => cache(conn, &id).await,
        None => Ok(None),
    }
}

/// Removes the product's least recently used caches until the rest fit in `limit` bytes;
/// the removed ones, whose objects the caller deletes.
pub(crate) async fn evict_caches<C: Conn>(
    conn: &mut C,
    product: &str,
    limit: u64,
) -> Result<Vec<CacheView>> {
    let q = format!("{CACHE_COLUMNS} WHERE product = $1 ORDER BY used_at DESC, id DESC");
    let rows: Vec<CacheRow> = conn.all(sql_owned(q).bind(product)).await?;
    let mut kept = 0u64;
    let mut removed = Vec::new();
    for row in rows {
        let view = row.view();
        if kept + view.size <= limit {
            kept += view.size;
            continue;
        }
        conn.exec(sql("DELETE FROM caches WHERE id = $1").bind(&view.id))
            .await?;
        removed.push(view);
    }
    Ok(removed)
}
