//! Retraining a streaming model and deciding whether the retrained one takes over.
//!
//! The challenger learns only the most recent labels before an evaluation window (so that it forgets a concept
//! that no longer holds), in one of two ways ([`Candidate`]): the served online learner started again from zero
//! and shown them once in order, or a logistic regression fitted at once on them (L-BFGS to the optimum) and
//! then served by the online learner from those weights. The champion is the served learner as it stood at the
//! same point, having learnt everything before it. Both score the window, whose labels neither
//! has learnt. The challenger is promoted only when all of these hold:
//!
//! - its AUC is higher than the champion's by the margin, and by more than chance would give on a window of that
//!   size: `sigmas` standard errors of the difference of two AUCs that learnt nothing, `√2·σ₀` with
//!   `σ₀ = sqrt((P + N + 1) / (12·P·N))` for P positives and N negatives (the Mann–Whitney statistic's null
//!   variance); on 200 labels σ₀ is about 0.04, so a gain of a few hundredths is noise, not a better model;
//! - its AUC is `sigmas`·σ₀ above 0.5;
//! - its log-loss is lower than the champion's by its own margin, and lower than that of the base rate of its
//!   training labels by the same margin (AUC only ranks: a model whose weights are noise still ranks two kinds of
//!   issues apart, the right way round half the time, while its probabilities stay near the base rate, which the
//!   log-loss sees).
//!
//! So a challenger that learnt nothing (shuffled labels, too few labels) does not replace a champion however
//! weak, and one that is better by luck on one window does not replace a good one: the idea of MLflow's
//! `MetricThreshold`, a minimum change against the baseline and a minimum value.

use serde::{Deserialize, Serialize};

use crate::online::{BatchLogistic, BatchParams, Features, FtrlParams, OnlineLogistic};
use crate::prequential::scores;

/// The promotion rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Labels the challenger learns: the most recent ones before the window.
    pub train_labels: usize,
    /// The least AUC the challenger must gain over the champion on the window.
    pub margin: f64,
    /// The mean log-loss the challenger must save against the champion on the window.
    pub log_loss_margin: f64,
    /// How many null standard errors the challenger's AUC must be above 0.5, and its gain above 0.
    pub sigmas: f64,
}

/// The standard error of the AUC of scores unrelated to the labels, for `positives` and `negatives` examples
/// (infinite when either is 0: nothing can be told apart).
pub fn null_auc_error(positives: u64, negatives: u64) -> f64 {
    if positives == 0 || negatives == 0 {
        return f64::INFINITY;
    }
    let (p, n) = (positives as f64, negatives as f64);
    ((p + n + 1.0) / (12.0 * p * n)).sqrt()
}

/// How a challenger learns its labels. Either way it is served by the online learner with the given settings,
/// so that once promoted it learns the stream like any champion.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Candidate {
    /// FTRL-Proximal from zero, each label once in order.
    Online {
        /// The learner's settings.
        ftrl: FtrlParams,
    },
    /// L2-regularised logistic regression fitted at once ([`BatchLogistic`], on the same hashed coordinates),
    /// its weights then the online learner's starting point ([`OnlineLogistic::from_weights`]). Its
    /// regularisation `C` is chosen among [`C_GRID`] by the held-out log-loss of [`FOLDS`] contiguous folds of
    /// the labels (`batch.c` is not used): a window of a few hundred labels is small, and a fixed weak penalty
    /// fits its noise as confidently as its signal.
    Batch {
        /// The online learner's settings once served.
        ftrl: FtrlParams,
        /// The fit's (but `c`).
        batch: BatchParams,
    },
}

impl Candidate {
    /// The kind's name, as the retrain policy asks for it.
    pub fn kind(&self) -> &'static str {
        match self {
            Candidate::Online { .. } => "online",
            Candidate::Batch { .. } => "batch",
        }
    }

    /// A challenger that learnt `train`, in order.
    pub fn train(&self, train: &[(Features, bool)]) -> OnlineLogistic {
        match self {
            Candidate::Online { ftrl } => {
                let mut model = OnlineLogistic::new(*ftrl);
                for (features, label) in train {
                    model.learn(features, *label);
                }
                model
            }
            Candidate::Batch { ftrl, batch } => {
                let params = BatchParams {
                    bits: ftrl.bits,
                    ..*batch
                };
                let rows: Vec<(&Features, bool)> = train.iter().map(|(f, y)| (f, *y)).collect();
                let c = chosen_c(&rows, &params);
                let fitted = BatchLogistic::fit(&rows, &BatchParams { c, ..params });
                OnlineLogistic::from_weights(*ftrl, fitted.weights(), train.len() as u64)
            }
        }
    }
}

