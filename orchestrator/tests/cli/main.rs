//! The `conveyor` binary as a user runs it, one test binary: `validate`, `run`, `up` with the
//! API client commands, the commands in docker-compose.yml, and TLS everywhere (`tls`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod approvals;
mod bench;
mod commands;
#[path = "../common/mod.rs"]
mod common;
mod compose;
mod credentials;
mod drivers;
mod env;
mod files;
mod long_logs;
mod matrix;
mod run;
mod secrets;
mod stop;
mod tls;
mod up;
mod up_again;
mod validate;
mod variables;
