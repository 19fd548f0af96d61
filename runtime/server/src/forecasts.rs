//! Where the trends are heading: the share series `/api/trends` serves, cut to the periods a forecast can stand
//! on, forecast with the trend model's settings, and backtested.
//!
//! The history of a forecast is the last unbroken run of complete periods with data up to `as_of` (the current,
//! unfinished period is left out: its counts are partial, not a fall), at least [`MIN_PERIODS`] long. Shares are
//! of all the keys' events in each period, as in the trends, and forecast by `forgecast_models::forecast`.

use std::collections::BTreeMap;

use forgecast_core::time::now_unix;
use forgecast_models::forecast::{BacktestReport, Forecast, Method, Series, Settings, backtest};
use serde::Serialize;

use crate::backends::AnyStore;
use crate::http::trends::{Period, Table, TrendsError, TrendsQuery, counts};

/// The fewest periods a forecast stands on.
pub const MIN_PERIODS: usize = 8;
/// The furthest horizon, in periods.
pub const MAX_HORIZON: usize = 12;
/// Most series in one forecast.
pub const MAX_SERIES: usize = 50;

/// What to forecast.
#[derive(Debug, Clone, Default)]
pub struct ShareQuery {
    /// `language` (default), `type` or `topic`.
    pub dimension: Option<String>,
    /// For languages: the event type counted (default `PullRequestEvent`).
    pub metric: Option<String>,
    /// `quarter` (default), `month` or `year`.
    pub granularity: Option<String>,
    /// The keys; by default the `top` largest over the history.
    pub keys: Option<Vec<String>>,
    /// The last period the forecast may see (`2021Q4`, `2021-03`, `2021`); by default the last complete one.
    pub as_of: Option<String>,
    /// How many of the largest keys when none are named.
    pub top: usize,
}

/// Why there is no forecast.
#[derive(Debug, thiserror::Error)]
pub enum ForecastFailure {
    /// A parameter cannot be answered: which, and what would work.
    #[error("{0}")]
    Query(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] forgecast_core::store::StoreError),
    /// The forecasting library refused the series.
    #[error(transparent)]
    Model(#[from] forgecast_models::forecast::ForecastError),
}

impl From<TrendsError> for ForecastFailure {
    fn from(e: TrendsError) -> Self {
        match e {
            TrendsError::Query(message) => ForecastFailure::Query(message),
            TrendsError::Store(e) => ForecastFailure::Store(e),
        }
    }
}

/// The share series of a query over the periods a forecast stands on.
#[derive(Debug, Clone)]
pub struct History {
    /// The period rolled up to.
    pub period: Period,
    /// Start of each period, oldest first.
    pub starts: Vec<i64>,
    /// One series per key, shares in `[0, 1]`.
    pub series: Vec<Series>,
}

impl History {
    /// The label of each period.
    pub fn labels(&self) -> Vec<String> {
        self.starts.iter().map(|&s| self.period.label(s)).collect()
    }

    /// The labels of the `horizon` periods after the last.
    pub fn future(&self, horizon: usize) -> Vec<String> {
        let mut at = *self.starts.last().expect("a history has periods");
        (0..horizon)
            .map(|_| {
                at = self.period.next(at);
                self.period.label(at)
            })
            .collect()
    }

    /// The seasonal period of the granularity: 4 quarters, 12 months, none for years.
    pub fn season(&self) -> usize {
        match self.period.name() {
            "quarter" => 4,
            "month" => 12,
            _ => 1,
        }
    }
}

/// The start of the period `label` names, if it is one of `period`'s labels.
fn parse_label(period: Period, label: &str) -> Option<i64> {
    use forgecast_core::aggregate::{month_start, quarter_start};
    let start = match period.name() {
        "quarter" => {
            let (year, quarter) = label.split_once('Q')?;
            quarter_start(year.parse().ok()?, quarter.parse().ok()?)
        }
        "month" => {
            let (year, month) = label.split_once('-')?;
            month_start(year.parse().ok()?, month.parse().ok()?)
        }
        _ => month_start(label.parse().ok()?, 1),
    };
    (period.label(start) == label).then_some(start)
}