/// The batch challenger's candidate regularisations (scikit-learn's `C`: smaller is stronger).
pub const C_GRID: [f64; 6] = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0];
/// Contiguous folds the batch challenger's `C` is chosen by.
pub const FOLDS: usize = 5;

/// The `C` of [`C_GRID`] whose fits, each on all folds but one, give the lowest log-loss on the fold left out
/// (the smaller on a tie; the smallest when there are fewer labels than folds).
fn chosen_c(rows: &[(&Features, bool)], params: &BatchParams) -> f64 {
    if rows.len() < FOLDS {
        return C_GRID[0];
    }
    let bounds: Vec<usize> = (0..=FOLDS).map(|k| k * rows.len() / FOLDS).collect();
    let held_out_loss = |c: f64| -> f64 {
        let mut pairs = Vec::with_capacity(rows.len());
        for k in 0..FOLDS {
            let (from, to) = (bounds[k], bounds[k + 1]);
            let fit_on: Vec<(&Features, bool)> =
                rows[..from].iter().chain(&rows[to..]).copied().collect();
            let model = BatchLogistic::fit(&fit_on, &BatchParams { c, ..*params });
            pairs.extend(
                rows[from..to]
                    .iter()
                    .map(|(f, y)| (model.predict_proba(f), *y)),
            );
        }
        scores(&pairs).log_loss
    };
    C_GRID
        .iter()
        .map(|c| (*c, held_out_loss(*c)))
        .fold((C_GRID[0], f64::INFINITY), |best, (c, loss)| {
            if loss < best.1 { (c, loss) } else { best }
        })
        .0
}

/// Both models' figures on the same window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Area under the ROC curve (0.5 when the window holds one label only).
    pub auc: f64,
    /// Mean log-loss.
    pub log_loss: f64,
}

/// What a trial found.
#[derive(Clone, Debug)]
pub struct Trial {
    /// The challenger, having learnt the training labels.
    pub challenger: OnlineLogistic,
    /// The champion's figures on the window.
    pub champion: Figures,
    /// The challenger's.
    pub challenger_figures: Figures,
    /// Whether the rule promotes the challenger.
    pub promote: bool,
}

/// The figures of `model` on labelled examples it has not learnt.
pub fn figures(model: &OnlineLogistic, window: &[(Features, bool)]) -> Figures {
    let pairs: Vec<(f64, bool)> = window
        .iter()
        .map(|(f, y)| (model.predict_proba(f), *y))
        .collect();
    let s = scores(&pairs);
    Figures {
        auc: s.auc.unwrap_or(0.5),
        log_loss: s.log_loss,
    }
}

/// The log-loss on `window` of predicting, for every example, the share of positive labels in `train`.
fn base_rate_log_loss(train: &[(Features, bool)], window: &[(Features, bool)]) -> f64 {
    let rate = (train.iter().filter(|(_, y)| *y).count() as f64 + 0.5) / (train.len() as f64 + 1.0);
    let pairs: Vec<(f64, bool)> = window.iter().map(|(_, y)| (rate, *y)).collect();
    scores(&pairs).log_loss
}

