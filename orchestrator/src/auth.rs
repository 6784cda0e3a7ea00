//! Bearer tokens: the admin token for mutating API calls, the runner token for the runner
//! protocol. Compared in constant time.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::AppError;
use crate::state::SharedState;

/// A request carrying the admin token.
pub struct Admin;

/// A request carrying the runner token (or the admin token).
pub struct RunnerAuth;

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
            _ => Err(AppError::Unauthorized),
        }
    }
}
