//! Learning from a stream of labelled feature maps: feature hashing, FTRL-Proximal logistic regression (the
//! served learner, updated one label at a time) and a batch logistic regression refitted on a recent window (the
//! challenger it is compared with).
//!
//! A features script returns a map of name → number, text or bool; [`Hasher`] turns it into a sparse vector of
//! `2^bits` coordinates without a vocabulary, so that names never seen before cost nothing to add and the model's
//! size is bounded:
//!
//! - a number `v` is the coordinate `name` with value `sign(v)·ln(1 + |v|)`: counts such as body length span
//!   several orders of magnitude, and a linear model would otherwise be ruled by the largest;
//! - a bool is `name` with value 1 when true, nothing when false;
//! - a text is one-hot, the coordinate `name=value`, except when the name ends in [`TOKENS_SUFFIX`] (`_tokens`):
//!   then the text is a bag of words, split as the scripts' `words()` splits (runs of letters, digits, `_` and
//!   `'`, lower-cased), each distinct word `w` the coordinate `name~w` with value `ln(1 + count)`, the bag
//!   then scaled to unit length (as tf-idf vectors are): a long body would otherwise outweigh every other
//!   feature, and its words would move further per step than a short title's;
//! - coordinate 0 is the intercept, always 1.
//!
//! Names are hashed with FNV-1a and a 64-bit finaliser, the same on every machine and every version, so a saved
//! model scores the same features the same way anywhere. Colliding names share a weight.
//!
//! FTRL-Proximal follows McMahan et al., "Ad Click Prediction: a View from the Trenches" (KDD 2013), algorithm 1:
//! per coordinate it keeps `z` and `n` (the sum of squared gradients) and derives the weight only when an example
//! touches it (lazy weights), so a step costs the example's non-zeros, whatever the dimension. It starts at zero
//! and has no randomness: the same stream gives the same model.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::sparse::SparseVec;

/// The version of the saved form; [`OnlineLogistic::from_bytes`] refuses any other.
const FORMAT: u32 = 1;

/// A text feature whose name ends so is read as a bag of words.
pub const TOKENS_SUFFIX: &str = "_tokens";

/// Probabilities are kept this far from 0 and 1, so that a log-loss stays finite.
const P_CLIP: f64 = 1e-12;

/// One feature value, as a features script returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A number.
    Number(f64),
    /// A category, or a bag of words when the name ends in [`TOKENS_SUFFIX`].
    Text(String),
    /// A flag.
    Bool(bool),
}

/// Feature name → value.
pub type Features = BTreeMap<String, Value>;

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    /// The saved bytes are not a model of this format.
    #[error("not an online logistic model of format {FORMAT}: {0}")]
    Decode(String),
}

/// Turns feature maps into sparse vectors of `2^bits` coordinates (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hasher {
    bits: u32,
}

impl Hasher {
    /// A hasher onto `2^bits` coordinates, `bits` clamped to 4..=30.
    pub fn new(bits: u32) -> Hasher {
        Hasher {
            bits: bits.clamp(4, 30),
        }
    }

    /// The number of coordinates.
    pub fn dimension(&self) -> u32 {
        1 << self.bits
    }

    /// The coordinate of a name: 1 ..= 2^bits − 1 (0 is the intercept's).
    pub fn index(&self, name: &str) -> u32 {
        1 + (hash(name.as_bytes()) % u64::from(self.dimension() - 1)) as u32
    }

    /// The sparse vector of a feature map, the intercept included.
    pub fn vectorize(&self, features: &Features) -> SparseVec {
        let mut pairs = vec![(0, 1.0)];
        let mut name = String::new();
        for (key, value) in features {
            match value {
                Value::Number(v) if v.is_finite() && *v != 0.0 => {
                    pairs.push((self.index(key), (v.signum() * v.abs().ln_1p()) as f32));
                }
                Value::Bool(true) => pairs.push((self.index(key), 1.0)),
                Value::Text(text) if key.ends_with(TOKENS_SUFFIX) => {
                    let bag = bag_of_words(text);
                    let norm = bag
                        .values()
                        .map(|c| (*c as f32).ln_1p().powi(2))
                        .sum::<f32>()
                        .sqrt();
                    for (word, count) in bag {
                        name.clear();
                        name.push_str(key);
                        name.push('~');
                        name.push_str(&word);
                        pairs.push((self.index(&name), (count as f32).ln_1p() / norm));
                    }
                }
                Value::Text(text) => {
                    name.clear();
                    name.push_str(key);
                    name.push('=');
                    name.push_str(text);
                    pairs.push((self.index(&name), 1.0));
                }
                Value::Number(_) | Value::Bool(false) => {}
            }
        }
        SparseVec::from_pairs(pairs)
    }
}

