//! The point forecasts of a set of series: naive, seasonal naive, simple exponential smoothing, the additive
//! damped-trend method, Theta and their combination. The series here are already on the scale they are forecast
//! on (the logit of shares); nothing in this file knows about shares.
//!
//! Parameters are fitted, per series or once for the set, by minimising the in-sample one-step sum of squared
//! errors, with the bounds of Hyndman et al.'s ETS framework: α and β in [0.0001, 0.9999], φ in [0.8, 0.98]. The initial states are set by the usual
//! heuristic (SES: the first value; damped trend: a least-squares line through the first ten values) rather than
//! fitted, which keeps the search to one or three parameters.

use super::Method;
use super::optimise::{Bounds, minimise_interval, nelder_mead};

/// Bounds of a smoothing weight (α, β).
const WEIGHT: Bounds = Bounds {
    lo: 1e-4,
    hi: 0.9999,
};
/// Bounds of the damping φ: below 0.8 the trend is gone within a few steps, above 0.98 it is hardly damped.
const DAMPING: Bounds = Bounds { lo: 0.8, hi: 0.98 };
/// How many of the first values the initial level and trend of the damped method are fitted to.
const INITIAL_WINDOW: usize = 10;

/// The point forecasts of `method` for `horizon` steps after the end of each of `ys` (none empty), with seasonal
/// period `season` (1 or 0: none). With `pooled`, the smoothing parameters are fitted once for the whole set
/// (each series' squared errors divided by its squared mean absolute change, so that every series weighs the
/// same), else per series; the states (levels, trends) are always each series' own.
pub(crate) fn point_forecasts(
    method: Method,
    ys: &[&[f64]],
    horizon: usize,
    season: usize,
    pooled: bool,
) -> Vec<Vec<f64>> {
    if matches!(method, Method::Naive | Method::SeasonalNaive) {
        return ys
            .iter()
            .map(|y| naive(method, y, horizon, season))
            .collect();
    }
    let seasonals: Vec<Option<Vec<f64>>> = ys.iter().map(|y| seasonal_indices(y, season)).collect();
    let adjusted: Vec<Vec<f64>> = ys
        .iter()
        .zip(&seasonals)
        .map(|(y, s)| match s {
            Some(s) => y
                .iter()
                .enumerate()
                .map(|(t, v)| v - s[t % season])
                .collect(),
            None => y.to_vec(),
        })
        .collect();
    let uses_ses = matches!(method, Method::Ses | Method::Theta | Method::Combination);
    let uses_damped = matches!(method, Method::DampedTrend | Method::Combination);
    let ses_alpha = (pooled && uses_ses).then(|| Ses::fit_pooled(&adjusted));
    let damped_params = (pooled && uses_damped).then(|| Damped::fit_pooled(&adjusted));
    adjusted
        .iter()
        .zip(&seasonals)
        .map(|(y, seasonal)| {
            let ses = || match ses_alpha {
                Some(alpha) => Ses::with_alpha(y, alpha),
                None => Ses::fit(y),
            };
            let damped = || match damped_params {
                Some(p) => Damped::with_params(y, p),
                None => Damped::fit(y),
            };
            let theta = || Theta::from_ses(y, ses());
            let mut f = match method {
                Method::Ses => ses().forecast(horizon),
                Method::DampedTrend => damped().forecast(horizon),
                Method::Theta => theta().forecast(horizon),
                _ => {
                    let parts = [
                        ses().forecast(horizon),
                        damped().forecast(horizon),
                        theta().forecast(horizon),
                    ];
                    (0..horizon)
                        .map(|j| parts.iter().map(|p| p[j]).sum::<f64>() / parts.len() as f64)
                        .collect()
                }
            };
            if let Some(s) = seasonal {
                for (j, v) in f.iter_mut().enumerate() {
                    *v += s[(y.len() + j) % season];
                }
            }
            f
        })
        .collect()
}

/// Naive and seasonal naive forecasts of one series.
fn naive(method: Method, y: &[f64], horizon: usize, season: usize) -> Vec<f64> {
    let n = y.len();
    if method == Method::SeasonalNaive && season > 1 && n >= season {
        (0..horizon).map(|j| y[n - season + j % season]).collect()
    } else {
        vec![y[n - 1]; horizon]
    }
}

