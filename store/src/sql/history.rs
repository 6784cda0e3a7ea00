//! Keyset pages of builds in a constant number of statements (the page, then the job runs
//! of all its builds), and each belt's latest build per state ([`History`]).

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::FromRow;

use super::conn::{Arg, Conn, Sql, sql};
use super::rows::{self, BuildRow, JobRow, ProductRow, each};
use super::{Backend, SqlStore, chain, groups, retention};
use crate::error::{Result, StoreError};
use crate::history::{BuildChain, History, Retention, Swept, parse_cursor};
use crate::types::{BuildFilter, BuildView, JobRunView, ProductRecord};

/// The states a belt's latest build is looked up in.
const STATES: [&str; 5] = [
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "config_error",
];
/// The columns `BuildRow` and `JobRow` decode, taken from their one-row statements so that
/// a column added there is selected here too.
fn columns(one_row: &'static str) -> &'static str {
    let cols = one_row.strip_prefix("SELECT ").unwrap_or(one_row);
    cols.split(" FROM ").next().unwrap_or(cols)
}

/// The largest page a list gives.
pub(crate) const MAX_PAGE: u32 = 500;

#[derive(FromRow)]
struct PagedJob {
    build_id: String,
    #[sqlx(flatten)]
    job: JobRow,
}

/// A `WHERE` clause built from our own fragments, one `$n` per argument.
#[derive(Default)]
struct Clause {
    text: Vec<String>,
    args: Vec<Arg>,
}

impl Clause {
    fn next(&self) -> usize {
        self.args.len() + 1
    }

    fn eq(&mut self, column: &str, value: &Option<String>) {
        if let Some(v) = value {
            let n = self.next();
            self.text.push(format!("{column} = ${n}"));
            self.args.push(v.clone().into());
        }
    }

    fn sql(self, head: &str, tail: &str) -> Sql {
        let clause = if self.text.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.text.join(" AND "))
        };
        let mut q = Sql::owned(format!("{head}{clause}{tail}"));
        for a in self.args {
            q = q.bind(a);
        }
        q
    }
}

/// One page of builds, newest first, with their job runs (two statements, plus one per
/// job run waiting for a concurrency group).
pub(crate) async fn builds<C: Conn>(conn: &mut C, f: &BuildFilter) -> Result<Vec<BuildView>> {
    let mut w = Clause::default();
    w.eq("product", &f.product);
    w.eq("belt", &f.belt);
    w.eq("status", &f.status);
    w.eq("trigger_kind", &f.trigger);
    if let Some(r) = &f.git_ref {
        let n = w.next();
        w.text.push(format!("git_ref IN (${n}, ${})", n + 1));
        w.args.push(r.clone().into());
        w.args.push(format!("refs/heads/{r}").into());
    }
    if let Some(c) = &f.before {
        let (at, id) = parse_cursor(c)
            .ok_or_else(|| StoreError::Conflict(format!("`{c}` is not a cursor")))?;
        let n = w.next();
        // A row comparison, which both planners take as an index bound.
        w.text
            .push(format!("(created_at, id) < (${n}, ${})", n + 1));
        w.args.push(at.into());
        w.args.push(id.into());
    }
    let limit = f.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let head = format!("SELECT {} FROM builds", columns(rows::BUILD_ONE));
    let tail = format!(" ORDER BY created_at DESC, id DESC LIMIT {limit}");
    let found: Vec<BuildRow> = conn.all(w.sql(&head, &tail)).await?;
    let mut builds = each(found, BuildRow::view)?;
    attach_jobs(conn, &mut builds).await?;
    Ok(builds)
}

/// Fills in the job runs of `builds` from one statement.
async fn attach_jobs<C: Conn>(conn: &mut C, builds: &mut [BuildView]) -> Result<()> {
    if builds.is_empty() {
        return Ok(());
    }
    let marks: Vec<String> = (1..=builds.len()).map(|n| format!("${n}")).collect();
    let mut q = Sql::owned(format!(
        "SELECT build_id, {} FROM job_runs WHERE build_id IN ({}) ORDER BY build_id, idx",
        columns(rows::JOB_ONE),
        marks.join(", ")
    ));
    for b in builds.iter() {
        q = q.bind(b.id.clone());
    }
    let rows: Vec<PagedJob> = conn.all(q).await?;
    let mut by_build: HashMap<String, Vec<JobRunView>> = HashMap::new();
    for r in rows {
        let mut job = r.job.view()?;
        if job.waiting_for.as_deref() == Some("concurrency") {
            job.waiting_for = groups::waiting_for(conn, &job.id).await?;
        }
        by_build.entry(r.build_id).or_default().push(job);
    }
    for b in builds.iter_mut() {
        b.jobs = by_build.remove(&b.id).unwrap_or_default();
        if b.finished_at.is_none() {
            b.waiting_for = groups::waiting_for(conn, &b.id).await?;
        }
    }
    Ok(())
}

