//! Races that hunt double settlements: two calls that end one lease, started together on a
//! multi-threaded runtime, many times over. Whatever the interleaving, exactly one of them
//! settles the attempt, the build finishes once, and no statement deadlocks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_core::protocol::{ClaimRequest, JobSpec, Outcome};
use conveyor_store::{Effects, Owner, Store};

use crate::flow::*;

/// Rounds per race: each is a fresh build, so every round is a new interleaving.
pub const ROUNDS: usize = 40;

const RACE: &str = "product: race
belts:
  - name: one
    jobs:
      - name: a
        commands: 'true'
      - name: b
        needs: [a]
        commands: 'true'
";

async fn put_race(store: &Arc<dyn Store>) {
    let race = conveyor_store::testing::product(RACE);
    store.put_product(&race, 1).await.unwrap();
}

/// A build of `race` whose job `a` is claimed by `r1` at time 10.
async fn started(store: &Arc<dyn Store>) -> (String, JobSpec) {
    let (build, _) = store.create_build(&manual("race", "one"), 5).await.unwrap();
    let a = run_id(store, &build, "a").await;
    let spec = claim(store, &a, 1).await.expect("claimable");
    (build, spec)
}

/// Runs two calls at the same moment on two tasks.
pub async fn together<A, B, FA, FB>(a: FA, b: FB) -> (A, B)
where
    FA: Future<Output = A> + Send + 'static,
    FB: Future<Output = B> + Send + 'static,
    A: Send + 'static,
    B: Send + 'static,
{
    let gate = Arc::new(tokio::sync::Barrier::new(2));
    let (ga, gb) = (gate.clone(), gate);
    let ta = tokio::spawn(async move {
        ga.wait().await;
        a.await
    });
    let tb = tokio::spawn(async move {
        gb.wait().await;
        b.await
    });
    (ta.await.unwrap(), tb.await.unwrap())
}

fn dispatches_of(effects: &[&Effects], run: &str) -> usize {
    effects
        .iter()
        .flat_map(|e| &e.dispatch)
        .filter(|d| d.msg.job_run_id == run)
        .count()
}

fn finishes_of(effects: &[&Effects], build: &str) -> usize {
    effects
        .iter()
        .flat_map(|e| &e.finished)
        .filter(|b| *b == build)
        .count()
}

pub async fn two_completions_of_one_lease_settle_it_once(store: Arc<dyn Store>) {
    put_race(&store).await;
    for _ in 0..ROUNDS {
        let (build, spec) = started(&store).await;
        let (s1, s2) = (store.clone(), store.clone());
        let ok = done(&spec, Outcome::Succeeded, &[]);
        let bad = done(&spec, Outcome::Failed, &[]);
        let (x, y) = together(
            async move { s1.complete(&ok, RUNNER, 20).await.unwrap() },
            async move { s2.complete(&bad, RUNNER, 20).await.unwrap() },
        )
        .await;
        assert!(x.is_some() != y.is_some(), "exactly one completion settles");
        let (status, jobs) = status_of(&store, &build).await;
        let b_run = run_id(&store, &build, "b").await;
        let effects: Vec<&Effects> = x.iter().chain(y.iter()).collect();
        if x.is_some() {
            assert_eq!(jobs[0].1, "succeeded");
            assert_eq!(dispatches_of(&effects, &b_run), 1);
            assert_eq!(status, "running");
        } else {
            assert_eq!(
                jobs,
                [
                    ("a".into(), "failed".into()),
                    ("b".into(), "skipped".into())
                ]
            );
            assert_eq!(
                (status.as_str(), finishes_of(&effects, &build)),
                ("failed", 1)
            );
        }
    }
}

