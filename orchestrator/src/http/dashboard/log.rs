//! A job's log as the job page shows it: lines with their number (a link to the line), time,
//! and — for the runner's `kind=command` lines — the section they start, with its duration;
//! `kind=error` lines marked as the failure. The same markup (`log_lines.html`) is rendered
//! into the page, into each range `/jobs/{id}/lines` answers while the viewer scrolls, and
//! into the live stream's batches.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::PageResult;
use super::ansi;
use super::session::Reader;
use super::view::took;
use crate::http::error::AppError;
use crate::services::{Services, input};
use crate::store::{JobRunView, LogRow, LogSearch};

/// The label that says what a runner's line is.
const KIND: &str = "kind";

/// A log line ready to show; `mark` is set on the first line of each attempt after the first.
pub struct LineRow {
    pub id: i64,
    pub html: String,
    pub stderr: bool,
    pub mark: Option<u32>,
    /// When it was produced: `HH:MM:SS.mmm` (UTC), and the whole date and time.
    pub time: String,
    pub stamp: String,
    /// A `kind=error` line: the failure.
    pub error: bool,
    /// For a `kind=command` line, the section it starts.
    pub section: Option<Section>,
}

/// A command's section: its line up to the next command line.
pub struct Section {
    /// The next command's line number, when there is one.
    pub end: Option<i64>,
    /// How long it took, when it has ended.
    pub took: String,
    /// While it runs: when it started (ms), for a ticking timer.
    pub since: Option<i64>,
    /// Where the command is in the user's files (`.conveyor.yml:14`).
    pub source: String,
}

/// Lines as HTML: the `.line` elements of the log.
#[derive(Template)]
#[template(path = "log_lines.html")]
pub struct LogLines<'a> {
    pub lines: &'a [LineRow],
}

impl LogLines<'_> {
    pub fn html(&self) -> Result<String, AppError> {
        self.render()
            .map_err(|e| AppError::Internal(format!("log lines: {e}")))
    }
}

/// Where a command's section ends: the next command line (number and time), if any.
type Ends = HashMap<i64, Option<(i64, i64)>>;

fn is_command(r: &LogRow) -> bool {
    r.labels.get(KIND).is_some_and(|k| k == "command")
}

/// The end of every command section that starts in `rows`: the next command line in `rows`,
/// or, for the last one, the next command line after them in the store.
async fn ends(services: &Services, id: &str, rows: &[LogRow]) -> Result<Ends, AppError> {
    let starts: Vec<&LogRow> = rows.iter().filter(|r| is_command(r)).collect();
    let mut ends = Ends::new();
    for pair in starts.windows(2) {
        ends.insert(pair[0].id, Some((pair[1].id, pair[1].at)));
    }
    if let Some(last) = starts.last() {
        let next = next_command(services, id, last.id).await?;
        ends.insert(last.id, next.map(|r| (r.id, r.at)));
    }
    Ok(ends)
}

/// The first command line after line `after`: searched in the store a bounded stretch at
/// a time, then read for its time.
async fn next_command(
    services: &Services,
    id: &str,
    after: i64,
) -> Result<Option<LogRow>, AppError> {
    let mut search = LogSearch {
        text: None,
        kind: Some("command".into()),
        after,
        limit: 1,
    };
    loop {
        let found = services.store.search_log(id, &search).await?;
        if let Some(m) = found.matches.first() {
            let rows = services.store.logs(id, m.id - 1, 1).await?;
            return Ok(rows.into_iter().next());
        }
        match found.next {
            Some(n) => search.after = n,
            None => return Ok(None),
        }
    }
}

/// `rows` as lines to show, their sections timed up to the next command or the job's end.
pub async fn line_rows(
    services: &Services,
    job: &JobRunView,
    rows: &[LogRow],
) -> Result<Vec<LineRow>, AppError> {
    let ends = ends(services, &job.id, rows).await?;
    // A range that starts a new attempt shows its mark too: compare with the line before.
    let mut prev = match rows.first() {
        Some(r) if r.id > 1 => services
            .store
            .logs(&job.id, r.id - 2, 1)
            .await?
            .first()
            .map_or(r.attempt, |p| p.attempt),
        Some(r) => r.attempt,
        None => 0,
    };
    Ok(rows
        .iter()
        .map(|r| {
            let mark = (r.attempt != prev).then_some(r.attempt);
            prev = r.attempt;
            LineRow {
                id: r.id,
                html: ansi::to_html(&r.text),
                stderr: r.stream == "stderr",
                mark,
                time: clock(r.at, "%H:%M:%S%.3f"),
                stamp: clock(r.at, "%Y-%m-%d %H:%M:%S%.3f UTC"),
                error: r.labels.get(KIND).is_some_and(|k| k == "error"),
                section: ends.get(&r.id).map(|end| section(r, *end, job)),
            }
        })
        .collect())
}

fn section(r: &LogRow, end: Option<(i64, i64)>, job: &JobRunView) -> Section {
    let until = end.map(|(_, at)| at).or(job.finished_at);
    Section {
        end: end.map(|(n, _)| n),
        took: took(Some(r.at), until),
        since: until.is_none().then_some(r.at),
        source: r.labels.get("source").cloned().unwrap_or_default(),
    }
}

fn clock(ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(String::new, |t| t.format(format).to_string())
}

/// The most lines the viewer keeps in the page (`data-window`): it drops those farthest from
/// view beyond this, so the page stays small however long the log.
pub const WINDOW_LINES: u32 = 1200;

/// Most lines one range request returns.
const MAX_RANGE: u32 = 1000;
/// Lines a range request returns when it does not say.
const RANGE: u32 = 300;

#[derive(Deserialize)]
pub struct Range {
    after: Option<i64>,
    before: Option<i64>,
    limit: Option<u32>,
}

/// `/jobs/{id}/lines?after=N` (or `before=N`; `limit`, at most 1,000): a range of lines
/// as the page's markup, for the viewer that scrolls through a long log a range at a time.
/// `{"html", "count", "first", "last"}`; `before` past the end reads the tail.
pub async fn lines(
    State(services): State<Arc<Services>>,
    Reader(_): Reader,
    Path(id): Path<String>,
    Query(q): Query<Range>,
) -> PageResult<Json<Value>> {
    input::id("id", &id)?;
    let job = services
        .store
        .job_run(&id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no job run `{id}`.")))?;
    let limit = q.limit.unwrap_or(RANGE).clamp(1, MAX_RANGE);
    let rows = match (q.after, q.before) {
        (Some(after), None) => services.store.logs(&id, after, limit).await?,
        (None, before) => services.store.log_tail(&id, before, limit).await?,
        (Some(_), Some(_)) => {
            return Err(AppError::BadRequest("Give `after` or `before`, not both.".into()).into());
        }
    };
    let lines = line_rows(&services, &job, &rows).await?;
    Ok(Json(json!({
        "html": LogLines { lines: &lines }.html()?,
        "count": rows.len(),
        "first": rows.first().map(|r| r.id),
        "last": rows.last().map(|r| r.id),
    })))
}
