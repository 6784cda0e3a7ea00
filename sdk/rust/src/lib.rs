//! conveyor-driver: write conveyor drivers in Rust. A [`Driver`] is a name, the resource
//! types it listens to and an async `reconcile` function; a [`DriverManager`] registers it
//! with an orchestrator, takes its jobs (a long-poll claim), heartbeats while `reconcile`
//! runs, ships the [`Logger`]'s lines as the job's log and records the [`DriverResult`] —
//! unless the lease was lost meanwhile, in which case the result is logged and dropped (the
//! job was given to another instance). [`Client`] speaks Conveyor CI's resource API.
//! The wire is `conveyor_core::driver` (docs/drivers.md).
//!
//! The README follows (its example is compiled as a doctest).
#![doc = include_str!("../README.md")]

mod client;
mod http;
mod logger;
mod manager;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use client::{Client, Resource, ResourceChange};
pub use conveyor_core::driver::{Commit, DriverPayload};
pub use http::{Error, Result};
pub use logger::Logger;
pub use manager::DriverManager;

/// What a reconcile decided: the job succeeds or fails with `message`; `data` becomes the
/// job's outputs (it must hold every output the job declares).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverResult {
    pub success: bool,
    pub message: String,
    pub data: BTreeMap<String, String>,
}

impl DriverResult {
    /// A success saying `message`.
    pub fn ok(message: impl Into<String>) -> DriverResult {
        DriverResult {
            success: true,
            message: message.into(),
            data: BTreeMap::new(),
        }
    }

    /// A failure saying why.
    pub fn failed(message: impl Into<String>) -> DriverResult {
        DriverResult {
            success: false,
            message: message.into(),
            data: BTreeMap::new(),
        }
    }

    /// The same result with one more output.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> DriverResult {
        self.data.insert(key.into(), value.into());
        self
    }
}

/// What one reconcile is given: the job's payload, the event (`create`, `update`,
/// `delete`, or `process` for a later pipeline step), the run id (the build's id, shared
/// by every step of a pipeline run) and a logger whose lines are the job's log.
type Reconcile = dyn Fn(DriverPayload, String, String, Logger) -> Pin<Box<dyn Future<Output = DriverResult> + Send>>
    + Send
    + Sync;

/// A driver: its name (what jobs write in `driver:`), the resource types it listens to,
/// and its reconcile function.
#[derive(Clone)]
pub struct Driver {
    pub name: String,
    pub resources: Vec<String>,
    reconcile: Arc<Reconcile>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("name", &self.name)
            .field("resources", &self.resources)
            .finish()
    }
}

impl Driver {
    /// A driver named `name` listening to `resources`, whose jobs `reconcile` runs.
    pub fn new<F, Fut>(name: impl Into<String>, resources: &[&str], reconcile: F) -> Driver
    where
        F: Fn(DriverPayload, String, String, Logger) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = DriverResult> + Send + 'static,
    {
        Driver {
            name: name.into(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
            reconcile: Arc::new(move |p, e, r, l| Box::pin(reconcile(p, e, r, l))),
        }
    }

    /// Runs the reconcile function (a panic in it is a failed result, not a dead driver).
    pub async fn reconcile(
        &self,
        payload: DriverPayload,
        event: String,
        run_id: String,
        logger: Logger,
    ) -> DriverResult {
        let fut = (self.reconcile)(payload, event, run_id, logger);
        match tokio::spawn(fut).await {
            Ok(result) => result,
            Err(e) => DriverResult::failed(format!("reconcile panicked: {e}")),
        }
    }
}
