//! The JSON API under `/api/v1` (products, builds, job runs, logs, runners and the runner
//! protocol), health and metrics, Conveyor CI's log, resource and pipeline APIs, and the
//! OpenAPI document that describes them. Routes are listed in `http/mod.rs`.

pub mod actions;
pub mod builds;
pub mod compat;
pub mod drivers;
pub mod files;
pub mod logs;
pub mod pages;
pub mod pipelines;
pub mod products;
pub mod resources;
pub mod runner;
pub mod runners;
pub mod secrets;
