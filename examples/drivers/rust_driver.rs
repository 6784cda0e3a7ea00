//! An example driver written with the Rust SDK (`sdk/rust`, crate `conveyor-driver`):
//! `deployer`, the last step of the `release` pipeline in docs/pipelines.md. It "deploys"
//! the artifact the step `builder` (examples/drivers/builder.py) made, and fails one tagged
//! `v0`. Run it with
//! `CONVEYOR_SERVER=http://127.0.0.1:8080 CONVEYOR_TOKEN=… cargo run -p conveyor-driver --example rust-driver`
//! (`CONVEYOR_DRIVER_NAME` renames it, so one binary can play several steps).

use conveyor_driver::{Driver, DriverManager, DriverPayload, DriverResult, Logger};

pub async fn reconcile(
    payload: DriverPayload,
    event: String,
    run_id: String,
    logger: Logger,
) -> DriverResult {
    let image = payload
        .steps
        .get("builder")
        .and_then(|out| out.get("ARTIFACT"))
        .cloned()
        .unwrap_or_else(|| "nothing".to_string());
    logger.log_with(
        &[("event", &event)],
        format!("{event} in run {run_id}: image {image}"),
    );
    for (step, outputs) in &payload.steps {
        logger.log_with(&[("step", step)], format!("{step} gave {outputs:?}"));
    }
    if image.ends_with(":v0") {
        return DriverResult::failed(format!("cannot deploy {image}: v0 is not a release"));
    }
    DriverResult::ok(format!("deployed {image}"))
        .with("DEPLOYED", image)
        .with("STEP", payload.job)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let name = std::env::var("CONVEYOR_DRIVER_NAME").unwrap_or_else(|_| "deployer".into());
    let driver = Driver::new(name, &[], reconcile);
    if let Err(e) = DriverManager::new(driver).run().await {
        eprintln!("rust-driver: {e}");
        std::process::exit(1);
    }
}
