//! Reading a job run's log by line number: a range after a line or before one, with the
//! total so far, and a search a bounded stretch at a time. Each parameter is checked and a
//! bad one named; an unknown job run is not found.

use super::input::{self, invalid};
use super::{Result, ServiceError, Services};
use crate::store::{LogMatches, LogRow, LogSearch};

/// Lines a range gives when it names no limit, and the most it gives.
pub const DEFAULT_LINES: u32 = 1000;
pub const MAX_LINES: u32 = 10_000;
/// Matches a search gives when it names no limit, and the most it gives.
pub const DEFAULT_MATCHES: u32 = 100;
pub const MAX_MATCHES: u32 = 1000;
/// The longest text a search looks for.
pub const MAX_QUERY_LEN: usize = 1000;

/// A range or a search as a request gives it: every value as text, parsed here.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct LogQuery {
    pub after: Option<String>,
    pub before: Option<String>,
    pub limit: Option<String>,
    pub q: Option<String>,
    pub kind: Option<String>,
}

/// A line number (≥ 0), naming `field` when it is not one.
fn line_number(field: &str, value: &Option<String>) -> Result<Option<i64>> {
    let Some(v) = value else {
        return Ok(None);
    };
    match v.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err(invalid(field, "must be a line number (0 or more)".into())),
    }
}

/// The limit, 1 to `max` (`default` when absent).
fn limit(value: &Option<String>, default: u32, max: u32) -> Result<u32> {
    let Some(v) = value else {
        return Ok(default);
    };
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(invalid("limit", format!("must be 1 to {max}"))),
    }
}

/// Not found unless the job run exists.
async fn known(s: &Services, id: &str) -> Result<()> {
    input::id("id", id)?;
    match s.store.build_of_job_run(id).await? {
        Some(_) => Ok(()),
        None => Err(ServiceError::NotFound(format!("no job run `{id}`"))),
    }
}

/// Lines after `after` (up to `before`, when both are given), or the last lines before
/// `before` (the end, when it is past it), oldest first; and the lines stored so far.
pub async fn range(s: &Services, id: &str, q: &LogQuery) -> Result<(Vec<LogRow>, i64)> {
    let after = line_number("after", &q.after)?;
    let before = line_number("before", &q.before)?;
    let limit = limit(&q.limit, DEFAULT_LINES, MAX_LINES)?;
    known(s, id).await?;
    let lines = match (after, before) {
        (Some(a), Some(b)) => {
            let room = b
                .saturating_sub(a)
                .saturating_sub(1)
                .clamp(0, i64::from(limit));
            if room == 0 {
                Vec::new()
            } else {
                s.store.logs(id, a, room as u32).await?
            }
        }
        (None, Some(_)) => s.store.log_tail(id, before, limit).await?,
        (a, None) => s.store.logs(id, a.unwrap_or(0), limit).await?,
    };
    let total = s.store.log_total(id).await?;
    Ok((lines, total))
}

/// The lines after `after` whose text holds `q` (ignoring case) and whose label `kind` is
/// `kind`, a bounded stretch of the log at a time (`next` continues it).
pub async fn search(s: &Services, id: &str, q: &LogQuery) -> Result<LogMatches> {
    let after = line_number("after", &q.after)?.unwrap_or(0);
    let limit = limit(&q.limit, DEFAULT_MATCHES, MAX_MATCHES)?;
    let text = q.q.clone().filter(|t| !t.is_empty());
    let kind = q.kind.clone().filter(|k| !k.is_empty());
    if let Some(t) = &text {
        input::text("q", t, MAX_QUERY_LEN)?;
    }
    if let Some(k) = &kind {
        input::name("kind", k)?;
    }
    if text.is_none() && kind.is_none() {
        return Err(invalid("q", "or `kind` is needed: what to look for".into()));
    }
    known(s, id).await?;
    let search = LogSearch {
        text,
        kind,
        after,
        limit,
    };
    Ok(s.store.search_log(id, &search).await?)
}
