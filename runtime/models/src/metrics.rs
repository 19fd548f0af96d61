//! Classification metrics from a confusion matrix: per-class precision, recall and F1, macro-F1, accuracy.

use serde::{Deserialize, Serialize};

/// Counts of (true class, predicted class) pairs: `counts[truth][predicted]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    counts: Vec<Vec<u64>>,
}

/// Precision, recall and F1 of one class, and how many examples truly belong to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassScores {
    /// Of the examples predicted as the class, the share that are.
    pub precision: f64,
    /// Of the examples of the class, the share predicted as it.
    pub recall: f64,
    /// The harmonic mean of precision and recall.
    pub f1: f64,
    /// The number of examples of the class.
    pub support: u64,
}

impl Confusion {
    /// An empty matrix over `classes` classes.
    pub fn new(classes: usize) -> Self {
        Confusion {
            counts: vec![vec![0; classes]; classes],
        }
    }

    /// Counts every pair of `truth[i]` and `predicted[i]`.
    pub fn from_pairs(classes: usize, truth: &[usize], predicted: &[usize]) -> Self {
        assert_eq!(truth.len(), predicted.len(), "one prediction per example");
        let mut confusion = Confusion::new(classes);
        for (t, p) in truth.iter().zip(predicted) {
            confusion.add(*t, *p);
        }
        confusion
    }

    /// Counts one example of class `truth` predicted as `predicted`.
    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    /// Adds another matrix's counts (pooling folds).
    pub fn merge(&mut self, other: &Confusion) {
        for (row, other_row) in self.counts.iter_mut().zip(&other.counts) {
            for (c, o) in row.iter_mut().zip(other_row) {
                *c += o;
            }
        }
    }

    /// The counts, `counts()[truth][predicted]`.
    pub fn counts(&self) -> &[Vec<u64>] {
        &self.counts
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.counts.len()
    }

    /// The number of examples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// The share of examples predicted as their own class.
    pub fn accuracy(&self) -> f64 {
        let right: u64 = (0..self.classes()).map(|c| self.counts[c][c]).sum();
        ratio(right, self.total())
    }

    /// The scores of class `class`. A class never predicted has precision 0, never present recall 0 (as
    /// scikit-learn reports them, with a warning there).
    pub fn class_scores(&self, class: usize) -> ClassScores {
        let right = self.counts[class][class];
        let predicted: u64 = self.counts.iter().map(|row| row[class]).sum();
        let support: u64 = self.counts[class].iter().sum();
        let precision = ratio(right, predicted);
        let recall = ratio(right, support);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        ClassScores {
            precision,
            recall,
            f1,
            support,
        }
    }

    /// The unweighted mean of the classes' F1: each class counts the same however rare.
    pub fn macro_f1(&self) -> f64 {
        let classes = self.classes();
        if classes == 0 {
            return 0.0;
        }
        (0..classes).map(|c| self.class_scores(c).f1).sum::<f64>() / classes as f64
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The mean and the sample standard deviation (n - 1) of `values`.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn scores_of_a_small_confusion_matrix() {
        // truth \ predicted:  neg  neu  pos
        //   neg                 5    3    0
        //   neu                 2    8    2
        //   pos                 0    1    4
        let truth = [vec![0; 8], vec![1; 12], vec![2; 5]].concat();
        let predicted = [
            vec![0; 5],
            vec![1; 3],
            vec![0; 2],
            vec![1; 8],
            vec![2; 2],
            vec![1; 1],
            vec![2; 4],
        ]
        .concat();
        let m = Confusion::from_pairs(3, &truth, &predicted);
        assert_eq!(m.counts(), [vec![5, 3, 0], vec![2, 8, 2], vec![0, 1, 4]]);
        assert!(close(m.accuracy(), 17.0 / 25.0));
        let neg = m.class_scores(0);
        assert!(
            close(neg.precision, 5.0 / 7.0) && close(neg.recall, 5.0 / 8.0) && neg.support == 8
        );
        assert!(close(neg.f1, 2.0 * 5.0 / (7.0 + 8.0)));
        let neu = m.class_scores(1);
        assert!(close(neu.f1, 2.0 * 8.0 / (12.0 + 12.0)));
        let pos = m.class_scores(2);
        assert!(close(pos.f1, 2.0 * 4.0 / (6.0 + 5.0)));
        assert!(close(
            m.macro_f1(),
            (10.0 / 15.0 + 16.0 / 24.0 + 8.0 / 11.0) / 3.0
        ));
    }

    #[test]
    fn a_class_never_predicted_scores_zero() {
        let m = Confusion::from_pairs(2, &[0, 0, 1], &[0, 0, 0]);
        assert_eq!(m.class_scores(1).f1, 0.0);
        assert!(close(m.macro_f1(), (0.8 + 0.0) / 2.0));
    }

    #[test]
    fn merging_pools_counts() {
        let mut a = Confusion::from_pairs(2, &[0, 1], &[0, 0]);
        a.merge(&Confusion::from_pairs(2, &[1], &[1]));
        assert_eq!(a.counts(), [vec![1, 0], vec![1, 1]]);
    }

    #[test]
    fn mean_and_sample_sd() {
        let (mean, sd) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert!(close(mean, 5.0));
        assert!(close(sd, (32.0f64 / 7.0).sqrt()));
    }
}
