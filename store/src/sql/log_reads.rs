//! Reading a job run's log by line number: a range (after a line, or the last lines before
//! one), its total, and a bounded search. Lines are numbered without gaps, so the chunks
//! holding a range are those from the one holding its first line up to its last: one
//! indexed statement, decoding only those chunks.

use async_trait::async_trait;

use super::chunks::{CHUNK_COLUMNS, ChunkRow};
use super::conn::{Conn, Sql, sql};
use super::{Backend, SqlStore};
use crate::error::Result;
use crate::logs::{LogMatch, LogMatches, LogSearch, Logs, SEARCH_SCAN_LINES};
use crate::types::LogRow;

/// Chunks a search reads per statement.
const SEARCH_CHUNKS: i64 = 4;

/// The number of the job run's last line; 0 when it has none.
pub(crate) async fn total<C: Conn>(conn: &mut C, job_run_id: &str) -> Result<i64> {
    let last: Option<(i64,)> = conn
        .opt(
            sql(
                "SELECT first_line + line_count - 1 AS last FROM log_chunks \
                 WHERE job_run_id = $1 ORDER BY first_line DESC LIMIT 1",
            )
            .bind(job_run_id),
        )
        .await?;
    Ok(last.map_or(0, |(n,)| n))
}

/// The chunks holding lines `from ..= to`, in order, at most `limit` of them.
async fn chunks_over<C: Conn>(
    conn: &mut C,
    job_run_id: &str,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<ChunkRow>> {
    let q = Sql::owned(format!(
        "SELECT {CHUNK_COLUMNS} FROM log_chunks WHERE job_run_id = $1 AND first_line <= $3 \
         AND first_line >= COALESCE((SELECT first_line FROM log_chunks \
         WHERE job_run_id = $1 AND first_line <= $2 ORDER BY first_line DESC LIMIT 1), 0) \
         ORDER BY first_line LIMIT $4"
    ));
    conn.all(q.bind(job_run_id).bind(from).bind(to).bind(limit))
        .await
}

/// Lines `from ..= to`, in order.
async fn range<C: Conn>(conn: &mut C, job_run_id: &str, from: i64, to: i64) -> Result<Vec<LogRow>> {
    let from = from.max(1);
    if to < from {
        return Ok(Vec::new());
    }
    let mut lines = Vec::new();
    for chunk in chunks_over(conn, job_run_id, from, to, i64::MAX).await? {
        lines.extend(chunk.lines(from, to)?);
    }
    Ok(lines)
}

/// At most `limit` lines after line `after`.
pub(crate) async fn logs<C: Conn>(
    conn: &mut C,
    job_run_id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<LogRow>> {
    let from = after.max(0).saturating_add(1);
    range(
        conn,
        job_run_id,
        from,
        from.saturating_add(i64::from(limit)) - 1,
    )
    .await
}

/// The last `limit` lines before line `before` (or the end), oldest first.
pub(crate) async fn log_tail<C: Conn>(
    conn: &mut C,
    job_run_id: &str,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<LogRow>> {
    let last = total(conn, job_run_id).await?;
    let to = before.map_or(last, |b| last.min(b.saturating_sub(1)));
    let from = to.saturating_sub(i64::from(limit)) + 1;
    range(conn, job_run_id, from, to).await
}

/// Whether line `row` is one the search asks for; `text` is already lower case.
fn matches(row: &LogRow, text: Option<&str>, kind: Option<&str>) -> bool {
    kind.is_none_or(|k| row.labels.get("kind").is_some_and(|v| v == k))
        && text.is_none_or(|t| row.text.to_lowercase().contains(t))
}

/// Searches from `s.after` on, chunk by chunk, until `s.limit` matches, about
/// [`SEARCH_SCAN_LINES`] lines read, or the end.
pub(crate) async fn search<C: Conn>(
    conn: &mut C,
    job_run_id: &str,
    s: &LogSearch,
) -> Result<LogMatches> {
    let text = s.text.as_deref().map(str::to_lowercase);
    let (text, kind) = (text.as_deref(), s.kind.as_deref());
    let mut found = LogMatches::default();
    let mut after = s.after.max(0);
    let start = after;
    loop {
        let chunks = chunks_over(conn, job_run_id, after + 1, i64::MAX, SEARCH_CHUNKS).await?;
        // The chunk holding the line after `after`, or the last one when there is none.
        if chunks.last().is_none_or(|c| c.last_line() <= after) {
            return Ok(found);
        }
        for chunk in &chunks {
            for (id, json) in chunk.raw(after + 1, i64::MAX) {
                let row = chunk.decode(id, json)?;
                if matches(&row, text, kind) {
                    found.matches.push(LogMatch { id, text: row.text });
                    if found.matches.len() >= s.limit.max(1) as usize {
                        found.next = Some(id);
                        return Ok(found);
                    }
                }
            }
            after = after.max(chunk.last_line());
            if after - start >= SEARCH_SCAN_LINES {
                found.next = Some(after);
                return Ok(found);
            }
        }
    }
}

#[async_trait]
impl<B: Backend> Logs for SqlStore<B> {
    async fn log_total(&self, job_run_id: &str) -> Result<i64> {
        total(&mut *self.backend.conn().await?, job_run_id).await
    }

    async fn search_log(&self, job_run_id: &str, s: &LogSearch) -> Result<LogMatches> {
        search(&mut *self.backend.conn().await?, job_run_id, s).await
    }
}
