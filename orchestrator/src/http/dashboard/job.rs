//! `/jobs/{id}`: one job run: its state, timings, runner, outputs, and its log — the last
//! lines rendered here (as `log` renders lines), older ones a page at a time without
//! JavaScript or a range at a time by the viewer (`log::lines`), new ones streamed by `live`; and
//! `/jobs/{id}/log.txt`, the whole log as text, read from the store a page at a time.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::PageResult;
use super::ansi;
use super::log::{LineRow, line_rows};
use super::session::Reader;
use super::view::{Badge, Chrome, span, took, when};
use crate::http::error::AppError;
use crate::services::{Services, input};
use crate::store::is_final;
use crate::store::{BuildView, JobRunView, LogRow};

/// How many log lines a page shows.
pub const PAGE_LINES: u32 = 500;

#[derive(Template, WebTemplate)]
#[template(path = "job.html")]
pub struct JobPage {
    pub chrome: Chrome,
    pub id: String,
    pub name: String,
    pub build_id: String,
    pub build: String,
    pub badge: Badge,
    pub attempts: u32,
    pub exit_code: String,
    pub fleet: String,
    pub runner: String,
    pub error: String,
    /// Why a queued job is not taken (no instance of its driver is connected).
    pub waiting: String,
    pub queued: String,
    pub started: String,
    pub finished_at: String,
    pub waited: String,
    pub took: String,
    pub outputs: Vec<(String, String)>,
    pub can_cancel: bool,
    pub can_approve: bool,
    /// What it waits for, or why it was skipped.
    pub note: String,
    pub lines: Vec<LineRow>,
    /// Whether the page shows the log's end (so far), not an earlier stretch.
    pub tail: bool,
    /// The first line id shown, for the "older lines" link, when there are older lines.
    pub older: Option<i64>,
    /// The last line id shown, for the "newer lines" link, when paging back.
    pub newer: Option<i64>,
    /// Whether this page shows the log's end and follows it while the job runs.
    pub live: bool,
    pub last_id: i64,
    pub last_attempt: u32,
    /// While running: when it started and the server's clock now, for a ticking timer.
    pub ticking: Option<(i64, i64)>,
    pub artifacts: Vec<super::build::ArtifactRow>,
}

impl JobPage {
    /// The most lines the viewer keeps in the page.
    pub fn window(&self) -> u32 {
        super::log::WINDOW_LINES
    }

    /// The digits of the longest line number shown (at least 4).
    pub fn digits(&self) -> usize {
        self.last_id.to_string().len().max(4)
    }
}

#[derive(Deserialize)]
pub struct LogPage {
    before: Option<i64>,
    after: Option<i64>,
}

/// How long a job run waited from ready to started.
fn waited(queued: Option<i64>, started: Option<i64>) -> String {
    match (queued, started) {
        (Some(q), Some(s)) => span(s - q),
        _ => String::new(),
    }
}

pub async fn page(
    State(services): State<Arc<Services>>,
    Reader(viewer): Reader,
    Path(id): Path<String>,
    Query(q): Query<LogPage>,
) -> PageResult<JobPage> {
    let (b, j) = job_of(&services, &id).await?;
    let Window {
        rows,
        first,
        last,
        older,
        newer,
        paging,
    } = window(&services, &id, &q).await?;
    let last_attempt = rows.last().map_or(0, |r| r.attempt);
    Ok(JobPage {
        artifacts: super::build::artifact_rows(&services, &b.id, Some(&id)).await?,
        chrome: Chrome::new(
            format!("{} — {} {} #{}", j.name, b.product, b.belt, b.number),
            viewer,
        ),
        build: format!("{} {} #{}", b.product, b.belt, b.number),
        build_id: b.id,
        badge: super::view::job_badge(&j),
        exit_code: j.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        runner: j.runner.clone().unwrap_or_default(),
        error: j.error.clone().unwrap_or_default(),
        waiting: j.waiting.clone().unwrap_or_default(),
        queued: j.queued_at.map(when).unwrap_or_default(),
        started: j.started_at.map(when).unwrap_or_default(),
        finished_at: j.finished_at.map(when).unwrap_or_default(),
        waited: waited(j.queued_at, j.started_at),
        took: took(j.started_at, j.finished_at),
        outputs: j
            .outputs
            .iter()
            .map(|(k, v)| (k.clone(), plain(v)))
            .collect(),
        can_cancel: !is_final(&j.status) && !j.cancel_requested,
        can_approve: super::view::awaits_approval(&j),
        note: super::view::job_note(&j),
        lines: line_rows(&services, &j, &rows).await?,
        tail: !paging,
        older: (older && first != i64::MAX).then_some(first),
        newer: newer.then_some(last),
        live: !paging && !is_final(&j.status),
        last_id: last,
        last_attempt,
        ticking: j
            .started_at
            .filter(|_| j.status == "running")
            .map(|s| (s, crate::clock::now_ms())),
        attempts: j.attempts,
        fleet: j.fleet,
        name: j.name,
        id,
    })
}

