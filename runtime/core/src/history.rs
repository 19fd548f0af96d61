//! History over a span at once: counts per month, quarter and year, as the batch jobs compute them.
//!
//! The same definitions as `spark/jobs/history.py`, so that the runtime's own aggregator and Spark produce the
//! same rows from the same lake (the parity test holds them to it):
//!
//! - each event id counts once, whatever the files repeat;
//! - `all` (`*`), `type` (event type) and `type_language` (`PushEvent/Rust`: the event's language, which pull
//!   request payloads carry, or else its repository's from the metadata cache) count events, and `topic` counts
//!   each event once under each of its repository's cached topics;
//! - `bot` counts events of automation accounts per event type; they are left out of the next two;
//! - `active_repos` and `actors` (key `*`) count distinct repositories and people with events in the bucket.

use std::collections::BTreeMap;

// Hashing the counters' keys is a good part of the work per event: foldhash is several times faster than the
// standard library's SipHash on short keys, and these keys (event types, languages, logins, names, ids) come
// from the data being counted, where resistance to chosen collisions buys nothing.
use foldhash::{HashMap, HashSet};

use crate::aggregate::{AggregateRow, Dimension, Granularity, RepoFacts, type_language};
use crate::event::EventFields;

/// The counters of one bucket.
#[derive(Debug, Default)]
struct Bucket {
    all: u64,
    types: HashMap<String, u64>,
    type_languages: HashMap<String, u64>,
    topics: HashMap<String, u64>,
    bots: HashMap<String, u64>,
    repos: HashSet<String>,
    actors: HashSet<String>,
}

