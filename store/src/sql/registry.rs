//! What is registered: products, runners, and the webhook deliveries already handled.

use super::conn::{Conn, sql};
use super::rows::{self, ProductRow, RunnerRow, each};
use super::to_json;
use crate::error::Result;
use crate::types::{ProductRecord, RunnerView};

/// Registers a product, or replaces its config.
pub(crate) async fn put_product<C: Conn>(conn: &mut C, p: &ProductRecord, now: i64) -> Result<()> {
    conn.exec(
        sql(
            "INSERT INTO products (name, yaml, model, repo, branch, webhook_secret, source_path, \
             head_sha, config_path, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $10, $8, $8) \
             ON CONFLICT (name) DO UPDATE SET yaml = excluded.yaml, model = excluded.model, \
             repo = excluded.repo, branch = excluded.branch, \
             webhook_secret = excluded.webhook_secret, source_path = excluded.source_path, \
             head_sha = excluded.head_sha, config_path = excluded.config_path, \
             updated_at = excluded.updated_at",
        )
        .bind(&p.name)
        .bind(&p.yaml)
        .bind(to_json(&p.model)?)
        .bind(&p.repo)
        .bind(&p.branch)
        .bind(&p.webhook_secret)
        .bind(&p.source_path)
        .bind(now)
        .bind(&p.head_sha)
        .bind(&p.config_path),
    )
    .await?;
    Ok(())
}

pub(crate) async fn product<C: Conn>(conn: &mut C, name: &str) -> Result<Option<ProductRecord>> {
    let row: Option<ProductRow> = conn.opt(sql(rows::PRODUCT_ONE).bind(name)).await?;
    row.map(ProductRow::record).transpose()
}

pub(crate) async fn products<C: Conn>(conn: &mut C) -> Result<Vec<ProductRecord>> {
    let found: Vec<ProductRow> = conn.all(sql(rows::PRODUCT_ALL)).await?;
    each(found, ProductRow::record)
}

/// Registers a runner (or re-registers one by name, replacing its token); returns its id.
pub(crate) async fn register_runner<C: Conn>(
    conn: &mut C,
    name: &str,
    fleets: &[String],
    token_hash: &str,
    now: i64,
) -> Result<String> {
    let (id,): (String,) = conn
        .one(
            sql(
                "INSERT INTO runners (id, name, fleets, token_hash, last_seen_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO UPDATE SET \
                 fleets = excluded.fleets, token_hash = excluded.token_hash, \
                 last_seen_at = excluded.last_seen_at RETURNING id",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(name)
            .bind(to_json(&fleets)?)
            .bind(token_hash)
            .bind(now),
        )
        .await?;
    Ok(id)
}

/// The runner whose token has this hash, marking it seen.
pub(crate) async fn runner_seen<C: Conn>(
    conn: &mut C,
    token_hash: &str,
    now: i64,
) -> Result<Option<RunnerView>> {
    let row: Option<RunnerRow> = conn
        .opt(
            sql(
                "UPDATE runners SET last_seen_at = $2 WHERE token_hash = $1 \
                 RETURNING id, name, fleets, last_seen_at, created_at",
            )
            .bind(token_hash)
            .bind(now),
        )
        .await?;
    row.map(RunnerRow::view).transpose()
}

pub(crate) async fn runners<C: Conn>(conn: &mut C) -> Result<Vec<RunnerView>> {
    let found: Vec<RunnerRow> = conn
        .all(sql(
            "SELECT id, name, fleets, last_seen_at, created_at FROM runners ORDER BY name",
        ))
        .await?;
    each(found, RunnerRow::view)
}

/// Records a webhook delivery; false if it was recorded before (a replay).
pub(crate) async fn record_delivery<C: Conn>(
    conn: &mut C,
    forge: &str,
    delivery_id: &str,
    now: i64,
) -> Result<bool> {
    let n = conn
        .exec(
            sql(
                "INSERT INTO deliveries (forge, delivery_id, received_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(forge)
            .bind(delivery_id)
            .bind(now),
        )
        .await?;
    Ok(n == 1)
}
