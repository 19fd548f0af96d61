//! `GET /api/trends`: shares and counts per language or event type over the years, with the growth table and
//! the overlay of each year's quarters (or months).
//!
//! Query parameters, all optional:
//!
//! | parameter | values | default |
//! |---|---|---|
//! | `dimension` | `language` (events of one type per repository language), `type` (events per type), `topic` (events per repository topic) | `language` |
//! | `metric` | for languages: `PullRequestEvent`, `PushEvent`, `WatchEvent`, `IssuesEvent` | `PullRequestEvent` |
//! | `granularity` | `month`, `quarter`, `year` | `quarter` |
//! | `from`, `to` | years, both included | 2012, this year |
//! | `keys` | comma-separated languages or types to compare | the eight largest of the last eight periods with data |
//! | `focus` | the language or type of the overlay | the first compared |
//!
//! Counts are the bundled GitHut history (quarterly, 2012Q2–2024Q1, languages only) plus the runtime's own day
//! counters rolled up. Months therefore only show what this instance counted. Periods without data between the
//! first and the last are listed empty, so the time axis hides no gap.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, NaiveDate};
use forgecast_core::aggregate::{
    AggregateQuery, Dimension, Granularity, month_start, quarter_label, quarter_start,
};
use forgecast_core::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

use super::Guard;
use super::guard::{bad, refuse};
use super::params::Params;
use crate::backends::AnyStore;
use crate::pipeline::Shared;

/// Event types with a language history series.
pub const METRICS: [&str; 4] = ["PullRequestEvent", "PushEvent", "WatchEvent", "IssuesEvent"];
/// Keys compared when none are chosen.
const DEFAULT_KEYS: usize = 8;
/// Keys offered to choose from.
const AVAILABLE: usize = 30;
/// Rows of the growth table on each side (risers, fallers).
const GROWTH_ROWS: usize = 5;
/// Years drawn in the overlay.
const OVERLAY_YEARS: usize = 6;

/// The query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendsQuery {
    /// `language`, `type` or `topic`.
    pub dimension: Option<String>,
    /// For languages: the event type counted.
    pub metric: Option<String>,
    /// `month`, `quarter` or `year`.
    pub granularity: Option<String>,
    /// First year.
    pub from: Option<i32>,
    /// Last year.
    pub to: Option<i32>,
    /// Comma-separated keys.
    pub keys: Option<String>,
    /// The overlay's key.
    pub focus: Option<String>,
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct Trends {
    /// `language`, `type` or `topic`.
    pub dimension: String,
    /// Event type counted per language; `null` for types.
    pub metric: Option<String>,
    /// `month`, `quarter` or `year`.
    pub granularity: String,
    /// Period labels (`2024-03`, `2024Q1` or `2024`), oldest first.
    pub periods: Vec<String>,
    /// Events per period, all keys.
    pub totals: Vec<u64>,
    /// The compared languages or types.
    pub series: Vec<Series>,
    /// The largest keys of the last eight periods with data, to choose from.
    pub available: Vec<String>,
    /// Share changes from the same period a year earlier.
    pub growth: Option<Growth>,
    /// One key's share per quarter (or month) of each year, to overlay the years.
    pub overlay: Option<Overlay>,
}

/// One key over the periods.
#[derive(Debug, Serialize)]
pub struct Series {
    /// Language or event type.
    pub key: String,
    /// Events per period.
    pub counts: Vec<u64>,
    /// Percent of the period's total, `null` where the period has no data.
    pub shares: Vec<Option<f64>>,
}

/// The growth table.
#[derive(Debug, Serialize)]
pub struct Growth {
    /// The latest period with data that has data a year earlier.
    pub period: String,
    /// That period a year earlier.
    pub previous: String,
    /// Largest share gains, biggest first.
    pub risers: Vec<GrowthRow>,
    /// Largest share losses, biggest first.
    pub fallers: Vec<GrowthRow>,
}

/// One key in the growth table.
#[derive(Debug, Clone, Serialize)]
pub struct GrowthRow {
    /// Language or event type.
    pub key: String,
    /// Percent share in the period.
    pub share: f64,
    /// Percent share a year earlier.
    pub previous_share: f64,
    /// Difference in percentage points.
    pub change: f64,
}

/// One key's share within each year, one line per year.
#[derive(Debug, Serialize)]
pub struct Overlay {
    /// Language or event type.
    pub key: String,
    /// The parts of a year: `Q1`–`Q4`, or `Jan`–`Dec` for monthly trends.
    pub slots: Vec<String>,
    /// The most recent years with data.
    pub years: Vec<OverlayYear>,
}

