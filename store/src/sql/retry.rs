//! Retrying a finished build in place: its failed and cancelled job runs, and the job runs
//! skipped because of them, start a new attempt; the build reopens as running and its
//! forge is told again. One transaction, the build's lock taken first, so a retry never
//! races a completion, a cancel or another retry into a half-reopened build.

use std::collections::{BTreeSet, HashMap};

use conveyor_core::model::{Job, Product};

use super::builds::{make_ready, settle};
use super::conn::{Conn, sql};
use super::groups;
use super::values::context_of;
use super::{Work, from_json};
use crate::error::{Result, StoreError};

/// A job run of the build as a retry sees it.
#[derive(sqlx::FromRow)]
struct RunState {
    id: String,
    status: String,
}

/// The job runs a retry starts again: every failed or cancelled one, then (to a fixed
/// point) every skipped dependent of those whose dependencies all succeeded or are retried
/// too. A job skipped because of a declined or condition-skipped dependency stays skipped.
fn retry_set(runs: &[(String, String)], edges: &[(String, String)]) -> BTreeSet<String> {
    let status: HashMap<&str, &str> = runs
        .iter()
        .map(|(id, s)| (id.as_str(), s.as_str()))
        .collect();
    let mut set: BTreeSet<String> = runs
        .iter()
        .filter(|(_, s)| s == "failed" || s == "cancelled")
        .map(|(id, _)| id.clone())
        .collect();
    loop {
        let more: Vec<String> = edges
            .iter()
            .filter(|(from, to)| set.contains(from) && !set.contains(to))
            .filter(|(_, to)| status.get(to.as_str()) == Some(&"skipped"))
            .filter(|(_, to)| {
                edges.iter().filter(|(_, t)| t == to).all(|(from, _)| {
                    set.contains(from) || status.get(from.as_str()) == Some(&"succeeded")
                })
            })
            .map(|(_, to)| to.clone())
            .collect();
        if more.is_empty() {
            return set;
        }
        set.extend(more);
    }
}

/// The build's belt row needs: product, belt, whether it has finished, and its state.
#[derive(sqlx::FromRow)]
struct Finished {
    product: String,
    belt: String,
    status: String,
    unfinished: i64,
}

/// Takes the build's lock and reads it; `None` if there is no such build, a conflict if it
/// has not finished or did not fail.
async fn finished<C: Conn>(conn: &mut C, id: &str) -> Result<Option<Finished>> {
    if conn
        .opt::<(String,)>(sql(C::LOCK_BUILD).bind(id))
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let b: Finished = conn
        .one(sql("SELECT product, belt, status, unfinished FROM builds WHERE id = $1").bind(id))
        .await?;
    if b.unfinished > 0 || !matches!(b.status.as_str(), "failed" | "cancelled") {
        return Err(StoreError::Conflict(format!(
            "build `{id}` is {}: only a finished build with a failed or cancelled job can be \
             retried",
            if b.unfinished > 0 {
                "still running"
            } else {
                b.status.as_str()
            }
        )));
    }
    Ok(Some(b))
}

/// Retries build `id` in place; false if there is no such build. A build still running,
/// or one with nothing failed or cancelled, is a conflict.
pub(crate) async fn retry_build<C: Conn>(
    conn: &mut C,
    id: &str,
    now: i64,
    work: &mut Work,
) -> Result<bool> {
    let Some(b) = finished(conn, id).await? else {
        return Ok(false);
    };
    let runs: Vec<RunState> = conn
        .all(sql("SELECT id, status FROM job_runs WHERE build_id = $1 ORDER BY idx").bind(id))
        .await?;
    let runs: Vec<(String, String)> = runs.into_iter().map(|r| (r.id, r.status)).collect();
    let edges: Vec<(String, String)> = conn
        .all(sql("SELECT from_run, to_run FROM job_edges WHERE build_id = $1").bind(id))
        .await?;
    let set = retry_set(&runs, &edges);
    if set.is_empty() {
        return Err(StoreError::Conflict(format!(
            "build `{id}` has no failed or cancelled job to retry"
        )));
    }
    reopen(conn, id, set.len(), work).await?;
    let mut roots = Vec::new();
    for (run, _) in runs.iter().filter(|(r, _)| set.contains(r)) {
        let deps = edges
            .iter()
            .filter(|(f, t)| t == run && set.contains(f))
            .count();
        if let Some(job) = reset_run(conn, run, deps as i64).await?
            && deps == 0
        {
            roots.push((run.clone(), job));
        }
    }
    if !enter_group(conn, id, &b, work).await? {
        return Ok(true);
    }
    let mut settled = Vec::new();
    for (run, job) in roots {
        make_ready(conn, id, &run, &job, now, work, &mut settled).await?;
    }
    settle(conn, id, settled, now, work).await?;
    Ok(true)
}

