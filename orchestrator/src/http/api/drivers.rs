//! The driver protocol (`conveyor_core::driver`, `docs/drivers.md`): registration with a
//! registration token, then claim, heartbeat, logs, complete and release with the
//! instance's own token; and the list of drivers.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conveyor_core::driver::{
    DEFAULT_WAIT_SECS, DriverClaim, DriverCompletion, DriverLogBatch, DriverRegistration,
    MAX_WAIT_SECS, queue_of,
};
use serde_json::{Value, json};

use crate::clock::now_ms;
use crate::http::auth::{ApiReader, Registration, RunnerAuth};
use crate::http::error::AppResult;
use crate::services::{Services, drivers};

pub async fn register(
    State(services): State<Arc<Services>>,
    Registration(scope): Registration,
    body: Result<Json<DriverRegistration>, JsonRejection>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let Json(r) = body?;
    let registered = drivers::register(&services, &r, scope.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(json!(registered))))
}

/// A long-poll: 200 with a work item, or 204 when none came within the wait.
pub async fn claim(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<DriverClaim>, JsonRejection>,
) -> AppResult<Response> {
    let Json(c) = body?;
    let wait = c.wait_secs.unwrap_or(DEFAULT_WAIT_SECS).min(MAX_WAIT_SECS);
    match drivers::claim(&services, &owner, Duration::from_secs(wait)).await? {
        Some(work) => Ok(Json(work).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

pub async fn logs(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<DriverLogBatch>, JsonRejection>,
) -> AppResult<StatusCode> {
    let Json(batch) = body?;
    drivers::append_logs(&services, batch, &owner).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn complete(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<DriverCompletion>, JsonRejection>,
) -> AppResult<StatusCode> {
    let Json(c) = body?;
    drivers::complete(&services, c, &owner).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every driver that registered: its resource types, its instances, whether one is
/// connected.
pub async fn list(State(services): State<Arc<Services>>, _: ApiReader) -> AppResult<Json<Value>> {
    let (runners, now) = (services.store.runners().await?, now_ms());
    let list: Vec<Value> = services
        .store
        .drivers()
        .await?
        .into_iter()
        .map(|d| {
            let queue = queue_of(&d.name);
            let instances: Vec<Value> = runners
                .iter()
                .filter(|r| r.fleets.contains(&queue))
                .map(|r| {
                    let online = now - r.last_seen_at < drivers::CONNECTED_MS;
                    json!({ "name": r.name, "last_seen_at": r.last_seen_at, "online": online })
                })
                .collect();
            let connected = drivers::connected(&runners, &d.name, now);
            json!({ "name": d.name, "resources": d.resources, "connected": connected, "instances": instances })
        })
        .collect();
    Ok(Json(json!({ "drivers": list })))
}
