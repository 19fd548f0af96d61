//! Prequential (test-then-train) evaluation: every prediction is scored against the label it later receives,
//! before the learner sees that label, so the scores are those of a model in service, over time.
//!
//! A [`Prequential`] keeps (probability, label) pairs, all of them or the last `n`, and gives their [`Scores`]:
//! exact ROC AUC (ties counted half, as scikit-learn's `roc_auc_score`), log-loss (probabilities clipped to
//! `[1e-15, 1 − 1e-15]`, as scikit-learn does), Brier score, positive rate and count. [`Windows`] keeps one per
//! window key (a year, a project, a model version).
//!
//! In service a label comes late: whether an issue is closed within 30 days is known when it closes, or 30 days
//! after it opened. [`Pending`] holds each prediction until then and hands it back with its label, so that the
//! model learns it, and is scored on it, only once it could be known.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;

/// How far from 0 and 1 log-loss clips probabilities.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// The scores of a set of predictions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// Predictions scored.
    pub count: u64,
    /// Of them, with a positive label.
    pub positives: u64,
    /// The share of positive labels (0 when empty).
    pub positive_rate: f64,
    /// The area under the ROC curve; `None` unless both labels are present.
    pub auc: Option<f64>,
    /// The mean negative log-likelihood (0 when empty).
    pub log_loss: f64,
    /// The mean squared difference between probability and label (0 when empty).
    pub brier: f64,
}

/// (probability, label) pairs, all or the most recent ones.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prequential {
    pairs: VecDeque<(f64, bool)>,
    capacity: Option<usize>,
}

impl Prequential {
    /// Keeps every pair.
    pub fn new() -> Prequential {
        Prequential::default()
    }

    /// Keeps the last `n` pairs only (a sliding window; at least 1).
    pub fn last(n: usize) -> Prequential {
        Prequential {
            pairs: VecDeque::with_capacity(n.max(1)),
            capacity: Some(n.max(1)),
        }
    }

    /// Adds one prediction with its label.
    pub fn add(&mut self, probability: f64, label: bool) {
        if self.capacity.is_some_and(|c| self.pairs.len() == c) {
            self.pairs.pop_front();
        }
        self.pairs.push_back((probability, label));
    }

    /// The pairs kept.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs kept, oldest first.
    pub fn pairs(&self) -> impl Iterator<Item = (f64, bool)> + '_ {
        self.pairs.iter().copied()
    }

    /// The scores of the pairs kept.
    pub fn scores(&self) -> Scores {
        let pairs: Vec<(f64, bool)> = self.pairs().collect();
        scores(&pairs)
    }
}

/// The scores of `pairs`.
pub fn scores(pairs: &[(f64, bool)]) -> Scores {
    let positives = pairs.iter().filter(|(_, y)| *y).count() as u64;
    let count = pairs.len() as u64;
    Scores {
        count,
        positives,
        positive_rate: if count == 0 {
            0.0
        } else {
            positives as f64 / count as f64
        },
        auc: auc(pairs),
        log_loss: log_loss(pairs),
        brier: brier(pairs),
    }
}

