//! Which counters an event increments.
//!
//! A counter is identified by a time bucket at some granularity, a dimension and a key within it, for example
//! (hour starting 15:00, `repo`, `torvalds/linux`). Every store applies exactly these keys, once per event id,
//! so the embedded aggregator, MongoDB and the parity checks agree by construction.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// Width of a time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One minute, kept for the totals and event types only (the live view).
    Minute,
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
}

/// What is being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    /// All events; the key is `*`.
    All,
    /// GitHub event type.
    Type,
    /// Repository full name.
    Repo,
    /// Organisation login.
    Org,
    /// Repository language, where the event carries it.
    Language,
    /// Events by automation accounts, per event type.
    Bot,
}

impl Granularity {
    /// Every granularity, finest first.
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];

    /// Bucket width in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Granularity::Minute => 60,
            Granularity::Hour => 3_600,
            Granularity::Day => 86_400,
        }
    }

    /// Start of the bucket holding `unix`.
    pub fn bucket(self, unix: i64) -> i64 {
        unix.div_euclid(self.seconds()) * self.seconds()
    }

    /// The name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    /// Parses [`Granularity::as_str`] output.
    pub fn parse(text: &str) -> Option<Granularity> {
        Granularity::ALL.into_iter().find(|g| g.as_str() == text)
    }

    fn dimensions(self) -> &'static [Dimension] {
        match self {
            Granularity::Minute => &[Dimension::All, Dimension::Type],
            Granularity::Hour | Granularity::Day => &Dimension::ALL,
        }
    }
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 6] = [
        Dimension::All,
        Dimension::Type,
        Dimension::Repo,
        Dimension::Org,
        Dimension::Language,
        Dimension::Bot,
    ];

    /// The name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::All => "all",
            Dimension::Type => "type",
            Dimension::Repo => "repo",
            Dimension::Org => "org",
            Dimension::Language => "language",
            Dimension::Bot => "bot",
        }
    }

    /// Parses [`Dimension::as_str`] output.
    pub fn parse(text: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == text)
    }

    fn key(self, event: &Event) -> Option<&str> {
        match self {
            Dimension::All => Some("*"),
            Dimension::Type => Some(&event.kind),
            Dimension::Repo => Some(&event.repo),
            Dimension::Org => event.org.as_deref(),
            Dimension::Language => event.language.as_deref(),
            Dimension::Bot => event.is_bot().then_some(event.kind.as_str()),
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One counter an event increments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey<'a> {
    /// Bucket width.
    pub granularity: Granularity,
    /// Bucket start, Unix seconds.
    pub bucket: i64,
    /// What is counted.
    pub dimension: Dimension,
    /// Which value of the dimension.
    pub key: &'a str,
}

/// Calls `each` with every counter that `event` increments by one.
pub fn for_each_counter<'a>(event: &'a Event, mut each: impl FnMut(CounterKey<'a>)) {
    for granularity in Granularity::ALL {
        let bucket = granularity.bucket(event.created_at);
        for &dimension in granularity.dimensions() {
            if let Some(key) = dimension.key(event) {
                each(CounterKey {
                    granularity,
                    bucket,
                    dimension,
                    key,
                });
            }
        }
    }
}

/// A counter's value as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateRow {
    /// Bucket width.
    pub granularity: Granularity,
    /// Bucket start, Unix seconds.
    pub bucket: i64,
    /// What is counted.
    pub dimension: Dimension,
    /// Which value of the dimension.
    pub key: String,
    /// How many events.
    pub count: u64,
}

/// Which counters to read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateQuery {
    /// Bucket width.
    pub granularity: Granularity,
    /// What is counted.
    pub dimension: Dimension,
    /// First bucket start included, Unix seconds.
    pub from: i64,
    /// First bucket start excluded, Unix seconds.
    pub to: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_request_by_a_bot_counts_everywhere_once() {
        let event = Event::parse(
            r#"{"id":"7","type":"PullRequestEvent","actor":{"login":"dependabot[bot]"},"repo":{"name":"o/r"},"org":{"login":"o"},"created_at":"2021-07-21T06:59:59Z","payload":{"pull_request":{"base":{"repo":{"language":"Go"}}}}}"#,
        )
        .unwrap();
        let mut keys = Vec::new();
        for_each_counter(&event, |k| {
            keys.push((k.granularity, k.bucket, k.dimension, k.key.to_string()))
        });
        assert_eq!(keys.len(), 2 + 6 + 6);
        let hour = event.created_at - 59 * 60 - 59;
        assert!(keys.contains(&(Granularity::Hour, hour, Dimension::Language, "Go".into())));
        assert!(keys.contains(&(
            Granularity::Minute,
            hour + 59 * 60,
            Dimension::Type,
            "PullRequestEvent".into()
        )));
        assert!(keys.contains(&(
            Granularity::Day,
            hour - 6 * 3600,
            Dimension::Bot,
            "PullRequestEvent".into()
        )));
    }
}
