//! The store suite: every use case, run against SQLite and against Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use conveyor::store::{BuildTrigger, NewBuild, Store};
use conveyor_core::protocol::{Lease, LogBatch, LogLine, Outcome, Stream};

use common::flow::*;

pub async fn products_are_registered_and_replaced(store: Arc<dyn Store>) {
    setup(&store).await;
    let mut shop = common::product(SHOP);
    shop.repo = Some("file:///srv/shop.git".into());
    store.put_product(&shop, 2).await.unwrap();
    let names: Vec<String> = store
        .products()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["deploy", "shop"]);
    assert_eq!(
        store
            .product("shop")
            .await
            .unwrap()
            .unwrap()
            .repo
            .as_deref(),
        Some("file:///srv/shop.git")
    );
    assert!(store.product("nope").await.unwrap().is_none());
}

pub async fn a_new_build_queues_only_jobs_without_dependencies_and_is_numbered(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (id, effects) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    assert_eq!(dispatched(&store, &id, &effects).await, ["build", "lint"]);
    let (id2, _) = store.create_build(&manual("shop", "ci"), 6).await.unwrap();
    let (b1, b2) = (
        store.build(&id).await.unwrap().unwrap(),
        store.build(&id2).await.unwrap().unwrap(),
    );
    assert_eq!(
        (b1.number, b2.number, b1.status.as_str()),
        (1, 2, "running")
    );
    let (_, jobs) = status_of(&store, &id).await;
    assert_eq!(
        jobs,
        [
            ("build".into(), "queued".into()),
            ("test".into(), "pending".into()),
            ("lint".into(), "queued".into()),
            ("package".into(), "pending".into())
        ]
    );
    assert!(
        store
            .create_build(&manual("shop", "nope"), 7)
            .await
            .is_err()
    );
}

pub async fn a_job_run_is_claimed_once_and_only_at_its_attempt(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let id = run_id(&store, &b, "build").await;
    assert!(
        claim(&store, &id, 2).await.is_none(),
        "a stale attempt is refused"
    );
    let spec = claim(&store, &id, 1).await.expect("first claim wins");
    assert!(
        claim(&store, &id, 1).await.is_none(),
        "a duplicate message is dropped"
    );
    assert_eq!(
        (
            spec.product.as_str(),
            spec.belt.as_str(),
            spec.job.as_str(),
            spec.build_number
        ),
        ("shop", "ci", "build", 1)
    );
    let env: BTreeMap<_, _> = spec.env.iter().cloned().collect();
    assert_eq!(env["CONVEYOR_JOB"], "build");
    assert_eq!(env["CONVEYOR_ATTEMPT"], "1");
    assert_eq!(env["CONVEYOR_BUILD_ID"], b);
}

pub async fn completing_a_job_unblocks_dependents_with_its_outputs(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let effects = finish(
        &store,
        &b,
        "build",
        Outcome::Succeeded,
        &[("VERSION", "$(rm -rf ~) 'q'\t")],
    )
    .await;
    assert_eq!(dispatched(&store, &b, &effects).await, ["test"]);
    let spec = claim(&store, &run_id(&store, &b, "test").await, 1)
        .await
        .unwrap();
    assert_eq!(spec.script, "echo \"${CONVEYOR_REF_1}\"");
    let env: BTreeMap<_, _> = spec.env.iter().cloned().collect();
    assert_eq!(
        env["CONVEYOR_REF_1"], "$(rm -rf ~) 'q'\t",
        "the value travels as data"
    );
}

pub async fn a_failure_skips_dependents_and_fails_the_build_after_the_rest(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let e = finish(&store, &b, "build", Outcome::Failed, &[]).await;
    assert!(
        e.dispatch.is_empty() && e.finished.is_empty(),
        "lint still runs"
    );
    let (status, jobs) = status_of(&store, &b).await;
    assert_eq!(status, "running");
    assert_eq!(jobs[1], ("test".into(), "skipped".into()));
    assert_eq!(jobs[3], ("package".into(), "skipped".into()));
    let e = finish(&store, &b, "lint", Outcome::Succeeded, &[]).await;
    assert_eq!(e.finished, vec![b.clone()]);
    assert!(e.created.is_empty(), "a failed build fires no downstream");
    assert_eq!(status_of(&store, &b).await.0, "failed");
}