/// FNV-1a over the bytes, then MurmurHash3's 64-bit finaliser so that the low bits mix well.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The distinct words of a text with their counts, in sorted order: lower-cased runs of letters, digits, `_` and
/// `'`, as the scripts' `words()` gives them.
pub fn bag_of_words(text: &str) -> BTreeMap<String, u32> {
    let mut words = BTreeMap::new();
    for word in text
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\''))
        .filter(|w| !w.is_empty())
    {
        *words.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    words
}

/// The logistic function, with the probability kept within 1e-12 of 0 and 1.
pub fn sigmoid(margin: f64) -> f64 {
    (1.0 / (1.0 + (-margin).exp())).clamp(P_CLIP, 1.0 - P_CLIP)
}

/// FTRL-Proximal's settings: the per-coordinate learning rate is `alpha / (beta + sqrt(n))`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtrlParams {
    /// The learning rate's scale.
    pub alpha: f64,
    /// Smooths the first steps of a coordinate (the paper finds 1 is usually good).
    pub beta: f64,
    /// L1 strength: a coordinate whose `|z|` stays below it keeps weight 0 (sparsity).
    pub l1: f64,
    /// L2 strength.
    pub l2: f64,
    /// The hasher's `2^bits` coordinates.
    pub bits: u32,
}

impl Default for FtrlParams {
    /// β = 1 as the paper advises; α = 0.1 with L1 = L2 = 1, the settings most public FTRL-Proximal logistic
    /// regressions start from; 2^20 coordinates, so that collisions are rare for a few hundred thousand names.
    fn default() -> Self {
        FtrlParams {
            alpha: 0.1,
            beta: 1.0,
            l1: 1.0,
            l2: 1.0,
            bits: 20,
        }
    }
}

/// One coordinate's state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Slot {
    z: f64,
    n: f64,
}

/// Online logistic regression trained by FTRL-Proximal on hashed features.
#[derive(Clone, Debug, PartialEq)]
pub struct OnlineLogistic {
    params: FtrlParams,
    hasher: Hasher,
    slots: foldhash::HashMap<u32, Slot>,
    examples: u64,
}

/// The saved form: coordinates in index order, so the same model always gives the same bytes.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedOnline {
    format: u32,
    params: FtrlParams,
    examples: u64,
    slots: Vec<(u32, f64, f64)>,
}

impl OnlineLogistic {
    /// A model with every weight 0 (it predicts 0.5 until it learns).
    pub fn new(params: FtrlParams) -> OnlineLogistic {
        OnlineLogistic {
            hasher: Hasher::new(params.bits),
            params,
            slots: foldhash::HashMap::default(),
            examples: 0,
        }
    }

    /// The settings.
    pub fn params(&self) -> &FtrlParams {
        &self.params
    }

    /// The hasher the model reads features with.
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// The labels learnt so far.
    pub fn examples(&self) -> u64 {
        self.examples
    }

    /// The coordinates whose weight is not 0.
    pub fn nonzero_weights(&self) -> usize {
        self.slots
            .values()
            .filter(|s| self.weight(s) != 0.0)
            .count()
    }

    /// The weight a coordinate's state stands for (the closed form of the paper's per-coordinate argmin).
    fn weight(&self, slot: &Slot) -> f64 {
        let FtrlParams {
            alpha,
            beta,
            l1,
            l2,
            ..
        } = self.params;
        if slot.z.abs() <= l1 {
            0.0
        } else {
            -(slot.z - slot.z.signum() * l1) / ((beta + slot.n.sqrt()) / alpha + l2)
        }
    }

