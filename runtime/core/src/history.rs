//! History over a span at once: counts per month, quarter and year, as the batch jobs compute them.
//!
//! The same definitions as `spark/jobs/history.py`, so that the runtime's own aggregator and Spark produce the
//! same rows from the same lake (the parity test holds them to it):
//!
//! - each event id counts once, whatever the files repeat;
//! - `all` (`*`), `type` (event type) and `type_language` (`PushEvent/Rust`: the event's language, which pull
//!   request payloads carry, or else its repository's from the metadata cache) count events;
//! - `bot` counts events of automation accounts per event type; they are left out of the next two;
//! - `active_repos` and `actors` (key `*`) count distinct repositories and people with events in the bucket.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::aggregate::{AggregateRow, Dimension, Granularity, type_language};
use crate::event::Event;

/// An aggregation of history in progress.
#[derive(Debug, Default)]
pub struct History {
    seen: HashSet<String>,
    counts: HashMap<(Granularity, i64, Dimension, String), u64>,
    distinct: HashMap<(Granularity, i64, Dimension), HashSet<String>>,
}

impl History {
    /// An empty aggregation.
    pub fn new() -> History {
        History::default()
    }

    /// Adds one event; `repo_language` is its repository's language from the metadata cache, if known.
    /// Returns `false` (and counts nothing) for an id already added.
    pub fn add(&mut self, event: &Event, repo_language: Option<&str>) -> bool {
        if !self.seen.insert(event.id.clone()) {
            return false;
        }
        let bot = event.is_bot();
        let language = event.language.as_deref().or(repo_language);
        for granularity in Granularity::HISTORY {
            let bucket = granularity.bucket(event.created_at);
            let mut count = |dimension, key: &str| {
                *self
                    .counts
                    .entry((granularity, bucket, dimension, key.to_string()))
                    .or_default() += 1;
            };
            count(Dimension::All, "*");
            count(Dimension::Type, &event.kind);
            if let Some(language) = language {
                count(
                    Dimension::TypeLanguage,
                    &type_language(&event.kind, language),
                );
            }
            if bot {
                count(Dimension::Bot, &event.kind);
            } else {
                for (dimension, key) in [
                    (Dimension::ActiveRepos, &event.repo),
                    (Dimension::Actors, &event.actor),
                ] {
                    self.distinct
                        .entry((granularity, bucket, dimension))
                        .or_default()
                        .insert(key.clone());
                }
            }
        }
        true
    }

    /// The counters, ordered by granularity, bucket, dimension and key.
    pub fn rows(self) -> Vec<AggregateRow> {
        let mut rows: BTreeMap<(Granularity, i64, Dimension, String), u64> =
            self.counts.into_iter().collect();
        for ((granularity, bucket, dimension), set) in self.distinct {
            rows.insert(
                (granularity, bucket, dimension, "*".into()),
                set.len() as u64,
            );
        }
        rows.into_iter()
            .map(
                |((granularity, bucket, dimension, key), count)| AggregateRow {
                    granularity,
                    bucket,
                    dimension,
                    key,
                    count,
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, kind: &str, actor: &str, repo: &str, at: &str) -> Event {
        Event::parse(&format!(
            r#"{{"id":"{id}","type":"{kind}","actor":{{"login":"{actor}"}},"repo":{{"name":"{repo}"}},"created_at":"{at}"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn counts_events_once_and_people_and_repositories_distinctly() {
        let mut history = History::new();
        assert!(history.add(
            &event("1", "PushEvent", "ana", "o/a", "2024-02-10T10:00:00Z"),
            Some("Rust")
        ));
        assert!(!history.add(
            &event("1", "PushEvent", "ana", "o/a", "2024-02-10T10:00:00Z"),
            Some("Rust")
        ));
        history.add(
            &event("2", "PushEvent", "ana", "o/b", "2024-03-01T00:00:00Z"),
            None,
        );
        history.add(
            &event(
                "3",
                "PushEvent",
                "dependabot[bot]",
                "o/c",
                "2024-03-02T00:00:00Z",
            ),
            None,
        );
        let rows = history.rows();
        let find = |g: Granularity, d: Dimension, k: &str| {
            rows.iter()
                .filter(|r| r.granularity == g && r.dimension == d && r.key == k)
                .map(|r| r.count)
                .sum::<u64>()
        };
        assert_eq!(find(Granularity::Quarter, Dimension::All, "*"), 3);
        assert_eq!(
            find(Granularity::Month, Dimension::All, "*"),
            3,
            "February 1 + March 2"
        );
        assert_eq!(
            find(Granularity::Year, Dimension::TypeLanguage, "PushEvent/Rust"),
            1
        );
        assert_eq!(find(Granularity::Year, Dimension::Bot, "PushEvent"), 1);
        assert_eq!(
            find(Granularity::Year, Dimension::Actors, "*"),
            1,
            "ana once; the bot left out"
        );
        assert_eq!(find(Granularity::Year, Dimension::ActiveRepos, "*"), 2);
    }
}
