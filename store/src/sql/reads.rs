//! Single statements: what the API, the dashboard and the scheduler read back (builds, job
//! runs, logs, counts), and the small writes that need no transaction of their own.

use conveyor_core::protocol::QueueMessage;

use super::conn::{Conn, sql};
use super::groups;
use super::rows::{self, BuildRow, JobRow, each};
use crate::error::Result;
use crate::types::{BuildView, Dispatch, JobRunView, RunCount};

pub(crate) async fn build<C: Conn>(conn: &mut C, id: &str) -> Result<Option<BuildView>> {
    let row: Option<BuildRow> = conn.opt(sql(rows::BUILD_ONE).bind(id)).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut build = row.view()?;
    build.jobs = jobs_of(conn, &build.id).await?;
    build.waiting_for = groups::waiting_for(conn, &build.id).await?;
    Ok(Some(build))
}

async fn jobs_of<C: Conn>(conn: &mut C, build_id: &str) -> Result<Vec<JobRunView>> {
    let found: Vec<JobRow> = conn.all(sql(rows::JOBS_OF_BUILD).bind(build_id)).await?;
    let mut jobs = each(found, JobRow::view)?;
    for j in &mut jobs {
        describe_wait(conn, j).await?;
    }
    Ok(jobs)
}

/// A job run waiting for its concurrency group says which group, and who holds it.
async fn describe_wait<C: Conn>(conn: &mut C, j: &mut JobRunView) -> Result<()> {
    if j.waiting_for.as_deref() == Some("concurrency") {
        j.waiting_for = groups::waiting_for(conn, &j.id).await?;
    }
    Ok(())
}

pub(crate) async fn job_run<C: Conn>(conn: &mut C, id: &str) -> Result<Option<JobRunView>> {
    let row: Option<JobRow> = conn.opt(sql(rows::JOB_ONE).bind(id)).await?;
    let Some(mut job) = row.map(JobRow::view).transpose()? else {
        return Ok(None);
    };
    describe_wait(conn, &mut job).await?;
    Ok(Some(job))
}

pub(crate) async fn build_of_job_run<C: Conn>(conn: &mut C, id: &str) -> Result<Option<String>> {
    let row: Option<(String,)> = conn
        .opt(sql("SELECT build_id FROM job_runs WHERE id = $1").bind(id))
        .await?;
    Ok(row.map(|(b,)| b))
}

pub(crate) async fn downstream_builds<C: Conn>(conn: &mut C, id: &str) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = conn
        .all(sql("SELECT id FROM builds WHERE upstream_build_id = $1 ORDER BY id").bind(id))
        .await?;
    Ok(rows.into_iter().map(|(b,)| b).collect())
}

pub(crate) async fn job_edges<C: Conn>(
    conn: &mut C,
    build_id: &str,
) -> Result<Vec<(String, String)>> {
    conn.all(
        sql(
            "SELECT from_run, to_run FROM job_edges WHERE build_id = $1 \
             ORDER BY from_run, to_run",
        )
        .bind(build_id),
    )
    .await
}

pub(crate) async fn unfinished_builds<C: Conn>(conn: &mut C) -> Result<u64> {
    let (n,): (i64,) = conn
        .one(sql(
            "SELECT COUNT(*) AS n FROM builds WHERE finished_at IS NULL",
        ))
        .await?;
    Ok(n as u64)
}

/// Job runs in flight (pending, queued, waiting, running) by state and fleet, and how many
/// runners hold a running job run: read through `job_runs_by_status`, so bounded by the work
/// in flight, not by the history.
pub(crate) async fn run_counts<C: Conn>(conn: &mut C) -> Result<(Vec<RunCount>, u64)> {
    let rows: Vec<(String, String, i64)> = conn
        .all(sql("SELECT status, fleet, COUNT(*) AS n FROM job_runs \
                  WHERE status IN ('pending', 'queued', 'waiting', 'running') \
                  GROUP BY status, fleet ORDER BY status, fleet"))
        .await?;
    let counts = rows
        .into_iter()
        .map(|(status, fleet, n)| RunCount {
            status,
            fleet,
            count: n as u64,
        })
        .collect();
    let (busy,): (i64,) = conn
        .one(sql(
            "SELECT COUNT(DISTINCT lease_owner) AS n FROM job_runs \
                  WHERE status = 'running'",
        ))
        .await?;
    Ok((counts, busy as u64))
}

pub(crate) async fn queued_by_fleet<C: Conn>(conn: &mut C) -> Result<Vec<(String, u64)>> {
    let rows: Vec<(String, i64)> = conn
        .all(sql(
            "SELECT fleet, COUNT(*) AS n FROM job_runs WHERE status = 'queued' \
                  GROUP BY fleet",
        ))
        .await?;
    Ok(rows.into_iter().map(|(f, n)| (f, n as u64)).collect())
}

/// At most `limit` job runs of `fleet` queued before `before`, oldest first.
pub(crate) async fn stale_queued<C: Conn>(
    conn: &mut C,
    before: i64,
    fleet: &str,
    limit: u64,
) -> Result<Vec<Dispatch>> {
    let rows: Vec<(String, i64, String)> = conn
        .all(
            sql(
                "SELECT id, attempt, fleet FROM job_runs WHERE status = 'queued' \
                 AND fleet = $2 AND queued_at < $1 ORDER BY queued_at LIMIT $3",
            )
            .bind(before)
            .bind(fleet)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(job_run_id, attempt, fleet)| Dispatch {
            fleet,
            msg: QueueMessage {
                job_run_id,
                attempt: attempt as u32,
            },
        })
        .collect())
}

/// Builds created since `since` whose forge has not been told their current status.
pub(crate) async fn forge_status_due<C: Conn>(
    conn: &mut C,
    since: i64,
    limit: u32,
) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = conn
        .all(
            sql(
                "SELECT id FROM builds WHERE forge_status IS NOT NULL AND created_at >= $1 \
                 AND forge_status <> status ORDER BY created_at LIMIT $2",
            )
            .bind(since)
            .bind(limit),
        )
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

pub(crate) async fn set_forge_status<C: Conn>(conn: &mut C, id: &str, status: &str) -> Result<()> {
    conn.exec(
        sql("UPDATE builds SET forge_status = $2 WHERE id = $1 AND forge_status IS NOT NULL")
            .bind(id)
            .bind(status),
    )
    .await?;
    Ok(())
}
