//! `schedule:` triggers' ticks: each schedule's last fired tick, moved forward in the
//! transaction that creates the tick's build, so that one tick makes one build however many
//! orchestrators see it due.

use super::conn::{Conn, sql};
use crate::error::Result;

/// The schedule's last tick; a schedule first seen now starts at `now` (it fires from its
/// next tick, not for the past).
pub(crate) async fn last_tick<C: Conn>(
    conn: &mut C,
    product: &str,
    key: &str,
    now: i64,
) -> Result<i64> {
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
    let (tick,): (i64,) = conn
        .one(
            sql("SELECT last_tick FROM schedules WHERE product = $1 AND key = $2")
                .bind(product)
                .bind(key),
        )
        .await?;
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
