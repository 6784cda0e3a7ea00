//! How a lease ends: a completion, a runner handing its job run back, or the reaper finding
//! it expired. Each takes its build's lock first, then changes the job run in one `UPDATE`
//! fenced by everything that makes the lease this one (id, attempt, state, and the lease
//! token and owner for runner calls, or the expiry for the reaper), and acts only when that
//! statement changed exactly one row: two completions, a completion and a reap, or two
//! reapers can never both settle one attempt.

use conveyor_core::protocol::{Completion, Lease, Outcome, QueueMessage};
use sqlx::FromRow;

use super::builds::{settle, settle_with};
use super::conn::{Conn, Sql, sql};
use super::{Work, to_json};
use crate::error::Result;
use crate::types::Dispatch;

/// Takes the lock of the build a job run belongs to; `None` if there is no such job run.
pub(crate) async fn lock_build_of<C: Conn>(
    conn: &mut C,
    job_run_id: &str,
) -> Result<Option<String>> {
    // One statement: a job run's build never changes, and only the build's row is locked.
    let q = format!(
        "SELECT id FROM builds WHERE id = (SELECT build_id FROM job_runs WHERE id = $1){}",
        C::FOR_UPDATE
    );
    let row: Option<(String,)> = conn.opt(Sql::owned(q).bind(job_run_id)).await?;
    Ok(row.map(|(build_id,)| build_id))
}

/// Records a result under `owner`'s live lease and moves the build on; false if fenced
/// out (the lease is gone, or it is not this runner's).
pub(crate) async fn complete<C: Conn>(
    conn: &mut C,
    c: &Completion,
    owner: &str,
    now: i64,
    work: &mut Work,
) -> Result<bool> {
    // Where rows are locked, the build's lock first (see `Conn::LOCK_BUILD`): taken by the
    // fenced `UPDATE` below itself, before it changes the job run's row, and for a failure,
    // which may be retried instead, before that. On SQLite the write transaction is the
    // lock, and the build is read off the fenced `UPDATE`.
    let row_locks = !C::FOR_UPDATE.is_empty();
    let failed = matches!(c.outcome, Outcome::Failed | Outcome::TimedOut);
    if failed && row_locks && lock_build_of(conn, &c.lease.job_run_id).await?.is_none() {
        return Ok(false);
    }
    if failed && let Some((fleet, started)) = retry(conn, c, owner, now).await? {
        work.effects.durations_ms.push(now - started.unwrap_or(now));
        work.effects.dispatch.push(Dispatch {
            fleet,
            msg: QueueMessage {
                job_run_id: c.lease.job_run_id.clone(),
                attempt: c.lease.attempt + 1,
            },
        });
        return Ok(true);
    }
    let status = match c.outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed | Outcome::TimedOut => "failed",
        Outcome::Cancelled => "cancelled",
    };
    let error = match (&c.error, c.outcome) {
        (Some(e), _) => Some(e.clone()),
        (None, Outcome::TimedOut) => Some("timed out".to_string()),
        _ => None,
    };
    let outputs = (c.outcome == Outcome::Succeeded)
        .then(|| to_json(&c.outputs))
        .transpose()?;
    let finished = finish(conn, c, owner, status, error, outputs, now).await?;
    let Some((started, build_id, grouped)) = finished else {
        return Ok(false);
    };
    work.effects.durations_ms.push(now - started.unwrap_or(now));
    let run = c.lease.job_run_id.as_str();
    let settled = vec![(run.to_string(), status)];
    let ungrouped = (!grouped).then_some(run);
    settle_with(conn, &build_id, settled, ungrouped, now, work).await?;
    Ok(true)
}

