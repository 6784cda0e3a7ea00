//! What the API and the pages read back: logs, build lists, upstream outputs by selector, a
//! build's edges, a log's tail and one job run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_core::protocol::{Lease, LogBatch, LogLine, Outcome, Stream};
use conveyor_store::Store;

use crate::flow::*;
use conveyor_store::testing as common;

pub async fn log_batches_are_stored_once_and_only_under_a_live_lease(store: Arc<dyn Store>) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let id = run_id(&store, &b, "lint").await;
    let spec = claim(&store, &id, 1).await.unwrap();
    let line = |t: &str| LogLine {
        stream: Stream::Stdout,
        text: t.into(),
        labels: Default::default(),
        at: None,
    };
    let batch = LogBatch {
        lease: spec.lease.clone(),
        seq: 0,
        lines: vec![line("one"), line("two")],
    };
    assert!(store.append_logs(&batch, RUNNER, NO_CAP, 11).await.unwrap());
    assert!(
        store.append_logs(&batch, RUNNER, NO_CAP, 12).await.unwrap(),
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
    assert!(
        !store
            .append_logs(&forged, RUNNER, NO_CAP, 13)
            .await
            .unwrap()
    );
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
    let shop = conveyor_store::BuildFilter {
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
            labels: Default::default(),
            at: None,
        })
        .collect();
    let batch = LogBatch {
        lease: spec.lease.clone(),
        seq: 0,
        lines,
    };
    assert!(store.append_logs(&batch, RUNNER, NO_CAP, 11).await.unwrap());
    let texts =
        |rows: Vec<conveyor_store::LogRow>| rows.into_iter().map(|l| l.text).collect::<Vec<_>>();
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
