//! Conveyor CI's catalog: resource definitions saved by mode and kept while used,
//! resources versioned with the builds each change starts in its own transaction, and
//! pipelines that own their product's name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_store::testing::product;
use conveyor_store::*;
use serde_json::json;

use crate::flow::*;

const RELEASE: &str = "product: release
belts:
  - name: release
    jobs:
      - name: a
        commands: 'true'
";

fn definition(name: &str) -> DefinitionRecord {
    DefinitionRecord {
        id: "d1".into(),
        name: name.into(),
        description: "apps".into(),
        version: "1".into(),
        schema: json!({"type": "object"}),
        created_at: 0,
        updated_at: 0,
    }
}

fn input(tag: &str) -> ResourceInput {
    ResourceInput {
        resource_type: "app".into(),
        name: "web".into(),
        pipeline: None,
        metadata: serde_json::Map::new(),
        spec: json!({ "tag": tag }),
    }
}

fn conflict<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(StoreError::Conflict(m)) => m,
        other => panic!("not a conflict: {other:?}"),
    }
}

pub async fn definitions_are_saved_by_mode_and_kept_while_resources_use_them(
    store: Arc<dyn Store>,
) {
    let saved = store
        .put_definition(&definition("app"), Write::Create, 5)
        .await
        .unwrap();
    assert_eq!((saved.created_at, saved.updated_at), (5, 5));
    let again = store
        .put_definition(&definition("app"), Write::Create, 6)
        .await;
    assert!(conflict(again).contains("exists already"));
    let missing = store
        .put_definition(&definition("db"), Write::Replace, 6)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    let mut changed = definition("app");
    changed.description = "web apps".into();
    let applied = store
        .put_definition(&changed, Write::Apply, 7)
        .await
        .unwrap();
    assert_eq!(
        (
            applied.description.as_str(),
            applied.created_at,
            applied.updated_at
        ),
        ("web apps", 5, 7)
    );
    store
        .put_definition(&definition("db"), Write::Apply, 8)
        .await
        .unwrap();
    let names: Vec<String> = store
        .definitions()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["app", "db"]);

    let none = |_: &ResourceRecord| Vec::new();
    store
        .change_resource(ResourceVerb::Create, &input("v1"), &none, 9)
        .await
        .unwrap();
    assert!(conflict(store.delete_definition("app").await).contains("1 resource(s)"));
    store
        .change_resource(ResourceVerb::Delete, &input("v1"), &none, 10)
        .await
        .unwrap();
    assert!(store.delete_definition("app").await.unwrap());
    assert!(!store.delete_definition("app").await.unwrap());
}

pub async fn each_resource_change_is_a_version_with_the_builds_planned_for_it(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    store
        .put_definition(&definition("app"), Write::Create, 1)
        .await
        .unwrap();
    let plan = |r: &ResourceRecord| {
        let mut b = manual("shop", "ci");
        b.trigger = BuildTrigger::Resource {
            resource_type: r.resource_type.clone(),
            name: r.name.clone(),
            version: r.version,
            event: "any".into(),
        };
        vec![b]
    };
    let made = store
        .change_resource(ResourceVerb::Create, &input("v1"), &plan, 2)
        .await
        .unwrap();
    assert_eq!(made.record.version, 1);
    assert_eq!(made.builds.len(), 1);
    assert_eq!(
        dispatched(&store, &made.builds[0], &made.effects).await,
        ["build", "lint"]
    );
    let again = store
        .change_resource(ResourceVerb::Create, &input("v1"), &plan, 3)
        .await;
    assert!(conflict(again).contains("exists already"));

    let next = store
        .change_resource(ResourceVerb::Update, &input("v2"), &plan, 4)
        .await
        .unwrap();
    assert_eq!(
        (next.record.version, next.record.id.clone()),
        (2, made.record.id.clone())
    );
    let build = store.build(&next.builds[0]).await.unwrap().unwrap();
    assert!(
        matches!(build.trigger, BuildTrigger::Resource { version: 2, .. }),
        "{:?}",
        build.trigger
    );
    let v1 = store
        .resource_version("app", "web", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1.spec, json!({"tag": "v1"}));
    let latest = store.resource("app", "web").await.unwrap().unwrap();
    assert_eq!((latest.version, latest.spec), (2, json!({"tag": "v2"})));
    assert_eq!(store.resources("app").await.unwrap().len(), 1);
}