/// Adds one to `key`, allocating only the first time the key is seen.
fn bump(map: &mut HashMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

fn note(set: &mut HashSet<String>, key: &str) {
    if !set.contains(key) {
        set.insert(key.to_string());
    }
}

/// Event ids seen so far: GitHub's are numbers, kept as such; anything else as text.
#[derive(Debug, Default)]
pub struct SeenIds {
    numbers: HashSet<u64>,
    text: HashSet<String>,
}

impl SeenIds {
    /// Whether `id` is seen for the first time (and remembers it).
    pub fn first_time(&mut self, id: &str) -> bool {
        match id.parse::<u64>() {
            Ok(number) if number.to_string() == id => self.numbers.insert(number),
            _ => self.text.insert(id.to_string()),
        }
    }
}

/// An aggregation of history in progress.
#[derive(Debug, Default)]
pub struct History {
    seen: SeenIds,
    buckets: HashMap<(Granularity, i64), Bucket>,
}

impl History {
    /// An empty aggregation.
    pub fn new() -> History {
        History::default()
    }

    /// Adds one event; `repo` is what the metadata cache knows of its repository (language, topics).
    /// Returns `false` (and counts nothing) for an id already added.
    pub fn add(&mut self, event: &EventFields<'_>, repo: RepoFacts<'_>) -> bool {
        if !self.seen.first_time(&event.id) {
            return false;
        }
        self.add_unique(event, repo);
        true
    }

    /// Adds an event whose id the caller knows to be new (it deduplicates across several aggregations with
    /// one [`SeenIds`], then [`History::merge`]s them).
    pub fn add_unique(&mut self, event: &EventFields<'_>, repo: RepoFacts<'_>) {
        let bot = event.is_bot();
        let language = event
            .language
            .as_deref()
            .or(repo.language)
            .map(|l| type_language(&event.kind, l));
        for granularity in Granularity::HISTORY {
            let bucket = self
                .buckets
                .entry((granularity, granularity.bucket(event.created_at)))
                .or_default();
            bucket.all += 1;
            bump(&mut bucket.types, &event.kind);
            if let Some(key) = &language {
                bump(&mut bucket.type_languages, key);
            }
            for topic in repo.topics {
                bump(&mut bucket.topics, topic);
            }
            if bot {
                bump(&mut bucket.bots, &event.kind);
            } else {
                note(&mut bucket.repos, &event.repo);
                note(&mut bucket.actors, &event.actor);
            }
        }
    }

    /// Adds another aggregation over other event ids.
    pub fn merge(&mut self, other: History) {
        for (at, b) in other.buckets {
            let mine = self.buckets.entry(at).or_default();
            mine.all += b.all;
            for (from, to) in [
                (b.types, &mut mine.types),
                (b.type_languages, &mut mine.type_languages),
                (b.topics, &mut mine.topics),
                (b.bots, &mut mine.bots),
            ] {
                for (key, n) in from {
                    *to.entry(key).or_default() += n;
                }
            }
            mine.repos.extend(b.repos);
            mine.actors.extend(b.actors);
        }
    }

    /// The counters, ordered by granularity, bucket, dimension and key.
    pub fn rows(self) -> Vec<AggregateRow> {
        let mut rows: BTreeMap<(Granularity, i64, Dimension, String), u64> = BTreeMap::new();
        for ((granularity, at), b) in self.buckets {
            let mut put = |dimension, key: String, count| {
                rows.insert((granularity, at, dimension, key), count);
            };
            put(Dimension::All, "*".into(), b.all);
            for (key, n) in b.types {
                put(Dimension::Type, key, n);
            }
            for (key, n) in b.type_languages {
                put(Dimension::TypeLanguage, key, n);
            }
            for (key, n) in b.topics {
                put(Dimension::Topic, key, n);
            }
            for (key, n) in b.bots {
                put(Dimension::Bot, key, n);
            }
            if !b.repos.is_empty() {
                put(Dimension::ActiveRepos, "*".into(), b.repos.len() as u64);
                put(Dimension::Actors, "*".into(), b.actors.len() as u64);
            }
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
    use crate::event::Event;

    fn event(id: &str, kind: &str, actor: &str, repo: &str, at: &str) -> Event {
        Event::parse(&format!(
            r#"{{"id":"{id}","type":"{kind}","actor":{{"login":"{actor}"}},"repo":{{"name":"{repo}"}},"created_at":"{at}"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn counts_events_once_and_people_and_repositories_distinctly() {
        let mut history = History::new();
        let topics = ["cli".to_string()];
        let rust = RepoFacts {
            language: Some("Rust"),
            topics: &topics,
        };
        let none = RepoFacts::default();
        assert!(history.add(
            &event("1", "PushEvent", "ana", "o/a", "2024-02-10T10:00:00Z").fields(),
            rust
        ));
        assert!(!history.add(
            &event("1", "PushEvent", "ana", "o/a", "2024-02-10T10:00:00Z").fields(),
            rust
        ));
        history.add(
            &event("2", "PushEvent", "ana", "o/b", "2024-03-01T00:00:00Z").fields(),
            none,
        );
        history.add(
            &event(
                "3",
                "PushEvent",
                "dependabot[bot]",
                "o/c",
                "2024-03-02T00:00:00Z",
            )
            .fields(),
            none,
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
        assert_eq!(find(Granularity::Quarter, Dimension::Topic, "cli"), 1);
    }

    #[test]
    fn merged_aggregations_equal_one() {
        let events = [
            event("1", "PushEvent", "ana", "o/a", "2024-02-10T10:00:00Z"),
            event("2", "IssuesEvent", "bo", "o/a", "2024-02-11T10:00:00Z"),
            event("3", "PushEvent", "ana", "o/b", "2024-05-01T00:00:00Z"),
        ];
        let mut one = History::new();
        let (mut left, mut right) = (History::new(), History::new());
        for (i, e) in events.iter().enumerate() {
            let e = e.fields();
            one.add(&e, RepoFacts::default());
            if i % 2 == 0 {
                left.add_unique(&e, RepoFacts::default())
            } else {
                right.add_unique(&e, RepoFacts::default())
            }
        }
        left.merge(right);
        assert_eq!(left.rows(), one.rows());
    }
}
