//! Forecasts of shares: what part of GitHub's pull requests, pushes, stars or issues each language (or any other
//! key) will have in the next quarters or years, with 80 % and 95 % prediction intervals, and the backtests that
//! say how much to trust them.
//!
//! - `methods`: naive, seasonal naive, simple exponential smoothing, the additive damped-trend method, Theta and
//!   their equal-weight combination, the seasonality test and classical decomposition.
//! - `optimise`: golden-section search and bounded Nelder–Mead for the smoothing parameters.
//! - [`backtest()`]: rolling-origin evaluation, MASE scaled per training window, interval coverage.
//! - [`githut`]: the GitHut files as share series per quarter or per year.
//!
//! How one call of [`Settings::forecast`] goes, for a set of series over the same periods:
//! 1. Each share is clipped to `[eps, 1 − eps]` and taken to the logit scale, where a trend is a steady change in
//!    the odds: small shares grow or shrink by factors, large ones cannot pass 1.
//!    Leading shares below `eps` are dropped (the key was not in the data yet).
//! 2. The method forecasts `horizon` steps of each series (a seasonal adjustment first when the series passes the
//!    seasonality test, see `methods`). With `pooled` (the default) its smoothing parameters α, β, φ are fitted
//!    once for the whole set, each series' squared one-step errors weighted by its own scale; levels and trends
//!    stay each series' own. Twenty languages' shares are related series, and one set of parameters from all of
//!    them is far steadier than twenty fitted on 40 noisy points each (per-series fits of the damped trend
//!    extrapolated the early growth of a few languages far past their plateau).
//! 3. Intervals are empirical: the same method is refitted at up to `interval_origins` earlier origins inside the
//!    series, and its errors at each step ahead, divided by the series' mean absolute one-step change (both on the
//!    logit scale), are pooled over all the series given. The 80 % and 95 % quantiles of their absolute values,
//!    times each series' own scale, are the half-widths around its point forecast; a later step is never narrower
//!    than an earlier one.
//! 4. Points and bounds go back to shares. With two series or more, the points of every step are multiplied by
//!    one factor so that they add up to the last observed total of the series given (for the top 20 languages:
//!    the top 20's last share of the whole); each series' bounds are multiplied by the same factor and clipped to
//!    `[0, 1]`. A lone series is left as it is, since that constraint would pin it to its last value.
//!
//! The served method is [`Method::Combination`] (SES, damped trend and Theta, equal weights), chosen in advance
//! from the M3 and M4 competitions, where such combinations beat each of their parts and most complex methods on
//! yearly and quarterly series; `models/trends/README.md` has the figures and how the settings were settled.

pub mod backtest;
pub mod githut;
mod methods;
pub(crate) mod optimise;

use serde::{Deserialize, Serialize};

pub use backtest::{BacktestReport, SeriesScore, backtest};

/// The version of the saved form of a [`TrendModel`]; [`TrendModel::from_json`] refuses any other.
const FORMAT: u32 = 1;

/// One series: a key (e.g. a language) and its shares per period, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// What the series is of, e.g. `Rust`.
    pub key: String,
    /// The shares, each in `[0, 1]`, one per period.
    pub values: Vec<f64>,
}

/// A forecasting method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The last value.
    Naive,
    /// The value one season earlier (naive without a season).
    SeasonalNaive,
    /// Simple exponential smoothing, α fitted.
    Ses,
    /// Holt's linear method with an additive damped trend, α, β and φ fitted.
    DampedTrend,
    /// The standard Theta method: SES plus half the slope of the least-squares line.
    Theta,
    /// The mean of [`Method::Ses`], [`Method::DampedTrend`] and [`Method::Theta`].
    Combination,
}

impl Method {
    /// Every method, baselines first.
    pub const ALL: [Method; 6] = [
        Method::Naive,
        Method::SeasonalNaive,
        Method::Ses,
        Method::DampedTrend,
        Method::Theta,
        Method::Combination,
    ];

