//! Gating in the store: conditions over the build's context, declines, downstreams fired
//! only from what ran and never from a pull request unless the registered config allows,
//! and concurrency groups (one member at a time, in order; superseded builds cancelled),
//! entered at once from several threads as several orchestrators would.

use std::sync::Arc;

use conveyor_core::context::{BuildContext, Event};
use conveyor_core::protocol::Outcome;
use conveyor_store::{NewBuild, Store};

use crate::flow::*;

const GATED: &str = "product: gated
belts:
  - name: ci
    jobs:
      - name: test
        commands: 'true'
      - name: docs
        if: changed(\"docs/**\") && conveyor.event != 'tag'
        commands: 'true'
        downstreams: [{downstream-product: deploy, belts: [release]}]
      - name: publish
        manual: true
        needs: [test]
        commands: 'true'
        downstreams: [{downstream-product: deploy, belts: [release]}]
";

const SERIAL: &str = "product: serial
concurrency: {group: \"ci-{{ conveyor.branch }}\", cancel-superseded: true}
belts:
  - name: ci
    jobs:
      - name: a
        commands: 'true'
";

const DEPLOYS: &str = "product: deploys
belts:
  - name: go
    jobs:
      - name: deploy
        concurrency: \"deploy-{{ conveyor.branch }}\"
        commands: 'true'
";

async fn put(store: &Arc<dyn Store>, yaml: &str) {
    setup(store).await;
    let p = conveyor_store::testing::product(yaml);
    store.put_product(&p, 1).await.unwrap();
}

/// A build of `product`/`belt` at `branch`, started by `event`, that changed `paths`.
fn at(product: &str, belt: &str, event: Event, branch: &str, paths: &[&str]) -> NewBuild {
    let git_ref = format!("refs/heads/{branch}");
    let mut context = BuildContext::at_ref(event, Some(&git_ref));
    context.changed = Some(paths.iter().map(|p| p.to_string()).collect());
    NewBuild {
        git_ref: Some(git_ref),
        context: Some(context),
        ..manual(product, belt)
    }
}

fn job<'a>(v: &'a conveyor_store::BuildView, name: &str) -> &'a conveyor_store::JobRunView {
    v.jobs.iter().find(|j| j.name == name).unwrap()
}

pub async fn a_declined_job_and_one_skipped_by_its_condition_fire_nothing_downstream(
    store: Arc<dyn Store>,
) {
    put(&store, GATED).await;
    let new = at("gated", "ci", Event::Push, "main", &["src/main.rs"]);
    let (b, _) = store.create_build(&new, 5).await.unwrap();
    let v = store.build(&b).await.unwrap().unwrap();
    assert_eq!(job(&v, "docs").status, "skipped", "no docs changed");
    assert_eq!(
        job(&v, "docs").reason.as_deref(),
        Some("its `if` is false: changed(\"docs/**\") && conveyor.event != 'tag'")
    );
    assert_eq!(v.context.as_ref().unwrap().event, Event::Push);
    finish(&store, &b, "test", Outcome::Succeeded, &[]).await;
    let publish = run_id(&store, &b, "publish").await;
    let v = store.build(&b).await.unwrap().unwrap();
    assert_eq!(job(&v, "publish").waiting_for.as_deref(), Some("approval"));
    let e = store
        .decline_job_run(&publish, "ann", "not on a Friday", 7)
        .await
        .unwrap()
        .unwrap();
    assert!(e.created.is_empty(), "nothing fired: {e:?}");
    let v = store.build(&b).await.unwrap().unwrap();
    assert_eq!(v.status, "succeeded", "a decline is no failure");
    let p = job(&v, "publish");
    assert_eq!(
        (
            p.status.as_str(),
            p.reason.as_deref(),
            p.decided_by.as_deref()
        ),
        (
            "skipped",
            Some("declined by ann: not on a Friday"),
            Some("ann")
        )
    );
    assert!(store.downstream_builds(&b).await.unwrap().is_empty());
    assert!(
        store
            .decline_job_run(&publish, "ann", "", 8)
            .await
            .unwrap()
            .is_none(),
        "declined once"
    );
}

