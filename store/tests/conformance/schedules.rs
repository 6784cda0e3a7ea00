//! `schedule:` ticks: a schedule first seen starts from then, and a tick fired by several
//! orchestrators at the same moment makes one build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_store::{BuildFilter, BuildTrigger, NewBuild, Store};

const NIGHTLY: &str = "product: nightly
belts:
  - name: b
    jobs:
      - name: a
        commands: 'true'
";

fn at_tick(tick: i64) -> NewBuild {
    NewBuild {
        product: "nightly".into(),
        belt: "b".into(),
        trigger: BuildTrigger::Schedule {
            cron: "* * * * * *".into(),
            tick,
        },
        git_ref: None,
        sha: None,
        model: None,
        resource: None,
        context: None,
    }
}

pub async fn a_schedule_starts_when_first_seen_and_fires_each_tick_once(store: Arc<dyn Store>) {
    let p = conveyor_store::testing::product(NIGHTLY);
    store.put_product(&p, 1).await.unwrap();
    assert_eq!(
        store
            .schedule_last_tick("nightly", "k", 1000)
            .await
            .unwrap(),
        1000
    );
    assert_eq!(
        store
            .schedule_last_tick("nightly", "k", 5000)
            .await
            .unwrap(),
        1000
    );
    assert!(
        store
            .fire_schedule("k", 1000, &at_tick(1000), 1001)
            .await
            .unwrap()
            .is_none()
    );
    let (id, effects) = store
        .fire_schedule("k", 2000, &at_tick(2000), 2001)
        .await
        .unwrap()
        .expect("a later tick fires");
    assert!(effects.created.contains(&id));
    assert!(
        store
            .fire_schedule("k", 2000, &at_tick(2000), 2002)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .schedule_last_tick("nightly", "k", 9000)
            .await
            .unwrap(),
        2000
    );
}

pub async fn a_late_tick_fires_nothing_and_schedules_keep_their_own_ticks(store: Arc<dyn Store>) {
    let p = conveyor_store::testing::product(NIGHTLY);
    store.put_product(&p, 1).await.unwrap();
    store.schedule_last_tick("nightly", "k", 0).await.unwrap();
    assert!(
        store
            .fire_schedule("k", 2000, &at_tick(2000), 2001)
            .await
            .unwrap()
            .is_some()
    );
    // An earlier tick arriving late (a slow orchestrator) fires nothing.
    assert!(
        store
            .fire_schedule("k", 1500, &at_tick(1500), 2003)
            .await
            .unwrap()
            .is_none()
    );
    // Another schedule of the product keeps its own ticks.
    store
        .schedule_last_tick("nightly", "other", 0)
        .await
        .unwrap();
    assert!(
        store
            .fire_schedule("other", 2000, &at_tick(2000), 2004)
            .await
            .unwrap()
            .is_some()
    );
}

/// Rounds of four orchestrators firing the same tick at the same moment.
pub async fn orchestrators_firing_one_tick_at_once_make_one_build(store: Arc<dyn Store>) {
    let p = conveyor_store::testing::product(NIGHTLY);
    store.put_product(&p, 1).await.unwrap();
    store.schedule_last_tick("nightly", "k", 0).await.unwrap();
    const ROUNDS: i64 = 25;
    for round in 1..=ROUNDS {
        let tick = round * 1000;
        let gate = Arc::new(tokio::sync::Barrier::new(4));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (store, gate) = (store.clone(), gate.clone());
                tokio::spawn(async move {
                    gate.wait().await;
                    store
                        .fire_schedule("k", tick, &at_tick(tick), tick + 1)
                        .await
                })
            })
            .collect();
        let mut fired = 0;
        for t in tasks {
            fired += usize::from(t.await.unwrap().unwrap().is_some());
        }
        assert_eq!(fired, 1, "tick {tick} fired {fired} times");
    }
    let filter = BuildFilter {
        product: Some("nightly".into()),
        limit: Some(1000),
        ..Default::default()
    };
    assert_eq!(store.builds(&filter).await.unwrap().len(), ROUNDS as usize);
}

/// The upkeep reads only the products with a `schedule:` trigger, and a product that loses
/// its schedule leaves the list.
pub async fn only_products_with_a_schedule_are_read_for_schedules(store: Arc<dyn Store>) {
    let timed = format!(
        "{}triggers:\n  - schedule:\n    cron: '0 3 * * *'\n",
        NIGHTLY.replace("product: nightly", "product: timed")
    );
    store
        .put_product(&conveyor_store::testing::product(NIGHTLY), 1)
        .await
        .unwrap();
    store
        .put_product(&conveyor_store::testing::product(&timed), 1)
        .await
        .unwrap();
    let names = |ps: Vec<conveyor_store::ProductRecord>| -> Vec<String> {
        ps.into_iter().map(|p| p.name).collect()
    };
    assert_eq!(
        names(store.scheduled_products().await.unwrap()),
        vec!["timed".to_string()]
    );
    let unscheduled = NIGHTLY.replace("product: nightly", "product: timed");
    store
        .put_product(&conveyor_store::testing::product(&unscheduled), 2)
        .await
        .unwrap();
    assert!(store.scheduled_products().await.unwrap().is_empty());
}
