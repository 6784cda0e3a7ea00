//! The runner loop: take a message from the fleet queue, claim the job run, execute it
//! while heartbeating and shipping logs, then complete it — at most `concurrency` running at
//! once — until told to [`Stop`], by draining or by handing the running jobs back.
//!
//! A job's slot is free again once its processes are gone: its report (the completion, or
//! the release) goes on beside the next job, so a busy runner's slot never waits for the
//! orchestrator's bookkeeping. Reports still on their way are bounded like the jobs: at most
//! `concurrency`; past that, a slot is kept until one of them is answered. A runner whose
//! other slots wait on an empty queue keeps the slot instead, and its completion asks for the
//! next job ([`Completion::take_next`]): one it readies comes back claimed and runs there, as
//! a chain's next step. A runner with one slot never waits on its queue while a job runs, so
//! it never asks; nor does one that is stopping (a drain runs the job already brought back,
//! a hand-back hands it back).

mod lease;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use conveyor_core::protocol::{ClaimRequest, Completion, JobSpec, LogLine, Outcome, Stream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::client::{Client, Reply};
use crate::executor::{self, ExecConfig};
use crate::queue::{Delivery, Queue};

/// How long a hand-back may take in all, before jobs still reporting are abandoned (their
/// processes are killed either way; an abandoned report only means the job waits for its
/// lease to expire before it runs again).
pub const HAND_BACK_BOUND: Duration = Duration::from_secs(5);

/// How a [`Worker`] is told to stop, through the `watch` channel given to [`Worker::run`]
/// (`None` while it should keep going). A drain may turn into a hand-back (a second Ctrl-C);
/// a hand-back is final. A dropped sender counts as [`Stop::Drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Take no new job; let the running ones finish and complete; then return.
    Drain,
    /// Take no new job; kill the running ones — every process they started — at once, hand
    /// each back to the orchestrator to be re-queued as a lost attempt (not a failure, and
    /// not only when its lease expires), then return, within [`HAND_BACK_BOUND`].
    HandBack,
}

pub struct Worker {
    pub name: String,
    pub fleets: Vec<String>,
    pub concurrency: usize,
    pub client: Arc<Client>,
    pub queue: Arc<dyn Queue>,
    pub exec: ExecConfig,
}

/// Why a running job was stopped by the runner itself; the first reason wins.
#[derive(Default)]
struct Why(AtomicU8);

impl Why {
    const RUNNING: u8 = 0;
    /// The lease may be gone: another runner may have the job; report nothing.
    const LOST: u8 = 1;
    /// The runner is stopping: release the job instead of completing it.
    const HANDED_BACK: u8 = 2;
    /// The orchestrator asked for a cancel: complete it as cancelled.
    const CANCELLED: u8 = 3;

