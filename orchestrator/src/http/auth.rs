//! Who may call what. Bearer tokens — the admin token for mutating calls, registration
//! tokens (any fleet, or scoped to fleets) for registering runners, and each runner's own
//! token for the runner protocol — compared in constant time, and each wrong one counted
//! against its client's address (`throttle`); reads also accept the dashboard's session
//! (`sessions`).

use std::net::IpAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::SharedState;
use super::error::AppError;
use super::sessions::session;
use super::throttle::ClientAddr;
use crate::clock::now_ms;
use crate::secrets::{same, token_hash};
use crate::store::Owner;

/// A request carrying the admin token.
pub struct Admin;

/// A request that may read products, builds, logs and runners: anyone when reads are public
/// (`--public-ui`, and always under `conveyor up`), else one with the admin token or a
/// signed-in dashboard session.
pub struct ApiReader;

/// A request carrying a registration token: the admin token or `--runner-token` (any
/// fleet, `None`), or a `--fleet-token` (only its fleets).
pub struct Registration(pub Option<Vec<String>>);

/// A request from a registered runner, by its own token (from registration): who it is and
/// the fleets it serves. Registration tokens and the admin token are not runner tokens: a
/// lease belongs to the runner that claimed it.
pub struct RunnerAuth(pub Owner);

/// A registration token that registers runners for some fleets only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetToken {
    pub fleets: Vec<String>,
    pub token: String,
}

impl std::str::FromStr for FleetToken {
    type Err = String;

    /// `FLEET[,FLEET…]=TOKEN`; a fleet `driver:NAME` lets the token register instances of
    /// driver `NAME`.
    fn from_str(s: &str) -> Result<Self, String> {
        let usage =
            "expected FLEET[,FLEET...]=TOKEN, e.g. `deploy=s3cret` or `driver:slack=s3cret`";
        let (fleets, token) = s.split_once('=').ok_or_else(|| usage.to_string())?;
        let fleets: Vec<String> = fleets.split(',').map(|f| f.trim().to_string()).collect();
        let valid = |f: &String| {
            let name = conveyor_core::driver::driver_of(f).unwrap_or(f);
            conveyor_core::names::is_fleet_name(name)
        };
        if let Some(bad) = fleets.iter().find(|f| !valid(f)) {
            return Err(format!("invalid fleet name `{bad}`: {usage}"));
        }
        if token.trim().len() < 16 {
            return Err("a fleet token needs at least 16 characters".into());
        }
        Ok(FleetToken {
            fleets,
            token: token.trim().to_string(),
        })
    }
}

/// How long a runner's token stays trusted without asking the database again; also how
/// often its `last_seen_at` is written.
const SEEN_EVERY_MS: i64 = 10_000;

impl FromRequestParts<SharedState> for Admin {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, AppError> {
        let t = bearer(parts).ok_or(AppError::Unauthorized)?;
        guarded(parts, state, || {
            same(t, &state.admin_token).then_some(Admin)
        })
    }
}

impl FromRequestParts<SharedState> for ApiReader {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, AppError> {
        if state.public_ui || session(&parts.headers, state).await.is_some() {
            return Ok(ApiReader);
        }
        let t = bearer(parts).ok_or(AppError::Unauthorized)?;
        guarded(parts, state, || {
            same(t, &state.admin_token).then_some(ApiReader)
        })
    }
}

impl FromRequestParts<SharedState> for Registration {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, AppError> {
        let t = bearer(parts).ok_or(AppError::Unauthorized)?;
        guarded(parts, state, || {
            if same(t, &state.runner_token) || same(t, &state.admin_token) {
                return Some(Registration(None));
            }
            // Every token is compared, so the time taken does not tell which one was close.
            let scoped = state
                .fleet_tokens
                .iter()
                .filter(|f| same(t, &f.token))
                .fold(None, |_, f| Some(f.fleets.clone()));
            scoped.map(|fleets| Registration(Some(fleets)))
        })
    }
}

/// A runner's own token is checked even from a throttled address, and a good one passes: it
/// is 256 random bits that no rate of guessing finds, and a 429 would cost the runner its
/// jobs. A wrong one still counts, and from a throttled address answers 429.
impl FromRequestParts<SharedState> for RunnerAuth {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, AppError> {
        let t = bearer(parts).ok_or(AppError::Unauthorized)?;
        if let Some(owner) = registered_runner(state, t).await? {
            return Ok(RunnerAuth(owner));
        }
        let (addr, now) = (client_addr(parts), now_ms());
        state.throttle.failed(addr, now);
        state.throttle.check(addr, now)?;
        Err(AppError::Unauthorized)
    }
}

/// The address a request came from, when the server knows it.
pub fn client_addr(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<ClientAddr>>()
        .map(|c| c.0.0.ip())
}

/// Checks a credential (`check` is `None` when it is wrong) unless its client's address has
/// failed too often: that is answered 429 before anything is checked, so that a right guess
/// looks like a wrong one. A wrong credential counts against the address.
pub fn guarded<T>(
    parts: &Parts,
    state: &SharedState,
    check: impl FnOnce() -> Option<T>,
) -> Result<T, AppError> {
    let (addr, now) = (client_addr(parts), now_ms());
    state.throttle.check(addr, now)?;
    check().ok_or_else(|| {
        state.throttle.failed(addr, now);
        AppError::Unauthorized
    })
}

/// The most runner tokens kept confirmed in memory; past it, those not seen lately are
/// forgotten (and looked up again when they come back).
const RUNNER_TOKENS_KEPT: usize = 4_096;

/// The registered runner whose own token this is, recording that it was seen.
async fn registered_runner(state: &SharedState, token: &str) -> Result<Option<Owner>, AppError> {
    let hash = token_hash(token);
    let now = now_ms();
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
    let owner = crate::services::runs::seen(&state.services, &hash, now).await?;
    let mut cache = state
        .runner_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if cache.len() >= RUNNER_TOKENS_KEPT {
        // Tokens of runners gone (a runner registers anew when it restarts) leave no trace.
        cache.retain(|_, (seen, _)| now - *seen < SEEN_EVERY_MS);
    }
    match &owner {
        Some(o) => cache.insert(hash, (now, o.clone())),
        None => cache.remove(&hash),
    };
    Ok(owner)
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}
