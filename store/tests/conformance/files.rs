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

/// Records `name` under `lease`; the artifact's id, or `None` when fenced out.
async fn add(store: &Arc<dyn Store>, lease: &Lease, name: &str, object: &str) -> Option<String> {
    let f = file(name, object);
    let added = store.add_artifact(lease, RUNNER, &f, 6).await.unwrap();
    added.map(|a| a.id)
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
    assert!(add(&store, &stranger, "x", "o/x").await.is_none(), "forged");
    let a = add(&store, &build.lease, "dist/app", "o/1")
        .await
        .expect("recorded");
    let view = store.artifact(&a).await.unwrap().unwrap();
    assert_eq!(
        (view.job.as_str(), view.path.as_str(), view.size),
        ("build", "dist/app", 3)
    );
    let again = add(&store, &build.lease, "dist/app", "o/2").await;
    assert_eq!(again.as_ref(), Some(&a), "the same path replaces");
    store
        .complete(&done(&build, Outcome::Succeeded, &[]), RUNNER, 8)
        .await
        .unwrap()
        .unwrap();
    assert!(
        add(&store, &build.lease, "late", "o/3").await.is_none(),
        "finished"
    );
    dependents_and_downstreams_receive_it(&store, &b, &a).await;
}

/// `test` (a dependent of `build`) receives the artifact, `lint` nothing, a retried
/// attempt's files are dropped, and `pack`'s job receives it downstream.
async fn dependents_and_downstreams_receive_it(store: &Arc<dyn Store>, b: &str, a: &str) {
    let store = store.clone();
    let b = b.to_string();
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
    add(&store, &test.lease, "report.xml", "o/4").await.unwrap();
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
    downstream_receives_it(&store, &b, a).await;
}

async fn downstream_receives_it(store: &Arc<dyn Store>, b: &str, a: &str) {
    let builds = store.downstream_builds(b).await.unwrap();
    let mut pack_build = None;
    for id in builds {
        if store.build(&id).await.unwrap().unwrap().product == "pack" {
            pack_build = Some(id);
        }
    }
    let pack_build = pack_build.expect("shop fired pack");
    let take = claim(store, &run_id(store, &pack_build, "take").await, 1)
        .await
        .unwrap();
    assert_eq!(take.input_artifacts.len(), 1);
    assert_eq!(take.input_artifacts[0].id, a);
    assert_eq!(store.artifact(a).await.unwrap().unwrap().object, "o/2");
}

fn pluck_paths(list: &[conveyor_store::ArtifactView]) -> Vec<&str> {
    list.iter().map(|a| a.path.as_str()).collect()
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

async fn put_cache(store: &Arc<dyn Store>, scope: &str, key: &str, at: i64) -> bool {
    let f = file(key, &format!("c/{scope}/{key}"));
    let put = store.put_cache("shop", scope, "deps", &f, at);
    put.await.unwrap().is_some()
}

async fn find_cache(
    store: &Arc<dyn Store>,
    s: Vec<String>,
    key: &str,
    at: i64,
) -> Option<(String, String)> {
    let found = store.find_cache("shop", &s, "deps", key, at).await.unwrap();
    found.map(|c| (c.scope, c.key))
}

pub async fn caches_are_found_by_key_then_by_name_per_scope_and_evicted_least_recently_used(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    let put = |scope: &'static str, key: &'static str, at: i64| put_cache(&store, scope, key, at);
    assert!(put("main", "deps-1", 10).await);
    assert!(!put("main", "deps-1", 11).await, "a key is saved once");
    assert!(put("main", "deps-2", 12).await);
    assert!(put("topic", "deps-3", 13).await);
    let find = |s: Vec<String>, key: &'static str, at: i64| find_cache(&store, s, key, at);
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