pub async fn a_failed_job_with_retries_runs_again_at_the_next_attempt(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    finish(&store, &b, "build", Outcome::Succeeded, &[("VERSION", "1")]).await;
    let e = finish(&store, &b, "test", Outcome::Failed, &[]).await;
    assert_eq!(e.dispatch.len(), 1);
    assert_eq!(e.dispatch[0].msg.attempt, 2);
    finish(&store, &b, "test", Outcome::Succeeded, &[]).await;
    let v = store.build(&b).await.unwrap().unwrap();
    let test = v.jobs.iter().find(|j| j.name == "test").unwrap();
    assert_eq!((test.status.as_str(), test.attempts), ("succeeded", 2));
}

pub async fn a_completion_with_a_lost_lease_is_discarded(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let spec = claim(&store, &run_id(&store, &b, "lint").await, 1)
        .await
        .unwrap();
    let mut forged = done(&spec, Outcome::Succeeded, &[]);
    forged.lease.lease_token = "not-the-token".into();
    assert!(store.complete(&forged, 20).await.unwrap().is_none());
    assert!(
        store
            .heartbeat(&forged.lease, LEASE_MS, 20)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.heartbeat(&spec.lease, LEASE_MS, 20).await.unwrap(),
        Some(false)
    );
    assert!(
        store
            .complete(&done(&spec, Outcome::Succeeded, &[]), 30)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .complete(&done(&spec, Outcome::Failed, &[]), 40)
            .await
            .unwrap()
            .is_none(),
        "completed once"
    );
    assert!(
        store
            .heartbeat(&spec.lease, LEASE_MS, 50)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn an_expired_lease_is_requeued_and_a_runner_lost_too_often_fails_the_job(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let id = run_id(&store, &b, "lint").await;
    let spec = claim(&store, &id, 1).await.unwrap();
    assert!(
        store
            .reap(10 + LEASE_MS - 1, 1)
            .await
            .unwrap()
            .dispatch
            .is_empty(),
        "the lease still holds"
    );
    let e = store.reap(10 + LEASE_MS + 1, 1).await.unwrap();
    assert_eq!(e.dispatch.len(), 1);
    assert_eq!(
        (
            e.dispatch[0].msg.job_run_id.as_str(),
            e.dispatch[0].msg.attempt
        ),
        (id.as_str(), 2)
    );
    assert!(
        store
            .complete(&done(&spec, Outcome::Succeeded, &[]), 20)
            .await
            .unwrap()
            .is_none(),
        "the old runner is fenced out"
    );
    claim(&store, &id, 2).await.unwrap();
    let e = store.reap(i64::MAX / 2, 1).await.unwrap();
    assert!(e.dispatch.is_empty());
    let v = store.build(&b).await.unwrap().unwrap();
    let lint = v.jobs.iter().find(|j| j.name == "lint").unwrap();
    assert_eq!(
        (lint.status.as_str(), lint.error.as_deref()),
        ("failed", Some("lost its runner 2 times"))
    );
}

pub async fn a_successful_build_fires_its_downstream_product_with_the_upstream_outputs(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    finish(
        &store,
        &b,
        "build",
        Outcome::Succeeded,
        &[("VERSION", "7.0")],
    )
    .await;
    finish(&store, &b, "lint", Outcome::Succeeded, &[]).await;
    finish(&store, &b, "test", Outcome::Succeeded, &[]).await;
    let e = finish(&store, &b, "package", Outcome::Succeeded, &[]).await;
    assert_eq!(e.finished, vec![b.clone()]);
    assert_eq!(e.created.len(), 1);
    let down = &e.created[0];
    assert_eq!(
        store.downstream_builds(&b).await.unwrap(),
        vec![down.clone()]
    );
    let d = store.build(down).await.unwrap().unwrap();
    assert_eq!(
        (
            d.product.as_str(),
            d.belt.as_str(),
            d.upstream_build_id.as_deref()
        ),
        ("deploy", "release", Some(b.as_str()))
    );
    assert!(
        matches!(&d.trigger, BuildTrigger::Upstream { product, number: 1, .. } if product == "shop")
    );
    assert_eq!(dispatched(&store, down, &e).await, ["ship"]);
    let spec = claim(&store, &run_id(&store, down, "ship").await, 1)
        .await
        .unwrap();
    let env: BTreeMap<_, _> = spec.env.iter().cloned().collect();
    assert_eq!(env["CONVEYOR_REF_1"], "7.0");
}

pub async fn a_false_condition_skips_and_a_manual_job_waits(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, e) = store
        .create_build(&manual("deploy", "release"), 5)
        .await
        .unwrap();
    assert_eq!(dispatched(&store, &b, &e).await, ["ship"]);
    let (_, jobs) = status_of(&store, &b).await;
    assert_eq!(jobs[2], ("approve".into(), "waiting".into()));
    let e = finish(&store, &b, "ship", Outcome::Succeeded, &[("DONE", "no")]).await;
    assert!(e.dispatch.is_empty());
    assert_eq!(
        status_of(&store, &b).await.1[1],
        ("maybe".into(), "skipped".into())
    );
}

pub async fn cancelling_stops_queued_jobs_and_signals_running_ones(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let spec = claim(&store, &run_id(&store, &b, "build").await, 1)
        .await
        .unwrap();
    store
        .cancel_build(&b, 10)
        .await
        .unwrap()
        .expect("build exists");
    assert_eq!(
        store.heartbeat(&spec.lease, LEASE_MS, 11).await.unwrap(),
        Some(true)
    );
    let e = store
        .complete(&done(&spec, Outcome::Cancelled, &[]), 12)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.finished, vec![b.clone()]);
    let (status, jobs) = status_of(&store, &b).await;
    assert_eq!(status, "cancelled");
    assert!(
        jobs.iter().all(|(_, s)| s == "cancelled" || s == "skipped"),
        "{jobs:?}"
    );
    assert!(
        store
            .cancel_build("no-such-build", 13)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn log_batches_are_stored_once_and_only_under_a_live_lease(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let id = run_id(&store, &b, "lint").await;
    let spec = claim(&store, &id, 1).await.unwrap();
    let line = |t: &str| LogLine {
        stream: Stream::Stdout,
        text: t.into(),
    };
    let batch = LogBatch {
        lease: spec.lease.clone(),
        seq: 0,
        lines: vec![line("one"), line("two")],
    };
    assert!(store.append_logs(&batch, 11).await.unwrap());
    assert!(
        store.append_logs(&batch, 12).await.unwrap(),
        "a resent batch is accepted"
    );
    let forged = LogBatch {
        lease: Lease {
            lease_token: "x".into(),
            ..spec.lease.clone()
        },
        seq: 1,
        lines: vec![line("evil")],
    };
    assert!(!store.append_logs(&forged, 13).await.unwrap());
    let logs = store.logs(&id, 0, 100).await.unwrap();
    assert_eq!(
        logs.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    let after = store.logs(&id, logs[0].id, 100).await.unwrap();
    assert_eq!(after.len(), 1);
}

pub async fn builds_are_listed_newest_first_and_filtered(store: Arc<dyn Store>) {
    setup(&store).await;
    let (a, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let (b, _) = store
        .create_build(&manual("deploy", "release"), 6)
        .await
        .unwrap();
    let all = store.builds(&Default::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|v| v.id.clone()).collect::<Vec<_>>(),
        [b.clone(), a.clone()]
    );
    let shop = conveyor::store::BuildFilter {
        product: Some("shop".into()),
        ..Default::default()
    };
    assert_eq!(store.builds(&shop).await.unwrap().len(), 1);
    assert_eq!(store.unfinished_builds().await.unwrap(), 2);
    let stale = store.stale_queued(6, "default", 100).await.unwrap();
    assert_eq!(
        stale.len(),
        2,
        "build and lint of the first build were queued before t=6"
    );
    assert_eq!(
        store.stale_queued(6, "default", 1).await.unwrap().len(),
        1,
        "at most the limit"
    );
    assert!(store.stale_queued(6, "gpu", 100).await.unwrap().is_empty());
    assert_eq!(
        store.queued_by_fleet().await.unwrap(),
        vec![("default".to_string(), 3)]
    );
}

const PICKY: &str = "product: picky
triggers:
  - upstream-build:
    upstream-product: shop
    build: last_failure
belts:
  - name: b
    jobs:
      - name: read
        commands: echo ${shop.build.VERSION}
";

pub async fn a_manual_downstream_build_reads_the_upstream_build_its_selector_names(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    store.put_product(&common::product(PICKY), 1).await.unwrap();
    let (good, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    for (job, outcome, out) in [
        ("build", Outcome::Succeeded, "1"),
        ("lint", Outcome::Succeeded, ""),
        ("test", Outcome::Succeeded, ""),
        ("package", Outcome::Succeeded, ""),
    ] {
        finish(&store, &good, job, outcome, &[("VERSION", out)]).await;
    }
    let (bad, _) = store.create_build(&manual("shop", "ci"), 6).await.unwrap();
    finish(
        &store,
        &bad,
        "build",
        Outcome::Succeeded,
        &[("VERSION", "2")],
    )
    .await;
    finish(&store, &bad, "lint", Outcome::Failed, &[]).await;
    finish(&store, &bad, "test", Outcome::Failed, &[]).await;
    finish(&store, &bad, "test", Outcome::Failed, &[]).await;
    assert_eq!(status_of(&store, &bad).await.0, "failed");
    let read = |b: String| {
        let store = store.clone();
        async move {
            let spec = claim(&store, &run_id(&store, &b, "read").await, 1)
                .await
                .unwrap();
            spec.env
                .iter()
                .find(|(k, _)| k == "CONVEYOR_REF_1")
                .map(|(_, v)| v.clone())
                .unwrap()
        }
    };
    let (p1, _) = store.create_build(&manual("picky", "b"), 7).await.unwrap();
    assert_eq!(read(p1).await, "2", "last_failure reads the failed build");
    // Without a selector: the last successful build.
    let (d, _) = store
        .create_build(&manual("deploy", "release"), 8)
        .await
        .unwrap();
    let spec = claim(&store, &run_id(&store, &d, "ship").await, 1)
        .await
        .unwrap();
    assert_eq!(
        spec.env
            .iter()
            .find(|(k, _)| k == "CONVEYOR_REF_1")
            .unwrap()
            .1,
        "1"
    );
}

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
        trigger: BuildTrigger::Webhook {
            forge: "github".into(),
            git_ref: "refs/heads/main".into(),
            repository: Some("acme/shop".into()),
        },
        sha: Some("5a5a".into()),
        ..manual("shop", "ci")
    };
    let (b, _) = store.create_build(&hooked, 10).await.unwrap();
    let (quiet, _) = store.create_build(&manual("shop", "ci"), 11).await.unwrap();
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
    let e = store.approve_job_run(&approve, 6).await.unwrap().unwrap();
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
        store.approve_job_run(&approve, 7).await.unwrap().is_none(),
        "a running job is not waiting"
    );
    let ship = run_id(&store, &b, "ship").await;
    assert!(store.approve_job_run(&ship, 7).await.unwrap().is_none());
    assert!(store.approve_job_run("nope", 7).await.unwrap().is_none());
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
    assert_eq!(
        store.heartbeat(&spec.lease, LEASE_MS, 8).await.unwrap(),
        Some(true)
    );
    let e = store
        .complete(&done(&spec, Outcome::Cancelled, &[]), 9)
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
        |v: &conveyor::store::BuildView| v.jobs.iter().map(|j| j.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    assert_eq!(store.job_edges(&again).await.unwrap().len(), 4);
    assert!(store.rerun_build("nope", 8).await.unwrap().is_none());
}

pub async fn a_builds_edges_its_job_runs_build_and_a_logs_tail_are_read_back(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let view = store.build(&b).await.unwrap().unwrap();
    let name = |id: &str| view.jobs.iter().find(|j| j.id == id).unwrap().name.clone();
    let mut edges: Vec<(String, String)> = store
        .job_edges(&b)
        .await
        .unwrap()
        .iter()
        .map(|(f, t)| (name(f), name(t)))
        .collect();
    edges.sort();
    // `package` reads `build.VERSION`, so it waits for `build` too.
    let want = [
        ("build", "package"),
        ("build", "test"),
        ("lint", "package"),
        ("test", "package"),
    ];
    assert_eq!(edges, want.map(|(f, t)| (f.to_string(), t.to_string())));
    let lint = run_id(&store, &b, "lint").await;
    assert_eq!(
        store.build_of_job_run(&lint).await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(store.build_of_job_run("nope").await.unwrap(), None);

    let spec = claim(&store, &lint, 1).await.unwrap();
    let lines = (1..=5)
        .map(|n| LogLine {
            stream: Stream::Stdout,
            text: format!("line {n}"),
        })
        .collect();
    let batch = LogBatch {
        lease: spec.lease.clone(),
        seq: 0,
        lines,
    };
    assert!(store.append_logs(&batch, 11).await.unwrap());
    let texts =
        |rows: Vec<conveyor::store::LogRow>| rows.into_iter().map(|l| l.text).collect::<Vec<_>>();
    let tail = store.log_tail(&lint, None, 2).await.unwrap();
    let fourth = tail[0].id;
    assert_eq!(texts(tail), ["line 4", "line 5"]);
    let older = store.log_tail(&lint, Some(fourth), 2).await.unwrap();
    assert_eq!(texts(older), ["line 2", "line 3"]);
    assert!(store.log_tail("nope", None, 2).await.unwrap().is_empty());
}

pub async fn one_job_run_reads_back_as_its_build_shows_it(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    finish(&store, &b, "build", Outcome::Succeeded, &[("VERSION", "3")]).await;
    let view = store.build(&b).await.unwrap().unwrap();
    for job in &view.jobs {
        assert_eq!(store.job_run(&job.id).await.unwrap().as_ref(), Some(job));
    }
    assert_eq!(view.jobs[0].outputs["VERSION"], "3");
    assert_eq!(store.job_run("nope").await.unwrap(), None);
}

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            macro_rules! t {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        super::$name(crate::common::$backend().await).await;
                    }
                };
            }
            t!(products_are_registered_and_replaced);
            t!(a_new_build_queues_only_jobs_without_dependencies_and_is_numbered);
            t!(a_job_run_is_claimed_once_and_only_at_its_attempt);
            t!(completing_a_job_unblocks_dependents_with_its_outputs);
            t!(a_failure_skips_dependents_and_fails_the_build_after_the_rest);
            t!(a_failed_job_with_retries_runs_again_at_the_next_attempt);
            t!(a_completion_with_a_lost_lease_is_discarded);
            t!(an_expired_lease_is_requeued_and_a_runner_lost_too_often_fails_the_job);
            t!(a_successful_build_fires_its_downstream_product_with_the_upstream_outputs);
            t!(a_false_condition_skips_and_a_manual_job_waits);
            t!(cancelling_stops_queued_jobs_and_signals_running_ones);
            t!(log_batches_are_stored_once_and_only_under_a_live_lease);
            t!(builds_are_listed_newest_first_and_filtered);
            t!(a_manual_downstream_build_reads_the_upstream_build_its_selector_names);
            t!(forge_builds_are_due_a_report_until_told_and_downstreams_build_their_head);
            t!(one_job_run_reads_back_as_its_build_shows_it);
            t!(approving_a_waiting_manual_job_queues_and_dispatches_it);
            t!(cancelling_one_job_run_skips_its_dependents_and_signals_a_running_one);
            t!(a_rerun_runs_the_same_jobs_at_the_same_commit_and_names_the_build_it_reruns);
            t!(a_builds_edges_its_job_runs_build_and_a_logs_tail_are_read_back);
        }
    };
}

suite!(sqlite);
suite!(postgres);
