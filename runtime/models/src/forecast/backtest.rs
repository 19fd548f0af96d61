//! Rolling-origin backtests of share forecasts: at each origin every series is cut there, forecast with the
//! settings as in production (renormalisation included), and scored on the values after the cut.
//!
//! The score is MASE as the M4 competition and the project's reference script define it: for one series and one
//! origin, the mean absolute error over the horizon divided by the mean absolute one-step change of that training
//! window (the in-sample naive error), both on the share scale; then the mean over every (series, origin).

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{ForecastError, Method, Series, Settings, mean_abs_diff};

/// One series' MASE over the origins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesScore {
    /// The series' key.
    pub key: String,
    /// Its mean scaled error over the origins.
    pub mase: f64,
}

/// What a backtest measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    /// The method.
    pub method: Method,
    /// The steps ahead scored from each origin.
    pub horizon: usize,
    /// The first origin: the length of the first training window.
    pub first_origin: usize,
    /// The last origin.
    pub last_origin: usize,
    /// The (series, origin) pairs scored.
    pub forecasts: usize,
    /// Pairs left out because their training window never changed (nothing to scale by).
    pub unscaled: usize,
    /// The mean scaled error over every pair.
    pub mase: f64,
    /// The median over series of each series' MASE.
    pub median_mase: f64,
    /// The MASE of each step ahead alone (step 1 first).
    pub mase_by_step: Vec<f64>,
    /// The share of actual values inside their 80 % interval.
    pub coverage80: f64,
    /// The share of actual values inside their 95 % interval.
    pub coverage95: f64,
    /// Every series' MASE, in the order given.
    pub series: Vec<SeriesScore>,
}

/// Forecasts `series` with `settings` from every origin in `origins` (the number of values each training window
/// keeps) and scores `horizon` steps from each. Every origin needs at least 2 values before it and `horizon` from
/// it on.
pub fn backtest(
    series: &[Series],
    settings: &Settings,
    horizon: usize,
    origins: Range<usize>,
) -> Result<BacktestReport, ForecastError> {
    let len = series.first().ok_or(ForecastError::NoSeries)?.values.len();
    if let Some(s) = series.iter().find(|s| s.values.len() != len) {
        return Err(ForecastError::LengthMismatch {
            key: s.key.clone(),
            len: s.values.len(),
            expected: len,
        });
    }
    if origins.start < 2 || origins.is_empty() || origins.end - 1 + horizon > len {
        return Err(ForecastError::Origins {
            start: origins.start,
            end: origins.end,
            horizon,
            len,
        });
    }
    let mut per_series: Vec<Vec<f64>> = vec![Vec::new(); series.len()];
    let mut by_step = vec![0.0; horizon];
    let (mut inside80, mut inside95, mut scored, mut unscaled) = (0usize, 0usize, 0usize, 0usize);
    for origin in origins.clone() {
        let train: Vec<Series> = series
            .iter()
            .map(|s| Series {
                key: s.key.clone(),
                values: s.values[..origin].to_vec(),
            })
            .collect();
        let forecasts = settings.forecast(&train, horizon)?;
        for (i, (s, f)) in series.iter().zip(&forecasts).enumerate() {
            let scale = mean_abs_diff(&train[i].values);
            if scale == 0.0 {
                unscaled += 1;
                continue;
            }
            let actual = &s.values[origin..origin + horizon];
            let mut error = 0.0;
            for (step, y) in actual.iter().enumerate() {
                let e = (f.point[step] - y).abs();
                error += e;
                by_step[step] += e / scale;
                inside80 += usize::from(f.lower80[step] <= *y && *y <= f.upper80[step]);
                inside95 += usize::from(f.lower95[step] <= *y && *y <= f.upper95[step]);
            }
            per_series[i].push(error / horizon as f64 / scale);
            scored += 1;
        }
    }
    let all: Vec<f64> = per_series.iter().flatten().copied().collect();
    let mut means: Vec<f64> = per_series
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| mean(v))
        .collect();
    Ok(BacktestReport {
        method: settings.method,
        horizon,
        first_origin: origins.start,
        last_origin: origins.end - 1,
        forecasts: scored,
        unscaled,
        mase: mean(&all),
        median_mase: if means.is_empty() {
            f64::NAN
        } else {
            super::quantile(&mut means, 0.5)
        },
        mase_by_step: by_step.iter().map(|s| s / scored as f64).collect(),
        coverage80: inside80 as f64 / (scored * horizon) as f64,
        coverage95: inside95 as f64 / (scored * horizon) as f64,
        series: series
            .iter()
            .zip(&per_series)
            .map(|(s, v)| SeriesScore {
                key: s.key.clone(),
                mase: mean(v),
            })
            .collect(),
    })
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

impl fmt::Display for BacktestReport {
    /// One line: method, MASE, median over series, per step, coverage, how many forecasts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps: Vec<String> = self
            .mase_by_step
            .iter()
            .map(|m| format!("{m:.3}"))
            .collect();
        write!(
            f,
            "{:<15} MASE {:.3}  median {:.3}  by step {}  coverage 80 % {:.3}, 95 % {:.3}  ({} forecasts, origins {}..={})",
            self.method.name(),
            self.mase,
            self.median_mase,
            steps.join(" "),
            self.coverage80,
            self.coverage95,
            self.forecasts,
            self.first_origin,
            self.last_origin,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mase_divides_each_window_by_its_own_naive_error() {
        // One series; origin 3 (train 0.1, 0.3, 0.2: mean |diff| 0.15), horizon 2, test 0.4, 0.5.
        // Naive forecasts 0.2: errors 0.2 and 0.3, mean 0.25, MASE 0.25 / 0.15 = 5/3.
        let s = Series {
            key: "a".into(),
            values: vec![0.1, 0.3, 0.2, 0.4, 0.5],
        };
        let settings = Settings::new(Method::Naive, 1);
        let report = backtest(std::slice::from_ref(&s), &settings, 2, 3..4).unwrap();
        assert!((report.mase - 5.0 / 3.0).abs() < 1e-9, "{report}");
        assert!((report.mase_by_step[0] - 0.2 / 0.15).abs() < 1e-9);
        assert!((report.mase_by_step[1] - 0.3 / 0.15).abs() < 1e-9);
        assert_eq!(report.forecasts, 1);
        // Two origins: 3 as above, 2 (train 0.1, 0.3: scale 0.2; naive 0.3 vs 0.2, 0.4: mean 0.1, MASE 0.5).
        let report = backtest(std::slice::from_ref(&s), &settings, 2, 2..4).unwrap();
        assert!(
            (report.mase - (5.0 / 3.0 + 0.5) / 2.0).abs() < 1e-9,
            "{report}"
        );
        assert_eq!(report.series[0].mase, report.mase);
    }

    #[test]
    fn origins_that_do_not_fit_are_refused() {
        let s = Series {
            key: "a".into(),
            values: vec![0.1, 0.3, 0.2, 0.4, 0.5],
        };
        let settings = Settings::new(Method::Naive, 1);
        for origins in [1..3, 3..5, 3..3] {
            assert!(matches!(
                backtest(std::slice::from_ref(&s), &settings, 2, origins),
                Err(ForecastError::Origins { .. })
            ));
        }
    }
}