pub async fn a_completion_and_a_reap_of_the_expired_lease_settle_it_once(store: Arc<dyn Store>) {
    put_race(&store).await;
    for _ in 0..ROUNDS {
        let (build, spec) = started(&store).await;
        let a = spec.lease.job_run_id.clone();
        let (s1, s2) = (store.clone(), store.clone());
        let ok = done(&spec, Outcome::Succeeded, &[]);
        let after_expiry = 10 + LEASE_MS + 1;
        let (completed, reaped) = together(
            async move { s1.complete(&ok, RUNNER, after_expiry).await.unwrap() },
            async move { s2.reap(after_expiry, 3).await.unwrap() },
        )
        .await;
        let requeued = dispatches_of(&[&reaped], &a);
        let job = store.job_run(&a).await.unwrap().unwrap();
        match completed {
            Some(_) => {
                assert_eq!(requeued, 0, "a settled job is not re-queued");
                assert_eq!((job.status.as_str(), job.attempts), ("succeeded", 1));
            }
            None => {
                assert_eq!(
                    requeued, 1,
                    "the reaper re-queues what the completion did not settle"
                );
                assert_eq!((job.status.as_str(), job.attempts), ("queued", 2));
            }
        }
        assert_eq!(status_of(&store, &build).await.0, "running");
    }
}

pub async fn a_completion_and_a_cancel_at_once_finish_the_build_once(store: Arc<dyn Store>) {
    put_race(&store).await;
    for _ in 0..ROUNDS {
        let (build, spec) = started(&store).await;
        let (s1, s2, id) = (store.clone(), store.clone(), build.clone());
        let ok = done(&spec, Outcome::Succeeded, &[]);
        let (completed, cancelled) = together(
            async move { s1.complete(&ok, RUNNER, 20).await.unwrap() },
            async move { s2.cancel_build(&id, 20).await.unwrap() },
        )
        .await;
        let completed = completed.expect("a live lease completes, cancel or not");
        let cancelled = cancelled.expect("the build exists");
        let (status, jobs) = status_of(&store, &build).await;
        assert_eq!(status, "cancelled");
        assert_eq!(
            jobs,
            [
                ("a".into(), "succeeded".into()),
                ("b".into(), "cancelled".into())
            ]
        );
        assert_eq!(finishes_of(&[&completed, &cancelled], &build), 1);
    }
}

pub async fn two_reapers_at_once_requeue_a_lost_job_once(store: Arc<dyn Store>) {
    put_race(&store).await;
    for _ in 0..ROUNDS {
        let (_, spec) = started(&store).await;
        let a = spec.lease.job_run_id.clone();
        let (s1, s2) = (store.clone(), store.clone());
        let after_expiry = 10 + LEASE_MS + 1;
        let (r1, r2) = together(
            async move { s1.reap(after_expiry, 3).await.unwrap() },
            async move { s2.reap(after_expiry, 3).await.unwrap() },
        )
        .await;
        assert_eq!(dispatches_of(&[&r1, &r2], &a), 1);
        let job = store.job_run(&a).await.unwrap().unwrap();
        assert_eq!((job.status.as_str(), job.attempts), ("queued", 2));
    }
}

pub async fn a_hand_back_and_a_completion_at_once_settle_once(store: Arc<dyn Store>) {
    put_race(&store).await;
    for _ in 0..ROUNDS {
        let (_, spec) = started(&store).await;
        let a = spec.lease.job_run_id.clone();
        let (s1, s2, lease) = (store.clone(), store.clone(), spec.lease.clone());
        let ok = done(&spec, Outcome::Succeeded, &[]);
        let (completed, released) = together(
            async move { s1.complete(&ok, RUNNER, 20).await.unwrap() },
            async move { s2.release(&lease, RUNNER, 3, 20).await.unwrap() },
        )
        .await;
        assert!(completed.is_some() != released.is_some());
        let job = store.job_run(&a).await.unwrap().unwrap();
        let expected = if completed.is_some() {
            ("succeeded", 1)
        } else {
            ("queued", 2)
        };
        assert_eq!((job.status.as_str(), job.attempts), expected);
    }
}

pub async fn two_runners_claiming_one_message_get_it_once(store: Arc<dyn Store>) {
    put_race(&store).await;
    for _ in 0..ROUNDS {
        let (build, _) = store.create_build(&manual("race", "one"), 5).await.unwrap();
        let a = run_id(&store, &build, "a").await;
        let claim_as = |name: &str| {
            let store = store.clone();
            let req = ClaimRequest {
                job_run_id: a.clone(),
                attempt: 1,
                runner: name.into(),
            };
            let owner = Owner {
                name: name.into(),
                fleets: vec!["default".into()],
            };
            async move { store.claim(&req, &owner, LEASE_MS, 10).await.unwrap() }
        };
        let (x, y) = together(claim_as("r1"), claim_as("r2")).await;
        assert!(x.is_some() != y.is_some(), "one claim wins");
    }
}
