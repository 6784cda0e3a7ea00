//! `/builds/{id}`: a build's jobs drawn as a graph, its jobs as a table, the chain of builds
//! that fired it and that it fired, and the buttons to re-run, retry or cancel it.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};

use super::PageResult;
use super::dag::{Dag, NodeIn, layout};
use super::session::Reader;
use super::view::{
    Badge, Chrome, Link, awaits_approval, badge, job_badge, job_note, since, took, trigger_text,
    when,
};
use crate::http::error::AppError;
use crate::services::{Services, input};
use crate::store::BuildView;
use crate::store::is_final;
use conveyor_core::context::Commit;
use conveyor_core::rules::MAX_CHAIN;

pub struct JobRow {
    pub id: String,
    pub name: String,
    pub badge: Badge,
    pub attempts: u32,
    pub took: String,
    /// While running: when it started, for a ticking timer.
    pub since: Option<i64>,
    pub runner: String,
    pub can_cancel: bool,
    pub can_approve: bool,
    /// What it waits for, or why it was skipped.
    pub note: String,
}

/// An artifact file, with its download link.
pub struct ArtifactRow {
    pub job: String,
    pub path: String,
    pub size: String,
    pub sha256: String,
    pub sha_short: String,
    pub href: String,
}

/// The build's artifacts (only the job run's, when one is given).
pub async fn artifact_rows(
    services: &Services,
    build_id: &str,
    job_run: Option<&str>,
) -> PageResult<Vec<ArtifactRow>> {
    let all = services.store.build_artifacts(build_id).await?;
    Ok(all
        .into_iter()
        .filter(|a| job_run.is_none_or(|j| j == a.job_run_id))
        .map(|a| ArtifactRow {
            href: format!("/api/v1/artifacts/{}", a.id),
            size: size_text(a.size),
            sha_short: a.sha256.chars().take(12).collect(),
            job: a.job,
            path: a.path,
            sha256: a.sha256,
        })
        .collect())
}

fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

/// A build in the chain of builds around this one.
pub struct ChainRow {
    pub id: String,
    pub text: String,
    pub badge: Badge,
}

#[derive(Template, WebTemplate)]
#[template(path = "build.html")]
pub struct BuildPage {
    pub chrome: Chrome,
    pub id: String,
    pub product: String,
    pub belt: String,
    pub number: u64,
    pub badge: Badge,
    pub trigger: String,
    pub trigger_link: Option<Link>,
    pub git_ref: String,
    pub sha: String,
    /// Its first 12 characters, as people read a commit id.
    pub sha_short: String,
    /// The commit's page on its forge, for a repository product on a forge.
    pub commit_url: Option<String>,
    /// The commit's author and message, when its repository told.
    pub commit: Option<Commit>,
    pub created: String,
    pub finished_at: String,
    pub took: String,
    /// While running: when it started, for a ticking timer.
    pub since: Option<i64>,
    pub error: String,
    /// What a build that has not started waits for (its concurrency group).
    pub waiting: String,
    /// The variables the build was started with, `KEY=VALUE`.
    pub variables: Vec<String>,
    pub live: bool,
    /// Finished with a failed or cancelled job: its failed jobs can be retried.
    pub can_retry: bool,
    pub dag: Dag,
    pub dag_label: String,
    pub jobs: Vec<JobRow>,
    pub upstream: Vec<ChainRow>,
    pub downstream: Vec<ChainRow>,
    pub artifacts: Vec<ArtifactRow>,
}

