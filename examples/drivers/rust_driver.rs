//! An example driver written with the Rust SDK (`sdk/rust`, crate `conveyor-driver`):
//! `deployer`, a step of the `release` pipeline in `examples/drivers/pipeline.md`. It
//! "deploys" the resource's image, using what earlier steps gave, and fails for an image
//! tagged `broken`. Run it with
//! `CONVEYOR_SERVER=http://127.0.0.1:8080 CONVEYOR_TOKEN=… cargo run -p conveyor-driver --example rust-driver`
//! (`CONVEYOR_DRIVER_NAME` renames it, so one binary can play several steps).

use conveyor_driver::{Driver, DriverManager, DriverPayload, DriverResult, Logger};

async fn reconcile(
    payload: DriverPayload,
    event: String,
    run_id: String,
    logger: Logger,
) -> DriverResult {
    let image = payload
        .resource
        .as_ref()
        .and_then(|r| r.pointer("/spec/image"))
        .and_then(|i| i.as_str())
        .unwrap_or("none")
        .to_string();
    logger.log_with(
        &[("event", &event)],
        format!("{event} in run {run_id}: image {image}"),
    );
    for (step, outputs) in &payload.steps {
        logger.log_with(&[("step", step)], format!("{step} gave {outputs:?}"));
    }
    if image.ends_with(":broken") {
        return DriverResult::failed(format!("cannot deploy {image}: it is tagged broken"));
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
    let driver = Driver::new(name, &["app"], reconcile);
    if let Err(e) = DriverManager::new(driver).run().await {
        eprintln!("rust-driver: {e}");
        std::process::exit(1);
    }
}
