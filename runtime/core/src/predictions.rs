//! What the pipeline's model stage keeps: one prediction per event, model and version, and counters of the
//! predicted labels per time bucket and scope (everything, a repository, a language, an organisation).
//!
//! An event counts once per model: the first version that scores it increments the counters, a later version
//! that scores it again (after a promotion, or a redelivery across one) is kept beside it and counts nothing.
//! The embedded store and MongoDB implement [`PredictionStore`], tested by one conformance suite.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::aggregate::Granularity;
use crate::store::{StoreError, WriteOutcome};

/// Characters of the scored text kept with a prediction, for the dashboard's list of recent ones.
pub const EXCERPT_CHARS: usize = 280;

/// One prediction of a model version about one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPrediction {
    /// GitHub's event id.
    pub event_id: String,
    /// Model name, such as `sentiment`.
    pub model: String,
    /// The version that predicted.
    pub version: u32,
    /// The predicted label.
    pub label: String,
    /// Score of every label.
    pub scores: BTreeMap<String, f64>,
    /// The event's time, Unix seconds (counters are bucketed by it, so replays count like live data).
    pub at: i64,
    /// Repository full name.
    pub repo: String,
    /// Organisation login, if any.
    pub org: Option<String>,
    /// Repository language, where known.
    pub language: Option<String>,
    /// The start of the text the model saw, at most [`EXCERPT_CHARS`] characters.
    pub excerpt: String,
}

/// What a label counter is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every prediction; the key is `*`.
    All,
    /// Per repository.
    Repo,
    /// Per repository language.
    Language,
    /// Per organisation.
    Org,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [Scope::All, Scope::Repo, Scope::Language, Scope::Org];

    /// As stored and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Repo => "repo",
            Scope::Language => "language",
            Scope::Org => "org",
        }
    }

    /// Parses [`Scope::as_str`] output.
    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    fn key(self, p: &StoredPrediction) -> Option<&str> {
        match self {
            Scope::All => Some("*"),
            Scope::Repo => Some(&p.repo),
            Scope::Language => p.language.as_deref(),
            Scope::Org => p.org.as_deref(),
        }
    }
}

/// The bucket widths label counters are kept at.
pub const LABEL_GRANULARITIES: [Granularity; 2] = [Granularity::Day, Granularity::Month];

/// One label counter a prediction increments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelKey<'a> {
    /// Bucket width.
    pub granularity: Granularity,
    /// Bucket start, Unix seconds.
    pub bucket: i64,
    /// What the counter is kept for.
    pub scope: Scope,
    /// Which repository, language or organisation (`*` for [`Scope::All`]).
    pub key: &'a str,
    /// The predicted label.
    pub label: &'a str,
}

/// Calls `each` with every label counter that a prediction's event increments by one, the first time the event
/// is scored by its model.
pub fn for_each_label_counter<'a>(p: &'a StoredPrediction, mut each: impl FnMut(LabelKey<'a>)) {
    for granularity in LABEL_GRANULARITIES {
        let bucket = granularity.bucket(p.at);
        for scope in Scope::ALL {
            if let Some(key) = scope.key(p) {
                each(LabelKey {
                    granularity,
                    bucket,
                    scope,
                    key,
                    label: &p.label,
                });
            }
        }
    }
}

/// Which label counters to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelQuery {
    /// Model name.
    pub model: String,
    /// One of [`LABEL_GRANULARITIES`].
    pub granularity: Granularity,
    /// What the counters are kept for.
    pub scope: Scope,
    /// One key only, or every key of the scope.
    pub key: Option<String>,
    /// First bucket start included, Unix seconds.
    pub from: i64,
    /// First bucket start excluded, Unix seconds.
    pub to: i64,
}

/// A label counter's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelRow {
    /// Bucket start, Unix seconds.
    pub bucket: i64,
    /// Which repository, language or organisation (`*` for [`Scope::All`]).
    pub key: String,
    /// The predicted label.
    pub label: String,
    /// Events.
    pub count: u64,
}

/// Where predictions and their counters live.
pub trait PredictionStore: Send + Sync + 'static {
    /// Keeps the predictions not kept before (by event, model and version) and counts the events that no
    /// version of their model had scored, atomically per call. `inserted` counts predictions kept now.
    fn write_predictions(
        &self,
        predictions: Vec<StoredPrediction>,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// Label counters, ordered by bucket, key and label.
    fn label_counts(
        &self,
        query: LabelQuery,
    ) -> impl Future<Output = Result<Vec<LabelRow>, StoreError>> + Send;

    /// The latest predictions of `model` by event time (of one label, if given), newest first.
    fn recent_predictions(
        &self,
        model: &str,
        label: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredPrediction>, StoreError>> + Send;

    /// Predictions kept for `model`, every version.
    fn prediction_count(&self, model: &str)
    -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// The start of `text`, at most [`EXCERPT_CHARS`] characters, cut at a character boundary.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(language: Option<&str>, org: Option<&str>) -> StoredPrediction {
        StoredPrediction {
            event_id: "1".into(),
            model: "sentiment".into(),
            version: 1,
            label: "negative".into(),
            scores: BTreeMap::new(),
            at: crate::time::parse_timestamp("2024-05-17T13:00:00Z").unwrap(),
            repo: "o/r".into(),
            org: org.map(Into::into),
            language: language.map(Into::into),
            excerpt: String::new(),
        }
    }

    #[test]
    fn a_prediction_counts_per_day_and_month_under_each_scope_it_has() {
        let mut keys = Vec::new();
        let p = prediction(Some("Rust"), None);
        for_each_label_counter(&p, |k| {
            keys.push((
                k.granularity,
                k.scope,
                k.key.to_string(),
                k.label.to_string(),
            ))
        });
        assert_eq!(keys.len(), 2 * 3, "{keys:?}");
        assert!(keys.contains(&(
            Granularity::Month,
            Scope::Language,
            "Rust".into(),
            "negative".into()
        )));
        assert!(!keys.iter().any(|k| k.1 == Scope::Org));
        let mut n = 0;
        for_each_label_counter(&prediction(Some("Go"), Some("o")), |_| n += 1);
        assert_eq!(n, 8);
    }

    #[test]
    fn excerpts_stop_at_a_character_boundary() {
        let long = "é".repeat(EXCERPT_CHARS + 5);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
    }
}
