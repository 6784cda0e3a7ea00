//! conveyor-runner: executes job runs — workspace, checkout, script, outputs, logs — for the
//! orchestrator (in-process) and for the runner binary; takes them from fleet queues and
//! speaks the runner protocol.

pub mod client;
pub mod executor;
pub mod queue;
pub mod tls;
pub mod worker;