    /// Records the reason unless another came first; true if this one is the reason.
    fn set(&self, why: u8) -> bool {
        self.0
            .compare_exchange(Self::RUNNING, why, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    fn get(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Worker {
    /// Takes and runs jobs until `stop` says how to stop; see [`Stop`].
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<Option<Stop>>) {
        // The guard against a killed runner is up before the first job starts.
        executor::supervisor::start();
        let slots = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let reports = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let popping = Arc::new(AtomicBool::new(false));
        let mut jobs = JoinSet::new();
        loop {
            // Biased: a stop that came with a message must win, not a coin toss.
            let permit = tokio::select! {
                biased;
                () = stopping(&mut stop) => break,
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            popping.store(true, Ordering::SeqCst);
            let delivery = tokio::select! {
                biased;
                () = stopping(&mut stop) => break,
                d = self.queue.pop(&self.fleets, &self.name) => d,
            };
            popping.store(false, Ordering::SeqCst);
            let delivery = match delivery {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("{e}; retrying in 1s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let me = self.clone();
            let job_stop = stop.clone();
            let slot = Slot {
                running: permit,
                reports: reports.clone(),
                popping: popping.clone(),
            };
            jobs.spawn(async move {
                me.handle(delivery, job_stop, slot).await;
            });
            while jobs.try_join_next().is_some() {}
        }
        // Stopping: no completion asks for a next job any more.
        popping.store(false, Ordering::SeqCst);
        finish(jobs, stop).await;
    }

    async fn handle(&self, delivery: Delivery, stop: watch::Receiver<Option<Stop>>, slot: Slot) {
        if stop.borrow().is_some() {
            // Taken as the stop came: put back for another runner, unclaimed.
            return self.give_back(&delivery).await;
        }
        let req = ClaimRequest {
            job_run_id: delivery.msg.job_run_id.clone(),
            attempt: delivery.msg.attempt,
            runner: self.name.clone(),
        };
        // The lease runs from no earlier than this: the orchestrator starts it on receipt.
        let sent = tokio::time::Instant::now();
        match self.client.claim(&req).await {
            Ok(Reply::Ok(spec)) if *stop.borrow() == Some(Stop::HandBack) => {
                // Claimed as the hand-back began: nothing ran, hand it straight back.
                lease::release(&self.client, &spec.lease).await;
                self.ack(&delivery).await;
            }
            Ok(Reply::Ok(spec)) => {
                let next = self.run_one(spec, sent, stop.clone(), slot).await;
                // Acknowledged once its job is done, before the jobs its completion brings.
                self.ack(&delivery).await;
                if let Some(next) = next {
                    self.follow(next, stop).await;
                }
            }
            Ok(Reply::Fenced) => self.ack(&delivery).await,
            // Unacknowledged: the orchestrator re-sends queued job runs whose message was lost.
            Err(e) => tracing::warn!("claim failed: {e}"),
        }
    }

    async fn give_back(&self, d: &Delivery) {
        match self.queue.push(&d.fleet, &d.msg).await {
            Ok(()) => self.ack(d).await,
            // Unacknowledged, a Redis message is reclaimed by another runner after its idle
            // time; either way the orchestrator re-sends a job run queued for too long.
            Err(e) => tracing::warn!("could not put a message back on its queue: {e}"),
        }
    }

    async fn ack(&self, d: &Delivery) {
        if let Err(e) = self.queue.ack(d).await {
            tracing::warn!("ack failed: {e}");
        }
    }

    /// Runs each job a completion brought back claimed (see [`Completion::take_next`]) in
    /// the slot it kept, and the jobs their completions bring — one brought back as the
    /// runner began handing its jobs back is handed straight back instead.
    async fn follow(&self, next: Next, stop: watch::Receiver<Option<Stop>>) {
        let mut next = Some(next);
        while let Some((spec, claimed, slot)) = next {
            if *stop.borrow() == Some(Stop::HandBack) {
                return lease::release(&self.client, &spec.lease).await;
            }
            next = self.run_one(spec, claimed, stop.clone(), slot).await;
        }
    }

    /// Runs one job and reports it; the next job, claimed by its completion, with the time
    /// the completion was sent (its lease runs from no earlier) and the slot it keeps.
    async fn run_one(
        &self,
        spec: JobSpec,
        claimed: tokio::time::Instant,
        stop: watch::Receiver<Option<Stop>>,
        slot: Slot,
    ) -> Option<Next> {
        let stopping = stop.clone();
        let (log_tx, log_rx) = mpsc::unbounded_channel();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let shipper = tokio::spawn(lease::ship_logs(
            self.client.clone(),
            spec.lease.clone(),
            log_rx,
        ));
        let why = Arc::new(Why::default());
        let watchdog = lease::Watchdog {
            client: self.client.clone(),
            spec: spec.clone(),
            cancel: cancel_tx,
            why: why.clone(),
            stop,
        };
        // Aborted also if this job is abandoned: renewals must never outlive the job.
        let watchdog = AbortOnDrop(tokio::spawn(watchdog.run(claimed)));
        let result = executor::execute_with(
            &spec,
            &self.exec,
            Some(&self.client),
            log_tx.clone(),
            cancel_rx,
        )
        .await;
        // Why the runner stopped the job itself, if it did (a cancel it did not ask for is
        // the orchestrator's).
        let stopped = (result.outcome == Outcome::Cancelled).then(|| why.get());
        let handed_back_now = stopped == Some(Why::HANDED_BACK);
        // While the runner waits on its queue with another slot, this one is kept and the
        // completion asks for the next job: a job it readies here comes back claimed.
        let take_next = !handed_back_now && stopping.borrow().is_none() && slot.idle();
        // The watchdog keeps the lease while the report waits for its turn. A hand-back
        // does not wait: it must be done within `HAND_BACK_BOUND`.
        let (kept, _reporting) = match (handed_back_now, take_next) {
            (true, _) => (None, None),
            (false, true) => (Some(slot), None),
            (false, false) => (None, slot.free().await),
        };
        drop(watchdog);
        if handed_back_now {
            let _ = log_tx.send(handed_back());
        }
        drop(log_tx);
        // Logs go first: once the job is released or completed its lease fences them out.
        let _ = shipper.await;
        let sent = tokio::time::Instant::now();
        let next = self.report(&spec, result, stopped, take_next).await?;
        Some((next, sent, kept?))
    }

    /// The one report at a job's end (`stopped`: why the runner stopped it, if it did):
    /// nothing if its lease may be gone, a release if it was handed back, else its
    /// completion — asking, with `take_next`, for a job it readies; that job, if one came.
    async fn report(
        &self,
        spec: &JobSpec,
        result: executor::ExecResult,
        stopped: Option<u8>,
        take_next: bool,
    ) -> Option<JobSpec> {
        match stopped {
            // Not cancelled by anyone: the job was stopped because its lease may be gone,
            // and the reaper hands it out again. Reporting it would end it instead.
            Some(Why::LOST) => None,
            Some(Why::HANDED_BACK) => {
                lease::release(&self.client, &spec.lease).await;
                None
            }
            _ => {
                let completion = Completion {
                    lease: spec.lease.clone(),
                    outcome: result.outcome,
                    exit_code: result.exit_code,
                    outputs: result.outputs,
                    error: result.error,
                    log: result.held,
                    take_next,
                };
                let next = lease::complete(&self.client, &completion, spec.lease_secs).await?;
                if !take_next {
                    // Not asked for: no slot was kept to run it in.
                    lease::release(&self.client, &next.lease).await;
                    return None;
                }
                Some(next)
            }
        }
    }
}

/// A job a completion brought back claimed: its spec, when the completion was sent (its
/// lease runs from no earlier), and the slot kept for it.
type Next = (JobSpec, tokio::time::Instant, Slot);

/// A job's place among the `concurrency` running at once, the count of reports on their
/// way it frees its place into, and whether the runner waits on its queue (with a slot).
struct Slot {
    running: OwnedSemaphorePermit,
    reports: Arc<Semaphore>,
    popping: Arc<AtomicBool>,
}

impl Slot {
    /// Whether the runner is waiting on its queue with another slot: nothing queued for it
    /// would take this one if it were freed now.
    fn idle(&self) -> bool {
        self.popping.load(Ordering::SeqCst)
    }

    /// Frees the place once the job's report may go on beside the next job: at once, unless
    /// `concurrency` reports are unanswered already (the job's lease is still renewed while
    /// it waits). The permit returned is held until the report is answered.
    async fn free(self) -> Option<OwnedSemaphorePermit> {
        let report = self.reports.acquire_owned().await.ok();
        drop(self.running);
        report
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves once the worker must take no new job.
async fn stopping(stop: &mut watch::Receiver<Option<Stop>>) {
    let _ = stop.wait_for(Option::is_some).await;
}

/// Resolves once the running jobs must be handed back; never, if the sender is gone.
pub(crate) async fn handing_back(stop: &mut watch::Receiver<Option<Stop>>) {
    if stop.wait_for(|s| *s == Some(Stop::HandBack)).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Waits for the running jobs: all of them while draining, at most [`HAND_BACK_BOUND`] once
/// they are handed back; what is left then is aborted (dropping a job kills its processes).
async fn finish(mut jobs: JoinSet<()>, mut stop: watch::Receiver<Option<Stop>>) {
    let all_done = {
        let drained = async { while jobs.join_next().await.is_some() {} };
        tokio::pin!(drained);
        tokio::select! {
            () = &mut drained => true,
            () = handing_back(&mut stop) => {
                tokio::time::timeout(HAND_BACK_BOUND, &mut drained).await.is_ok()
            }
        }
    };
    if !all_done {
        tracing::warn!(
            "jobs still reporting {}s into the hand-back are abandoned; their leases expire",
            HAND_BACK_BOUND.as_secs()
        );
        jobs.shutdown().await;
    }
}

/// The last line of a job the runner handed back because it is stopping.
fn handed_back() -> LogLine {
    LogLine {
        stream: Stream::System,
        text: "the runner is stopping: the job was handed back to run again".into(),
        labels: Default::default(),
        at: Some(crate::executor::now_ms()),
    }
}
