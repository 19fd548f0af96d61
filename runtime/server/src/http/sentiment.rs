//! The sentiment of discussions as the model stage counted it, for the dashboard's Sentiment view.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/sentiment?granularity=day&scope=all&key=…` | per bucket: counts and percent shares of each label, overall or for one language, repository or organisation |
//! | `GET /api/sentiment/souring?limit=10&min=5` | the repositories whose share of negative texts rose most in the latest month with predictions, against their own earlier months |
//! | `GET /api/sentiment/recent?label=negative&limit=20` | the latest predictions by event time, with their repository and the start of the text |
//!
//! Every figure comes from the store's label counters ([`forgecast_core::predictions`]), which count an event
//! once per model; `total` is the number of texts scored in the bucket.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use forgecast_core::aggregate::Granularity;
use forgecast_core::predictions::{LabelQuery, LabelRow, PredictionStore, Scope};
use forgecast_core::time::format_timestamp;
use serde::{Deserialize, Serialize};

use super::Guard;
use super::guard::{bad, refuse};
use super::params::Params;
use crate::pipeline::Shared;
use crate::pipeline::score::SENTIMENT;

/// The labels, in the order the API lists them.
pub const LABELS: [&str; 3] = ["negative", "neutral", "positive"];
/// Most buckets one answer holds (the latest ones).
pub const MAX_BUCKETS: usize = 400;
/// Most rows of `recent` and `souring`.
pub const MAX_LIST: usize = 200;
/// Languages offered for comparison beside the overall series.
const LANGUAGES_LISTED: usize = 20;

/// `GET /api/sentiment` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// `day` (default) or `month`.
    pub granularity: Option<String>,
    /// `all` (default), `language`, `repo` or `org`.
    pub scope: Option<String>,
    /// The language, repository or organisation; needed unless the scope is `all`.
    pub key: Option<String>,
}

/// One bucket of the series.
#[derive(Debug, Serialize)]
pub struct Bucket {
    /// Start, RFC 3339.
    pub bucket: String,
    /// Texts per label.
    pub counts: BTreeMap<String, u64>,
    /// Texts scored.
    pub total: u64,
    /// Percent of the bucket's texts per label, two decimals.
    pub shares: BTreeMap<String, f64>,
}

/// The answer of `GET /api/sentiment`.
#[derive(Debug, Serialize)]
pub struct Series {
    /// Model name.
    pub model: &'static str,
    /// Bucket width.
    pub granularity: Granularity,
    /// What the counters are kept for.
    pub scope: Scope,
    /// The language, repository or organisation (`*` overall).
    pub key: String,
    /// The labels.
    pub labels: [&'static str; 3],
    /// Buckets, oldest first (the latest [`MAX_BUCKETS`]).
    pub series: Vec<Bucket>,
    /// The languages with the most scored texts, most first.
    pub languages: Vec<String>,
}

fn share(part: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (part as f64 * 10_000.0 / total as f64).round() / 100.0
}

fn unavailable(e: impl ToString) -> Response {
    refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
}

fn every(model: &str, granularity: Granularity, scope: Scope, key: Option<String>) -> LabelQuery {
    LabelQuery {
        model: model.into(),
        granularity,
        scope,
        key,
        from: i64::MIN,
        to: i64::MAX,
    }
}

/// Per bucket, the counts of each label: rows ordered by bucket.
fn buckets(rows: &[LabelRow]) -> Vec<Bucket> {
    let mut by_bucket: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
    for row in rows {
        *by_bucket
            .entry(row.bucket)
            .or_default()
            .entry(row.label.clone())
            .or_default() += row.count;
    }
    by_bucket
        .into_iter()
        .map(|(bucket, mut counts)| {
            for label in LABELS {
                counts.entry(label.to_string()).or_default();
            }
            let total = counts.values().sum();
            let shares = counts
                .iter()
                .map(|(label, n)| (label.clone(), share(*n, total)))
                .collect();
            Bucket {
                bucket: format_timestamp(bucket),
                counts,
                total,
                shares,
            }
        })
        .collect()
}

pub(super) async fn series(
    State(shared): State<Arc<Shared>>,
    Params(query): Params<SeriesQuery>,
) -> Response {
    let granularity = match query.granularity.as_deref().unwrap_or("day") {
        "day" => Granularity::Day,
        "month" => Granularity::Month,
        other => return bad(format!("granularity {other:?}: use day or month")),
    };
    let scope = match Scope::parse(query.scope.as_deref().unwrap_or("all")) {
        Some(scope) => scope,
        None => return bad("scope: use all, language, repo or org"),
    };
    let key = match (scope, query.key.filter(|k| !k.trim().is_empty())) {
        (Scope::All, _) => "*".to_string(),
        (_, Some(key)) => key,
        (_, None) => {
            return bad(format!(
                "scope={} needs a key (a {})",
                scope.as_str(),
                scope.as_str()
            ));
        }
    };
    let rows = match shared
        .store
        .label_counts(every(SENTIMENT, granularity, scope, Some(key.clone())))
        .await
    {
        Ok(rows) => rows,
        Err(e) => return unavailable(e),
    };
    let mut series = buckets(&rows);
    if series.len() > MAX_BUCKETS {
        series.drain(..series.len() - MAX_BUCKETS);
    }
    let languages = match shared
        .store
        .label_counts(every(SENTIMENT, Granularity::Month, Scope::Language, None))
        .await
    {
        Ok(rows) => {
            let mut totals: BTreeMap<String, u64> = BTreeMap::new();
            for row in rows {
                *totals.entry(row.key).or_default() += row.count;
            }
            let mut ranked: Vec<(String, u64)> = totals.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            ranked
                .into_iter()
                .take(LANGUAGES_LISTED)
                .map(|(k, _)| k)
                .collect()
        }
        Err(e) => return unavailable(e),
    };
    Json(Series {
        model: SENTIMENT,
        granularity,
        scope,
        key,
        labels: LABELS,
        series,
        languages,
    })
    .into_response()
}

/// `GET /api/sentiment/souring` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SouringQuery {
    /// Rows, at most [`MAX_LIST`] (default 10).
    pub limit: Option<usize>,
    /// Texts a repository needs in the month and before it to be compared (default 3).
    pub min: Option<u64>,
}