    /// The method's name as in the settings (`damped_trend`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Naive => "naive",
            Method::SeasonalNaive => "seasonal_naive",
            Method::Ses => "ses",
            Method::DampedTrend => "damped_trend",
            Method::Theta => "theta",
            Method::Combination => "combination",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How shares are forecast.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The method.
    pub method: Method,
    /// The seasonal period: 4 for quarters, 1 (none) for years.
    pub season: usize,
    /// Shares are clipped to `[eps, 1 − eps]` before the logit.
    pub eps: f64,
    /// Whether the forecasts of two or more series keep their last observed total.
    pub renormalise: bool,
    /// How many earlier origins inside each series the interval errors come from.
    pub interval_origins: usize,
    /// Whether the smoothing parameters (α, β, φ) are fitted once for all the series given rather than per series.
    pub pooled: bool,
}

impl Default for Settings {
    /// The combination on quarters, parameters pooled over the series, totals kept; shares clipped at one in ten
    /// thousand (a language GitHut does not list in a quarter counts as that, not as minus infinity); intervals
    /// from the last 20 origins (five years of quarters).
    fn default() -> Self {
        Settings {
            method: Method::Combination,
            season: 4,
            eps: 1e-4,
            renormalise: true,
            interval_origins: 20,
            pooled: true,
        }
    }
}

/// The forecast of one series: a point and four bounds per step ahead, all shares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The series' key.
    pub key: String,
    /// The point forecasts, one per step ahead.
    pub point: Vec<f64>,
    /// The lower bounds of the 80 % intervals.
    pub lower80: Vec<f64>,
    /// The upper bounds of the 80 % intervals.
    pub upper80: Vec<f64>,
    /// The lower bounds of the 95 % intervals.
    pub lower95: Vec<f64>,
    /// The upper bounds of the 95 % intervals.
    pub upper95: Vec<f64>,
}

/// Why a forecast or backtest could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// No series given.
    #[error("no series to forecast")]
    NoSeries,
    /// A series has fewer than two values.
    #[error("series {key} has {len} values; at least 2 are needed")]
    TooShort {
        /// The series' key.
        key: String,
        /// Its number of values.
        len: usize,
    },
    /// The series differ in length.
    #[error("series {key} has {len} values, the first series {expected}")]
    LengthMismatch {
        /// The series' key.
        key: String,
        /// Its number of values.
        len: usize,
        /// The first series' number of values.
        expected: usize,
    },
    /// A value is not a share.
    #[error("value {index} of series {key} is {value}, not a share in [0, 1]")]
    NotAShare {
        /// The series' key.
        key: String,
        /// The value's position.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A setting is out of range.
    #[error("bad settings: {0}")]
    Settings(String),
    /// The backtest origins do not fit the series.
    #[error(
        "origins {start}..{end} with horizon {horizon} do not fit series of {len} values (each origin needs 2 values before it and {horizon} from it on)"
    )]
    Origins {
        /// The first origin.
        start: usize,
        /// One past the last origin.
        end: usize,
        /// The horizon.
        horizon: usize,
        /// The series' length.
        len: usize,
    },
    /// A GitHut file could not be read.
    #[error("GitHut data: {0}")]
    Githut(String),
    /// A saved model could not be read.
    #[error("not a trend model of format {FORMAT}: {0}")]
    Decode(String),
}

/// Fits `method` on each of `series` and forecasts `horizon` steps with intervals, with the default
/// [`Settings`] otherwise (`season` 4 for quarters, 1 for years).
pub fn fit_and_forecast(
    series: &[Series],
    method: Method,
    horizon: usize,
    season: usize,
) -> Result<Vec<Forecast>, ForecastError> {
    Settings::new(method, season).forecast(series, horizon)
}

