//! One-vs-rest linear support vector machines trained by dual coordinate descent, and the softmax that turns
//! their margins into probabilities.
//!
//! The solver is the one LIBLINEAR uses for `-s 1` and `-s 3` (Hsieh, Chang, Lin, Keerthi and Sundararajan, "A
//! Dual Coordinate Descent Method for Large-scale Linear SVM", ICML 2008): for the L2-regularised L1-loss or
//! L2-loss SVM it updates one dual variable at a time in closed form, keeps `w = Σ αᵢyᵢxᵢ` up to date, and
//! optionally shrinks away variables stuck at a bound. It suits text well: one pass costs one sweep over the
//! non-zeros, and a few dozen passes converge. The bias is an extra feature of constant value `bias` (regularised
//! like every weight, as in LIBLINEAR and scikit-learn's `LinearSVC`). Passes visit the examples in an order
//! shuffled by a seeded generator, so training is deterministic.

use serde::{Deserialize, Serialize};

use crate::sparse::{SparseMatrix, SparseVec};

/// The loss of a margin violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// The hinge loss `max(0, 1 - y w·x)`.
    Hinge,
    /// The squared hinge loss `max(0, 1 - y w·x)²` (LIBLINEAR's default, smoother and usually as accurate).
    SquaredHinge,
}

/// The solver's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvmParams {
    /// The cost of margin violations against the L2 regulariser: larger fits the training data harder.
    pub c: f64,
    /// The loss.
    pub loss: Loss,
    /// Stop when the projected gradient's spread over a pass falls below this (LIBLINEAR's `eps`).
    pub tolerance: f64,
    /// Stop after this many passes even if not converged.
    pub max_passes: usize,
    /// The value of the constant feature that carries the bias; 0 trains without a bias.
    pub bias: f64,
    /// Whether variables at a bound are left out of passes until the end (faster, same solution).
    pub shrinking: bool,
    /// The seed of the order in which passes visit the examples.
    pub seed: u64,
}

impl Default for SvmParams {
    fn default() -> Self {
        SvmParams {
            c: 0.5,
            loss: Loss::SquaredHinge,
            tolerance: 1e-3,
            max_passes: 1000,
            bias: 1.0,
            shrinking: true,
            seed: 1,
        }
    }
}

/// How one binary problem's training ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Convergence {
    /// Passes made over the examples.
    pub passes: usize,
    /// Whether the tolerance was reached before `max_passes`.
    pub converged: bool,
}

/// A binary linear classifier: `w·x + b > 0` is the positive side.
#[derive(Clone, Debug, PartialEq)]
pub struct BinarySvm {
    /// One weight per feature.
    pub weights: Vec<f64>,
    /// The bias, already multiplied by the bias feature's value.
    pub bias: f64,
    /// How training ended.
    pub convergence: Convergence,
}

impl BinarySvm {
    /// Trains on the rows of `x` with labels `positive[i]` by dual coordinate descent.
    pub fn train(x: &SparseMatrix, positive: &[bool], params: &SvmParams) -> Self {
        assert_eq!(x.len(), positive.len(), "one label per row");
        let n = x.len();
        let (upper, diagonal) = match params.loss {
            Loss::Hinge => (params.c, 0.0),
            Loss::SquaredHinge => (f64::INFINITY, 0.5 / params.c),
        };
        let y: Vec<f64> = positive
            .iter()
            .map(|p| if *p { 1.0 } else { -1.0 })
            .collect();
        let bias2 = params.bias * params.bias;
        let qd: Vec<f64> = x
            .rows()
            .iter()
            .map(|r| diagonal + r.norm().powi(2) + bias2)
            .collect();
        let mut w = vec![0.0f64; x.columns()];
        let mut w_bias = 0.0f64;
        let mut alpha = vec![0.0f64; n];
        let mut order: Vec<usize> = (0..n).collect();
        let mut active = n;
        let mut rng = SplitMix64(params.seed);
        // The spread of the projected gradient in the previous pass bounds what may be shrunk in this one.
        let (mut pg_max_old, mut pg_min_old) = (f64::INFINITY, f64::NEG_INFINITY);
        let mut passes = 0;
        let mut converged = false;
        while passes < params.max_passes {
            passes += 1;
            for i in 0..active {
                let j = i + (rng.next_u64() % (active - i) as u64) as usize;
                order.swap(i, j);
            }
            let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
            let mut s = 0;
            while s < active {
                let i = order[s];
                let row = x.row(i);
                let margin = dot(&w, row) + w_bias * params.bias;
                let g = y[i] * margin - 1.0 + diagonal * alpha[i];
                // The projected gradient: zero where the bound stops the move. A variable at a bound whose gradient
                // pushes past the previous pass's spread is unlikely to move again and leaves the active set.
                let pg = if alpha[i] == 0.0 {
                    if g > pg_max_old && params.shrinking {
                        active -= 1;
                        order.swap(s, active);
                        continue;
                    }
                    g.min(0.0)
                } else if alpha[i] >= upper {
                    if g < pg_min_old && params.shrinking {
                        active -= 1;
                        order.swap(s, active);
                        continue;
                    }
                    g.max(0.0)
                } else {
                    g
                };
                pg_max = pg_max.max(pg);
                pg_min = pg_min.min(pg);
                if pg.abs() > 1e-12 {
                    let old = alpha[i];
                    alpha[i] = (alpha[i] - g / qd[i]).clamp(0.0, upper);
                    let step = (alpha[i] - old) * y[i];
                    for (k, v) in row.iter() {
                        w[k as usize] += step * f64::from(v);
                    }
                    w_bias += step * params.bias;
                }
                s += 1;
            }
            if pg_max - pg_min <= params.tolerance {
                if active == n {
                    converged = true;
                    break;
                }
                // Converged on the shrunk problem: check once more on every variable.
                active = n;
                (pg_max_old, pg_min_old) = (f64::INFINITY, f64::NEG_INFINITY);
                continue;
            }
            pg_max_old = if pg_max <= 0.0 { f64::INFINITY } else { pg_max };
            pg_min_old = if pg_min >= 0.0 {
                f64::NEG_INFINITY
            } else {
                pg_min
            };
        }
        BinarySvm {
            weights: w,
            bias: w_bias * params.bias,
            convergence: Convergence { passes, converged },
        }
    }