/// Trains a `candidate` on `train` (in order, the last `rule.train_labels` of it) and sets it beside `champion`
/// on `window`.
pub fn trial(
    champion: &OnlineLogistic,
    candidate: &Candidate,
    train: &[(Features, bool)],
    window: &[(Features, bool)],
    rule: &Rule,
) -> Trial {
    let start = train.len().saturating_sub(rule.train_labels);
    let challenger = candidate.train(&train[start..]);
    let champion_figures = figures(champion, window);
    let challenger_figures = figures(&challenger, window);
    let positives = window.iter().filter(|(_, y)| *y).count() as u64;
    let null = null_auc_error(positives, window.len() as u64 - positives);
    let chance = 0.5 + rule.sigmas * null;
    let gain = rule
        .margin
        .max(rule.sigmas * std::f64::consts::SQRT_2 * null);
    let promote = challenger_figures.auc >= champion_figures.auc + gain
        && challenger_figures.log_loss <= champion_figures.log_loss - rule.log_loss_margin
        && challenger_figures.log_loss
            <= base_rate_log_loss(&train[start..], window) - rule.log_loss_margin
        && challenger_figures.auc >= chance;
    Trial {
        challenger,
        champion: champion_figures,
        challenger_figures,
        promote,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::online::Value;

    /// SplitMix64: uniform numbers in [0, 1) from a seed.
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state.wrapping_add(0x9e3779b97f4a7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
            (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
        }
    }

    /// A deterministic stream of issues: one of 30 components, of which the even ones are mostly closed soon
    /// (85 %) and the odd ones mostly not (15 %), reversed when `flip`; a size that says nothing.
    pub(super) fn stream_pub(n: usize, seed: u64, flip: bool) -> Vec<(Features, bool)> {
        stream(n, seed, flip)
    }

    fn stream(n: usize, seed: u64, flip: bool) -> Vec<(Features, bool)> {
        let mut next = uniform(seed);
        (0..n)
            .map(|_| {
                let component = (next() * 30.0) as u32;
                let fast = component.is_multiple_of(2) ^ flip;
                let closed = next() < if fast { 0.85 } else { 0.15 };
                let mut f = Features::new();
                f.insert("component".into(), Value::Text(format!("c{component}")));
                f.insert("size".into(), Value::Number((next() * 100.0).floor()));
                (f, closed)
            })
            .collect()
    }

    /// The examples with their labels shuffled among them (Fisher–Yates): the positive rate stays, the link to
    /// the features goes.
    fn shuffled(examples: &[(Features, bool)], seed: u64) -> Vec<(Features, bool)> {
        let mut labels: Vec<bool> = examples.iter().map(|(_, y)| *y).collect();
        let mut next = uniform(seed ^ 0x5eed);
        for i in (1..labels.len()).rev() {
            let j = (next() * (i + 1) as f64) as usize;
            labels.swap(i, j);
        }
        examples
            .iter()
            .zip(labels)
            .map(|((f, _), y)| (f.clone(), y))
            .collect()
    }

    fn learnt(examples: &[(Features, bool)]) -> OnlineLogistic {
        let mut model = OnlineLogistic::new(FtrlParams::default());
        for (f, y) in examples {
            model.learn(f, *y);
        }
        model
    }

    /// Both kinds of challenger, with the default settings.
    pub(super) fn candidates() -> [Candidate; 2] {
        [
            Candidate::Online {
                ftrl: FtrlParams::default(),
            },
            Candidate::Batch {
                ftrl: FtrlParams::default(),
                batch: BatchParams::default(),
            },
        ]
    }

    const RULE: Rule = Rule {
        train_labels: 400,
        margin: 0.02,
        log_loss_margin: 0.01,
        sigmas: 2.0,
    };

    #[test]
    fn the_null_error_is_the_mann_whitney_one() {
        // 100 and 100: sqrt(201 / 120000).
        assert!((null_auc_error(100, 100) - 0.040927).abs() < 1e-6);
        assert!(null_auc_error(0, 200).is_infinite());
    }

    #[test]
    fn after_the_concept_changed_the_challenger_wins() {
        let before = stream(3000, 1, false);
        let after = stream(600, 2, true);
        let champion = learnt(&[before.clone(), after[..400].to_vec()].concat());
        for candidate in candidates() {
            let t = trial(
                &champion,
                &candidate,
                &[before.clone(), after[..400].to_vec()].concat(),
                &after[400..],
                &RULE,
            );
            let kind = candidate.kind();
            assert!(
                t.promote,
                "{kind}: {:?} vs {:?}",
                t.challenger_figures, t.champion
            );
            assert!(
                t.challenger_figures.auc > 0.7,
                "{kind}: {:?}",
                t.challenger_figures
            );
        }
    }

    #[test]
    fn a_challenger_trained_on_shuffled_labels_is_never_promoted() {
        for seed in 0..20 {
            let history = stream(2000, seed, false);
            let champion = learnt(&history);
            let shuffled = shuffled(&history, seed);
            let window = stream(200, seed + 100, false);
            for candidate in candidates() {
                let t = trial(&champion, &candidate, &shuffled, &window, &RULE);
                assert!(
                    !t.promote,
                    "{} seed {seed}: {:?} vs {:?}",
                    candidate.kind(),
                    t.challenger_figures,
                    t.champion
                );
            }
        }
        // Nor against a champion that knows nothing (a zero start predicts 0.5 everywhere).
        for seed in 0..20 {
            let history = stream(1000, seed, false);
            let shuffled = shuffled(&history, seed);
            let window = stream(200, seed + 100, false);
            let zero = OnlineLogistic::new(FtrlParams::default());
            for candidate in candidates() {
                let t = trial(&zero, &candidate, &shuffled, &window, &RULE);
                let kind = candidate.kind();
                assert!(!t.promote, "{kind} seed {seed}: {:?}", t.challenger_figures);
            }
        }
    }

    #[test]
    fn without_a_change_the_champion_stays() {
        let history = stream(4000, 3, false);
        let champion = learnt(&history[..3800]);
        for candidate in candidates() {
            let t = trial(
                &champion,
                &candidate,
                &history[..3800],
                &history[3800..],
                &RULE,
            );
            let kind = candidate.kind();
            assert!(
                !t.promote,
                "{kind}: {:?} vs {:?}",
                t.challenger_figures, t.champion
            );
        }
    }
}

#[cfg(test)]
mod simulation {
    use super::*;

    /// The loop on a stream whose concept flips after 4,000 labels (components that closed soon stop closing,
    /// and the other way round): a trial after every window of 200, the challenger learning the 200 labels
    /// before the window. FTRL's per-coordinate steps have shrunk by then, so the champion keeps predicting the
    /// old concept (AUC near 0.15 window after window); the first trial whose challenger learnt only labels of
    /// the new concept promotes it, and the next window is back to the old level. Both kinds of challenger.
    #[test]
    fn a_flipped_concept_is_caught_by_the_first_fair_trial_and_recovered() {
        for candidate in super::tests::candidates() {
            simulate(&candidate);
        }
    }

    fn simulate(candidate: &Candidate) {
        let before = super::tests::stream_pub(4000, 7, false);
        let after = super::tests::stream_pub(2000, 8, true);
        let all: Vec<(Features, bool)> = [before, after].concat();
        let rule = Rule {
            train_labels: 200,
            margin: 0.02,
            log_loss_margin: 0.01,
            sigmas: 2.0,
        };
        let mut model = OnlineLogistic::new(FtrlParams::default());
        let mut start = model.clone();
        let mut predictions = Vec::new();
        let mut promotions = Vec::new();
        for (i, (f, y)) in all.iter().enumerate() {
            predictions.push((model.predict_proba(f), *y));
            model.learn(f, *y);
            let seq = i + 1;
            if seq % 200 == 0 {
                let s = seq - 200;
                let t = trial(&start, candidate, &all[..s], &all[s..seq], &rule);
                if t.promote {
                    promotions.push(seq);
                    let mut challenger = t.challenger;
                    for (f, y) in &all[s..seq] {
                        challenger.learn(f, *y);
                    }
                    model = challenger;
                }
                start = model.clone();
            }
        }
        let auc: Vec<f64> = predictions
            .chunks(200)
            .map(|w| scores(w).auc.unwrap())
            .collect();
        let kind = candidate.kind();
        assert_eq!(promotions, [4400], "{kind}: {auc:?}");
        assert!(auc[1..20].iter().all(|a| *a > 0.75), "{kind}: {auc:?}");
        assert!(auc[20..22].iter().all(|a| *a < 0.3), "{kind}: {auc:?}");
        assert!(auc[22..].iter().all(|a| *a > 0.75), "{kind}: {auc:?}");
    }
}