    /// The probability of a positive label for a feature map.
    pub fn predict_proba(&self, features: &Features) -> f64 {
        self.predict_vector(&self.hasher.vectorize(features))
    }

    /// The probability of a positive label for an already hashed vector.
    pub fn predict_vector(&self, x: &SparseVec) -> f64 {
        let margin: f64 = x
            .iter()
            .filter_map(|(i, v)| self.slots.get(&i).map(|s| self.weight(s) * f64::from(v)))
            .sum();
        sigmoid(margin)
    }

    /// Learns one label; returns the probability predicted just before.
    pub fn learn(&mut self, features: &Features, label: bool) -> f64 {
        self.learn_vector(&self.hasher.vectorize(features), label)
    }

    /// Learns one label of an already hashed vector; returns the probability predicted just before.
    pub fn learn_vector(&mut self, x: &SparseVec, label: bool) -> f64 {
        let p = self.predict_vector(x);
        let residual = p - if label { 1.0 } else { 0.0 };
        let alpha = self.params.alpha;
        for (i, v) in x.iter() {
            let g = residual * f64::from(v);
            let slot = self.slots.get(&i).copied().unwrap_or_default();
            let w = self.weight(&slot);
            let sigma = ((slot.n + g * g).sqrt() - slot.n.sqrt()) / alpha;
            self.slots.insert(
                i,
                Slot {
                    z: slot.z + g - sigma * w,
                    n: slot.n + g * g,
                },
            );
        }
        self.examples += 1;
        p
    }

    /// A learner that predicts with `weights` (by coordinate of `Hasher::new(params.bits)`, the intercept at 0)
    /// and goes on learning from there as each coordinate would from its first step: every coordinate's squared
    /// gradients start at 0, and `z` is the one whose weight is the given one. So a model fitted at once (a
    /// [`BatchLogistic`] on the same coordinates) can be served and then learn the stream online.
    pub fn from_weights(
        params: FtrlParams,
        weights: &[(u32, f64)],
        examples: u64,
    ) -> OnlineLogistic {
        let mut model = OnlineLogistic::new(params);
        let scale = params.beta / params.alpha + params.l2;
        model.slots = weights
            .iter()
            .filter(|(_, w)| *w != 0.0 && w.is_finite())
            .map(|(i, w)| {
                let z = -(w * scale + w.signum() * params.l1);
                (*i, Slot { z, n: 0.0 })
            })
            .collect();
        model.examples = examples;
        model
    }

    /// The saved form (postcard): the same model always gives the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut slots: Vec<(u32, f64, f64)> =
            self.slots.iter().map(|(i, s)| (*i, s.z, s.n)).collect();
        slots.sort_unstable_by_key(|s| s.0);
        let saved = SavedOnline {
            format: FORMAT,
            params: self.params,
            examples: self.examples,
            slots,
        };
        postcard::to_stdvec(&saved).expect("a model always serialises")
    }

    /// Loads a model saved by [`OnlineLogistic::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<OnlineLogistic, OnlineError> {
        let saved: SavedOnline =
            postcard::from_bytes(bytes).map_err(|e| OnlineError::Decode(e.to_string()))?;
        if saved.format != FORMAT {
            return Err(OnlineError::Decode(format!("format {}", saved.format)));
        }
        let mut model = OnlineLogistic::new(saved.params);
        model.examples = saved.examples;
        model.slots = saved
            .slots
            .into_iter()
            .map(|(i, z, n)| (i, Slot { z, n }))
            .collect();
        Ok(model)
    }
}

/// How the batch challenger is fitted.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchParams {
    /// Inverse regularisation strength, as scikit-learn's `C`: the objective is the mean log-loss plus
    /// `‖w‖² / (2·C·n)` (the intercept is not penalised).
    pub c: f64,
    /// Most L-BFGS iterations.
    pub max_iter: usize,
    /// Stop when every partial derivative of the objective is below this.
    pub tol: f64,
    /// The hasher's `2^bits` coordinates.
    pub bits: u32,
}

