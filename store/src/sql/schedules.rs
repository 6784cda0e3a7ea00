//! `schedule:` triggers' ticks: each schedule's last fired tick, moved forward in the
//! transaction that creates the tick's build, so that one tick makes one build however many
//! orchestrators see it due.

use super::conn::{Conn, sql};
use crate::error::Result;

/// The schedule's last tick; a schedule first seen now starts at `now` (it fires from its
/// next tick, not for the past). A read, but for a schedule's first pass: the upkeep asks
/// every second, and a write would take SQLite's write lock each time.
pub(crate) async fn last_tick<C: Conn>(
    conn: &mut C,
    product: &str,
    key: &str,
    now: i64,
) -> Result<i64> {
    let read = || {
        sql("SELECT last_tick FROM schedules WHERE product = $1 AND key = $2")
            .bind(product)
            .bind(key)
    };
    if let Some((tick,)) = conn.opt::<(i64,)>(read()).await? {
        return Ok(tick);
    }
    conn.exec(
        sql(
            "INSERT INTO schedules (product, key, last_tick) VALUES ($1, $2, $3) \
             ON CONFLICT (product, key) DO NOTHING",
        )
        .bind(product)
        .bind(key)
        .bind(now),
    )
    .await?;
    let (tick,) = conn.opt::<(i64,)>(read()).await?.ok_or_else(|| {
        crate::error::StoreError::Corrupt(format!("schedule `{key}` of {product} vanished"))
    })?;
    Ok(tick)
}

/// Moves the schedule to `tick` if it is behind it; false when another orchestrator fired
/// this tick (or a later one) first.
pub(crate) async fn advance<C: Conn>(
    conn: &mut C,
    product: &str,
    key: &str,
    tick: i64,
) -> Result<bool> {
    let n = conn
        .exec(
            sql("UPDATE schedules SET last_tick = $3 \
                 WHERE product = $1 AND key = $2 AND last_tick < $3")
            .bind(product)
            .bind(key)
            .bind(tick),
        )
        .await?;
    Ok(n > 0)
}
