//! Live updates over server-sent events. Each stream reads the store (the only source of
//! truth, so it works whichever orchestrator the runner talks to) and wakes early when this
//! node hears of new log lines or a finished build; it ends once its job or build has
//! finished and everything has been sent.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, broadcast};
use tokio::time::Instant;

use super::PageResult;
use super::job::job_of;
use super::log::{LogLines, line_rows};
use super::session::Reader;
use super::view::{badge, since, took};
use crate::http::SharedState;
use crate::http::error::AppError;
use crate::services::{Event, Services, input};
use crate::store::is_final;

/// The longest a stream waits before looking at the store again.
const POLL: Duration = Duration::from_secs(1);
/// Log lines per event.
const BATCH: u32 = 500;

#[derive(Deserialize)]
pub struct After {
    /// The last line id the page shows.
    after: Option<i64>,
    /// The attempt that line belongs to.
    attempt: Option<u32>,
}

struct JobFeed {
    services: Arc<Services>,
    id: String,
    after: i64,
    attempt: u32,
    status: Option<String>,
    ended: bool,
    rx: broadcast::Receiver<Event>,
    _slot: OwnedSemaphorePermit,
}

pub async fn job_events(
    State(services): State<Arc<Services>>,
    State(state): State<SharedState>,
    Reader(_): Reader,
    Path(id): Path<String>,
    Query(q): Query<After>,
    headers: HeaderMap,
) -> PageResult<Response> {
    job_of(&services, &id).await?;
    let slot = slot(&state)?;
    // A reconnecting browser says where it got to.
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let feed = JobFeed {
        rx: services.events.subscribe(),
        services,
        id,
        after: resumed.or(q.after).unwrap_or(0),
        attempt: q.attempt.unwrap_or(0),
        status: None,
        ended: false,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(feed, |mut f| async move {
        let event = f.next().await?;
        Some((Ok(event), f))
    });
    Ok(sse(stream))
}

impl JobFeed {
    /// The next event: new lines, a state change, or the end.
    async fn next(&mut self) -> Option<Sse> {
        if self.ended {
            return None;
        }
        loop {
            match self.step().await {
                Ok(Some(event)) => return Some(event),
                Ok(None) => self.wait().await,
                Err(e) => {
                    tracing::warn!(job_run = %self.id, "live log: {e:?}");
                    self.ended = true;
                    return Some(Sse::default().event("end").data("error"));
                }
            }
        }
    }

    async fn step(&mut self) -> Result<Option<Sse>, AppError> {
        let rows = self
            .services
            .store
            .logs(&self.id, self.after, BATCH)
            .await?;
        if let Some(last) = rows.last() {
            let job = self.job().await?;
            let mut lines = line_rows(&self.services, &job, &rows).await?;
            // A new attempt that starts with this batch.
            if let Some(l) = lines
                .first_mut()
                .filter(|_| self.attempt != 0 && rows[0].attempt != self.attempt)
            {
                l.mark = Some(rows[0].attempt);
            }
            self.after = last.id;
            self.attempt = last.attempt;
            let data = json!({ "html": LogLines { lines: &lines }.html()?, "last": self.after });
            return Ok(Some(
                Sse::default()
                    .event("lines")
                    .id(self.after.to_string())
                    .data(data.to_string()),
            ));
        }
        // One row, not the whole build: this runs about once a second per viewer.
        let j = self.job().await?;
        if self.status.as_deref() != Some(j.status.as_str()) {
            self.status = Some(j.status.clone());
            let data = json!({
                "status": j.status,
                "badge": super::view::job_badge(&j),
                "attempts": j.attempts,
                "exit_code": j.exit_code,
                "runner": j.runner,
                "took": took(j.started_at, j.finished_at),
            });
            return Ok(Some(Sse::default().event("state").data(data.to_string())));
        }
        if is_final(&j.status) {
            self.ended = true;
            return Ok(Some(Sse::default().event("end").data(j.status)));
        }
        Ok(None)
    }

    async fn job(&self) -> Result<crate::store::JobRunView, AppError> {
        self.services
            .store
            .job_run(&self.id)
            .await?
            .ok_or_else(|| AppError::NotFound("job run".into()))
    }

    /// Until this node hears of lines for this job run, a build finishing, or `POLL` passes.
    async fn wait(&mut self) {
        let deadline = Instant::now() + POLL;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Ok(Event::Logs { job_run_id, .. })) if job_run_id == self.id => return,
                Ok(Ok(Event::BuildFinished { .. })) => return,
                Ok(Ok(_)) => {}
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => return,
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return,
            }
        }
    }
}

