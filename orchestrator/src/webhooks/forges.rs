//! What each forge sends: how it signs, how it names events and deliveries, and where the
//! repository, ref and commit sit in its payload.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    GitHub,
    GitLab,
    Gitea,
}

/// What a delivery asks for, in the forge's terms made common.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Ping,
    Branch {
        name: String,
        sha: String,
    },
    Tag {
        name: String,
        sha: String,
    },
    PullRequest {
        number: u64,
        branch: String,
        sha: String,
    },
    /// Anything conveyor does not build (closed pull requests, deleted branches, …).
    Ignored(String),
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn hmac_hex_ok(secret: &str, body: &[u8], hex: &str) -> bool {
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Forge {
    pub fn name(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::GitLab => "gitlab",
            Forge::Gitea => "gitea",
        }
    }

    /// Whether the delivery carries `secret`'s signature (constant-time comparisons).
    pub fn verify(self, h: &HeaderMap, body: &[u8], secret: &str) -> bool {
        match self {
            Forge::GitHub => header(h, "x-hub-signature-256")
                .and_then(|s| s.strip_prefix("sha256="))
                .is_some_and(|hex| hmac_hex_ok(secret, body, hex)),
            Forge::Gitea => header(h, "x-gitea-signature")
                .or_else(|| header(h, "x-forgejo-signature"))
                .is_some_and(|hex| hmac_hex_ok(secret, body, hex)),
            Forge::GitLab => {
                header(h, "x-gitlab-token").is_some_and(|t| crate::auth::same(t, secret))
            }
        }
    }

    /// The forge's delivery id; without one, the body's hash (a replay repeats the body).
    pub fn delivery_id(self, h: &HeaderMap, body: &[u8]) -> String {
        let named = match self {
            Forge::GitHub => header(h, "x-github-delivery"),
            Forge::Gitea => {
                header(h, "x-gitea-delivery").or_else(|| header(h, "x-forgejo-delivery"))
            }
            Forge::GitLab => {
                header(h, "x-gitlab-event-uuid").or_else(|| header(h, "x-gitlab-webhook-uuid"))
            }
        };
        named.map_or_else(
            || {
                format!(
                    "body:{}",
                    crate::auth::token_hash(&String::from_utf8_lossy(body))
                )
            },
            str::to_string,
        )
    }

    /// Every URL the payload gives for the repository.
    pub fn repo_urls(self, p: &Value) -> Vec<String> {
        let (obj, keys): (&Value, &[&str]) = match self {
            Forge::GitHub | Forge::Gitea => (
                &p["repository"],
                &["clone_url", "html_url", "ssh_url", "git_url", "url"],
            ),
            Forge::GitLab => (
                &p["project"],
                &["git_http_url", "git_ssh_url", "web_url", "http_url", "url"],
            ),
        };
        keys.iter()
            .filter_map(|k| obj[*k].as_str())
            .map(str::to_string)
            .collect()
    }

    /// The repository as the forge's API names it: `owner/name` on GitHub and Gitea, the
    /// project id on GitLab.
    pub fn repository(self, p: &Value) -> Option<String> {
        let v = match self {
            Forge::GitHub | Forge::Gitea => &p["repository"]["full_name"],
            Forge::GitLab => &p["project"]["id"],
        };
        match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The change a delivery describes.
    pub fn change(self, h: &HeaderMap, p: &Value) -> Change {
        match self {
            Forge::GitHub => hub_like(header(h, "x-github-event").unwrap_or(""), p, "synchronize"),
            Forge::Gitea => hub_like(
                header(h, "x-gitea-event")
                    .or_else(|| header(h, "x-forgejo-event"))
                    .unwrap_or(""),
                p,
                "synchronized",
            ),
            Forge::GitLab => gitlab(header(h, "x-gitlab-event").unwrap_or(""), p),
        }
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

const ZERO: &str = "0000000000000000000000000000000000000000";

fn push(git_ref: &str, sha: String) -> Change {
    if sha.is_empty() || sha == ZERO {
        return Change::Ignored("a deleted ref".into());
    }
    if let Some(name) = git_ref.strip_prefix("refs/heads/") {
        Change::Branch {
            name: name.into(),
            sha,
        }
    } else if let Some(name) = git_ref.strip_prefix("refs/tags/") {
        Change::Tag {
            name: name.into(),
            sha,
        }
    } else {
        Change::Ignored(format!("a push to {git_ref}"))
    }
}

/// GitHub's and Gitea's payloads share their shape.
fn hub_like(event: &str, p: &Value, updated: &str) -> Change {
    match event {
        "ping" => Change::Ping,
        "push" => push(p["ref"].as_str().unwrap_or(""), s(&p["after"])),
        "pull_request" => {
            let action = p["action"].as_str().unwrap_or("");
            if ["opened", "reopened", updated].contains(&action) {
                Change::PullRequest {
                    number: p["number"].as_u64().unwrap_or(0),
                    branch: s(&p["pull_request"]["head"]["ref"]),
                    sha: s(&p["pull_request"]["head"]["sha"]),
                }
            } else {
                // A merged pull request arrives as a push too: one merge, one build.
                Change::Ignored(format!("pull request {action}"))
            }
        }
        other => Change::Ignored(format!("event `{other}`")),
    }
}

fn gitlab(event: &str, p: &Value) -> Change {
    match event {
        "Push Hook" | "Tag Push Hook" => {
            let sha = p["checkout_sha"]
                .as_str()
                .map_or_else(|| s(&p["after"]), str::to_string);
            push(p["ref"].as_str().unwrap_or(""), sha)
        }
        "Merge Request Hook" => {
            let a = &p["object_attributes"];
            let action = a["action"].as_str().unwrap_or("");
            if ["open", "reopen", "update"].contains(&action) {
                Change::PullRequest {
                    number: a["iid"].as_u64().unwrap_or(0),
                    branch: s(&a["source_branch"]),
                    sha: s(&a["last_commit"]["id"]),
                }
            } else {
                Change::Ignored(format!("merge request {action}"))
            }
        }
        other => Change::Ignored(format!("event `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn signatures_verify_only_with_the_right_secret_and_body() {
        let body = br#"{"a":1}"#;
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature-256",
            format!("sha256={}", sign("s3cret", body)).parse().unwrap(),
        );
        assert!(Forge::GitHub.verify(&h, body, "s3cret"));
        assert!(!Forge::GitHub.verify(&h, body, "other"));
        assert!(!Forge::GitHub.verify(&h, br#"{"a":2}"#, "s3cret"));
        let mut g = HeaderMap::new();
        g.insert("x-gitea-signature", sign("s3cret", body).parse().unwrap());
        assert!(Forge::Gitea.verify(&g, body, "s3cret"));
        assert!(
            !Forge::GitHub.verify(&HeaderMap::new(), body, "s3cret"),
            "no signature, no trust"
        );
        let mut l = HeaderMap::new();
        l.insert("x-gitlab-token", "s3cret".parse().unwrap());
        assert!(Forge::GitLab.verify(&l, body, "s3cret"));
        assert!(!Forge::GitLab.verify(&l, body, "s3creT"));
    }

    #[test]
    fn pushes_tags_and_pull_requests_are_told_apart() {
        let p = serde_json::json!({"ref": "refs/tags/v1", "after": "abc"});
        assert_eq!(
            hub_like("push", &p, "synchronize"),
            Change::Tag {
                name: "v1".into(),
                sha: "abc".into()
            }
        );
        let p = serde_json::json!({"ref": "refs/heads/main", "after": ZERO});
        assert!(matches!(
            hub_like("push", &p, "synchronize"),
            Change::Ignored(_)
        ));
        let p = serde_json::json!({"action": "closed", "pull_request": {"merged": true}});
        assert_eq!(
            hub_like("pull_request", &p, "synchronize"),
            Change::Ignored("pull request closed".into())
        );
    }
}
