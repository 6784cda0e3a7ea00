//! `schedule:` triggers' cron patterns: checked when the config is compiled, and the tick a
//! scheduler should fire now. Times are milliseconds since the epoch, in UTC; the clock is
//! the caller's.
//!
//! Patterns have five fields (minute, hour, day of month, month, day of week) or six with
//! seconds first (`*/5 * * * * *`: every five seconds), as croner reads them.

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// The pattern, parsed; `Err` says what is wrong with it.
pub fn parse(pattern: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())
}

/// The latest tick of `pattern` in `(after_ms, now_ms]`, if there is one. Ticks missed
/// before it (a scheduler that was down) are not returned: a schedule catches up once.
pub fn due(pattern: &str, after_ms: i64, now_ms: i64) -> Option<i64> {
    let cron = parse(pattern).ok()?;
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms)?;
    let tick = cron.find_previous_occurrence(&now, true).ok()?;
    let tick_ms = tick.timestamp_millis();
    (tick_ms > after_ms).then_some(tick_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn five_and_six_field_patterns_parse_and_nonsense_does_not() {
        assert!(parse("0 3 * * *").is_ok());
        assert!(parse("*/5 * * * * *").is_ok());
        assert!(parse("61 * * * *").is_err());
        assert!(parse("every day").is_err());
    }

    #[test]
    fn the_latest_tick_since_the_last_fires_once() {
        let base = 1_800_000_000_000 - 1_800_000_000_000 % (60 * MIN);
        // Every 15 minutes; the last fired tick was at base.
        assert_eq!(due("*/15 * * * *", base, base + 14 * MIN), None);
        assert_eq!(
            due("*/15 * * * *", base, base + 15 * MIN),
            Some(base + 15 * MIN)
        );
        // Down for an hour: one tick, the latest, not the four missed.
        assert_eq!(
            due("*/15 * * * *", base, base + 61 * MIN),
            Some(base + 60 * MIN)
        );
        assert_eq!(due("*/15 * * * *", base + 60 * MIN, base + 61 * MIN), None);
        assert_eq!(due("*/5 * * * * *", base, base + 7_000), Some(base + 5_000));
    }
}