pub async fn downstreams_fire_from_jobs_that_ran_and_never_from_a_pull_request(
    store: Arc<dyn Store>,
) {
    put(&store, GATED).await;
    for (event, fires) in [(Event::Push, 1), (Event::PullRequest, 0)] {
        let new = at("gated", "ci", event, "main", &["docs/a.md"]);
        let (b, _) = store.create_build(&new, 5).await.unwrap();
        finish(&store, &b, "test", Outcome::Succeeded, &[]).await;
        finish(&store, &b, "docs", Outcome::Succeeded, &[]).await;
        let publish = run_id(&store, &b, "publish").await;
        store
            .approve_job_run(&publish, "bob", 7)
            .await
            .unwrap()
            .unwrap();
        finish(&store, &b, "publish", Outcome::Succeeded, &[]).await;
        let v = store.build(&b).await.unwrap().unwrap();
        assert_eq!(v.status, "succeeded");
        assert_eq!(job(&v, "publish").decided_by.as_deref(), Some("bob"));
        let fired = store.downstream_builds(&b).await.unwrap();
        assert_eq!(fired.len(), fires, "{event:?}: one deploy, from both jobs");
    }
    // The registered (default branch's) config may let pull requests through.
    let allowed = GATED.replace(
        "belts: [release]}]\n      - name: publish",
        "belts: [release], events: [pull_request]}]\n      - name: publish",
    );
    store
        .put_product(&conveyor_store::testing::product(&allowed), 2)
        .await
        .unwrap();
    let new = at("gated", "ci", Event::PullRequest, "topic", &["docs/a.md"]);
    let (b, _) = store.create_build(&new, 9).await.unwrap();
    finish(&store, &b, "docs", Outcome::Succeeded, &[]).await;
    finish(&store, &b, "test", Outcome::Succeeded, &[]).await;
    let publish = run_id(&store, &b, "publish").await;
    store
        .decline_job_run(&publish, "bob", "", 10)
        .await
        .unwrap();
    assert_eq!(store.downstream_builds(&b).await.unwrap().len(), 1);
}

pub async fn a_newer_build_of_a_group_cancels_the_older_and_runs_when_it_has_stopped(
    store: Arc<dyn Store>,
) {
    put(&store, SERIAL).await;
    let (b1, e1) = store
        .create_build(&at("serial", "ci", Event::Push, "main", &[]), 5)
        .await
        .unwrap();
    assert_eq!(dispatched(&store, &b1, &e1).await, ["a"]);
    let a1 = run_id(&store, &b1, "a").await;
    let spec = claim(&store, &a1, 1).await.expect("claimable");
    let (b2, e2) = store
        .create_build(&at("serial", "ci", Event::Push, "main", &[]), 6)
        .await
        .unwrap();
    assert!(e2.dispatch.is_empty(), "the second waits for the first");
    assert_eq!(e2.superseded, vec![b1.clone()]);
    let v2 = store.build(&b2).await.unwrap().unwrap();
    assert_eq!(
        v2.waiting_for.as_deref(),
        Some("concurrency group `ci-main`, held by build #1")
    );
    assert_eq!(status_of(&store, &b1).await.0, "cancelled");
    let cancel = store
        .heartbeat(&spec.lease, RUNNER, LEASE_MS, 7)
        .await
        .unwrap();
    assert_eq!(cancel, Some(true), "the running job is told to stop");
    // Another branch is another group: it runs at once.
    let (b3, e3) = store
        .create_build(&at("serial", "ci", Event::Push, "dev", &[]), 7)
        .await
        .unwrap();
    assert_eq!(dispatched(&store, &b3, &e3).await, ["a"]);
    let e = store
        .complete(&done(&spec, Outcome::Cancelled, &[]), RUNNER, 8)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        dispatched(&store, &b2, &e).await,
        ["a"],
        "the second starts"
    );
    assert_eq!(store.build(&b2).await.unwrap().unwrap().waiting_for, None);
    finish(&store, &b2, "a", Outcome::Succeeded, &[]).await;
    assert_eq!(status_of(&store, &b2).await.0, "succeeded");
}