/// A repository whose discussions turned more negative.
#[derive(Debug, Serialize, PartialEq)]
pub struct Souring {
    /// Full name.
    pub repo: String,
    /// Percent negative in the month.
    pub negative_share: f64,
    /// Percent negative in every earlier month together.
    pub past_negative_share: f64,
    /// The difference, in percentage points.
    pub change: f64,
    /// Texts scored in the month.
    pub count: u64,
    /// Texts scored before it.
    pub past_count: u64,
}

/// The answer of `GET /api/sentiment/souring`.
#[derive(Debug, Serialize)]
pub struct SouringAnswer {
    /// The latest month with predictions, `YYYY-MM`, or `null` without any.
    pub month: Option<String>,
    /// Most souring first; only repositories whose negative share rose.
    pub repos: Vec<Souring>,
}

/// The repositories whose negative share rose most in the latest month of `rows` (month × repository counters).
pub fn souring(rows: &[LabelRow], min: u64, limit: usize) -> SouringAnswer {
    let Some(latest) = rows.iter().map(|r| r.bucket).max() else {
        return SouringAnswer {
            month: None,
            repos: Vec::new(),
        };
    };
    // (negative, total) now and before, per repository.
    let mut tallies: BTreeMap<&str, [(u64, u64); 2]> = BTreeMap::new();
    for row in rows {
        let when = usize::from(row.bucket == latest);
        let tally = &mut tallies.entry(&row.key).or_default()[when];
        tally.1 += row.count;
        if row.label == "negative" {
            tally.0 += row.count;
        }
    }
    let mut repos: Vec<Souring> = tallies
        .into_iter()
        .filter(|(_, [past, now])| past.1 >= min && now.1 >= min)
        .map(|(repo, [past, now])| {
            let (negative_share, past_negative_share) =
                (share(now.0, now.1), share(past.0, past.1));
            Souring {
                repo: repo.to_string(),
                negative_share,
                past_negative_share,
                change: ((negative_share - past_negative_share) * 100.0).round() / 100.0,
                count: now.1,
                past_count: past.1,
            }
        })
        .filter(|s| s.change > 0.0)
        .collect();
    repos.sort_by(|a, b| {
        b.change
            .total_cmp(&a.change)
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| a.repo.cmp(&b.repo))
    });
    repos.truncate(limit);
    SouringAnswer {
        month: Some(format_timestamp(latest)[..7].to_string()),
        repos,
    }
}

