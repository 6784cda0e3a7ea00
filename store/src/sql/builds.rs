//! The scheduler's transactional steps: creating a build with its job runs and edges,
//! readying free jobs, settling job runs that reached a final state (unblocking or skipping
//! their dependents, finishing the build), and firing downstream products.

use conveyor_core::model::{Belt, Job, Product, Reference};
use conveyor_core::protocol::QueueMessage;
use conveyor_core::rules::{MAX_CHAIN, condition_holds, condition_refs, downstream_targets};

use super::conn::{Arg, Conn, Sql, sql};
use super::{Work, from_json, to_json, values};
use crate::error::{Result, StoreError};
use crate::types::{BuildTrigger, Dispatch, NewBuild};

/// Job runs that reached a final state in this transaction, with that state.
pub(crate) type Settled = Vec<(String, &'static str)>;

/// Inserts a build with its job runs and edges, and readies the free jobs.
pub(crate) async fn insert_build<C: Conn>(
    conn: &mut C,
    new: &NewBuild,
    upstream: Option<&str>,
    now: i64,
    work: &mut Work,
) -> Result<String> {
    let model = model_of(conn, new).await?;
    let belt = model.belt(&new.belt).ok_or_else(|| {
        StoreError::NotFound(format!(
            "product `{}` has no belt `{}`",
            new.product, new.belt
        ))
    })?;
    let number = next_number(conn, &new.product).await?;
    let id = uuid::Uuid::now_v7().to_string();
    insert_row(conn, &id, new, number, belt.jobs.len(), upstream, now).await?;
    let run_ids: Vec<String> = belt
        .jobs
        .iter()
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let mut deps = vec![0i64; belt.jobs.len()];
    for &(_, to) in &belt.edges {
        deps[to] += 1;
    }
    insert_job_runs(conn, &id, belt, &run_ids, &deps).await?;
    work.effects.created.push(id.clone());
    if new.trigger.reports_to_forge() {
        work.effects.report.push(id.clone());
    }
    let mut settled = Vec::new();
    for (i, job) in belt.jobs.iter().enumerate() {
        if deps[i] == 0 {
            make_ready(conn, &id, &run_ids[i], job, now, work, &mut settled).await?;
        }
    }
    settle(conn, &id, settled, now, work).await?;
    Ok(id)
}

/// The `builds` row of a new build.
async fn insert_row<C: Conn>(
    conn: &mut C,
    id: &str,
    new: &NewBuild,
    number: i64,
    jobs: usize,
    upstream: Option<&str>,
    now: i64,
) -> Result<()> {
    conn.exec(
        sql(
            "INSERT INTO builds (id, product, belt, number, status, trigger, upstream_build_id, \
             git_ref, sha, unfinished, created_at, forge_status, resource, event) \
             VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(id)
        .bind(&new.product)
        .bind(&new.belt)
        .bind(number)
        .bind(to_json(&new.trigger)?)
        .bind(upstream)
        .bind(&new.git_ref)
        .bind(&new.sha)
        .bind(jobs as i64)
        .bind(now)
        .bind(new.trigger.reports_to_forge().then_some(""))
        .bind(
            new.resource
                .as_ref()
                .map(|r| to_json(&r.resource))
                .transpose()?,
        )
        .bind(new.resource.as_ref().map(|r| r.event.clone())),
    )
    .await?;
    Ok(())
}

/// The config the build runs: the one it came with (webhooks, re-runs), else the
/// registered product's.
async fn model_of<C: Conn>(conn: &mut C, new: &NewBuild) -> Result<Product> {
    let registered: Option<(String,)> = conn
        .opt(sql("SELECT model FROM products WHERE name = $1").bind(&new.product))
        .await?;
    let Some((model,)) = registered else {
        return Err(StoreError::NotFound(format!(
            "no product `{}`",
            new.product
        )));
    };
    match &new.model {
        Some(m) => Ok(m.clone()),
        None => from_json(&model),
    }
}

/// The product's next build number.
pub(crate) async fn next_number<C: Conn>(conn: &mut C, product: &str) -> Result<i64> {
    let row: Option<(i64,)> = conn
        .opt(
            sql(
                "UPDATE products SET next_build_number = next_build_number + 1 \
                 WHERE name = $1 RETURNING next_build_number",
            )
            .bind(product),
        )
        .await?;
    row.map(|(n,)| n)
        .ok_or_else(|| StoreError::NotFound(format!("no product `{product}`")))
}

async fn insert_job_runs<C: Conn>(
    conn: &mut C,
    build_id: &str,
    belt: &Belt,
    run_ids: &[String],
    deps: &[i64],
) -> Result<()> {
    let rows = belt.jobs.iter().enumerate().map(|(i, job)| {
        Ok(vec![
            Arg::from(&run_ids[i]),
            Arg::from(build_id),
            Arg::from(i as i64),
            Arg::from(&job.name),
            Arg::from(&job.fleet),
            Arg::from("pending"),
            Arg::from(i64::from(job.retries)),
            Arg::from(deps[i]),
            Arg::from(to_json(job)?),
        ])
    });
    let rows: Vec<Vec<Arg>> = rows.collect::<Result<_>>()?;
    let head = "INSERT INTO job_runs (id, build_id, idx, name, fleet, status, retries, \
                pending_deps, spec)";
    for chunk in rows.chunks(100) {
        conn.exec(Sql::values(head, chunk.to_vec(), "")).await?;
    }
    let edges: Vec<Vec<Arg>> = belt
        .edges
        .iter()
        .map(|&(from, to)| {
            vec![
                Arg::from(build_id),
                Arg::from(&run_ids[from]),
                Arg::from(&run_ids[to]),
            ]
        })
        .collect();
    let head = "INSERT INTO job_edges (build_id, from_run, to_run)";
    for chunk in edges.chunks(300) {
        conn.exec(Sql::values(head, chunk.to_vec(), "")).await?;
    }
    Ok(())
}

/// A job run whose dependencies are done: skipped by its condition, waiting for
/// approval, or queued for dispatch.
pub(crate) async fn make_ready<C: Conn>(
    conn: &mut C,
    build_id: &str,
    run_id: &str,
    job: &Job,
    now: i64,
    work: &mut Work,
    settled: &mut Settled,
) -> Result<()> {
    if job.condition.is_some() && !condition_met(conn, build_id, job).await? {
        conn.exec(
            sql("UPDATE job_runs SET status = 'skipped', finished_at = $2 \
                 WHERE id = $1 AND status = 'pending'")
            .bind(run_id)
            .bind(now),
        )
        .await?;
        settled.push((run_id.to_string(), "skipped"));
        return Ok(());
    }
    let status = if job.manual { "waiting" } else { "queued" };
    conn.exec(
        sql("UPDATE job_runs SET status = $2, queued_at = $3 \
             WHERE id = $1 AND status = 'pending'")
        .bind(run_id)
        .bind(status)
        .bind(now),
    )
    .await?;
    if !job.manual {
        work.effects.dispatch.push(Dispatch {
            fleet: job.fleet.clone(),
            msg: QueueMessage {
                job_run_id: run_id.to_string(),
                attempt: 1,
            },
        });
    }
    Ok(())
}

async fn condition_met<C: Conn>(conn: &mut C, build_id: &str, job: &Job) -> Result<bool> {
    let refs: Vec<Reference> = condition_refs(job).into_iter().cloned().collect();
    let resolved = values::resolve(conn, build_id, &refs).await?;
    let by_path = refs
        .iter()
        .zip(resolved)
        .map(|(r, (_, v))| (r.text.clone(), v))
        .collect();
    Ok(condition_holds(job, &by_path))
}

/// Moves a build on after job runs reached a final state: unblocks or skips their
/// dependents, then finishes the build when nothing is left.
pub(crate) async fn settle<C: Conn>(
    conn: &mut C,
    build_id: &str,
    mut queue: Settled,
    now: i64,
    work: &mut Work,
) -> Result<()> {
    if queue.is_empty() {
        return Ok(());
    }
    let (mut done, mut failed) = (0i64, 0i64);
    while let Some((run, status)) = queue.pop() {
        done += 1;
        if status == "failed" || status == "cancelled" {
            failed += 1;
        }
        let dependents: Vec<(String,)> = conn
            .all(sql("SELECT to_run FROM job_edges WHERE from_run = $1 ORDER BY to_run").bind(&run))
            .await?;
        for (dep,) in dependents {
            if status == "succeeded" {
                unblock(conn, build_id, &dep, now, work, &mut queue).await?;
            } else {
                let skipped = conn
                    .exec(
                        sql("UPDATE job_runs SET status = 'skipped', finished_at = $2 \
                             WHERE id = $1 AND status = 'pending'")
                        .bind(&dep)
                        .bind(now),
                    )
                    .await?;
                if skipped == 1 {
                    queue.push((dep, "skipped"));
                }
            }
        }
    }
    finish_if_done(conn, build_id, done, failed, now, work).await
}

/// One dependency of `dep` succeeded: readies it once none is left.
async fn unblock<C: Conn>(
    conn: &mut C,
    build_id: &str,
    dep: &str,
    now: i64,
    work: &mut Work,
    queue: &mut Settled,
) -> Result<()> {
    let row: Option<(i64, String)> = conn
        .opt(
            sql("UPDATE job_runs SET pending_deps = pending_deps - 1 \
                 WHERE id = $1 AND status = 'pending' RETURNING pending_deps, spec")
            .bind(dep),
        )
        .await?;
    if let Some((0, spec)) = row {
        let job: Job = from_json(&spec)?;
        make_ready(conn, build_id, dep, &job, now, work, queue).await?;
    }
    Ok(())
}

async fn finish_if_done<C: Conn>(
    conn: &mut C,
    build_id: &str,
    done: i64,
    failed: i64,
    now: i64,
    work: &mut Work,
) -> Result<()> {
    let (unfinished, failed, status, reports): (i64, i64, String, Option<String>) = conn
        .one(
            sql(
                "UPDATE builds SET unfinished = unfinished - $2, failed = failed + $3 \
                 WHERE id = $1 RETURNING unfinished, failed, status, forge_status",
            )
            .bind(build_id)
            .bind(done)
            .bind(failed),
        )
        .await?;
    if unfinished > 0 {
        return Ok(());
    }
    let final_status = match (status.as_str(), failed) {
        ("running", 0) => "succeeded",
        ("cancelled", _) => "cancelled",
        _ => "failed",
    };
    conn.exec(
        sql("UPDATE builds SET status = $2, finished_at = $3 WHERE id = $1")
            .bind(build_id)
            .bind(final_status)
            .bind(now),
    )
    .await?;
    work.effects.finished.push(build_id.to_string());
    if reports.is_some() {
        work.effects.report.push(build_id.to_string());
    }
    if final_status == "succeeded" {
        work.to_fire.push(build_id.to_string());
    }
    Ok(())
}

/// Creates the builds that successful builds fire, until none is left.
pub(crate) async fn fire_all<C: Conn>(conn: &mut C, now: i64, work: &mut Work) -> Result<()> {
    while let Some(build_id) = work.to_fire.pop() {
        let (product, belt, number): (String, String, i64) = conn
            .one(sql("SELECT product, belt, number FROM builds WHERE id = $1").bind(&build_id))
            .await?;
        let depth = chain_depth(conn, &build_id).await?;
        if depth >= MAX_CHAIN {
            tracing::warn!(%build_id, "not firing downstream products: the chain is {depth} builds long");
            continue;
        }
        let models: Vec<(String,)> = conn
            .all(sql("SELECT model FROM products ORDER BY name"))
            .await?;
        let registered: Vec<Product> = models
            .iter()
            .map(|(m,)| from_json(m))
            .collect::<Result<_>>()?;
        let Some(me) = registered.iter().find(|p| p.name == product) else {
            continue;
        };
        let trigger = BuildTrigger::Upstream {
            build_id: build_id.clone(),
            product: product.clone(),
            belt: belt.clone(),
            number: number as u64,
        };
        for (p, b) in downstream_targets(me, &belt, &registered) {
            let new = downstream_build(conn, p, b, trigger.clone()).await?;
            insert_build(conn, &new, Some(&build_id), now, work).await?;
        }
    }
    Ok(())
}

/// A downstream build: a product from a repository builds the head of its branch.
async fn downstream_build<C: Conn>(
    conn: &mut C,
    product: String,
    belt: String,
    trigger: BuildTrigger,
) -> Result<NewBuild> {
    let (branch, head): (Option<String>, Option<String>) = conn
        .one(sql("SELECT branch, head_sha FROM products WHERE name = $1").bind(&product))
        .await?;
    Ok(NewBuild {
        product,
        belt,
        trigger,
        git_ref: branch.map(|b| format!("refs/heads/{b}")),
        sha: head,
        model: None,
        resource: None,
    })
}

/// How many upstream builds lead to this one.
async fn chain_depth<C: Conn>(conn: &mut C, build_id: &str) -> Result<usize> {
    let mut depth = 0;
    let mut at = build_id.to_string();
    while depth < MAX_CHAIN {
        let up: Option<(Option<String>,)> = conn
            .opt(sql("SELECT upstream_build_id FROM builds WHERE id = $1").bind(&at))
            .await?;
        match up.and_then(|(u,)| u) {
            Some(u) => {
                depth += 1;
                at = u;
            }
            None => break,
        }
    }
    Ok(depth)
}

/// Records a build that cannot run because its config has errors: numbered like any
/// build, state `config_error`, the message kept, no job run created.
pub(crate) async fn insert_config_error<C: Conn>(
    conn: &mut C,
    new: &NewBuild,
    error: &str,
    now: i64,
) -> Result<String> {
    let number = next_number(conn, &new.product).await?;
    let id = uuid::Uuid::now_v7().to_string();
    conn.exec(
        sql(
            "INSERT INTO builds (id, product, belt, number, status, trigger, git_ref, sha, error, \
             unfinished, created_at, finished_at, forge_status) \
             VALUES ($1, $2, $3, $4, 'config_error', $5, $6, $7, $8, 0, $9, $9, $10)",
        )
        .bind(&id)
        .bind(&new.product)
        .bind(&new.belt)
        .bind(number)
        .bind(to_json(&new.trigger)?)
        .bind(&new.git_ref)
        .bind(&new.sha)
        .bind(error)
        .bind(now)
        .bind(new.trigger.reports_to_forge().then_some(""))
        .bind(
            new.resource
                .as_ref()
                .map(|r| to_json(&r.resource))
                .transpose()?,
        )
        .bind(new.resource.as_ref().map(|r| r.event.clone())),
    )
    .await?;
    Ok(id)
}
