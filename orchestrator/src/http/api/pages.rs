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

/// Prometheus exposition (see `services::gauges`).
pub async fn metrics(
    State(services): State<Arc<Services>>,
) -> AppResult<([(axum::http::HeaderName, &'static str); 1], String)> {
    let out = crate::services::gauges::exposition(&services).await?;
    let text = "text/plain; version=0.0.4";
    Ok(([(axum::http::header::CONTENT_TYPE, text)], out))
}

/// The API described (OpenAPI 3.1), kept beside the router; `tests/api/openapi.rs` checks that
/// every route is described and every described operation is routed.
pub async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}
