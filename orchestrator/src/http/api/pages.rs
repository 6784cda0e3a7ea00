//! The health check and the metrics.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::http::error::AppResult;
use crate::services::Services;

/// 200 when the database and the queue answer, 503 (saying which does not) otherwise.
pub async fn health(State(services): State<Arc<Services>>) -> (StatusCode, Json<Value>) {
    let database = services.store.ping().await.map_err(|e| e.to_string());
    let queue = services.queue.ping().await.map_err(|e| e.to_string());
    let word = |r: &Result<(), String>| if r.is_ok() { "ok" } else { "unreachable" };
    for (what, r) in [("database", &database), ("queue", &queue)] {
        if let Err(e) = r {
            tracing::warn!("health: the {what} is unreachable: {e}");
        }
    }
    let ok = database.is_ok() && queue.is_ok();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(
            json!({ "status": if ok { "ok" } else { "degraded" }, "database": word(&database), "queue": word(&queue) }),
        ),
    )
}

/// Prometheus exposition: job runs in flight by state and fleet, queue depth per fleet, busy runners,
/// dispatch latency and job duration.
pub async fn metrics(
    State(services): State<Arc<Services>>,
) -> AppResult<([(axum::http::HeaderName, &'static str); 1], String)> {
    use crate::metrics::gauge;
    let (counts, busy) = services.store.run_counts().await?;
    let mut out = String::new();
    let rows: Vec<_> = counts
        .iter()
        .map(|c| {
            (
                vec![("state", c.status.clone()), ("fleet", c.fleet.clone())],
                c.count,
            )
        })
        .collect();
    gauge(
        &mut out,
        "conveyor_job_runs",
        "Job runs by state and fleet.",
        &rows,
    );
    let fleets: Vec<&str> = counts.iter().map(|c| c.fleet.as_str()).collect();
    gauge(
        &mut out,
        "conveyor_queue_depth",
        "Messages waiting or in flight per fleet queue.",
        &queue_depths(&services, fleets).await,
    );
    gauge(
        &mut out,
        "conveyor_runners_busy",
        "Runners holding a running job run.",
        &[(vec![], busy)],
    );
    services.metrics.dispatch.render(
        &mut out,
        "conveyor_dispatch_latency_seconds",
        "From a job run becoming ready to its claim.",
    );
    services.metrics.duration.render(
        &mut out,
        "conveyor_job_duration_seconds",
        "From claim to completion.",
    );
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    ))
}

/// The depth of each fleet's queue that answers, `default` included.
async fn queue_depths(
    services: &Services,
    mut fleets: Vec<&str>,
) -> Vec<(Vec<(&'static str, String)>, u64)> {
    fleets.push(conveyor_core::compile::DEFAULT_FLEET);
    fleets.sort_unstable();
    fleets.dedup();
    let mut depth = Vec::new();
    for f in fleets {
        match services.queue.depth(f).await {
            Ok(d) => depth.push((vec![("fleet", f.to_string())], d)),
            Err(e) => tracing::warn!("queue depth of {f}: {e}"),
        }
    }
    depth
}

/// The API described (OpenAPI 3.1), kept beside the router; `tests/api/openapi.rs` checks that
/// every route is described and every described operation is routed.
pub async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}
