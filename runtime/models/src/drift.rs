//! Drift of a feature between a reference sample (what a model was trained on) and a current one (what it now
//! scores): the population stability index for numbers and for categories, and the two-sample
//! Kolmogorov–Smirnov statistic for numbers.
//!
//! PSI is `Σ (c − r) · ln(c / r)` over bins, `r` and `c` the shares of the reference and of the current sample in
//! a bin. Numeric bins are fixed from the reference alone: their edges are the reference's quantiles at
//! `k / bins` (linear interpolation between order statistics, numpy's default), equal edges merged, each bin
//! holding the values above its lower edge up to and including its upper one. Categories are their own bins,
//! plus one "other" bin for values the reference never had. A share of 0 counts as [`EPSILON`], so an empty bin
//! weighs heavily but finitely. The usual reading: below 0.1 stable, 0.1 to 0.25 a shift to watch, above 0.25 a
//! shift that matters. Values that are not finite are left out.

use std::collections::BTreeMap;

/// The share an empty bin counts as.
pub const EPSILON: f64 = 1e-4;

/// Bins of a numeric feature, fixed from a reference sample, with the reference's shares.
#[derive(Clone, Debug, PartialEq)]
pub struct NumericBins {
    /// Upper edges of every bin but the last, increasing.
    edges: Vec<f64>,
    /// The reference's share in each bin.
    reference: Vec<f64>,
}

impl NumericBins {
    /// Up to `bins` bins (fewer where quantiles coincide) from the reference's quantiles.
    pub fn from_reference(reference: &[f64], bins: usize) -> NumericBins {
        let sorted = sorted_finite(reference);
        let mut edges: Vec<f64> = (1..bins.max(1))
            .filter_map(|k| quantile(&sorted, k as f64 / bins as f64))
            .collect();
        edges.dedup();
        let mut binned = NumericBins {
            edges,
            reference: Vec::new(),
        };
        binned.reference = binned.shares(&sorted);
        binned
    }

    /// The upper edges of every bin but the last.
    pub fn edges(&self) -> &[f64] {
        &self.edges
    }

    /// The reference's share in each bin.
    pub fn reference_shares(&self) -> &[f64] {
        &self.reference
    }

    /// The share of `values` in each bin (all 0 when none is finite).
    pub fn shares(&self, values: &[f64]) -> Vec<f64> {
        let mut counts = vec![0u64; self.edges.len() + 1];
        let mut total = 0u64;
        for v in values.iter().filter(|v| v.is_finite()) {
            // The first edge at or above the value; past every edge, the last bin.
            counts[self.edges.partition_point(|e| e < v)] += 1;
            total += 1;
        }
        counts
            .iter()
            .map(|c| {
                if total == 0 {
                    0.0
                } else {
                    *c as f64 / total as f64
                }
            })
            .collect()
    }

    /// The PSI of `current` against the reference.
    pub fn psi(&self, current: &[f64]) -> f64 {
        psi_of_shares(&self.reference, &self.shares(current))
    }
}

/// The PSI of `current` against `reference` over `bins` quantile bins of the reference.
pub fn psi(reference: &[f64], current: &[f64], bins: usize) -> f64 {
    NumericBins::from_reference(reference, bins).psi(current)
}

/// Bins of a categorical feature: the reference's values with their shares, and "other".
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryBins {
    reference: BTreeMap<String, f64>,
}

impl CategoryBins {
    /// The reference's values and shares.
    pub fn from_reference<S: AsRef<str>>(reference: &[S]) -> CategoryBins {
        let mut counts: BTreeMap<String, f64> = BTreeMap::new();
        for value in reference {
            *counts.entry(value.as_ref().to_string()).or_default() += 1.0;
        }
        let total = reference.len().max(1) as f64;
        counts.values_mut().for_each(|c| *c /= total);
        CategoryBins { reference: counts }
    }

    /// The reference's share of each value it has, in value order.
    pub fn reference_shares(&self) -> &BTreeMap<String, f64> {
        &self.reference
    }

    /// The PSI of `current` against the reference; values the reference never had share the "other" bin.
    pub fn psi<S: AsRef<str>>(&self, current: &[S]) -> f64 {
        let mut counts: BTreeMap<&str, f64> = BTreeMap::new();
        let mut other = 0.0;
        for value in current {
            match self.reference.get_key_value(value.as_ref()) {
                Some((known, _)) => *counts.entry(known.as_str()).or_default() += 1.0,
                None => other += 1.0,
            }
        }
        let total = current.len().max(1) as f64;
        let mut reference = Vec::with_capacity(self.reference.len() + 1);
        let mut shares = Vec::with_capacity(self.reference.len() + 1);
        for (value, share) in &self.reference {
            reference.push(*share);
            shares.push(counts.get(value.as_str()).copied().unwrap_or(0.0) / total);
        }
        reference.push(0.0);
        shares.push(other / total);
        psi_of_shares(&reference, &shares)
    }
}

