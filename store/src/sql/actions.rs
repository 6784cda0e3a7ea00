//! What a person does to a build from the dashboard or the API: approve or decline a
//! manual job run, cancel one job run or a whole build, re-run a build.

use conveyor_core::model::{Belt, Job, Product};
use conveyor_core::protocol::QueueMessage;
use sqlx::FromRow;

use super::builds::{insert_build, settle};
use super::conn::{Conn, Sql, sql};
use super::groups::enter_job;
use super::leases::lock_build_of;
use super::values::context_of;
use super::{Work, from_json};
use crate::error::Result;
use crate::types::{BuildTrigger, Dispatch, NewBuild, ResourceEvent};

/// A manual job run waiting for approval (an old row's `waiting_for` is empty).
const AWAITS_APPROVAL: &str =
    "status = 'waiting' AND COALESCE(waiting_for, 'approval') = 'approval'";

/// Approves a manual job run waiting for approval: queued, or waiting for its concurrency
/// group; `by` is recorded. False if it is not waiting for approval.
pub(crate) async fn approve<C: Conn>(
    conn: &mut C,
    id: &str,
    by: &str,
    now: i64,
    work: &mut Work,
) -> Result<bool> {
    let Some(build_id) = lock_build_of(conn, id).await? else {
        return Ok(false);
    };
    let row: Option<(String,)> = conn
        .opt(
            Sql::owned(format_awaiting(
                "SELECT spec FROM job_runs WHERE id = $1 AND ",
            ))
            .bind(id),
        )
        .await?;
    let Some((spec,)) = row else {
        return Ok(false);
    };
    let job: Job = from_json(&spec)?;
    let turn = enter_job(conn, &build_id, id, &job, work).await?;
    let (status, waiting_for) = if turn {
        ("queued", None)
    } else {
        ("waiting", Some("concurrency"))
    };
    let row: Option<(String, i64)> = conn
        .opt(
            sql(
                "UPDATE job_runs SET status = $2, queued_at = $3, waiting_for = $4, \
                 decided_by = $5, decided_at = $3 WHERE id = $1 AND status = 'waiting' \
                 RETURNING fleet, attempt",
            )
            .bind(id)
            .bind(status)
            .bind(now)
            .bind(waiting_for)
            .bind(by),
        )
        .await?;
    if let (Some((fleet, attempt)), true) = (row, turn) {
        work.effects.dispatch.push(Dispatch {
            fleet,
            msg: QueueMessage {
                job_run_id: id.to_string(),
                attempt: attempt as u32,
            },
        });
    }
    Ok(true)
}

/// `head` followed by the condition of a job run waiting for approval.
fn format_awaiting(head: &'static str) -> String {
    format!("{head}{AWAITS_APPROVAL}")
}

/// Declines a manual job run waiting for approval: skipped, with who declined and why; its
/// dependents are skipped and the build's outcome follows the rest. False if it is not
/// waiting for approval.
pub(crate) async fn decline<C: Conn>(
    conn: &mut C,
    id: &str,
    by: &str,
    reason: &str,
    now: i64,
    work: &mut Work,
) -> Result<bool> {
    let Some(build_id) = lock_build_of(conn, id).await? else {
        return Ok(false);
    };
    let why = if reason.trim().is_empty() {
        format!("declined by {by}")
    } else {
        format!("declined by {by}: {}", reason.trim())
    };
    let declined = conn
        .exec(
            Sql::owned(format_awaiting(
                "UPDATE job_runs SET status = 'skipped', finished_at = $2, reason = $3, \
                 decided_by = $4, decided_at = $2, waiting_for = NULL WHERE id = $1 AND ",
            ))
            .bind(id)
            .bind(now)
            .bind(why)
            .bind(by),
        )
        .await?;
    if declined == 0 {
        return Ok(false);
    }
    settle(
        conn,
        &build_id,
        vec![(id.to_string(), "skipped")],
        now,
        work,
    )
    .await?;
    Ok(true)
}

/// Cancels one job run: at once if it has not started, at its next heartbeat if it is
/// running; a finished one is left as it is. `None` if there is no such job run.
pub(crate) async fn cancel_run<C: Conn>(
    conn: &mut C,
    id: &str,
    now: i64,
    work: &mut Work,
) -> Result<bool> {
    let Some(build_id) = lock_build_of(conn, id).await? else {
        return Ok(false);
    };
    let stopped = conn
        .exec(
            sql(
                "UPDATE job_runs SET status = 'cancelled', finished_at = $2 \
                 WHERE id = $1 AND status IN ('pending', 'queued', 'waiting')",
            )
            .bind(id)
            .bind(now),
        )
        .await?;
    if stopped == 1 {
        let settled = vec![(id.to_string(), "cancelled")];
        settle(conn, &build_id, settled, now, work).await?;
    } else {
        // Running: its runner stops it at its next heartbeat. Finished: nothing to stop.
        conn.exec(
            sql("UPDATE job_runs SET cancel_requested = TRUE \
                 WHERE id = $1 AND status = 'running'")
            .bind(id),
        )
        .await?;
    }
    Ok(true)
}