/// Reads the history of `query` from the store.
pub async fn history(store: &AnyStore, query: &ShareQuery) -> Result<History, ForecastFailure> {
    let trends = TrendsQuery {
        dimension: query.dimension.clone(),
        metric: query.metric.clone(),
        granularity: query.granularity.clone(),
        from: Some(1970),
        to: None,
        keys: None,
        focus: None,
    };
    let (period, table) = counts(store, &trends).await?;
    cut(period, &table, query, now_unix())
}

/// The history of `query` in `table`, the current period being the one holding `now`.
fn cut(
    period: Period,
    table: &Table,
    query: &ShareQuery,
    now: i64,
) -> Result<History, ForecastFailure> {
    let bad = |message: String| Err(ForecastFailure::Query(message));
    let limit = match &query.as_of {
        Some(label) => match parse_label(period, label) {
            Some(start) => start,
            None => {
                return bad(format!(
                    "as_of {label:?} is not a {} (like {})",
                    period.name(),
                    period.label(period.start(now))
                ));
            }
        },
        None => i64::MAX,
    };
    let complete = |start: i64| period.next(start) <= now && start <= limit;
    let has_data = |counts: &BTreeMap<String, u64>| counts.values().any(|&n| n > 0);
    let mut run: Vec<i64> = Vec::new();
    for (&start, counts) in table.iter().rev() {
        if !complete(start) {
            continue;
        }
        if !has_data(counts) {
            if run.is_empty() {
                if query.as_of.is_some() && start == limit {
                    return bad(format!(
                        "as_of {}: no data in that period",
                        period.label(start)
                    ));
                }
                continue;
            }
            break;
        }
        run.push(start);
    }
    run.reverse();
    if run.len() < MIN_PERIODS {
        let until = match &query.as_of {
            Some(label) => format!("as_of {label}: up to it"),
            None => "up to now".to_string(),
        };
        return bad(format!(
            "{until}, only {} complete {}s with data in a row; a forecast needs at least {MIN_PERIODS}",
            run.len(),
            period.name(),
        ));
    }
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for start in &run {
        for (key, n) in &table[start] {
            *totals.entry(key).or_default() += n;
        }
    }
    let keys: Vec<String> = match &query.keys {
        Some(keys) => {
            if let Some(unknown) = keys.iter().find(|k| !totals.contains_key(k.as_str())) {
                return bad(format!(
                    "keys: no series {unknown:?} up to {}",
                    period.label(run[run.len() - 1])
                ));
            }
            keys.clone()
        }
        None => {
            let mut ranked: Vec<(&str, u64)> = totals.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            ranked
                .into_iter()
                .take(query.top)
                .map(|(k, _)| k.to_string())
                .collect()
        }
    };
    let series = keys
        .into_iter()
        .map(|key| {
            let values = run
                .iter()
                .map(|start| {
                    let counts = &table[start];
                    let total: u64 = counts.values().sum();
                    *counts.get(&key).unwrap_or(&0) as f64 / total as f64
                })
                .collect();
            Series { key, values }
        })
        .collect();
    Ok(History {
        period,
        starts: run,
        series,
    })
}

/// Percent, two decimals, as the trends show shares.
fn percent(share: f64) -> f64 {
    (share * 10_000.0).round() / 100.0
}

/// One series' history and forecast, shares in percent.
#[derive(Debug, Serialize)]
pub struct SeriesForecast {
    /// The key.
    pub key: String,
    /// What was seen.
    pub history: Seen,
    /// What comes next.
    pub forecast: Ahead,
}

/// A series' history.
#[derive(Debug, Serialize)]
pub struct Seen {
    /// Period labels.
    pub periods: Vec<String>,
    /// Percent shares.
    pub shares: Vec<f64>,
}

/// A series' forecast.
#[derive(Debug, Serialize)]
pub struct Ahead {
    /// Period labels.
    pub periods: Vec<String>,
    /// Point forecasts, percent.
    pub shares: Vec<f64>,
    /// 80 % interval, lower bounds.
    pub lower80: Vec<f64>,
    /// 80 % interval, upper bounds.
    pub upper80: Vec<f64>,
    /// 95 % interval, lower bounds.
    pub lower95: Vec<f64>,
    /// 95 % interval, upper bounds.
    pub upper95: Vec<f64>,
}