impl Default for BatchParams {
    /// scikit-learn's `LogisticRegression` defaults (C = 1, L-BFGS, tolerance 1e-4) on the same hashed coordinates
    /// as [`FtrlParams::default`], but up to 1000 iterations rather than 100: on a window of hashed text, 100
    /// often stop short of the tolerance (scikit-learn warns then), which would make the fit depend on when it
    /// stopped.
    fn default() -> Self {
        BatchParams {
            c: 1.0,
            max_iter: 1000,
            tol: 1e-4,
            bits: 20,
        }
    }
}

/// L2-regularised logistic regression fitted at once on a window of labelled examples by L-BFGS, over the
/// coordinates the window uses. Written here rather than taken from linfa-logistic, which holds the design
/// matrix dense: 2^20 hashed columns would not fit, and compacting them is what this does anyway.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchLogistic {
    hasher: Hasher,
    /// The weights by coordinate, in index order; the intercept is coordinate 0.
    weights: Vec<(u32, f64)>,
    /// Iterations used and whether the tolerance was reached.
    iterations: usize,
    converged: bool,
}

impl BatchLogistic {
    /// Fits on feature maps and labels.
    pub fn fit(examples: &[(&Features, bool)], params: &BatchParams) -> BatchLogistic {
        let hasher = Hasher::new(params.bits);
        let rows: Vec<(SparseVec, bool)> = examples
            .iter()
            .map(|(f, y)| (hasher.vectorize(f), *y))
            .collect();
        BatchLogistic::fit_vectors(&rows, params)
    }

    /// Fits on vectors hashed with `Hasher::new(params.bits)`.
    pub fn fit_vectors(rows: &[(SparseVec, bool)], params: &BatchParams) -> BatchLogistic {
        let hasher = Hasher::new(params.bits);
        // Compact columns: the coordinates the window uses, in index order.
        let mut columns: Vec<u32> = rows
            .iter()
            .flat_map(|(x, _)| x.indices().iter().copied())
            .collect();
        columns.sort_unstable();
        columns.dedup();
        let compact: Vec<Vec<(usize, f64)>> = rows
            .iter()
            .map(|(x, _)| {
                x.iter()
                    .map(|(i, v)| {
                        let at = columns.binary_search(&i).expect("a listed column");
                        (at, f64::from(v))
                    })
                    .collect()
            })
            .collect();
        let labels: Vec<f64> = rows
            .iter()
            .map(|(_, y)| if *y { 1.0 } else { 0.0 })
            .collect();
        let intercept = columns.binary_search(&0).ok();
        let problem = Objective {
            rows: &compact,
            labels: &labels,
            penalty: if rows.is_empty() {
                0.0
            } else {
                1.0 / (params.c * rows.len() as f64)
            },
            intercept,
        };
        let (w, iterations, converged) = lbfgs(&problem, columns.len(), params);
        BatchLogistic {
            hasher,
            weights: columns
                .into_iter()
                .zip(w)
                .filter(|(_, w)| *w != 0.0)
                .collect(),
            iterations,
            converged,
        }
    }

    /// The probability of a positive label for a feature map.
    pub fn predict_proba(&self, features: &Features) -> f64 {
        self.predict_vector(&self.hasher.vectorize(features))
    }

    /// The probability of a positive label for an already hashed vector.
    pub fn predict_vector(&self, x: &SparseVec) -> f64 {
        let margin: f64 = x
            .iter()
            .filter_map(|(i, v)| {
                self.weights
                    .binary_search_by_key(&i, |(c, _)| *c)
                    .ok()
                    .map(|at| self.weights[at].1 * f64::from(v))
            })
            .sum();
        sigmoid(margin)
    }

    /// The weights by coordinate, in index order (the intercept is coordinate 0), zeros left out.
    pub fn weights(&self) -> &[(u32, f64)] {
        &self.weights
    }

    /// The L-BFGS iterations the fit took.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// Whether the fit reached the tolerance before the iteration limit.
    pub fn converged(&self) -> bool {
        self.converged
    }
}

