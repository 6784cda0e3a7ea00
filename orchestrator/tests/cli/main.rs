//! The `conveyor` binary as a user runs it, one test binary: `validate`, `run`, `up` with the
//! API client commands, and the commands in docker-compose.yml.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod compose;
mod run;
mod stop;
mod up;
mod validate;