/// The PSI of categorical `current` against `reference`.
pub fn psi_categories<S: AsRef<str>, T: AsRef<str>>(reference: &[S], current: &[T]) -> f64 {
    CategoryBins::from_reference(reference).psi(current)
}

/// `Σ (c − r) · ln(c / r)`, shares of 0 counted as [`EPSILON`].
fn psi_of_shares(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(r, c)| {
            let (r, c) = (r.max(EPSILON), c.max(EPSILON));
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// The two-sample Kolmogorov–Smirnov statistic: the largest distance between the two empirical distribution
/// functions (0 when a sample is empty).
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (a, b) = (sorted_finite(a), sorted_finite(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut largest) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        // Step past every copy of the smaller value in both samples before comparing, so ties move together.
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] == x {
            i += 1;
        }
        while j < b.len() && b[j] == x {
            j += 1;
        }
        largest = largest.max((i as f64 / na - j as f64 / nb).abs());
    }
    largest
}

fn sorted_finite(values: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// The `q` quantile of sorted values, interpolating linearly between order statistics.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let at = q.clamp(0.0, 1.0) * last as f64;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    Some(sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn numeric_psi_by_hand() {
        let reference: Vec<f64> = (1..=10).map(f64::from).collect();
        let bins = NumericBins::from_reference(&reference, 2);
        // The median of 1..=10 is 5.5: half the reference on each side.
        assert_eq!(bins.edges(), [5.5]);
        assert_eq!(bins.reference_shares(), [0.5, 0.5]);
        // Three of four current values below: 0.25·ln 1.5 + (−0.25)·ln 0.5 = 0.25·ln 3.
        assert!(close(bins.psi(&[1.0, 2.0, 3.0, 7.0]), 0.25 * 3f64.ln()));
        // Nothing above: the empty bin counts as EPSILON.
        let expected = 0.5 * 2f64.ln() + (EPSILON - 0.5) * (EPSILON / 0.5).ln();
        assert!(close(bins.psi(&[1.0, 2.0]), expected));
        // The same sample: 0.
        assert!(close(psi(&reference, &reference, 4), 0.0));
    }

    #[test]
    fn numeric_bins_come_from_the_reference_quantiles() {
        let reference: Vec<f64> = (0..=100).map(f64::from).collect();
        let bins = NumericBins::from_reference(&reference, 4);
        assert_eq!(bins.edges(), [25.0, 50.0, 75.0]);
        // A value on an edge falls in the bin below it; values past the ends in the outer bins.
        assert_eq!(
            bins.shares(&[25.0, 25.5, -1e9, 1e9]),
            [0.5, 0.25, 0.0, 0.25]
        );
        // Heavy ties: equal quantiles merge into one edge.
        let tied = NumericBins::from_reference(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0], 4);
        assert_eq!(tied.edges(), [0.0, 0.25]);
        assert_eq!(tied.reference_shares(), [0.75, 0.0, 0.25]);
    }

    #[test]
    fn categorical_psi_by_hand_with_an_other_bin() {
        let reference = ["a", "a", "b", "c"];
        let current = ["a", "b", "b", "d"];
        // a: 0.5 → 0.25; b: 0.25 → 0.5; c: 0.25 → empty; other: empty → 0.25 (d).
        let expected = -0.25 * 0.5f64.ln()
            + 0.25 * 2f64.ln()
            + (EPSILON - 0.25) * (EPSILON / 0.25).ln()
            + (0.25 - EPSILON) * (0.25 / EPSILON).ln();
        assert!(close(psi_categories(&reference, &current), expected));
        assert!(close(psi_categories(&reference, &reference), 0.0));
    }

    #[test]
    fn ks_statistic_by_hand_with_ties() {
        assert!(close(
            ks_statistic(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]),
            0.5
        ));
        // At 2 both samples step together: F_a = 0.75, F_b = 1; the largest gap is 0.25 (at 1 and at 2).
        assert!(close(
            ks_statistic(&[1.0, 2.0, 2.0, 3.0], &[2.0, 2.0, 2.0, 2.0]),
            0.25
        ));
        assert!(close(ks_statistic(&[1.0, 2.0], &[1.0, 2.0]), 0.0));
        assert!(close(ks_statistic(&[1.0], &[2.0]), 1.0));
        assert_eq!(ks_statistic(&[], &[1.0]), 0.0);
    }
}