    /// The signed distance-like score `w·x + b`.
    pub fn margin(&self, row: &SparseVec) -> f64 {
        dot(&self.weights, row) + self.bias
    }
}

fn dot(w: &[f64], row: &SparseVec) -> f64 {
    row.iter().map(|(k, v)| w[k as usize] * f64::from(v)).sum()
}

/// One binary SVM per class against the rest; the class with the largest margin wins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneVsRest {
    classes: usize,
    /// The weights interleaved by feature (`weights[feature * classes + class]`), so one row's features are read
    /// once for all classes.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl OneVsRest {
    /// Trains one SVM per class on rows `x` labelled `labels[i] < classes`, and says how each ended.
    pub fn train(
        x: &SparseMatrix,
        labels: &[usize],
        classes: usize,
        params: &SvmParams,
    ) -> (Self, Vec<Convergence>) {
        let mut weights = vec![0.0f32; x.columns() * classes];
        let mut bias = Vec::with_capacity(classes);
        let mut convergence = Vec::with_capacity(classes);
        for class in 0..classes {
            let positive: Vec<bool> = labels.iter().map(|l| *l == class).collect();
            let svm = BinarySvm::train(x, &positive, params);
            for (feature, w) in svm.weights.iter().enumerate() {
                weights[feature * classes + class] = *w as f32;
            }
            bias.push(svm.bias as f32);
            convergence.push(svm.convergence);
        }
        (
            OneVsRest {
                classes,
                weights,
                bias,
            },
            convergence,
        )
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The number of features the weights cover.
    pub fn features(&self) -> usize {
        self.weights.len() / self.classes.max(1)
    }

    /// The margin of every class for one row; features past the trained ones count as zero.
    pub fn margins(&self, row: &SparseVec) -> Vec<f64> {
        let mut margins: Vec<f64> = self.bias.iter().map(|b| f64::from(*b)).collect();
        for (feature, value) in row.iter() {
            let start = feature as usize * self.classes;
            if let Some(w) = self.weights.get(start..start + self.classes) {
                for (m, w) in margins.iter_mut().zip(w) {
                    *m += f64::from(*w) * f64::from(value);
                }
            }
        }
        margins
    }
}

