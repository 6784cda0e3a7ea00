//! A queued job run of a fleet no connected runner serves says so (API, job page); one of
//! a fleet a runner serves says nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::drivers::job;

const GPU: &str = "product: ml
belts:
  - name: main
    jobs:
      - name: prep
        commands: 'true'
      - name: train
        fleet: gpu
        commands: 'true'
";

#[tokio::test]
async fn a_job_of_a_fleet_no_runner_serves_says_so_until_one_registers() {
    let app = super::spawn_app().await;
    let id = app.started(GPU, "ml").await;
    let build = app.build_of(&id).await;
    let (prep, train) = (job(&build, "prep"), job(&build, "train"));
    assert_eq!(train["status"], "queued");
    assert!(prep.get("waiting").is_none(), "r1 serves default: {prep}");
    let said =
        "no runner of fleet `gpu` is connected: start one with `conveyor-runner --fleet gpu`";
    assert_eq!(train["waiting"], said);
    let page = app
        .text(&format!("/jobs/{}", train["id"].as_str().unwrap()))
        .await;
    assert!(
        page.contains("no runner of fleet <code>gpu</code>")
            || page.contains("no runner of fleet `gpu`"),
        "{page}"
    );
    crate::common::register_runner(&app.http, &app.base, super::RUNNER, "g1", &["gpu"]).await;
    let build = app.build_of(&id).await;
    assert!(job(&build, "train").get("waiting").is_none(), "{build}");
}