struct BuildFeed {
    services: Arc<Services>,
    id: String,
    seen: Option<serde_json::Value>,
    ended: bool,
    rx: broadcast::Receiver<Event>,
    _slot: OwnedSemaphorePermit,
}

pub async fn build_events(
    State(services): State<Arc<Services>>,
    State(state): State<SharedState>,
    Reader(_): Reader,
    Path(id): Path<String>,
) -> PageResult<Response> {
    input::id("id", &id)?;
    services
        .store
        .build(&id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no build `{id}`.")))?;
    let slot = slot(&state)?;
    let feed = BuildFeed {
        rx: services.events.subscribe(),
        services,
        id,
        seen: None,
        ended: false,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(feed, |mut f| async move {
        let event = f.next().await?;
        Some((Ok(event), f))
    });
    Ok(sse(stream))
}

impl BuildFeed {
    async fn next(&mut self) -> Option<Sse> {
        if self.ended {
            return None;
        }
        loop {
            let b = match self.services.store.build(&self.id).await {
                Ok(Some(b)) => b,
                other => {
                    if let Err(e) = other {
                        tracing::warn!(build = %self.id, "live build: {e}");
                    }
                    self.ended = true;
                    return Some(Sse::default().event("end").data("error"));
                }
            };
            let snapshot = json!({
                "status": b.status,
                "badge": badge(&b.status),
                "took": took(Some(b.created_at), b.finished_at),
                "since": since(Some(b.created_at), b.finished_at),
                "jobs": b.jobs.iter().map(|j| json!({
                    "id": j.id,
                    "status": j.status,
                    "badge": super::view::job_badge(j),
                    "attempts": j.attempts,
                    "took": took(j.started_at, j.finished_at),
                    "since": since(j.started_at, j.finished_at),
                    "runner": j.runner.clone().unwrap_or_default(),
                })).collect::<Vec<_>>(),
            });
            // Durations tick while running: compare states only.
            let key = json!([
                snapshot["status"],
                snapshot["jobs"].as_array().map(|js| js
                    .iter()
                    .map(|j| (j["status"].clone(), j["attempts"].clone()))
                    .collect::<Vec<_>>())
            ]);
            if self.seen.as_ref() != Some(&key) {
                self.seen = Some(key);
                return Some(Sse::default().event("build").data(snapshot.to_string()));
            }
            if is_final(&b.status) {
                self.ended = true;
                return Some(Sse::default().event("end").data(b.status));
            }
            self.wait(&b.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>())
                .await;
        }
    }

    async fn wait(&mut self, runs: &[String]) {
        let deadline = Instant::now() + POLL;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Ok(Event::Logs { job_run_id, .. })) if runs.contains(&job_run_id) => return,
                Ok(Ok(Event::BuildFinished { id } | Event::BuildCreated { id }))
                    if id == self.id =>
                {
                    return;
                }
                Ok(Ok(_)) => {}
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => return,
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return,
            }
        }
    }
}

/// Builds created and finished, as `changed` events naming the build: the overview and
/// product pages refresh their content on each. Only this orchestrator's changes arrive;
/// a page on another one refreshes when that one hears of a change.
pub async fn changes(
    State(services): State<Arc<Services>>,
    State(state): State<SharedState>,
    Reader(_): Reader,
) -> PageResult<Response> {
    let slot = slot(&state)?;
    let rx = services.events.subscribe();
    let stream = futures_util::stream::unfold((rx, slot), |(mut rx, slot)| async move {
        loop {
            let id = match rx.recv().await {
                Ok(Event::BuildCreated { id } | Event::BuildFinished { id }) => id,
                Ok(_) => continue,
                // Missed some: say something changed.
                Err(broadcast::error::RecvError::Lagged(_)) => String::new(),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((Ok(Sse::default().event("changed").data(id)), (rx, slot)));
        }
    });
    Ok(sse(stream))
}

/// A place for one more live stream, held as long as it is open; none left is a 503 (the
/// page still works, without live updates).
fn slot(state: &SharedState) -> Result<OwnedSemaphorePermit, AppError> {
    state.live_streams.clone().try_acquire_owned().map_err(|_| {
        AppError::Unavailable(
            "This orchestrator has as many live views open as it is allowed \
             (--max-live-streams); reload the page to see changes."
                .into(),
        )
    })
}

fn sse(events: impl Stream<Item = Result<Sse, Infallible>> + Send + 'static) -> Response {
    axum::response::Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
