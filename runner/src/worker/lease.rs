//! What a running job owes its lease: log batches, renewals (and the self-fencing when they
//! fail), and the one report at its end — a completion, or a release when handed back.

use std::sync::Arc;
use std::time::Duration;

use conveyor_core::protocol::{Completion, JobSpec, Lease, LogBatch, LogLine, Outcome};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Stop, Why, handing_back};
use crate::client::{Client, Reply};

/// How long a release is retried across servers: a hand-back must end within seconds, and a
/// release that never arrives only means the job waits for its lease to expire.
const RELEASE_BOUND: Duration = Duration::from_secs(3);

/// Ships log lines in batches: whatever arrived within 100 ms, at most 500 lines.
pub(super) async fn ship_logs(
    client: Arc<Client>,
    lease: Lease,
    mut rx: mpsc::UnboundedReceiver<LogLine>,
) {
    let mut seq = 0;
    while let Some(first) = rx.recv().await {
        let mut lines = vec![first];
        let deadline = tokio::time::sleep(Duration::from_millis(100));
        tokio::pin!(deadline);
        while lines.len() < 500 {
            tokio::select! {
                line = rx.recv() => match line {
                    Some(l) => lines.push(l),
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
        let batch = LogBatch {
            lease: lease.clone(),
            seq,
            lines,
        };
        seq += 1;
        for _ in 0..3 {
            match client.logs(&batch).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!("shipping logs failed: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

/// How often a running job's lease is renewed at most, which bounds how long a cancel
/// takes to reach it (one fenced `UPDATE` of one row per running job per period).
pub const CANCEL_CHECK: Duration = Duration::from_millis(500);

/// Watches over a running job: renews its lease, and cancels the job when the orchestrator
/// asks, when the lease may have run out (another runner may have the job by then:
/// self-fencing), or when the runner hands its jobs back.
pub(super) struct Watchdog {
    pub client: Arc<Client>,
    pub spec: JobSpec,
    pub cancel: watch::Sender<bool>,
    pub why: Arc<Why>,
    pub stop: watch::Receiver<Option<Stop>>,
}

impl Watchdog {
    /// Extends the lease every third of its length, or every [`CANCEL_CHECK`] if that is
    /// sooner: the heartbeat's answer is how a cancel reaches the job.
    ///
    /// The runner's own deadline is counted from when the last renewal that succeeded was
    /// *sent* (the orchestrator counts from its receipt, later), less a margin for the kill;
    /// a renewal still unanswered at the deadline fences too, so a hung orchestrator or
    /// database cannot keep a job running past its lease.
    pub async fn run(mut self, claimed: Instant) {
        let lease = Duration::from_secs(self.spec.lease_secs.max(1));
        let every = (lease / 3).min(CANCEL_CHECK);
        let holds_for = lease - lease / 10;
        let mut deadline = claimed + holds_for;
        loop {
            let next = (Instant::now() + every).min(deadline);
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = handing_back(&mut self.stop) => return self.stop_job(Why::HANDED_BACK, "the runner is stopping"),
            }
            let sent = Instant::now();
            if sent >= deadline {
                return self.stop_job(Why::LOST, "its lease could not be renewed in time");
            }
            let renewal =
                tokio::time::timeout_at(deadline, self.client.heartbeat(&self.spec.lease));
            let answer = tokio::select! {
                a = renewal => a,
                () = handing_back(&mut self.stop) => return self.stop_job(Why::HANDED_BACK, "the runner is stopping"),
            };
            match answer {
                Ok(Ok(Reply::Ok(reply))) => {
                    // Counted from when the renewal was sent, before the orchestrator read
                    // the time it answers from: never later than the lease's true end.
                    let left = reply.lease_ms_left.map(Duration::from_millis);
                    deadline = sent + left.map_or(holds_for, |l| l.saturating_sub(lease / 10));
                    if reply.cancel && self.why.set(Why::CANCELLED) {
                        let _ = self.cancel.send(true);
                    }
                }
                Ok(Ok(Reply::Fenced)) => {
                    return self.stop_job(Why::LOST, "another runner holds its lease");
                }
                Ok(Err(e)) => tracing::warn!("heartbeat failed: {e}"),
                Err(_) => {
                    return self.stop_job(
                        Why::LOST,
                        "no heartbeat was answered before its lease ran out",
                    );
                }
            }
        }
    }

    fn stop_job(&self, why: u8, sentence: &str) {
        if self.why.set(why) {
            tracing::warn!(job_run = %self.spec.lease.job_run_id, "stopping the job: {sentence}");
            let _ = self.cancel.send(true);
        }
    }
}

/// Reports the result, retrying (across servers) while the lease may still hold.
pub(super) async fn complete(client: &Client, c: &Completion, lease_secs: u64) -> Option<JobSpec> {
    let give_up = Instant::now() + Duration::from_secs(lease_secs.max(1));
    let mut wait = Duration::from_millis(100);
    loop {
        match client.complete(c).await {
            Ok(Reply::Ok(reply)) => return reply.and_then(|r| r.next),
            Ok(Reply::Fenced) => {
                tracing::info!(job_run = %c.lease.job_run_id, "completion refused: the lease was lost");
                return None;
            }
            Err(e) if Instant::now() < give_up => {
                tracing::warn!("completion failed: {e}; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::error!(
                    succeeded = c.outcome == Outcome::Succeeded,
                    "giving up on the completion: {e}"
                );
                return None;
            }
        }
    }
}

/// Hands a killed job back (`POST /api/v1/runner/release`), retrying across servers for at
/// most [`RELEASE_BOUND`]. Whatever happens, the job is dead; if no orchestrator hears of
/// it, the reaper re-queues it when its lease expires.
pub(super) async fn release(client: &Client, lease: &Lease) {
    let job = &lease.job_run_id;
    let attempts = async {
        let mut wait = Duration::from_millis(100);
        loop {
            match client.release(lease).await {
                Ok(Reply::Ok(())) => return tracing::info!(job_run = %job, "handed back"),
                Ok(Reply::Fenced) => {
                    return tracing::info!(job_run = %job, "not handed back: its lease was gone already");
                }
                Err(e) if e.is_refusal() => {
                    return tracing::warn!(job_run = %job, "the hand-back was refused ({e}); the job runs again when its lease expires");
                }
                Err(e) => {
                    tracing::warn!(job_run = %job, "handing back failed: {e}; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
            }
        }
    };
    if tokio::time::timeout(RELEASE_BOUND, attempts).await.is_err() {
        tracing::warn!(job_run = %job, "no orchestrator took the hand-back; the job runs again when its lease expires");
    }
}