impl Settings {
    /// The settings with `method` and `season`, the rest default.
    pub fn new(method: Method, season: usize) -> Self {
        Settings {
            method,
            season,
            ..Settings::default()
        }
    }

    /// Forecasts `horizon` steps after the end of every series (all of one length, at least 2), in their order.
    pub fn forecast(
        &self,
        series: &[Series],
        horizon: usize,
    ) -> Result<Vec<Forecast>, ForecastError> {
        self.check(series, horizon)?;
        let logits: Vec<Vec<f64>> = series
            .iter()
            .map(|s| {
                // Shares below eps before the first one above are left out: the key was not in the data yet
                // (GitHut lists each quarter's top languages only), and the jump from eps to its first real share
                // would be the largest "change" of the series, bending every fitted trend and scale.
                let first = s
                    .values
                    .iter()
                    .position(|v| *v >= self.eps)
                    .unwrap_or(s.values.len() - 1);
                s.values[first..]
                    .iter()
                    .map(|v| logit(*v, self.eps))
                    .collect()
            })
            .collect();
        let scales: Vec<f64> = logits.iter().map(|x| mean_abs_diff(x)).collect();
        let all: Vec<&[f64]> = logits.iter().map(Vec::as_slice).collect();
        let points = methods::point_forecasts(self.method, &all, horizon, self.season, self.pooled);
        let widths = half_widths(&self.inner_errors(&logits, &scales, horizon));
        let mut forecasts: Vec<Forecast> = series
            .iter()
            .zip(&points)
            .zip(&scales)
            .map(|((s, point), scale)| {
                let bound = |sign: f64, level: usize| -> Vec<f64> {
                    point
                        .iter()
                        .zip(&widths)
                        .map(|(p, w)| expit(p + sign * w[level] * scale))
                        .collect()
                };
                Forecast {
                    key: s.key.clone(),
                    point: point.iter().map(|p| expit(*p)).collect(),
                    lower80: bound(-1.0, 0),
                    upper80: bound(1.0, 0),
                    lower95: bound(-1.0, 1),
                    upper95: bound(1.0, 1),
                }
            })
            .collect();
        if self.renormalise && series.len() > 1 {
            let total: f64 = series.iter().map(|s| s.values[s.values.len() - 1]).sum();
            renormalise(&mut forecasts, total);
        }
        Ok(forecasts)
    }

    fn check(&self, series: &[Series], horizon: usize) -> Result<(), ForecastError> {
        if !(self.eps > 0.0 && self.eps < 0.5) {
            return Err(ForecastError::Settings(format!(
                "eps {} is not in (0, 0.5)",
                self.eps
            )));
        }
        if horizon == 0 {
            return Err(ForecastError::Settings("the horizon is 0".into()));
        }
        let first = series.first().ok_or(ForecastError::NoSeries)?;
        let expected = first.values.len();
        for s in series {
            if s.values.len() != expected {
                return Err(ForecastError::LengthMismatch {
                    key: s.key.clone(),
                    len: s.values.len(),
                    expected,
                });
            }
            if s.values.len() < 2 {
                return Err(ForecastError::TooShort {
                    key: s.key.clone(),
                    len: s.values.len(),
                });
            }
            if let Some((index, value)) = s
                .values
                .iter()
                .enumerate()
                .find(|(_, v)| !(0.0..=1.0).contains(*v))
            {
                return Err(ForecastError::NotAShare {
                    key: s.key.clone(),
                    index,
                    value: *value,
                });
            }
        }
        Ok(())
    }

