//! Storing a job's log: batches under a live lease, each stored once as one or more chunks,
//! up to a cap of bytes per attempt; the first line past the cap is replaced by one marker
//! line, and the rest of the attempt's log is dropped.

use conveyor_core::protocol::{Completion, LogBatch, LogLine, Stream};

use super::chunks::{self, NewChunk};
use super::conn::{Arg, Conn, Sql, sql};
use crate::error::Result;

/// The line stored where an attempt's log reached `max_bytes`.
pub fn truncation_marker(max_bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    let size = match max_bytes {
        b if b >= MIB && b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b >= 1024 && b % 1024 == 0 => format!("{} KiB", b / 1024),
        b => format!("{b} bytes"),
    };
    format!("… log truncated at {size}: the rest was dropped")
}

/// Stores a log batch under a live lease (a batch sent twice is stored once), as far as the
/// attempt's log stays within `max_bytes`, numbering its lines after the job run's last.
/// False when the lease is not live.
pub(crate) async fn append_logs<C: Conn>(
    conn: &mut C,
    batch: &LogBatch,
    owner: &str,
    max_bytes: u64,
    now: i64,
) -> Result<bool> {
    let lease = &batch.lease;
    let live: Option<(String,)> = conn
        .opt(
            sql("SELECT id FROM job_runs WHERE id = $1 AND attempt = $2 \
                 AND lease_token = $3 AND lease_owner = $4 AND status = 'running'")
            .bind(&lease.job_run_id)
            .bind(lease.attempt)
            .bind(&lease.lease_token)
            .bind(owner),
        )
        .await?;
    if live.is_none() {
        return Ok(false);
    }
    // The size's row lock first: a batch arriving at once waits, then sees this one.
    let so_far = size(conn, batch).await?;
    if so_far.truncated || stored(conn, batch).await? {
        return Ok(true);
    }
    put(conn, batch, so_far, max_bytes, now).await?;
    Ok(true)
}

/// An attempt's log so far, read from its `log_sizes` row (locked until the transaction
/// ends): its bytes, whether it was cut, and the job run's last line number.
#[derive(sqlx::FromRow)]
struct SoFar {
    bytes: i64,
    truncated: bool,
    last_line: i64,
}

/// Stores the batch's lines after the job run's last, as far as the attempt's log stays
/// within `max_bytes`; `so_far` is its size (its row locked by [`size`]), and nothing more
/// is stored once it was truncated.
async fn put<C: Conn>(
    conn: &mut C,
    batch: &LogBatch,
    so_far: SoFar,
    max_bytes: u64,
    now: i64,
) -> Result<()> {
    if so_far.truncated {
        return Ok(());
    }
    let (kept, total, truncated) = within(&batch.lines, so_far.bytes.max(0) as u64, max_bytes);
    let marker = truncated.then(|| LogLine {
        stream: Stream::System,
        text: truncation_marker(max_bytes),
        at: None,
        labels: Default::default(),
    });
    let lines = batch.lines[..kept].iter().chain(marker.as_ref());
    let last = so_far.last_line;
    let chunks = chunks::encode(lines, last + 1, now);
    let size = Size {
        bytes: total as i64,
        truncated,
        last_line: chunks
            .last()
            .map_or(last, |c| c.first_line + c.line_count - 1),
    };
    insert(conn, batch, chunks, size).await
}

/// What an attempt's `log_sizes` row says once a batch is stored.
struct Size {
    bytes: i64,
    truncated: bool,
    last_line: i64,
}

/// The batch number of the lines a completion carries: above any batch shipped before it.
const FINAL_SEQ: u64 = i64::MAX as u64;

/// Stores the log lines a completion carries, as the attempt's last batch, in the
/// completion's transaction and before its fenced `UPDATE`: a completion fenced out rolls
/// them back, and one that is not was the attempt's first (a completion sent twice is
/// fenced out the second time), so whether they were stored before is not read.
pub(crate) async fn append_final<C: Conn>(
    conn: &mut C,
    c: &Completion,
    max_bytes: u64,
    now: i64,
) -> Result<()> {
    if c.log.is_empty() {
        return Ok(());
    }
    let batch = LogBatch {
        lease: c.lease.clone(),
        seq: FINAL_SEQ,
        lines: c.log.clone(),
    };
    let so_far = size(conn, &batch).await?;
    put(conn, &batch, so_far, max_bytes, now).await
}

/// How many of `lines` fit after `stored` bytes within `max_bytes`, the bytes stored then,
/// and whether the log was cut (the marker takes the place of the first that does not fit).
fn within(lines: &[LogLine], stored: u64, max_bytes: u64) -> (usize, u64, bool) {
    let mut total = stored;
    for (n, line) in lines.iter().enumerate() {
        let len = line.text.len() as u64;
        if total.saturating_add(len) > max_bytes {
            return (n, total, true);
        }
        total += len;
    }
    (lines.len(), total, false)
}

