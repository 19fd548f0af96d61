//! `GET /api/trends`: shares and counts per language over the years, with the growth table and the overlay of
//! each year's quarters.
//!
//! Query: `metric` (`PullRequestEvent`, the default, `PushEvent`, `WatchEvent` or `IssuesEvent`), `granularity`
//! (`quarter`, the default, or `year`), `from` and `to` (years, both included), `languages` (comma-separated;
//! the eight largest of the last eight periods with data by default) and `focus` (the language of the overlay; the first one by
//! default). Counts are the bundled GitHut history (2012Q2-2024Q1) plus the runtime's own counts of events whose
//! repository language is known, rolled up from days into quarters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike};
use forgecast_core::aggregate::{
    AggregateQuery, Dimension, Granularity, quarter_label, quarter_start,
};
use forgecast_core::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::pipeline::Shared;

/// Event types with a history series.
pub const METRICS: [&str; 4] = ["PullRequestEvent", "PushEvent", "WatchEvent", "IssuesEvent"];
/// Languages shown when none are chosen.
const DEFAULT_LANGUAGES: usize = 8;
/// Rows of the growth table on each side (risers, fallers).
const GROWTH_ROWS: usize = 5;

/// The query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendsQuery {
    metric: Option<String>,
    granularity: Option<String>,
    from: Option<i32>,
    to: Option<i32>,
    languages: Option<String>,
    focus: Option<String>,
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct Trends {
    /// Event type counted.
    pub metric: String,
    /// `quarter` or `year`.
    pub granularity: String,
    /// Period labels (`2024Q1` or `2024`), oldest first.
    pub periods: Vec<String>,
    /// Events of the metric per period, all languages.
    pub totals: Vec<u64>,
    /// The chosen languages.
    pub series: Vec<LanguageSeries>,
    /// Largest languages of the last eight periods with data, to choose from.
    pub available: Vec<String>,
    /// Share changes from the same period a year earlier.
    pub growth: Option<Growth>,
    /// One language's share per quarter of each year, to overlay the years.
    pub overlay: Option<Overlay>,
}

/// One language over the periods.
#[derive(Debug, Serialize)]
pub struct LanguageSeries {
    /// Language.
    pub language: String,
    /// Events per period.
    pub counts: Vec<u64>,
    /// Percent of the period's total, `null` where the period has no data.
    pub shares: Vec<Option<f64>>,
}

/// The growth table.
#[derive(Debug, Serialize)]
pub struct Growth {
    /// The latest period that has a period a year earlier.
    pub period: String,
    /// That period a year earlier.
    pub previous: String,
    /// Largest share gains, biggest first.
    pub risers: Vec<GrowthRow>,
    /// Largest share losses, biggest first.
    pub fallers: Vec<GrowthRow>,
}

/// One language in the growth table.
#[derive(Debug, Serialize)]
pub struct GrowthRow {
    /// Language.
    pub language: String,
    /// Percent share in the period.
    pub share: f64,
    /// Percent share a year earlier.
    pub previous_share: f64,
    /// Difference in percentage points.
    pub change: f64,
}

/// One language's share per quarter, one line per year.
#[derive(Debug, Serialize)]
pub struct Overlay {
    /// Language.
    pub language: String,
    /// Each year with data: its Q1–Q4 shares (`null` where missing).
    pub years: Vec<OverlayYear>,
}

/// One line of the overlay.
#[derive(Debug, Serialize)]
pub struct OverlayYear {
    /// Year.
    pub year: i32,
    /// Percent shares of Q1 to Q4.
    pub shares: [Option<f64>; 4],
}

