//! The dashboard's session: a cookie holding a random session id and its HMAC under a key
//! derived from the admin token, and the id's hash in the store until the session is signed
//! out or expires (12 h). Signing out on one orchestrator ends it on all of them; changing
//! the admin token ends every session (the HMAC no longer matches).

use axum::http::HeaderMap;
use axum::http::header;
use sha2::{Digest, Sha256};

use super::SharedState;
use super::error::AppError;
use crate::clock::now_ms;
use crate::secrets::{hmac_hex, same, token_hash};

const COOKIE: &str = "conveyor_session";
/// How long a session lasts.
const SESSION_SECS: i64 = 12 * 3600;

/// The request's session cookie, when its session is live.
pub async fn session(headers: &HeaderMap, state: &SharedState) -> Option<String> {
    let cookie = session_cookie(headers)?;
    let id = signed_id(state, &cookie)?;
    match state
        .services
        .store
        .session_live(&token_hash(id), now_ms())
        .await
    {
        Ok(live) => live.then_some(cookie),
        Err(e) => {
            tracing::warn!("reading a session: {e}");
            None
        }
    }
}

/// The CSRF token the forms of `session` carry: the HMAC of the cookie.
pub fn csrf_token(state: &SharedState, session: &str) -> String {
    mac(state, &format!("csrf:{session}"))
}

/// Starts a session: a `Set-Cookie` value, `Secure` when browsers come over HTTPS.
pub async fn start(state: &SharedState) -> Result<String, AppError> {
    let id = crate::store::token();
    let now = now_ms();
    state
        .services
        .store
        .start_session(&token_hash(&id), now + SESSION_SECS * 1000, now)
        .await?;
    let value = format!("{id}.{}", mac(state, &format!("session:{id}")));
    Ok(cookie(state, &value, SESSION_SECS))
}

/// Ends the request's session, if it has one: a `Set-Cookie` value that clears the cookie.
pub async fn end(state: &SharedState, headers: &HeaderMap) -> Result<String, AppError> {
    if let Some(id) = session_cookie(headers)
        .as_deref()
        .and_then(|c| signed_id(state, c))
    {
        state.services.store.end_session(&token_hash(id)).await?;
    }
    Ok(cookie(state, "", 0))
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

/// The session id of a cookie signed under this admin token.
fn signed_id<'c>(state: &SharedState, cookie: &'c str) -> Option<&'c str> {
    let (id, tag) = cookie.split_once('.')?;
    (!id.is_empty() && same(tag, &mac(state, &format!("session:{id}")))).then_some(id)
}

/// HMAC-SHA256 under the key derived from the admin token.
fn mac(state: &SharedState, message: &str) -> String {
    let key = Sha256::new()
        .chain_update(b"conveyor dashboard session\0")
        .chain_update(state.admin_token.as_bytes())
        .finalize();
    hmac_hex(&key, message.as_bytes())
}