/// The fenced `UPDATE` that ends the attempt: when it started, its build, and whether it is
/// in a concurrency group; `None` if fenced out. Where rows are locked it locks the build's
/// row first, in a `WITH` its fence reads: the subquery runs as the row is tested, before the
/// row is changed, so the order stays the build, then its job runs.
async fn finish<C: Conn>(
    conn: &mut C,
    c: &Completion,
    owner: &str,
    status: &str,
    error: Option<String>,
    outputs: Option<String>,
    now: i64,
) -> Result<Option<(Option<i64>, String, bool)>> {
    let (lock, locked) = match C::FOR_UPDATE.is_empty() {
        true => ("", ""),
        false => (
            "WITH b AS (SELECT id FROM builds WHERE id = \
             (SELECT build_id FROM job_runs WHERE id = $1) FOR UPDATE) ",
            " AND build_id = (SELECT id FROM b)",
        ),
    };
    conn.opt(
        Sql::owned(format!(
            "{lock}UPDATE job_runs SET status = $6, exit_code = $7, outputs = $8, error = $9, \
             finished_at = $5, lease_token = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND attempt = $2 AND lease_token = $3 AND lease_owner = $4 \
             AND status = 'running'{locked} RETURNING started_at, build_id, \
             EXISTS (SELECT 1 FROM concurrency_members WHERE member = job_runs.id)"
        ))
        .bind(&c.lease.job_run_id)
        .bind(c.lease.attempt)
        .bind(&c.lease.lease_token)
        .bind(owner)
        .bind(now)
        .bind(status)
        .bind(c.exit_code.map(i64::from))
        .bind(outputs)
        .bind(error),
    )
    .await
}

/// A failed attempt with retries left: queued again at the next attempt. `None` when the
/// lease is not live or no retry is left.
async fn retry<C: Conn>(
    conn: &mut C,
    c: &Completion,
    owner: &str,
    now: i64,
) -> Result<Option<(String, Option<i64>)>> {
    conn.opt(
        sql(
            "UPDATE job_runs SET status = 'queued', attempt = attempt + 1, \
             failures = failures + 1, lease_owner = NULL, lease_token = NULL, \
             lease_expires_at = NULL, exit_code = $6, error = $7, queued_at = $5 \
             WHERE id = $1 AND attempt = $2 AND lease_token = $3 AND lease_owner = $4 \
             AND status = 'running' AND failures < retries RETURNING fleet, started_at",
        )
        .bind(&c.lease.job_run_id)
        .bind(c.lease.attempt)
        .bind(&c.lease.lease_token)
        .bind(owner)
        .bind(now)
        .bind(c.exit_code.map(i64::from))
        .bind(&c.error),
    )
    .await
}

/// Which lease a lost attempt ends: one a runner hands back (its token and owner), or one
/// whose expiry passed (the reaper).
pub(crate) enum LostLease<'a> {
    HandedBack { lease: &'a Lease, owner: &'a str },
    Expired { job_run_id: &'a str, attempt: u32 },
}

/// A job run whose runner was lost (or handed it back): queued again at the next attempt,
/// failed once it has been lost more than `max_lost` times, or cancelled if a cancel was
/// asked for. False if the lease was not live (fenced out).
pub(crate) async fn lose<C: Conn>(
    conn: &mut C,
    which: LostLease<'_>,
    max_lost: u32,
    now: i64,
    work: &mut Work,
) -> Result<bool> {
    let (id, attempt, token, owner, expired_before) = match which {
        LostLease::HandedBack { lease, owner } => (
            lease.job_run_id.as_str(),
            lease.attempt,
            Some(lease.lease_token.as_str()),
            Some(owner),
            None,
        ),
        LostLease::Expired {
            job_run_id,
            attempt,
        } => (job_run_id, attempt, None, None, Some(now)),
    };
    let Some(build_id) = lock_build_of(conn, id).await? else {
        return Ok(false);
    };
    let fence = Fence {
        id,
        attempt,
        token,
        owner,
        expired_before,
    };
    let row = mark_lost(conn, &fence, max_lost, now).await?;
    let Some(row) = row else {
        return Ok(false);
    };
    match row.status.as_str() {
        "queued" => work.effects.dispatch.push(Dispatch {
            fleet: row.fleet,
            msg: QueueMessage {
                job_run_id: id.to_string(),
                attempt: row.attempt as u32,
            },
        }),
        final_state => {
            let state = if final_state == "cancelled" {
                "cancelled"
            } else {
                "failed"
            };
            settle(conn, &build_id, vec![(id.to_string(), state)], now, work).await?;
        }
    }
    Ok(true)
}

