//! Change detectors for a stream of numbers, usually a model's per-prediction error (0/1 mistakes, log-loss):
//! they say when its mean has moved, which is when a served model has started to age.
//!
//! - [`PageHinkley`]: Page's cumulative test (Biometrika 1954) against the running mean, with River's defaults
//!   (`min_instances` 30, `delta` 0.005, `threshold` 50, forgetting factor `alpha` 1 − 0.0001) and, as there, two
//!   sided by default. After an alarm it starts afresh.
//! - [`Adwin`]: Bifet and Gavaldà's ADWIN (SDM 2007) with `delta` 0.002: a window of recent values, kept in an
//!   exponential histogram of buckets, is cut whenever an older and a newer part of it have means further apart
//!   than the Hoeffding–Bernstein bound `ε = sqrt(2/m · σ² · ln(2/δ')) + 2/(3m) · ln(2/δ')`, with `1/m = 1/n₀ + 1/n₁`,
//!   `σ²` the window's variance and `δ' = δ / ln W`. The older part is dropped, so the window then describes the
//!   new mean only. Cuts are checked every 32 values once the window holds more than 10, with at least 5 values
//!   on each side, and at most 5 buckets of each size, as River does.

use std::collections::VecDeque;

/// A detector of a change in a stream's mean.
pub trait Detector {
    /// Adds one value; true when a change is detected at this value.
    fn update(&mut self, value: f64) -> bool;
}

/// Which way of change Page-Hinkley looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// An increase of the mean (a model's error growing).
    Up,
    /// A decrease of the mean.
    Down,
    /// Either.
    Both,
}

/// Page-Hinkley's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PageHinkleyParams {
    /// Values seen before an alarm may be raised.
    pub min_instances: u64,
    /// The change in the mean tolerated without alarm, per value.
    pub delta: f64,
    /// The cumulative deviation (λ) that raises an alarm.
    pub threshold: f64,
    /// Forgetting factor applied to the cumulative sums at each value.
    pub alpha: f64,
    /// Which changes raise an alarm.
    pub direction: Direction,
}

impl Default for PageHinkleyParams {
    /// River's defaults.
    fn default() -> Self {
        PageHinkleyParams {
            min_instances: 30,
            delta: 0.005,
            threshold: 50.0,
            alpha: 1.0 - 0.0001,
            direction: Direction::Both,
        }
    }
}

/// The Page-Hinkley test.
#[derive(Clone, Debug, PartialEq)]
pub struct PageHinkley {
    params: PageHinkleyParams,
    seen: u64,
    mean: f64,
    /// The cumulative deviations above the mean (minus delta) and their least value so far.
    sum_up: f64,
    min_up: f64,
    /// The cumulative deviations (plus delta) and their greatest value so far.
    sum_down: f64,
    max_down: f64,
    drift: bool,
}

impl PageHinkley {
    /// A detector with nothing seen.
    pub fn new(params: PageHinkleyParams) -> PageHinkley {
        PageHinkley {
            params,
            seen: 0,
            mean: 0.0,
            sum_up: 0.0,
            min_up: f64::INFINITY,
            sum_down: 0.0,
            max_down: f64::NEG_INFINITY,
            drift: false,
        }
    }

    /// Forgets everything seen.
    pub fn reset(&mut self) {
        *self = PageHinkley::new(self.params);
    }

    /// Whether the last value raised an alarm.
    pub fn drift_detected(&self) -> bool {
        self.drift
    }

    /// The running mean since the last alarm.
    pub fn mean(&self) -> f64 {
        self.mean
    }
}

impl Default for PageHinkley {
    fn default() -> Self {
        PageHinkley::new(PageHinkleyParams::default())
    }
}

impl Detector for PageHinkley {
    fn update(&mut self, value: f64) -> bool {
        if self.drift {
            self.reset();
        }
        self.seen += 1;
        self.mean += (value - self.mean) / self.seen as f64;
        let deviation = value - self.mean;
        let p = self.params;
        self.sum_up = p.alpha * self.sum_up + deviation - p.delta;
        self.sum_down = p.alpha * self.sum_down + deviation + p.delta;
        self.min_up = self.min_up.min(self.sum_up);
        self.max_down = self.max_down.max(self.sum_down);
        if self.seen >= p.min_instances {
            let up = self.sum_up - self.min_up > p.threshold;
            let down = self.max_down - self.sum_down > p.threshold;
            self.drift = match p.direction {
                Direction::Up => up,
                Direction::Down => down,
                Direction::Both => up || down,
            };
        }
        self.drift
    }
}