fn year_of(bucket: i64) -> i32 {
    DateTime::from_timestamp(bucket, 0)
        .unwrap_or_default()
        .year()
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Quarter bucket → language → events, for one metric, history and live counts together.
async fn quarterly(
    shared: &Shared,
    metric: &str,
    from: i64,
    to: i64,
) -> Result<BTreeMap<i64, BTreeMap<String, u64>>, StoreError> {
    let prefix = format!("{metric}/");
    let mut counts: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
    for granularity in [Granularity::Quarter, Granularity::Day] {
        let rows = shared
            .store
            .aggregates(AggregateQuery {
                granularity,
                dimension: Dimension::TypeLanguage,
                from,
                to,
            })
            .await?;
        for row in rows {
            if let Some(language) = row.key.strip_prefix(&prefix) {
                let quarter = Granularity::Quarter.bucket(row.bucket);
                *counts
                    .entry(quarter)
                    .or_default()
                    .entry(language.to_string())
                    .or_default() += row.count;
            }
        }
    }
    Ok(counts)
}

/// Computes the trends; `Err` with a message for a bad query.
pub async fn compute(
    shared: &Shared,
    query: TrendsQuery,
) -> Result<Result<Trends, String>, StoreError> {
    let metric = query.metric.unwrap_or_else(|| METRICS[0].to_string());
    if !METRICS.contains(&metric.as_str()) {
        return Ok(Err(format!(
            "metric {metric:?} has no series; use one of {}",
            METRICS.join(", ")
        )));
    }
    let yearly = match query.granularity.as_deref().unwrap_or("quarter") {
        "quarter" => false,
        "year" => true,
        other => return Ok(Err(format!("granularity {other:?}: use quarter or year"))),
    };
    let this_year = chrono::Utc::now().year();
    let (from, to) = (query.from.unwrap_or(2012), query.to.unwrap_or(this_year));
    if from > to || !(1970..=9999).contains(&from) || !(1970..=9999).contains(&to) {
        return Ok(Err(format!("years {from} to {to} are not a range")));
    }
    let quarters = quarterly(
        shared,
        &metric,
        quarter_start(from, 1),
        quarter_start(to + 1, 1),
    )
    .await?;

    // Periods: quarters, or years summing their quarters.
    let mut periods: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
    for (bucket, languages) in &quarters {
        let key = if yearly {
            i64::from(year_of(*bucket))
        } else {
            *bucket
        };
        let period = periods.entry(key).or_default();
        for (language, n) in languages {
            *period.entry(language.clone()).or_default() += n;
        }
    }
    // Every period between the first and the last, empty ones included, so the time axis has no hidden gaps.
    if let (Some(&first), Some(&last)) = (periods.keys().next(), periods.keys().last()) {
        let mut key = first;
        while key < last {
            periods.entry(key).or_default();
            key = if yearly { key + 1 } else { next_quarter(key) };
        }
    }
    let label = |key: i64| {
        if yearly {
            key.to_string()
        } else {
            quarter_label(key)
        }
    };
    let totals: Vec<u64> = periods.values().map(|p| p.values().sum()).collect();
    let share = |period: &BTreeMap<String, u64>, language: &str| -> Option<f64> {
        let total: u64 = period.values().sum();
        (total > 0)
            .then(|| round(100.0 * *period.get(language).unwrap_or(&0) as f64 / total as f64))
    };

    // Languages to offer, largest first over the last eight periods with data.
    let mut recent: BTreeMap<&str, u64> = BTreeMap::new();
    for period in periods.values().rev().filter(|p| !p.is_empty()).take(8) {
        for (language, n) in period {
            *recent.entry(language).or_default() += n;
        }
    }
    let mut available: Vec<(String, u64)> = recent
        .into_iter()
        .map(|(l, n)| (l.to_string(), n))
        .collect();
    available.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let available: Vec<String> = available.into_iter().take(30).map(|(l, _)| l).collect();
    let languages: Vec<String> = match query.languages.as_deref().filter(|l| !l.trim().is_empty()) {
        Some(list) => list
            .split(',')
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        None => available.iter().take(DEFAULT_LANGUAGES).cloned().collect(),
    };
    let series = languages
        .iter()
        .map(|language| LanguageSeries {
            language: language.clone(),
            counts: periods
                .values()
                .map(|p| *p.get(language).unwrap_or(&0))
                .collect(),
            shares: periods.values().map(|p| share(p, language)).collect(),
        })
        .collect();

    // Growth: the latest period with a period one year before it.
    let year_before = |key: i64| {
        if yearly {
            key - 1
        } else {
            quarter_start(year_of(key) - 1, quarter_label(key).as_bytes()[5] - b'0')
        }
    };
    let has_data = |key: i64| periods.get(&key).is_some_and(|p| !p.is_empty());
    let growth = periods
        .keys()
        .rev()
        .find(|k| has_data(**k) && has_data(year_before(**k)))
        .map(|&key| {
            let (now, before) = (&periods[&key], &periods[&year_before(key)]);
            let mut rows: Vec<GrowthRow> = now
                .keys()
                .filter(|l| before.contains_key(*l))
                .map(|l| {
                    let (s, p) = (
                        share(now, l).unwrap_or(0.0),
                        share(before, l).unwrap_or(0.0),
                    );
                    GrowthRow {
                        language: l.clone(),
                        share: s,
                        previous_share: p,
                        change: round(s - p),
                    }
                })
                .collect();
            rows.sort_by(|a, b| {
                b.change
                    .total_cmp(&a.change)
                    .then(a.language.cmp(&b.language))
            });
            let risers = rows
                .iter()
                .filter(|r| r.change > 0.0)
                .take(GROWTH_ROWS)
                .map(clone_row)
                .collect();
            let fallers = rows
                .iter()
                .rev()
                .filter(|r| r.change < 0.0)
                .take(GROWTH_ROWS)
                .map(clone_row)
                .collect();
            Growth {
                period: label(key),
                previous: label(year_before(key)),
                risers,
                fallers,
            }
        });

    let focus = query.focus.or_else(|| languages.first().cloned());
    let overlay = focus.map(|language| {
        let mut years: BTreeMap<i32, [Option<f64>; 4]> = BTreeMap::new();
        for (bucket, period) in &quarters {
            let q = (quarter_label(*bucket).as_bytes()[5] - b'1') as usize;
            years.entry(year_of(*bucket)).or_default()[q] = share(period, &language);
        }
        Overlay {
            language,
            years: years
                .into_iter()
                .map(|(year, shares)| OverlayYear { year, shares })
                .collect(),
        }
    });

    Ok(Ok(Trends {
        metric,
        granularity: if yearly { "year" } else { "quarter" }.into(),
        periods: periods.keys().map(|k| label(*k)).collect(),
        totals,
        series,
        available,
        growth,
        overlay,
    }))
}

/// The start of the quarter after the one starting at `bucket`.
fn next_quarter(bucket: i64) -> i64 {
    Granularity::Quarter.bucket(bucket + 100 * 86_400)
}

fn clone_row(r: &GrowthRow) -> GrowthRow {
    GrowthRow {
        language: r.language.clone(),
        share: r.share,
        previous_share: r.previous_share,
        change: r.change,
    }
}

pub(super) async fn trends(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<TrendsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return (
            StatusCode::BAD_REQUEST,
            "unknown or malformed parameter; use metric, granularity, from, to, languages, focus\n",
        )
            .into_response();
    };
    match compute(&shared, query).await {
        Ok(Ok(trends)) => Json(trends).into_response(),
        Ok(Err(message)) => (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}
