//! Drivers in the store: an instance registers as a runner of `driver:NAME` with its
//! driver's resource types; a resource's build keeps its resource and event (through a
//! re-run); a driver job's context holds the outputs of the jobs it depends on; log lines
//! keep their labels.

use std::collections::BTreeMap;
use std::sync::Arc;

use conveyor_core::protocol::{ClaimRequest, LogBatch, LogLine, Outcome, Stream};
use conveyor_store::{Owner, ResourceEvent, Store};

use crate::flow::{LEASE_MS, NO_CAP, done, finish, manual, run_id};

const STEPS: &str = "product: steps
belts:
  - name: main
    jobs:
      - name: one
        driver: cloud
        outputs: [A]
      - name: two
        driver: cloud
        needs: [one]
        if: one.A == 'x'
";

fn instance() -> Owner {
    Owner {
        name: "cloud/i1".into(),
        fleets: vec!["driver:cloud".into()],
    }
}

async fn claim_as_instance(store: &Arc<dyn Store>, id: &str) -> conveyor_core::protocol::JobSpec {
    let req = ClaimRequest {
        job_run_id: id.into(),
        attempt: 1,
        runner: "cloud/i1".into(),
    };
    let claim = store.claim(&req, &instance(), LEASE_MS, 10).await.unwrap();
    claim.expect("the instance claims its driver's job").spec
}

pub async fn a_driver_instance_registers_as_a_runner_of_its_drivers_queue(store: Arc<dyn Store>) {
    let first = store
        .register_driver("cloud", "cloud/i1", &["vm".into()], "hash-1", 5)
        .await
        .unwrap();
    let again = store
        .register_driver(
            "cloud",
            "cloud/i1",
            &["vm".into(), "disk".into()],
            "hash-2",
            6,
        )
        .await
        .unwrap();
    assert_eq!(first, again, "re-registering keeps the instance");
    let drivers = store.drivers().await.unwrap();
    assert_eq!(drivers.len(), 1);
    let resources = vec!["vm".to_string(), "disk".to_string()];
    assert_eq!(
        (drivers[0].name.as_str(), &drivers[0].resources),
        ("cloud", &resources)
    );
    let seen = store.runner_seen("hash-2", 7).await.unwrap().unwrap();
    assert_eq!(
        (seen.name.as_str(), seen.fleets),
        ("cloud/i1", vec!["driver:cloud".to_string()])
    );
    assert!(store.runner_seen("hash-1", 7).await.unwrap().is_none());
}

/// Registers STEPS and starts a build of it for an `update` of a resource.
async fn resource_build(store: &Arc<dyn Store>) -> String {
    store
        .put_product(&conveyor_store::testing::product(STEPS), 1)
        .await
        .unwrap();
    let mut new = manual("steps", "main");
    new.resource = Some(ResourceEvent {
        resource: serde_json::json!({ "name": "web", "size": 2 }),
        event: "update".into(),
    });
    let (build, effects) = store.create_build(&new, 2).await.unwrap();
    assert_eq!(effects.dispatch[0].fleet, "driver:cloud");
    build
}

pub async fn a_resources_build_keeps_its_resource_and_event_through_a_rerun(store: Arc<dyn Store>) {
    let build = resource_build(&store).await;
    let view = store.build(&build).await.unwrap().unwrap();
    assert_eq!(view.event, "update");
    assert_eq!(
        view.resource,
        Some(serde_json::json!({ "name": "web", "size": 2 }))
    );
    assert_eq!(view.jobs[0].driver.as_deref(), Some("cloud"));
    let (rerun, _) = store.rerun_build(&build, 20).await.unwrap().unwrap();
    let again = store.build(&rerun).await.unwrap().unwrap();
    assert_eq!(
        (again.event.as_str(), again.resource),
        ("update", view.resource)
    );
    let plain = store
        .create_build(&manual("steps", "main"), 21)
        .await
        .unwrap()
        .0;
    let plain = store.build(&plain).await.unwrap().unwrap();
    assert_eq!((plain.event.as_str(), plain.resource), ("create", None));
}

pub async fn a_driver_jobs_context_holds_the_outputs_before_it_and_its_lines_keep_labels(
    store: Arc<dyn Store>,
) {
    store
        .register_driver("cloud", "cloud/i1", &[], "hash-1", 1)
        .await
        .unwrap();
    let build = resource_build(&store).await;
    let one = run_id(&store, &build, "one").await;
    let spec = claim_as_instance(&store, &one).await;
    let ctx = store.driver_context(&one).await.unwrap();
    assert!(ctx.steps.is_empty());
    assert_eq!(
        (ctx.event.as_deref(), ctx.job.as_str()),
        (Some("update"), "one")
    );
    assert_eq!(ctx.outputs, ["A"]);
    let labels = BTreeMap::from([("zone".to_string(), "a".to_string())]);
    let line = LogLine {
        stream: Stream::Stdout,
        text: "made".into(),
        labels: labels.clone(),
        at: None,
    };
    let batch = LogBatch {
        lease: spec.lease.clone(),
        seq: 0,
        lines: vec![line],
    };
    assert!(
        store
            .append_logs(&batch, "cloud/i1", NO_CAP, 11)
            .await
            .unwrap()
    );
    assert_eq!(store.logs(&one, 0, 10).await.unwrap()[0].labels, labels);
    let c = done(&spec, Outcome::Succeeded, &[("A", "x")]);
    store
        .complete(&c, "cloud/i1", 12)
        .await
        .unwrap()
        .expect("recorded");

    let two = run_id(&store, &build, "two").await;
    let ctx = store.driver_context(&two).await.unwrap();
    let want = BTreeMap::from([("A".to_string(), "x".to_string())]);
    assert_eq!(ctx.steps, BTreeMap::from([("one".to_string(), want)]));
    assert_eq!(ctx.refs.len(), 1);
    assert_eq!(ctx.refs[0].1, "one.A");
}

const UPSTREAM: &str = "product: up
belts:
  - name: main
    jobs:
      - name: u
        commands: V=1
        outputs: [V]
        downstreams:
          - downstream-product: consumer
";

const CONSUMER: &str = "product: consumer
belts:
  - name: main
    jobs:
      - name: d
        driver: cloud
        inputs: [up]
";

pub async fn a_driver_jobs_context_holds_the_outputs_of_the_products_it_takes_as_inputs(
    store: Arc<dyn Store>,
) {
    for yaml in [UPSTREAM, CONSUMER] {
        let p = conveyor_store::testing::product(yaml);
        store.put_product(&p, 1).await.unwrap();
    }
    let (up, _) = store.create_build(&manual("up", "main"), 2).await.unwrap();
    finish(&store, &up, "u", Outcome::Succeeded, &[("V", "1")]).await;
    let fired = store.downstream_builds(&up).await.unwrap();
    assert_eq!(fired.len(), 1, "the consumer's build");
    let d = run_id(&store, &fired[0], "d").await;
    let ctx = store.driver_context(&d).await.unwrap();
    let outputs = BTreeMap::from([("V".to_string(), "1".to_string())]);
    let jobs = BTreeMap::from([("u".to_string(), outputs)]);
    assert_eq!(ctx.upstream, BTreeMap::from([("up".to_string(), jobs)]));
    assert!(ctx.steps.is_empty());
}