    /// The absolute errors of the method refitted on every series cut 1, 2, …, `interval_origins` values before
    /// its end (a series only while at least `max(4, 2 × season)` values remain), each divided by its series'
    /// scale, pooled per step ahead. Series that never change (scale 0) add none.
    fn inner_errors(&self, xs: &[Vec<f64>], scales: &[f64], horizon: usize) -> Vec<Vec<f64>> {
        let min_train = 4.max(2 * self.season);
        let mut errors = vec![Vec::new(); horizon];
        for cut in 1..=self.interval_origins {
            let kept: Vec<usize> = (0..xs.len())
                .filter(|i| scales[*i] > 0.0 && xs[*i].len() >= min_train + cut)
                .collect();
            if kept.is_empty() {
                break;
            }
            let trains: Vec<&[f64]> = kept.iter().map(|i| &xs[*i][..xs[*i].len() - cut]).collect();
            let forecasts =
                methods::point_forecasts(self.method, &trains, horizon, self.season, self.pooled);
            for (i, f) in kept.iter().zip(&forecasts) {
                let origin = xs[*i].len() - cut;
                for (step, value) in f.iter().enumerate().take(cut) {
                    errors[step].push((xs[*i][origin + step] - value).abs() / scales[*i]);
                }
            }
        }
        errors
    }
}

/// The logit of `share` clipped to `[eps, 1 − eps]`.
fn logit(share: f64, eps: f64) -> f64 {
    let p = share.clamp(eps, 1.0 - eps);
    (p / (1.0 - p)).ln()
}

/// The inverse of the logit.
fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The mean absolute one-step change of `x` (0 for fewer than two values).
pub(crate) fn mean_abs_diff(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    x.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (x.len() - 1) as f64
}

/// The `p` quantile of `values` (sorted in place), linear between order statistics (Hyndman and Fan's type 7).
pub(crate) fn quantile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let h = (values.len() - 1) as f64 * p;
    let below = h.floor() as usize;
    let above = (below + 1).min(values.len() - 1);
    values[below] + (h - below as f64) * (values[above] - values[below])
}

/// The z-values of the two-sided 80 % and 95 % normal intervals.
const Z: [f64; 2] = [1.281_551_565_545, 1.959_963_984_540];

/// The scaled half-widths `[80 %, 95 %]` per step from the pooled absolute scaled errors of each step: their
/// quantiles, never narrower than the step before. A step without errors (series too short to have any) takes a
/// random walk's: its one-step changes have mean absolute value 1 in these units, so σ = √(π/2) and the width
/// grows with the square root of the step.
fn half_widths(pooled: &[Vec<f64>]) -> Vec<[f64; 2]> {
    let mut widths: Vec<[f64; 2]> = Vec::with_capacity(pooled.len());
    for (step, errors) in pooled.iter().enumerate() {
        let mut w = if errors.is_empty() {
            let sigma = (std::f64::consts::PI / 2.0).sqrt() * ((step + 1) as f64).sqrt();
            [Z[0] * sigma, Z[1] * sigma]
        } else {
            let mut errors = errors.clone();
            [quantile(&mut errors, 0.8), quantile(&mut errors, 0.95)]
        };
        if let Some(previous) = widths.last() {
            w[0] = w[0].max(previous[0]);
            w[1] = w[1].max(previous[1]);
        }
        widths.push(w);
    }
    widths
}

/// Scales every step's points to add up to `total`, the bounds by the same factor, all clipped to `[0, 1]`.
fn renormalise(forecasts: &mut [Forecast], total: f64) {
    let horizon = forecasts[0].point.len();
    for step in 0..horizon {
        let sum: f64 = forecasts.iter().map(|f| f.point[step]).sum();
        if sum <= 0.0 {
            continue;
        }
        let factor = total / sum;
        for f in forecasts.iter_mut() {
            for v in [
                &mut f.point,
                &mut f.lower80,
                &mut f.upper80,
                &mut f.lower95,
                &mut f.upper95,
            ] {
                v[step] = (v[step] * factor).clamp(0.0, 1.0);
            }
        }
    }
}

/// The stored form of the trend model, for the registry: the settings it forecasts with (its parameters α, β, φ
/// are refitted on every call, from the latest data) and the backtests that justify them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendModel {
    format: u32,
    /// How it forecasts.
    pub settings: Settings,
    /// The steps ahead it is evaluated and served for.
    pub horizon: usize,
    /// Its backtests, each named by its data (`gh-pull-request.json quarters`).
    pub backtests: Vec<(String, BacktestReport)>,
}

