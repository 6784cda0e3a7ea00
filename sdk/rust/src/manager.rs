//! The driver manager: registers the driver's instance, claims its jobs one at a time
//! (a long-poll), and for each runs `reconcile` while it heartbeats and ships log lines;
//! then records the result under the lease. A lease lost meanwhile (a heartbeat or a log
//! batch answered 409) is logged and the result dropped: the job was, or will be, given
//! to another instance, which alone may record it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use conveyor_core::driver::{
    DriverClaim, DriverCompletion, DriverLogBatch, DriverRegistered, DriverRegistration, DriverWork,
};
use conveyor_core::protocol::Lease;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::http::{Error, Http, Result};
use crate::{Driver, DriverResult, Logger};

/// How long a claim waits for work before asking again.
const WAIT_SECS: u64 = 30;
/// How often log lines are shipped while a reconcile runs.
const SHIP_EVERY: Duration = Duration::from_millis(200);

/// Runs a [`Driver`] against an orchestrator.
#[derive(Debug)]
pub struct DriverManager {
    driver: Driver,
    server: Option<String>,
    token: Option<String>,
    instance: Option<String>,
}

impl DriverManager {
    pub fn new(driver: Driver) -> DriverManager {
        DriverManager {
            driver,
            server: None,
            token: None,
            instance: None,
        }
    }

    /// The orchestrator's URL (else `CONVEYOR_SERVER`).
    pub fn server(mut self, url: impl Into<String>) -> DriverManager {
        self.server = Some(url.into());
        self
    }

    /// A registration token (else `CONVEYOR_TOKEN`).
    pub fn token(mut self, token: impl Into<String>) -> DriverManager {
        self.token = Some(token.into());
        self
    }

    /// This instance's name among the driver's (else `HOST-PID`).
    pub fn instance(mut self, name: impl Into<String>) -> DriverManager {
        self.instance = Some(name.into());
        self
    }

    /// Registers and takes jobs until SIGTERM or SIGINT (a reconcile under way finishes
    /// and is recorded first), until the process `CONVEYOR_PARENT_PID` names is gone (a
    /// local driver of `conveyor run` or `up`), or until an unrecoverable error (a refused
    /// token). Transport failures are retried.
    pub async fn run(self) -> Result<()> {
        self.run_until(stop_signal()).await
    }

