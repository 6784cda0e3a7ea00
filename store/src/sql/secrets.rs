//! Secrets as the store keeps them: sealed values by scope and name, and which of them a
//! claimed job run receives.

use conveyor_core::model::Job;
use sqlx::FromRow;

use super::conn::{Conn, sql};
use crate::error::Result;
use crate::types::SecretInfo;

pub(crate) async fn put<C: Conn>(
    conn: &mut C,
    scope: &str,
    name: &str,
    sealed: &str,
    now: i64,
) -> Result<()> {
    conn.exec(
        sql(
            "INSERT INTO secrets (scope, name, sealed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (scope, name) DO UPDATE SET \
             sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(scope)
        .bind(name)
        .bind(sealed)
        .bind(now),
    )
    .await?;
    Ok(())
}

#[derive(FromRow)]
struct InfoRow {
    scope: String,
    name: String,
    created_at: i64,
    updated_at: i64,
}

pub(crate) async fn list<C: Conn>(conn: &mut C, scope: &str) -> Result<Vec<SecretInfo>> {
    let rows: Vec<InfoRow> = conn
        .all(
            sql(
                "SELECT scope, name, created_at, updated_at FROM secrets WHERE scope = $1 \
                 ORDER BY name",
            )
            .bind(scope),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| SecretInfo {
            scope: r.scope,
            name: r.name,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

pub(crate) async fn delete<C: Conn>(conn: &mut C, scope: &str, name: &str) -> Result<bool> {
    let n = conn
        .exec(
            sql("DELETE FROM secrets WHERE scope = $1 AND name = $2")
                .bind(scope)
                .bind(name),
        )
        .await?;
    Ok(n == 1)
}

pub(crate) async fn set_pr_secrets<C: Conn>(
    conn: &mut C,
    product: &str,
    allowed: bool,
) -> Result<bool> {
    let n = conn
        .exec(
            sql("UPDATE products SET pr_secrets = $2 WHERE name = $1")
                .bind(product)
                .bind(allowed),
        )
        .await?;
    Ok(n == 1)
}

pub(crate) async fn pr_secrets<C: Conn>(conn: &mut C, product: &str) -> Result<Option<bool>> {
    let row: Option<(bool,)> = conn
        .opt(sql("SELECT pr_secrets FROM products WHERE name = $1").bind(product))
        .await?;
    Ok(row.map(|(b,)| b))
}

/// The secrets a claimed job run of `product` receives, sealed, and the names set nowhere.
/// A pull request's build (its ref is a pull or merge request's) gets none unless the
/// product allows it; then nothing counts as missing either.
pub(crate) async fn for_job<C: Conn>(
    conn: &mut C,
    product: &str,
    git_ref: Option<&str>,
    job: &Job,
) -> Result<(Vec<(String, String)>, Vec<String>)> {
    if job.secrets.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let pull_request = git_ref
        .is_some_and(|r| r.starts_with("refs/pull/") || r.starts_with("refs/merge-requests/"));
    if pull_request && pr_secrets(conn, product).await? != Some(true) {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &job.secrets {
        let row: Option<(String,)> = conn
            .opt(
                sql(
                    "SELECT sealed FROM secrets WHERE name = $1 AND scope IN ($2, '') \
                     ORDER BY scope DESC LIMIT 1",
                )
                .bind(name)
                .bind(product),
            )
            .await?;
        match row {
            Some((sealed,)) => found.push((name.clone(), sealed)),
            None => missing.push(name.clone()),
        }
    }
    Ok((found, missing))
}