/// The softmax of `scale × margins`: probabilities that sum to 1 and keep the margins' order.
pub fn softmax(margins: &[f64], scale: f64) -> Vec<f64> {
    let top = margins.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = margins.iter().map(|m| ((m - top) * scale).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The softmax scale that minimises the log loss of held-out margins (temperature scaling, Guo et al. 2017):
/// one number, so it changes no prediction, only how sure the probabilities say they are.
pub fn fit_softmax_scale(margins: &[Vec<f64>], labels: &[usize]) -> f64 {
    let loss = |log_scale: f64| -> f64 {
        let scale = log_scale.exp();
        margins
            .iter()
            .zip(labels)
            .map(|(m, l)| -softmax(m, scale)[*l].max(1e-300).ln())
            .sum()
    };
    // Golden-section search over ln(scale) in [ln 0.1, ln 100]; the loss is convex in the scale.
    let (mut low, mut high) = (0.1f64.ln(), 100f64.ln());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let a = high - ratio * (high - low);
        let b = low + ratio * (high - low);
        if loss(a) < loss(b) {
            high = b;
        } else {
            low = a;
        }
    }
    ((low + high) / 2.0).exp()
}

/// A small deterministic generator (Steele, Lea and Flood's SplitMix64) for shuffles; no statistical subtlety
/// is needed here, only the same sequence on every machine.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(points: &[(f32, f32)]) -> SparseMatrix {
        points
            .iter()
            .map(|(a, b)| SparseVec::from_pairs(vec![(0, *a), (1, *b)]))
            .collect()
    }

    #[test]
    fn a_separable_2d_problem_gets_the_maximum_margin() {
        // Positives at x1 = 1 and 2, negatives at x1 = -1 and -2, x2 anywhere; no bias. The hard-margin solution
        // is w = (1, 0): the closest points sit exactly on the margin w·x = ±1.
        let x = points(&[(1.0, 0.5), (2.0, -1.0), (-1.0, 0.3), (-2.0, 1.0)]);
        let y = [true, true, false, false];
        let params = SvmParams {
            c: 1e6,
            loss: Loss::Hinge,
            tolerance: 1e-8,
            bias: 0.0,
            ..SvmParams::default()
        };
        let svm = BinarySvm::train(&x, &y, &params);
        assert!(svm.convergence.converged);
        assert!((svm.weights[0] - 1.0).abs() < 1e-6, "{:?}", svm.weights);
        assert!(svm.weights[1].abs() < 1e-6, "{:?}", svm.weights);
    }

    #[test]
    fn the_squared_hinge_with_a_small_c_shrinks_the_weights() {
        // One positive at (1, 0), one negative at (-1, 0), no bias. With the squared hinge the primal is
        // ½w² + C·2(1 - w)², minimised at w = 4C / (1 + 4C): 0.5 for C = 0.25.
        let x = points(&[(1.0, 0.0), (-1.0, 0.0)]);
        let params = SvmParams {
            c: 0.25,
            tolerance: 1e-10,
            bias: 0.0,
            ..SvmParams::default()
        };
        let svm = BinarySvm::train(&x, &[true, false], &params);
        assert!((svm.weights[0] - 0.5).abs() < 1e-6, "{:?}", svm.weights);
    }

    #[test]
    fn the_bias_moves_the_boundary() {
        // All points on one side of the origin: only a bias can separate x1 = 3 from x1 = 1.
        let x = points(&[(3.0, 0.0), (3.5, 0.0), (1.0, 0.0), (0.5, 0.0)]);
        let y = [true, true, false, false];
        let params = SvmParams {
            c: 100.0,
            tolerance: 1e-6,
            ..SvmParams::default()
        };
        let svm = BinarySvm::train(&x, &y, &params);
        let boundary = -svm.bias / svm.weights[0];
        assert!(boundary > 1.0 && boundary < 3.0, "boundary at {boundary}");
    }

    #[test]
    fn one_vs_rest_picks_the_right_quadrant_and_is_deterministic() {
        let x = points(&[
            (1.0, 0.0),
            (0.9, 0.1),
            (0.0, 1.0),
            (0.1, 0.9),
            (-1.0, -1.0),
            (-0.9, -1.1),
        ]);
        let labels = [0, 0, 1, 1, 2, 2];
        let (model, convergence) = OneVsRest::train(&x, &labels, 3, &SvmParams::default());
        assert!(convergence.iter().all(|c| c.converged));
        for (row, label) in x.rows().iter().zip(labels) {
            let margins = model.margins(row);
            let best = (0..3)
                .max_by(|a, b| margins[*a].total_cmp(&margins[*b]))
                .expect("three classes");
            assert_eq!(best, label);
        }
        assert_eq!(
            OneVsRest::train(&x, &labels, 3, &SvmParams::default()).0,
            model
        );
    }

    #[test]
    fn softmax_and_its_scale() {
        let p = softmax(&[1.0, 0.0, -1.0], 1.0);
        let e = std::f64::consts::E;
        let sum = e + 1.0 + 1.0 / e;
        assert!((p[0] - e / sum).abs() < 1e-12 && (p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Margins that always rank the right class first deserve a large scale; ones that never do, a small one.
        let margins = vec![vec![1.0, -1.0], vec![-1.0, 1.0]];
        assert!(fit_softmax_scale(&margins, &[0, 1]) > 50.0);
        assert!(fit_softmax_scale(&margins, &[1, 0]) < 0.2);
    }
}
