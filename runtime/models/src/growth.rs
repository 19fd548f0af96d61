//! Repository growth: a repository's stars one and two half-years ahead, with 80 % and 95 % intervals, from its
//! history of (time, stars) points, and the backtest on the GitHub-Ranking snapshots
//! (`data/github-ranking-top100`).
//!
//! The method is a damped drift. The rate of the last change (stars per half-year between the last two points,
//! however far apart they are) goes on, decaying by a factor φ per half-year, as in Gardner and McKenzie's damped
//! trend: `stars(t + τ) = stars(t) + rate · (φ + φ² + … + φ^τ)`, τ in half-years, the sum taken as
//! `φ (1 − φ^τ) / (1 − φ)` so that τ need not be whole. One φ serves every repository; it is fitted
//! by minimising the mean absolute percentage error of the past forecasts over all repositories, which is a single
//! parameter estimated from thousands of cases. Why damped: a repository's stars come from attention that fades
//! (the M3 lesson that damped trends beat straight ones holds here too); why the last change only: averaging
//! older changes brings back rates the repository has already left behind.
//!
//! Intervals are empirical: the absolute log ratios of actual to forecast stars of the same past cases, per
//! horizon in whole half-years, give the 80 % and 95 % quantiles, and a forecast's bounds are the point times
//! `e^{±q}` (wider in proportion for a horizon without cases of its own).
//!
//! Baselines, as the project's reference script defines them: naive (the last value) and drift (the last change
//! between snapshots continued once per snapshot step, without regard to time). A drift per unit of time is
//! reported beside them, as it is the fairer baseline when snapshots are missing.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::forecast::quantile;

/// The version of the saved form; [`GrowthModel::from_json`] refuses any other.
const FORMAT: u32 = 1;
/// Years per half-year, the unit of horizons.
const HALF_YEAR: f64 = 0.5;

/// Why snapshots could not be read or a model loaded.
#[derive(Debug, thiserror::Error)]
pub enum GrowthError {
    /// The CSV could not be read.
    #[error("snapshot {date}: {error}")]
    Csv {
        /// The snapshot's date.
        date: String,
        /// What went wrong.
        error: String,
    },
    /// A date is not `YYYY-MM-DD`.
    #[error("not a date (YYYY-MM-DD): {0:?}")]
    Date(String),
    /// The saved bytes are not a model of this format.
    #[error("not a growth model of format {FORMAT}: {0}")]
    Decode(String),
}

/// One observation of a repository: when (in years, e.g. 2024.5) and how many stars.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The time in years (see [`years`]).
    pub time: f64,
    /// The stars then.
    pub stars: f64,
}

/// The stars of many repositories on one day.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The day, `YYYY-MM-DD`.
    pub date: String,
    /// The day in years.
    pub time: f64,
    /// Stars per repository URL.
    pub stars: HashMap<String, u64>,
}

/// The forecast of one repository at one time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrowthForecast {
    /// The time forecast for, in years.
    pub time: f64,
    /// The stars expected.
    pub point: f64,
    /// The lower bound of the 80 % interval.
    pub lower80: f64,
    /// The upper bound of the 80 % interval.
    pub upper80: f64,
    /// The lower bound of the 95 % interval.
    pub lower95: f64,
    /// The upper bound of the 95 % interval.
    pub upper95: f64,
}

/// The spread of past errors at one horizon.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The horizon in whole half-years.
    pub half_years: usize,
    /// The 80 % quantile of |ln(actual / forecast)|.
    pub q80: f64,
    /// The 95 % quantile of |ln(actual / forecast)|.
    pub q95: f64,
    /// How many past forecasts they come from.
    pub cases: usize,
}

/// The fitted model: the damping and the spreads of its past errors. Serialises as the registry's artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrowthModel {
    format: u32,
    /// The damping of the rate per half-year.
    pub phi: f64,
    /// The spreads, one per horizon that had past cases, shortest first.
    pub spreads: Vec<Spread>,
    /// The past forecasts φ was fitted on.
    pub cases: usize,
    /// The backtests made of this kind of model, each named by its protocol.
    #[serde(default)]
    pub backtests: Vec<(String, GrowthReport)>,
}

