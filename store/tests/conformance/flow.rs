//! The store suite's vocabulary: two products, and steps that drive a build through the
//! store as a runner would (claim, complete), without a runner.

use std::collections::BTreeMap;
use std::sync::Arc;

use conveyor_core::protocol::{ClaimRequest, Completion, JobSpec, Outcome};
use conveyor_store::{BuildTrigger, Effects, NewBuild, Owner, Store};

pub const LEASE_MS: i64 = 30_000;

/// A log cap no test reaches.
pub const NO_CAP: u64 = u64::MAX;

/// The runner the suite's protocol calls come from.
pub const RUNNER: &str = "r1";

/// That runner, serving every fleet the suite's products use.
pub fn owner() -> Owner {
    Owner {
        name: RUNNER.into(),
        fleets: vec!["default".into()],
    }
}

pub const SHOP: &str = "product: shop
belts:
  - name: ci
    jobs:
      - name: build
        commands: VERSION=1.2
        outputs: [VERSION]
      - name: test
        retries: 1
        commands: echo ${build.VERSION}
      - name: lint
        commands: 'true'
      - name: package
        needs: [test, lint]
        commands: echo {{ build.VERSION }}
        downstreams:
          - downstream-product: deploy
            belts: [release]
";

pub const DEPLOY: &str = "product: deploy
belts:
  - name: release
    jobs:
      - name: ship
        commands: echo ${shop.build.VERSION}
        outputs: [DONE]
      - name: maybe
        if: ship.DONE == 'yes'
        commands: 'true'
      - name: approve
        manual: true
        commands: 'true'
";

pub async fn setup(store: &Arc<dyn Store>) {
    store
        .put_product(&conveyor_store::testing::product(SHOP), 1)
        .await
        .expect("put shop");
    store
        .put_product(&conveyor_store::testing::product(DEPLOY), 1)
        .await
        .expect("put deploy");
}

pub fn manual(product: &str, belt: &str) -> NewBuild {
    NewBuild {
        resource: None,
        product: product.into(),
        belt: belt.into(),
        trigger: BuildTrigger::Manual,
        git_ref: None,
        sha: None,
        model: None,
        context: None,
    }
}

/// The job names dispatched, looked up in the build view.
pub async fn dispatched(store: &Arc<dyn Store>, build: &str, effects: &Effects) -> Vec<String> {
    let view = store.build(build).await.expect("build").expect("exists");
    let mut names: Vec<String> = effects
        .dispatch
        .iter()
        .filter_map(|d| {
            view.jobs
                .iter()
                .find(|j| j.id == d.msg.job_run_id)
                .map(|j| j.name.clone())
        })
        .collect();
    names.sort();
    names
}

pub async fn claim(store: &Arc<dyn Store>, id: &str, attempt: u32) -> Option<JobSpec> {
    let req = ClaimRequest {
        job_run_id: id.into(),
        attempt,
        runner: "r1".into(),
    };
    store
        .claim(&req, &owner(), LEASE_MS, 10)
        .await
        .expect("claim")
        .map(|c| c.spec)
}

pub async fn run_id(store: &Arc<dyn Store>, build: &str, job: &str) -> String {
    let view = store.build(build).await.expect("build").expect("exists");
    view.jobs
        .iter()
        .find(|j| j.name == job)
        .expect("job")
        .id
        .clone()
}

pub fn done(spec: &JobSpec, outcome: Outcome, outputs: &[(&str, &str)]) -> Completion {
    Completion {
        lease: spec.lease.clone(),
        outcome,
        exit_code: Some(if outcome == Outcome::Succeeded { 0 } else { 1 }),
        outputs: outputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        error: None,
        log: Vec::new(),
        take_next: false,
    }
}

/// Claims and completes one job run of a build.
pub async fn finish(
    store: &Arc<dyn Store>,
    build: &str,
    job: &str,
    outcome: Outcome,
    outputs: &[(&str, &str)],
) -> Effects {
    let id = run_id(store, build, job).await;
    let attempt = store
        .build(build)
        .await
        .unwrap()
        .unwrap()
        .jobs
        .iter()
        .find(|j| j.id == id)
        .unwrap()
        .attempts;
    let spec = claim(store, &id, attempt).await.expect("claimable");
    store
        .complete(&done(&spec, outcome, outputs), RUNNER, 20)
        .await
        .expect("complete")
        .expect("not fenced")
}

pub async fn status_of(store: &Arc<dyn Store>, build: &str) -> (String, Vec<(String, String)>) {
    let v = store.build(build).await.unwrap().unwrap();
    (
        v.status,
        v.jobs.into_iter().map(|j| (j.name, j.status)).collect(),
    )
}

/// The newest 500 builds of every product.
pub async fn newest_500(store: &Arc<dyn Store>) -> Vec<conveyor_store::BuildView> {
    let all = conveyor_store::BuildFilter {
        limit: Some(500),
        ..Default::default()
    };
    store.builds(&all).await.expect("builds")
}
