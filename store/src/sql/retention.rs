//! Retention: finished builds past every keep rule (an age, the last N of their belt) are
//! deleted in small batches, each in one short transaction, with their job runs, edges,
//! log chunks, log sizes and artifact rows; the artifacts' objects are returned for the
//! caller to delete. A belt's latest build in each state is always kept. Safe when several
//! nodes sweep at once: a batch deletes what is still there and nothing else.

use super::conn::{Arg, Conn, Sql};
use crate::error::Result;
use crate::history::{Retention, Swept};

/// The builds one batch may delete, oldest first.
fn candidates(r: &Retention, now: i64, batch: u32) -> Option<Sql> {
    let mut keep = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    if let Some(age) = r.max_age_ms {
        args.push(now.saturating_sub(age).into());
        keep.push(format!("b.created_at < ${}", args.len()));
    }
    if let Some(last) = r.keep_last {
        // Older than the belt's `last`-th newest build (none when it has fewer).
        keep.push(format!(
            "(b.created_at, b.id) < (SELECT n.created_at, n.id FROM builds n \
             WHERE n.product = b.product AND n.belt = b.belt \
             ORDER BY n.created_at DESC, n.id DESC LIMIT 1 OFFSET {})",
            last.saturating_sub(1)
        ));
    }
    if keep.is_empty() {
        return None;
    }
    let mut q = Sql::owned(format!(
        "SELECT b.id FROM builds b WHERE b.finished_at IS NOT NULL AND {} \
         AND EXISTS (SELECT 1 FROM builds n WHERE n.product = b.product AND n.belt = b.belt \
         AND n.status = b.status AND (n.created_at, n.id) > (b.created_at, b.id)) \
         ORDER BY b.created_at, b.id LIMIT {batch}",
        keep.join(" AND ")
    ));
    for a in args {
        q = q.bind(a);
    }
    Some(q)
}

pub(crate) async fn due<C: Conn>(
    conn: &mut C,
    r: &Retention,
    now: i64,
    batch: u32,
) -> Result<Vec<String>> {
    let Some(q) = candidates(r, now, batch) else {
        return Ok(Vec::new());
    };
    let rows: Vec<(String,)> = conn.all(q).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// `head` with `WHERE … IN ($1, …)` over `ids`.
fn over(head: &str, ids: &[String]) -> Sql {
    let marks: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
    let mut q = Sql::owned(head.replace("(IDS)", &format!("({})", marks.join(", "))));
    for id in ids {
        q = q.bind(id.clone());
    }
    q
}

/// Deletes `ids` (builds still finished) and what hangs off them, in one transaction. The
/// builds' rows are locked first, in id order, and only those still finished are deleted: a
/// retry that reopened one (it takes the same lock) keeps it, and two sweeping nodes wait
/// for each other rather than deadlock.
pub(crate) async fn delete<C: Conn>(conn: &mut C, ids: &[String]) -> Result<Swept> {
    if ids.is_empty() {
        return Ok(Swept::default());
    }
    let lock = format!(
        "SELECT id FROM builds WHERE id IN (IDS) AND finished_at IS NOT NULL ORDER BY id{}",
        C::FOR_UPDATE
    );
    let locked: Vec<(String,)> = conn.all(over(&lock, ids)).await?;
    let ids: Vec<String> = locked.into_iter().map(|(id,)| id).collect();
    let ids = ids.as_slice();
    if ids.is_empty() {
        return Ok(Swept::default());
    }
    let objects: Vec<(String,)> = conn
        .all(over(
            "SELECT object FROM artifacts WHERE build_id IN (IDS)",
            ids,
        ))
        .await?;
    for stmt in [
        "DELETE FROM log_chunks WHERE job_run_id IN \
         (SELECT id FROM job_runs WHERE build_id IN (IDS))",
        "DELETE FROM log_sizes WHERE job_run_id IN \
         (SELECT id FROM job_runs WHERE build_id IN (IDS))",
        "DELETE FROM artifacts WHERE build_id IN (IDS)",
        "DELETE FROM job_edges WHERE build_id IN (IDS)",
        "DELETE FROM concurrency_members WHERE build_id IN (IDS)",
        "UPDATE builds SET upstream_build_id = NULL WHERE upstream_build_id IN (IDS)",
        "DELETE FROM job_runs WHERE build_id IN (IDS)",
    ] {
        conn.exec(over(stmt, ids)).await?;
    }
    let builds = conn
        .exec(over(
            "DELETE FROM builds WHERE id IN (IDS) AND finished_at IS NOT NULL",
            ids,
        ))
        .await?;
    Ok(Swept {
        builds,
        objects: objects.into_iter().map(|(o,)| o).collect(),
    })
}