/// Forecasts `horizon` periods of `history` with `settings` (its season set from the granularity).
pub fn forecast(
    history: &History,
    settings: &Settings,
    horizon: usize,
) -> Result<Vec<SeriesForecast>, ForecastFailure> {
    let settings = Settings {
        season: history.season(),
        ..settings.clone()
    };
    let forecasts: Vec<Forecast> = settings.forecast(&history.series, horizon)?;
    let (labels, future) = (history.labels(), history.future(horizon));
    let scaled = |values: &[f64]| values.iter().map(|&v| percent(v)).collect();
    Ok(history
        .series
        .iter()
        .zip(forecasts)
        .map(|(series, f)| SeriesForecast {
            key: series.key.clone(),
            history: Seen {
                periods: labels.clone(),
                shares: scaled(&series.values),
            },
            forecast: Ahead {
                periods: future.clone(),
                shares: scaled(&f.point),
                lower80: scaled(&f.lower80),
                upper80: scaled(&f.upper80),
                lower95: scaled(&f.lower95),
                upper95: scaled(&f.upper95),
            },
        })
        .collect())
}

/// Backtests every method on `history`: `horizon` steps from each of the last `origins` origins.
pub fn backtest_all(
    history: &History,
    horizon: usize,
    origins: usize,
) -> Result<Vec<BacktestReport>, ForecastFailure> {
    let len = history.starts.len();
    let last = len.saturating_sub(horizon);
    let first = (last + 1).saturating_sub(origins).max(2);
    if first > last {
        return Err(ForecastFailure::Query(format!(
            "{len} periods leave no origin for horizon {horizon}; ask for a shorter horizon"
        )));
    }
    Method::ALL
        .into_iter()
        .map(|method| {
            let settings = Settings::new(method, history.season());
            Ok(backtest(
                &history.series,
                &settings,
                horizon,
                first..last + 1,
            )?)
        })
        .collect()
}

/// The series the registered trend model is evaluated on: the top 20 languages' share of pull requests per quarter.
fn evaluated_series() -> ShareQuery {
    ShareQuery {
        dimension: Some("language".into()),
        metric: Some("PullRequestEvent".into()),
        granularity: Some("quarter".into()),
        keys: None,
        as_of: None,
        top: 20,
    }
}

/// The steps ahead and origins of the registered model's backtest.
const EVALUATED_HORIZON: usize = 4;
const EVALUATED_ORIGINS: usize = 9;

