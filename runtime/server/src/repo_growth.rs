//! Repository growth: the stars of the most starred repositories one and two half-years ahead, from the bundled
//! GitHub-Ranking snapshots (`data/github-ranking-top100`, see its SOURCE.md), by the damped-drift model of
//! `forgecast_models::growth`, fitted once per process on every past forecast the snapshots hold and registered
//! (`repo_growth`) with its backtest when the registry has no version fitted on the same snapshots. A
//! repository's forecast also reads the star counts the enricher fetched for it (kept in the store, a point per
//! fetch), so repositories outside the snapshots are forecast once this instance has seen them.

use std::sync::OnceLock;

use forgecast_core::registry::{Alias, NewVersion, Registry, champion};
use forgecast_core::stars::StarPoint;
use forgecast_core::time::now_unix;
use forgecast_models::growth::{
    BacktestSpec, GrowthModel, Point, Snapshot, backtest, read_snapshot,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::backends::AnyStore;

/// The registered name of the growth forecaster.
pub const GROWTH_MODEL: &str = "repo_growth";
/// The furthest horizon, in half-years.
pub const MAX_HALF_YEARS: usize = 4;

/// The snapshots built into the binary: their day and their gzipped CSV.
const SNAPSHOTS: [(&str, &[u8]); 13] = [
    (
        "2019-01-02",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2019-01-02.csv.gz"),
    ),
    (
        "2019-07-01",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2019-07-01.csv.gz"),
    ),
    (
        "2020-01-01",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2020-01-01.csv.gz"),
    ),
    (
        "2020-07-01",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2020-07-01.csv.gz"),
    ),
    (
        "2021-01-01",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2021-01-01.csv.gz"),
    ),
    (
        "2021-07-01",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2021-07-01.csv.gz"),
    ),
    (
        "2022-01-01",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2022-01-01.csv.gz"),
    ),
    (
        "2022-07-01",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2022-07-01.csv.gz"),
    ),
    (
        "2023-07-01",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2023-07-01.csv.gz"),
    ),
    (
        "2024-01-01",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2024-01-01.csv.gz"),
    ),
    (
        "2024-07-01",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2024-07-01.csv.gz"),
    ),
    (
        "2025-01-08",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2025-01-08.csv.gz"),
    ),
    (
        "2025-07-02",
        include_bytes!("../../../data/github-ranking-top100/github-ranking-2025-07-02.csv.gz"),
    ),
];

/// The snapshots, keyed `owner/name`, and the model fitted on them.
pub struct Growth {
    /// Oldest first.
    pub snapshots: Vec<Snapshot>,
    /// Fitted on every past forecast of the snapshots, two half-years ahead at most.
    pub model: GrowthModel,
}

/// The bundled snapshots read and the model fitted, once per process.
pub fn bundled() -> Result<&'static Growth, String> {
    static GROWTH: OnceLock<Result<Growth, String>> = OnceLock::new();
    GROWTH
        .get_or_init(|| {
            let mut inflater = forgecast_gharchive::inflate::Inflater::new();
            let mut snapshots = Vec::new();
            for (date, gz) in SNAPSHOTS {
                let mut csv = Vec::new();
                inflater
                    .gunzip(gz, &mut csv)
                    .map_err(|e| format!("snapshot {date}: {e}"))?;
                let mut snapshot =
                    read_snapshot(csv.as_slice(), date).map_err(|e| e.to_string())?;
                snapshot.stars = snapshot
                    .stars
                    .into_iter()
                    .map(|(url, stars)| (repo_name(&url).to_string(), stars))
                    .collect();
                snapshots.push(snapshot);
            }
            let model = GrowthModel::fit(&snapshots, 2);
            Ok(Growth { snapshots, model })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// `owner/name` of a repository URL.
fn repo_name(url: &str) -> &str {
    url.trim_start_matches("https://github.com/")
        .trim_end_matches('/')
}

/// A time in years as the day it falls on, `YYYY-MM-DD`.
fn day_of(years: f64) -> String {
    let year = years.floor();
    let days = ((years - year) * 365.25).round() as i64;
    let start = chrono::NaiveDate::from_ymd_opt(year as i32, 1, 1).unwrap_or_default();
    (start + chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// One repository's stars and their forecast.
#[derive(Debug, Serialize)]
pub struct RepoForecast {
    /// `owner/name`.
    pub repo: String,
    /// The snapshots that list it.
    pub history: StarHistory,
    /// What comes next.
    pub forecast: StarsAhead,
}

/// Stars per snapshot.
#[derive(Debug, Serialize)]
pub struct StarHistory {
    /// Snapshot days.
    pub periods: Vec<String>,
    /// Stars.
    pub stars: Vec<u64>,
}

/// Forecast stars per half-year ahead.
#[derive(Debug, Serialize)]
pub struct StarsAhead {
    /// The days forecast (half-years after the last snapshot listing the repository).
    pub periods: Vec<String>,
    /// Point forecasts.
    pub stars: Vec<f64>,
    /// 80 % interval, lower bounds.
    pub lower80: Vec<f64>,
    /// 80 % interval, upper bounds.
    pub upper80: Vec<f64>,
    /// 95 % interval, lower bounds.
    pub lower95: Vec<f64>,
    /// 95 % interval, upper bounds.
    pub upper95: Vec<f64>,
}

/// Unix seconds in years, as the snapshots' days are.
fn unix_years(at: i64) -> f64 {
    1970.0 + at as f64 / (365.25 * 86_400.0)
}

/// The forecast of `repo` from the snapshots that list it and the star counts the enricher fetched (`fetched`,
/// kept in the store: a point per fetch); `None` when neither has it.
pub fn forecast_repo(
    growth: &Growth,
    repo: &str,
    horizon: usize,
    fetched: &[StarPoint],
) -> Option<RepoForecast> {
    let mut dated: Vec<(String, Point)> = growth
        .snapshots
        .iter()
        .filter_map(|s| {
            s.stars.get(repo).map(|stars| {
                let point = Point {
                    time: s.time,
                    stars: *stars as f64,
                };
                (s.date.clone(), point)
            })
        })
        .chain(fetched.iter().filter(|p| p.repo == repo).map(|p| {
            let point = Point {
                time: unix_years(p.at),
                stars: p.stars as f64,
            };
            (day_of(point.time), point)
        }))
        .collect();
    if dated.is_empty() {
        return None;
    }
    dated.sort_by(|a, b| a.1.time.total_cmp(&b.1.time));
    let points: Vec<Point> = dated.iter().map(|(_, p)| *p).collect();
    let ahead = growth.model.forecast(&points, horizon);
    let round = |v: f64| v.round();
    Some(RepoForecast {
        repo: repo.to_string(),
        history: StarHistory {
            periods: dated.iter().map(|(day, _)| day.clone()).collect(),
            stars: points.iter().map(|p| p.stars as u64).collect(),
        },
        forecast: StarsAhead {
            periods: ahead.iter().map(|f| day_of(f.time)).collect(),
            stars: ahead.iter().map(|f| round(f.point)).collect(),
            lower80: ahead.iter().map(|f| round(f.lower80)).collect(),
            upper80: ahead.iter().map(|f| round(f.upper80)).collect(),
            lower95: ahead.iter().map(|f| round(f.lower95)).collect(),
            upper95: ahead.iter().map(|f| round(f.upper95)).collect(),
        },
    })
}

/// A repository in the ranking of expected growth.
#[derive(Debug, Serialize)]
pub struct Riser {
    /// `owner/name`.
    pub repo: String,
    /// Stars at the last snapshot.
    pub stars: u64,
    /// Stars expected at the horizon.
    pub expected: f64,
    /// The difference.
    pub gain: f64,
    /// The difference in percent of today's stars.
    pub gain_percent: f64,
}

/// The repositories of the latest snapshot expected to grow most by the horizon: relative then absolute.
pub fn risers(growth: &Growth, horizon: usize, limit: usize) -> (Vec<Riser>, Vec<Riser>) {
    let Some(latest) = growth.snapshots.last() else {
        return (Vec::new(), Vec::new());
    };
    let mut all: Vec<Riser> = latest
        .stars
        .keys()
        .filter_map(|repo| {
            let f = forecast_repo(growth, repo, horizon, &[])?;
            let now = *f.history.stars.last()?;
            let expected = *f.forecast.stars.last()?;
            Some(Riser {
                repo: repo.clone(),
                stars: now,
                expected,
                gain: expected - now as f64,
                gain_percent: ((expected / now.max(1) as f64 - 1.0) * 10_000.0).round() / 100.0,
            })
        })
        .collect();
    all.sort_by(|a, b| {
        b.gain_percent
            .total_cmp(&a.gain_percent)
            .then(a.repo.cmp(&b.repo))
    });
    let relative: Vec<Riser> = all.iter().take(limit).map(clone_riser).collect();
    all.sort_by(|a, b| b.gain.total_cmp(&a.gain).then(a.repo.cmp(&b.repo)));
    all.truncate(limit);
    (relative, all)
}

fn clone_riser(r: &Riser) -> Riser {
    Riser {
        repo: r.repo.clone(),
        stars: r.stars,
        expected: r.expected,
        gain: r.gain,
        gain_percent: r.gain_percent,
    }
}

/// Registers the growth model fitted on the bundled snapshots, with its backtest (all origins, refitted at
/// each, MAPE one and two half-years ahead against naive and drift), unless the champion was fitted on the same
/// snapshots. Returns the version registered, if any.
pub async fn register_growth(store: &AnyStore) -> Result<Option<u32>, String> {
    let growth = bundled()?;
    let dates: Vec<&str> = growth.snapshots.iter().map(|s| s.date.as_str()).collect();
    let training = format!(
        "GitHub-Ranking top-100 snapshots {} to {} ({} snapshots, {} repositories in the last)",
        dates[0],
        dates[dates.len() - 1],
        dates.len(),
        growth.snapshots.last().map_or(0, |s| s.stars.len())
    );
    let versions = store
        .versions(GROWTH_MODEL)
        .await
        .map_err(|e| e.to_string())?;
    if champion(&versions).is_some_and(|c| c.meta.training == training) {
        return Ok(None);
    }
    let report = tokio::task::spawn_blocking(|| {
        let growth = bundled()?;
        Ok::<_, String>(backtest(
            &growth.snapshots,
            &BacktestSpec {
                first_origin: 2,
                first_target: 3,
                horizons: vec![1, 2],
                refit: true,
            },
        ))
    })
    .await
    .map_err(|e| e.to_string())??;
    let mut metrics = std::collections::BTreeMap::new();
    for h in &report.horizons {
        metrics.insert(format!("mape_h{}", h.steps), h.damped);
        metrics.insert(format!("mape_drift_h{}", h.steps), h.drift);
        metrics.insert(format!("mape_naive_h{}", h.steps), h.naive);
        metrics.insert(format!("coverage80_h{}", h.steps), h.coverage80);
        metrics.insert(format!("coverage95_h{}", h.steps), h.coverage95);
    }
    let mut model = GrowthModel::from_json(&growth.model.to_json()).map_err(|e| e.to_string())?;
    model.backtests = vec![("all origins, refitted at each".into(), report)];
    let artifact = model.to_json();
    let number = store
        .register(
            NewVersion {
                name: GROWTH_MODEL.into(),
                created: now_unix(),
                training,
                params: serde_json::json!({ "method": "damped drift of the last change, on snapshot dates", "phi": model.phi }),
                metrics,
                sha256: format!("{:x}", Sha256::digest(&artifact)),
                size: artifact.len() as u64,
            },
            artifact,
        )
        .await
        .map_err(|e| e.to_string())?;
    store
        .set_alias(GROWTH_MODEL, number, Alias::Champion)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(number))
}
