//! What the store keeps within bounds: a job's log up to its cap per attempt, with one
//! marker line, even when batches arrive at once; and dashboard sessions, live until they
//! are ended or expire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_core::protocol::{JobSpec, LogBatch, LogLine, Stream};
use conveyor_store::{Store, truncation_marker};

use crate::flow::*;

fn batch(spec: &JobSpec, seq: u64, texts: &[&str]) -> LogBatch {
    LogBatch {
        lease: spec.lease.clone(),
        seq,
        lines: texts
            .iter()
            .map(|t| LogLine {
                stream: Stream::Stdout,
                text: t.to_string(),
                labels: Default::default(),
                at: None,
            })
            .collect(),
    }
}

async fn texts(store: &Arc<dyn Store>, id: &str) -> Vec<(u32, String, String)> {
    let rows = store.logs(id, 0, 1000).await.unwrap();
    rows.into_iter()
        .map(|r| (r.attempt, r.stream, r.text))
        .collect()
}

pub async fn a_log_past_its_cap_ends_in_one_marker_line_and_the_next_attempt_starts_afresh(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let id = run_id(&store, &b, "lint").await;
    let spec = claim(&store, &id, 1).await.unwrap();
    let cap = 10;
    let append = |batch: LogBatch| {
        let store = store.clone();
        async move { store.append_logs(&batch, RUNNER, cap, 11).await.unwrap() }
    };
    assert!(append(batch(&spec, 0, &["12345", "678"])).await);
    let crossing = batch(&spec, 1, &["90", "abc", "def"]);
    assert!(append(crossing.clone()).await);
    assert!(append(crossing).await, "a resent batch is accepted");
    assert!(
        append(batch(&spec, 2, &["x"])).await,
        "past the cap, lines are dropped"
    );
    let marker = truncation_marker(cap);
    assert_eq!(marker, "… log truncated at 10 bytes: the rest was dropped");
    let out = |t: &str| (1, "stdout".to_string(), t.to_string());
    assert_eq!(
        texts(&store, &id).await,
        [
            out("12345"),
            out("678"),
            out("90"),
            (1, "system".into(), marker.clone())
        ]
    );
    // A new attempt has a log (and a cap) of its own.
    store.release(&spec.lease, RUNNER, 3, 12).await.unwrap();
    let again = claim(&store, &id, 2).await.unwrap();
    assert!(append(batch(&again, 0, &["0123456789"])).await);
    let logs = texts(&store, &id).await;
    assert_eq!(logs[4], (2, "stdout".into(), "0123456789".into()));
    assert_eq!(logs.len(), 5);
}

pub async fn batches_arriving_at_once_never_store_past_the_cap(store: Arc<dyn Store>) {
    setup(&store).await;
    // Each round a fresh build: a new interleaving of eight batches of 40 bytes each.
    for _ in 0..20 {
        let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
        let id = run_id(&store, &b, "lint").await;
        let spec = claim(&store, &id, 1).await.unwrap();
        let cap = 95;
        let tasks: Vec<_> = (0..8)
            .map(|seq| {
                let (store, batch) = (store.clone(), batch(&spec, seq, &["0123456789"; 4]));
                tokio::spawn(async move { store.append_logs(&batch, RUNNER, cap, 11).await })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().unwrap());
        }
        let logs = texts(&store, &id).await;
        let stored: usize = logs
            .iter()
            .filter(|(_, stream, _)| stream == "stdout")
            .map(|(_, _, t)| t.len())
            .sum();
        assert_eq!(stored, 90, "nine whole lines fit in 95 bytes");
        let markers = logs.iter().filter(|(_, s, _)| s == "system").count();
        assert_eq!(markers, 1);
    }
}

pub async fn a_session_is_live_until_it_is_ended_or_expires(store: Arc<dyn Store>) {
    store.start_session("h1", 100, 10).await.unwrap();
    store.start_session("h2", 100, 10).await.unwrap();
    assert!(store.session_live("h1", 50).await.unwrap());
    assert!(!store.session_live("h1", 100).await.unwrap(), "expired");
    assert!(!store.session_live("nobody", 50).await.unwrap());
    assert!(store.end_session("h1").await.unwrap());
    assert!(!store.session_live("h1", 50).await.unwrap(), "signed out");
    assert!(!store.end_session("h1").await.unwrap(), "once");
    assert!(store.session_live("h2", 50).await.unwrap(), "others stay");
    // Starting one forgets the expired ones.
    store.start_session("h3", 400, 200).await.unwrap();
    assert!(!store.end_session("h2").await.unwrap());
    assert!(store.session_live("h3", 300).await.unwrap());
}
