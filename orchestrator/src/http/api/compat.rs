//! Conveyor CI's log API, for its clients: `GET /logs?driver=&runid=&pipeline=` and the live
//! stream `GET /logs/streams/{driver}/{runid}` (server-sent events), where a driver is a
//! driver job's driver (a bash job's name), a run id a build's id and a pipeline a belt.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::ApiReader;
use crate::http::error::{AppError, AppResult};
use crate::services::{Event, Services, input};
use crate::store::BuildView;

#[derive(Deserialize)]
pub struct LogsQuery {
    driver: Option<String>,
    runid: String,
    pipeline: Option<String>,
}

/// How many lines one request reads at a time.
const PAGE: u32 = 1000;

async fn build_of(services: &Services, runid: &str) -> AppResult<BuildView> {
    input::id("runid", runid)?;
    services
        .store
        .build(runid)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no run `{runid}`")))
}

/// Who a job's lines are from, in Conveyor CI's terms: its driver, or a bash job's name.
fn driver_of(job: &crate::store::JobRunView) -> &str {
    job.driver.as_deref().unwrap_or(&job.name)
}

/// Every stored line of the run's drivers (one driver when named), oldest first: streamed
/// as it is read, a page of lines at a time, so that a log of a million lines costs one
/// page of memory, not the whole log.
pub async fn logs(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    q: Result<Query<LogsQuery>, QueryRejection>,
) -> AppResult<Response> {
    let Query(q) = q?;
    for (field, name) in [("driver", &q.driver), ("pipeline", &q.pipeline)] {
        if let Some(name) = name {
            input::name(field, name)?;
        }
    }
    let build = build_of(&services, &q.runid).await?;
    let jobs: Vec<crate::store::JobRunView> = match &q.pipeline {
        Some(p) if *p != build.belt => Vec::new(),
        _ => build
            .jobs
            .iter()
            .filter(|j| q.driver.as_ref().is_none_or(|d| d == driver_of(j)))
            .cloned()
            .collect(),
    };
    let pages = LogPages {
        services,
        run: (build.id, build.belt),
        jobs: jobs.into_iter(),
        job: None,
        after: 0,
        opened: false,
        first: true,
        done: false,
    };
    let body = futures_util::stream::unfold(pages, |mut p| async move {
        p.next().await.map(|chunk| (chunk, p))
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// `{"logs": [...]}` a page of lines at a time.
struct LogPages {
    services: Arc<Services>,
    /// The run id and its pipeline (the build's belt).
    run: (String, String),
    jobs: std::vec::IntoIter<crate::store::JobRunView>,
    job: Option<crate::store::JobRunView>,
    after: i64,
    /// Whether `{"logs": [` is sent, and whether no line is yet (no comma before it).
    opened: bool,
    first: bool,
    done: bool,
}

impl LogPages {
    async fn next(&mut self) -> Option<Result<bytes::Bytes, std::io::Error>> {
        if self.done {
            return None;
        }
        let mut text = String::new();
        if !self.opened {
            self.opened = true;
            text.push_str("{\"logs\": [");
        }
        loop {
            let Some(job) = self.job.clone().or_else(|| self.jobs.next()) else {
                self.done = true;
                text.push_str("]}");
                return Some(Ok(text.into()));
            };
            let rows = match self.services.store.logs(&job.id, self.after, PAGE).await {
                Ok(rows) => rows,
                Err(e) => return Some(Err(std::io::Error::other(e))),
            };
            let Some(last) = rows.last().map(|r| r.id) else {
                (self.job, self.after) = (None, 0);
                continue;
            };
            for r in &rows {
                let line = json!({ "driver": driver_of(&job), "job": job.name, "runid": self.run.0,
                        "pipeline": self.run.1, "attempt": r.attempt, "stream": r.stream,
                        "message": r.text, "labels": r.labels, "timestamp": r.at });
                if !std::mem::take(&mut self.first) {
                    text.push(',');
                }
                text.push_str(&line.to_string());
            }
            (self.job, self.after) = (Some(job), last);
            return Some(Ok(text.into()));
        }
    }
}

/// The driver's lines as they arrive, one event each, then an `end` event when it has
/// finished and everything is sent.
pub async fn stream(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path((driver, runid)): Path<(String, String)>,
) -> AppResult<Response> {
    input::name("driver", &driver)?;
    let build = build_of(&services, &runid).await?;
    let job = build
        .jobs
        .iter()
        .find(|j| driver_of(j) == driver)
        .ok_or_else(|| AppError::NotFound(format!("run `{runid}` has no driver `{driver}`")))?;
    let feed = Feed {
        rx: services.events.subscribe(),
        services,
        id: job.id.clone(),
        after: 0,
        pending: Vec::new().into_iter(),
        done: false,
    };
    let events = futures_util::stream::unfold(feed, |mut f| async move {
        f.next().await.map(|e| (Ok::<_, Infallible>(e), f))
    });
    Ok(axum::response::Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

struct Feed {
    services: Arc<Services>,
    id: String,
    after: i64,
    pending: std::vec::IntoIter<Sse>,
    done: bool,
    rx: tokio::sync::broadcast::Receiver<Event>,
}

impl Feed {
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(e) = self.pending.next() {
                return Some(e);
            }
            if self.done {
                return None;
            }
            // Read whether it has finished before reading lines, so none are missed.
            let finished = match self.services.store.job_run(&self.id).await {
                Ok(j) => j.is_none_or(|j| crate::store::is_final(&j.status)),
                Err(_) => true,
            };
            let rows = self
                .services
                .store
                .logs(&self.id, self.after, PAGE)
                .await
                .unwrap_or_default();
            if let Some(last) = rows.last() {
                self.after = last.id;
                let events: Vec<Sse> = rows
                    .iter()
                    .map(|r| Sse::default().id(r.id.to_string()).data(r.text.clone()))
                    .collect();
                self.pending = events.into_iter();
                continue;
            }
            if finished {
                self.done = true;
                return Some(Sse::default().event("end").data(""));
            }
            self.wait().await;
        }
    }

    /// Until this node hears of new lines for the job, or a second passes (the lines may
    /// have gone to another orchestrator).
    async fn wait(&mut self) {
        let deadline = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return,
                e = self.rx.recv() => match e {
                    Ok(Event::Logs { job_run_id, .. }) if job_run_id == self.id => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    _ => {}
                },
            }
        }
    }
}