/// The weight of a series in a pooled fit: one over its squared mean absolute change (0 when it never changes or
/// is too short to fit), so that the sum of squared errors is in the same units for every series.
fn pooled_weight(y: &[f64], min_len: usize) -> f64 {
    let scale = super::mean_abs_diff(y);
    if y.len() < min_len || scale == 0.0 {
        0.0
    } else {
        1.0 / (scale * scale)
    }
}

/// Simple exponential smoothing: the level follows each value by a share α of the one-step error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Ses {
    /// The smoothing weight.
    pub alpha: f64,
    /// The level after the last value: every forecast.
    pub level: f64,
}

impl Ses {
    /// α minimising the one-step squared errors from the first value as initial level.
    pub(crate) fn fit(y: &[f64]) -> Self {
        if y.len() < 3 {
            return Ses::with_alpha(y, WEIGHT.hi);
        }
        let alpha = minimise_interval(
            |a| Ses::with_alpha_sse(y, a).1,
            WEIGHT.lo,
            WEIGHT.hi,
            21,
            1e-6,
        );
        Ses::with_alpha(y, alpha)
    }

    /// The α minimising the weighted squared errors of every series of the set (see [`point_forecasts`]).
    pub(crate) fn fit_pooled(ys: &[Vec<f64>]) -> f64 {
        let weights: Vec<f64> = ys.iter().map(|y| pooled_weight(y, 3)).collect();
        let sse = |a: f64| -> f64 {
            ys.iter()
                .zip(&weights)
                .filter(|(_, w)| **w > 0.0)
                .map(|(y, w)| w * Ses::with_alpha_sse(y, a).1)
                .sum()
        };
        minimise_interval(sse, WEIGHT.lo, WEIGHT.hi, 21, 1e-6)
    }

    /// The level after smoothing `y` with weight `alpha`.
    pub(crate) fn with_alpha(y: &[f64], alpha: f64) -> Self {
        Ses::with_alpha_sse(y, alpha).0
    }

    fn with_alpha_sse(y: &[f64], alpha: f64) -> (Self, f64) {
        let mut level = y[0];
        let mut sse = 0.0;
        for v in &y[1..] {
            let e = v - level;
            sse += e * e;
            level += alpha * e;
        }
        (Ses { alpha, level }, sse)
    }

    fn forecast(&self, horizon: usize) -> Vec<f64> {
        vec![self.level; horizon]
    }
}

/// Holt's linear method with an additive damped trend (Gardner and McKenzie):
/// `l_t = α y_t + (1 − α)(l_{t−1} + φ b_{t−1})`, `b_t = β (l_t − l_{t−1}) + (1 − β) φ b_{t−1}`,
/// forecast `l_n + (φ + φ² + … + φ^h) b_n`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Damped {
    pub alpha: f64,
    pub beta: f64,
    pub phi: f64,
    /// The level after the last value.
    pub level: f64,
    /// The trend after the last value.
    pub trend: f64,
}

impl Damped {
    /// α, β and φ minimising the one-step squared errors (Nelder–Mead inside the bounds, from α 0.5, β 0.1,
    /// φ 0.9). Fewer than four values carry no trend worth fitting: SES instead.
    pub(crate) fn fit(y: &[f64]) -> Self {
        if y.len() < 4 {
            let ses = Ses::fit(y);
            return Damped {
                alpha: ses.alpha,
                beta: WEIGHT.lo,
                phi: DAMPING.lo,
                level: ses.level,
                trend: 0.0,
            };
        }
        let (l0, b0) = line(&y[..y.len().min(INITIAL_WINDOW)], 1.0);
        let best = nelder_mead(
            |p| Damped::run(y, p[0], p[1], p[2], l0, b0).1,
            &[0.5, 0.1, 0.9],
            &[WEIGHT, WEIGHT, DAMPING],
            400,
            1e-12,
        );
        Damped::run(y, best[0], best[1], best[2], l0, b0).0
    }

