//! A completion that takes the next job ([`Completion::take_next`]): the first job run it
//! readies on the runner's fleets is claimed for the runner in the completion's own
//! transaction, not dispatched, and handed over in its answer. The taken job run keeps the
//! completion's lease token (`taken_after`), so a replay of a completion whose answer was lost
//! is answered with the same job run rather than leaving it to wait out its lease.

use conveyor_core::protocol::{ClaimRequest, Completion, Lease, QueueMessage};

use super::conn::{Conn, sql};
use super::runs::{Taking, Took, take_on};
use super::{Backend, SqlStore, Work, leases, logs, token};
use crate::error::Result;
use crate::types::{Claim, Dispatch, Effects, Owner};

/// A job run taken for a runner: the request it was taken under, what the taking read, and
/// its lease's token.
type TakenNext = (ClaimRequest, Took, String);

impl<B: Backend> SqlStore<B> {
    /// Records a completion (see [`leases::complete`]), its log lines first; with `taking`,
    /// one job run it readied on the runner's fleets is claimed in the same transaction
    /// instead of dispatched, and its spec read once that committed. A completion fenced
    /// out that took a job run before (a replay) gets that job run again.
    pub(super) async fn complete_run(
        &self,
        c: &Completion,
        owner: &str,
        taking: Option<(&Owner, i64)>,
        max_log_bytes: u64,
        now: i64,
    ) -> Result<Option<(Effects, Option<Claim>)>> {
        let mut tx = self.backend.begin().await?;
        // The lines first, before the build's lock is taken, so that lock is held over fewer
        // statements (every completion of the build waits for it); a completion fenced out
        // rolls them back with the rest.
        logs::append_final(&mut *tx, c, max_log_bytes, now).await?;
        let mut work = Work::default();
        if !leases::complete(&mut *tx, c, owner, now, &mut work).await? {
            drop(tx);
            return match taking {
                Some((runner, lease_ms)) => {
                    self.taken_before(&c.lease, runner, lease_ms, now).await
                }
                None => Ok(None),
            };
        }
        let next = match taking {
            Some((runner, lease_ms)) => {
                take_readied(&mut *tx, runner, &c.lease, lease_ms, now, &mut work).await?
            }
            None => None,
        };
        let effects = self.finish(tx, work, now).await?;
        match (next, taking) {
            (Some(next), Some((runner, lease_ms))) => Ok(Some(
                self.hand_over(effects, next, runner, lease_ms, now).await,
            )),
            _ => Ok(Some((effects, None))),
        }
    }

    /// The spec of a job run taken by a committed completion. From here on an error must
    /// not fail the completion: a job run whose spec cannot be read is put back on its
    /// queue, not left to its lease's expiry.
    async fn hand_over(
        &self,
        mut effects: Effects,
        (req, took, lease_token): TakenNext,
        runner: &Owner,
        lease_ms: i64,
        now: i64,
    ) -> (Effects, Option<Claim>) {
        let read = self.claimed(&req, took, lease_token.clone(), lease_ms, now);
        match read.await {
            Ok(claim) => (effects, Some(claim)),
            Err(e) => {
                tracing::warn!(job_run = %req.job_run_id, "the next job's spec could not be read: {e}");
                let lease = Lease {
                    job_run_id: req.job_run_id,
                    attempt: req.attempt,
                    lease_token,
                };
                let back = self.untake(lease, &runner.name).await;
                effects.dispatch.extend(back);
                (effects, None)
            }
        }
    }

    /// The job run a completion under `completed` took for `runner` before, still running
    /// under that lease: a replay whose first answer was lost gets it again (with nothing
    /// else to do: the first one did it all), under a new lease token, so a hand-over of the
    /// first that failed meanwhile (see [`SqlStore::untake`]) cannot put it back on its queue
    /// too. `None` if it took none, or it has moved on, or its lease expired.
    async fn taken_before(
        &self,
        completed: &Lease,
        runner: &Owner,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<(Effects, Option<Claim>)>> {
        let lease_token = token();
        let row: Option<(String, i64, String, String, Option<i64>)> = self
            .backend
            .writer()
            .await?
            .opt(
                sql(
                    "UPDATE job_runs SET lease_token = $4, lease_expires_at = $5 \
                     WHERE build_id = (SELECT build_id FROM job_runs WHERE id = $1) \
                     AND taken_after = $2 AND lease_owner = $3 AND status = 'running' \
                     AND lease_expires_at > $6 \
                     RETURNING id, attempt, build_id, spec, queued_at",
                )
                .bind(&completed.job_run_id)
                .bind(&completed.lease_token)
                .bind(&runner.name)
                .bind(&lease_token)
                .bind(now + lease_ms)
                .bind(now),
            )
            .await?;
        let Some((id, attempt, build_id, spec, queued_at)) = row else {
            return Ok(None);
        };
        let req = ClaimRequest {
            job_run_id: id,
            attempt: attempt as u32,
            runner: runner.name.clone(),
        };
        let took = Took::Row((build_id, spec, queued_at));
        let mut claim = self.claimed(&req, took, lease_token, lease_ms, now).await?;
        claim.replayed = true;
        Ok(Some((Effects::default(), Some(claim))))
    }

    /// Puts a job run taken for a runner, whose answer could not be made, back on its queue
    /// at the same attempt (not a lost attempt: it never ran); its dispatch, or `None` if the
    /// lease was not live or the store failed again (it then waits for its lease to expire).
    pub(crate) async fn untake(&self, lease: Lease, owner: &str) -> Option<Dispatch> {
        let update = "UPDATE job_runs SET status = 'queued', lease_owner = NULL, \
                      lease_token = NULL, lease_expires_at = NULL, taken_after = NULL";
        let q = super::runs::fenced(update, &lease, owner, " RETURNING fleet");
        let put = async { self.backend.writer().await?.opt(q).await };
        let fleet: Option<(String,)> = put
            .await
            .inspect_err(|e| tracing::warn!("it waits for its lease to expire: {e}"))
            .ok()?;
        Some(Dispatch {
            fleet: fleet?.0,
            msg: QueueMessage {
                job_run_id: lease.job_run_id,
                attempt: lease.attempt,
            },
        })
    }
}

/// The first job run this transaction readied on one of `owner`'s fleets — never the one
/// `completed` (its retry goes to any runner) — taken for it under the completion's token
/// and no longer dispatched.
async fn take_readied<C: Conn>(
    conn: &mut C,
    owner: &Owner,
    completed: &Lease,
    lease_ms: i64,
    now: i64,
    work: &mut Work,
) -> Result<Option<TakenNext>> {
    let dispatch = &mut work.effects.dispatch;
    let run = &completed.job_run_id;
    let Some(at) = dispatch
        .iter()
        .position(|d| &d.msg.job_run_id != run && owner.fleets.contains(&d.fleet))
    else {
        return Ok(None);
    };
    let req = ClaimRequest {
        job_run_id: dispatch[at].msg.job_run_id.clone(),
        attempt: dispatch[at].msg.attempt,
        runner: owner.name.clone(),
    };
    let lease_token = token();
    let lease = Taking {
        token: &lease_token,
        after: Some(&completed.lease_token),
    };
    let took = take_on(conn, &req, owner, lease, lease_ms, now).await?;
    Ok(took.map(|took| {
        dispatch.remove(at);
        (req, took, lease_token)
    }))
}
