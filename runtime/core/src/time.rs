//! Timestamps as GitHub writes them (`2015-01-01T15:00:00Z`) to and from Unix seconds.

use chrono::{DateTime, SecondsFormat, Utc};

/// Parses a GitHub timestamp into Unix seconds; `None` when it is not RFC 3339.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

/// Formats Unix seconds the way GitHub does (UTC, whole seconds, `Z` suffix).
pub fn format_timestamp(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The current time in Unix seconds.
pub fn now_unix() -> i64 {
    Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_github_timestamps() {
        let unix = parse_timestamp("2015-01-01T15:00:01Z").unwrap();
        assert_eq!(unix, 1_420_124_401);
        assert_eq!(format_timestamp(unix), "2015-01-01T15:00:01Z");
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
