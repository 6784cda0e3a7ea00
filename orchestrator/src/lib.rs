//! The conveyor orchestrator: command-line interface, validation, benchmarks.

pub mod bench;
pub mod cli;
pub mod store;
pub mod validate;
