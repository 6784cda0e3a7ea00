//! Runner registration, liveness and the runner list.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::now_ms;
use crate::http::auth::{ApiReader, Registration, RunnerAuth};
use crate::http::error::AppResult;
use crate::services::drivers::heard_from;
use crate::services::{Services, runs};

#[derive(Deserialize)]
pub struct Register {
    name: String,
    fleets: Vec<String>,
}

pub async fn register(
    State(services): State<Arc<Services>>,
    Registration(scope): Registration,
    body: Result<Json<Register>, JsonRejection>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let Json(r) = body?;
    let runs::Registered { id, token } =
        runs::register_runner(&services, &r.name, &r.fleets, scope.as_deref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "name": r.name, "fleets": r.fleets, "token": token })),
    ))
}

/// An idle runner's sign of life (the auth check records it).
pub async fn heartbeat(_: RunnerAuth) -> StatusCode {
    StatusCode::NO_CONTENT
}

pub async fn list(State(services): State<Arc<Services>>, _: ApiReader) -> AppResult<Json<Value>> {
    let now = now_ms();
    let runners: Vec<Value> = services
        .store
        .runners()
        .await?
        .into_iter()
        .map(|r| {
            let online = heard_from(&r, now);
            json!({ "id": r.id, "name": r.name, "fleets": r.fleets, "last_seen_at": r.last_seen_at, "online": online })
        })
        .collect();
    Ok(Json(json!({ "runners": runners })))
}
