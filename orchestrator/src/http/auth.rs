//! Who may call what. Bearer tokens — the admin token for mutating calls, registration
//! tokens (any fleet, or scoped to fleets) for registering runners, and each runner's own
//! token for the runner protocol — compared in constant time; and the dashboard's session, a cookie holding an expiry and its HMAC under a key
//! derived from the admin token (nothing stored: every orchestrator sharing the token
//! accepts it, and changing the token ends every session).

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::SharedState;
use super::error::AppError;
use crate::clock::now_ms;
use crate::secrets::{hmac_hex, same, token_hash};
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

    /// `FLEET[,FLEET…]=TOKEN`.
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "expected FLEET[,FLEET...]=TOKEN, e.g. `deploy=s3cret`";
        let (fleets, token) = s.split_once('=').ok_or_else(|| usage.to_string())?;
        let fleets: Vec<String> = fleets.split(',').map(|f| f.trim().to_string()).collect();
        if let Some(bad) = fleets
            .iter()
            .find(|f| !conveyor_core::names::is_fleet_name(f))
        {
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
        match bearer(parts) {
            Some(t) if same(t, &state.admin_token) => Ok(Admin),
            _ => Err(AppError::Unauthorized),
        }
    }
}

impl FromRequestParts<SharedState> for ApiReader {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, AppError> {
        let admin = bearer(parts).is_some_and(|t| same(t, &state.admin_token));
        if state.public_ui || admin || signed_in(parts, state) {
            Ok(ApiReader)
        } else {
            Err(AppError::Unauthorized)
        }
    }
}

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

const COOKIE: &str = "conveyor_session";
/// How long a session lasts.
const SESSION_SECS: i64 = 12 * 3600;

/// Whether the request carries a valid dashboard session.
pub fn signed_in(parts: &Parts, state: &SharedState) -> bool {
    session(&parts.headers, state).is_some()
}

/// The request's session cookie, when it is valid.
pub fn session(headers: &HeaderMap, state: &SharedState) -> Option<String> {
    session_cookie(headers).filter(|c| valid(state, c, now_ms()))
}

/// The CSRF token the forms of `session` carry: the HMAC of the cookie.
pub fn csrf_token(state: &SharedState, session: &str) -> String {
    mac(state, &format!("csrf:{session}"))
}

/// A `Set-Cookie` value that starts a session; `Secure` when browsers come over HTTPS.
pub fn new_session(state: &SharedState) -> String {
    let exp = now_ms() / 1000 + SESSION_SECS;
    let value = format!("{exp}.{}", mac(state, &format!("session:{exp}")));
    cookie(state, &value, SESSION_SECS)
}

/// A `Set-Cookie` value that ends the session.
pub fn ended_session(state: &SharedState) -> String {
    cookie(state, "", 0)
}

fn cookie(state: &SharedState, value: &str, max_age: i64) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
}

fn valid(state: &SharedState, cookie: &str, now: i64) -> bool {
    let Some((exp, tag)) = cookie.split_once('.') else {
        return false;
    };
    let Ok(secs) = exp.parse::<i64>() else {
        return false;
    };
    !tag.is_empty() && secs > now / 1000 && same(tag, &mac(state, &format!("session:{secs}")))
}

/// HMAC-SHA256 under the key derived from the admin token.
fn mac(state: &SharedState, message: &str) -> String {
    let key = Sha256::new()
        .chain_update(b"conveyor dashboard session\0")
        .chain_update(state.admin_token.as_bytes())
        .finalize();
    hmac_hex(&key, message.as_bytes())
}