/// The batch challenger in service: it keeps the last `window` labelled examples and refits a [`BatchLogistic`]
/// on them after every `refit_every` new labels; until its first fit it predicts the share of positive labels
/// seen (0.5 before any).
#[derive(Clone, Debug)]
pub struct Challenger {
    params: BatchParams,
    hasher: Hasher,
    window: usize,
    refit_every: usize,
    recent: VecDeque<(SparseVec, bool)>,
    since_fit: usize,
    model: Option<BatchLogistic>,
    positives: u64,
    seen: u64,
}

impl Challenger {
    /// A challenger with nothing learnt (`window` and `refit_every` at least 1).
    pub fn new(params: BatchParams, window: usize, refit_every: usize) -> Challenger {
        Challenger {
            hasher: Hasher::new(params.bits),
            params,
            window: window.max(1),
            refit_every: refit_every.max(1),
            recent: VecDeque::new(),
            since_fit: 0,
            model: None,
            positives: 0,
            seen: 0,
        }
    }

    /// The probability of a positive label for a feature map.
    pub fn predict_proba(&self, features: &Features) -> f64 {
        self.predict_vector(&self.hasher.vectorize(features))
    }

    /// The probability of a positive label for a vector hashed with `Hasher::new(params.bits)`.
    pub fn predict_vector(&self, x: &SparseVec) -> f64 {
        match &self.model {
            Some(model) => model.predict_vector(x),
            None if self.seen == 0 => 0.5,
            None => self.positives as f64 / self.seen as f64,
        }
    }

    /// Adds one label to the window; refits when `refit_every` labels came since the last fit.
    pub fn learn(&mut self, features: &Features, label: bool) {
        self.learn_vector(self.hasher.vectorize(features), label);
    }

    /// [`Challenger::learn`] for an already hashed vector.
    pub fn learn_vector(&mut self, x: SparseVec, label: bool) {
        self.seen += 1;
        self.positives += u64::from(label);
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back((x, label));
        self.since_fit += 1;
        if self.since_fit >= self.refit_every {
            let rows: Vec<(SparseVec, bool)> = self.recent.iter().cloned().collect();
            self.model = Some(BatchLogistic::fit_vectors(&rows, &self.params));
            self.since_fit = 0;
        }
    }

    /// The last fit, if any.
    pub fn model(&self) -> Option<&BatchLogistic> {
        self.model.as_ref()
    }

    /// The labelled examples in the window.
    pub fn window_len(&self) -> usize {
        self.recent.len()
    }
}

/// The batch objective: mean log-loss plus `penalty/2 · ‖w‖²` over every column but the intercept.
struct Objective<'a> {
    rows: &'a [Vec<(usize, f64)>],
    labels: &'a [f64],
    penalty: f64,
    intercept: Option<usize>,
}

impl Objective<'_> {
    /// The value and, into `grad`, the gradient at `w`.
    fn eval(&self, w: &[f64], grad: &mut [f64]) -> f64 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let n = self.rows.len().max(1) as f64;
        let mut loss = 0.0;
        for (row, y) in self.rows.iter().zip(self.labels) {
            let margin: f64 = row.iter().map(|(j, v)| w[*j] * v).sum();
            // log(1 + e^m) − y·m, computed without overflow.
            loss += margin.max(0.0) + (-margin.abs()).exp().ln_1p() - y * margin;
            let residual = (1.0 / (1.0 + (-margin).exp()) - y) / n;
            for (j, v) in row {
                grad[*j] += residual * v;
            }
        }
        let mut value = loss / n;
        for (j, wj) in w.iter().enumerate() {
            if Some(j) != self.intercept {
                value += 0.5 * self.penalty * wj * wj;
                grad[j] += self.penalty * wj;
            }
        }
        value
    }
}