/// The lowest damping tried: below it a repository's growth would stop within about a year.
const PHI_LO: f64 = 0.3;

/// A past forecast: the two last points before the origin and the value at the target.
#[derive(Clone, Copy, Debug)]
struct Case {
    previous: Point,
    last: Point,
    target: Point,
    /// The snapshot steps from origin to target (the reference drift's horizon).
    steps: usize,
}

impl Case {
    /// The horizon in half-years.
    fn tau(&self) -> f64 {
        (self.target.time - self.last.time) / HALF_YEAR
    }
}

/// The shortest span, in years, a drift is measured over: a quarter.
pub const MIN_SPAN: f64 = 0.25;

/// The damped drift's forecast at `time` from two points.
fn damped_drift(previous: Point, last: Point, time: f64, phi: f64) -> f64 {
    let gap = (last.time - previous.time) / HALF_YEAR;
    if gap <= 0.0 {
        return last.stars;
    }
    let rate = (last.stars - previous.stars) / gap;
    let tau = (time - last.time) / HALF_YEAR;
    let reach = if phi >= 1.0 {
        tau
    } else {
        phi * (1.0 - phi.powf(tau)) / (1.0 - phi)
    };
    (last.stars + rate * reach).max(0.0)
}

/// The mean absolute percentage error of the damped drift with `phi` over `cases`, averaged over horizons
/// (`steps`) so that the longer one, with fewer cases, counts as much.
fn mape(cases: &[Case], phi: f64) -> f64 {
    let mut sums: HashMap<usize, (f64, usize)> = HashMap::new();
    for c in cases {
        let f = damped_drift(c.previous, c.last, c.target.time, phi);
        let entry = sums.entry(c.steps).or_default();
        entry.0 += (f - c.target.stars).abs() / c.target.stars.max(1.0);
        entry.1 += 1;
    }
    sums.values().map(|(s, n)| s / *n as f64).sum::<f64>() / sums.len().max(1) as f64
}

/// Every past forecast in `snapshots` with a target up to snapshot `last_target`, horizons 1..=`horizon` snapshot
/// steps: the repositories in the origin, the snapshot before it and the target.
fn cases(
    snapshots: &[Snapshot],
    horizon: usize,
    origins: std::ops::Range<usize>,
    last_target: usize,
) -> Vec<Case> {
    let mut out = Vec::new();
    for origin in origins.start.max(1)..origins.end {
        for steps in 1..=horizon {
            let target = origin + steps;
            if target > last_target || target >= snapshots.len() {
                break;
            }
            let (previous, last, future) = (
                &snapshots[origin - 1],
                &snapshots[origin],
                &snapshots[target],
            );
            for (repo, stars) in &last.stars {
                if let (Some(p), Some(f)) = (previous.stars.get(repo), future.stars.get(repo)) {
                    out.push(Case {
                        previous: Point {
                            time: previous.time,
                            stars: *p as f64,
                        },
                        last: Point {
                            time: last.time,
                            stars: *stars as f64,
                        },
                        target: Point {
                            time: future.time,
                            stars: *f as f64,
                        },
                        steps,
                    });
                }
            }
        }
    }
    // The repositories of a snapshot come in hash order; sorted, the fit does not depend on it.
    out.sort_by(|a, b| {
        (
            a.last.time,
            a.steps,
            a.last.stars,
            a.previous.stars,
            a.target.stars,
        )
            .partial_cmp(&(
                b.last.time,
                b.steps,
                b.last.stars,
                b.previous.stars,
                b.target.stars,
            ))
            .expect("no NaN")
    });
    out
}

impl GrowthModel {
    /// Fits φ and the spreads on every past forecast the snapshots hold (targets up to the last snapshot,
    /// `horizon` snapshot steps at most).
    pub fn fit(snapshots: &[Snapshot], horizon: usize) -> Self {
        let all = cases(
            snapshots,
            horizon,
            1..snapshots.len(),
            snapshots.len().saturating_sub(1),
        );
        GrowthModel::fit_cases(&all)
    }