    /// The (α, β, φ) minimising the weighted squared errors of every series of the set (see
    /// [`point_forecasts`]), each series from its own initial states.
    pub(crate) fn fit_pooled(ys: &[Vec<f64>]) -> [f64; 3] {
        let fits: Vec<(&Vec<f64>, f64, (f64, f64))> = ys
            .iter()
            .map(|y| {
                (
                    y,
                    pooled_weight(y, 4),
                    line(&y[..y.len().min(INITIAL_WINDOW)], 1.0),
                )
            })
            .filter(|(_, w, _)| *w > 0.0)
            .collect();
        let best = nelder_mead(
            |p| {
                fits.iter()
                    .map(|(y, w, (l0, b0))| w * Damped::run(y, p[0], p[1], p[2], *l0, *b0).1)
                    .sum()
            },
            &[0.5, 0.1, 0.9],
            &[WEIGHT, WEIGHT, DAMPING],
            400,
            1e-12,
        );
        [best[0], best[1], best[2]]
    }

    /// The states after running `y` with the parameters (α, β, φ) of [`Damped::fit_pooled`]; SES (a zero trend)
    /// for fewer than four values.
    pub(crate) fn with_params(y: &[f64], p: [f64; 3]) -> Self {
        if y.len() < 4 {
            let ses = Ses::fit(y);
            return Damped {
                alpha: ses.alpha,
                beta: p[1],
                phi: p[2],
                level: ses.level,
                trend: 0.0,
            };
        }
        let (l0, b0) = line(&y[..y.len().min(INITIAL_WINDOW)], 1.0);
        Damped::run(y, p[0], p[1], p[2], l0, b0).0
    }

    /// Runs the recursions over `y` from level `l0` and trend `b0` (the states before the first value);
    /// the states after the last value and the one-step squared errors.
    pub(crate) fn run(y: &[f64], alpha: f64, beta: f64, phi: f64, l0: f64, b0: f64) -> (Self, f64) {
        let (mut level, mut trend, mut sse) = (l0, b0, 0.0);
        for v in y {
            let forecast = level + phi * trend;
            sse += (v - forecast).powi(2);
            let previous = level;
            level = alpha * v + (1.0 - alpha) * forecast;
            trend = beta * (level - previous) + (1.0 - beta) * phi * trend;
        }
        let fitted = Damped {
            alpha,
            beta,
            phi,
            level,
            trend,
        };
        (fitted, sse)
    }

    fn forecast(&self, horizon: usize) -> Vec<f64> {
        let mut damping = 0.0;
        let mut power = 1.0;
        (0..horizon)
            .map(|_| {
                power *= self.phi;
                damping += power;
                self.level + damping * self.trend
            })
            .collect()
    }
}

/// The standard Theta method (Assimakopoulos and Nikolopoulos 2000) in Hyndman and Billah's (2003) form: SES of
/// the series plus half the slope of its least-squares line (the θ = 2 line's drift),
/// `l_n + (b/2) (h − 1 + (1 − (1 − α)^n) / α)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Theta {
    pub ses: Ses,
    /// The slope of the least-squares line through the whole series.
    pub slope: f64,
    /// The series' length.
    pub n: usize,
}

impl Theta {
    /// `ses` (smoothed over `y`) and the slope of the line through all values of `y`.
    pub(crate) fn from_ses(y: &[f64], ses: Ses) -> Self {
        Theta {
            ses,
            slope: if y.len() < 2 { 0.0 } else { line(y, 0.0).1 },
            n: y.len(),
        }
    }

    fn forecast(&self, horizon: usize) -> Vec<f64> {
        let alpha = self.ses.alpha;
        let start = (1.0 - (1.0 - alpha).powi(self.n as i32)) / alpha;
        (0..horizon)
            .map(|j| self.ses.level + self.slope / 2.0 * (j as f64 + start))
            .collect()
    }
}

/// The least-squares line through `y` at times `first, first + 1, …`: (value at time 0, slope).
fn line(y: &[f64], first: f64) -> (f64, f64) {
    let n = y.len() as f64;
    if y.len() < 2 {
        return (y.first().copied().unwrap_or(0.0), 0.0);
    }
    let mean_t = first + (n - 1.0) / 2.0;
    let mean_y = y.iter().sum::<f64>() / n;
    let (mut sty, mut stt) = (0.0, 0.0);
    for (i, v) in y.iter().enumerate() {
        let dt = first + i as f64 - mean_t;
        sty += dt * (v - mean_y);
        stt += dt * dt;
    }
    let slope = sty / stt;
    (mean_y - slope * mean_t, slope)
}