/// The build running again with `count` job runs to finish; its forge, if it reports to
/// one, is due a `pending` status.
async fn reopen<C: Conn>(conn: &mut C, id: &str, count: usize, work: &mut Work) -> Result<()> {
    let (reports,): (Option<String>,) = conn
        .one(
            sql(
                "UPDATE builds SET status = 'running', finished_at = NULL, unfinished = $2, \
                 failed = 0 WHERE id = $1 RETURNING forge_status",
            )
            .bind(id)
            .bind(count as i64),
        )
        .await?;
    if reports.is_some() {
        work.effects.report.push(id.to_string());
    }
    Ok(())
}

/// A job run back to `pending` at its next attempt, with its own retries and lost-runner
/// count afresh; returns its job. A manual job that was approved and then failed or was
/// cancelled is not asked again: the person who retries it approves it (see
/// docs/decisions.md), so its job comes back with `manual` off.
async fn reset_run<C: Conn>(conn: &mut C, run: &str, deps: i64) -> Result<Option<Job>> {
    let row: Option<(String, Option<String>)> = conn
        .opt(
            sql(
                "UPDATE job_runs SET status = 'pending', attempt = attempt + 1, failures = 0, \
                 lost = 0, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, \
                 cancel_requested = FALSE, exit_code = NULL, outputs = NULL, error = NULL, \
                 reason = NULL, waiting_for = NULL, queued_at = NULL, started_at = NULL, \
                 finished_at = NULL, pending_deps = $2, \
                 decided_by = CASE WHEN status = 'skipped' THEN NULL ELSE decided_by END, \
                 decided_at = CASE WHEN status = 'skipped' THEN NULL ELSE decided_at END \
                 WHERE id = $1 AND status IN ('failed', 'cancelled', 'skipped') \
                 RETURNING spec, decided_by",
            )
            .bind(run)
            .bind(deps),
        )
        .await?;
    let Some((spec, decided_by)) = row else {
        return Ok(None);
    };
    let mut job: Job = from_json(&spec)?;
    if decided_by.is_some() {
        job.manual = false;
    }
    Ok(Some(job))
}

/// Whether the reopened build may run now: its belt has no concurrency group, or it holds
/// it again. It enters at the back of the group and supersedes nobody (the newer builds
/// of its group are not older than the retry's request).
async fn enter_group<C: Conn>(
    conn: &mut C,
    id: &str,
    b: &Finished,
    work: &mut Work,
) -> Result<bool> {
    let (model,): (String,) = conn
        .one(sql("SELECT model FROM products WHERE name = $1").bind(&b.product))
        .await?;
    let model: Product = from_json(&model)?;
    let Some(belt) = model.belt(&b.belt) else {
        return Ok(true);
    };
    let Some(mut c) = belt.concurrency.clone() else {
        return Ok(true);
    };
    c.cancel_superseded = false;
    let mut belt = belt.clone();
    belt.concurrency = Some(c);
    let ctx = context_of(conn, id).await?;
    groups::enter_build(conn, &b.product, &belt, id, &ctx, work).await
}

#[cfg(test)]
mod tests {
    use super::retry_set;

    fn s(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_retry_takes_failed_jobs_and_what_they_skipped_but_not_what_another_skip_skipped() {
        let runs = s(&[
            ("a", "succeeded"),
            ("b", "failed"),
            ("c", "skipped"),
            ("d", "skipped"),
            ("e", "skipped"),
            ("f", "cancelled"),
        ]);
        // b → c → d; e needs b and a declined/condition-skipped x (here: d's sibling "g").
        let mut edges = s(&[("a", "b"), ("b", "c"), ("c", "d"), ("b", "e"), ("g", "e")]);
        let mut runs = runs;
        runs.push(("g".into(), "skipped".into()));
        edges.push(("a".into(), "g".into()));
        let set: Vec<String> = retry_set(&runs, &edges).into_iter().collect();
        assert_eq!(set, ["b", "c", "d", "f"]);
    }
}
