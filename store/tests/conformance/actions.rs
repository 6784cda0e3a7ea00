//! Actions on builds and job runs, and forge bookkeeping: statuses due, approve, cancel one
//! job run, re-run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_core::protocol::Outcome;
use conveyor_store::{BuildTrigger, NewBuild, Store};

use crate::flow::*;
use conveyor_store::testing as common;

pub async fn forge_builds_are_due_a_report_until_told_and_downstreams_build_their_head(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let mut deploy = common::product(DEPLOY);
    (deploy.repo, deploy.branch, deploy.head_sha) = (
        Some("file:///srv/deploy.git".into()),
        Some("main".into()),
        Some("d3adb33f".into()),
    );
    store.put_product(&deploy, 2).await.unwrap();
    assert_eq!(
        store
            .product("deploy")
            .await
            .unwrap()
            .unwrap()
            .head_sha
            .as_deref(),
        Some("d3adb33f")
    );
    let hooked = NewBuild {
        resource: None,
        trigger: BuildTrigger::Webhook {
            forge: "github".into(),
            git_ref: "refs/heads/main".into(),
            repository: Some("acme/shop".into()),
        },
        sha: Some("5a5a".into()),
        ..manual("shop", "ci")
    };
    let (b, created) = store.create_build(&hooked, 10).await.unwrap();
    let (quiet, quiet_created) = store.create_build(&manual("shop", "ci"), 11).await.unwrap();
    assert_eq!(
        created.report,
        vec![b.clone()],
        "a forge build is due a report"
    );
    assert!(quiet_created.report.is_empty());
    assert_eq!(
        store.build(&quiet).await.unwrap().unwrap().forge_status,
        None
    );
    assert_eq!(
        store
            .build(&b)
            .await
            .unwrap()
            .unwrap()
            .forge_status
            .as_deref(),
        Some("")
    );
    assert_eq!(
        store.forge_status_due(0, 10).await.unwrap(),
        vec![b.clone()]
    );
    assert!(
        store.forge_status_due(11, 10).await.unwrap().is_empty(),
        "older builds are not swept"
    );
    store.set_forge_status(&b, "running").await.unwrap();
    assert!(store.forge_status_due(0, 10).await.unwrap().is_empty());
    store.set_forge_status(&quiet, "running").await.unwrap();
    assert_eq!(
        store.build(&quiet).await.unwrap().unwrap().forge_status,
        None,
        "only forge builds report"
    );
    finish(&store, &b, "build", Outcome::Succeeded, &[("VERSION", "1")]).await;
    finish(&store, &b, "lint", Outcome::Succeeded, &[]).await;
    finish(&store, &b, "test", Outcome::Succeeded, &[]).await;
    let e = finish(&store, &b, "package", Outcome::Succeeded, &[]).await;
    assert_eq!(
        e.report,
        vec![b.clone()],
        "finished: due a report; its downstream build is not"
    );
    assert_eq!(
        store.forge_status_due(0, 10).await.unwrap(),
        vec![b.clone()],
        "finished: due again"
    );
    let down = store.build(&e.created[0]).await.unwrap().unwrap();
    assert_eq!(
        (
            down.sha.as_deref(),
            down.git_ref.as_deref(),
            down.forge_status
        ),
        (Some("d3adb33f"), Some("refs/heads/main"), None),
        "a downstream build checks out its product's head and reports to no forge"
    );
}

