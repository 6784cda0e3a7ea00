//! The conveyor orchestrator: API, scheduler, store, embedded mode and the command line.

pub mod auth;
pub mod bench;
pub mod bench_engine;
pub mod cli;
pub mod client_cmds;
pub mod embedded;
pub mod error;
pub mod metrics;
pub mod registry;
pub mod repos;
pub mod routes;
pub mod run_cmd;
pub mod scheduler;
pub mod serve;
pub mod source;
pub mod state;
pub mod statuses;
pub use conveyor_store as store;
pub mod ui;
pub mod up;
pub mod validate;
pub mod webhooks;