pub async fn page(
    State(services): State<Arc<Services>>,
    Reader(viewer): Reader,
    Path(id): Path<String>,
) -> PageResult<BuildPage> {
    input::id("id", &id)?;
    let mut b = services
        .store
        .build(&id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no build `{id}`.")))?;
    crate::services::waiting::note_waiting(&services, std::slice::from_mut(&mut b)).await?;
    let edges = services.store.job_edges(&id).await?;
    let (upstream, downstream) = chain(&services, &b).await?;
    let (trigger, trigger_link) = trigger_text(&b);
    let artifacts = artifact_rows(&services, &id, None).await?;
    let commit_url = commit_link(&services, &b).await?;
    Ok(BuildPage {
        artifacts,
        chrome: Chrome::new(format!("{} {} #{}", b.product, b.belt, b.number), viewer),
        dag: graph(&b, &edges),
        dag_label: format!(
            "The jobs of {} {} #{} and what each waits for",
            b.product, b.belt, b.number
        ),
        jobs: job_rows(&b),
        badge: badge(&b.status),
        live: !is_final(&b.status),
        can_retry: retryable(&b),
        trigger,
        trigger_link,
        git_ref: b.git_ref.clone().unwrap_or_default(),
        sha: b.sha.clone().unwrap_or_default(),
        sha_short: b.sha.iter().flat_map(|s| s.chars()).take(12).collect(),
        commit_url,
        commit: b.context.as_ref().and_then(|c| c.commit.clone()),
        created: when(b.created_at),
        finished_at: b.finished_at.map(when).unwrap_or_default(),
        took: took(Some(b.created_at), b.finished_at),
        since: since(Some(b.created_at), b.finished_at),
        error: b.error.clone().unwrap_or_default(),
        waiting: b.waiting_for.clone().unwrap_or_default(),
        variables: b
            .context
            .iter()
            .flat_map(|c| &c.variables)
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        upstream,
        downstream,
        id: b.id,
        product: b.product,
        belt: b.belt,
        number: b.number,
    })
}

/// The build's commit on its product's forge, when the product is a repository there.
async fn commit_link(services: &Services, b: &BuildView) -> PageResult<Option<String>> {
    let Some(sha) = &b.sha else {
        return Ok(None);
    };
    let product = services.store.product(&b.product).await?;
    let forge = b.trigger.forge_target().map(|t| t.forge);
    Ok(product
        .and_then(|p| p.repo)
        .and_then(|repo| super::links::commit_url(&repo, forge.as_deref(), sha)))
}

/// The jobs table's rows, in belt order.
fn job_rows(b: &BuildView) -> Vec<JobRow> {
    b.jobs
        .iter()
        .map(|j| JobRow {
            id: j.id.clone(),
            name: j.name.clone(),
            badge: job_badge(j),
            attempts: j.attempts,
            took: took(j.started_at, j.finished_at),
            since: since(j.started_at, j.finished_at),
            // A queued driver job with no driver connected says so where its runner goes.
            runner: j.runner.clone().or(j.waiting.clone()).unwrap_or_default(),
            can_cancel: !is_final(&j.status) && !j.cancel_requested,
            can_approve: awaits_approval(j),
            note: job_note(j),
        })
        .collect()
}

/// Whether the build has finished with a failed or cancelled job (what a retry runs).
pub fn retryable(b: &BuildView) -> bool {
    b.jobs.iter().all(|j| is_final(&j.status))
        && matches!(b.status.as_str(), "failed" | "cancelled")
        && b.jobs
            .iter()
            .any(|j| j.status == "failed" || j.status == "cancelled")
}

/// The build's jobs as a graph; each node links to its job's page.
pub fn graph(b: &BuildView, edges: &[(String, String)]) -> Dag {
    let index = |id: &str| b.jobs.iter().position(|j| j.id == id);
    let pairs: Vec<(usize, usize)> = edges
        .iter()
        .filter_map(|(f, t)| Some((index(f)?, index(t)?)))
        .collect();
    let nodes = b
        .jobs
        .iter()
        .map(|j| NodeIn {
            id: j.id.clone(),
            name: j.name.clone(),
            badge: job_badge(j),
            href: format!("/jobs/{}", j.id),
        })
        .collect();
    layout(nodes, &pairs)
}

/// The builds that led to this one, oldest first, and every build it fired, in order.
/// The downstream builds the build page reads at most (the walk shows `MAX_CHAIN`).
const MAX_DOWNSTREAM: u32 = 1_000;

async fn chain(services: &Services, b: &BuildView) -> PageResult<(Vec<ChainRow>, Vec<ChainRow>)> {
    let row = |v: &BuildView| ChainRow {
        id: v.id.clone(),
        text: format!("{} {} #{}", v.product, v.belt, v.number),
        badge: badge(&v.status),
    };
    // Two statements; the downstream builds are then walked as before, depth first.
    let chain = services
        .store
        .build_chain(&b.id, MAX_CHAIN as u32, MAX_DOWNSTREAM)
        .await?;
    let mut upstream: Vec<ChainRow> = chain.upstream.iter().take(MAX_CHAIN).map(row).collect();
    upstream.reverse();
    let mut children: HashMap<&str, Vec<&BuildView>> = HashMap::new();
    for v in &chain.downstream {
        if let Some(parent) = v.upstream_build_id.as_deref() {
            children.entry(parent).or_default().push(v);
        }
    }
    let mut downstream = Vec::new();
    let mut frontier = vec![b.id.as_str()];
    while let Some(id) = frontier.pop() {
        for child in children.get(id).into_iter().flatten() {
            if downstream.len() >= MAX_CHAIN {
                break;
            }
            downstream.push(row(child));
            frontier.push(child.id.as_str());
        }
    }
    Ok((upstream, downstream))
}
