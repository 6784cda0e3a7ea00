//! Bearer tokens: the admin token for mutating API calls, registration tokens (any fleet, or
//! scoped to fleets) for registering runners, and each runner's own token for the runner
//! protocol. Compared in constant time.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::AppError;
use crate::state::SharedState;
use crate::store::Owner;

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

/// A request carrying a registration token: the admin token or `--runner-token` (any
/// fleet, `None`), or a `--fleet-token` (only its fleets).
pub struct Registration(pub Option<Vec<String>>);

impl FromRequestParts<SharedState> for Registration {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, AppError> {
        let Some(t) = bearer(parts) else {
            return Err(AppError::Unauthorized);
        };
        if same(t, &state.runner_token) || same(t, &state.admin_token) {
            return Ok(Registration(None));
        }
        // Every token is compared, so the time taken does not tell which one was close.
        let scoped = state
            .fleet_tokens
            .iter()
            .filter(|f| same(t, &f.token))
            .fold(None, |_, f| Some(f.fleets.clone()));
        scoped
            .map(|fleets| Registration(Some(fleets)))
            .ok_or(AppError::Unauthorized)
    }
}

/// A request from a registered runner, by its own token (from registration): who it is and
/// the fleets it serves. Registration tokens and the admin token are not runner tokens: a
/// lease belongs to the runner that claimed it.
pub struct RunnerAuth(pub Owner);

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

/// The registered runner whose own token this is, recording that it was seen.
async fn registered_runner(state: &SharedState, token: &str) -> Result<Option<Owner>, AppError> {
    let hash = token_hash(token);
    let now = crate::state::now_ms();
    {
        let cache = state
            .runner_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((seen, owner)) = cache.get(&hash)
            && now - seen < SEEN_EVERY_MS
        {
            return Ok(Some(owner.clone()));
        }
    }
    let owner = state.store.runner_seen(&hash, now).await?.map(|r| Owner {
        name: r.name,
        fleets: r.fleets,
    });
    let mut cache = state
        .runner_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    match &owner {
        Some(o) => cache.insert(hash, (now, o.clone())),
        None => cache.remove(&hash),
    };
    Ok(owner)
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
        let Some(t) = bearer(parts) else {
            return Err(AppError::Unauthorized);
        };
        match registered_runner(state, t).await? {
            Some(owner) => Ok(RunnerAuth(owner)),
            None => Err(AppError::Unauthorized),
        }
    }
}
