//! The scheduler's transactional steps: creating a build with its job runs and edges,
//! readying free jobs, settling job runs that reached a final state (unblocking or skipping
//! their dependents, finishing the build), and firing downstream products.

use conveyor_core::context::BuildContext;
use conveyor_core::model::{Belt, Job, Product, Reference};
use conveyor_core::protocol::QueueMessage;
use conveyor_core::rules::{belt_condition_holds, condition_holds, condition_refs};

use super::conn::{Arg, Conn, Sql, sql};
pub(crate) use super::fire::fire_all;
use super::groups;
use super::{Work, from_json, to_json, values};
use crate::error::{Result, StoreError};
use crate::types::{Dispatch, NewBuild};

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
    let ctx = new.context();
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
    let roots: Vec<(&String, &Job)> = (0..belt.jobs.len())
        .filter(|&i| deps[i] == 0)
        .map(|i| (&run_ids[i], &belt.jobs[i]))
        .collect();
    let new_build = (id.as_str(), new.product.as_str());
    start_roots(conn, new_build, belt, &ctx, &roots, now, work).await?;
    Ok(id)
}

/// A new build's free jobs: skipped when the belt's `if` is false, readied when the build
/// may run now (its group lets it), else left pending until the group does.
async fn start_roots<C: Conn>(
    conn: &mut C,
    (id, product): (&str, &str),
    belt: &Belt,
    ctx: &BuildContext,
    roots: &[(&String, &Job)],
    now: i64,
    work: &mut Work,
) -> Result<()> {
    let mut settled = Vec::new();
    if !belt_condition_holds(belt, ctx) {
        let reason = format!("the `if` of belt `{}` is false", belt.name);
        for (run, _) in roots {
            skip(conn, run, &reason, now, &mut settled).await?;
        }
    } else if groups::enter_build(conn, product, belt, id, ctx, work).await? {
        for (run, job) in roots {
            make_ready(conn, id, run, job, now, work, &mut settled).await?;
        }
    }
    settle(conn, id, settled, now, work).await
}