/// What makes a lost lease the one to end: its id and attempt, and its token and owner
/// (a hand-back) or its expiry (the reaper).
struct Fence<'a> {
    id: &'a str,
    attempt: u32,
    token: Option<&'a str>,
    owner: Option<&'a str>,
    expired_before: Option<i64>,
}

/// The fenced `UPDATE` that ends a lost attempt: queued again, failed past `max_lost`, or
/// cancelled if a cancel was asked for. `None` if the lease was not live.
async fn mark_lost<C: Conn>(
    conn: &mut C,
    f: &Fence<'_>,
    max_lost: u32,
    now: i64,
) -> Result<Option<Lost>> {
    conn.opt(
        sql("UPDATE job_runs SET lost = lost + 1, lease_token = NULL, \
             lease_expires_at = NULL, status = CASE \
               WHEN cancel_requested THEN 'cancelled' \
               WHEN lost + 1 > $6 THEN 'failed' ELSE 'queued' END, \
             attempt = CASE WHEN cancel_requested OR lost + 1 > $6 \
               THEN attempt ELSE attempt + 1 END, \
             lease_owner = CASE WHEN cancel_requested OR lost + 1 > $6 \
               THEN lease_owner ELSE NULL END, \
             error = CASE WHEN NOT cancel_requested AND lost + 1 > $6 \
               THEN 'lost its runner ' || CAST(lost + 1 AS TEXT) || ' times' ELSE error END, \
             queued_at = $7, finished_at = CASE WHEN cancel_requested OR lost + 1 > $6 \
               THEN $7 ELSE NULL END \
             WHERE id = $1 AND attempt = $2 AND status = 'running' \
             AND (CAST($3 AS TEXT) IS NULL OR lease_token = $3) \
             AND (CAST($4 AS TEXT) IS NULL OR lease_owner = $4) \
             AND (CAST($5 AS BIGINT) IS NULL OR lease_expires_at < $5) \
             RETURNING status, attempt, fleet")
        .bind(f.id)
        .bind(f.attempt)
        .bind(f.token)
        .bind(f.owner)
        .bind(f.expired_before)
        .bind(i64::from(max_lost))
        .bind(now),
    )
    .await
}

/// What a lost attempt became.
#[derive(FromRow)]
struct Lost {
    status: String,
    attempt: i64,
    fleet: String,
}

/// Running job runs whose lease expired before `now`, with their attempt: each is ended by
/// [`lose`] in a transaction of its own, so the reaper never holds many builds' locks.
pub(crate) async fn expired<C: Conn>(conn: &mut C, now: i64) -> Result<Vec<(String, i64)>> {
    conn.all(
        sql("SELECT id, attempt FROM job_runs WHERE status = 'running' AND lease_expires_at < $1")
            .bind(now),
    )
    .await
}

impl<B: super::Backend> super::SqlStore<B> {
    /// Ends a lost lease in a transaction of its own.
    pub(super) async fn lose(
        &self,
        which: LostLease<'_>,
        max_lost: u32,
        now: i64,
    ) -> Result<Option<crate::types::Effects>> {
        let mut tx = self.backend.begin().await?;
        let mut work = super::Work::default();
        if !lose(&mut *tx, which, max_lost, now, &mut work).await? {
            return Ok(None);
        }
        self.finish(tx, work, now).await.map(Some)
    }
}
