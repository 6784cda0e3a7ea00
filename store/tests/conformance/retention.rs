//! Retention: finished builds past every keep rule go, in batches, with their job runs and
//! log lines; a belt's latest build per state and every unfinished build stay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_core::protocol::{LogBatch, LogLine, Stream};
use conveyor_store::{Retention, Store};

use crate::flow::*;

async fn sweep_all(store: &Arc<dyn Store>, r: &Retention, now: i64) -> Vec<u64> {
    let mut batches = Vec::new();
    loop {
        let swept = store.sweep(r, now, 4).await.unwrap();
        batches.push(swept.builds);
        if swept.builds == 0 {
            return batches;
        }
    }
}

/// A log line of job `lint` of `build`; the job run's id.
async fn one_log_line(store: &Arc<dyn Store>, build: &str) -> String {
    let lint = run_id(store, build, "lint").await;
    let spec = claim(store, &lint, 1).await.unwrap();
    let line = LogLine {
        stream: Stream::Stdout,
        text: "kept".into(),
        labels: Default::default(),
        at: None,
    };
    let batch = LogBatch {
        lease: spec.lease.clone(),
        seq: 0,
        lines: vec![line],
    };
    assert!(store.append_logs(&batch, RUNNER, NO_CAP, 2).await.unwrap());
    lint
}

async fn ids(store: &Arc<dyn Store>) -> Vec<String> {
    let all = store.builds(&Default::default()).await.unwrap();
    all.into_iter().map(|b| b.id).collect()
}

pub async fn retention_keeps_the_last_builds_the_young_and_each_states_latest(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (running, _) = store.create_build(&manual("shop", "ci"), 1).await.unwrap();
    let mut cancelled = Vec::new();
    for t in 10..20 {
        let (id, _) = store.create_build(&manual("shop", "ci"), t).await.unwrap();
        store.cancel_build(&id, t).await.unwrap();
        cancelled.push(id);
    }
    let lint = one_log_line(&store, &running).await;
    let first_job = store.build(&cancelled[0]).await.unwrap().unwrap().jobs[0]
        .id
        .clone();
    let none = Retention::default();
    assert_eq!(store.sweep(&none, 1_000, 100).await.unwrap().builds, 0);

    let last3 = Retention {
        keep_last: Some(3),
        ..Default::default()
    };
    assert_eq!(sweep_all(&store, &last3, 1_000).await, [4, 3, 0]);
    let left = ids(&store).await;
    assert_eq!(
        left,
        [&cancelled[9], &cancelled[8], &cancelled[7], &running].map(String::clone),
        "the last three and the unfinished build"
    );
    assert!(
        store.job_run(&first_job).await.unwrap().is_none(),
        "its job runs went too"
    );
    assert_eq!(
        store.logs(&lint, 0, 10).await.unwrap().len(),
        1,
        "the unfinished build keeps its log"
    );

    let young = Retention {
        max_age_ms: Some(50),
        ..Default::default()
    };
    assert_eq!(
        sweep_all(&store, &young, 60).await,
        [0],
        "everything is younger than 50 ms at t=60"
    );
    assert_eq!(sweep_all(&store, &young, 1_000).await, [2, 0]);
    let left = ids(&store).await;
    assert_eq!(
        left,
        [&cancelled[9], &running].map(String::clone),
        "the belt's latest cancelled build stays, however old"
    );
}
