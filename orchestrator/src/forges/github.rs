//! GitHub: webhooks signed with `X-Hub-Signature-256`, events named by `X-GitHub-Event`;
//! commit statuses at `POST /repos/{owner}/{repo}/statuses/{sha}`. Gitea copies much of
//! this, and `gitea` reuses it.

use serde_json::{Value, json};

use super::{Change, Headers, Post, Status, name_or_id, push, s, strings};
use crate::secrets::hmac_hex_ok;

pub fn verify(h: &Headers, body: &[u8], secret: &str) -> bool {
    h.get("x-hub-signature-256")
        .and_then(|s| s.strip_prefix("sha256="))
        .is_some_and(|hex| hmac_hex_ok(secret, body, hex))
}

pub fn delivery_id(h: &Headers) -> Option<&str> {
    h.get("x-github-delivery")
}

pub fn repo_urls(p: &Value) -> Vec<String> {
    strings(
        &p["repository"],
        &["clone_url", "html_url", "ssh_url", "git_url", "url"],
    )
}

/// `owner/name`.
pub fn repository(p: &Value) -> Option<String> {
    name_or_id(&p["repository"]["full_name"])
}

pub fn change(h: &Headers, p: &Value) -> Change {
    hub_like(h.get("x-github-event").unwrap_or(""), p, "synchronize")
}

/// GitHub's and Gitea's payloads share their shape; `updated` is their word for a pull
/// request that got new commits.
pub fn hub_like(event: &str, p: &Value, updated: &str) -> Change {
    match event {
        "ping" => Change::Ping,
        "push" => push(
            p["ref"].as_str().unwrap_or(""),
            s(&p["after"]),
            s(&p["before"]),
        ),
        "pull_request" => {
            let action = p["action"].as_str().unwrap_or("");
            if ["opened", "reopened", updated].contains(&action) {
                Change::PullRequest {
                    number: p["number"].as_u64().unwrap_or(0),
                    branch: s(&p["pull_request"]["head"]["ref"]),
                    sha: s(&p["pull_request"]["head"]["sha"]),
                    base: s(&p["pull_request"]["base"]["ref"]),
                }
            } else {
                // A merged pull request arrives as a push too: one merge, one build.
                Change::Ignored(format!("pull request {action}"))
            }
        }
        other => Change::Ignored(format!("event `{other}`")),
    }
}

/// GitHub's word for a build status.
pub fn state(build_status: &str) -> &'static str {
    match build_status {
        "pending" | "running" => "pending",
        "succeeded" => "success",
        "failed" => "failure",
        // Cancelled builds and configs that do not compile: the commit did not fail a test,
        // conveyor could not tell.
        _ => "error",
    }
}

pub fn request(base: &str, token: &str, status: &Status<'_>) -> Post {
    Post {
        url: format!("{base}/repos/{}/statuses/{}", status.repository, status.sha),
        headers: vec![
            ("authorization", format!("Bearer {token}")),
            ("accept", "application/vnd.github+json".into()),
            ("x-github-api-version", "2022-11-28".into()),
        ],
        body: hub_body(state(status.build_status), status),
    }
}

/// The status body GitHub and Gitea both take.
pub fn hub_body(state: &str, status: &Status<'_>) -> Value {
    json!({
        "state": state,
        "context": status.context,
        "target_url": status.target_url,
        "description": status.description,
    })
}
