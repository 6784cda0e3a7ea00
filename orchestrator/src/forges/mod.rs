//! The forges conveyor works with — GitHub, GitLab, Gitea (and Forgejo) — one module each,
//! holding both directions: reading the forge's webhook deliveries (how it signs them, names
//! events and deliveries, and where the repository, ref and commit sit in its payload) and
//! telling it a commit's status (its endpoint, credentials and words for a build's state).
//! `reporter` and `tasks` deliver those statuses durably, as background tasks.

mod gitea;
mod github;
mod gitlab;
mod reporter;
mod tasks;
#[cfg(test)]
mod tests;

use serde_json::Value;

pub use reporter::{ReportError, Reporter, StatusConfig};
pub use tasks::{StatusQueue, start};

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
        /// The branch's commit before the push (all zeros for a new branch; empty when the
        /// forge does not say).
        before: String,
    },
    Tag {
        name: String,
        sha: String,
    },
    PullRequest {
        number: u64,
        branch: String,
        sha: String,
        /// The branch the pull request would merge into.
        base: String,
    },
    /// Anything conveyor does not build (closed pull requests, deleted branches, …).
    Ignored(String),
}

/// A delivery's headers, by lowercase name: what the forges' parsers read. The HTTP layer
/// fills it from the request, so parsing a delivery needs no web framework.
#[derive(Debug, Clone, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Headers::default()
    }

    /// Sets a header, replacing one of the same name.
    pub fn insert(&mut self, name: &str, value: String) {
        let name = name.to_ascii_lowercase();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
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
    pub fn verify(self, h: &Headers, body: &[u8], secret: &str) -> bool {
        match self {
            Forge::GitHub => github::verify(h, body, secret),
            Forge::Gitea => gitea::verify(h, body, secret),
            Forge::GitLab => gitlab::verify(h, secret),
        }
    }

    /// The forge's delivery id; without one, the body's hash (a replay repeats the body).
    pub fn delivery_id(self, h: &Headers, body: &[u8]) -> String {
        let named = match self {
            Forge::GitHub => github::delivery_id(h),
            Forge::Gitea => gitea::delivery_id(h),
            Forge::GitLab => gitlab::delivery_id(h),
        };
        named.map_or_else(
            || {
                format!(
                    "body:{}",
                    crate::secrets::token_hash(&String::from_utf8_lossy(body))
                )
            },
            str::to_string,
        )
    }

    /// Every URL the payload gives for the repository.
    pub fn repo_urls(self, p: &Value) -> Vec<String> {
        match self {
            Forge::GitHub => github::repo_urls(p),
            Forge::Gitea => gitea::repo_urls(p),
            Forge::GitLab => gitlab::repo_urls(p),
        }
    }

    /// The repository as the forge's API names it: `owner/name` on GitHub and Gitea, the
    /// project id on GitLab.
    pub fn repository(self, p: &Value) -> Option<String> {
        match self {
            Forge::GitHub => github::repository(p),
            Forge::Gitea => gitea::repository(p),
            Forge::GitLab => gitlab::repository(p),
        }
    }

    /// The account that made the change (pushed, opened or updated the pull request), as
    /// the forge names it; at most 100 characters, without control characters.
    pub fn actor(self, p: &Value) -> Option<String> {
        let named = match self {
            Forge::GitHub | Forge::Gitea => [&p["sender"]["login"], &p["pusher"]["name"]],
            Forge::GitLab => [&p["user_username"], &p["user"]["username"]],
        };
        let name = named.into_iter().find_map(Value::as_str)?;
        let clean: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
        (!clean.trim().is_empty()).then_some(clean)
    }

    /// The change a delivery describes.
    pub fn change(self, h: &Headers, p: &Value) -> Change {
        match self {
            Forge::GitHub => github::change(h, p),
            Forge::Gitea => gitea::change(h, p),
            Forge::GitLab => gitlab::change(h, p),
        }
    }
}

/// A forge's API and the token conveyor posts statuses with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeApi {
    pub forge: Forge,
    /// The API's base URL (`https://api.github.com`, `https://gitlab.com/api/v4`,
    /// `https://gitea.example.com/api/v1`).
    pub base: String,
    pub token: String,
}

/// One status for one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status<'a> {
    /// The repository as the forge's API names it (`owner/name`, GitLab's project id).
    pub repository: &'a str,
    pub sha: &'a str,
    /// The build's status in conveyor's words (`running`, `succeeded`, …).
    pub build_status: &'a str,
    /// What the forge lists the status under (`conveyor/shop/build`).
    pub context: &'a str,
    pub description: &'a str,
    /// The build's page.
    pub target_url: &'a str,
}

/// An HTTP request to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

/// The forge's word for a build status.
pub fn state(forge: Forge, build_status: &str) -> &'static str {
    match forge {
        Forge::GitHub => github::state(build_status),
        Forge::Gitea => gitea::state(build_status),
        Forge::GitLab => gitlab::state(build_status),
    }
}

/// The request that sets `status` on the forge.
pub fn request(api: &ForgeApi, status: &Status<'_>) -> Post {
    let base = api.base.trim_end_matches('/');
    match api.forge {
        Forge::GitHub => github::request(base, &api.token, status),
        Forge::Gitea => gitea::request(base, &api.token, status),
        Forge::GitLab => gitlab::request(base, &api.token, status),
    }
}

/// The first of `keys` of `obj` that are strings, in order.
fn strings(obj: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .filter_map(|k| obj[*k].as_str())
        .map(str::to_string)
        .collect()
}

/// A name or an id, as text.
fn name_or_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

const ZERO: &str = "0000000000000000000000000000000000000000";

/// A push of `git_ref` from `before` to `sha`, on any forge.
fn push(git_ref: &str, sha: String, before: String) -> Change {
    if sha.is_empty() || sha == ZERO {
        return Change::Ignored("a deleted ref".into());
    }
    if let Some(name) = git_ref.strip_prefix("refs/heads/") {
        Change::Branch {
            name: name.into(),
            sha,
            before,
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