/// The autocorrelations of `y` at lags 1..=`max_lag`.
fn autocorrelations(y: &[f64], max_lag: usize) -> Vec<f64> {
    let n = y.len();
    let mean = y.iter().sum::<f64>() / n as f64;
    let denominator: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    (1..=max_lag)
        .map(|k| {
            if denominator == 0.0 {
                return 0.0;
            }
            (k..n)
                .map(|t| (y[t] - mean) * (y[t - k] - mean))
                .sum::<f64>()
                / denominator
        })
        .collect()
}

/// The additive seasonal indices of `y` (position `t % season`, summing to zero) when it is seasonal, else
/// `None`. Seasonal means the M3/M4 competitions' test: at least three full seasons and the autocorrelation at
/// lag `season` beyond 1.645 standard errors (Bartlett's, from the lower lags), a one-sided 90 % test. The
/// indices come from classical decomposition: the series minus its centred moving average of one season, averaged
/// per position. Additive, because on the logit scale a multiplicative effect on the odds is additive.
pub(crate) fn seasonal_indices(y: &[f64], season: usize) -> Option<Vec<f64>> {
    let n = y.len();
    if season < 2 || n < 3 * season {
        return None;
    }
    let r = autocorrelations(y, season);
    let limit = 1.645
        * ((1.0 + 2.0 * r[..season - 1].iter().map(|v| v * v).sum::<f64>()) / n as f64).sqrt();
    if r[season - 1].abs() <= limit {
        return None;
    }
    let half = season / 2;
    let mut sums = vec![0.0; season];
    let mut counts = vec![0usize; season];
    for t in half..n - half {
        let trend = if season.is_multiple_of(2) {
            // A 2×m moving average: the two end values at half weight, so the window is centred on t.
            (y[t - half] / 2.0 + y[t + 1 - half..t + half].iter().sum::<f64>() + y[t + half] / 2.0)
                / season as f64
        } else {
            y[t - half..=t + half].iter().sum::<f64>() / season as f64
        };
        sums[t % season] += y[t] - trend;
        counts[t % season] += 1;
    }
    let mut indices: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, c)| s / *c as f64)
        .collect();
    let mean = indices.iter().sum::<f64>() / season as f64;
    indices.iter_mut().for_each(|s| *s -= mean);
    Some(indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(method: Method, y: &[f64], horizon: usize, season: usize) -> Vec<f64> {
        point_forecasts(method, &[y], horizon, season, false).remove(0)
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn naive_and_seasonal_naive_repeat_the_last_values() {
        let y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(one(Method::Naive, &y, 3, 4), [6.0; 3]);
        assert_eq!(
            one(Method::SeasonalNaive, &y, 6, 4),
            [3.0, 4.0, 5.0, 6.0, 3.0, 4.0]
        );
        // Without a season, seasonal naive is naive.
        assert_eq!(one(Method::SeasonalNaive, &y, 2, 1), [6.0; 2]);
    }

    #[test]
    fn ses_follows_its_hand_computed_recursion() {
        // l = 1; e = 3 − 1 = 2, l = 1 + 0.5·2 = 2; e = 2 − 2 = 0, l = 2; e = 4 − 2 = 2, l = 3. SSE = 8.
        let (ses, sse) = Ses::with_alpha_sse(&[1.0, 3.0, 2.0, 4.0], 0.5);
        assert_eq!(ses.level, 3.0);
        assert_eq!(sse, 8.0);
        // A wandering series' best α is near the top of the range (the level is about the last value),
        // alternating noise's near the bottom.
        let walk = [0.0, 1.0, 3.0, 2.0, 4.0, 7.0, 6.0, 8.0];
        let fitted = Ses::fit(&walk);
        assert!(fitted.alpha > 0.9, "{fitted:?}");
        let noise = [1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0];
        assert!(Ses::fit(&noise).alpha < 0.6, "{:?}", Ses::fit(&noise));
    }

    #[test]
    fn damped_trend_follows_its_hand_computed_recursion() {
        // α 0.5, β 0.5, φ 0.5 from l 0, b 2:
        // y 1: f = 0 + 0.5·2 = 1, e 0; l = 1; b = 0.5·(1 − 0) + 0.5·0.5·2 = 1.
        // y 3: f = 1 + 0.5 = 1.5, e 1.5; l = 0.5·3 + 0.5·1.5 = 2.25; b = 0.5·1.25 + 0.5·0.5·1 = 0.875.
        let (fit, sse) = Damped::run(&[1.0, 3.0], 0.5, 0.5, 0.5, 0.0, 2.0);
        assert_eq!(fit.level, 2.25);
        assert_eq!(fit.trend, 0.875);
        assert_eq!(sse, 2.25);
        // Forecasts: 2.25 + 0.5·0.875, then + 0.25·0.875.
        assert_eq!(fit.forecast(2), [2.6875, 2.90625]);
    }

    #[test]
    fn damped_trend_fits_a_straight_line_with_little_damping() {
        let y: Vec<f64> = (0..20).map(|t| 2.0 + 0.5 * t as f64).collect();
        let fit = Damped::fit(&y);
        // The states end on the line's own level and slope.
        assert!(
            close(fit.level, 11.5, 1e-4) && close(fit.trend, 0.5, 1e-4),
            "{fit:?}"
        );
        let f = fit.forecast(2);
        assert!(close(f[0], 11.5 + fit.phi * 0.5, 1e-4), "{f:?}");
        // A damped trend flattens: the second step adds less than the first.
        assert!(f[1] - f[0] < f[0] - 11.5);
    }

    #[test]
    fn theta_adds_half_the_slope_to_ses() {
        let y = [1.0, 2.0, 3.0, 4.0];
        let theta = Theta::from_ses(&y, Ses::fit(&y));
        assert_eq!(theta.slope, 1.0);
        let alpha = theta.ses.alpha;
        let start = (1.0 - (1.0 - alpha).powi(4)) / alpha;
        let f = theta.forecast(2);
        assert!(close(f[0], theta.ses.level + 0.5 * start, 1e-12));
        assert!(
            close(f[1] - f[0], 0.5, 1e-12),
            "each step adds half the slope"
        );
        // With α = 1 (SES = the last value), the first step is the last value plus half the slope.
        let fixed = Theta {
            ses: Ses::with_alpha(&y, 1.0),
            ..theta
        };
        assert_eq!(fixed.forecast(2), [4.5, 5.0]);
    }

    #[test]
    fn the_least_squares_line_is_exact_on_a_line() {
        assert_eq!(line(&[3.0, 5.0, 7.0], 1.0), (1.0, 2.0));
        assert_eq!(line(&[3.0, 5.0, 7.0], 0.0), (3.0, 2.0));
    }

    #[test]
    fn a_strong_season_is_found_and_removed_and_none_is_invented() {
        let pattern = [1.0, -0.5, 0.3, -0.8];
        let y: Vec<f64> = (0..24).map(|t| 0.05 * t as f64 + pattern[t % 4]).collect();
        let s = seasonal_indices(&y, 4).expect("seasonal");
        for (got, want) in s.iter().zip(pattern) {
            assert!(close(*got, want, 1e-9), "{s:?}");
        }
        // The combination then continues the pattern on top of the trend.
        let f = one(Method::Combination, &y, 4, 4);
        for (j, v) in f.iter().enumerate() {
            let deseasonalised = v - pattern[(24 + j) % 4];
            assert!(
                (deseasonalised - (0.05 * (24 + j) as f64)).abs() < 0.2,
                "{f:?}"
            );
        }
        let flat: Vec<f64> = (0..24)
            .map(|t| if t % 3 == 0 { 0.1 } else { 0.0 })
            .collect();
        assert_eq!(seasonal_indices(&flat, 4), None);
        assert_eq!(seasonal_indices(&y[..11], 4), None, "under three seasons");
    }

    #[test]
    fn the_combination_is_the_mean_of_its_three_methods() {
        let y = [0.1, 0.4, 0.3, 0.7, 0.9, 0.8, 1.2, 1.1, 1.5];
        let parts = [
            one(Method::Ses, &y, 3, 1),
            one(Method::DampedTrend, &y, 3, 1),
            one(Method::Theta, &y, 3, 1),
        ];
        let comb = one(Method::Combination, &y, 3, 1);
        for j in 0..3 {
            assert!(close(
                comb[j],
                (parts[0][j] + parts[1][j] + parts[2][j]) / 3.0,
                1e-12
            ));
        }
    }
}