/// The log lines a page shows, and where they sit in the whole log.
struct Window {
    rows: Vec<LogRow>,
    /// The first line's id (`i64::MAX` when there is none).
    first: i64,
    last: i64,
    /// Whether lines come before the first.
    older: bool,
    /// Whether lines come after the last, when paging.
    newer: bool,
    /// Whether the page shows an earlier stretch, not the log's end.
    paging: bool,
}

async fn window(services: &Services, id: &str, q: &LogPage) -> PageResult<Window> {
    let store = &services.store;
    let rows = match q.after {
        Some(after) => store.logs(id, after, PAGE_LINES).await?,
        None => store.log_tail(id, q.before, PAGE_LINES).await?,
    };
    let first = rows.first().map_or(i64::MAX, |r| r.id);
    let last = rows.last().map_or(q.after.unwrap_or(0), |r| r.id);
    let older = !store.log_tail(id, Some(first), 1).await?.is_empty();
    let paging = q.before.is_some() || q.after.is_some();
    let newer = paging && !store.logs(id, last, 1).await?.is_empty();
    Ok(Window {
        rows,
        first,
        last,
        older,
        newer,
        paging,
    })
}

/// A value without escape sequences, line by line.
fn plain(value: &str) -> String {
    value
        .split('\n')
        .map(ansi::strip)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The build a job run belongs to, and the job run.
pub async fn job_of(services: &Services, id: &str) -> PageResult<(BuildView, JobRunView)> {
    input::id("id", id)?;
    let missing = || AppError::NotFound(format!("There is no job run `{id}`."));
    let build_id = services
        .store
        .build_of_job_run(id)
        .await?
        .ok_or_else(missing)?;
    let mut b = services.store.build(&build_id).await?.ok_or_else(missing)?;
    crate::services::waiting::note_waiting(services, std::slice::from_mut(&mut b)).await?;
    let at = b.jobs.iter().position(|j| j.id == id).ok_or_else(missing)?;
    let j = b.jobs.swap_remove(at);
    Ok((b, j))
}

/// Lines per page read from the store while downloading.
const DOWNLOAD_PAGE: u32 = 2000;

pub async fn download(
    State(services): State<Arc<Services>>,
    Reader(_): Reader,
    Path(id): Path<String>,
) -> PageResult<Response> {
    let (b, j) = job_of(&services, &id).await?;
    let name = format!("{}-{}-{}.log", b.product, b.number, j.name).replace(
        |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.',
        "_",
    );
    let pages = futures_util::stream::try_unfold(
        (services, id, 0i64, false),
        |(services, id, after, done)| async move {
            if done {
                return Ok(None);
            }
            let rows = services
                .store
                .logs(&id, after, DOWNLOAD_PAGE)
                .await
                .map_err(std::io::Error::other)?;
            let Some(last) = rows.last().map(|r| r.id) else {
                return Ok(None);
            };
            let full = rows.len() == DOWNLOAD_PAGE as usize;
            let mut text = String::new();
            for r in &rows {
                text.push_str(&ansi::strip(&r.text));
                text.push('\n');
            }
            Ok::<_, std::io::Error>(Some((Bytes::from(text), (services, id, last, !full))))
        },
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(pages),
    )
        .into_response())
}
