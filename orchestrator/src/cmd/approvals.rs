//! `conveyor run` meeting a manual job: at a terminal it asks whether to approve or
//! decline; otherwise it says what the build waits for and how to approve it (the command
//! and the URL of the run's own orchestrator), instead of waiting without a word.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};

use super::api::local_user;
use crate::services::builds;
use crate::startup::Embedded;

/// How `conveyor run` reaches its own orchestrator, for the approval hint.
pub struct Local<'a> {
    pub engine: &'a Embedded,
    pub token: &'a str,
}

/// Asks about (or explains) each job run of `builds` that has started waiting for
/// approval since the last call; `seen` remembers those already handled.
pub async fn handle_waiting(local: &Local<'_>, builds: &[String], seen: &mut HashSet<String>) {
    let interactive = std::io::stdin().is_terminal();
    for id in builds {
        let Ok(Some(b)) = local.engine.services.store.build(id).await else {
            continue;
        };
        for j in &b.jobs {
            let awaits = j.status == "waiting" && j.waiting_for.as_deref() == Some("approval");
            if !awaits || !seen.insert(j.id.clone()) {
                continue;
            }
            let what = format!("job `{}` of {} #{}", j.name, b.product, b.number);
            if interactive {
                ask(local, &what, &j.id).await;
            } else {
                explain(local, &what, &j.id);
            }
        }
    }
}

fn explain(local: &Local<'_>, what: &str, run: &str) {
    let url = &local.engine.url;
    eprintln!(
        "waiting for approval of {what}: approve with `conveyor approve {run} --server {url} --token {}` \
         (or `conveyor decline {run} --reason WHY …`), or POST {url}/api/v1/job-runs/{run}/approve",
        local.token
    );
}

async fn ask(local: &Local<'_>, what: &str, run: &str) {
    let question = format!("{what} waits for approval: [a]pprove or [d]ecline? ");
    let answer = tokio::task::spawn_blocking(move || {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await;
    let line = match answer {
        Ok(Ok(l)) => l.trim().to_lowercase(),
        _ => String::new(),
    };
    let by = local_user();
    let s = &local.engine.services;
    let result = if line.starts_with('a') || line == "y" || line == "yes" {
        builds::approve_job_run(s, run, &by).await
    } else if line.starts_with('d') || line == "n" || line == "no" {
        builds::decline_job_run(s, run, &by, "declined at the terminal").await
    } else {
        explain(local, what, run);
        return;
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
    }
}
