//! `/fleets`: queue depth and running jobs per fleet, the registered runners, and which
//! job each busy runner holds.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::PageResult;
use super::session::Reader;
use super::view::{Chrome, took, when};
use crate::clock::now_ms;
use crate::http::error::AppResult;
use crate::services::Services;
use crate::services::drivers::heard_from;
use crate::store::BuildFilter;

pub struct FleetRow {
    pub name: String,
    pub queued: u64,
    pub running: u64,
    /// Messages on the fleet's queue, or why it could not be read.
    pub depth: String,
    pub online: usize,
}

pub struct RunnerRow {
    pub name: String,
    pub fleets: String,
    pub last_seen: String,
    pub online: bool,
}

pub struct RunningRow {
    pub job_id: String,
    pub job: String,
    pub build_id: String,
    pub build: String,
    pub fleet: String,
    pub runner: String,
    pub took: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "fleets.html")]
pub struct FleetsPage {
    pub chrome: Chrome,
    pub fleets: Vec<FleetRow>,
    pub runners: Vec<RunnerRow>,
    pub running: Vec<RunningRow>,
}

pub async fn page(
    State(services): State<Arc<Services>>,
    Reader(viewer): Reader,
) -> PageResult<FleetsPage> {
    let now = now_ms();
    let runners = services
        .store
        .runners()
        .await?
        .into_iter()
        .map(|r| RunnerRow {
            online: heard_from(&r, now),
            name: r.name,
            fleets: r.fleets.join(", "),
            last_seen: when(r.last_seen_at),
        })
        .collect();
    let filter = BuildFilter {
        status: Some("running".into()),
        limit: Some(200),
        ..Default::default()
    };
    let mut running = Vec::new();
    for b in services.store.builds(&filter).await? {
        for j in b.jobs.iter().filter(|j| j.status == "running") {
            running.push(RunningRow {
                job_id: j.id.clone(),
                job: j.name.clone(),
                build_id: b.id.clone(),
                build: format!("{} {} #{}", b.product, b.belt, b.number),
                fleet: j.fleet.clone(),
                runner: j.runner.clone().unwrap_or_default(),
                took: took(j.started_at, None),
            });
        }
    }
    Ok(FleetsPage {
        chrome: Chrome::new("Runners and fleets", viewer),
        fleets: fleet_rows(&services).await?,
        runners,
        running,
    })
}

/// Every fleet that has job runs or runners, and `default`.
pub async fn fleet_rows(services: &Services) -> AppResult<Vec<FleetRow>> {
    let (counts, _) = services.store.run_counts().await?;
    let runners = services.store.runners().await?;
    let mut names: Vec<String> = counts.iter().map(|c| c.fleet.clone()).collect();
    names.extend(runners.iter().flat_map(|r| r.fleets.iter().cloned()));
    names.push(conveyor_core::compile::DEFAULT_FLEET.to_string());
    names.sort_unstable();
    names.dedup();
    let now = now_ms();
    let mut rows = Vec::new();
    for name in names {
        let count = |status: &str| {
            counts
                .iter()
                .filter(|c| c.fleet == name && c.status == status)
                .map(|c| c.count)
                .sum()
        };
        let depth = match services.queue.depth(&name).await {
            Ok(d) => d.to_string(),
            Err(e) => {
                tracing::warn!("queue depth of {name}: {e}");
                "unknown".to_string()
            }
        };
        rows.push(FleetRow {
            queued: count("queued"),
            running: count("running"),
            depth,
            online: runners
                .iter()
                .filter(|r| r.fleets.contains(&name) && heard_from(r, now))
                .count(),
            name,
        });
    }
    Ok(rows)
}
