//! A job run's log at volume: its lines are stored in chunks (one per stored batch, split at
//! [`CHUNK_LINES`] lines or [`CHUNK_BYTES`] bytes) and numbered 1, 2, 3 … across its
//! attempts; [`crate::LogRow::id`] is that number. Reads by line range
//! ([`crate::Store::logs`], [`crate::Store::log_tail`]) and searches decode only the
//! chunks they touch, so no read holds a whole log. The [`Logs`] use cases are part of the
//! [`crate::Store`] boundary (a supertrait, as [`crate::History`] is).

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;

/// The most lines one chunk holds.
pub const CHUNK_LINES: usize = 1000;
/// The most bytes of encoded lines one chunk holds (a longer line has a chunk of its own).
pub const CHUNK_BYTES: usize = 256 << 10;
/// About how many lines one search request reads before it answers with a `next` cursor.
pub const SEARCH_SCAN_LINES: i64 = 50_000;

/// A search through a job run's log: lines after `after` whose text holds `text` (ignoring
/// case) and whose label `kind` equals `kind`, when given; at most `limit` of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSearch {
    pub text: Option<String>,
    pub kind: Option<String>,
    pub after: i64,
    pub limit: u32,
}

/// A line a search found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogMatch {
    pub id: i64,
    pub text: String,
}

/// What one search request found, and the line number to search after next: `None` once
/// the search reached the log's end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogMatches {
    pub matches: Vec<LogMatch>,
    pub next: Option<i64>,
}

#[async_trait]
pub trait Logs: Send + Sync {
    /// How many lines the job run's log holds so far (its last line's number); 0 when it
    /// has none.
    async fn log_total(&self, job_run_id: &str) -> Result<i64>;

    /// Searches the job run's log from `search.after` on, reading about
    /// [`SEARCH_SCAN_LINES`] lines at most.
    async fn search_log(&self, job_run_id: &str, search: &LogSearch) -> Result<LogMatches>;
}
