//! How each forge takes a commit status: the endpoint, the credentials header, and its
//! words for a build's state.

use serde_json::{Value, json};

use crate::webhooks::Forge;

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
    match (forge, build_status) {
        (Forge::GitLab, "running") => "running",
        (_, "pending" | "running") => "pending",
        (_, "succeeded") => "success",
        (Forge::GitLab, "failed") => "failed",
        (_, "failed") => "failure",
        (Forge::GitLab, "cancelled") => "canceled",
        (Forge::GitLab, _) => "failed",
        // Cancelled builds and configs that do not compile: the commit did not fail a test,
        // conveyor could not tell.
        _ => "error",
    }
}

/// The request that sets `status` on the forge.
pub fn request(api: &ForgeApi, status: &Status<'_>) -> Post {
    let base = api.base.trim_end_matches('/');
    let state = state(api.forge, status.build_status);
    match api.forge {
        Forge::GitHub => Post {
            url: format!("{base}/repos/{}/statuses/{}", status.repository, status.sha),
            headers: vec![
                ("authorization", format!("Bearer {}", api.token)),
                ("accept", "application/vnd.github+json".into()),
                ("x-github-api-version", "2022-11-28".into()),
            ],
            body: hub_body(state, status),
        },
        Forge::Gitea => Post {
            url: format!("{base}/repos/{}/statuses/{}", status.repository, status.sha),
            headers: vec![("authorization", format!("token {}", api.token))],
            body: hub_body(state, status),
        },
        Forge::GitLab => Post {
            url: format!(
                "{base}/projects/{}/statuses/{}",
                encode_path_segment(status.repository),
                status.sha
            ),
            headers: vec![("private-token", api.token.clone())],
            body: json!({
                "state": state,
                "name": status.context,
                "target_url": status.target_url,
                "description": status.description,
            }),
        },
    }
}

fn hub_body(state: &str, status: &Status<'_>) -> Value {
    json!({
        "state": state,
        "context": status.context,
        "target_url": status.target_url,
        "description": status.description,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status<'a>(build_status: &'a str) -> Status<'a> {
        Status {
            repository: "acme/shop",
            sha: "abc123",
            build_status,
            context: "conveyor/shop/build",
            description: "shop #3 succeeded",
            target_url: "http://ci.test/builds/1",
        }
    }

    #[test]
    fn each_forge_has_its_own_words_for_a_build_state() {
        let words = |f| {
            [
                "running",
                "succeeded",
                "failed",
                "cancelled",
                "config_error",
            ]
            .map(|s| state(f, s))
        };
        assert_eq!(
            words(Forge::GitHub),
            ["pending", "success", "failure", "error", "error"]
        );
        assert_eq!(words(Forge::Gitea), words(Forge::GitHub));
        assert_eq!(
            words(Forge::GitLab),
            ["running", "success", "failed", "canceled", "failed"]
        );
    }

    #[test]
    fn requests_go_where_each_forge_documents_them() {
        let api = |forge, base: &str| ForgeApi {
            forge,
            base: base.into(),
            token: "t0k".into(),
        };
        let gh = request(&api(Forge::GitHub, "http://h/"), &status("succeeded"));
        assert_eq!(gh.url, "http://h/repos/acme/shop/statuses/abc123");
        assert_eq!(gh.headers[0], ("authorization", "Bearer t0k".into()));
        assert_eq!(gh.body["state"], "success");
        assert_eq!(gh.body["context"], "conveyor/shop/build");
        let gt = request(&api(Forge::Gitea, "http://g/api/v1"), &status("failed"));
        assert_eq!(gt.url, "http://g/api/v1/repos/acme/shop/statuses/abc123");
        assert_eq!(gt.headers, vec![("authorization", "token t0k".into())]);
        assert_eq!(gt.body["state"], "failure");
        let gl = request(&api(Forge::GitLab, "http://l/api/v4"), &status("running"));
        assert_eq!(
            gl.url,
            "http://l/api/v4/projects/acme%2Fshop/statuses/abc123"
        );
        assert_eq!(gl.headers, vec![("private-token", "t0k".into())]);
        assert_eq!(
            (gl.body["state"].as_str(), gl.body["name"].as_str()),
            (Some("running"), Some("conveyor/shop/build"))
        );
    }
}
