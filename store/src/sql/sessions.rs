//! Dashboard sessions: each live session's id, hashed by the caller, until it is signed out
//! or expires — so that signing out on one orchestrator ends the session on all of them.

use super::conn::{Conn, sql};
use crate::error::Result;

/// Records a session until `expires_at`, and forgets the sessions that have expired.
pub(crate) async fn start<C: Conn>(
    conn: &mut C,
    id_hash: &str,
    expires_at: i64,
    now: i64,
) -> Result<()> {
    conn.exec(sql("DELETE FROM sessions WHERE expires_at <= $1").bind(now))
        .await?;
    conn.exec(
        sql("INSERT INTO sessions (id_hash, created_at, expires_at) VALUES ($1, $2, $3)")
            .bind(id_hash)
            .bind(now)
            .bind(expires_at),
    )
    .await?;
    Ok(())
}

/// Whether the session is live at `now`.
pub(crate) async fn live<C: Conn>(conn: &mut C, id_hash: &str, now: i64) -> Result<bool> {
    let row: Option<(String,)> = conn
        .opt(
            sql("SELECT id_hash FROM sessions WHERE id_hash = $1 AND expires_at > $2")
                .bind(id_hash)
                .bind(now),
        )
        .await?;
    Ok(row.is_some())
}

/// Ends a session; false if it was not live.
pub(crate) async fn end<C: Conn>(conn: &mut C, id_hash: &str) -> Result<bool> {
    let n = conn
        .exec(sql("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash))
        .await?;
    Ok(n > 0)
}
