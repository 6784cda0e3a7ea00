//! A build from creation to its end: queueing, claims, completions, failures, retries, leases,
//! downstream products, conditions and cancelling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use conveyor_core::protocol::{Completion, Outcome};
use conveyor_store::{BuildTrigger, Store};

use crate::flow::*;
use conveyor_store::testing as common;

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
    assert!(store.complete(&forged, RUNNER, 20).await.unwrap().is_none());
    assert!(
        store
            .heartbeat(&forged.lease, RUNNER, LEASE_MS, 20)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .heartbeat(&spec.lease, RUNNER, LEASE_MS, 20)
            .await
            .unwrap(),
        Some(false)
    );
    assert!(
        store
            .complete(&done(&spec, Outcome::Succeeded, &[]), RUNNER, 30)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .complete(&done(&spec, Outcome::Failed, &[]), RUNNER, 40)
            .await
            .unwrap()
            .is_none(),
        "completed once"
    );
    assert!(
        store
            .heartbeat(&spec.lease, RUNNER, LEASE_MS, 50)
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
            .complete(&done(&spec, Outcome::Succeeded, &[]), RUNNER, 20)
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
        store
            .heartbeat(&spec.lease, RUNNER, LEASE_MS, 11)
            .await
            .unwrap(),
        Some(true)
    );
    let e = store
        .complete(&done(&spec, Outcome::Cancelled, &[]), RUNNER, 12)
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

