//! Artifacts and caches: files recorded only under a live lease, listed by the current
//! attempt, handed to dependent jobs and downstream products' jobs at claim; caches found by
//! key, then by name, per scope, and evicted least recently used first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_core::protocol::{Lease, Outcome};
use conveyor_store::{Store, StoredFile};

use crate::flow::*;

/// A product fired by `shop` whose job takes `shop`'s `build` job's artifacts.
const PACK: &str = "product: pack
triggers:
  - upstream-build:
      upstream-product: shop
belts:
  - name: p
    jobs:
      - name: take
        inputs: [shop.build]
        commands: 'true'
";

fn file(name: &str, object: &str) -> StoredFile {
    StoredFile {
        name: name.into(),
        size: 3,
        sha256: format!("sha-of-{name}"),
        object: object.into(),
    }
}

pub async fn artifacts_are_recorded_under_a_live_lease_and_reach_dependents_and_downstreams(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let pack = conveyor_store::testing::product(PACK);
    store.put_product(&pack, 1).await.unwrap();
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let build = claim(&store, &run_id(&store, &b, "build").await, 1)
        .await
        .unwrap();
    let info = store.lease_info(&build.lease, RUNNER).await.unwrap();
    assert_eq!(info.unwrap().build_id, b);
    let stranger = Lease {
        lease_token: "forged".into(),
        ..build.lease.clone()
    };
    assert!(store.lease_info(&stranger, RUNNER).await.unwrap().is_none());
    assert!(
        store
            .lease_info(&build.lease, "r2")
            .await
            .unwrap()
            .is_none()
    );
    let forged = store
        .add_artifact(&stranger, RUNNER, &file("x", "o/x"), 6)
        .await
        .unwrap();
    assert!(forged.is_none(), "a forged lease records nothing");
    let a = store
        .add_artifact(&build.lease, RUNNER, &file("dist/app", "o/1"), 6)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(
        (a.job.as_str(), a.path.as_str(), a.size),
        ("build", "dist/app", 3)
    );
    let again = store
        .add_artifact(&build.lease, RUNNER, &file("dist/app", "o/2"), 7)
        .await
        .unwrap();
    assert_eq!(again.unwrap().id, a.id, "the same path replaces");
    store
        .complete(&done(&build, Outcome::Succeeded, &[]), RUNNER, 8)
        .await
        .unwrap()
        .unwrap();
    let late = store
        .add_artifact(&build.lease, RUNNER, &file("late", "o/3"), 9)
        .await
        .unwrap();
    assert!(late.is_none(), "a finished lease records nothing");
    let test = claim(&store, &run_id(&store, &b, "test").await, 1)
        .await
        .unwrap();
    let got: Vec<(&str, &str)> = test
        .input_artifacts
        .iter()
        .map(|r| (r.path.as_str(), r.sha256.as_str()))
        .collect();
    assert_eq!(got, [("dist/app", "sha-of-dist/app")]);
    let lint = claim(&store, &run_id(&store, &b, "lint").await, 1)
        .await
        .unwrap();
    assert!(lint.input_artifacts.is_empty(), "lint depends on nothing");
    // A failed attempt's files are not the job run's once it runs again.
    store
        .add_artifact(&test.lease, RUNNER, &file("report.xml", "o/4"), 9)
        .await
        .unwrap()
        .unwrap();
    store
        .complete(&done(&test, Outcome::Failed, &[]), RUNNER, 10)
        .await
        .unwrap();
    let listed = store.build_artifacts(&b).await.unwrap();
    assert_eq!(pluck_paths(&listed), ["dist/app"]);
    finish(&store, &b, "test", Outcome::Succeeded, &[]).await;
    store
        .complete(&done(&lint, Outcome::Succeeded, &[]), RUNNER, 11)
        .await
        .unwrap();
    finish(&store, &b, "package", Outcome::Succeeded, &[]).await;
    let builds = store.downstream_builds(&b).await.unwrap();
    let mut pack_build = None;
    for id in builds {
        if store.build(&id).await.unwrap().unwrap().product == "pack" {
            pack_build = Some(id);
        }
    }
    let pack_build = pack_build.expect("shop fired pack");
    let take = claim(&store, &run_id(&store, &pack_build, "take").await, 1)
        .await
        .unwrap();
    assert_eq!(take.input_artifacts.len(), 1);
    assert_eq!(take.input_artifacts[0].id, a.id);
    assert_eq!(store.artifact(&a.id).await.unwrap().unwrap().object, "o/2");
}

fn pluck_paths(list: &[conveyor_store::ArtifactView]) -> Vec<&str> {
    list.iter().map(|a| a.path.as_str()).collect()
}

pub async fn caches_are_found_by_key_then_by_name_per_scope_and_evicted_least_recently_used(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let scopes = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let put = |scope: &'static str, key: &'static str, at: i64| {
        let store = store.clone();
        async move {
            store
                .put_cache(
                    "shop",
                    scope,
                    "deps",
                    &file(key, &format!("c/{scope}/{key}")),
                    at,
                )
                .await
                .unwrap()
        }
    };
    assert!(put("main", "deps-1", 10).await.is_some());
    assert!(
        put("main", "deps-1", 11).await.is_none(),
        "a key is saved once"
    );
    assert!(put("main", "deps-2", 12).await.is_some());
    assert!(put("topic", "deps-3", 13).await.is_some());
    let find = |s: Vec<String>, key: &'static str, at: i64| {
        let store = store.clone();
        async move {
            let found = store.find_cache("shop", &s, "deps", key, at).await.unwrap();
            found.map(|c| (c.scope, c.key))
        }
    };
    let topic_then_main = scopes(&["topic", "main"]);
    let hit = |s: &str, k: &str| Some((s.to_string(), k.to_string()));
    assert_eq!(
        find(topic_then_main.clone(), "deps-1", 20).await,
        hit("main", "deps-1")
    );
    assert_eq!(
        find(topic_then_main.clone(), "deps-9", 21).await,
        hit("topic", "deps-3")
    );
    assert_eq!(
        find(scopes(&["main"]), "deps-9", 22).await,
        hit("main", "deps-2")
    );
    assert_eq!(find(scopes(&["other"]), "deps-9", 23).await, None);
    // Used last: main/deps-2 (22), then topic/deps-3 (21), main/deps-1 (20); 3 bytes each.
    let removed = store.evict_caches("shop", 6).await.unwrap();
    let removed: Vec<&str> = removed.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(removed, ["deps-1"]);
    assert_eq!(
        find(scopes(&["main"]), "deps-1", 24).await,
        hit("main", "deps-2")
    );
    let id = store
        .find_cache("shop", &scopes(&["topic"]), "deps", "deps-3", 25)
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        store.cache(&id).await.unwrap().unwrap().object,
        "c/topic/deps-3"
    );
}
