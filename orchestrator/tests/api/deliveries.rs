//! A webhook delivery is recorded with the builds it starts: a repository that cannot be
//! read for a moment refuses the delivery (503) and records nothing, so the forge's
//! redelivery builds; names git could read as options never reach git.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::webhooks::Hooks;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_whose_first_delivery_hit_an_unreachable_repository_builds_on_redelivery() {
    let (hooks, url, _, second) = Hooks::start().await;
    let bare = std::path::PathBuf::from(url.trim_start_matches("file://"));
    let away = bare.with_extension("away");
    std::fs::rename(&bare, &away).unwrap();
    let push = hooks.push("refs/heads/main", &second);
    let (status, body) = hooks.github("push", "d-flaky", push.clone()).await;
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.ends_with("nothing was recorded, so the forge's redelivery will build"),
        "{error}"
    );
    assert!(hooks.builds().await.is_empty(), "nothing recorded");
    std::fs::rename(&away, &bare).unwrap();
    let (status, body) = hooks.github("push", "d-flaky", push.clone()).await;
    assert_eq!(status, 201, "the redelivery builds: {body}");
    let id = body["builds"][0]["id"].as_str().unwrap();
    assert_eq!(hooks.finished(id).await["status"], "succeeded");
    let (status, body) = hooks.github("push", "d-flaky", push).await;
    assert_eq!((status, body["duplicate"].as_bool()), (200, Some(true)));
    assert_eq!(hooks.builds().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_naming_an_option_instead_of_a_commit_or_ref_is_refused_and_writes_nothing() {
    let (hooks, _, _, second) = Hooks::start().await;
    let out = std::env::temp_dir().join(format!("conveyor-pwned-{}", uuid::Uuid::now_v7()));
    let after = format!("--output={}", out.display());
    let (status, body) = hooks
        .github("push", "d-opt", hooks.push("refs/heads/main", &after))
        .await;
    assert_eq!(status, 400, "{body}");
    let expected = format!(
        "the delivery names commit `{}`, which is not a commit id (40 or 64 hex digits)",
        after.chars().take(80).collect::<String>()
    );
    assert_eq!(body["error"].as_str(), Some(expected.as_str()));
    let (status, body) = hooks
        .github("push", "d-ref", hooks.push("refs/heads/a..b", &second))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some(
                "the delivery names ref `refs/heads/a..b`, which git does not accept as a ref name"
            )
        )
    );
    assert!(!out.exists(), "git wrote nothing");
    assert!(hooks.builds().await.is_empty());
}