pub async fn job_runs_of_one_group_run_one_at_a_time_in_order(store: Arc<dyn Store>) {
    put(&store, DEPLOYS).await;
    let mut builds = Vec::new();
    for t in 0..3 {
        let (b, _) = store
            .create_build(&at("deploys", "go", Event::Push, "main", &[]), 5 + t)
            .await
            .unwrap();
        builds.push(b);
    }
    let view = |b: String| {
        let store = store.clone();
        async move { store.build(&b).await.unwrap().unwrap() }
    };
    let second = view(builds[1].clone()).await;
    let d2 = job(&second, "deploy");
    assert_eq!(
        (d2.status.as_str(), d2.waiting_for.as_deref()),
        (
            "waiting",
            Some("concurrency group `deploy-main`, held by build #1")
        )
    );
    assert!(claim(&store, &d2.id, 1).await.is_none(), "not claimable");
    // The third leaves its place by being cancelled; the second is next.
    let d3 = run_id(&store, &builds[2], "deploy").await;
    store.cancel_job_run(&d3, 9).await.unwrap().unwrap();
    let e = finish(&store, &builds[0], "deploy", Outcome::Succeeded, &[]).await;
    assert_eq!(dispatched(&store, &builds[1], &e).await, ["deploy"]);
    finish(&store, &builds[1], "deploy", Outcome::Succeeded, &[]).await;
    assert_eq!(status_of(&store, &builds[1]).await.0, "succeeded");
    assert_eq!(status_of(&store, &builds[2]).await.0, "failed");
    let left = store.start_held_groups(20).await.unwrap();
    assert!(left.dispatch.is_empty(), "{left:?}");
}

pub async fn builds_entering_one_group_at_once_let_exactly_one_run(store: Arc<dyn Store>) {
    put(&store, DEPLOYS).await;
    for round in 0..8 {
        let branch = format!("b{round}");
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let store = store.clone();
                let new = at("deploys", "go", Event::Push, &branch, &[]);
                tokio::spawn(async move { store.create_build(&new, 100 + i).await.unwrap() })
            })
            .collect();
        let mut queued = 0;
        for t in tasks {
            let (_, e) = t.await.unwrap();
            queued += e.dispatch.len();
        }
        assert_eq!(queued, 1, "round {round}: one deploy runs, the others wait");
    }
}

/// Two orchestrators are two stores on one Postgres database: builds entering one group
/// through both at once let exactly one deploy run, and the next starts when it ends,
/// whichever node records the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_database_share_their_groups() {
    let url = conveyor_store::testing::fresh_pg_url().await;
    let a = conveyor_store::open(&url).await.unwrap();
    let b = conveyor_store::open(&url).await.unwrap();
    put(&a, DEPLOYS).await;
    for round in 0..6 {
        let branch = format!("n{round}");
        let tasks: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, store)| {
                let new = at("deploys", "go", Event::Push, &branch, &[]);
                tokio::spawn(async move { store.create_build(&new, 100 + i as i64).await.unwrap() })
            })
            .collect();
        let mut created = Vec::new();
        for t in tasks {
            created.push(t.await.unwrap());
        }
        let queued: Vec<&String> = created
            .iter()
            .filter(|(_, e)| !e.dispatch.is_empty())
            .map(|(id, _)| id)
            .collect();
        assert_eq!(queued.len(), 1, "round {round}: one of four runs");
        // The holder ends on the other node; one more starts.
        let e = finish(&b, queued[0], "deploy", Outcome::Succeeded, &[]).await;
        assert_eq!(e.dispatch.len(), 1, "round {round}: the next starts: {e:?}");
    }
}