/// Cancels a build: job runs that have not started at once, running ones at their next
/// heartbeat. `None` if there is no such build.
pub(crate) async fn cancel_build<C: Conn>(
    conn: &mut C,
    id: &str,
    now: i64,
    work: &mut Work,
) -> Result<bool> {
    if conn
        .opt::<(String,)>(sql(C::LOCK_BUILD).bind(id))
        .await?
        .is_none()
    {
        return Ok(false);
    }
    conn.exec(
        sql("UPDATE builds SET status = 'cancelled' WHERE id = $1 AND status = 'running'").bind(id),
    )
    .await?;
    // Not-started ones first: one a runner claims meanwhile is running by the time the
    // next statement flags running ones, so none slips through.
    let stopped: Vec<(String,)> = conn
        .all(
            sql(
                "UPDATE job_runs SET status = 'cancelled', finished_at = $2 WHERE build_id = $1 \
                 AND status IN ('pending', 'queued', 'waiting') RETURNING id",
            )
            .bind(id)
            .bind(now),
        )
        .await?;
    conn.exec(
        sql("UPDATE job_runs SET cancel_requested = TRUE \
             WHERE build_id = $1 AND status = 'running'")
        .bind(id),
    )
    .await?;
    let settled = stopped.into_iter().map(|(r,)| (r, "cancelled")).collect();
    settle(conn, id, settled, now, work).await?;
    Ok(true)
}

/// The belt a build ran, rebuilt from its job runs and edges, so a re-run runs the same
/// jobs even when the registered config has changed since.
async fn belt_of<C: Conn>(conn: &mut C, build_id: &str, belt: &str) -> Result<Option<Belt>> {
    let rows: Vec<(String, String)> = conn
        .all(sql("SELECT id, spec FROM job_runs WHERE build_id = $1 ORDER BY idx").bind(build_id))
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let ids: Vec<&String> = rows.iter().map(|(id, _)| id).collect();
    let jobs = rows
        .iter()
        .map(|(_, spec)| from_json::<Job>(spec))
        .collect::<Result<Vec<_>>>()?;
    let pairs: Vec<(String, String)> = conn
        .all(sql("SELECT from_run, to_run FROM job_edges WHERE build_id = $1").bind(build_id))
        .await?;
    let at = |run: &String| ids.iter().position(|i| *i == run);
    let mut edges: Vec<(usize, usize)> = pairs
        .iter()
        .filter_map(|(from, to)| Some((at(from)?, at(to)?)))
        .collect();
    edges.sort_unstable();
    Ok(Some(Belt {
        name: belt.to_string(),
        jobs,
        edges,
        condition: None,
        concurrency: None,
    }))
}

/// The build a re-run repeats, with its product's registered config.
#[derive(FromRow)]
struct Rerun {
    product: String,
    belt: String,
    number: i64,
    git_ref: Option<String>,
    sha: Option<String>,
    upstream_build_id: Option<String>,
    trigger: String,
    model: String,
    resource: Option<String>,
    event: Option<String>,
}

/// Starts a new build running what build `id` ran, at its ref and commit; `None` if
/// there is no such build.
pub(crate) async fn rerun<C: Conn>(
    conn: &mut C,
    id: &str,
    now: i64,
    work: &mut Work,
) -> Result<Option<String>> {
    let row: Option<Rerun> = conn
        .opt(
            sql(
                "SELECT b.product, b.belt, b.number, b.git_ref, b.sha, b.upstream_build_id, \
                 b.trigger, p.model, b.resource, b.event FROM builds b JOIN products p ON p.name = b.product \
                 WHERE b.id = $1",
            )
            .bind(id),
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut model: Product = from_json(&row.model)?;
    let ran = belt_of(conn, id, &row.belt).await?;
    let rebuilt = ran.is_some();
    if let Some(mut ran) = ran {
        if let Some(registered) = model.belt(&row.belt) {
            ran.condition = registered.condition.clone();
            ran.concurrency = registered.concurrency.clone();
        }
        model.belts.retain(|b| b.name != row.belt);
        model.belts.push(ran);
    }
    let context = context_of(conn, id).await?;
    let new = NewBuild {
        product: row.product,
        belt: row.belt,
        trigger: BuildTrigger::Rerun {
            build_id: id.to_string(),
            number: row.number as u64,
            forge: from_json::<BuildTrigger>(&row.trigger)?.forge_target(),
        },
        git_ref: row.git_ref,
        sha: row.sha,
        // A build that never ran (a config error) is re-run from the registered config.
        model: rebuilt.then_some(model),
        // A re-run of a resource's build reconciles the same resource event again.
        resource: match (row.resource, row.event) {
            (Some(r), Some(event)) => Some(ResourceEvent {
                resource: from_json(&r)?,
                event,
            }),
            _ => None,
        },
        context: Some(context),
    };
    let upstream = row.upstream_build_id.as_deref();
    insert_build(conn, &new, upstream, now, work)
        .await
        .map(Some)
}