    fn fit_cases(cases: &[Case]) -> Self {
        let phi = if cases.is_empty() {
            1.0
        } else {
            crate::forecast::optimise::minimise_interval(
                |phi| mape(cases, phi),
                PHI_LO,
                1.0,
                15,
                1e-4,
            )
        };
        let mut errors: HashMap<usize, Vec<f64>> = HashMap::new();
        for c in cases {
            let half_years = c.tau().round().max(1.0) as usize;
            let f = damped_drift(c.previous, c.last, c.target.time, phi).max(1.0);
            errors
                .entry(half_years)
                .or_default()
                .push((c.target.stars.max(1.0) / f).ln().abs());
        }
        let mut spreads: Vec<Spread> = errors
            .into_iter()
            .map(|(half_years, mut e)| Spread {
                half_years,
                q80: quantile(&mut e, 0.8),
                q95: quantile(&mut e, 0.95),
                cases: e.len(),
            })
            .collect();
        spreads.sort_by_key(|s| s.half_years);
        GrowthModel {
            format: FORMAT,
            phi,
            spreads,
            cases: cases.len(),
            backtests: Vec::new(),
        }
    }

    /// The forecast at `time` (in years) from a history of points (any order, any spacing). The drift is
    /// measured from the latest point at least [`MIN_SPAN`] before the last one (the earliest when none is), so
    /// that points a day apart, as the enricher records them, do not make a day's change a half-year's trend.
    /// `None` for an empty history.
    pub fn forecast_at(&self, history: &[Point], time: f64) -> Option<GrowthForecast> {
        let mut sorted: Vec<Point> = history.to_vec();
        sorted.sort_by(|a, b| a.time.total_cmp(&b.time));
        let last = *sorted.last()?;
        let previous = sorted
            .iter()
            .rev()
            .find(|p| p.time <= last.time - MIN_SPAN)
            .copied()
            .unwrap_or(sorted[0]);
        let point = damped_drift(previous, last, time, self.phi);
        let (q80, q95) = self.widths((time - last.time) / HALF_YEAR);
        Some(GrowthForecast {
            time,
            point,
            lower80: point * (-q80).exp(),
            upper80: point * q80.exp(),
            lower95: point * (-q95).exp(),
            upper95: point * q95.exp(),
        })
    }

    /// The forecasts 1, 2, …, `horizon` half-years after the last point of `history`.
    pub fn forecast(&self, history: &[Point], horizon: usize) -> Vec<GrowthForecast> {
        let Some(last) = history.iter().map(|p| p.time).reduce(f64::max) else {
            return Vec::new();
        };
        (1..=horizon)
            .filter_map(|h| self.forecast_at(history, last + h as f64 * HALF_YEAR))
            .collect()
    }

    /// The half-widths (log scale) at `tau` half-years: the spread of the nearest horizon with cases, in
    /// proportion to the horizon when that is not `tau` itself rounded. No spreads: no width.
    fn widths(&self, tau: f64) -> (f64, f64) {
        let want = tau.round().max(1.0) as usize;
        let Some(s) = self
            .spreads
            .iter()
            .min_by_key(|s| s.half_years.abs_diff(want))
        else {
            return (0.0, 0.0);
        };
        let factor = if s.half_years == want {
            1.0
        } else {
            tau.max(0.0) / s.half_years as f64
        };
        (s.q80 * factor, s.q95 * factor)
    }

    /// The model as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a growth model serialises")
    }

    /// Reads a model saved by [`GrowthModel::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, GrowthError> {
        let model: GrowthModel =
            serde_json::from_slice(bytes).map_err(|e| GrowthError::Decode(e.to_string()))?;
        if model.format != FORMAT {
            return Err(GrowthError::Decode(format!("format {}", model.format)));
        }
        Ok(model)
    }
}

/// The forecasts 1..=`horizon` half-years after the last point of `history` (see [`GrowthModel::forecast`]).
pub fn forecast(model: &GrowthModel, history: &[Point], horizon: usize) -> Vec<GrowthForecast> {
    model.forecast(history, horizon)
}