pub(crate) async fn latest_by_state<C: Conn>(
    conn: &mut C,
    product: &str,
    belts: &[String],
) -> Result<Vec<BuildView>> {
    if belts.is_empty() {
        return Ok(Vec::new());
    }
    let cols = columns(rows::BUILD_ONE);
    let mut parts = Vec::new();
    let mut q_args: Vec<Arg> = vec![product.to_string().into()];
    for belt in belts {
        q_args.push(belt.clone().into());
        let b = q_args.len();
        for state in STATES {
            parts.push(format!(
                "SELECT * FROM (SELECT {cols} FROM builds WHERE product = $1 \
                 AND belt = ${b} AND status = '{state}' \
                 ORDER BY created_at DESC, id DESC LIMIT 1) AS s{}",
                parts.len()
            ));
        }
    }
    let mut q = Sql::owned(parts.join(" UNION ALL "));
    for a in q_args {
        q = q.bind(a);
    }
    let found: Vec<BuildRow> = conn.all(q).await?;
    each(found, BuildRow::view)
}

pub(crate) async fn latest_of_products<C: Conn>(conn: &mut C) -> Result<Vec<BuildView>> {
    let q = Sql::owned(format!(
        "SELECT {} FROM builds WHERE id IN (SELECT (SELECT b.id FROM builds b \
         WHERE b.product = p.name ORDER BY b.created_at DESC, b.id DESC LIMIT 1) \
         FROM products p) ORDER BY product",
        columns(rows::BUILD_ONE)
    ));
    let found: Vec<BuildRow> = conn.all(q).await?;
    each(found, BuildRow::view)
}

/// Products whose stored model (compact JSON) holds a trigger of kind `schedule`: a text
/// match, so a product whose config merely contains those words comes too, and is parsed
/// for nothing; none is missed.
const PRODUCT_SCHEDULED: &str = "SELECT name, yaml, model, repo, branch, webhook_secret, \
     source_path, head_sha, config_path FROM products \
     WHERE model LIKE '%\"kind\":\"schedule\"%' ORDER BY name";

pub(crate) async fn products_of_repos<C: Conn>(
    conn: &mut C,
    keys: &[String],
) -> Result<Vec<ProductRecord>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=keys.len()).map(|n| format!("${n}")).collect();
    let mut q = Sql::owned(format!(
        "SELECT name, yaml, model, repo, branch, webhook_secret, source_path, head_sha, \
         config_path FROM products WHERE repo_key IN ({}) ORDER BY name",
        marks.join(", ")
    ));
    for k in keys {
        q = q.bind(k.clone());
    }
    let found: Vec<ProductRow> = conn.all(q).await?;
    each(found, ProductRow::record)
}

#[async_trait]
impl<B: Backend> History for SqlStore<B> {
    async fn build_chain(&self, id: &str, depth: u32, limit: u32) -> Result<BuildChain> {
        chain::build_chain(&mut *self.backend.conn().await?, id, depth, limit).await
    }

    async fn sweep(&self, r: &Retention, now: i64, batch: u32) -> Result<Swept> {
        let mut tx = self.backend.begin().await?;
        let ids = retention::due(&mut *tx, r, now, batch).await?;
        let swept = retention::delete(&mut *tx, &ids).await?;
        B::commit(tx).await?;
        Ok(swept)
    }

    async fn products_of_repos(&self, keys: &[String]) -> Result<Vec<ProductRecord>> {
        products_of_repos(&mut *self.backend.conn().await?, keys).await
    }

    async fn scheduled_products(&self) -> Result<Vec<ProductRecord>> {
        let conn = &mut *self.backend.conn().await?;
        let found: Vec<ProductRow> = conn.all(sql(PRODUCT_SCHEDULED)).await?;
        each(found, ProductRow::record)
    }

    async fn ping(&self) -> Result<()> {
        let conn = &mut *self.backend.conn().await?;
        let _: (i64,) = conn.one(sql("SELECT CAST(1 AS BIGINT) AS one")).await?;
        Ok(())
    }

    async fn latest_of_products(&self) -> Result<Vec<BuildView>> {
        latest_of_products(&mut *self.backend.conn().await?).await
    }

    async fn latest_by_state(&self, product: &str, belts: &[String]) -> Result<Vec<BuildView>> {
        latest_by_state(&mut *self.backend.conn().await?, product, belts).await
    }
}