impl TrendModel {
    /// A model of `settings` for `horizon` steps, with the backtests made of it.
    pub fn new(
        settings: Settings,
        horizon: usize,
        backtests: Vec<(String, BacktestReport)>,
    ) -> Self {
        TrendModel {
            format: FORMAT,
            settings,
            horizon,
            backtests,
        }
    }

    /// Forecasts `series` the model's horizon ahead.
    pub fn forecast(&self, series: &[Series]) -> Result<Vec<Forecast>, ForecastError> {
        self.settings.forecast(series, self.horizon)
    }

    /// The model as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a trend model serialises")
    }

    /// Reads a model saved by [`TrendModel::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, ForecastError> {
        let model: TrendModel =
            serde_json::from_slice(bytes).map_err(|e| ForecastError::Decode(e.to_string()))?;
        if model.format != FORMAT {
            return Err(ForecastError::Decode(format!("format {}", model.format)));
        }
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(key: &str, values: &[f64]) -> Series {
        Series {
            key: key.into(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn logit_clips_and_expit_inverts_it() {
        assert_eq!(logit(0.5, 1e-4), 0.0);
        assert!((logit(0.0, 1e-4) - (1e-4f64 / (1.0 - 1e-4)).ln()).abs() < 1e-12);
        assert!((logit(0.0, 1e-4) + logit(1.0, 1e-4)).abs() < 1e-9);
        assert!((expit(logit(0.2, 1e-4)) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn the_naive_forecast_of_shares_is_the_last_share_and_keeps_the_total() {
        let a = series("a", &[0.30, 0.32, 0.31, 0.35, 0.34, 0.36]);
        let b = series("b", &[0.20, 0.19, 0.21, 0.18, 0.19, 0.17]);
        let f = fit_and_forecast(&[a, b], Method::Naive, 2, 1).unwrap();
        assert!((f[0].point[0] - 0.36).abs() < 1e-12 && (f[1].point[1] - 0.17).abs() < 1e-12);
    }

    #[test]
    fn renormalisation_scales_points_and_bounds_by_one_factor() {
        // Points 0.3 and 0.5 add up to 0.8; the last total was 0.6, so every value is multiplied by 0.75.
        let mut forecasts = vec![
            Forecast {
                key: "a".into(),
                point: vec![0.3],
                lower80: vec![0.2],
                upper80: vec![0.4],
                lower95: vec![0.1],
                upper95: vec![0.6],
            },
            Forecast {
                key: "b".into(),
                point: vec![0.5],
                lower80: vec![0.4],
                upper80: vec![0.6],
                lower95: vec![0.3],
                upper95: vec![0.8],
            },
        ];
        renormalise(&mut forecasts, 0.6);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(forecasts[0].point[0], 0.225) && close(forecasts[1].point[0], 0.375));
        assert!(close(forecasts[0].upper95[0], 0.45) && close(forecasts[1].lower80[0], 0.3));
        // A factor above one is clipped at 1.
        renormalise(&mut forecasts, 2.4);
        assert_eq!(forecasts[1].upper95[0], 1.0);
    }

    #[test]
    fn a_trending_set_keeps_its_total_and_its_intervals_are_ordered() {
        let rising: Vec<f64> = (0..24)
            .map(|t| 0.05 + 0.01 * t as f64 + 0.004 * ((t * 7) % 3) as f64)
            .collect();
        let falling: Vec<f64> = rising.iter().map(|v| 0.6 - v).collect();
        let flat: Vec<f64> = (0..24)
            .map(|t| 0.2 + 0.003 * ((t * 5) % 4) as f64)
            .collect();
        let set = [
            series("up", &rising),
            series("down", &falling),
            series("flat", &flat),
        ];
        for method in Method::ALL {
            let f = fit_and_forecast(&set, method, 4, 4).unwrap();
            let last_total = 0.6 + flat[23];
            for step in 0..4 {
                let total: f64 = f.iter().map(|f| f.point[step]).sum();
                assert!((total - last_total).abs() < 1e-9, "{method}: {total}");
                for f in &f {
                    let ordered = [
                        f.lower95[step],
                        f.lower80[step],
                        f.point[step],
                        f.upper80[step],
                        f.upper95[step],
                    ];
                    assert!(
                        ordered.windows(2).all(|w| w[0] <= w[1]),
                        "{method}: {ordered:?}"
                    );
                    assert!(
                        f.lower95[step] < f.upper95[step],
                        "{method}: intervals have width"
                    );
                }
            }
        }
        let f = fit_and_forecast(&set, Method::DampedTrend, 4, 4).unwrap();
        assert!(
            f[0].point[0] > rising[23] - 0.005,
            "the rising share goes on rising: {:?}",
            f[0].point
        );
    }

    #[test]
    fn interval_widths_come_from_the_pooled_errors_and_never_shrink() {
        // Step 1: |errors| 1..=10 → 80 % quantile 8.2, 95 % 9.55; step 2 is narrower but takes step 1's.
        let pooled = vec![(1..=10).map(f64::from).collect(), vec![0.5, 1.0], vec![]];
        let w = half_widths(&pooled);
        assert!(
            (w[0][0] - 8.2).abs() < 1e-12 && (w[0][1] - 9.55).abs() < 1e-12,
            "{w:?}"
        );
        assert_eq!(w[1], w[0]);
        // Without errors, a random walk's widths (1.2816 · √(π/2) · √3 = 2.78 at 80 % for step 3) are narrower
        // than step 1's, so step 1's are kept.
        assert_eq!(w[2], w[0]);
        let alone = half_widths(&[vec![]]);
        assert!(
            (alone[0][0] - 1.281_551_565_545 * (std::f64::consts::PI / 2.0).sqrt()).abs() < 1e-9
        );
    }

    #[test]
    fn bad_input_is_named() {
        let a = series("a", &[0.1, 0.2, 0.3]);
        assert!(matches!(
            fit_and_forecast(&[], Method::Naive, 1, 1),
            Err(ForecastError::NoSeries)
        ));
        assert!(matches!(
            fit_and_forecast(&[a.clone(), series("b", &[0.1, 0.2])], Method::Naive, 1, 1),
            Err(ForecastError::LengthMismatch {
                len: 2,
                expected: 3,
                ..
            })
        ));
        assert!(matches!(
            fit_and_forecast(&[series("c", &[0.1, 1.5, 0.2])], Method::Naive, 1, 1),
            Err(ForecastError::NotAShare { index: 1, .. })
        ));
        assert!(matches!(
            fit_and_forecast(&[series("d", &[0.1])], Method::Naive, 1, 1),
            Err(ForecastError::TooShort { len: 1, .. })
        ));
        assert!(matches!(
            fit_and_forecast(&[a], Method::Naive, 0, 1),
            Err(ForecastError::Settings(_))
        ));
    }

    #[test]
    fn a_model_round_trips_through_json() {
        let model = TrendModel::new(Settings::default(), 4, Vec::new());
        let back = TrendModel::from_json(&model.to_json()).unwrap();
        assert_eq!(back, model);
        assert!(
            String::from_utf8(model.to_json())
                .unwrap()
                .contains("\"combination\"")
        );
        assert!(matches!(
            TrendModel::from_json(b"{}"),
            Err(ForecastError::Decode(_))
        ));
    }

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&mut v, 0.0), 1.0);
        assert_eq!(quantile(&mut v, 0.5), 2.5);
        assert_eq!(quantile(&mut v, 1.0), 4.0);
    }
}
