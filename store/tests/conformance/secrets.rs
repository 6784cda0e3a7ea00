//! Secrets: kept sealed by scope and name, listed without values, and handed to a claimed
//! job run that names them — the product's own before the global one, none to a pull
//! request's build unless its product allows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_store::{NewBuild, Store};

use crate::flow::*;

const VAULT: &str = "product: vault
belts:
  - name: ship
    jobs:
      - name: publish
        secrets: [NPM_TOKEN, REGISTRY, MISSING]
        commands: 'true'
";

async fn claimed(store: &Arc<dyn Store>, new: NewBuild) -> conveyor_store::Claim {
    let (build, _) = store.create_build(&new, 5).await.unwrap();
    let run = run_id(store, &build, "publish").await;
    let req = conveyor_core::protocol::ClaimRequest {
        job_run_id: run,
        attempt: 1,
        runner: RUNNER.into(),
    };
    store
        .claim(&req, &owner(), LEASE_MS, 10)
        .await
        .unwrap()
        .unwrap()
}

pub async fn secrets_are_kept_sealed_listed_by_name_and_given_to_jobs_that_name_them(
    store: Arc<dyn Store>,
) {
    store
        .put_product(&conveyor_store::testing::product(VAULT), 1)
        .await
        .unwrap();
    store
        .put_secret("", "REGISTRY", "sealed-global", 2)
        .await
        .unwrap();
    store
        .put_secret("", "NPM_TOKEN", "sealed-global-npm", 2)
        .await
        .unwrap();
    store
        .put_secret("vault", "NPM_TOKEN", "sealed-1", 2)
        .await
        .unwrap();
    store
        .put_secret("vault", "NPM_TOKEN", "sealed-2", 3)
        .await
        .unwrap();
    let listed = store.secrets("vault").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].name.as_str(),
            listed[0].created_at,
            listed[0].updated_at
        ),
        ("NPM_TOKEN", 2, 3)
    );
    let claim = claimed(&store, manual("vault", "ship")).await;
    assert_eq!(
        claim.secrets,
        [
            ("NPM_TOKEN".to_string(), "sealed-2".to_string()),
            ("REGISTRY".to_string(), "sealed-global".to_string())
        ]
    );
    assert_eq!(claim.missing_secrets, ["MISSING"]);
    assert!(store.delete_secret("vault", "NPM_TOKEN").await.unwrap());
    assert!(!store.delete_secret("vault", "NPM_TOKEN").await.unwrap());
    assert!(store.secrets("vault").await.unwrap().is_empty());
}

pub async fn a_pull_requests_build_gets_no_secrets_unless_its_product_allows(
    store: Arc<dyn Store>,
) {
    store
        .put_product(&conveyor_store::testing::product(VAULT), 1)
        .await
        .unwrap();
    store
        .put_secret("vault", "NPM_TOKEN", "sealed", 2)
        .await
        .unwrap();
    let pr = || NewBuild {
        resource: None,
        git_ref: Some("refs/pull/7/head".into()),
        ..manual("vault", "ship")
    };
    let claim = claimed(&store, pr()).await;
    assert!(claim.secrets.is_empty() && claim.missing_secrets.is_empty());
    assert_eq!(store.pr_secrets("vault").await.unwrap(), Some(false));
    assert!(store.set_pr_secrets("vault", true).await.unwrap());
    assert!(!store.set_pr_secrets("nope", true).await.unwrap());
    let claim = claimed(&store, pr()).await;
    assert_eq!(
        claim.secrets,
        [("NPM_TOKEN".to_string(), "sealed".to_string())]
    );
    // Registering the product again keeps the setting.
    store
        .put_product(&conveyor_store::testing::product(VAULT), 9)
        .await
        .unwrap();
    assert_eq!(store.pr_secrets("vault").await.unwrap(), Some(true));
}
