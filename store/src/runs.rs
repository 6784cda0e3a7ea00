//! The runner-facing use cases, written once for both backends: claim, heartbeat, logs,
//! complete, reap. Every write after the claim is fenced by `(id, attempt, lease_token)`.

macro_rules! run_steps {
    ($store:ident, $db:ty, $conn:ty) => {
        impl $store {
            async fn claim_in(
                conn: &mut $conn,
                req: &conveyor_core::protocol::ClaimRequest,
                lease_ms: i64,
                now: i64,
            ) -> $crate::Result<Option<$crate::Claim>> {
                use sqlx::Row;
                use conveyor_core::rules as r;
                use $crate::sql::{db_err, from_json};
                let token = $crate::sql::token();
                let Some(row) = sqlx::query(
                    "UPDATE job_runs SET status = 'running', lease_owner = $3, lease_token = $4, lease_expires_at = $5, \
                     started_at = COALESCE(started_at, $6) WHERE id = $1 AND attempt = $2 AND status = 'queued' \
                     RETURNING build_id, name, spec, queued_at",
                )
                .bind(&req.job_run_id)
                .bind(i64::from(req.attempt))
                .bind(&req.runner)
                .bind(&token)
                .bind(now + lease_ms)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?
                else {
                    return Ok(None);
                };
                let build_id: String = row.try_get("build_id").map_err(db_err)?;
                let queued_at: Option<i64> = row.try_get("queued_at").map_err(db_err)?;
                let job: conveyor_core::model::Job = from_json(&row.try_get::<String, _>("spec").map_err(db_err)?)?;
                let b = sqlx::query(
                    "SELECT b.product, b.belt, b.number, b.sha, b.git_ref, p.repo, p.source_path \
                     FROM builds b JOIN products p ON p.name = b.product WHERE b.id = $1",
                )
                .bind(&build_id)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?;
                let get = |c: &str| b.try_get::<Option<String>, _>(c).map_err(db_err);
                let (product, belt): (String, String) =
                    (b.try_get("product").map_err(db_err)?, b.try_get("belt").map_err(db_err)?);
                let number: i64 = b.try_get("number").map_err(db_err)?;
                let (sha, git_ref, repo, local) = (get("sha")?, get("git_ref")?, get("repo")?, get("source_path")?);
                let ctx = r::JobContext {
                    product: &product,
                    belt: &belt,
                    number,
                    build_id: &build_id,
                    job_run_id: &req.job_run_id,
                    job: &job.name,
                    attempt: i64::from(req.attempt),
                    sha: sha.as_deref(),
                    git_ref: git_ref.as_deref(),
                };
                let mut env = job.env.clone();
                env.extend(r::conveyor_env(&ctx));
                env.extend(Self::resolve_values(conn, &build_id, &job.refs).await?);
                let spec = conveyor_core::protocol::JobSpec {
                    lease: conveyor_core::protocol::Lease {
                        job_run_id: req.job_run_id.clone(),
                        attempt: req.attempt,
                        lease_token: token,
                    },
                    lease_secs: (lease_ms / 1000).max(1) as u64,
                    source: r::source_of(&job, local.as_deref(), repo.as_deref(), sha.as_deref()),
                    git_inputs: r::git_inputs(&job),
                    product,
                    belt,
                    job: job.name.clone(),
                    build_id,
                    build_number: number as u64,
                    script: job.script.clone(),
                    env,
                    outputs: job.outputs.clone(),
                    timeout_secs: job.timeout_secs,
                };
                Ok(Some($crate::Claim { spec, waited_ms: now - queued_at.unwrap_or(now) }))
            }

            async fn complete_in(
                conn: &mut $conn,
                c: &conveyor_core::protocol::Completion,
                now: i64,
                work: &mut Work,
            ) -> $crate::Result<bool> {
                use conveyor_core::protocol::Outcome;
                use sqlx::Row;
                use $crate::sql::{db_err, to_json};
                let Some(row) = sqlx::query(
                    "SELECT build_id, fleet, failures, retries, started_at FROM job_runs \
                     WHERE id = $1 AND attempt = $2 AND lease_token = $3 AND status = 'running'",
                )
                .bind(&c.lease.job_run_id)
                .bind(i64::from(c.lease.attempt))
                .bind(&c.lease.lease_token)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?
                else {
                    return Ok(false);
                };
                let build_id: String = row.try_get("build_id").map_err(db_err)?;
                let fleet: String = row.try_get("fleet").map_err(db_err)?;
                let failures: i64 = row.try_get("failures").map_err(db_err)?;
                let retries: i64 = row.try_get("retries").map_err(db_err)?;
                let started: Option<i64> = row.try_get("started_at").map_err(db_err)?;
                work.effects.durations_ms.push(now - started.unwrap_or(now));
                let exit = c.exit_code.map(i64::from);
                let failed = matches!(c.outcome, Outcome::Failed | Outcome::TimedOut);
                if failed && failures < retries {
                    sqlx::query(
                        "UPDATE job_runs SET status = 'queued', attempt = attempt + 1, failures = failures + 1, \
                         lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, exit_code = $2, error = $3, queued_at = $4 \
                         WHERE id = $1",
                    )
                    .bind(&c.lease.job_run_id)
                    .bind(exit)
                    .bind(&c.error)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                    work.effects.dispatch.push($crate::Dispatch {
                        fleet,
                        msg: conveyor_core::protocol::QueueMessage {
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
                let outputs = (c.outcome == Outcome::Succeeded).then(|| to_json(&c.outputs)).transpose()?;
                sqlx::query(
                    "UPDATE job_runs SET status = $2, exit_code = $3, outputs = $4, error = $5, finished_at = $6, \
                     lease_token = NULL, lease_expires_at = NULL WHERE id = $1",
                )
                .bind(&c.lease.job_run_id)
                .bind(status)
                .bind(exit)
                .bind(outputs)
                .bind(error)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                Self::settle(conn, &build_id, vec![(c.lease.job_run_id.clone(), status)], now, work).await?;
                Ok(true)
            }

            async fn reap_in(conn: &mut $conn, now: i64, max_lost: u32, work: &mut Work) -> $crate::Result<()> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let expired = sqlx::query(
                    "SELECT id, build_id, attempt, lost, fleet FROM job_runs WHERE status = 'running' AND lease_expires_at < $1",
                )
                .bind(now)
                .fetch_all(&mut *conn)
                .await
                .map_err(db_err)?;
                for row in expired {
                    let id: String = row.try_get("id").map_err(db_err)?;
                    let build_id: String = row.try_get("build_id").map_err(db_err)?;
                    let attempt: i64 = row.try_get("attempt").map_err(db_err)?;
                    let lost: i64 = row.try_get("lost").map_err(db_err)?;
                    let fleet: String = row.try_get("fleet").map_err(db_err)?;
                    if lost + 1 > i64::from(max_lost) {
                        let msg = format!("lost its runner {} times", lost + 1);
                        let n = sqlx::query(
                            "UPDATE job_runs SET status = 'failed', lost = lost + 1, error = $3, finished_at = $4, lease_token = NULL \
                             WHERE id = $1 AND attempt = $2 AND status = 'running'",
                        )
                        .bind(&id).bind(attempt).bind(msg).bind(now)
                        .execute(&mut *conn).await.map_err(db_err)?.rows_affected();
                        if n == 1 {
                            Self::settle(conn, &build_id, vec![(id, "failed")], now, work).await?;
                        }
                        continue;
                    }
                    let n = sqlx::query(
                        "UPDATE job_runs SET status = 'queued', attempt = attempt + 1, lost = lost + 1, lease_owner = NULL, \
                         lease_token = NULL, lease_expires_at = NULL, queued_at = $3 WHERE id = $1 AND attempt = $2 AND status = 'running'",
                    )
                    .bind(&id).bind(attempt).bind(now)
                    .execute(&mut *conn).await.map_err(db_err)?.rows_affected();
                    if n == 1 {
                        work.effects.dispatch.push($crate::Dispatch {
                            fleet,
                            msg: conveyor_core::protocol::QueueMessage { job_run_id: id, attempt: attempt as u32 + 1 },
                        });
                    }
                }
                Ok(())
            }
        }
    };
}

pub(crate) use run_steps;
