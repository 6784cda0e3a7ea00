//! Every route, in one place (the dashboard's in `ui/mod.rs`, merged here).

mod actions;
mod builds;
mod compat;
mod pages;
mod products;
mod runner;
mod runners;

use axum::Router;
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;

pub use actions::{approve_job_run, cancel_job_run, rerun_build};
pub use builds::start_build as start;

use crate::state::SharedState;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

pub fn app(state: SharedState) -> Router {
    Router::new()
        .route("/health", get(pages::health))
        .route("/metrics", get(pages::metrics))
        .route("/api/openapi.json", get(pages::openapi))
        .route(
            "/api/v1/products",
            get(products::list).post(products::register),
        )
        .route("/api/v1/products/{product}", get(products::show))
        .route(
            "/api/v1/products/{product}/belts/{belt}/builds",
            post(builds::create),
        )
        .route("/api/v1/builds", get(builds::list))
        .route("/api/v1/builds/{id}", get(builds::show))
        .route("/api/v1/builds/{id}/cancel", post(builds::cancel))
        .route("/api/v1/job-runs/{id}/logs", get(builds::logs))
        .route("/logs", get(compat::logs))
        .route("/logs/streams/{driver}/{runid}", get(compat::stream))
        .route("/hooks/github", post(crate::webhooks::github))
        .route("/hooks/gitlab", post(crate::webhooks::gitlab))
        .route("/hooks/gitea", post(crate::webhooks::gitea))
        .route("/api/v1/runners", get(runners::list))
        .route("/api/v1/runners/register", post(runners::register))
        .route("/api/v1/runners/heartbeat", post(runners::heartbeat))
        .route("/api/v1/runner/claim", post(runner::claim))
        .route("/api/v1/runner/heartbeat", post(runner::heartbeat))
        .route("/api/v1/runner/logs", post(runner::logs))
        .route("/api/v1/runner/complete", post(runner::complete))
        .route("/api/v1/runner/release", post(runner::release))
        .route("/api/v1/job-runs/{id}/approve", post(actions::approve))
        .route("/api/v1/job-runs/{id}/cancel", post(actions::cancel_job))
        .route("/api/v1/builds/{id}/rerun", post(actions::rerun))
        // The dashboard's pages, listed in `ui/mod.rs`.
        .merge(crate::ui::routes())
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .with_state(state)
}
