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
/// The same columns, read from a walk's rows.
const WALKED: &str = "id, product, belt, number, status, trigger, upstream_build_id, git_ref, \
     sha, error, created_at, finished_at, forge_status, resource, event, context";

pub(crate) async fn build_chain<C: Conn>(
    conn: &mut C,
    id: &str,
    depth: u32,
    limit: u32,
) -> Result<BuildChain> {
    // Each step carries the build's row, so the result is read from the walk alone: joined
    // back to `builds` at the end, the newer planner of the bundled SQLite ordered the join
    // by `builds`' own index and read every build (8 ms at 100,000 builds, for none found).
    // Stops at `depth`, or where a build was deleted (retention): its row is not found.
    let up = format!(
        "WITH RECURSIVE up AS ( \
         SELECT {COLUMNS}, 1 AS depth FROM builds b \
         WHERE b.id = (SELECT upstream_build_id FROM builds WHERE id = $1) \
         UNION ALL \
         SELECT {COLUMNS}, u.depth + 1 FROM builds b JOIN up u ON b.id = u.upstream_build_id \
         WHERE u.depth < $2) \
         SELECT {WALKED} FROM up ORDER BY depth"
    );
    let upstream: Vec<BuildRow> = conn
        .all(Sql::owned(up).bind(id).bind(i64::from(depth)))
        .await?;
    let down = format!(
        "WITH RECURSIVE down AS ( \
         SELECT {COLUMNS}, 1 AS depth FROM builds b WHERE b.upstream_build_id = $1 \
         UNION ALL \
         SELECT {COLUMNS}, d.depth + 1 FROM builds b JOIN down d ON b.upstream_build_id = d.id \
         WHERE d.depth < $2) \
         SELECT {WALKED} FROM down ORDER BY depth, id LIMIT $3"
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
