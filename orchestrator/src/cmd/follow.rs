//! Following a build from the command line (`conveyor logs`, `conveyor trigger --wait`):
//! every line of every job, however long the log (read a page at a time), then, for a build
//! that did not succeed, a summary of what failed and the last lines each failed job printed.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde_json::Value;

use super::api::Api;

const POLL: Duration = Duration::from_millis(500);
/// Lines asked for per request (the API's most).
const PAGE: usize = 10_000;
/// Lines of a failed job repeated in the summary.
const TAIL: usize = 10;

/// Prints the build's log lines as they come, until it finishes (or once, unless `keep`);
/// then the summary of a build that did not succeed. The build as it ended.
pub async fn follow(api: &Api, id: &str, keep: bool) -> Result<Value, String> {
    let mut jobs: HashMap<String, Seen> = HashMap::new();
    loop {
        let build = api.get(&format!("/api/v1/builds/{id}")).await?;
        let done = finished(&build);
        for job in build["jobs"].as_array().into_iter().flatten() {
            let run = job["id"].as_str().unwrap_or_default();
            let seen = jobs.entry(run.to_string()).or_default();
            seen.read(api, run, job["name"].as_str().unwrap_or_default())
                .await?;
        }
        if done || !keep {
            if done {
                summary(&build, &jobs);
            }
            return Ok(build);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What has been printed of one job run: up to which line, and its last lines.
#[derive(Default)]
struct Seen {
    after: i64,
    tail: VecDeque<String>,
}

impl Seen {
    /// Prints every line stored after the last one printed, a page at a time.
    async fn read(&mut self, api: &Api, run: &str, name: &str) -> Result<(), String> {
        loop {
            let path = format!(
                "/api/v1/job-runs/{run}/logs?after={}&limit={PAGE}",
                self.after
            );
            let page = api.get(&path).await?;
            let lines = page["lines"].as_array().cloned().unwrap_or_default();
            for l in &lines {
                let text = l["text"].as_str().unwrap_or_default();
                println!("[{name}] {text}");
                self.after = l["id"].as_i64().unwrap_or(self.after);
                if self.tail.len() == TAIL {
                    self.tail.pop_front();
                }
                self.tail.push_back(text.to_string());
            }
            if lines.len() < PAGE {
                return Ok(());
            }
        }
    }
}

fn finished(build: &Value) -> bool {
    !matches!(build["status"].as_str(), Some("running" | "pending"))
}

/// For a build that did not succeed: each job that failed, timed out or was cancelled,
/// why, and its last lines.
fn summary(build: &Value, jobs: &HashMap<String, Seen>) {
    let status = build["status"].as_str().unwrap_or_default();
    if status == "succeeded" {
        return;
    }
    eprintln!(
        "\n{} {} #{} {status}",
        build["product"].as_str().unwrap_or_default(),
        build["belt"].as_str().unwrap_or_default(),
        build["number"]
    );
    if let Some(error) = build["error"].as_str() {
        eprintln!("  {error}");
    }
    for job in build["jobs"].as_array().into_iter().flatten() {
        let state = job["status"].as_str().unwrap_or_default();
        if !matches!(state, "failed" | "timed_out" | "cancelled") {
            continue;
        }
        let name = job["name"].as_str().unwrap_or_default();
        let why = match (job["exit_code"].as_i64(), job["error"].as_str()) {
            (_, Some(e)) => e.to_string(),
            (Some(code), None) => format!("exit code {code}"),
            (None, None) => state.to_string(),
        };
        eprintln!("  ✗ {name}: {why}");
        let seen = job["id"].as_str().and_then(|id| jobs.get(id));
        for line in seen.into_iter().flat_map(|s| &s.tail) {
            eprintln!("      {line}");
        }
    }
}
