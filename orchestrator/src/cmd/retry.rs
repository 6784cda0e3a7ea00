//! `conveyor retry BUILD_ID [--wait]`: retries a finished build's failed and cancelled jobs
//! (and the jobs they skipped) in place on a running orchestrator.

use std::process::ExitCode;

use serde_json::json;

use super::client::{ApiArgs, done};
use super::follow::follow;

// `conveyor retry`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// The build's id (`conveyor builds` and the build's page show it).
    pub build: String,
    /// Follow the build's logs and exit 0 only if it now succeeds.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Retries the build's failed jobs; with `--wait`, follows it to its new outcome.
pub async fn run(args: RetryArgs) -> ExitCode {
    done(
        async {
            let api = args.api.client()?;
            let path = format!("/api/v1/builds/{}/retry", args.build);
            let build = api.post(&path, json!({})).await?;
            let name = format!(
                "{} {} #{}",
                build["product"].as_str().unwrap_or(""),
                build["belt"].as_str().unwrap_or(""),
                build["number"]
            );
            let again = build["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|j| !matches!(j["status"].as_str(), Some("succeeded" | "skipped")))
                .count();
            println!("retrying {again} job(s) of {name}");
            if !args.wait {
                return Ok(true);
            }
            let build = follow(&api, &args.build, true).await?;
            println!("{name}: {}", build["status"].as_str().unwrap_or("?"));
            Ok(build["status"] == "succeeded")
        }
        .await,
    )
}