/// Skips a pending job run, saying why.
async fn skip<C: Conn>(
    conn: &mut C,
    run_id: &str,
    reason: &str,
    now: i64,
    settled: &mut Settled,
) -> Result<()> {
    conn.exec(
        sql(
            "UPDATE job_runs SET status = 'skipped', finished_at = $2, reason = $3 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(run_id)
        .bind(now)
        .bind(reason),
    )
    .await?;
    settled.push((run_id.to_string(), "skipped"));
    Ok(())
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
             git_ref, sha, unfinished, created_at, forge_status, resource, event, context) \
             VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
        .bind(new.resource.as_ref().map(|r| r.event.clone()))
        .bind(to_json(&new.context())?),
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

/// A job run whose dependencies are done: skipped by its condition (with the reason),
/// waiting for approval or for its concurrency group, or queued for dispatch.
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
        let written = job.condition_text.as_deref().unwrap_or("");
        let reason = format!("its `if` is false: {written}");
        return skip(conn, run_id, &reason, now, settled).await;
    }
    let (status, waiting_for) = if job.manual {
        ("waiting", Some("approval"))
    } else if groups::enter_job(conn, build_id, run_id, job, work).await? {
        ("queued", None)
    } else {
        ("waiting", Some("concurrency"))
    };
    // The attempt is the row's: a retried build's job runs start at their next one.
    let row: Option<(i64,)> = conn
        .opt(
            sql(
                "UPDATE job_runs SET status = $2, queued_at = $3, waiting_for = $4 \
                 WHERE id = $1 AND status = 'pending' RETURNING attempt",
            )
            .bind(run_id)
            .bind(status)
            .bind(now)
            .bind(waiting_for),
        )
        .await?;
    if let (Some((attempt,)), "queued") = (row, status) {
        work.effects.dispatch.push(Dispatch {
            fleet: job.fleet.clone(),
            msg: QueueMessage {
                job_run_id: run_id.to_string(),
                attempt: attempt as u32,
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
    let ctx = values::context_of(conn, build_id).await?;
    Ok(condition_holds(job, &by_path, &ctx))
}

/// Moves a build on after job runs reached a final state: unblocks or skips their
/// dependents, then finishes the build when nothing is left.
pub(crate) async fn settle<C: Conn>(
    conn: &mut C,
    build_id: &str,
    queue: Settled,
    now: i64,
    work: &mut Work,
) -> Result<()> {
    settle_with(conn, build_id, queue, None, now, work).await
}

/// [`settle`], where job run `ungrouped` is known to be in no concurrency group (read with
/// the statement that ended it): it has no group to leave, and that is not read again.
pub(crate) async fn settle_with<C: Conn>(
    conn: &mut C,
    build_id: &str,
    mut queue: Settled,
    ungrouped: Option<&str>,
    now: i64,
    work: &mut Work,
) -> Result<()> {
    if queue.is_empty() {
        return Ok(());
    }
    let (mut done, mut failed) = (0i64, 0i64);
    while let Some((run, status)) = queue.pop() {
        if ungrouped != Some(run.as_str()) {
            groups::leave(conn, &run, work).await?;
        }
        done += 1;
        if status == "failed" || status == "cancelled" {
            failed += 1;
        }
        if status == "succeeded" {
            unblock(conn, build_id, &run, now, work, &mut queue).await?;
        } else {
            skip_dependents(conn, &run, status, now, &mut queue).await?;
        }
    }
    finish_if_done(conn, build_id, done, failed, now, work).await
}

/// Job run `run` ended `status` (not a success): its dependents still pending are skipped,
/// saying why, and settled in turn.
async fn skip_dependents<C: Conn>(
    conn: &mut C,
    run: &str,
    status: &str,
    now: i64,
    queue: &mut Settled,
) -> Result<()> {
    let dependents: Vec<(String,)> = conn
        .all(sql("SELECT to_run FROM job_edges WHERE from_run = $1 ORDER BY to_run").bind(run))
        .await?;
    let mut why = None;
    for (dep,) in dependents {
        if why.is_none() {
            why = Some(skip_reason(conn, run, status).await?);
        }
        let skipped = conn
            .exec(
                sql("UPDATE job_runs SET status = 'skipped', finished_at = $2, \
                     reason = $3 WHERE id = $1 AND status = 'pending'")
                .bind(&dep)
                .bind(now)
                .bind(why.as_deref()),
            )
            .await?;
        if skipped == 1 {
            queue.push((dep, "skipped"));
        }
    }
    Ok(())
}

/// Why the dependents of job run `run`, which ended `status`, are skipped.
async fn skip_reason<C: Conn>(conn: &mut C, run: &str, status: &str) -> Result<String> {
    let (name,): (String,) = conn
        .one(sql("SELECT name FROM job_runs WHERE id = $1").bind(run))
        .await?;
    let what = match status {
        "failed" => "failed",
        "cancelled" => "was cancelled",
        _ => "was skipped",
    };
    Ok(format!("its dependency `{name}` {what}"))
}

/// Job run `run` succeeded: each of its dependents has one dependency fewer (one statement
/// for all of them), and those with none left are readied, in the order of their ids.
async fn unblock<C: Conn>(
    conn: &mut C,
    build_id: &str,
    run: &str,
    now: i64,
    work: &mut Work,
    queue: &mut Settled,
) -> Result<()> {
    // The spec only once it is needed: a join of 1,000 jobs is decremented 1,000 times.
    // The state is tested as `(…) IS TRUE`, out of the status index's reach: by that index
    // Postgres reads every pending job run of every build, and the dead entries of those no
    // longer pending (1,000 a call in a 1,000-job fan-out), instead of this run's dependents.
    let mut rows: Vec<(String, i64, Option<String>)> = conn
        .all(
            sql("UPDATE job_runs SET pending_deps = pending_deps - 1 \
                 WHERE id IN (SELECT to_run FROM job_edges WHERE from_run = $1) \
                 AND (status = 'pending') IS TRUE \
                 RETURNING id, pending_deps, CASE WHEN pending_deps = 0 THEN spec END")
            .bind(run),
        )
        .await?;
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (dep, left, spec) in rows {
        if let (0, Some(spec)) = (left, spec) {
            let job: Job = from_json(&spec)?;
            make_ready(conn, build_id, &dep, &job, now, work, queue).await?;
        }
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
    groups::leave(conn, build_id, work).await?;
    work.effects.finished.push(build_id.to_string());
    if reports.is_some() {
        work.effects.report.push(build_id.to_string());
    }
    if final_status == "succeeded" {
        work.to_fire.push(build_id.to_string());
    }
    Ok(())
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
        .bind(new.resource.as_ref().map(|r| r.event.clone()))
        .bind(to_json(&new.context())?),
    )
    .await?;
    Ok(id)
}
