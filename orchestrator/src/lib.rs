//! The conveyor orchestrator and command line, in layers whose imports point one way
//! (`scripts/layers.py` checks it): `cmd` → `startup` → `http` → `services` → `store` /
//! `forges` / `git` → `metrics` / `clock` / `secrets` / `vault`. See docs/architecture.md.

pub mod blobs;
pub mod clock;
pub mod cmd;
pub mod forges;
pub mod git;
pub mod http;
pub mod metrics;
pub mod secrets;
pub mod services;
pub mod startup;
pub mod vault;
pub use conveyor_store as store;
