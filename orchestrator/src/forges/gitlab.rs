//! GitLab: webhooks carrying the secret itself in `X-Gitlab-Token`, events named by
//! `X-Gitlab-Event`, merge requests for pull requests; commit statuses at
//! `POST /projects/{id}/statuses/{sha}` with a `PRIVATE-TOKEN`.

use serde_json::{Value, json};

use super::{Change, Headers, Post, Status, name_or_id, push, s, strings};
use crate::secrets::same;

pub fn verify(h: &Headers, secret: &str) -> bool {
    h.get("x-gitlab-token").is_some_and(|t| same(t, secret))
}

pub fn delivery_id(h: &Headers) -> Option<&str> {
    h.get("x-gitlab-event-uuid")
        .or_else(|| h.get("x-gitlab-webhook-uuid"))
}

pub fn repo_urls(p: &Value) -> Vec<String> {
    strings(
        &p["project"],
        &["git_http_url", "git_ssh_url", "web_url", "http_url", "url"],
    )
}

/// The project id.
pub fn repository(p: &Value) -> Option<String> {
    name_or_id(&p["project"]["id"])
}

pub fn change(h: &Headers, p: &Value) -> Change {
    match h.get("x-gitlab-event").unwrap_or("") {
        "Push Hook" | "Tag Push Hook" => {
            let sha = p["checkout_sha"]
                .as_str()
                .map_or_else(|| s(&p["after"]), str::to_string);
            push(p["ref"].as_str().unwrap_or(""), sha, s(&p["before"]))
        }
        "Merge Request Hook" => {
            let a = &p["object_attributes"];
            let action = a["action"].as_str().unwrap_or("");
            if ["open", "reopen", "update"].contains(&action) {
                Change::PullRequest {
                    number: a["iid"].as_u64().unwrap_or(0),
                    branch: s(&a["source_branch"]),
                    sha: s(&a["last_commit"]["id"]),
                    base: s(&a["target_branch"]),
                }
            } else {
                Change::Ignored(format!("merge request {action}"))
            }
        }
        other => Change::Ignored(format!("event `{other}`")),
    }
}

/// GitLab's word for a build status.
pub fn state(build_status: &str) -> &'static str {
    match build_status {
        "running" => "running",
        "pending" => "pending",
        "succeeded" => "success",
        "cancelled" => "canceled",
        _ => "failed",
    }
}

pub fn request(base: &str, token: &str, status: &Status<'_>) -> Post {
    Post {
        url: format!(
            "{base}/projects/{}/statuses/{}",
            encode_path_segment(status.repository),
            status.sha
        ),
        headers: vec![("private-token", token.to_string())],
        body: json!({
            "state": state(status.build_status),
            "name": status.context,
            "target_url": status.target_url,
            "description": status.description,
        }),
    }
}

/// GitLab takes a project's path in place of its id, URL-encoded (`group%2Fproject`).
fn encode_path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