    /// As [`DriverManager::run`], stopping when `stop` completes instead of on signals
    /// (for a program that handles its own, and for tests).
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<()> {
        let own = self.register().await?;
        tokio::pin!(stop);
        let mut backoff = Duration::from_millis(250);
        loop {
            let next = tokio::select! {
                () = &mut stop => {
                    tracing::info!(driver = %self.driver.name, "stopped");
                    return Ok(());
                }
                next = claim(&own) => next,
            };
            match next {
                Ok(Some(work)) => {
                    backoff = Duration::from_millis(250);
                    self.work(&own, work).await;
                }
                Ok(None) => {}
                Err(
                    e @ Error::Status {
                        status: 401 | 403, ..
                    },
                ) => return Err(e),
                Err(e) => {
                    tracing::warn!("claiming work failed: {e}; trying again in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Registers this instance; a client with its own token.
    async fn register(&self) -> Result<Http> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let server = self.server.clone().or_else(|| env("CONVEYOR_SERVER"));
        let token = self.token.clone().or_else(|| env("CONVEYOR_TOKEN"));
        let (Some(server), Some(token)) = (server, token) else {
            return Err(Error::Config(
                "no orchestrator: give .server(URL) and .token(TOKEN), or set CONVEYOR_SERVER \
                 and CONVEYOR_TOKEN"
                    .into(),
            ));
        };
        let instance = self.instance.clone().unwrap_or_else(|| {
            let host = env("HOSTNAME").unwrap_or_else(|| "host".into());
            format!("{host}-{}", std::process::id())
        });
        let http = Http::new(&server, &token)?;
        let body = DriverRegistration {
            driver: self.driver.name.clone(),
            instance,
            resources: self.driver.resources.clone(),
        };
        let reg: DriverRegistered = http
            .call(Method::POST, "/api/v1/drivers/register", Some(&body))
            .await?;
        tracing::info!(driver = %reg.driver, instance = %reg.instance, "registered with {server}");
        Ok(http.with_token(&reg.token))
    }

    /// One job: reconcile under a heartbeat, ship its lines, record its result.
    async fn work(&self, own: &Http, work: DriverWork) {
        let lost = Arc::new(AtomicBool::new(false));
        let logger = Logger::default();
        let beat = tokio::spawn(heartbeat(
            own.clone(),
            work.lease.clone(),
            work.lease_secs,
            lost.clone(),
        ));
        let shipper = Shipper {
            http: own.clone(),
            lease: work.lease.clone(),
            logger: logger.clone(),
            lost: lost.clone(),
            seq: 0,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let ship = tokio::spawn(shipper.run(stopped));
        let result = self
            .driver
            .reconcile(work.payload, work.event, work.run_id, logger)
            .await;
        beat.abort();
        let _ = stop.send(());
        // The last lines go before the result, so the log is whole when the job ends.
        let _ = ship.await;
        if lost.load(Ordering::SeqCst) {
            tracing::warn!(
                job_run = %work.lease.job_run_id,
                "the lease was lost while reconciling; the result ({}) is dropped",
                if result.success { "success" } else { "failure" }
            );
            return;
        }
        complete(own, &work.lease, work.lease_secs, result).await;
    }
}

/// SIGTERM, SIGINT, or the end of the process `CONVEYOR_PARENT_PID` names.
async fn stop_signal() {
    let parent = std::env::var("CONVEYOR_PARENT_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok());
    let gone = async move {
        let Some(pid) = parent else {
            return std::future::pending().await;
        };
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::info!("the orchestrator (pid {pid}) is gone: stopping");
    };
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
        () = gone => {}
    }
}

/// Takes the next job, waiting up to [`WAIT_SECS`]; `None` when none came.
async fn claim(own: &Http) -> Result<Option<DriverWork>> {
    let body = DriverClaim {
        wait_secs: Some(WAIT_SECS),
    };
    let timeout = Duration::from_secs(WAIT_SECS + 15);
    let (status, bytes) = own
        .send(Method::POST, "/api/v1/drivers/claim", Some(&body), timeout)
        .await?;
    if status == StatusCode::NO_CONTENT || bytes.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Transport {
            url: format!("{}/api/v1/drivers/claim", own.server),
            reason: format!("unexpected work item: {e}"),
        })
}

/// Renews the lease every third of it until a 409 says it is gone.
async fn heartbeat(own: Http, lease: Lease, lease_secs: u64, lost: Arc<AtomicBool>) {
    let every = Duration::from_millis((lease_secs * 1000 / 3).max(200));
    let mut told_cancel = false;
    loop {
        tokio::time::sleep(every).await;
        let answer: Result<Value> = own
            .call(Method::POST, "/api/v1/drivers/heartbeat", Some(&lease))
            .await;
        match answer {
            Ok(v) if v["cancel"] == true && !told_cancel => {
                told_cancel = true;
                tracing::warn!(job_run = %lease.job_run_id, "the job was cancelled; it is recorded cancelled when reconcile returns");
            }
            Ok(_) => {}
            Err(Error::Status { status: 409, .. }) => {
                lost.store(true, Ordering::SeqCst);
                tracing::warn!(job_run = %lease.job_run_id, "the lease is lost: heartbeats stop and the result will be dropped");
                return;
            }
            Err(e) => tracing::warn!("a heartbeat failed: {e}"),
        }
    }
}

/// Ships a reconcile's log lines in numbered batches.
struct Shipper {
    http: Http,
    lease: Lease,
    logger: Logger,
    lost: Arc<AtomicBool>,
    seq: u64,
}

impl Shipper {
    /// Ships every [`SHIP_EVERY`] until told to stop, then the rest.
    async fn run(mut self, mut stop: tokio::sync::oneshot::Receiver<()>) {
        loop {
            tokio::select! {
                _ = &mut stop => break,
                () = tokio::time::sleep(SHIP_EVERY) => self.flush().await,
            }
        }
        self.flush().await;
    }

    async fn flush(&mut self) {
        let lines = self.logger.take();
        if lines.is_empty() || self.lost.load(Ordering::SeqCst) {
            return;
        }
        let batch = DriverLogBatch {
            lease: self.lease.clone(),
            seq: self.seq,
            lines,
        };
        self.seq += 1;
        for _ in 0..3 {
            let sent: Result<Value> = self
                .http
                .call(Method::POST, "/api/v1/drivers/logs", Some(&batch))
                .await;
            match sent {
                Ok(_) => return,
                Err(Error::Status { status: 409, .. }) => {
                    self.lost.store(true, Ordering::SeqCst);
                    return;
                }
                Err(e) => tracing::warn!("shipping log lines failed: {e}"),
            }
        }
    }
}

/// Records the result, retrying transport failures while the lease may still hold.
async fn complete(own: &Http, lease: &Lease, lease_secs: u64, r: DriverResult) {
    let body = DriverCompletion {
        lease: lease.clone(),
        success: r.success,
        message: r.message,
        data: r
            .data
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(lease_secs.max(1));
    loop {
        let sent: Result<Value> = own
            .call(Method::POST, "/api/v1/drivers/complete", Some(&body))
            .await;
        match sent {
            Ok(_) => return,
            Err(Error::Status { status: 409, .. }) => {
                tracing::warn!(job_run = %lease.job_run_id, "the result was refused: the lease is gone (the job went to another instance)");
                return;
            }
            Err(e @ Error::Status { .. }) => {
                tracing::error!(job_run = %lease.job_run_id, "the result was refused: {e}");
                return;
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!("recording the result failed: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                tracing::error!(job_run = %lease.job_run_id, "recording the result failed: {e}; giving up, the lease has run out");
                return;
            }
        }
    }
}
