//! The chain of builds linked by upstream triggers, walked each way in one recursive
//! statement (SQLite and Postgres both have `WITH RECURSIVE`).

use super::conn::{Conn, Sql};
use super::rows::{BuildRow, each};
use crate::error::Result;
use crate::history::BuildChain;

/// A build's columns, from `builds b`, as [`BuildRow`] reads them.
const COLUMNS: &str = "b.id, b.product, b.belt, b.number, b.status, b.trigger, \
     b.upstream_build_id, b.git_ref, b.sha, b.error, b.created_at, b.finished_at, \
     b.forge_status, b.resource, b.event, b.context";

pub(crate) async fn build_chain<C: Conn>(
    conn: &mut C,
    id: &str,
    depth: u32,
    limit: u32,
) -> Result<BuildChain> {
    // Stops at `depth`, or where a build was deleted (retention): its row is not joined.
    let up = format!(
        "WITH RECURSIVE up (id, depth) AS ( \
         SELECT upstream_build_id, 1 FROM builds WHERE id = $1 AND upstream_build_id IS NOT NULL \
         UNION ALL \
         SELECT b.upstream_build_id, u.depth + 1 FROM builds b JOIN up u ON b.id = u.id \
         WHERE b.upstream_build_id IS NOT NULL AND u.depth < $2) \
         SELECT {COLUMNS} FROM up u JOIN builds b ON b.id = u.id ORDER BY u.depth"
    );
    let upstream: Vec<BuildRow> = conn
        .all(Sql::owned(up).bind(id).bind(i64::from(depth)))
        .await?;
    let down = format!(
        "WITH RECURSIVE down (id, depth) AS ( \
         SELECT id, 1 FROM builds WHERE upstream_build_id = $1 \
         UNION ALL \
         SELECT b.id, d.depth + 1 FROM builds b JOIN down d ON b.upstream_build_id = d.id \
         WHERE d.depth < $2) \
         SELECT {COLUMNS} FROM down d JOIN builds b ON b.id = d.id \
         ORDER BY d.depth, b.id LIMIT $3"
    );
    let downstream: Vec<BuildRow> = conn
        .all(
            Sql::owned(down)
                .bind(id)
                .bind(i64::from(depth))
                .bind(i64::from(limit)),
        )
        .await?;
    Ok(BuildChain {
        upstream: each(upstream, BuildRow::view)?,
        downstream: each(downstream, BuildRow::view)?,
    })
}
