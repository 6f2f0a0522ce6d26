//! Durations as the SSO portal's configuration writes them: a bare number of seconds (`300`),
//! or a string of amounts and units (`5m`, `1h30m`, `2 hours`, `1d`, `1w`, `1M`, `1y`).
//!
//! Written by hand rather than with a general-purpose parser because the incumbent's units
//! are not the usual ones: `M` is a month of exactly 30 days (and differs from `m`, a
//! minute), `y` is 365 days, and spelled-out units (`2 hours`) are allowed. A file that
//! loads there must mean the same durations here.

use std::time::Duration;

/// Why a duration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Nothing was written.
    #[error("the duration is empty")]
    Empty,
    /// A negative amount (`-5m`).
    #[error("a duration cannot be negative")]
    Negative,
    /// A unit the format does not know (`5 parsecs`).
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
    /// A unit without an amount before it, or an amount that is not a whole number.
    #[error("expected a whole number before `{0}`")]
    MissingAmount(String),
    /// A number and no unit in a string with several parts (`1h30`).
    #[error("the amount `{0}` has no unit")]
    MissingUnit(String),
    /// Too large to represent.
    #[error("the duration is too long")]
    Overflow,
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Parses a duration in the incumbent's forms. A bare whole number is seconds.
pub fn parse_duration(written: &str) -> Result<Duration, DurationError> {
    let text = written.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.starts_with('-') {
        return Err(DurationError::Negative);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| DurationError::Overflow);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let (amount, after_amount) = split_digits(rest);
        let after_amount = after_amount.trim_start();
        let (unit, after_unit) = split_unit(after_amount);
        if amount.is_empty() {
            return Err(DurationError::MissingAmount(unit.to_owned()));
        }
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(amount.to_owned()));
        }
        let amount: u64 = amount.parse().map_err(|_| DurationError::Overflow)?;
        let part = unit_duration(unit)?
            .checked_mul(u32::try_from(amount).map_err(|_| DurationError::Overflow)?)
            .ok_or(DurationError::Overflow)?;
        total = total.checked_add(part).ok_or(DurationError::Overflow)?;
        // `1h 30m` and `1 hour, 30 minutes` are both fine.
        rest = after_unit.trim_start_matches([' ', ',', '\t']);
    }
    Ok(total)
}

/// Leading ASCII digits, and the rest.
fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Leading letters (the unit), and the rest.
fn split_unit(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// One unit. Single letters are case-sensitive (`m` minute, `M` month); words are not.
fn unit_duration(unit: &str) -> Result<Duration, DurationError> {
    let seconds = match unit {
        "ns" => return Ok(Duration::from_nanos(1)),
        "us" => return Ok(Duration::from_micros(1)),
        "ms" => return Ok(Duration::from_millis(1)),
        "s" => 1,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => 7 * DAY,
        "M" => 30 * DAY,
        "y" => 365 * DAY,
        word => match word.to_ascii_lowercase().as_str() {
            "millisecond" | "milliseconds" => return Ok(Duration::from_millis(1)),
            "sec" | "secs" | "second" | "seconds" => 1,
            "min" | "mins" | "minute" | "minutes" => MINUTE,
            "hr" | "hrs" | "hour" | "hours" => HOUR,
            "day" | "days" => DAY,
            "week" | "weeks" => 7 * DAY,
            "month" | "months" => 30 * DAY,
            "year" | "years" => 365 * DAY,
            _ => return Err(DurationError::UnknownUnit(word.to_owned())),
        },
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(parse_duration("300"), Ok(secs(300)));
        assert_eq!(parse_duration(" 0 "), Ok(secs(0)));
    }

    #[test]
    fn single_letter_units_follow_the_incumbent() {
        assert_eq!(parse_duration("45s"), Ok(secs(45)));
        assert_eq!(parse_duration("5m"), Ok(secs(300)));
        assert_eq!(parse_duration("1h"), Ok(secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(secs(86_400)));
        assert_eq!(parse_duration("1w"), Ok(secs(7 * 86_400)));
        assert_eq!(parse_duration("1M"), Ok(secs(30 * 86_400)));
        assert_eq!(parse_duration("1y"), Ok(secs(365 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn month_and_minute_differ_by_case() {
        assert_ne!(parse_duration("1M"), parse_duration("1m"));
    }

    #[test]
    fn combinations_and_words() {
        assert_eq!(parse_duration("1h30m"), Ok(secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(secs(5400)));
        assert_eq!(parse_duration("2 hours"), Ok(secs(7200)));
        assert_eq!(parse_duration("1 hour, 30 minutes"), Ok(secs(5400)));
        assert_eq!(parse_duration("1 Month"), Ok(secs(30 * 86_400)));
        assert_eq!(parse_duration("3 days"), Ok(secs(3 * 86_400)));
    }

    #[test]
    fn refuses_nonsense_with_a_reason() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("-1"), Err(DurationError::Negative));
        assert_eq!(parse_duration("-5m"), Err(DurationError::Negative));
        assert_eq!(
            parse_duration("5 parsecs"),
            Err(DurationError::UnknownUnit("parsecs".into()))
        );
        assert_eq!(
            parse_duration("m"),
            Err(DurationError::MissingAmount("m".into()))
        );
        assert_eq!(
            parse_duration("1h30"),
            Err(DurationError::MissingUnit("30".into()))
        );
        assert_eq!(
            parse_duration("1.5h"),
            Err(DurationError::MissingUnit("1".into()))
        );
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::Overflow)
        );
    }
}
