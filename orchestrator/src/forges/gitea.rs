//! Gitea and Forgejo: GitHub's payloads and status API with their own header names
//! (`X-Gitea-*`, `X-Forgejo-*`), `synchronized` for an updated pull request, and a
//! `token` authorization scheme.

use serde_json::Value;

use super::github::{hub_body, hub_like};
use super::{Change, Headers, Post, Status};
use crate::secrets::hmac_hex_ok;

pub fn verify(h: &Headers, body: &[u8], secret: &str) -> bool {
    h.get("x-gitea-signature")
        .or_else(|| h.get("x-forgejo-signature"))
        .is_some_and(|hex| hmac_hex_ok(secret, body, hex))
}

pub fn delivery_id(h: &Headers) -> Option<&str> {
    h.get("x-gitea-delivery")
        .or_else(|| h.get("x-forgejo-delivery"))
}

/// Where GitHub puts them.
pub fn repo_urls(p: &Value) -> Vec<String> {
    super::github::repo_urls(p)
}

/// `owner/name`, as on GitHub.
pub fn repository(p: &Value) -> Option<String> {
    super::github::repository(p)
}

pub fn change(h: &Headers, p: &Value) -> Change {
    let event = h
        .get("x-gitea-event")
        .or_else(|| h.get("x-forgejo-event"))
        .unwrap_or("");
    hub_like(event, p, "synchronized")
}

/// Gitea's words for a build status are GitHub's.
pub fn state(build_status: &str) -> &'static str {
    super::github::state(build_status)
}

pub fn request(base: &str, token: &str, status: &Status<'_>) -> Post {
    Post {
        url: format!("{base}/repos/{}/statuses/{}", status.repository, status.sha),
        headers: vec![("authorization", format!("token {token}"))],
        body: hub_body(state(status.build_status), status),
    }
}