/// The attempt's log so far ([`SoFar`]), its row made if missing and locked until the
/// transaction ends (so two batches at once count each other). Its line counter is never
/// behind the job run's last stored line: a new row starts there, after the earlier
/// attempts' lines, and so does a row from before the counter was kept, or one of a stale
/// attempt whose job run has moved on (its lines are then numbered after the newer ones',
/// and rolled back with its fenced-out completion, rather than colliding with them).
async fn size<C: Conn>(conn: &mut C, batch: &LogBatch) -> Result<SoFar> {
    let lease = &batch.lease;
    conn.one(
        sql(
            "INSERT INTO log_sizes (job_run_id, attempt, bytes, truncated, last_line) \
             VALUES ($1, $2, 0, FALSE, COALESCE((SELECT first_line + line_count - 1 \
             FROM log_chunks WHERE job_run_id = $1 ORDER BY first_line DESC LIMIT 1), 0)) \
             ON CONFLICT (job_run_id, attempt) DO UPDATE SET bytes = log_sizes.bytes, \
             last_line = CASE WHEN log_sizes.last_line >= excluded.last_line \
             THEN log_sizes.last_line ELSE excluded.last_line END \
             RETURNING bytes, truncated, last_line",
        )
        .bind(&lease.job_run_id)
        .bind(lease.attempt),
    )
    .await
}

/// Whether the batch was stored before.
async fn stored<C: Conn>(conn: &mut C, batch: &LogBatch) -> Result<bool> {
    let lease = &batch.lease;
    let seen: Option<(i64,)> = conn
        .opt(
            sql(
                "SELECT seq FROM log_chunks WHERE job_run_id = $1 AND attempt = $2 \
                 AND seq = $3 LIMIT 1",
            )
            .bind(&lease.job_run_id)
            .bind(lease.attempt)
            .bind(batch.seq as i64),
        )
        .await?;
    Ok(seen.is_some())
}

/// Inserts the batch's chunks, 16 per statement, the last statement also writing the
/// attempt's new size: as one statement where a `WITH` may hold the `INSERT`
/// ([`Conn::WRITING_CTE`]), else as two in one call.
async fn insert<C: Conn>(
    conn: &mut C,
    batch: &LogBatch,
    chunks: Vec<NewChunk>,
    size: Size,
) -> Result<()> {
    let lease = &batch.lease;
    let head = "INSERT INTO log_chunks (job_run_id, attempt, seq, first_line, line_count, \
                bytes, first_at, last_at, body)";
    let mut rows: Vec<Vec<Arg>> = chunks
        .into_iter()
        .map(|c| {
            vec![
                Arg::from(&lease.job_run_id),
                Arg::from(lease.attempt),
                Arg::from(batch.seq as i64),
                Arg::from(c.first_line),
                Arg::from(c.line_count),
                Arg::from(c.bytes),
                Arg::from(c.first_at),
                Arg::from(c.last_at),
                Arg::from(c.body),
            ]
        })
        .collect();
    while rows.len() > 16 {
        let rest = rows.split_off(16);
        conn.exec(Sql::values(head, rows, "")).await?;
        rows = rest;
    }
    let q = match rows.len() * 9 {
        0 => Sql::owned(update_size(String::new(), 0)),
        n => Sql::values(head, rows, "").wrap(|i| match C::WRITING_CTE {
            true => update_size(format!("WITH c AS ({i}) "), n),
            false => update_size(format!("{i}; "), n),
        }),
    };
    let q = q
        .bind(size.bytes)
        .bind(size.truncated)
        .bind(size.last_line)
        .bind(&lease.job_run_id)
        .bind(lease.attempt);
    conn.exec(q).await?;
    Ok(())
}

/// The `UPDATE` of an attempt's size after `before`, its arguments numbered after the
/// first `n`.
fn update_size(before: String, n: usize) -> String {
    format!(
        "{before}UPDATE log_sizes SET bytes = ${}, truncated = ${}, last_line = ${} \
         WHERE job_run_id = ${} AND attempt = ${}",
        n + 1,
        n + 2,
        n + 3,
        n + 4,
        n + 5
    )
}

#[cfg(test)]
mod tests {
    use super::truncation_marker;

    #[test]
    fn the_marker_names_the_cap_in_its_largest_whole_unit() {
        assert_eq!(
            truncation_marker(64 << 20),
            "… log truncated at 64 MiB: the rest was dropped"
        );
        assert_eq!(
            truncation_marker(2048),
            "… log truncated at 2 KiB: the rest was dropped"
        );
        assert_eq!(
            truncation_marker(100),
            "… log truncated at 100 bytes: the rest was dropped"
        );
    }
}
