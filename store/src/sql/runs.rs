//! The runner-facing use cases: claim, heartbeat, logs, complete, and the reaper. Every
//! write after the claim is fenced by `(id, attempt, lease_token)`.

use conveyor_core::model::Job;
use conveyor_core::protocol::{
    ClaimRequest, Completion, JobSpec, Lease, LogBatch, Outcome, QueueMessage,
};
use conveyor_core::rules::{self, JobContext};
use sqlx::FromRow;

use super::builds::settle;
use super::conn::{Arg, Conn, Sql, sql};
use super::{Work, from_json, to_json, token, values};
use crate::error::Result;
use crate::types::{Claim, Dispatch};

/// The build a claimed job run belongs to, and its product's source.
#[derive(FromRow)]
struct ClaimedBuild {
    product: String,
    belt: String,
    number: i64,
    sha: Option<String>,
    git_ref: Option<String>,
    repo: Option<String>,
    source_path: Option<String>,
}

/// Takes a queued job run at this attempt; `None` when it is not (duplicate or stale).
pub(crate) async fn claim<C: Conn>(
    conn: &mut C,
    req: &ClaimRequest,
    lease_ms: i64,
    now: i64,
) -> Result<Option<Claim>> {
    let lease_token = token();
    let taken: Option<(String, String, Option<i64>)> = conn
        .opt(
            sql(
                "UPDATE job_runs SET status = 'running', lease_owner = $3, lease_token = $4, \
                 lease_expires_at = $5, started_at = COALESCE(started_at, $6) \
                 WHERE id = $1 AND attempt = $2 AND status = 'queued' \
                 RETURNING build_id, spec, queued_at",
            )
            .bind(&req.job_run_id)
            .bind(req.attempt)
            .bind(&req.runner)
            .bind(&lease_token)
            .bind(now + lease_ms)
            .bind(now),
        )
        .await?;
    let Some((build_id, spec, queued_at)) = taken else {
        return Ok(None);
    };
    let job: Job = from_json(&spec)?;
    let b: ClaimedBuild = conn
        .one(
            sql(
                "SELECT b.product, b.belt, b.number, b.sha, b.git_ref, p.repo, p.source_path \
                 FROM builds b JOIN products p ON p.name = b.product WHERE b.id = $1",
            )
            .bind(&build_id),
        )
        .await?;
    let ctx = JobContext {
        product: &b.product,
        belt: &b.belt,
        number: b.number,
        build_id: &build_id,
        job_run_id: &req.job_run_id,
        job: &job.name,
        attempt: i64::from(req.attempt),
        sha: b.sha.as_deref(),
        git_ref: b.git_ref.as_deref(),
    };
    let mut env = job.env.clone();
    env.extend(rules::conveyor_env(&ctx));
    env.extend(values::resolve(conn, &build_id, &job.refs).await?);
    let source = rules::source_of(
        &job,
        b.source_path.as_deref(),
        b.repo.as_deref(),
        b.sha.as_deref(),
    );
    let spec = JobSpec {
        lease: Lease {
            job_run_id: req.job_run_id.clone(),
            attempt: req.attempt,
            lease_token,
        },
        lease_secs: (lease_ms / 1000).max(1) as u64,
        source,
        git_inputs: rules::git_inputs(&job),
        product: b.product,
        belt: b.belt,
        job: job.name.clone(),
        build_id,
        build_number: b.number as u64,
        script: job.script.clone(),
        env,
        outputs: job.outputs.clone(),
        timeout_secs: job.timeout_secs,
    };
    Ok(Some(Claim {
        spec,
        waited_ms: now - queued_at.unwrap_or(now),
    }))
}

/// Extends a lease; `Some(cancel)` while the lease holds, `None` once it is gone.
pub(crate) async fn heartbeat<C: Conn>(
    conn: &mut C,
    lease: &Lease,
    lease_ms: i64,
    now: i64,
) -> Result<Option<bool>> {
    let row: Option<(bool,)> = conn
        .opt(
            sql(
                "UPDATE job_runs SET lease_expires_at = $4 WHERE id = $1 AND attempt = $2 \
                 AND lease_token = $3 AND status = 'running' RETURNING cancel_requested",
            )
            .bind(&lease.job_run_id)
            .bind(lease.attempt)
            .bind(&lease.lease_token)
            .bind(now + lease_ms),
        )
        .await?;
    Ok(row.map(|(cancel,)| cancel))
}

/// Stores a log batch under a live lease (a batch sent twice is stored once).
pub(crate) async fn append_logs<C: Conn>(conn: &mut C, batch: &LogBatch, now: i64) -> Result<bool> {
    let lease = &batch.lease;
    let live: Option<(String,)> = conn
        .opt(
            sql("SELECT id FROM job_runs WHERE id = $1 AND attempt = $2 \
                 AND lease_token = $3 AND status = 'running'")
            .bind(&lease.job_run_id)
            .bind(lease.attempt)
            .bind(&lease.lease_token),
        )
        .await?;
    if live.is_none() {
        return Ok(false);
    }
    let head = "INSERT INTO log_lines (job_run_id, attempt, seq, line_no, stream, text, at)";
    for (chunk_no, chunk) in batch.lines.chunks(200).enumerate() {
        let rows = chunk.iter().enumerate().map(|(i, line)| {
            let stream = serde_json::to_value(line.stream)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            vec![
                Arg::from(&lease.job_run_id),
                Arg::from(lease.attempt),
                Arg::from(batch.seq as i64),
                Arg::from((chunk_no * 200 + i) as i64),
                Arg::from(stream),
                Arg::from(&line.text),
                Arg::from(now),
            ]
        });
        conn.exec(Sql::values(head, rows.collect(), " ON CONFLICT DO NOTHING"))
            .await?;
    }
    Ok(true)
}