/// Which forecasts a backtest scores and how the model is fitted for them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestSpec {
    /// The first origin (snapshot index): 2 in the reference protocol.
    pub first_origin: usize,
    /// Only forecasts whose target is this snapshot or later are scored (0: all).
    pub first_target: usize,
    /// The horizons in snapshot steps.
    pub horizons: Vec<usize>,
    /// Refit the model at each origin on the forecasts whose targets it has seen; otherwise fit it once on the
    /// snapshots before `first_target` (the later ones held out).
    pub refit: bool,
}

impl Default for BacktestSpec {
    /// The reference protocol: origins from 2, every target, horizons 1 and 2, refitted at each origin.
    fn default() -> Self {
        BacktestSpec {
            first_origin: 2,
            first_target: 0,
            horizons: vec![1, 2],
            refit: true,
        }
    }
}

/// The scores of one horizon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HorizonScores {
    /// The horizon in snapshot steps.
    pub steps: usize,
    /// The forecasts scored.
    pub forecasts: usize,
    /// MAPE (%) of the last value.
    pub naive: f64,
    /// MAPE (%) of the last change continued per snapshot step (the reference drift).
    pub drift: f64,
    /// MAPE (%) of the last change's rate continued per unit of time.
    pub drift_per_time: f64,
    /// MAPE (%) of the damped drift.
    pub damped: f64,
    /// The share of actual values inside the damped drift's 80 % interval.
    pub coverage80: f64,
    /// The share inside its 95 % interval.
    pub coverage95: f64,
}

/// What a growth backtest measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrowthReport {
    /// The protocol.
    pub spec: BacktestSpec,
    /// One entry per horizon.
    pub horizons: Vec<HorizonScores>,
    /// The φ of each fit, in origin order (one entry without refitting).
    pub phis: Vec<f64>,
}

/// Scores the damped drift and the baselines on `snapshots` (in time order) with `spec`: at each origin from
/// `spec.first_origin`, each repository present in the origin, the snapshot before and the target is forecast
/// `h` snapshots ahead, at the target's own date.
pub fn backtest(snapshots: &[Snapshot], spec: &BacktestSpec) -> GrowthReport {
    let horizon = spec.horizons.iter().copied().max().unwrap_or(0);
    let frozen = (!spec.refit).then(|| {
        let last_seen = spec.first_target.saturating_sub(1);
        GrowthModel::fit_cases(&cases(snapshots, horizon, 1..last_seen + 1, last_seen))
    });
    let mut phis: Vec<f64> = frozen.iter().map(|m| m.phi).collect();
    #[derive(Default)]
    struct Sums {
        n: usize,
        naive: f64,
        drift: f64,
        drift_per_time: f64,
        damped: f64,
        inside80: usize,
        inside95: usize,
    }
    let mut sums: HashMap<usize, Sums> = HashMap::new();
    let wanted: HashSet<usize> = spec.horizons.iter().copied().collect();
    for origin in spec.first_origin.max(1)..snapshots.len() {
        let scored: Vec<Case> = cases(snapshots, horizon, origin..origin + 1, snapshots.len() - 1)
            .into_iter()
            .filter(|c| wanted.contains(&c.steps) && origin + c.steps >= spec.first_target)
            .collect();
        if scored.is_empty() {
            continue;
        }
        let model = match &frozen {
            Some(m) => m.clone(),
            None => {
                let m = GrowthModel::fit_cases(&cases(snapshots, horizon, 1..origin, origin));
                phis.push(m.phi);
                m
            }
        };
        for c in &scored {
            let y = c.target.stars;
            let pct = |f: f64| (f - y).abs() / y.max(1.0) * 100.0;
            let change = c.last.stars - c.previous.stars;
            let f = model
                .forecast_at(&[c.previous, c.last], c.target.time)
                .expect("two points");
            let s = sums.entry(c.steps).or_default();
            s.n += 1;
            s.naive += pct(c.last.stars);
            s.drift += pct(c.last.stars + c.steps as f64 * change);
            s.drift_per_time += pct(damped_drift(c.previous, c.last, c.target.time, 1.0));
            s.damped += pct(f.point);
            s.inside80 += usize::from(f.lower80 <= y && y <= f.upper80);
            s.inside95 += usize::from(f.lower95 <= y && y <= f.upper95);
        }
    }
    let mut horizons: Vec<HorizonScores> = sums
        .into_iter()
        .map(|(steps, s)| {
            let n = s.n as f64;
            HorizonScores {
                steps,
                forecasts: s.n,
                naive: s.naive / n,
                drift: s.drift / n,
                drift_per_time: s.drift_per_time / n,
                damped: s.damped / n,
                coverage80: s.inside80 as f64 / n,
                coverage95: s.inside95 as f64 / n,
            }
        })
        .collect();
    horizons.sort_by_key(|h| h.steps);
    GrowthReport {
        spec: spec.clone(),
        horizons,
        phis,
    }
}

