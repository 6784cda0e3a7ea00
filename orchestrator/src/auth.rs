//! Bearer tokens: the admin token for mutating API calls, the runner token for the runner
//! protocol. Compared in constant time.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::AppError;
use crate::state::SharedState;

/// A request carrying the admin token.
pub struct Admin;

/// A request that may read products, builds, logs and runners: anyone when reads are public
/// (`--public-ui`, and always under `conveyor up`), else one with the admin token or a
/// signed-in dashboard session.
pub struct ApiReader;

impl FromRequestParts<SharedState> for ApiReader {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, AppError> {
        let admin = bearer(parts).is_some_and(|t| same(t, &state.admin_token));
        if state.public_ui || admin || crate::ui::signed_in(parts, state) {
            Ok(ApiReader)
        } else {
            Err(AppError::Unauthorized)
        }
    }
}

/// A request carrying the fleet registration token (or the admin token).
pub struct Registration;

impl FromRequestParts<SharedState> for Registration {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, AppError> {
        match bearer(parts) {
            Some(t) if same(t, &state.runner_token) || same(t, &state.admin_token) => {
                Ok(Registration)
            }
            _ => Err(AppError::Unauthorized),
        }
    }
}

/// A request from a runner: its own token (from registration), the fleet registration
/// token, or the admin token.
pub struct RunnerAuth;

/// How long a runner's token stays trusted without asking the database again; also how
/// often its `last_seen_at` is written.
const SEEN_EVERY_MS: i64 = 10_000;

/// The SHA-256 of a token, hex: what the database keeps.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `token` belongs to a registered runner, recording that it was seen.
async fn registered_runner(state: &SharedState, token: &str) -> Result<bool, AppError> {
    let hash = token_hash(token);
    let now = crate::state::now_ms();
    {
        let cache = state
            .runner_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cache
            .get(&hash)
            .is_some_and(|seen| now - seen < SEEN_EVERY_MS)
        {
            return Ok(true);
        }
    }
    let known = state.store.runner_seen(&hash, now).await?.is_some();
    let mut cache = state
        .runner_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if known {
        cache.insert(hash, now);
    } else {
        cache.remove(&hash);
    }
    Ok(known)
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Equal strings, compared without an early exit.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl FromRequestParts<SharedState> for Admin {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, AppError> {
        match bearer(parts) {
            Some(t) if same(t, &state.admin_token) => Ok(Admin),
            _ => Err(AppError::Unauthorized),
        }
    }
}

impl FromRequestParts<SharedState> for RunnerAuth {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, AppError> {
        match bearer(parts) {
            Some(t) if same(t, &state.runner_token) || same(t, &state.admin_token) => {
                Ok(RunnerAuth)
            }
            Some(t) if registered_runner(state, t).await? => Ok(RunnerAuth),
            _ => Err(AppError::Unauthorized),
        }
    }
}