/// The job run a completion settles, read under its lease.
#[derive(FromRow)]
struct Leased {
    build_id: String,
    fleet: String,
    failures: i64,
    retries: i64,
    started_at: Option<i64>,
}

/// Records a result under a live lease and moves the build on; false if fenced out.
pub(crate) async fn complete<C: Conn>(
    conn: &mut C,
    c: &Completion,
    now: i64,
    work: &mut Work,
) -> Result<bool> {
    let leased: Option<Leased> = conn
        .opt(
            sql(
                "SELECT build_id, fleet, failures, retries, started_at FROM job_runs \
                 WHERE id = $1 AND attempt = $2 AND lease_token = $3 AND status = 'running'",
            )
            .bind(&c.lease.job_run_id)
            .bind(c.lease.attempt)
            .bind(&c.lease.lease_token),
        )
        .await?;
    let Some(run) = leased else {
        return Ok(false);
    };
    work.effects
        .durations_ms
        .push(now - run.started_at.unwrap_or(now));
    let failed = matches!(c.outcome, Outcome::Failed | Outcome::TimedOut);
    if failed && run.failures < run.retries {
        retry(conn, c, now).await?;
        work.effects.dispatch.push(Dispatch {
            fleet: run.fleet,
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
    conn.exec(
        sql(
            "UPDATE job_runs SET status = $2, exit_code = $3, outputs = $4, error = $5, \
             finished_at = $6, lease_token = NULL, lease_expires_at = NULL WHERE id = $1",
        )
        .bind(&c.lease.job_run_id)
        .bind(status)
        .bind(c.exit_code.map(i64::from))
        .bind(outputs)
        .bind(error)
        .bind(now),
    )
    .await?;
    let settled = vec![(c.lease.job_run_id.clone(), status)];
    settle(conn, &run.build_id, settled, now, work).await?;
    Ok(true)
}

/// A failed attempt with retries left: queued again at the next attempt.
async fn retry<C: Conn>(conn: &mut C, c: &Completion, now: i64) -> Result<()> {
    conn.exec(
        sql(
            "UPDATE job_runs SET status = 'queued', attempt = attempt + 1, \
             failures = failures + 1, lease_owner = NULL, lease_token = NULL, \
             lease_expires_at = NULL, exit_code = $2, error = $3, queued_at = $4 WHERE id = $1",
        )
        .bind(&c.lease.job_run_id)
        .bind(c.exit_code.map(i64::from))
        .bind(&c.error)
        .bind(now),
    )
    .await?;
    Ok(())
}

/// A running job run whose lease expired.
#[derive(FromRow)]
struct Expired {
    id: String,
    build_id: String,
    attempt: i64,
    lost: i64,
    fleet: String,
}

/// Re-queues running job runs whose lease expired (a lost runner), failing those lost
/// more than `max_lost` times.
pub(crate) async fn reap<C: Conn>(
    conn: &mut C,
    now: i64,
    max_lost: u32,
    work: &mut Work,
) -> Result<()> {
    let expired: Vec<Expired> = conn
        .all(
            sql("SELECT id, build_id, attempt, lost, fleet FROM job_runs \
                 WHERE status = 'running' AND lease_expires_at < $1")
            .bind(now),
        )
        .await?;
    for run in expired {
        if run.lost + 1 > i64::from(max_lost) {
            let msg = format!("lost its runner {} times", run.lost + 1);
            let n = conn
                .exec(
                    sql(
                        "UPDATE job_runs SET status = 'failed', lost = lost + 1, error = $3, \
                         finished_at = $4, lease_token = NULL \
                         WHERE id = $1 AND attempt = $2 AND status = 'running'",
                    )
                    .bind(&run.id)
                    .bind(run.attempt)
                    .bind(msg)
                    .bind(now),
                )
                .await?;
            if n == 1 {
                settle(conn, &run.build_id, vec![(run.id, "failed")], now, work).await?;
            }
            continue;
        }
        let n = conn
            .exec(
                sql(
                    "UPDATE job_runs SET status = 'queued', attempt = attempt + 1, \
                     lost = lost + 1, lease_owner = NULL, lease_token = NULL, \
                     lease_expires_at = NULL, queued_at = $3 \
                     WHERE id = $1 AND attempt = $2 AND status = 'running'",
                )
                .bind(&run.id)
                .bind(run.attempt)
                .bind(now),
            )
            .await?;
        if n == 1 {
            work.effects.dispatch.push(Dispatch {
                fleet: run.fleet,
                msg: QueueMessage {
                    job_run_id: run.id,
                    attempt: run.attempt as u32 + 1,
                },
            });
        }
    }
    Ok(())
}