pub async fn approving_a_waiting_manual_job_queues_and_dispatches_it(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store
        .create_build(&manual("deploy", "release"), 5)
        .await
        .unwrap();
    let approve = run_id(&store, &b, "approve").await;
    let e = store
        .approve_job_run(&approve, "ann", 6)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dispatched(&store, &b, &e).await, ["approve"]);
    assert_eq!(e.dispatch[0].msg.attempt, 1);
    assert_eq!(
        status_of(&store, &b).await.1[2],
        ("approve".into(), "queued".into())
    );
    assert!(
        claim(&store, &approve, 1).await.is_some(),
        "claimable once approved"
    );
    assert!(
        store
            .approve_job_run(&approve, "ann", 7)
            .await
            .unwrap()
            .is_none(),
        "a running job is not waiting"
    );
    let ship = run_id(&store, &b, "ship").await;
    assert!(
        store
            .approve_job_run(&ship, "ann", 7)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .approve_job_run("nope", "ann", 7)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn cancelling_one_job_run_skips_its_dependents_and_signals_a_running_one(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let lint = run_id(&store, &b, "lint").await;
    let e = store.cancel_job_run(&lint, 6).await.unwrap().unwrap();
    assert!(e.dispatch.is_empty() && e.finished.is_empty());
    let (status, jobs) = status_of(&store, &b).await;
    assert_eq!(status, "running");
    assert_eq!(jobs[2], ("lint".into(), "cancelled".into()));
    assert_eq!(jobs[3], ("package".into(), "skipped".into()));

    let build = run_id(&store, &b, "build").await;
    let spec = claim(&store, &build, 1).await.unwrap();
    store.cancel_job_run(&build, 7).await.unwrap().unwrap();
    let view = store.build(&b).await.unwrap().unwrap();
    assert!(
        view.jobs[0].cancel_requested && !view.jobs[1].cancel_requested,
        "a running job asked to cancel reads back as cancelling"
    );
    assert_eq!(
        store
            .heartbeat(&spec.lease, RUNNER, LEASE_MS, 8)
            .await
            .unwrap(),
        Some(true)
    );
    let e = store
        .complete(&done(&spec, Outcome::Cancelled, &[]), RUNNER, 9)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.finished, vec![b.clone()]);
    let (status, jobs) = status_of(&store, &b).await;
    assert_eq!(
        status, "failed",
        "a build with a cancelled job did not succeed"
    );
    assert_eq!(jobs[0], ("build".into(), "cancelled".into()));
    assert_eq!(jobs[1], ("test".into(), "skipped".into()));

    let e = store.cancel_job_run(&lint, 10).await.unwrap().unwrap();
    assert_eq!(e, Default::default(), "a finished job run stays as it is");
    assert!(store.cancel_job_run("nope", 10).await.unwrap().is_none());
}

pub async fn a_rerun_runs_the_same_jobs_at_the_same_commit_and_names_the_build_it_reruns(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let mut new = manual("shop", "ci");
    new.git_ref = Some("refs/heads/main".into());
    new.sha = Some("abc123".into());
    let (first, _) = store.create_build(&new, 5).await.unwrap();
    // The registered config changes after the first build: the re-run still runs its jobs.
    let changed = SHOP.replace("lint", "style");
    store
        .put_product(&common::product(&changed), 6)
        .await
        .unwrap();
    let (again, e) = store.rerun_build(&first, 7).await.unwrap().unwrap();
    assert_ne!(again, first);
    assert_eq!(dispatched(&store, &again, &e).await, ["build", "lint"]);
    assert_eq!(e.created, vec![again.clone()]);
    let (a, b) = (
        store.build(&first).await.unwrap().unwrap(),
        store.build(&again).await.unwrap().unwrap(),
    );
    assert_eq!(b.number, 2);
    assert_eq!(
        b.trigger,
        BuildTrigger::Rerun {
            build_id: first.clone(),
            number: 1,
            forge: None,
        }
    );
    assert_eq!(
        (b.git_ref.as_deref(), b.sha.as_deref()),
        (Some("refs/heads/main"), Some("abc123"))
    );
    let names =
        |v: &conveyor_store::BuildView| v.jobs.iter().map(|j| j.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    assert_eq!(store.job_edges(&again).await.unwrap().len(), 4);
    assert!(store.rerun_build("nope", 8).await.unwrap().is_none());
}
