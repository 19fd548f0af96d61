//! Which counters an event increments.
//!
//! A counter is identified by a time bucket at some granularity, a dimension and a key within it, for example
//! (hour starting 15:00, `repo`, `torvalds/linux`). Every store applies exactly these keys, once per event id,
//! so the embedded aggregator, MongoDB and the parity checks agree by construction.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate};
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
    /// A calendar month (history computed by the batch jobs).
    Month,
    /// A calendar quarter (history imports and batch jobs).
    Quarter,
    /// A calendar year (history computed by the batch jobs).
    Year,
}

/// What is being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// Event type and repository language together, as `PushEvent/Rust` (the GitHut series).
    TypeLanguage,
    /// Repository topic (from repository metadata); an event counts once under each of its repository's topics.
    Topic,
    /// Distinct repositories with events by people (not bots) in the bucket; the key is `*`. Batch jobs only.
    ActiveRepos,
    /// Distinct people (not bots) with events in the bucket; the key is `*`. Batch jobs only.
    Actors,
    /// GitHut's quarterly counts, keyed as `type_language` (`PushEvent/Rust`). A measure of its own (bots and
    /// repositories outside BigQuery's `github_repos` left out), so it never overwrites counts made here.
    GithutLanguage,
}

impl Granularity {
    /// Every granularity, finest first.
    pub const ALL: [Granularity; 6] = [
        Granularity::Minute,
        Granularity::Hour,
        Granularity::Day,
        Granularity::Month,
        Granularity::Quarter,
        Granularity::Year,
    ];

    /// The granularities of history computed over a span at once (the batch jobs).
    pub const HISTORY: [Granularity; 3] =
        [Granularity::Month, Granularity::Quarter, Granularity::Year];

    /// The granularities every event is counted at as it arrives.
    pub const COUNTED: [Granularity; 3] =
        [Granularity::Minute, Granularity::Hour, Granularity::Day];

    /// Start of the bucket holding `unix`.
    pub fn bucket(self, unix: i64) -> i64 {
        let fixed = |width: i64| unix.div_euclid(width) * width;
        match self {
            Granularity::Minute => fixed(60),
            Granularity::Hour => fixed(3_600),
            Granularity::Day => fixed(86_400),
            Granularity::Month | Granularity::Quarter | Granularity::Year => {
                let date = DateTime::from_timestamp(unix, 0)
                    .unwrap_or_default()
                    .date_naive();
                let month = match self {
                    Granularity::Month => date.month(),
                    Granularity::Quarter => date.month0() / 3 * 3 + 1,
                    _ => 1,
                };
                month_start(date.year(), month)
            }
        }
    }

    /// The name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Month => "month",
            Granularity::Quarter => "quarter",
            Granularity::Year => "year",
        }
    }

    /// Parses [`Granularity::as_str`] output.
    pub fn parse(text: &str) -> Option<Granularity> {
        Granularity::ALL.into_iter().find(|g| g.as_str() == text)
    }

    fn dimensions(self) -> &'static [Dimension] {
        match self {
            Granularity::Minute => &[Dimension::All, Dimension::Type],
            _ => &Dimension::COUNTED,
        }
    }
}

/// Unix seconds at the start of a calendar quarter (1 to 4).
pub fn quarter_start(year: i32, quarter: u8) -> i64 {
    month_start(year, u32::from(quarter.clamp(1, 4)) * 3 - 2)
}

