//! History at scale: keyset pages that stay stable while builds are added, filters by
//! belt, ref and trigger, and each belt's latest build per state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_store::{BuildFilter, Store, cursor_of};

use crate::flow::*;

fn shop_page(before: Option<String>) -> BuildFilter {
    BuildFilter {
        product: Some("shop".into()),
        before,
        limit: Some(3),
        ..Default::default()
    }
}

pub async fn pages_are_stable_while_builds_are_added(store: Arc<dyn Store>) {
    setup(&store).await;
    let mut made = Vec::new();
    // Two builds share each creation time: the id breaks the tie.
    for t in [10, 11, 11, 12, 12, 13, 14] {
        made.push(
            store
                .create_build(&manual("shop", "ci"), t)
                .await
                .unwrap()
                .0,
        );
    }
    store
        .create_build(&manual("deploy", "release"), 12)
        .await
        .unwrap();
    let first = store.builds(&shop_page(None)).await.unwrap();
    assert_eq!(first.len(), 3);
    assert!(
        first.iter().all(|b| !b.jobs.is_empty()),
        "each build has its jobs"
    );
    let mut seen: Vec<String> = first.iter().map(|b| b.id.clone()).collect();
    let mut cursor = first.last().map(cursor_of);
    // A build added while someone pages does not shift the older pages.
    store.create_build(&manual("shop", "ci"), 20).await.unwrap();
    while let Some(c) = cursor {
        let page = store.builds(&shop_page(Some(c))).await.unwrap();
        seen.extend(page.iter().map(|b| b.id.clone()));
        cursor = (page.len() == 3).then(|| cursor_of(page.last().unwrap()));
    }
    let all = store
        .builds(&BuildFilter {
            product: Some("shop".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let expected: Vec<String> = all.iter().skip(1).map(|b| b.id.clone()).collect();
    assert_eq!(seen, expected, "every older build once, newest first");
    assert_eq!(seen.len(), made.len());
    let times: Vec<i64> = all.iter().map(|b| b.created_at).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
}

pub async fn lists_filter_by_belt_ref_and_trigger(store: Arc<dyn Store>) {
    setup(&store).await;
    let mut on_main = manual("shop", "ci");
    on_main.git_ref = Some("refs/heads/main".into());
    let (main_build, _) = store.create_build(&on_main, 5).await.unwrap();
    store.create_build(&manual("shop", "ci"), 6).await.unwrap();
    store
        .create_build(&manual("deploy", "release"), 7)
        .await
        .unwrap();
    let count = |f: BuildFilter| {
        let store = store.clone();
        async move { store.builds(&f).await.unwrap() }
    };
    let by_branch = count(BuildFilter {
        git_ref: Some("main".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        by_branch.iter().map(|b| b.id.clone()).collect::<Vec<_>>(),
        [main_build]
    );
    let by_belt = count(BuildFilter {
        belt: Some("release".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_belt.len(), 1);
    assert_eq!(by_belt[0].product, "deploy");
    let manual_ones = count(BuildFilter {
        trigger: Some("manual".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(manual_ones.len(), 3);
    let webhooks = count(BuildFilter {
        trigger: Some("webhook".into()),
        ..Default::default()
    })
    .await;
    assert!(webhooks.is_empty());
}

pub async fn a_belts_latest_build_per_state_is_found_however_old(store: Arc<dyn Store>) {
    setup(&store).await;
    let (old, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    store.cancel_build(&old, 6).await.unwrap();
    for t in 10..70 {
        store.create_build(&manual("shop", "ci"), t).await.unwrap();
    }
    let (newest, _) = store.create_build(&manual("shop", "ci"), 99).await.unwrap();
    let latest = store
        .latest_by_state("shop", &["ci".to_string()])
        .await
        .unwrap();
    let mut found: Vec<(String, String)> = latest
        .iter()
        .map(|b| (b.status.clone(), b.id.clone()))
        .collect();
    found.sort();
    let running = latest.iter().find(|b| b.status != "cancelled").unwrap();
    assert_eq!(running.id, newest);
    assert!(found.contains(&("cancelled".to_string(), old)), "{found:?}");
    assert_eq!(found.len(), 2, "one per state: {found:?}");
    assert!(store.latest_by_state("shop", &[]).await.unwrap().is_empty());
    let per_product = store.latest_of_products().await.unwrap();
    let ids: Vec<(String, String)> = per_product
        .iter()
        .map(|b| (b.product.clone(), b.id.clone()))
        .collect();
    assert_eq!(
        ids,
        [("shop".to_string(), newest)],
        "deploy has no build yet"
    );
}

pub async fn products_are_found_by_their_repositorys_key(store: Arc<dyn Store>) {
    setup(&store).await;
    let mut shop = conveyor_store::testing::product(
        "product: web\nbelts:\n  - name: ci\n    jobs:\n      - name: j\n        commands: 'true'\n",
    );
    shop.repo = Some(" https://Git.Example/Team/Web.git/ ".into());
    store.put_product(&shop, 2).await.unwrap();
    let key = "https://git.example/team/web".to_string();
    let found = store.products_of_repos(&[key]).await.unwrap();
    assert_eq!(
        found.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["web"]
    );
    let other = store
        .products_of_repos(&["https://git.example/team/webs".into()])
        .await
        .unwrap();
    assert!(other.is_empty());
    assert!(store.products_of_repos(&[]).await.unwrap().is_empty());
    store.ping().await.unwrap();
}

/// The chain walked one build at a time, as the build page did before `build_chain`.
async fn chain_step_by_step(store: &Arc<dyn Store>, id: &str) -> (Vec<String>, Vec<String>) {
    let mut upstream = Vec::new();
    let mut at = store.build(id).await.unwrap().unwrap().upstream_build_id;
    while let Some(up) = at {
        let Some(b) = store.build(&up).await.unwrap() else {
            break;
        };
        upstream.push(b.id);
        at = b.upstream_build_id;
    }
    let (mut downstream, mut level) = (Vec::new(), vec![id.to_string()]);
    while !level.is_empty() {
        let mut next = Vec::new();
        for parent in &level {
            next.extend(store.downstream_builds(parent).await.unwrap());
        }
        next.sort();
        downstream.extend(next.iter().cloned());
        level = next;
    }
    (upstream, downstream)
}

fn ids(builds: &[conveyor_store::BuildView]) -> Vec<String> {
    builds.iter().map(|b| b.id.clone()).collect()
}

pub async fn a_builds_chain_is_read_in_two_statements_as_walked_one_by_one(store: Arc<dyn Store>) {
    use conveyor_core::protocol::Outcome;
    setup(&store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let mut fired = Vec::new();
    for job in ["build", "lint", "test", "package"] {
        fired = finish(&store, &b, job, Outcome::Succeeded, &[])
            .await
            .created;
    }
    assert_eq!(fired.len(), 1, "shop fires deploy");
    let up = store.build_chain(&fired[0], 32, 100).await.unwrap();
    assert_eq!(
        (ids(&up.upstream), ids(&up.downstream)),
        (vec![b.clone()], vec![])
    );
    let down = store.build_chain(&b, 32, 100).await.unwrap();
    assert_eq!(
        (ids(&down.upstream), ids(&down.downstream)),
        (vec![], fired.clone())
    );
    assert_eq!(down.downstream[0].product, "deploy");
    assert_eq!(
        down.downstream[0].upstream_build_id.as_deref(),
        Some(b.as_str())
    );
    assert!(down.downstream[0].jobs.is_empty(), "without their jobs");
    let none = store.build_chain(&b, 32, 0).await.unwrap();
    assert!(
        none.downstream.is_empty(),
        "at most `limit` downstream builds"
    );
    assert!(store.build_chain("no-such-build", 32, 100).await.unwrap() == Default::default());

    seeded_chains_match_the_walk(&store).await;
}

/// A seeded history's chains (builds fired by upstream builds) read as walked one by one.
async fn seeded_chains_match_the_walk(store: &Arc<dyn Store>) {
    let products = store.products().await.unwrap();
    let plan = conveyor_store::seed::SeedPlan {
        builds: 200,
        start_ms: 1_000,
        spacing_ms: 10,
        log_every: 0,
        log_lines: 0,
        seed: 5,
    };
    store.seed_builds(&products, &plan).await.unwrap();
    let all = newest_500(store).await;
    let mut linked = 0;
    for build in &all {
        let chain = store.build_chain(&build.id, 1_000, 1_000).await.unwrap();
        let walked = chain_step_by_step(store, &build.id).await;
        assert_eq!((ids(&chain.upstream), ids(&chain.downstream)), walked);
        linked += usize::from(!chain.upstream.is_empty());
        // `depth` bounds each way.
        let near = store.build_chain(&build.id, 1, 1_000).await.unwrap();
        assert_eq!(
            ids(&near.upstream),
            walked.0.into_iter().take(1).collect::<Vec<_>>()
        );
        assert!(
            near.downstream
                .iter()
                .all(|d| d.upstream_build_id.as_deref() == Some(&build.id))
        );
    }
    assert!(linked > 0, "the seed links some builds");
}
