//! The forges' parsers and requests: signatures, changes, status words and endpoints, each
//! forge in its own format.
#![allow(clippy::unwrap_used)]

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::github::hub_like;
use super::*;

/// The tests build a delivery's headers as they would an HTTP request's.
type HeaderMap = Headers;

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