/// Minimises the objective by L-BFGS (memory 10) with a backtracking line search on the Armijo condition,
/// from zero. Returns the weights, the iterations and whether the gradient fell below the tolerance.
fn lbfgs(problem: &Objective<'_>, dim: usize, params: &BatchParams) -> (Vec<f64>, usize, bool) {
    const MEMORY: usize = 10;
    let mut w = vec![0.0; dim];
    let mut grad = vec![0.0; dim];
    let mut value = problem.eval(&w, &mut grad);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::new();
    let max_abs = |g: &[f64]| g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (mut next, mut next_grad) = (vec![0.0; dim], vec![0.0; dim]);
    for iteration in 0..params.max_iter {
        if max_abs(&grad) <= params.tol {
            return (w, iteration, true);
        }
        // The two-loop recursion: direction = −H·grad.
        let mut q = grad.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        if let Some((s, y, _)) = history.back() {
            let scale = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|qi| *qi *= scale);
        } else {
            // The first step: a unit step along the steepest descent, scaled to the gradient's size.
            let norm = dot(&grad, &grad).sqrt().max(1e-12);
            q.iter_mut().for_each(|qi| *qi /= norm);
        }
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let direction: Vec<f64> = q.iter().map(|x| -x).collect();
        let slope = dot(&grad, &direction);
        if slope >= 0.0 {
            // Not a descent direction (rounding): start the memory afresh.
            history.clear();
            continue;
        }
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..40 {
            next.iter_mut()
                .zip(&w)
                .zip(&direction)
                .for_each(|((n, wi), d)| *n = wi + step * d);
            let next_value = problem.eval(&next, &mut next_grad);
            if next_value <= value + 1e-4 * step * slope {
                let s: Vec<f64> = next.iter().zip(&w).map(|(a, b)| a - b).collect();
                let y: Vec<f64> = next_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
                let sy = dot(&s, &y);
                if sy > 1e-12 {
                    if history.len() == MEMORY {
                        history.pop_front();
                    }
                    history.push_back((s, y, 1.0 / sy));
                }
                std::mem::swap(&mut w, &mut next);
                std::mem::swap(&mut grad, &mut next_grad);
                value = next_value;
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            return (w, iteration + 1, max_abs(&grad) <= params.tol);
        }
    }
    let converged = max_abs(&grad) <= params.tol;
    (w, params.max_iter, converged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::SplitMix64;

    fn features(pairs: &[(&str, Value)]) -> Features {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    #[test]
    fn features_hash_to_the_documented_coordinates() {
        let h = Hasher::new(20);
        let x = h.vectorize(&features(&[
            ("body_chars", Value::Number(99.0)),
            ("delta", Value::Number(-1.0)),
            ("zero", Value::Number(0.0)),
            ("by_bot", Value::Bool(false)),
            ("has_body", Value::Bool(true)),
            ("repo", text("apache/kafka")),
            ("title_tokens", text("Leak, leak! Broker")),
            ("body_tokens", text(" ... ")),
        ]));
        let value = |name: &str| {
            let i = h.index(name);
            x.iter().find(|(j, _)| *j == i).map(|(_, v)| v)
        };
        assert_eq!(x.iter().next(), Some((0, 1.0)));
        assert!((value("body_chars").unwrap() - 100f32.ln()).abs() < 1e-6);
        assert!((value("delta").unwrap() + 2f32.ln()).abs() < 1e-6);
        assert_eq!(value("has_body"), Some(1.0));
        assert_eq!(value("repo=apache/kafka"), Some(1.0));
        // The bag {leak: 2, broker: 1} is (ln 3, ln 2), scaled to unit length.
        let norm = (3f32.ln().powi(2) + 2f32.ln().powi(2)).sqrt();
        assert!((value("title_tokens~leak").unwrap() - 3f32.ln() / norm).abs() < 1e-6);
        assert!((value("title_tokens~broker").unwrap() - 2f32.ln() / norm).abs() < 1e-6);
        // Intercept, body_chars, delta, has_body, repo and two words: zeros, false and a bag without words add
        // nothing.
        assert_eq!(x.nnz(), 7);
        // Stable across runs and machines: pinned values.
        assert_eq!(
            Hasher::new(20).index("repo=apache/kafka"),
            h.index("repo=apache/kafka")
        );
        assert_ne!(h.index("a"), h.index("b"));
        assert_eq!(hash(b""), {
            let mut z: u64 = 0xcbf2_9ce4_8422_2325;
            z ^= z >> 33;
            z = z.wrapping_mul(0xff51_afd7_ed55_8ccd);
            z ^= z >> 33;
            z = z.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            z ^ (z >> 33)
        });
    }

    #[test]
    fn one_ftrl_step_matches_the_paper_by_hand() {
        let params = FtrlParams {
            alpha: 0.5,
            beta: 1.0,
            l1: 0.0,
            l2: 0.0,
            bits: 10,
        };
        let mut model = OnlineLogistic::new(params);
        let x = features(&[("flag", Value::Bool(true))]);
        // Zero start: p = 0.5; g = 0.5 − 1 = −0.5 on both the intercept and `flag`.
        assert_eq!(model.learn(&x, true), 0.5);
        // σ = (√0.25 − 0)/α = 1, z = g − σ·0 = −0.5, n = 0.25; w = −z / ((β + √n)/α) = 0.5 / 3.
        let w: f64 = 0.5 / 3.0;
        let expected = 1.0 / (1.0 + (-2.0 * w).exp());
        assert!((model.predict_proba(&x) - expected).abs() < 1e-12);
        assert_eq!(model.examples(), 1);
        assert_eq!(model.nonzero_weights(), 2);
    }

    #[test]
    fn l1_keeps_weights_at_zero_until_the_evidence_is_strong() {
        let mut model = OnlineLogistic::new(FtrlParams {
            l1: 1.0,
            ..FtrlParams::default()
        });
        let x = features(&[("rare", Value::Bool(true))]);
        model.learn(&x, true);
        assert_eq!(model.nonzero_weights(), 0);
        assert_eq!(model.predict_proba(&x), 0.5);
        let mut last = 0.5;
        for _ in 0..50 {
            model.learn(&x, true);
            let p = model.predict_proba(&x);
            assert!(p >= last);
            last = p;
        }
        assert!(last > 0.7, "{last}");
    }

    /// A stream where `good` predicts positives and `bad` negatives, drawn with a fixed seed.
    fn stream(n: usize, seed: u64) -> Vec<(Features, bool)> {
        let mut rng = SplitMix64(seed);
        (0..n)
            .map(|_| {
                let label = rng.next_u64().is_multiple_of(2);
                let signal = (rng.next_u64() % 10) < 8;
                let word = if label == signal { "good" } else { "bad" };
                let noise = format!("n{}", rng.next_u64() % 50);
                let f = features(&[
                    ("title_tokens", text(&format!("{word} {noise}"))),
                    ("count", Value::Number((rng.next_u64() % 100) as f64)),
                ]);
                (f, label)
            })
            .collect()
    }

    fn accuracy(predict: impl Fn(&Features) -> f64, data: &[(Features, bool)]) -> f64 {
        let right = data
            .iter()
            .filter(|(f, y)| (predict(f) > 0.5) == *y)
            .count();
        right as f64 / data.len() as f64
    }

    #[test]
    fn ftrl_learns_a_separable_signal_and_is_deterministic() {
        let train = stream(2000, 1);
        let test = stream(500, 2);
        let mut a = OnlineLogistic::new(FtrlParams::default());
        let mut b = OnlineLogistic::new(FtrlParams::default());
        for (f, y) in &train {
            a.learn(f, *y);
            b.learn(f, *y);
        }
        assert_eq!(a.to_bytes(), b.to_bytes());
        let acc = accuracy(|f| a.predict_proba(f), &test);
        assert!(acc > 0.75, "accuracy {acc}");
    }

    #[test]
    fn a_saved_model_loads_and_predicts_the_same() {
        let mut model = OnlineLogistic::new(FtrlParams::default());
        for (f, y) in stream(300, 3) {
            model.learn(&f, y);
        }
        let loaded = OnlineLogistic::from_bytes(&model.to_bytes()).unwrap();
        assert_eq!(loaded, model);
        for (f, _) in stream(20, 4) {
            assert_eq!(loaded.predict_proba(&f), model.predict_proba(&f));
        }
        assert!(OnlineLogistic::from_bytes(b"nonsense").is_err());
    }

    #[test]
    fn batch_logistic_reaches_the_regularised_optimum() {
        // One binary feature: 3 of 4 positives where it is on, 1 of 4 where off. Without a penalty the optimum
        // is the log odds of each group: intercept ln(1/3), weight ln(3) − ln(1/3) = 2·ln 3.
        let on = features(&[("on", Value::Bool(true))]);
        let off = features(&[]);
        let labels = [true, true, true, false];
        let mut data: Vec<(&Features, bool)> = labels.iter().map(|y| (&on, *y)).collect();
        data.extend(labels.iter().map(|y| (&off, !*y)));
        let model = BatchLogistic::fit(
            &data,
            &BatchParams {
                c: 1e12,
                tol: 1e-10,
                ..BatchParams::default()
            },
        );
        assert!(model.converged());
        assert!((model.predict_proba(&on) - 0.75).abs() < 1e-6);
        assert!((model.predict_proba(&off) - 0.25).abs() < 1e-6);
        // A strong penalty shrinks the feature's weight towards 0, not the intercept.
        let shrunk = BatchLogistic::fit(
            &data,
            &BatchParams {
                c: 1e-6,
                ..BatchParams::default()
            },
        );
        assert!((shrunk.predict_proba(&on) - 0.5).abs() < 1e-3);
    }

    #[test]
    fn batch_logistic_learns_the_stream_signal() {
        let train = stream(1000, 5);
        let rows: Vec<(&Features, bool)> = train.iter().map(|(f, y)| (f, *y)).collect();
        let model = BatchLogistic::fit(&rows, &BatchParams::default());
        let acc = accuracy(|f| model.predict_proba(f), &stream(500, 6));
        assert!(acc > 0.75, "accuracy {acc}");
    }

    #[test]
    fn a_batch_fit_served_online_predicts_the_same_then_goes_on_learning() {
        let train = stream(1000, 7);
        let rows: Vec<(&Features, bool)> = train.iter().map(|(f, y)| (f, *y)).collect();
        let batch = BatchLogistic::fit(&rows, &BatchParams::default());
        for params in [
            FtrlParams::default(),
            FtrlParams {
                alpha: 1.0,
                l1: 0.0,
                ..FtrlParams::default()
            },
        ] {
            let mut online = OnlineLogistic::from_weights(params, batch.weights(), 1000);
            assert_eq!(online.examples(), 1000);
            for (f, _) in stream(50, 8) {
                let (a, b) = (online.predict_proba(&f), batch.predict_proba(&f));
                assert!((a - b).abs() < 1e-9, "{a} against {b}");
            }
            // It learns on: a label it gets wrong moves its prediction towards the label.
            let (f, y) = &stream(1, 9)[0];
            let before = online.predict_proba(f);
            online.learn(f, !*y);
            let after = online.predict_proba(f);
            assert!(if *y { after < before } else { after > before });
            let loaded = OnlineLogistic::from_bytes(&online.to_bytes()).unwrap();
            assert_eq!(loaded, online);
        }
    }

    #[test]
    fn the_challenger_refits_on_its_window_on_schedule() {
        let data = stream(250, 7);
        let mut challenger = Challenger::new(BatchParams::default(), 100, 50);
        assert_eq!(challenger.predict_proba(&data[0].0), 0.5);
        for (f, y) in &data[..49] {
            challenger.learn(f, *y);
        }
        // Before the first fit: the share of positives seen.
        let positives = data[..49].iter().filter(|(_, y)| *y).count();
        assert!(challenger.model().is_none());
        assert_eq!(
            challenger.predict_proba(&data[0].0),
            positives as f64 / 49.0
        );
        for (f, y) in &data[49..] {
            challenger.learn(f, *y);
        }
        assert_eq!(challenger.window_len(), 100);
        // The last fit (after label 250) is the batch fit of the last 100 labels.
        let last: Vec<(&Features, bool)> = data[150..].iter().map(|(f, y)| (f, *y)).collect();
        let expected = BatchLogistic::fit(&last, &BatchParams::default());
        assert_eq!(challenger.model(), Some(&expected));
    }
}