/// Registers a new version of the trend model when its input changed since the champion was fitted (a new
/// complete quarter, counters set by an `aggregate` run): the served settings, backtested with every method on
/// the evaluated series, the figures recorded, and promoted. Returns the version registered, if any.
pub async fn refit_trends(store: &AnyStore) -> Result<Option<u32>, ForecastFailure> {
    use forgecast_core::registry::{Alias, NewVersion, Registry, champion};
    use forgecast_models::forecast::TrendModel;
    use sha2::{Digest, Sha256};

    let query = evaluated_series();
    let history = history(store, &query).await?;
    let labels = history.labels();
    let fingerprint = {
        let mut hash = Sha256::new();
        for s in &history.series {
            hash.update(s.key.as_bytes());
            for v in &s.values {
                hash.update(v.to_le_bytes());
            }
        }
        format!("{:x}", hash.finalize())
    };
    let training = format!(
        "pull request shares of the top {} languages per quarter, {} to {} ({} quarters; input {})",
        history.series.len(),
        labels[0],
        labels[labels.len() - 1],
        labels.len(),
        &fingerprint[..12]
    );
    let versions = store.versions(crate::http::TRENDS_MODEL).await?;
    if champion(&versions).is_some_and(|c| c.meta.training == training) {
        return Ok(None);
    }
    let reports = {
        let history = history.clone();
        tokio::task::spawn_blocking(move || {
            backtest_all(&history, EVALUATED_HORIZON, EVALUATED_ORIGINS)
        })
        .await
        .map_err(|e| ForecastFailure::Query(e.to_string()))??
    };
    let settings = Settings::default();
    let served = reports
        .iter()
        .find(|r| r.method == settings.method)
        .cloned()
        .ok_or_else(|| ForecastFailure::Query("the served method was not backtested".into()))?;
    let naive = reports
        .iter()
        .find(|r| r.method == Method::Naive)
        .map_or(f64::NAN, |r| r.mase);
    let metrics = [
        ("mase", served.mase),
        ("mase_median", served.median_mase),
        ("mase_naive", naive),
        ("mase_vs_naive", served.mase / naive),
        ("coverage80", served.coverage80),
        ("coverage95", served.coverage95),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let model = TrendModel::new(
        settings.clone(),
        EVALUATED_HORIZON,
        reports
            .into_iter()
            .map(|r| (format!("{} {}", r.method.name(), training), r))
            .collect(),
    );
    let artifact = model.to_json();
    let version = NewVersion {
        name: crate::http::TRENDS_MODEL.into(),
        created: now_unix(),
        training,
        params: serde_json::json!({
            "settings": settings,
            "backtest": { "horizon": EVALUATED_HORIZON, "origins": EVALUATED_ORIGINS, "metric": "MASE" },
        }),
        metrics,
        sha256: format!("{:x}", Sha256::digest(&artifact)),
        size: artifact.len() as u64,
    };
    let number = store.register(version, artifact).await?;
    store
        .set_alias(crate::http::TRENDS_MODEL, number, Alias::Champion)
        .await?;
    tracing::info!(
        component = "models",
        model = crate::http::TRENDS_MODEL,
        version = number,
        mase = format!("{:.3}", served.mase),
        mase_naive = format!("{naive:.3}"),
        "Trend model refitted on new input and promoted."
    );
    Ok(Some(number))
}

/// How often the trend model's input is looked at.
pub const REFIT_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Refits the trend model at start and whenever its input changed, every [`REFIT_EVERY`], until `stop`.
pub async fn keep_trends_fitted(store: AnyStore, stop: tokio_util::sync::CancellationToken) {
    loop {
        match refit_trends(&store).await {
            Ok(_) => {}
            Err(ForecastFailure::Query(reason)) => {
                tracing::debug!(component = "models", model = crate::http::TRENDS_MODEL, %reason, "No trend model to fit yet.");
            }
            Err(e) => {
                tracing::warn!(component = "models", model = crate::http::TRENDS_MODEL, error = %e, "Refitting the trend model failed; trying again later.");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(REFIT_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgecast_core::aggregate::quarter_start;

    /// A quarter's counts: year, quarter, (key, events).
    type Quarter<'a> = (i32, u8, &'a [(&'a str, u64)]);

    fn table(quarters: &[Quarter]) -> Table {
        quarters
            .iter()
            .map(|(y, q, counts)| {
                (
                    quarter_start(*y, *q),
                    counts.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn the_history_is_the_last_unbroken_run_of_complete_periods() {
        let mut quarters: Vec<Quarter> = Vec::new();
        for year in 2014..2018 {
            for q in 1..=4 {
                quarters.push((year, q, &[("Rust", 1), ("Go", 3)]));
            }
        }
        // A gap, then two quarters, the last unfinished.
        quarters.push((2019, 1, &[]));
        quarters.push((2020, 1, &[("Rust", 5)]));
        quarters.push((2020, 2, &[("Rust", 5)]));
        let table = table(&quarters);
        let period = Period::parse("quarter").unwrap();
        let now = quarter_start(2020, 2) + 86_400;
        let query = ShareQuery {
            top: 5,
            ..ShareQuery::default()
        };
        // The last run (2020Q1 only, 2020Q2 unfinished) is too short.
        let short = cut(period, &table, &query, now).unwrap_err();
        assert!(
            short.to_string().contains("only 1 complete quarter"),
            "{short}"
        );
        let query = ShareQuery {
            as_of: Some("2017Q4".into()),
            top: 5,
            ..ShareQuery::default()
        };
        let history = cut(period, &table, &query, now).unwrap();
        assert_eq!(history.starts.len(), 16);
        assert_eq!(history.labels()[0], "2014Q1");
        assert_eq!(history.future(2), ["2018Q1", "2018Q2"]);
        assert_eq!(history.series[0].key, "Go", "largest first");
        assert_eq!(history.series[0].values[0], 0.75);
        let bad = ShareQuery {
            as_of: Some("2017-12".into()),
            top: 5,
            ..ShareQuery::default()
        };
        assert!(cut(period, &table, &bad, now).is_err());
        let unknown = ShareQuery {
            as_of: Some("2017Q4".into()),
            keys: Some(vec!["Cobol".into()]),
            top: 5,
            ..ShareQuery::default()
        };
        let refused = cut(period, &table, &unknown, now).unwrap_err();
        assert!(refused.to_string().contains("Cobol"), "{refused}");
    }
}
