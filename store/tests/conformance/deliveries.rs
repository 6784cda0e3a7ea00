//! A webhook delivery is recorded with the builds it starts, in one transaction: all of it,
//! or nothing (so the forge's redelivery builds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_store::{BuildTrigger, Delivery, NewBuild, PlannedBuild, Store};

use crate::flow::*;

fn pushed(belt: &str) -> NewBuild {
    NewBuild {
        resource: None,
        trigger: BuildTrigger::Webhook {
            forge: "github".into(),
            git_ref: "refs/heads/main".into(),
            repository: Some("acme/shop".into()),
        },
        git_ref: Some("refs/heads/main".into()),
        sha: Some("a".repeat(40)),
        ..manual("shop", belt)
    }
}

fn delivery(id: &str, store_head: bool, builds: Vec<PlannedBuild>) -> Delivery {
    let mut shop = conveyor_store::testing::product(SHOP);
    shop.head_sha = Some("a".repeat(40));
    Delivery {
        forge: "github".into(),
        id: id.into(),
        heads: if store_head { vec![shop] } else { vec![] },
        builds,
    }
}

pub async fn a_delivery_is_recorded_with_its_builds_and_a_replay_writes_nothing(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let planned = vec![
        PlannedBuild::Run(pushed("ci")),
        PlannedBuild::ConfigError {
            build: pushed("ci"),
            error: "bad".into(),
        },
    ];
    let d = delivery("d-1", true, planned);
    let (ids, effects) = store.accept_delivery(&d, 7).await.unwrap().unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(effects.created, ids);
    assert_eq!(effects.report, ids, "both builds report to the forge");
    let (first, second) = (
        store.build(&ids[0]).await.unwrap().unwrap(),
        store.build(&ids[1]).await.unwrap().unwrap(),
    );
    assert_eq!((first.number, first.status.as_str()), (1, "running"));
    assert_eq!(
        (
            second.number,
            second.status.as_str(),
            second.error.as_deref()
        ),
        (2, "config_error", Some("bad"))
    );
    let head = store.product("shop").await.unwrap().unwrap().head_sha;
    assert_eq!(head, Some("a".repeat(40)));
    assert!(store.accept_delivery(&d, 8).await.unwrap().is_none());
    assert_eq!(store.builds(&Default::default()).await.unwrap().len(), 2);
}

pub async fn a_delivery_that_fails_half_way_records_nothing_and_its_redelivery_builds(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let broken = vec![
        PlannedBuild::Run(pushed("ci")),
        PlannedBuild::Run(pushed("no-such-belt")),
    ];
    assert!(
        store
            .accept_delivery(&delivery("d-2", true, broken), 7)
            .await
            .is_err()
    );
    assert!(store.builds(&Default::default()).await.unwrap().is_empty());
    assert_eq!(store.product("shop").await.unwrap().unwrap().head_sha, None);
    let again = delivery("d-2", true, vec![PlannedBuild::Run(pushed("ci"))]);
    let (ids, _) = store.accept_delivery(&again, 8).await.unwrap().unwrap();
    assert_eq!(store.build(&ids[0]).await.unwrap().unwrap().number, 1);
}
