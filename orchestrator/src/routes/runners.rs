//! Runner registration, liveness and the runner list.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{ApiReader, Registration, RunnerAuth, token_hash};
use crate::error::{AppError, AppResult};
use crate::state::{SharedState, now_ms};

/// A runner unseen for longer than this is shown offline.
pub const ONLINE_MS: i64 = 60_000;

#[derive(Deserialize)]
pub struct Register {
    name: String,
    fleets: Vec<String>,
}

pub async fn register(
    State(state): State<SharedState>,
    Registration(scope): Registration,
    body: Result<Json<Register>, JsonRejection>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let Json(r) = body?;
    check_name_and_fleets(&r)?;
    if let Some(allowed) = &scope {
        within_scope(&state, &r, allowed).await?;
    }
    let token = crate::store::token();
    let id = state
        .store
        .register_runner(&r.name, &r.fleets, &token_hash(&token), now_ms())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "name": r.name, "fleets": r.fleets, "token": token })),
    ))
}

fn check_name_and_fleets(r: &Register) -> AppResult<()> {
    if r.name.trim().is_empty() || r.name.len() > 100 || r.name.chars().any(char::is_control) {
        return Err(AppError::BadRequest(
            "a runner needs a `name` of 1 to 100 printable characters".into(),
        ));
    }
    if r.fleets.is_empty() {
        return Err(AppError::BadRequest(
            "a runner needs at least one fleet in `fleets`".into(),
        ));
    }
    if let Some(bad) = r
        .fleets
        .iter()
        .find(|f| !conveyor_core::names::is_fleet_name(f))
    {
        return Err(AppError::BadRequest(format!(
            "invalid fleet name `{bad}`: use lowercase letters, digits, `_` and `-`, starting with a letter or digit"
        )));
    }
    Ok(())
}

/// A fleet token registers runners of its fleets only, and cannot take over the name of a
/// runner registered for other fleets.
async fn within_scope(state: &SharedState, r: &Register, allowed: &[String]) -> AppResult<()> {
    let outside = |fleets: &[String]| fleets.iter().find(|f| !allowed.contains(f)).cloned();
    if let Some(f) = outside(&r.fleets) {
        return Err(AppError::Forbidden(format!(
            "this registration token is for fleets {}; it cannot register a runner for fleet `{f}`",
            allowed.join(", ")
        )));
    }
    let existing = state.store.runners().await?;
    if let Some(taken) = existing.iter().find(|e| e.name == r.name)
        && outside(&taken.fleets).is_some()
    {
        return Err(AppError::Forbidden(format!(
            "runner `{}` is registered for fleets this token does not cover; choose another name",
            r.name
        )));
    }
    Ok(())
}

/// An idle runner's sign of life (the auth check records it).
pub async fn heartbeat(_: RunnerAuth) -> StatusCode {
    StatusCode::NO_CONTENT
}

pub async fn list(State(state): State<SharedState>, _: ApiReader) -> AppResult<Json<Value>> {
    let now = now_ms();
    let runners: Vec<Value> = state
        .store
        .runners()
        .await?
        .into_iter()
        .map(|r| {
            let online = now - r.last_seen_at < ONLINE_MS;
            json!({ "id": r.id, "name": r.name, "fleets": r.fleets, "last_seen_at": r.last_seen_at, "online": online })
        })
        .collect();
    Ok(Json(json!({ "runners": runners })))
}
