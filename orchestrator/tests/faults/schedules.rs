//! `schedule:` triggers across orchestrators: two `conveyor serve` nodes on one Postgres see
//! every tick of a two-second schedule and create one build per tick between them; stopped
//! for several ticks, the schedule catches up with one build, not one per missed tick.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::{ADMIN, Cluster, SERIAL, now_ms};

const PRODUCT: &str = "product: sched
triggers:
  - schedule:
      cron: \"*/2 * * * * *\"
      belts: [nightly]
belts:
  - name: nightly
    jobs:
      - name: report
        commands: echo tick
";

/// The ticks of the schedule's builds, one entry per build.
async fn ticks(c: &Cluster, url: &str) -> Vec<i64> {
    let v: Value = c
        .http
        .get(format!("{url}/api/v1/builds?product=sched&limit=500"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let builds = v["builds"].as_array().cloned().unwrap_or_default();
    builds
        .iter()
        .map(|b| {
            assert_eq!(b["trigger"]["kind"], "schedule", "{b}");
            assert_eq!(b["belt"], "nightly", "{b}");
            b["trigger"]["tick"].as_i64().unwrap()
        })
        .collect()
}

fn assert_once_each(ticks: &[i64]) {
    let distinct: BTreeSet<i64> = ticks.iter().copied().collect();
    assert_eq!(distinct.len(), ticks.len(), "a tick built twice: {ticks:?}");
    for t in ticks {
        assert_eq!(t % 2000, 0, "not a tick of */2: {t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_orchestrators_build_each_tick_once_and_catch_up_once() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::new("redis://127.0.0.1:6379").await;
    let (mut a, a_url) = c.serve().await;
    let (mut b, _b_url) = c.serve().await;
    let registered = now_ms();
    c.product(&a_url, PRODUCT).await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let seen = ticks(&c, &a_url).await;
    assert_once_each(&seen);
    assert!(seen.len() >= 3, "ticks in 9 s of a 2 s schedule: {seen:?}");
    assert!(
        seen.iter().all(|t| *t > registered),
        "a tick from before the schedule existed: {seen:?}"
    );

    // Both stopped across several ticks; one comes back.
    for p in [&mut a, &mut b] {
        p.0.kill().unwrap();
        let _ = p.0.wait();
    }
    let stopped = now_ms();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let restarted = now_ms();
    let (_a2, a2_url) = c.serve().await;
    c.until("the missed ticks are caught up", || async {
        ticks(&c, &a2_url).await.iter().any(|t| *t > stopped)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = ticks(&c, &a2_url).await;
    assert_once_each(&after);
    // Ticks that fell while both were down (up to the moment the restart began) are built
    // at most once, and never an older one than the latest: the first build after the stop
    // is the catch-up (or, if the restart was slow, the first tick after it).
    let mut since: Vec<i64> = after.iter().copied().filter(|t| *t > stopped).collect();
    since.sort_unstable();
    let missed = since.iter().filter(|t| **t <= restarted).count();
    assert!(
        missed <= 1,
        "the missed ticks built more than once: {since:?}"
    );
    assert!(
        since.first().is_some_and(|first| *first > restarted - 2000),
        "the catch-up builds the latest missed tick, not an older one: {since:?} (down {stopped}..{restarted})"
    );
    assert!(
        since.len() >= 2 && after.iter().any(|t| *t > restarted),
        "the schedule goes on after the catch-up: {after:?}"
    );
}