/// A bucket of the histogram: the sum of its values and the sum of their squared deviations from their mean.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Bucket {
    total: f64,
    variance: f64,
}

/// ADWIN: an adaptive window whose older part is dropped when its mean differs from the newer part's.
#[derive(Clone, Debug, PartialEq)]
pub struct Adwin {
    delta: f64,
    /// `rows[r]` holds buckets of `2^r` values, newest first.
    rows: Vec<VecDeque<Bucket>>,
    width: u64,
    total: f64,
    /// The sum of squared deviations of the window's values from its mean.
    variance: f64,
    ticks: u64,
    detections: u64,
    drift: bool,
}

impl Adwin {
    /// Most buckets of one size before the two oldest merge.
    pub const MAX_BUCKETS: usize = 5;
    /// Cuts are checked every this many values.
    pub const CLOCK: u64 = 32;
    /// Fewest values on either side of a cut.
    pub const MIN_WINDOW: u64 = 5;
    /// Cuts are checked only once the window holds more than this.
    pub const GRACE: u64 = 10;

    /// An empty window with confidence `delta` (0.002 by default).
    pub fn new(delta: f64) -> Adwin {
        Adwin {
            delta,
            rows: Vec::new(),
            width: 0,
            total: 0.0,
            variance: 0.0,
            ticks: 0,
            detections: 0,
            drift: false,
        }
    }

    /// The values in the window.
    pub fn width(&self) -> u64 {
        self.width
    }

    /// The window's mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.width == 0 {
            0.0
        } else {
            self.total / self.width as f64
        }
    }

    /// The changes detected so far.
    pub fn detections(&self) -> u64 {
        self.detections
    }

    /// Whether the last value made the window shrink.
    pub fn drift_detected(&self) -> bool {
        self.drift
    }

    fn insert(&mut self, value: f64) {
        if self.width > 0 {
            let mean = self.mean();
            let w = self.width as f64;
            self.variance += w * (value - mean) * (value - mean) / (w + 1.0);
        }
        self.width += 1;
        self.total += value;
        if self.rows.is_empty() {
            self.rows.push(VecDeque::new());
        }
        self.rows[0].push_front(Bucket {
            total: value,
            variance: 0.0,
        });
        let mut row = 0;
        while self.rows[row].len() > Adwin::MAX_BUCKETS {
            let older = self.rows[row].pop_back().expect("a full row");
            let newer = self.rows[row].pop_back().expect("a full row");
            let n = (1u64 << row) as f64;
            let (m1, m2) = (older.total / n, newer.total / n);
            let merged = Bucket {
                total: older.total + newer.total,
                variance: older.variance
                    + newer.variance
                    + n * n * (m1 - m2) * (m1 - m2) / (2.0 * n),
            };
            if self.rows.len() == row + 1 {
                self.rows.push(VecDeque::new());
            }
            self.rows[row + 1].push_front(merged);
            row += 1;
        }
    }

    /// Drops the oldest bucket.
    fn drop_oldest(&mut self) {
        let row = self.rows.len() - 1;
        let bucket = self.rows[row]
            .pop_back()
            .expect("the last row has a bucket");
        if self.rows[row].is_empty() {
            self.rows.pop();
        }
        let n = (1u64 << row) as f64;
        self.width -= 1 << row;
        self.total -= bucket.total;
        let rest = self.width as f64;
        if rest > 0.0 {
            let (mean_dropped, mean_rest) = (bucket.total / n, self.total / rest);
            self.variance -= bucket.variance
                + n * rest * (mean_dropped - mean_rest) * (mean_dropped - mean_rest) / (n + rest);
            self.variance = self.variance.max(0.0);
        } else {
            self.variance = 0.0;
        }
    }

    /// Whether some cut of the window, oldest part first, separates means further apart than the bound.
    fn has_cut(&self) -> bool {
        let width = self.width as f64;
        let variance = self.variance / width;
        let log_term = (2.0 * width.ln() / self.delta).ln();
        let (mut n0, mut u0) = (0.0, 0.0);
        for (row, buckets) in self.rows.iter().enumerate().rev() {
            let n = (1u64 << row) as f64;
            for bucket in buckets.iter().rev() {
                n0 += n;
                u0 += bucket.total;
                let n1 = width - n0;
                if n1 < Adwin::MIN_WINDOW as f64 {
                    return false;
                }
                if n0 < Adwin::MIN_WINDOW as f64 {
                    continue;
                }
                let m_recip = 1.0 / n0 + 1.0 / n1;
                let epsilon =
                    (2.0 * m_recip * variance * log_term).sqrt() + 2.0 / 3.0 * m_recip * log_term;
                if (u0 / n0 - (self.total - u0) / n1).abs() > epsilon {
                    return true;
                }
            }
        }
        false
    }
}