pub async fn a_deleted_resource_runs_with_its_last_version_and_its_versions_go(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    store
        .put_definition(&definition("app"), Write::Create, 1)
        .await
        .unwrap();
    let plan = |_: &ResourceRecord| vec![manual("shop", "ci")];
    for (verb, tag) in [(ResourceVerb::Create, "v1"), (ResourceVerb::Update, "v2")] {
        store
            .change_resource(verb, &input(tag), &plan, 2)
            .await
            .unwrap();
    }
    let gone = store
        .change_resource(ResourceVerb::Delete, &input("v3"), &plan, 5)
        .await
        .unwrap();
    assert_eq!(
        gone.record.spec,
        json!({"tag": "v2"}),
        "a delete runs with the last version"
    );
    assert!(store.resource("app", "web").await.unwrap().is_none());
    assert!(
        store
            .resource_version("app", "web", 1)
            .await
            .unwrap()
            .is_none()
    );
    let missing = store
        .change_resource(ResourceVerb::Update, &input("v4"), &plan, 6)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn a_pipeline_owns_its_products_name_and_a_registered_product_keeps_its_own(
    store: Arc<dyn Store>,
) {
    setup(&store).await;
    store
        .put_definition(&definition("app"), Write::Create, 1)
        .await
        .unwrap();
    let pipeline = |name: &str| PipelineRecord {
        name: name.into(),
        description: String::new(),
        version: String::new(),
        resource: "app".into(),
        steps: vec![StepRecord {
            id: "a".into(),
            name: "a".into(),
            driver: "a".into(),
        }],
        metadata: serde_json::Map::new(),
        created_at: 0,
        updated_at: 0,
    };
    let shop = product(SHOP);
    let taken = store
        .put_pipeline(&pipeline("shop"), &shop, Write::Create, 2)
        .await;
    assert_eq!(
        conflict(taken),
        "the name `shop` is taken by a registered product: choose another name"
    );
    assert!(
        store.pipeline("shop").await.unwrap().is_none(),
        "nothing was saved"
    );
    let deploy = product(RELEASE);
    store
        .put_pipeline(&pipeline("release"), &deploy, Write::Create, 3)
        .await
        .unwrap();
    assert_eq!(
        store.product_owner("release").await.unwrap(),
        Some(Some("pipeline".into()))
    );
    assert_eq!(store.product_owner("shop").await.unwrap(), Some(None));
    assert_eq!(store.product_owner("nope").await.unwrap(), None);
    let fanout = store
        .put_managed_product(&deploy, MANAGED_BY_RESOURCE_TYPE, 4)
        .await;
    assert_eq!(
        conflict(fanout),
        "the name `release` is taken by a pipeline's product: choose another name"
    );
    assert_eq!(store.pipelines_of("app").await.unwrap().len(), 1);
    assert!(store.delete_pipeline("release").await.unwrap());
    assert!(store.pipelines().await.unwrap().is_empty());
    store
        .put_pipeline(&pipeline("release"), &deploy, Write::Apply, 5)
        .await
        .unwrap();
}

/// One change of resource `name`, in a task of its own.
fn changing(
    store: &Arc<dyn Store>,
    verb: ResourceVerb,
    name: &str,
) -> tokio::task::JoinHandle<Result<ResourceChanged>> {
    let (store, mut i) = (store.clone(), input("v"));
    i.name = name.into();
    tokio::spawn(async move {
        let none = |_: &ResourceRecord| Vec::new();
        store.change_resource(verb, &i, &none, 1).await
    })
}

pub async fn concurrent_writes_queue_one_create_wins_and_each_update_is_a_version(
    store: Arc<dyn Store>,
) {
    store
        .put_definition(&definition("app"), Write::Create, 1)
        .await
        .unwrap();
    for round in 0..10 {
        let name = format!("r{round}");
        let defs = [0, 1].map(|_| {
            let (store, def) = (store.clone(), definition(&name));
            tokio::spawn(async move { store.put_definition(&def, Write::Create, 2).await })
        });
        let [a, b] = defs;
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert_eq!(
            a.is_ok() as u8 + b.is_ok() as u8,
            1,
            "one definition: {a:?} {b:?}"
        );
        let a = changing(&store, ResourceVerb::Create, &name);
        let b = changing(&store, ResourceVerb::Create, &name);
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert_eq!(
            a.is_ok() as u8 + b.is_ok() as u8,
            1,
            "one create wins: {a:?} {b:?}"
        );
        let lost = if a.is_ok() { b } else { a };
        assert!(conflict(lost).contains("exists already"));
        let a = changing(&store, ResourceVerb::Update, &name);
        let b = changing(&store, ResourceVerb::Update, &name);
        let mut versions = [
            a.await.unwrap().unwrap().record.version,
            b.await.unwrap().unwrap().record.version,
        ];
        versions.sort();
        assert_eq!(versions, [2, 3], "two updates at once write two versions");
        assert_eq!(
            store.resource("app", &name).await.unwrap().unwrap().version,
            3
        );
    }
}