impl fmt::Display for GrowthReport {
    /// One line per horizon: every method's MAPE, the coverage, how many forecasts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for h in &self.horizons {
            writeln!(
                f,
                "h={}: naive {:.2} %, drift {:.2} %, drift per time {:.2} %, damped drift {:.2} %  coverage 80 % {:.3}, 95 % {:.3}  ({} forecasts)",
                h.steps,
                h.naive,
                h.drift,
                h.drift_per_time,
                h.damped,
                h.coverage80,
                h.coverage95,
                h.forecasts
            )?;
        }
        let phis: Vec<String> = self.phis.iter().map(|p| format!("{p:.3}")).collect();
        write!(f, "phi per fit: {}", phis.join(" "))
    }
}

/// Reads one GitHub-Ranking CSV (header with `repo_url` and `stars`) taken on `date` (`YYYY-MM-DD`). A
/// repository listed more than once (in several lists) keeps its last row.
pub fn read_snapshot(reader: impl Read, date: &str) -> Result<Snapshot, GrowthError> {
    let time = years(date)?;
    let csv_error = |error: String| GrowthError::Csv {
        date: date.to_owned(),
        error,
    };
    let mut csv = csv::Reader::from_reader(reader);
    let headers = csv.headers().map_err(|e| csv_error(e.to_string()))?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| csv_error(format!("no {name} column")))
    };
    let (url, stars) = (column("repo_url")?, column("stars")?);
    let mut out = HashMap::new();
    for (line, record) in csv.records().enumerate() {
        let record = record.map_err(|e| csv_error(e.to_string()))?;
        let value = record.get(stars).unwrap_or_default();
        let count: u64 = value
            .parse()
            .map_err(|_| csv_error(format!("row {}: stars {value:?} is not a count", line + 2)))?;
        out.insert(record.get(url).unwrap_or_default().to_owned(), count);
    }
    Ok(Snapshot {
        date: date.to_owned(),
        time,
        stars: out,
    })
}

/// The history of `repo` in `snapshots`: one point per snapshot that lists it.
pub fn history(snapshots: &[Snapshot], repo: &str) -> Vec<Point> {
    snapshots
        .iter()
        .filter_map(|s| {
            s.stars.get(repo).map(|stars| Point {
                time: s.time,
                stars: *stars as f64,
            })
        })
        .collect()
}