/// Unix seconds at the start of a calendar month (1 to 12).
pub fn month_start(year: i32, month: u32) -> i64 {
    NaiveDate::from_ymd_opt(year, month.clamp(1, 12), 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(0, |t| t.and_utc().timestamp())
}

/// The `2024Q1` label of a quarter bucket.
pub fn quarter_label(bucket: i64) -> String {
    let date = DateTime::from_timestamp(bucket, 0)
        .unwrap_or_default()
        .date_naive();
    format!("{}Q{}", date.year(), date.month0() / 3 + 1)
}

impl Dimension {
    /// The dimensions an event is counted under as it arrives.
    pub const COUNTED: [Dimension; 8] = [
        Dimension::All,
        Dimension::Type,
        Dimension::Repo,
        Dimension::Org,
        Dimension::Language,
        Dimension::Bot,
        Dimension::TypeLanguage,
        Dimension::Topic,
    ];

    /// Every dimension.
    pub const ALL: [Dimension; 11] = [
        Dimension::All,
        Dimension::Type,
        Dimension::Repo,
        Dimension::Org,
        Dimension::Language,
        Dimension::Bot,
        Dimension::TypeLanguage,
        Dimension::Topic,
        Dimension::ActiveRepos,
        Dimension::Actors,
        Dimension::GithutLanguage,
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
            Dimension::TypeLanguage => "type_language",
            Dimension::Topic => "topic",
            Dimension::ActiveRepos => "active_repos",
            Dimension::Actors => "actors",
            Dimension::GithutLanguage => "githut_language",
        }
    }

    /// Parses [`Dimension::as_str`] output.
    pub fn parse(text: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == text)
    }

    fn key<'a>(self, event: &'a Event, language: Option<&'a str>) -> Option<Cow<'a, str>> {
        match self {
            Dimension::All => Some(Cow::Borrowed("*")),
            Dimension::Type => Some(Cow::Borrowed(&event.kind)),
            Dimension::Repo => Some(Cow::Borrowed(&event.repo)),
            Dimension::Org => event.org.as_deref().map(Cow::Borrowed),
            Dimension::Language => language.map(Cow::Borrowed),
            Dimension::Bot => event.is_bot().then_some(Cow::Borrowed(event.kind.as_str())),
            Dimension::TypeLanguage => language.map(|l| Cow::Owned(type_language(&event.kind, l))),
            // Several keys per event: see `for_each_counter_as`.
            Dimension::Topic => None,
            // Distinct counts over a bucket, not per event: see `crate::history`.
            Dimension::ActiveRepos | Dimension::Actors | Dimension::GithutLanguage => None,
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

/// The key of the [`Dimension::TypeLanguage`] dimension.
pub fn type_language(kind: &str, language: &str) -> String {
    format!("{kind}/{language}")
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
    pub key: Cow<'a, str>,
}

/// What the store knows of an event's repository beyond the event itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RepoFacts<'a> {
    /// The repository's language, when the event does not name it.
    pub language: Option<&'a str>,
    /// The repository's topics.
    pub topics: &'a [String],
}

/// Calls `each` with every counter that `event` increments by one.
pub fn for_each_counter<'a>(event: &'a Event, each: impl FnMut(CounterKey<'a>)) {
    for_each_counter_as(event, RepoFacts::default(), each)
}

/// As [`for_each_counter`], with what is known of the event's repository: its language (used when the event
/// does not carry one) and its topics.
pub fn for_each_counter_as<'a>(
    event: &'a Event,
    repo: RepoFacts<'a>,
    mut each: impl FnMut(CounterKey<'a>),
) {
    let language = event.language.as_deref().or(repo.language);
    for granularity in Granularity::COUNTED {
        let bucket = granularity.bucket(event.created_at);
        for &dimension in granularity.dimensions() {
            if dimension == Dimension::Topic {
                for topic in repo.topics {
                    each(CounterKey {
                        granularity,
                        bucket,
                        dimension,
                        key: Cow::Borrowed(topic),
                    });
                }
            } else if let Some(key) = dimension.key(event, language) {
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
    fn quarters_start_on_their_first_day() {
        let may = crate::time::parse_timestamp("2024-05-17T13:00:00Z").unwrap();
        let q2 = Granularity::Quarter.bucket(may);
        assert_eq!(crate::time::format_timestamp(q2), "2024-04-01T00:00:00Z");
        assert_eq!(quarter_label(q2), "2024Q2");
        assert_eq!(quarter_start(2024, 2), q2);
        assert_eq!(Granularity::parse("quarter"), Some(Granularity::Quarter));
    }

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
        assert_eq!(keys.len(), 2 + 7 + 7);
        assert!(keys.contains(&(
            Granularity::Day,
            event.created_at - 59 * 60 - 59 - 6 * 3600,
            Dimension::TypeLanguage,
            "PullRequestEvent/Go".into()
        )));
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
