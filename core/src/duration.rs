//! Durations such as `30s`, `10m`, `1h30m` or `1h 30m`.

/// The longest timeout conveyor accepts: 7 days.
pub const MAX_SECS: u64 = 7 * 24 * 3600;

/// Parses a duration into whole seconds, or says what is wrong with it.
pub fn parse_secs(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid duration `{text}`: write a number and a unit, such as `30s`, `10m` or `1h30m`"
        )
    };
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration `{text}` is longer than the 7d limit"))?;
        rest = rest[unit_len..].trim_start();
    }
    check_range(text, total)
}

/// Checks a number of seconds given as a bare YAML integer.
pub fn check_range(text: &str, secs: u64) -> Result<u64, String> {
    if secs == 0 {
        Err(format!("duration `{text}` must be longer than 0s"))
    } else if secs > MAX_SECS {
        Err(format!("duration `{text}` is longer than the 7d limit"))
    } else {
        Ok(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_durations_parse() {
        assert_eq!(parse_secs("30s"), Ok(30));
        assert_eq!(parse_secs("10m"), Ok(600));
        assert_eq!(parse_secs("1h30m"), Ok(5400));
        assert_eq!(parse_secs("1h 30m"), Ok(5400));
        assert_eq!(parse_secs("2 hours"), Ok(7200));
        assert_eq!(parse_secs("7d"), Ok(MAX_SECS));
    }

    #[test]
    fn bad_durations_say_how_to_write_one() {
        assert_eq!(
            parse_secs("30x"),
            Err("invalid duration `30x`: write a number and a unit, such as `30s`, `10m` or `1h30m`".into())
        );
        assert!(parse_secs("m30").is_err());
        assert!(parse_secs("").is_err());
        assert_eq!(
            parse_secs("0s"),
            Err("duration `0s` must be longer than 0s".into())
        );
        assert_eq!(
            parse_secs("8d"),
            Err("duration `8d` is longer than the 7d limit".into())
        );
        assert!(parse_secs("99999999999999999999d").is_err());
    }
}