/// A build of `shop/ci` whose `build` job is claimed, and its spec.
async fn shop_with_build_claimed(
    store: &Arc<dyn Store>,
) -> (String, conveyor_core::protocol::JobSpec) {
    setup(store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let build = run_id(store, &b, "build").await;
    (b, claim(store, &build, 1).await.unwrap())
}

/// A completion asking to take the next job, succeeded with `VERSION`.
fn taking(spec: &conveyor_core::protocol::JobSpec, version: &str) -> Completion {
    let mut c = done(spec, Outcome::Succeeded, &[("VERSION", version)]);
    c.take_next = true;
    c
}

/// A completion that asks to take the next job gets, claimed in its own transaction, a job
/// run it readied on the runner's fleets: not dispatched, running under a lease the runner
/// can use.
pub async fn a_completion_taking_the_next_job_claims_what_it_readies_for_the_runner(
    store: Arc<dyn Store>,
) {
    let (b, spec) = shop_with_build_claimed(&store).await;
    let (effects, next) = store
        .complete_taking(&taking(&spec, "7"), &owner(), NO_CAP, LEASE_MS, 20)
        .await
        .unwrap()
        .expect("not fenced");
    assert!(effects.dispatch.is_empty(), "{:?}", effects.dispatch);
    let next = next.expect("test was readied on the runner's fleet");
    let test = run_id(&store, &b, "test").await;
    assert_eq!(
        (next.spec.lease.job_run_id.as_str(), next.spec.lease.attempt),
        (test.as_str(), 1)
    );
    let env: BTreeMap<_, _> = next.spec.env.iter().cloned().collect();
    assert_eq!(
        env["CONVEYOR_REF_1"], "7",
        "its references resolved as a claim's"
    );
    let v = store.build(&b).await.unwrap().unwrap();
    let job = v.jobs.iter().find(|j| j.id == test).unwrap();
    assert_eq!(
        (job.status.as_str(), job.runner.as_deref()),
        ("running", Some(RUNNER))
    );
    assert!(
        claim(&store, &test, 1).await.is_none(),
        "a stale message is refused"
    );
    let lease = next.spec.lease.clone();
    assert_eq!(
        store.heartbeat(&lease, RUNNER, LEASE_MS, 30).await.unwrap(),
        Some(false)
    );
    let ended = done(&next.spec, Outcome::Succeeded, &[]);
    let completed = store.complete(&ended, RUNNER, 40).await;
    assert!(completed.unwrap().is_some(), "the lease is the runner's");
}

/// A completion asking to take the next job takes nothing when it is fenced out (nor is
/// anything recorded), when what it readies is on a fleet the runner does not serve, or
/// when it is its own retry (those are dispatched as usual).
pub async fn a_completion_taking_the_next_job_takes_nothing_fenced_out_or_off_its_fleets(
    store: Arc<dyn Store>,
) {
    let (b, spec) = shop_with_build_claimed(&store).await;
    let mut forged = taking(&spec, "7");
    forged.lease.lease_token = "not-the-token".into();
    let fenced = store
        .complete_taking(&forged, &owner(), NO_CAP, LEASE_MS, 20)
        .await;
    assert!(fenced.unwrap().is_none());
    assert_eq!(status_of(&store, &b).await.1[1].1, "pending");
    let gpu_only = conveyor_store::Owner {
        name: RUNNER.into(),
        fleets: vec!["gpu".into()],
    };
    let (effects, next) = store
        .complete_taking(&taking(&spec, "8"), &gpu_only, NO_CAP, LEASE_MS, 60)
        .await
        .unwrap()
        .expect("not fenced");
    assert!(next.is_none());
    assert_eq!(dispatched(&store, &b, &effects).await, ["test"]);
    assert_eq!(status_of(&store, &b).await.1[1].1, "queued");
    // A failed job's retry is not the runner's to take: any runner may run it.
    let test = claim(&store, &run_id(&store, &b, "test").await, 1)
        .await
        .unwrap();
    let mut failed = done(&test, Outcome::Failed, &[]);
    failed.take_next = true;
    let (effects, next) = store
        .complete_taking(&failed, &owner(), NO_CAP, LEASE_MS, 70)
        .await
        .unwrap()
        .expect("not fenced");
    assert!(next.is_none());
    assert_eq!(dispatched(&store, &b, &effects).await, ["test"]);
    assert_eq!(effects.dispatch[0].msg.attempt, 2);
}

/// A completion replayed because its answer was lost (the first one committed) is answered
/// with the job run the first one took, under a new lease token, and nothing else; once
/// that job run has moved on, or for another runner, a replay is fenced out as usual.
pub async fn a_replayed_completion_gets_the_job_run_the_first_one_took(store: Arc<dyn Store>) {
    let (_, spec) = shop_with_build_claimed(&store).await;
    let first = taking(&spec, "7");
    let (_, next) = store
        .complete_taking(&first, &owner(), NO_CAP, LEASE_MS, 20)
        .await
        .unwrap()
        .expect("not fenced");
    let next = next.expect("test was readied");
    let (next, next_was_replayed) = (next.spec, next.replayed);
    let (effects, again) = store
        .complete_taking(&first, &owner(), NO_CAP, LEASE_MS, 25)
        .await
        .unwrap()
        .expect("answered, not fenced");
    assert!(effects.dispatch.is_empty() && effects.finished.is_empty());
    let again = again.expect("the same job run");
    assert!(again.replayed && !next_was_replayed);
    let again = again.spec;
    assert_eq!(
        (&again.lease.job_run_id, again.lease.attempt),
        (&next.lease.job_run_id, next.lease.attempt)
    );
    assert_ne!(
        again.lease.lease_token, next.lease.lease_token,
        "a new token"
    );
    assert_eq!(again.env, next.env);
    let stale = store.heartbeat(&next.lease, RUNNER, LEASE_MS, 26).await;
    assert!(
        stale.unwrap().is_none(),
        "the first answer's lease is fenced out"
    );
    let next = again;
    let stranger = conveyor_store::Owner {
        name: "r2".into(),
        fleets: vec!["default".into()],
    };
    let other = store.complete_taking(&first, &stranger, NO_CAP, LEASE_MS, 26);
    assert!(other.await.unwrap().is_none(), "another runner's replay");
    let ended = done(&next, Outcome::Succeeded, &[]);
    assert!(store.complete(&ended, RUNNER, 30).await.unwrap().is_some());
    let me = owner();
    let late = store.complete_taking(&first, &me, NO_CAP, LEASE_MS, 40);
    assert!(
        late.await.unwrap().is_none(),
        "the taken job run has moved on"
    );
}
