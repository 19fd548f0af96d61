//! Sparse vectors (sorted index/value pairs) and the row-major matrix the learners train on.

/// A sparse vector: strictly increasing indices with their values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseVec {
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl SparseVec {
    /// Builds a vector from pairs in any order; values of repeated indices are added up and zeros dropped.
    pub fn from_pairs(mut pairs: Vec<(u32, f32)>) -> Self {
        pairs.sort_unstable_by_key(|(i, _)| *i);
        let mut vector = SparseVec {
            indices: Vec::with_capacity(pairs.len()),
            values: Vec::with_capacity(pairs.len()),
        };
        for (index, value) in pairs {
            if vector.indices.last() == Some(&index) {
                *vector.values.last_mut().expect("an index has its value") += value;
            } else {
                vector.indices.push(index);
                vector.values.push(value);
            }
        }
        vector.retain_nonzero();
        vector
    }

    /// The indices, strictly increasing.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// The values, in the order of [`SparseVec::indices`].
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The number of stored (non-zero) entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The pairs in index order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.indices
            .iter()
            .copied()
            .zip(self.values.iter().copied())
    }

    /// The dot product with a dense vector; indices past its end count as zero.
    pub fn dot_dense(&self, dense: &[f32]) -> f64 {
        self.iter()
            .filter_map(|(i, v)| dense.get(i as usize).map(|w| f64::from(*w) * f64::from(v)))
            .sum()
    }

    /// The dot product with another sparse vector (a merge of the two index lists).
    pub fn dot(&self, other: &SparseVec) -> f64 {
        let (mut a, mut b, mut sum) = (0, 0, 0.0);
        while a < self.nnz() && b < other.nnz() {
            match self.indices[a].cmp(&other.indices[b]) {
                std::cmp::Ordering::Less => a += 1,
                std::cmp::Ordering::Greater => b += 1,
                std::cmp::Ordering::Equal => {
                    sum += f64::from(self.values[a]) * f64::from(other.values[b]);
                    a += 1;
                    b += 1;
                }
            }
        }
        sum
    }

    /// The Euclidean norm.
    pub fn norm(&self) -> f64 {
        self.values
            .iter()
            .map(|v| f64::from(*v).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    /// Scales the vector to unit Euclidean norm; the zero vector stays zero.
    pub fn l2_normalize(&mut self) {
        let norm = self.norm();
        if norm > 0.0 {
            self.values
                .iter_mut()
                .for_each(|v| *v = (f64::from(*v) / norm) as f32);
        }
    }

    /// Multiplies every value by `factor`.
    pub fn scale(&mut self, factor: f32) {
        self.values.iter_mut().for_each(|v| *v *= factor);
    }

    /// Appends the entries of `other`, whose indices are shifted by `offset` and must all come after this
    /// vector's last index.
    pub fn extend_shifted(&mut self, other: &SparseVec, offset: u32) {
        debug_assert!(other.indices.first().is_none_or(|first| {
            self.indices
                .last()
                .is_none_or(|last| first + offset > *last)
        }));
        self.indices
            .extend(other.indices.iter().map(|i| i + offset));
        self.values.extend_from_slice(&other.values);
    }

    fn retain_nonzero(&mut self) {
        let mut kept = 0;
        for at in 0..self.indices.len() {
            if self.values[at] != 0.0 {
                self.indices[kept] = self.indices[at];
                self.values[kept] = self.values[at];
                kept += 1;
            }
        }
        self.indices.truncate(kept);
        self.values.truncate(kept);
    }
}

/// Rows of sparse vectors over `columns` features, in the order they were pushed.
#[derive(Clone, Debug, Default)]
pub struct SparseMatrix {
    rows: Vec<SparseVec>,
    columns: usize,
}

impl SparseMatrix {
    /// An empty matrix over `columns` features.
    pub fn new(columns: usize) -> Self {
        SparseMatrix {
            rows: Vec::new(),
            columns,
        }
    }

    /// Appends a row; its indices must be below the number of columns.
    pub fn push(&mut self, row: SparseVec) {
        debug_assert!(
            row.indices
                .last()
                .is_none_or(|i| (*i as usize) < self.columns)
        );
        self.rows.push(row);
    }

    /// The row at `at`.
    pub fn row(&self, at: usize) -> &SparseVec {
        &self.rows[at]
    }

    /// The rows in order.
    pub fn rows(&self) -> &[SparseVec] {
        &self.rows
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the matrix has no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The number of feature columns.
    pub fn columns(&self) -> usize {
        self.columns
    }
}

impl FromIterator<SparseVec> for SparseMatrix {
    fn from_iter<I: IntoIterator<Item = SparseVec>>(rows: I) -> Self {
        let rows: Vec<SparseVec> = rows.into_iter().collect();
        let columns = rows
            .iter()
            .filter_map(|r| r.indices.last())
            .map(|i| *i as usize + 1)
            .max()
            .unwrap_or(0);
        SparseMatrix { rows, columns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_sorted_merged_and_zeros_dropped() {
        let v = SparseVec::from_pairs(vec![(5, 1.0), (2, 2.0), (5, 0.5), (3, 0.0)]);
        assert_eq!(v.indices(), [2, 5]);
        assert_eq!(v.values(), [2.0, 1.5]);
    }

    #[test]
    fn dot_products() {
        let a = SparseVec::from_pairs(vec![(0, 1.0), (2, 2.0), (7, 3.0)]);
        let b = SparseVec::from_pairs(vec![(2, 4.0), (3, 1.0), (7, -1.0)]);
        assert_eq!(a.dot(&b), 8.0 - 3.0);
        assert_eq!(a.dot_dense(&[1.0, 9.0, 0.5]), 1.0 + 1.0);
    }

    #[test]
    fn l2_normalisation() {
        let mut v = SparseVec::from_pairs(vec![(1, 3.0), (4, 4.0)]);
        v.l2_normalize();
        assert_eq!(v.values(), [0.6, 0.8]);
        let mut zero = SparseVec::default();
        zero.l2_normalize();
        assert_eq!(zero.nnz(), 0);
    }

    #[test]
    fn concatenation_shifts_indices() {
        let mut a = SparseVec::from_pairs(vec![(1, 1.0)]);
        a.extend_shifted(&SparseVec::from_pairs(vec![(0, 2.0), (3, 3.0)]), 10);
        assert_eq!(a.indices(), [1, 10, 13]);
        let m: SparseMatrix = vec![a, SparseVec::from_pairs(vec![(2, 1.0)])]
            .into_iter()
            .collect();
        assert_eq!((m.len(), m.columns()), (2, 14));
    }
}