/// One line of the overlay.
#[derive(Debug, Serialize)]
pub struct OverlayYear {
    /// Year.
    pub year: i32,
    /// Percent shares per slot (`null` where missing).
    pub shares: Vec<Option<f64>>,
}

/// Calendar periods, each identified by the Unix time it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A calendar month.
    Month,
    /// A calendar quarter.
    Quarter,
    /// A calendar year.
    Year,
}

fn date(unix: i64) -> NaiveDate {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .date_naive()
}

impl Period {
    /// From its name.
    pub fn parse(text: &str) -> Option<Period> {
        match text {
            "month" => Some(Period::Month),
            "quarter" => Some(Period::Quarter),
            "year" => Some(Period::Year),
            _ => None,
        }
    }

    /// Its name: `month`, `quarter` or `year`.
    pub fn name(self) -> &'static str {
        match self {
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
        }
    }

    /// The counters' granularity of the same width.
    pub fn granularity(self) -> Granularity {
        match self {
            Period::Month => Granularity::Month,
            Period::Quarter => Granularity::Quarter,
            Period::Year => Granularity::Year,
        }
    }

    /// Start of the period holding `at`.
    pub fn start(self, at: i64) -> i64 {
        self.granularity().bucket(at)
    }

    /// Start of the period after the one starting at `start`.
    pub fn next(self, start: i64) -> i64 {
        let d = date(start);
        match self {
            Period::Month if d.month() == 12 => month_start(d.year() + 1, 1),
            Period::Month => month_start(d.year(), d.month() + 1),
            Period::Quarter => self.start(start + 100 * 86_400),
            Period::Year => month_start(d.year() + 1, 1),
        }
    }

    /// Start of the same period a year earlier.
    pub fn year_before(self, start: i64) -> i64 {
        let d = date(start);
        month_start(d.year() - 1, d.month())
    }

    /// `2024-03`, `2024Q1` or `2024`.
    pub fn label(self, start: i64) -> String {
        let d = date(start);
        match self {
            Period::Month => format!("{}-{:02}", d.year(), d.month()),
            Period::Quarter => quarter_label(start),
            Period::Year => d.year().to_string(),
        }
    }

    /// The finer period the overlay draws a year in, and the index of `start` within its year.
    fn slot(self, start: i64) -> usize {
        let d = date(start);
        match self {
            Period::Month => d.month0() as usize,
            Period::Quarter | Period::Year => (d.month0() / 3) as usize,
        }
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Events per key, per period.
pub(crate) type Table = BTreeMap<i64, BTreeMap<String, u64>>;

fn share(period: &BTreeMap<String, u64>, key: &str) -> Option<f64> {
    let total: u64 = period.values().sum();
    (total > 0).then(|| round(100.0 * *period.get(key).unwrap_or(&0) as f64 / total as f64))
}

/// Reads the counters of one dimension and rolls them up into `period`s. Each period takes its counts from
/// the most authoritative source that has any: history computed for exactly such periods (`forgecast
/// aggregate`), then GitHut's quarters (languages only; they cannot be split into months), then the live day
/// counters rolled up.
async fn table(
    store: &AnyStore,
    dimension: Dimension,
    prefix: &str,
    period: Period,
    from: i64,
    to: i64,
) -> Result<Table, StoreError> {
    let mut sources = vec![(period.granularity(), dimension)];
    if dimension == Dimension::TypeLanguage && period != Period::Month {
        sources.push((Granularity::Quarter, Dimension::GithutLanguage));
    }
    sources.push((Granularity::Day, dimension));
    let mut merged = Table::new();
    for (granularity, dimension) in sources {
        let rows = store
            .aggregates(AggregateQuery {
                granularity,
                dimension,
                from,
                to,
            })
            .await?;
        let mut table = Table::new();
        for row in rows {
            if let Some(key) = row.key.strip_prefix(prefix) {
                *table
                    .entry(period.start(row.bucket))
                    .or_default()
                    .entry(key.to_string())
                    .or_default() += row.count;
            }
        }
        for (at, counts) in table {
            merged.entry(at).or_insert(counts);
        }
    }
    Ok(merged)
}

/// Why trends cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum TrendsError {
    /// The query asks for something there is no answer to: which parameter, and what would work.
    #[error("{0}")]
    Query(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A query checked: what to read and how to roll it up.
struct Spec {
    name: &'static str,
    metric: Option<String>,
    period: Period,
    dimension: Dimension,
    /// Key prefix of the counters read (`PullRequestEvent/` for a language metric).
    prefix: String,
    range: (i64, i64),
}

/// Checks the query's parameters; names the first one that cannot be answered.
fn parse(query: &TrendsQuery) -> Result<Spec, TrendsError> {
    let bad = |message: String| Err(TrendsError::Query(message));
    let (name, plain) = match query.dimension.as_deref().unwrap_or("language") {
        "language" => ("language", None),
        "type" => ("type", Some(Dimension::Type)),
        "topic" => ("topic", Some(Dimension::Topic)),
        other => return bad(format!("dimension {other:?}: use language, type or topic")),
    };
    let metric = match (plain, query.metric.clone()) {
        (Some(_), Some(_)) => return bad("metric applies to dimension=language only".into()),
        (Some(_), None) => None,
        (None, metric) => Some(metric.unwrap_or_else(|| METRICS[0].to_string())),
    };
    if let Some(metric) = metric.as_deref().filter(|m| !METRICS.contains(m)) {
        return bad(format!(
            "metric {metric:?} has no series; use one of {}",
            METRICS.join(", ")
        ));
    }
    let granularity = query.granularity.as_deref().unwrap_or("quarter");
    let Some(period) = Period::parse(granularity) else {
        return bad(format!(
            "granularity {granularity:?}: use month, quarter or year"
        ));
    };
    let (from, to) = (
        query.from.unwrap_or(2012),
        query.to.unwrap_or_else(|| chrono::Utc::now().year()),
    );
    if from > to || !(1970..=9999).contains(&from) || !(1970..=9999).contains(&to) {
        return bad(format!("years {from} to {to} are not a range"));
    }
    let (dimension, prefix) = match (plain, &metric) {
        (Some(dimension), _) => (dimension, String::new()),
        (None, metric) => (
            Dimension::TypeLanguage,
            format!("{}/", metric.as_deref().unwrap_or(METRICS[0])),
        ),
    };
    Ok(Spec {
        name,
        metric,
        period,
        dimension,
        prefix,
        range: (quarter_start(from, 1), quarter_start(to + 1, 1)),
    })
}

/// The counts per key and period of a query, every period from the first with data to the last listed (empty
/// where there is none), and the period they are rolled up to.
pub(crate) async fn counts(
    store: &AnyStore,
    query: &TrendsQuery,
) -> Result<(Period, Table), TrendsError> {
    let spec = parse(query)?;
    Ok((spec.period, periods_of(store, &spec).await?))
}

async fn periods_of(store: &AnyStore, spec: &Spec) -> Result<Table, StoreError> {
    let (from, to) = spec.range;
    let mut periods = table(store, spec.dimension, &spec.prefix, spec.period, from, to).await?;
    if let (Some(&first), Some(&last)) = (periods.keys().next(), periods.keys().last()) {
        let mut at = first;
        while at < last {
            periods.entry(at).or_default();
            at = spec.period.next(at);
        }
    }
    Ok(periods)
}

/// Share changes from the same period a year earlier, at the latest period that has both.
fn growth(periods: &BTreeMap<i64, BTreeMap<String, u64>>, period: Period) -> Option<Growth> {
    let has_data = |at: i64| periods.get(&at).is_some_and(|p| !p.is_empty());
    let at = *periods
        .keys()
        .rev()
        .find(|&&at| has_data(at) && has_data(period.year_before(at)))?;
    let (now, before) = (&periods[&at], &periods[&period.year_before(at)]);
    let mut rows: Vec<GrowthRow> = now
        .keys()
        .filter(|k| before.contains_key(*k))
        .map(|k| {
            let (s, p) = (
                share(now, k).unwrap_or(0.0),
                share(before, k).unwrap_or(0.0),
            );
            GrowthRow {
                key: k.clone(),
                share: s,
                previous_share: p,
                change: round(s - p),
            }
        })
        .collect();
    rows.sort_by(|a, b| b.change.total_cmp(&a.change).then(a.key.cmp(&b.key)));
    Some(Growth {
        period: period.label(at),
        previous: period.label(period.year_before(at)),
        risers: rows
            .iter()
            .filter(|r| r.change > 0.0)
            .take(GROWTH_ROWS)
            .cloned()
            .collect(),
        fallers: rows
            .iter()
            .rev()
            .filter(|r| r.change < 0.0)
            .take(GROWTH_ROWS)
            .cloned()
            .collect(),
    })
}

/// One key's share in each quarter (or month) of the most recent years, one line per year.
async fn overlay(shared: &Shared, spec: &Spec, key: String) -> Result<Overlay, StoreError> {
    let slot_period = if spec.period == Period::Month {
        Period::Month
    } else {
        Period::Quarter
    };
    let slots: Vec<String> = match slot_period {
        Period::Month => [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .map(String::from)
        .to_vec(),
        _ => ["Q1", "Q2", "Q3", "Q4"].map(String::from).to_vec(),
    };
    let (from, to) = spec.range;
    let fine = table(
        &shared.store,
        spec.dimension,
        &spec.prefix,
        slot_period,
        from,
        to,
    )
    .await?;
    let mut years: BTreeMap<i32, Vec<Option<f64>>> = BTreeMap::new();
    for (&at, counts) in &fine {
        let line = years
            .entry(date(at).year())
            .or_insert_with(|| vec![None; slots.len()]);
        line[slot_period.slot(at)] = share(counts, &key);
    }
    let skip = years.len().saturating_sub(OVERLAY_YEARS);
    let years = years
        .into_iter()
        .skip(skip)
        .map(|(year, shares)| OverlayYear { year, shares })
        .collect();
    Ok(Overlay { key, slots, years })
}

/// Computes the trends of `query`.
pub async fn compute(shared: &Shared, query: TrendsQuery) -> Result<Trends, TrendsError> {
    let spec = parse(&query)?;
    let period = spec.period;
    let periods = periods_of(&shared.store, &spec).await?;

    let mut recent: BTreeMap<&str, u64> = BTreeMap::new();
    for counts in periods.values().rev().filter(|p| !p.is_empty()).take(8) {
        for (key, n) in counts {
            *recent.entry(key).or_default() += n;
        }
    }
    let mut ranked: Vec<(&str, u64)> = recent.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let available: Vec<String> = ranked
        .iter()
        .take(AVAILABLE)
        .map(|(k, _)| k.to_string())
        .collect();
    let keys: Vec<String> = match query.keys.as_deref().filter(|k| !k.trim().is_empty()) {
        Some(list) => list
            .split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        None => available.iter().take(DEFAULT_KEYS).cloned().collect(),
    };
    let series = keys
        .iter()
        .map(|key| Series {
            key: key.clone(),
            counts: periods
                .values()
                .map(|p| *p.get(key).unwrap_or(&0))
                .collect(),
            shares: periods.values().map(|p| share(p, key)).collect(),
        })
        .collect();
    let growth = growth(&periods, period);
    let overlay = match query.focus.or_else(|| keys.first().cloned()) {
        None => None,
        Some(key) => Some(overlay(shared, &spec, key).await?),
    };
    Ok(Trends {
        dimension: spec.name.into(),
        metric: spec.metric,
        granularity: period.name().into(),
        periods: periods.keys().map(|&at| period.label(at)).collect(),
        totals: periods.values().map(|p| p.values().sum()).collect(),
        series,
        available,
        growth,
        overlay,
    })
}

pub(super) async fn trends(
    State(shared): State<Arc<Shared>>,
    Extension(guard): Extension<Arc<Guard>>,
    Params(query): Params<TrendsQuery>,
) -> Response {
    let bounds = *guard.bounds();
    if let Some(keys) = &query.keys {
        let asked = keys.split(',').filter(|k| !k.trim().is_empty()).count();
        if asked > bounds.max_trend_keys {
            let message = format!(
                "`keys` names {asked} series; at most {} (bounds.max_trend_keys)",
                bounds.max_trend_keys
            );
            return bad(message);
        }
    }
    let _turn = match guard.heavy_turn().await {
        Ok(turn) => turn,
        Err(refusal) => return refusal.into_response(),
    };
    match compute(&shared, query).await {
        Ok(trends) => {
            let body = match serde_json::to_vec(&trends) {
                Ok(body) => body,
                Err(e) => {
                    return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                        .into_response();
                }
            };
            if body.len() > bounds.max_response_bytes {
                let message = format!(
                    "the answer would be {} bytes; at most {} (bounds.max_response_bytes): ask for fewer keys or years",
                    body.len(),
                    bounds.max_response_bytes
                );
                return bad(message);
            }
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(TrendsError::Query(message)) => bad(message),
        Err(TrendsError::Store(e)) => {
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_step_and_label_by_the_calendar() {
        let nov = month_start(2026, 11);
        assert_eq!(
            Period::Month.label(Period::Month.next(Period::Month.next(nov))),
            "2027-01"
        );
        assert_eq!(
            Period::Quarter.label(Period::Quarter.next(Period::Quarter.start(nov))),
            "2027Q1"
        );
        assert_eq!(
            Period::Year.label(Period::Year.year_before(Period::Year.start(nov))),
            "2025"
        );
        assert_eq!(
            Period::Quarter.label(Period::Quarter.year_before(quarter_start(2024, 1))),
            "2023Q1"
        );
        assert_eq!(Period::Month.slot(nov), 10);
        assert_eq!(Period::Year.slot(nov), 3);
    }
}
