//! Retrying a finished build in place: only its failed and cancelled job runs and what
//! they skipped run again, at their next attempt; the build reopens, is due a forge report
//! again and fires its downstreams when it now succeeds. Races: a retry against another
//! retry, and against the completion that finishes the build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_core::protocol::Outcome;
use conveyor_store::{BuildTrigger, NewBuild, Store, StoreError};

use crate::flow::*;
use crate::races::{ROUNDS, together};

/// A `shop` build from a GitHub push (it reports to its forge) whose `lint` failed, so
/// `package` was skipped and the build failed.
async fn failed_shop(store: &Arc<dyn Store>) -> String {
    setup(store).await;
    let hooked = NewBuild {
        trigger: BuildTrigger::Webhook {
            forge: "github".into(),
            git_ref: "refs/heads/main".into(),
            repository: Some("acme/shop".into()),
        },
        sha: Some("5a5a".into()),
        ..manual("shop", "ci")
    };
    let (b, _) = store.create_build(&hooked, 10).await.unwrap();
    finish(store, &b, "build", Outcome::Succeeded, &[("VERSION", "1")]).await;
    finish(store, &b, "lint", Outcome::Failed, &[]).await;
    let running = store.retry_build(&b, 21).await;
    assert!(
        matches!(running, Err(StoreError::Conflict(ref m)) if m.contains("still running")),
        "a running build is not retried: {running:?}"
    );
    finish(store, &b, "test", Outcome::Succeeded, &[]).await;
    let package = store.build(&b).await.unwrap().unwrap().jobs.remove(3);
    assert_eq!(
        package.reason.as_deref(),
        Some("its dependency `lint` failed"),
        "a job skipped behind a failure says why"
    );
    b
}

pub async fn a_retry_runs_only_the_failed_jobs_and_what_they_skipped_then_fires_downstream(
    store: Arc<dyn Store>,
) {
    let b = failed_shop(&store).await;
    let (status, jobs) = status_of(&store, &b).await;
    assert_eq!(status, "failed");
    assert_eq!(jobs[3], ("package".into(), "skipped".into()));
    store.set_forge_status(&b, "failed").await.unwrap();
    let e = store.retry_build(&b, 30).await.unwrap().unwrap();
    assert_eq!(dispatched(&store, &b, &e).await, ["lint"]);
    assert_eq!(e.dispatch[0].msg.attempt, 2, "a retry is the next attempt");
    assert_eq!(e.report, vec![b.clone()], "the forge is told it runs again");
    assert_eq!(
        store.forge_status_due(0, 10).await.unwrap(),
        vec![b.clone()]
    );
    let view = store.build(&b).await.unwrap().unwrap();
    assert_eq!((view.status.as_str(), view.finished_at), ("running", None));
    let states: Vec<(&str, &str)> = view
        .jobs
        .iter()
        .map(|j| (j.name.as_str(), j.status.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("build", "succeeded"),
            ("test", "succeeded"),
            ("lint", "queued"),
            ("package", "pending")
        ]
    );
    let lint = run_id(&store, &b, "lint").await;
    assert!(
        claim(&store, &lint, 1).await.is_none(),
        "the old attempt is fenced out"
    );
    finish(&store, &b, "lint", Outcome::Succeeded, &[]).await;
    let e = finish(&store, &b, "package", Outcome::Succeeded, &[]).await;
    assert_eq!(status_of(&store, &b).await.0, "succeeded");
    assert_eq!(
        (e.finished.clone(), e.report.clone()),
        (vec![b.clone()], vec![b.clone()])
    );
    assert_eq!(
        e.created.len(),
        1,
        "a build that now succeeds fires its downstream"
    );
    let down = store.build(&e.created[0]).await.unwrap().unwrap();
    assert_eq!(
        (down.product.as_str(), down.belt.as_str()),
        ("deploy", "release")
    );
    let again = store.retry_build(&b, 40).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(store.retry_build("nope", 40).await.unwrap().is_none());
}