impl Default for Adwin {
    fn default() -> Self {
        Adwin::new(0.002)
    }
}

impl Detector for Adwin {
    fn update(&mut self, value: f64) -> bool {
        self.insert(value);
        self.ticks += 1;
        self.drift = false;
        if self.ticks.is_multiple_of(Adwin::CLOCK) && self.width > Adwin::GRACE {
            while self.width > Adwin::GRACE && self.has_cut() {
                self.drop_oldest();
                self.drift = true;
            }
        }
        self.detections += u64::from(self.drift);
        self.drift
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::SplitMix64;

    /// 0/1 errors with rate `before` up to `change`, then `after`, drawn with a fixed seed.
    fn errors(n: usize, change: usize, before: f64, after: f64, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix64(seed);
        (0..n)
            .map(|i| {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let rate = if i < change { before } else { after };
                if u < rate { 1.0 } else { 0.0 }
            })
            .collect()
    }

    fn alarms(detector: &mut impl Detector, stream: &[f64]) -> Vec<usize> {
        stream
            .iter()
            .enumerate()
            .filter_map(|(i, v)| detector.update(*v).then_some(i))
            .collect()
    }

    #[test]
    fn page_hinkley_steps_by_hand() {
        let mut ph = PageHinkley::new(PageHinkleyParams {
            min_instances: 2,
            delta: 0.0,
            threshold: 0.9,
            alpha: 1.0,
            direction: Direction::Up,
        });
        // Mean 0: sum 0. Then 2: mean 1, deviation 1, sum 1, least sum 0 → 1 > 0.9.
        assert!(!ph.update(0.0));
        assert!(ph.update(2.0));
        // After an alarm it starts afresh.
        assert!(!ph.update(5.0));
        assert_eq!(ph.mean(), 5.0);
    }

    #[test]
    fn page_hinkley_finds_a_rise_in_the_error_rate_soon_after_it() {
        for seed in 1..=5 {
            let stream = errors(3000, 1000, 0.2, 0.7, seed);
            let found = alarms(&mut PageHinkley::default(), &stream);
            let first = found[0];
            assert!((1000..1250).contains(&first), "seed {seed}: {found:?}");
        }
    }

    #[test]
    fn page_hinkley_stays_quiet_on_a_stationary_stream() {
        for seed in 1..=5 {
            let stream = errors(5000, 5000, 0.2, 0.2, seed);
            assert!(
                alarms(&mut PageHinkley::default(), &stream).is_empty(),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn adwin_keeps_the_variance_of_its_window() {
        let mut adwin = Adwin::default();
        let values: Vec<f64> = (0..100).map(|i| f64::from(i % 7)).collect();
        for v in &values {
            adwin.update(*v);
        }
        let mean = values.iter().sum::<f64>() / 100.0;
        let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        assert_eq!(adwin.width(), 100);
        assert!((adwin.mean() - mean).abs() < 1e-12);
        assert!(
            (adwin.variance - ss).abs() < 1e-9,
            "{} vs {ss}",
            adwin.variance
        );
        // At most MAX_BUCKETS buckets per size.
        assert!(adwin.rows.iter().all(|r| r.len() <= Adwin::MAX_BUCKETS));
    }

    #[test]
    fn adwin_finds_a_rise_and_drops_the_old_part_of_its_window() {
        for seed in 1..=5 {
            let stream = errors(3000, 1000, 0.2, 0.7, seed);
            let mut adwin = Adwin::default();
            let found = alarms(&mut adwin, &stream);
            assert!((1000..1200).contains(&found[0]), "seed {seed}: {found:?}");
            // The window now holds values from after the change only, so its mean is the new rate.
            assert!(adwin.width() < 2100, "width {}", adwin.width());
            assert!((adwin.mean() - 0.7).abs() < 0.05, "{}", adwin.mean());
        }
    }

    #[test]
    fn adwin_stays_quiet_on_a_stationary_stream() {
        for seed in 1..=5 {
            let stream = errors(5000, 5000, 0.2, 0.2, seed);
            let mut adwin = Adwin::default();
            assert!(alarms(&mut adwin, &stream).is_empty(), "seed {seed}");
            assert_eq!(adwin.width(), 5000);
        }
    }
}