/// The exact ROC AUC: the chance that a random positive is ranked above a random negative, ties counting half
/// (the Mann–Whitney U over the product of the class sizes). `None` when a class is absent.
pub fn auc(pairs: &[(f64, bool)]) -> Option<f64> {
    let positives = pairs.iter().filter(|(_, y)| *y).count();
    let negatives = pairs.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the positives' ranks (1-based), tied values sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < sorted.len() {
        let mut end = start;
        while end < sorted.len() && sorted[end].0 == sorted[start].0 {
            end += 1;
        }
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = sorted[start..end].iter().filter(|(_, y)| *y).count();
        rank_sum += mean_rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// The mean negative log-likelihood of the labels, probabilities clipped by [`LOG_LOSS_EPS`].
pub fn log_loss(pairs: &[(f64, bool)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let sum: f64 = pairs
        .iter()
        .map(|(p, y)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            -if *y { p.ln() } else { (1.0 - p).ln() }
        })
        .sum();
    sum / pairs.len() as f64
}

/// The mean of `(p − y)²`.
pub fn brier(pairs: &[(f64, bool)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let sum: f64 = pairs
        .iter()
        .map(|(p, y)| (p - if *y { 1.0 } else { 0.0 }).powi(2))
        .sum();
    sum / pairs.len() as f64
}

/// One [`Prequential`] per window key, in key order.
#[derive(Clone, Debug, PartialEq)]
pub struct Windows<K: Ord> {
    windows: BTreeMap<K, Prequential>,
}

impl<K: Ord> Default for Windows<K> {
    fn default() -> Self {
        Windows {
            windows: BTreeMap::new(),
        }
    }
}

impl<K: Ord> Windows<K> {
    /// No window yet.
    pub fn new() -> Windows<K> {
        Windows::default()
    }

    /// Adds one prediction with its label to the window `key`.
    pub fn add(&mut self, key: K, probability: f64, label: bool) {
        self.windows.entry(key).or_default().add(probability, label);
    }

    /// The window `key`, if it has a pair.
    pub fn get(&self, key: &K) -> Option<&Prequential> {
        self.windows.get(key)
    }

    /// Every window's scores, in key order.
    pub fn scores(&self) -> Vec<(&K, Scores)> {
        self.windows.iter().map(|(k, w)| (k, w.scores())).collect()
    }
}

/// A prediction whose label has become known.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved<K, T> {
    /// What the prediction was about (an issue).
    pub key: K,
    /// When it was made, in seconds.
    pub opened_at: i64,
    /// The probability predicted then.
    pub probability: f64,
    /// Whether the outcome came within the horizon.
    pub label: bool,
    /// What was kept with it (the features, to learn from).
    pub item: T,
}

/// Predictions waiting for their label: positive when the outcome comes within `horizon` seconds of the
/// prediction, negative once the clock passes that deadline without it.
#[derive(Clone, Debug)]
pub struct Pending<K, T> {
    horizon: i64,
    /// Waiting predictions by key, with the sequence number of their deadline entry.
    waiting: HashMap<K, (u64, i64, f64, T)>,
    /// Deadlines in order; entries of keys no longer waiting are skipped when reached.
    deadlines: BTreeMap<(i64, u64), K>,
    next: u64,
}

impl<K: Hash + Eq + Clone, T> Pending<K, T> {
    /// Nothing waiting; labels are "outcome within `horizon` seconds".
    pub fn new(horizon: i64) -> Pending<K, T> {
        Pending {
            horizon,
            waiting: HashMap::new(),
            deadlines: BTreeMap::new(),
            next: 0,
        }
    }

    /// Holds a prediction made at `at`; false (and nothing held) when `key` is already waiting.
    pub fn open(&mut self, key: K, at: i64, probability: f64, item: T) -> bool {
        if self.waiting.contains_key(&key) {
            return false;
        }
        self.next += 1;
        self.deadlines
            .insert((at.saturating_add(self.horizon), self.next), key.clone());
        self.waiting.insert(key, (self.next, at, probability, item));
        true
    }

    /// The outcome of `key` came at `at`: its label, positive if within the horizon, unless it was already
    /// resolved (or never held).
    pub fn close(&mut self, key: &K, at: i64) -> Option<Resolved<K, T>> {
        let (_, opened_at, probability, item) = self.waiting.remove(key)?;
        Some(Resolved {
            key: key.clone(),
            opened_at,
            probability,
            label: at - opened_at <= self.horizon,
            item,
        })
    }

    /// The clock reached `now`: every prediction whose deadline is before it becomes a negative, in deadline
    /// order.
    pub fn advance(&mut self, now: i64) -> Vec<Resolved<K, T>> {
        let mut resolved = Vec::new();
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 >= now {
                break;
            }
            let ((_, seq), key) = entry.remove_entry();
            if self.waiting.get(&key).is_some_and(|w| w.0 == seq) {
                let (_, opened_at, probability, item) =
                    self.waiting.remove(&key).expect("just found");
                resolved.push(Resolved {
                    key,
                    opened_at,
                    probability,
                    label: false,
                    item,
                });
            }
        }
        resolved
    }

    /// Predictions still waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn auc_counts_ranked_pairs_and_ties_half() {
        // Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of the 4 pairs are ordered right.
        let pairs = [(0.1, false), (0.4, false), (0.35, true), (0.8, true)];
        assert!(close(auc(&pairs).unwrap(), 0.75));
        // The positive at 0.5 ties both negatives (two halves), the one at 0.9 beats both: 3 of 4.
        let tied = [(0.5, false), (0.5, true), (0.5, false), (0.9, true)];
        assert!(close(auc(&tied).unwrap(), 0.75));
        // All equal: 0.5 whatever the labels.
        assert!(close(
            auc(&[(0.3, true), (0.3, false), (0.3, false)]).unwrap(),
            0.5
        ));
        assert!(close(auc(&[(0.9, false), (0.1, true)]).unwrap(), 0.0));
        assert_eq!(auc(&[(0.2, true), (0.7, true)]), None);
    }

    #[test]
    fn log_loss_and_brier_by_hand() {
        let pairs = [(0.8, true), (0.3, false)];
        assert!(close(log_loss(&pairs), -(0.8f64.ln() + 0.7f64.ln()) / 2.0));
        assert!(close(brier(&pairs), (0.04 + 0.09) / 2.0));
        // A confident mistake is clipped, not infinite.
        assert!(close(log_loss(&[(0.0, true)]), -(LOG_LOSS_EPS.ln())));
        assert_eq!(log_loss(&[]), 0.0);
    }

    #[test]
    fn a_sliding_window_scores_only_the_last_pairs() {
        let mut recent = Prequential::last(2);
        let mut all = Prequential::new();
        for (p, y) in [(0.9, false), (0.2, false), (0.7, true)] {
            recent.add(p, y);
            all.add(p, y);
        }
        let s = recent.scores();
        assert_eq!((s.count, s.positives), (2, 1));
        assert!(close(s.positive_rate, 0.5));
        assert!(close(s.auc.unwrap(), 1.0));
        assert!(close(s.brier, (0.04 + 0.09) / 2.0));
        let s = all.scores();
        assert_eq!(s.count, 3);
        assert!(close(s.auc.unwrap(), 0.5));
    }

    #[test]
    fn windows_keep_their_keys_apart() {
        let mut by_year = Windows::new();
        by_year.add(2012, 0.9, true);
        by_year.add(2011, 0.1, false);
        by_year.add(2012, 0.4, false);
        let scores = by_year.scores();
        assert_eq!(
            scores.iter().map(|(k, _)| **k).collect::<Vec<_>>(),
            [2011, 2012]
        );
        assert_eq!(scores[0].1.auc, None);
        assert!(close(scores[1].1.auc.unwrap(), 1.0));
        assert_eq!(by_year.get(&2011).unwrap().len(), 1);
    }

    #[test]
    fn pending_labels_come_at_the_outcome_or_at_the_deadline() {
        let mut pending: Pending<&str, u8> = Pending::new(30);
        assert!(pending.open("a", 0, 0.9, 1));
        assert!(pending.open("b", 5, 0.2, 2));
        assert!(pending.open("c", 10, 0.6, 3));
        assert!(!pending.open("c", 11, 0.1, 4));
        // At 30 no deadline has passed (a's is 30 itself): a close at the deadline is still positive.
        assert!(pending.advance(30).is_empty());
        let a = pending.close(&"a", 30).unwrap();
        assert!(a.label && a.probability == 0.9 && a.item == 1 && a.opened_at == 0);
        // At 41, b's deadline (35) has passed: negative; c's (40) too.
        let expired: Vec<(&str, bool)> = pending
            .advance(41)
            .into_iter()
            .map(|r| (r.key, r.label))
            .collect();
        assert_eq!(expired, [("b", false), ("c", false)]);
        // A late close of an issue already resolved changes nothing.
        assert_eq!(pending.close(&"b", 50), None);
        assert!(pending.is_empty());
        // A close after the deadline but before the clock moved on is a negative too.
        pending.open("d", 100, 0.5, 5);
        assert!(!pending.close(&"d", 131).unwrap().label);
        assert!(pending.advance(1000).is_empty());
    }
}
