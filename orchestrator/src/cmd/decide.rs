//! `conveyor approve JOB_RUN_ID` and `conveyor decline JOB_RUN_ID [--reason R]`: decide a
//! manual job run waiting for approval on a running orchestrator. The decision records
//! `--by` (default: the user running the command).

use std::process::ExitCode;

use reqwest::Method;
use serde_json::json;

use super::api::local_user;
use super::client::{ApiArgs, done};

// `conveyor approve`'s and `conveyor decline`'s arguments.
#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// The job run's id (the build's page and `conveyor builds --json` show it).
    pub job_run: String,
    /// Why (a decline's reason, shown with the skipped job).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Who decides, as recorded with the job run (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Approves (`approve`) or declines the job run.
pub async fn run(args: DecideArgs, approve: bool) -> ExitCode {
    let verb = if approve { "approve" } else { "decline" };
    done(
        async {
            let path = format!("/api/v1/job-runs/{}/{verb}", args.job_run);
            let by = args.by.clone().unwrap_or_else(local_user);
            let body = json!({ "by": by, "reason": args.reason });
            let api = args.api.client()?;
            let build = api
                .send(api.request(Method::POST, &path).json(&body))
                .await?;
            let job = build["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|j| j["id"] == args.job_run.as_str());
            let name = job.and_then(|j| j["name"].as_str()).unwrap_or("job");
            let status = job.and_then(|j| j["status"].as_str()).unwrap_or("?");
            println!(
                "{verb}d {name} of {} #{}: now {status}",
                build["product"].as_str().unwrap_or(""),
                build["number"]
            );
            Ok(true)
        }
        .await,
    )
}