pub async fn a_retried_approved_job_is_not_asked_again_and_condition_skips_stay(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (b, _) = store
        .create_build(&manual("deploy", "release"), 5)
        .await
        .unwrap();
    finish(&store, &b, "ship", Outcome::Succeeded, &[("DONE", "no")]).await;
    let approve = run_id(&store, &b, "approve").await;
    store
        .approve_job_run(&approve, "ann", 6)
        .await
        .unwrap()
        .unwrap();
    finish(&store, &b, "approve", Outcome::Failed, &[]).await;
    let (status, jobs) = status_of(&store, &b).await;
    assert_eq!(status, "failed");
    assert_eq!(jobs[1], ("maybe".into(), "skipped".into()));
    let e = store.retry_build(&b, 30).await.unwrap().unwrap();
    assert_eq!(dispatched(&store, &b, &e).await, ["approve"]);
    let view = store.build(&b).await.unwrap().unwrap();
    let approve = view.jobs.iter().find(|j| j.name == "approve").unwrap();
    assert_eq!(
        (approve.status.as_str(), approve.decided_by.as_deref()),
        ("queued", Some("ann")),
        "the approval stands"
    );
    let maybe = view.jobs.iter().find(|j| j.name == "maybe").unwrap();
    assert_eq!(
        maybe.status, "skipped",
        "a job its condition skipped is not retried"
    );
}

pub async fn a_cancelled_build_retries_every_job_it_stopped_and_asks_approval_anew(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (b, _) = store
        .create_build(&manual("deploy", "release"), 5)
        .await
        .unwrap();
    store.cancel_build(&b, 6).await.unwrap().unwrap();
    assert_eq!(status_of(&store, &b).await.0, "cancelled");
    let e = store.retry_build(&b, 7).await.unwrap().unwrap();
    assert_eq!(dispatched(&store, &b, &e).await, ["ship"]);
    let (status, jobs) = status_of(&store, &b).await;
    assert_eq!(status, "running");
    assert_eq!(
        jobs,
        [
            ("ship".into(), "queued".into()),
            ("maybe".into(), "pending".into()),
            ("approve".into(), "waiting".into())
        ],
        "a manual job never approved waits for approval again"
    );
}

pub async fn two_retries_at_once_reopen_the_build_once(store: Arc<dyn Store>) {
    setup(&store).await;
    for _ in 0..ROUNDS {
        let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
        store.cancel_build(&b, 6).await.unwrap().unwrap();
        let (s1, s2, i1, i2) = (store.clone(), store.clone(), b.clone(), b.clone());
        let (r1, r2) = together(async move { s1.retry_build(&i1, 7).await }, async move {
            s2.retry_build(&i2, 7).await
        })
        .await;
        let won: Vec<_> = [r1, r2]
            .into_iter()
            .filter_map(|r| match r {
                Ok(e) => Some(e.expect("the build exists")),
                Err(StoreError::Conflict(_)) => None,
                Err(e) => panic!("{e}"),
            })
            .collect();
        assert_eq!(won.len(), 1, "exactly one retry reopens the build");
        assert_eq!(dispatched(&store, &b, &won[0]).await, ["build", "lint"]);
        assert!(won[0].dispatch.iter().all(|d| d.msg.attempt == 2));
    }
}

pub async fn a_retry_and_the_completion_that_ends_the_build_at_once_agree(store: Arc<dyn Store>) {
    setup(&store).await;
    for _ in 0..ROUNDS {
        let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
        let build = run_id(&store, &b, "build").await;
        let spec = claim(&store, &build, 1).await.unwrap();
        store.cancel_build(&b, 6).await.unwrap().unwrap();
        let (s1, s2, id) = (store.clone(), store.clone(), b.clone());
        let stopped = done(&spec, Outcome::Cancelled, &[]);
        let (completed, retried) = together(
            async move { s1.complete(&stopped, RUNNER, 7).await.unwrap() },
            async move { s2.retry_build(&id, 7).await },
        )
        .await;
        let completed = completed.expect("the live lease completes");
        assert_eq!(
            completed.finished,
            vec![b.clone()],
            "the build finishes once"
        );
        let (status, jobs) = status_of(&store, &b).await;
        match retried {
            Ok(e) => {
                let e = e.unwrap();
                assert_eq!(dispatched(&store, &b, &e).await, ["build", "lint"]);
                assert_eq!(status, "running");
                assert_eq!(jobs[0], ("build".into(), "queued".into()));
            }
            Err(StoreError::Conflict(_)) => {
                assert_eq!(status, "cancelled");
                assert_eq!(jobs[0], ("build".into(), "cancelled".into()));
            }
            Err(e) => panic!("{e}"),
        }
    }
}
