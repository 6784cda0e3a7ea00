//! A seeded history (`conveyor bench --history`, tests of long lists): finished builds of
//! every product and belt, numbered after the product's own, with their job runs, edges and
//! logs, readable as any build is; the engine goes on numbering after them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use conveyor_store::Store;
use conveyor_store::seed::SeedPlan;

use crate::flow::*;

pub async fn a_seeded_history_reads_back_as_finished_builds_with_jobs_edges_and_logs(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let (first, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let products = store.products().await.unwrap();
    let plan = SeedPlan {
        builds: 300,
        start_ms: 1_000,
        spacing_ms: 10,
        log_every: 50,
        log_lines: 7,
        seed: 3,
    };
    let seeded = store.seed_builds(&products, &plan).await.unwrap();
    assert_eq!(seeded.builds, 300);
    assert_eq!(seeded.log_lines, 6 * 7, "every 50th build's first job");
    let all = newest_500(&store).await;
    assert_eq!(all.len(), 301);
    let seeded_builds: Vec<_> = all.iter().filter(|b| b.id != first).collect();
    let jobs: usize = seeded_builds.iter().map(|b| b.jobs.len()).sum();
    assert_eq!(jobs as u64, seeded.job_runs);
    let states: BTreeSet<&str> = seeded_builds.iter().map(|b| b.status.as_str()).collect();
    assert_eq!(
        states,
        BTreeSet::from(["cancelled", "failed", "succeeded"]),
        "a mix of outcomes, all finished"
    );
    let belts: BTreeSet<(&str, &str)> = seeded_builds
        .iter()
        .map(|b| (b.product.as_str(), b.belt.as_str()))
        .collect();
    assert_eq!(belts.len(), 2, "every product's belt: {belts:?}");
    let mut shop: Vec<u64> = all
        .iter()
        .filter(|b| b.product == "shop")
        .map(|b| b.number)
        .collect();
    shop.sort();
    let expected: Vec<u64> = (1..=shop.len() as u64).collect();
    assert_eq!(shop, expected, "numbered after the product's own build");
    let (next, _) = store
        .create_build(&manual("shop", "ci"), 10_000_000)
        .await
        .unwrap();
    let next = store.build(&next).await.unwrap().unwrap();
    assert_eq!(next.number, shop.len() as u64 + 1, "the engine numbers on");
    check_one_shop_build(&store, &seeded_builds).await;
}

/// A seeded build of `shop` has its belt's edges, and its failed job's dependents skipped.
async fn check_one_shop_build(store: &Arc<dyn Store>, builds: &[&conveyor_store::BuildView]) {
    let failed = builds
        .iter()
        .find(|b| b.product == "shop" && b.status == "failed")
        .expect("a failed shop build");
    let edges = store.job_edges(&failed.id).await.unwrap();
    let shop = store.product("shop").await.unwrap().unwrap();
    let belt_edges = shop.model.belts[0].edges.len();
    assert!(belt_edges > 0);
    assert_eq!(edges.len(), belt_edges, "the belt's edges");
    let states: Vec<&str> = failed.jobs.iter().map(|j| j.status.as_str()).collect();
    assert!(states.contains(&"failed"), "{states:?}");
    let mut logged = Vec::new();
    for j in builds.iter().flat_map(|b| &b.jobs) {
        assert_ne!(j.status, "running", "no job is left running");
        if logged.is_empty() {
            logged = store.logs(&j.id, 0, 100).await.unwrap();
        }
    }
    assert_eq!(logged.len(), 7, "a job with a log");
}
