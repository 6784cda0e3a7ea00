//! The runner loop: take a message from the fleet queue, claim the job run, execute it
//! while heartbeating and shipping logs, then complete it — at most `concurrency` at once.

use std::sync::Arc;
use std::time::Duration;

use conveyor_core::protocol::{ClaimRequest, Completion, JobSpec, LogBatch, LogLine, Outcome};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::client::{Client, Reply};
use crate::executor::{self, ExecConfig};
use crate::queue::{Delivery, Queue};

pub struct Worker {
    pub name: String,
    pub fleets: Vec<String>,
    pub concurrency: usize,
    pub client: Arc<Client>,
    pub queue: Arc<dyn Queue>,
    pub exec: ExecConfig,
}

impl Worker {
    /// Runs until `stop` turns true; running jobs are finished first.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        // The guard against a killed runner is up before the first job starts.
        crate::executor::supervisor::start();
        let slots = Arc::new(Semaphore::new(self.concurrency.max(1)));
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let delivery = tokio::select! {
                d = self.queue.pop(&self.fleets, &self.name) => d,
                _ = stop.wait_for(|s| *s) => break,
            };
            let delivery = match delivery {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("{e}; retrying in 1s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.handle(delivery).await;
                drop(permit);
            });
        }
        let _ = slots.acquire_many(self.concurrency.max(1) as u32).await;
    }

    async fn handle(&self, delivery: Delivery) {
        let req = ClaimRequest {
            job_run_id: delivery.msg.job_run_id.clone(),
            attempt: delivery.msg.attempt,
            runner: self.name.clone(),
        };
        // The lease runs from no earlier than this: the orchestrator starts it on receipt.
        let sent = tokio::time::Instant::now();
        match self.client.claim(&req).await {
            Ok(Reply::Ok(spec)) => {
                self.execute(spec, sent).await;
                self.ack(&delivery).await;
            }
            Ok(Reply::Fenced) => self.ack(&delivery).await,
            // Unacknowledged: the orchestrator re-sends queued job runs whose message was lost.
            Err(e) => tracing::warn!("claim failed: {e}"),
        }
    }

    async fn ack(&self, d: &Delivery) {
        if let Err(e) = self.queue.ack(d).await {
            tracing::warn!("ack failed: {e}");
        }
    }

    async fn execute(&self, spec: JobSpec, claimed: tokio::time::Instant) {
        let (log_tx, log_rx) = mpsc::unbounded_channel();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let shipper = tokio::spawn(ship_logs(self.client.clone(), spec.lease.clone(), log_rx));
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let beat = tokio::spawn(heartbeat(
            self.client.clone(),
            spec.clone(),
            claimed,
            cancel_tx,
            lost.clone(),
        ));
        let result = executor::execute(&spec, &self.exec, log_tx, cancel_rx).await;
        let _ = shipper.await;
        beat.abort();
        if result.outcome == Outcome::Cancelled && lost.load(std::sync::atomic::Ordering::SeqCst) {
            // Not cancelled by anyone: the job was stopped because its lease may be gone,
            // and the reaper hands it out again. Reporting it would end it instead.
            return;
        }
        let completion = Completion {
            lease: spec.lease.clone(),
            outcome: result.outcome,
            exit_code: result.exit_code,
            outputs: result.outputs,
            error: result.error,
        };
        complete(&self.client, &completion, spec.lease_secs).await;
    }
}

/// Ships log lines in batches: whatever arrived within 100 ms, at most 500 lines.
async fn ship_logs(
    client: Arc<Client>,
    lease: conveyor_core::protocol::Lease,
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

/// Extends the lease every third of its length; cancels the job when asked to, or when the
/// lease may have run out: another runner may have the job by then (self-fencing).
///
/// The runner's own deadline is counted from when the last renewal that succeeded was
/// *sent* (the orchestrator counts from its receipt, later), less a margin for the kill; a
/// renewal still unanswered at the deadline fences too, so a hung orchestrator or database
/// cannot keep a job running past its lease.
async fn heartbeat(
    client: Arc<Client>,
    spec: JobSpec,
    claimed: tokio::time::Instant,
    cancel: watch::Sender<bool>,
    lost: Arc<std::sync::atomic::AtomicBool>,
) {
    let lease = Duration::from_secs(spec.lease_secs.max(1));
    let every = lease / 3;
    let holds_for = lease - lease / 10;
    let mut deadline = claimed + holds_for;
    let fence = |why: &str| {
        tracing::warn!(job_run = %spec.lease.job_run_id, "stopping the job: {why}");
        lost.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = cancel.send(true);
    };
    loop {
        tokio::time::sleep_until((tokio::time::Instant::now() + every).min(deadline)).await;
        let sent = tokio::time::Instant::now();
        if sent >= deadline {
            return fence("its lease could not be renewed in time");
        }
        match tokio::time::timeout_at(deadline, client.heartbeat(&spec.lease)).await {
            Ok(Ok(Reply::Ok(reply))) => {
                deadline = sent + holds_for;
                if reply.cancel {
                    let _ = cancel.send(true);
                }
            }
            Ok(Ok(Reply::Fenced)) => return fence("another runner holds its lease"),
            Ok(Err(e)) => tracing::warn!("heartbeat failed: {e}"),
            Err(_) => return fence("no heartbeat was answered before its lease ran out"),
        }
    }
}

/// Reports the result, retrying (across servers) while the lease may still hold.
async fn complete(client: &Client, c: &Completion, lease_secs: u64) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(lease_secs.max(1));
    let mut wait = Duration::from_millis(100);
    loop {
        match client.complete(c).await {
            Ok(Reply::Ok(())) => return,
            Ok(Reply::Fenced) => {
                tracing::info!(job_run = %c.lease.job_run_id, "completion refused: the lease was lost");
                return;
            }
            Err(e) if tokio::time::Instant::now() < give_up => {
                tracing::warn!("completion failed: {e}; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::error!(outcome = ?c.outcome == Outcome::Succeeded, "giving up on the completion: {e}");
                return;
            }
        }
    }
}