pub(super) async fn souring_repos(
    State(shared): State<Arc<Shared>>,
    Extension(guard): Extension<Arc<Guard>>,
    Params(query): Params<SouringQuery>,
) -> Response {
    let limit = query.limit.unwrap_or(10);
    if limit > MAX_LIST {
        return bad(format!("limit {limit}: at most {MAX_LIST}"));
    }
    // Every repository's monthly counters are read: one of the heavy requests.
    let _turn = match guard.heavy_turn().await {
        Ok(turn) => turn,
        Err(refusal) => return refusal.into_response(),
    };
    match shared
        .store
        .label_counts(every(SENTIMENT, Granularity::Month, Scope::Repo, None))
        .await
    {
        Ok(rows) => Json(souring(&rows, query.min.unwrap_or(3).max(1), limit)).into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /api/sentiment/recent` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecentQuery {
    /// One label only (default: every label).
    pub label: Option<String>,
    /// Rows, at most [`MAX_LIST`] (default 20).
    pub limit: Option<usize>,
}

/// One recent prediction.
#[derive(Debug, Serialize)]
pub struct Recent {
    /// GitHub's event id.
    pub event_id: String,
    /// Repository full name.
    pub repo: String,
    /// Event time, RFC 3339.
    pub at: String,
    /// Predicted label.
    pub label: String,
    /// Score of every label.
    pub scores: BTreeMap<String, f64>,
    /// The start of the text.
    pub text: String,
    /// The version that predicted.
    pub version: u32,
}

pub(super) async fn recent(
    State(shared): State<Arc<Shared>>,
    Params(query): Params<RecentQuery>,
) -> Response {
    let limit = query.limit.unwrap_or(20);
    if limit > MAX_LIST {
        return bad(format!("limit {limit}: at most {MAX_LIST}"));
    }
    if let Some(label) = query.label.as_deref().filter(|l| !LABELS.contains(l)) {
        return bad(format!("label {label:?}: use {}", LABELS.join(", ")));
    }
    match shared
        .store
        .recent_predictions(SENTIMENT, query.label.as_deref(), limit)
        .await
    {
        Ok(found) => Json(serde_json::json!({
            "predictions": found
                .into_iter()
                .map(|p| Recent {
                    event_id: p.event_id,
                    repo: p.repo,
                    at: format_timestamp(p.at),
                    label: p.label,
                    scores: p.scores,
                    text: p.excerpt,
                    version: p.version,
                })
                .collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => unavailable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bucket: i64, key: &str, label: &str, count: u64) -> LabelRow {
        LabelRow {
            bucket,
            key: key.into(),
            label: label.into(),
            count,
        }
    }

    #[test]
    fn souring_compares_the_latest_month_with_each_repository_s_past() {
        let (may, june) = (1_714_521_600, 1_717_200_000);
        let rows = [
            // a: 1 of 4 negative before, 3 of 4 now: +50 points.
            row(may, "o/a", "negative", 1),
            row(may, "o/a", "neutral", 3),
            row(june, "o/a", "negative", 3),
            row(june, "o/a", "positive", 1),
            // b: 0 of 3 before, 1 of 3 now: +33.33.
            row(may, "o/b", "neutral", 3),
            row(june, "o/b", "negative", 1),
            row(june, "o/b", "neutral", 2),
            // c: friendlier now; d: too few texts before.
            row(may, "o/c", "negative", 3),
            row(june, "o/c", "positive", 3),
            row(may, "o/d", "neutral", 1),
            row(june, "o/d", "negative", 5),
        ];
        let answer = souring(&rows, 3, 10);
        assert_eq!(answer.month.as_deref(), Some("2024-06"));
        let got: Vec<(&str, f64, f64, f64)> = answer
            .repos
            .iter()
            .map(|s| {
                (
                    s.repo.as_str(),
                    s.negative_share,
                    s.past_negative_share,
                    s.change,
                )
            })
            .collect();
        assert_eq!(got, [("o/a", 75.0, 25.0, 50.0), ("o/b", 33.33, 0.0, 33.33)]);
        assert_eq!(souring(&rows, 3, 1).repos.len(), 1);
        assert_eq!(souring(&[], 3, 10).month, None);
    }

    #[test]
    fn buckets_give_every_label_and_shares_in_percent() {
        let got = buckets(&[row(0, "*", "negative", 1), row(0, "*", "positive", 2)]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].total, 3);
        assert_eq!(got[0].counts["neutral"], 0);
        assert_eq!(got[0].shares["positive"], 66.67);
    }
}
