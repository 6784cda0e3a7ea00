//! A runner's own token names it: it claims only job runs of the fleets it registered for,
//! and heartbeats, logs, completes and hands back only its own leases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_core::protocol::{ClaimRequest, LogBatch, LogLine, Outcome, Stream};
use conveyor_store::{Owner, Store};

use crate::flow::*;

pub async fn a_runner_claims_only_job_runs_of_its_fleets(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let build = run_id(&store, &b, "build").await;
    let req = ClaimRequest {
        job_run_id: build.clone(),
        attempt: 1,
        runner: "gpu-1".into(),
    };
    let gpu_only = Owner {
        name: "gpu-1".into(),
        fleets: vec!["gpu".into()],
    };
    assert!(
        store
            .claim(&req, &gpu_only, LEASE_MS, 10)
            .await
            .unwrap()
            .is_none()
    );
    let job = store.job_run(&build).await.unwrap().unwrap();
    assert_eq!((job.status.as_str(), job.runner), ("queued", None));
    assert!(
        claim(&store, &build, 1).await.is_some(),
        "its own fleet's runner still can"
    );
}

pub async fn another_runner_cannot_touch_a_lease_that_is_not_its_own(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let build = run_id(&store, &b, "build").await;
    let spec = claim(&store, &build, 1).await.unwrap();
    let thief = "r2";
    let batch = LogBatch {
        lease: spec.lease.clone(),
        seq: 0,
        lines: vec![LogLine {
            stream: Stream::Stdout,
            text: "forged".into(),
            labels: Default::default(),
            at: None,
        }],
    };
    let forged = done(&spec, Outcome::Succeeded, &[("VERSION", "6.6.6")]);
    assert!(
        store
            .heartbeat(&spec.lease, thief, LEASE_MS, 11)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.append_logs(&batch, thief, NO_CAP, 11).await.unwrap());
    assert!(store.complete(&forged, thief, 12).await.unwrap().is_none());
    assert!(
        store
            .release(&spec.lease, thief, 3, 12)
            .await
            .unwrap()
            .is_none()
    );
    let job = store.job_run(&build).await.unwrap().unwrap();
    assert_eq!((job.status.as_str(), job.attempts), ("running", 1));
    assert!(store.logs(&build, 0, 10).await.unwrap().is_empty());
    // The owner's calls still hold.
    assert_eq!(
        store
            .heartbeat(&spec.lease, RUNNER, LEASE_MS, 13)
            .await
            .unwrap(),
        Some(false)
    );
    let ok = done(&spec, Outcome::Succeeded, &[("VERSION", "1.2")]);
    assert!(store.complete(&ok, RUNNER, 14).await.unwrap().is_some());
}

pub async fn a_handed_back_job_run_is_queued_again_at_once_as_a_lost_attempt(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let build = run_id(&store, &b, "build").await;
    let spec = claim(&store, &build, 1).await.unwrap();
    let effects = store
        .release(&spec.lease, RUNNER, 3, 11)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(effects.dispatch.len(), 1);
    assert_eq!(effects.dispatch[0].msg.attempt, 2);
    let job = store.job_run(&build).await.unwrap().unwrap();
    assert_eq!(
        (job.status.as_str(), job.attempts, job.runner),
        ("queued", 2, None)
    );
    assert!(
        store
            .release(&spec.lease, RUNNER, 3, 12)
            .await
            .unwrap()
            .is_none(),
        "once"
    );
    // Handed back more often than a runner may be lost, it fails like a lost job.
    for attempt in 2..=3 {
        let spec = claim(&store, &build, attempt).await.unwrap();
        store
            .release(&spec.lease, RUNNER, 3, 13)
            .await
            .unwrap()
            .unwrap();
    }
    let spec = claim(&store, &build, 4).await.unwrap();
    store
        .release(&spec.lease, RUNNER, 3, 14)
        .await
        .unwrap()
        .unwrap();
    let job = store.job_run(&build).await.unwrap().unwrap();
    assert_eq!(job.status, "failed");
    assert_eq!(job.error.as_deref(), Some("lost its runner 4 times"));
}

pub async fn a_lease_renewed_when_due_is_only_read_until_a_third_of_it_is_spent(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let spec = claim(&store, &run_id(&store, &b, "lint").await, 1)
        .await
        .unwrap();
    let claimed_until = 10 + LEASE_MS;
    let renew = |lease, when_due, now| {
        let store = store.clone();
        async move {
            store
                .renew(&lease, RUNNER, LEASE_MS, when_due, now)
                .await
                .unwrap()
        }
    };
    // More than two thirds left: read, not renewed.
    let held = renew(spec.lease.clone(), true, 9 + LEASE_MS / 3)
        .await
        .unwrap();
    assert_eq!((held.cancel, held.expires_at), (false, claimed_until));
    // No more than that left: renewed for the whole lease from now.
    let now = 10 + LEASE_MS / 3;
    let held = renew(spec.lease.clone(), true, now).await.unwrap();
    assert_eq!(held.expires_at, now + LEASE_MS);
    // Renewing at once moves it however much is left.
    let held = renew(spec.lease.clone(), false, now + 1).await.unwrap();
    assert_eq!(held.expires_at, now + 1 + LEASE_MS);
    // The read is fenced as the renewal is.
    let mut forged = spec.lease.clone();
    forged.lease_token = "not-the-token".into();
    assert_eq!(renew(forged, true, now + 2).await, None);
    // A cancel reaches the job through a renewal that only reads.
    store.cancel_build(&b, now + 3).await.unwrap();
    let held = renew(spec.lease.clone(), true, now + 4).await.unwrap();
    assert_eq!((held.cancel, held.expires_at), (true, now + 1 + LEASE_MS));
}
