//! Storing a job's log: batches under a live lease, each stored once, up to a cap of bytes
//! per attempt; the first line past the cap is replaced by one marker line, and the rest of
//! the attempt's log is dropped.

use conveyor_core::protocol::{LogBatch, LogLine, Stream};

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
/// attempt's log stays within `max_bytes`. False when the lease is not live.
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
    let seen: Option<(i64,)> = conn
        .opt(
            sql(
                "SELECT seq FROM log_lines WHERE job_run_id = $1 AND attempt = $2 AND seq = $3 \
                 LIMIT 1",
            )
            .bind(&lease.job_run_id)
            .bind(lease.attempt)
            .bind(batch.seq as i64),
        )
        .await?;
    let Some((bytes, false)) = size(conn, batch).await?.filter(|_| seen.is_none()) else {
        // Stored before, or past the cap already.
        return Ok(true);
    };
    let (kept, total, truncated) = within(&batch.lines, bytes.max(0) as u64, max_bytes);
    insert(conn, batch, &kept, now).await?;
    conn.exec(
        sql("UPDATE log_sizes SET bytes = $3, truncated = $4 \
             WHERE job_run_id = $1 AND attempt = $2")
        .bind(&lease.job_run_id)
        .bind(lease.attempt)
        .bind(total as i64)
        .bind(truncated),
    )
    .await?;
    Ok(true)
}

/// The lines that fit after `stored` bytes within `max_bytes` — with the marker in place of
/// the first that does not — the bytes stored then, and whether the log was cut.
fn within(lines: &[LogLine], stored: u64, max_bytes: u64) -> (Vec<LogLine>, u64, bool) {
    let mut total = stored;
    let mut kept = Vec::new();
    for line in lines {
        let len = line.text.len() as u64;
        if total.saturating_add(len) > max_bytes {
            kept.push(LogLine {
                stream: Stream::System,
                text: truncation_marker(max_bytes),
                labels: Default::default(),
                at: None,
            });
            return (kept, total, true);
        }
        total += len;
        kept.push(line.clone());
    }
    (kept, total, false)
}

/// The attempt's log size so far and whether it was truncated, its row locked until the
/// transaction ends (so two batches at once count each other).
async fn size<C: Conn>(conn: &mut C, batch: &LogBatch) -> Result<Option<(i64, bool)>> {
    let lease = &batch.lease;
    conn.exec(
        sql(
            "INSERT INTO log_sizes (job_run_id, attempt, bytes, truncated) \
             VALUES ($1, $2, 0, FALSE) ON CONFLICT DO NOTHING",
        )
        .bind(&lease.job_run_id)
        .bind(lease.attempt),
    )
    .await?;
    conn.opt(
        sql(
            "UPDATE log_sizes SET bytes = bytes WHERE job_run_id = $1 AND attempt = $2 \
             RETURNING bytes, truncated",
        )
        .bind(&lease.job_run_id)
        .bind(lease.attempt),
    )
    .await
}

/// Inserts `lines` as the batch's lines, numbered in order.
async fn insert<C: Conn>(
    conn: &mut C,
    batch: &LogBatch,
    lines: &[LogLine],
    now: i64,
) -> Result<()> {
    let lease = &batch.lease;
    let head =
        "INSERT INTO log_lines (job_run_id, attempt, seq, line_no, stream, text, at, labels)";
    for (chunk_no, chunk) in lines.chunks(200).enumerate() {
        let rows = chunk.iter().enumerate().map(|(i, line)| {
            let stream = serde_json::to_value(line.stream)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            vec![
                Arg::from(&lease.job_run_id),
                Arg::from(lease.attempt),
                Arg::from(batch.seq as i64),
                Arg::from((chunk_no * 200 + i) as i64),
                Arg::from(stream),
                Arg::from(&line.text),
                Arg::from(now),
                Arg::from(labels_of(line)),
            ]
        });
        conn.exec(Sql::values(head, rows.collect(), " ON CONFLICT DO NOTHING"))
            .await?;
    }
    Ok(())
}

/// A line's labels as stored: a JSON object, or NULL for none.
fn labels_of(line: &LogLine) -> Option<String> {
    (!line.labels.is_empty())
        .then(|| serde_json::to_string(&line.labels).ok())
        .flatten()
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