/// A day `YYYY-MM-DD` in years: the year plus the days since 1 January over 365.25.
pub fn years(date: &str) -> Result<f64, GrowthError> {
    let bad = || GrowthError::Date(date.to_owned());
    let mut parts = date
        .splitn(3, '-')
        .map(|p| p.parse::<i64>().map_err(|_| bad()));
    let (y, m, d) = (
        parts.next().ok_or_else(bad)??,
        parts.next().ok_or_else(bad)??,
        parts.next().ok_or_else(bad)??,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d) - days_from_civil(y, 1, 1);
    Ok(y as f64 + days as f64 / 365.25)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(time: f64, stars: f64) -> Point {
        Point { time, stars }
    }

    fn snapshot(date: &str, stars: &[(&str, u64)]) -> Snapshot {
        Snapshot {
            date: date.into(),
            time: years(date).unwrap(),
            stars: stars.iter().map(|(r, s)| (r.to_string(), *s)).collect(),
        }
    }

    #[test]
    fn dates_become_years() {
        assert_eq!(years("2020-01-01").unwrap(), 2020.0);
        assert!((years("2020-07-01").unwrap() - (2020.0 + 182.0 / 365.25)).abs() < 1e-12);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert!(matches!(years("2020-13-01"), Err(GrowthError::Date(_))));
        assert!(matches!(years("July 2020"), Err(GrowthError::Date(_))));
    }

    #[test]
    fn points_days_apart_do_not_set_the_drift() {
        let model = GrowthModel {
            phi: 1.0,
            ..GrowthModel::fit(&[], 1)
        };
        // Snapshots half a year apart, then fetches a day and two days after the last one, with a jump of 50.
        let day = 1.0 / 365.25;
        let history = [
            point(2020.0, 1000.0),
            point(2020.5, 1100.0),
            point(2020.5 + day, 1150.0),
            point(2020.5 + 2.0 * day, 1150.0),
        ];
        let at = 2020.5 + 2.0 * day + 0.5;
        // The drift runs from the last snapshot at least a quarter before the last fetch: 150 over a half-year
        // and two days.
        let f = model.forecast_at(&history, at).unwrap();
        let expected = 1150.0 + 150.0 / (0.5 + 2.0 * day) * 0.5;
        assert!((f.point - expected).abs() < 1e-6, "{}", f.point);
        // Fetches only, all within a quarter: from the first one.
        let fetches = [point(2021.0, 10.0), point(2021.0 + day, 12.0)];
        let f = model.forecast_at(&fetches, 2021.5).unwrap();
        assert!(f.point > 12.0 && f.point.is_finite());
    }

    #[test]
    fn the_damped_drift_continues_the_last_rate_and_fades_it() {
        // 100 stars more over the last half-year: undamped, 100 more per half-year ahead.
        let (previous, last) = (point(2020.0, 1000.0), point(2020.5, 1100.0));
        assert_eq!(damped_drift(previous, last, 2021.0, 1.0), 1200.0);
        assert_eq!(damped_drift(previous, last, 2021.5, 1.0), 1300.0);
        // φ = 0.5: half the rate in the first half-year, a quarter in the second.
        assert_eq!(damped_drift(previous, last, 2021.0, 0.5), 1150.0);
        assert_eq!(damped_drift(previous, last, 2021.5, 0.5), 1175.0);
        // The rate is per unit of time: a change over a whole year is half as fast per half-year.
        assert_eq!(
            damped_drift(point(2019.5, 1000.0), last, 2021.0, 1.0),
            1150.0
        );
        // One point only: the last value.
        assert_eq!(damped_drift(last, last, 2021.0, 0.9), 1100.0);
    }

    #[test]
    fn fitting_finds_the_damping_of_fading_growth() {
        // Every repository's half-yearly gain halves each time: the best φ is close to 0.5 (not exactly: January
        // to July is a little shorter than July to January).
        let repos = ["a", "b", "c"];
        let snapshots: Vec<Snapshot> = (0..6)
            .map(|k| {
                let date = format!(
                    "{}-{}-01",
                    2019 + k / 2,
                    if k % 2 == 0 { "01" } else { "07" }
                );
                let stars: Vec<(&str, u64)> = repos
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let gain = 6400 * (i as u64 + 1);
                        (*r, 10_000 + (0..k).map(|j| gain >> j).sum::<u64>())
                    })
                    .collect();
                snapshot(&date, &stars)
            })
            .collect();
        let model = GrowthModel::fit(&snapshots, 2);
        assert!(model.phi > 0.4 && model.phi < 0.65, "{}", model.phi);
        // The undamped drift overshoots; the fitted one is closer on the last snapshot.
        let history = history(&snapshots[..5], "a");
        let f = model.forecast_at(&history, snapshots[5].time).unwrap();
        let actual = snapshots[5].stars["a"] as f64;
        let straight = damped_drift(history[3], history[4], snapshots[5].time, 1.0);
        assert!(
            (f.point - actual).abs() < (straight - actual).abs() / 2.0,
            "{f:?} vs {actual}"
        );
    }

    #[test]
    fn intervals_are_ordered_and_widen_with_the_horizon() {
        let model = GrowthModel {
            format: FORMAT,
            phi: 0.8,
            spreads: vec![Spread {
                half_years: 1,
                q80: 0.01,
                q95: 0.03,
                cases: 10,
            }],
            cases: 10,
            backtests: Vec::new(),
        };
        let history = [point(2020.0, 1000.0), point(2020.5, 1100.0)];
        let f = model.forecast(&history, 2);
        assert_eq!(f.len(), 2);
        for f in &f {
            let ordered = [f.lower95, f.lower80, f.point, f.upper80, f.upper95];
            assert!(ordered.windows(2).all(|w| w[0] < w[1]), "{f:?}");
        }
        assert!((f[0].upper80 / f[0].point - 0.01f64.exp()).abs() < 1e-12);
        // Two half-years without cases of their own: twice the one-half-year width.
        assert!((f[1].upper95 / f[1].point - 0.06f64.exp()).abs() < 1e-12);
        assert!(model.forecast(&[], 2).is_empty());
    }

    #[test]
    fn the_backtest_scores_the_reference_baselines() {
        // Repository a gains 100 then 50 then 25 stars; b stays at 10.
        let snapshots = vec![
            snapshot("2020-01-01", &[("a", 1000), ("b", 10)]),
            snapshot("2020-07-01", &[("a", 1100), ("b", 10)]),
            snapshot("2021-01-01", &[("a", 1150), ("b", 10)]),
            snapshot("2021-07-01", &[("a", 1175), ("b", 10)]),
        ];
        let report = backtest(&snapshots, &BacktestSpec::default());
        let h1 = &report.horizons[0];
        // Origins 2 and 3 (3 has no target): a from 1150, naive error 25 / 1175, drift 1200 → 25 / 1175; b exact.
        assert_eq!((h1.steps, h1.forecasts), (1, 2));
        assert!(
            (h1.naive - 25.0 / 1175.0 * 100.0 / 2.0).abs() < 1e-9,
            "{report}"
        );
        assert!(
            (h1.drift - 25.0 / 1175.0 * 100.0 / 2.0).abs() < 1e-9,
            "{report}"
        );
        // The damped drift, fitted on origin 1 (a: 1100 → forecast 1200, actual 1150), damps and does better.
        assert!(h1.damped < h1.drift, "{report}");
        assert_eq!(report.phis.len(), 1);
        assert!(
            report.horizons.iter().all(|h| h.steps == 1),
            "no two-step target after origin 2"
        );
    }

    #[test]
    fn snapshots_read_from_csv_keep_one_count_per_repository() {
        let csv = "rank,item,repo_name,stars,repo_url\n\
                   1,top-100-stars,x,500,https://github.com/o/x\n\
                   1,Rust,x,500,https://github.com/o/x\n\
                   2,Rust,y,40,https://github.com/o/y\n";
        let s = read_snapshot(csv.as_bytes(), "2024-01-01").unwrap();
        assert_eq!(s.stars.len(), 2);
        assert_eq!(s.stars["https://github.com/o/y"], 40);
        assert_eq!(s.time, 2024.0);
        let bad = read_snapshot("repo_url,stars\nu,many\n".as_bytes(), "2024-01-01").unwrap_err();
        assert!(bad.to_string().contains("row 2: stars \"many\""), "{bad}");
        let missing = read_snapshot("repo_url\nu\n".as_bytes(), "2024-01-01").unwrap_err();
        assert!(missing.to_string().contains("no stars column"), "{missing}");
    }

    #[test]
    fn a_model_round_trips_through_json() {
        let snapshots = vec![
            snapshot("2020-01-01", &[("a", 1000)]),
            snapshot("2020-07-01", &[("a", 1100)]),
            snapshot("2021-01-01", &[("a", 1150)]),
        ];
        let model = GrowthModel::fit(&snapshots, 2);
        assert_eq!(GrowthModel::from_json(&model.to_json()).unwrap(), model);
        assert!(matches!(
            GrowthModel::from_json(b"[]"),
            Err(GrowthError::Decode(_))
        ));
    }
}
