//! Durations as people write them in the config file: `30s`, `1m30s`, `500ms`, or a bare
//! number of seconds.

use std::time::Duration;

/// Parses `30s`, `1m30s`, `1h`, `500ms`, `1.5s`, or a bare whole number of seconds (`30`).
/// Returns `None` for anything else, including negative values.
pub fn parse_duration(written: &str) -> Option<Duration> {
    let s = written.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok().map(Duration::from_secs);
    }
    humantime::parse_duration(s).ok()
}

/// How long shutdown waits for in-flight requests: at most [`GracePeriod::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GracePeriod(Duration);

impl GracePeriod {
    /// The ceiling the format allows (3 minutes).
    pub const MAX: Duration = Duration::from_secs(180);
    /// The default (30 seconds).
    pub const DEFAULT: GracePeriod = GracePeriod(Duration::from_secs(30));

    /// `None` above [`GracePeriod::MAX`].
    pub fn new(duration: Duration) -> Option<GracePeriod> {
        (duration <= Self::MAX).then_some(GracePeriod(duration))
    }

    /// The period as a [`Duration`].
    pub fn get(self) -> Duration {
        self.0
    }
}

impl Default for GracePeriod {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_spellings_people_use() {
        let secs = Duration::from_secs;
        assert_eq!(parse_duration("30s"), Some(secs(30)));
        assert_eq!(parse_duration("1m30s"), Some(secs(90)));
        assert_eq!(parse_duration("1m 30s"), Some(secs(90)));
        assert_eq!(parse_duration("2h"), Some(secs(7200)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("30"), Some(secs(30)));
        assert_eq!(parse_duration(" 0 "), Some(secs(0)));
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "abc", "-5s", "-5", "30 parsecs", "s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn grace_period_has_a_ceiling() {
        assert!(GracePeriod::new(Duration::from_secs(180)).is_some());
        assert!(GracePeriod::new(Duration::from_secs(181)).is_none());
        assert_eq!(GracePeriod::default().get(), Duration::from_secs(30));
    }
}
