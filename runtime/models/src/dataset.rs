//! Labelled texts read from the SE sentiment gold standards (`id,dataset,text,oracle` CSV files), and the folds
//! of a cross-validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::linear::SplitMix64;

/// The label names, in the order of the classes of a model trained on them.
pub const SENTIMENT_LABELS: [&str; 3] = ["negative", "neutral", "positive"];

/// One labelled text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The row's id in its file.
    pub id: String,
    /// The test fold the file assigns the row to (its `dataset` column, e.g. `github_test_3`).
    pub fold: String,
    /// The comment.
    pub text: String,
    /// `negative`, `neutral` or `positive`.
    pub label: &'static str,
}

/// Why a gold-standard file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened or is not CSV.
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// What the CSV reader said.
        source: csv::Error,
    },
    /// A column the reader needs is absent.
    #[error("{path}: no `{column}` column")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: &'static str,
    },
    /// An `oracle` value is not -1, 0 or 1.
    #[error("{path}, line {line}: oracle `{value}` is not -1, 0 or 1")]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// The line of the record.
        line: u64,
        /// The value found.
        value: String,
    },
}

/// The GitHub gold standard (`data/se-sentiment/github.csv`, see its SOURCE.md), built into the binary so that a
/// first start can train the default model wherever it runs.
pub const BUNDLED_GITHUB: &str = include_str!("../../../data/se-sentiment/github.csv");

/// The name [`bundled_rows`] reports in messages.
pub const BUNDLED_GITHUB_NAME: &str = "data/se-sentiment/github.csv (bundled)";

/// Reads a gold-standard file: `oracle` 1 is positive, 0 neutral, -1 negative.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, DatasetError> {
    let file = std::fs::File::open(path).map_err(|e| DatasetError::Csv {
        path: path.to_owned(),
        source: e.into(),
    })?;
    rows_from(file, path)
}

/// The rows of [`BUNDLED_GITHUB`].
pub fn bundled_rows() -> Result<Vec<Row>, DatasetError> {
    rows_from(BUNDLED_GITHUB.as_bytes(), Path::new(BUNDLED_GITHUB_NAME))
}

/// Reads gold-standard CSV from `input`, named `path` in errors.
fn rows_from(input: impl std::io::Read, path: &Path) -> Result<Vec<Row>, DatasetError> {
    let csv_error = |source| DatasetError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut reader = csv::Reader::from_reader(input);
    let headers = reader.headers().map_err(csv_error)?.clone();
    let column = |name: &'static str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or(DatasetError::MissingColumn {
                path: path.to_owned(),
                column: name,
            })
    };
    let (id, fold, text, oracle) = (
        column("id")?,
        column("dataset")?,
        column("text")?,
        column("oracle")?,
    );
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let field = |at: usize| record.get(at).unwrap_or("").to_owned();
        let label = match record.get(oracle).map(str::trim) {
            Some("-1") => SENTIMENT_LABELS[0],
            Some("0") => SENTIMENT_LABELS[1],
            Some("1") => SENTIMENT_LABELS[2],
            other => {
                let line = record.position().map_or(0, |p| p.line());
                return Err(DatasetError::BadLabel {
                    path: path.to_owned(),
                    line,
                    value: other.unwrap_or("").to_owned(),
                });
            }
        };
        rows.push(Row {
            id: field(id),
            fold: field(fold),
            text: field(text),
            label,
        });
    }
    Ok(rows)
}

/// How rows are split into test folds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Folds {
    /// By each row's own `fold` name, folds in name order (the published protocol of the gold standards).
    Named,
    /// `k` folds drawn at random within each label, so every fold keeps the label shares.
    Stratified {
        /// The number of folds.
        k: usize,
        /// The seed of the draw.
        seed: u64,
    },
}

/// One test fold: its name and the positions of its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fold {
    /// The fold's name (`github_test_0`, or `fold 1` for drawn folds).
    pub name: String,
    /// Positions of the fold's rows.
    pub test: Vec<usize>,
}

impl Folds {
    /// Splits rows labelled `labels` (and named `names`, used by [`Folds::Named`]) into test folds.
    pub fn split<N: AsRef<str>, L: Ord>(&self, names: &[N], labels: &[L]) -> Vec<Fold> {
        match self {
            Folds::Named => {
                let mut folds: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
                for (at, name) in names.iter().enumerate() {
                    folds.entry(name.as_ref()).or_default().push(at);
                }
                folds
                    .into_iter()
                    .map(|(name, test)| Fold {
                        name: name.to_owned(),
                        test,
                    })
                    .collect()
            }
            Folds::Stratified { k, seed } => stratified(labels, *k, *seed),
        }
    }
}

/// Deals each label's shuffled rows round-robin over `k` folds.
pub fn stratified<L: Ord>(labels: &[L], k: usize, seed: u64) -> Vec<Fold> {
    let k = k.max(1);
    let mut by_label: BTreeMap<&L, Vec<usize>> = BTreeMap::new();
    for (at, label) in labels.iter().enumerate() {
        by_label.entry(label).or_default().push(at);
    }
    let mut rng = SplitMix64(seed);
    let mut folds: Vec<Fold> = (0..k)
        .map(|f| Fold {
            name: format!("fold {}", f + 1),
            test: Vec::new(),
        })
        .collect();
    let mut next = 0;
    for rows in by_label.values_mut() {
        for i in (1..rows.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            rows.swap(i, j);
        }
        for at in rows.iter() {
            folds[next % k].test.push(*at);
            next += 1;
        }
    }
    folds.iter_mut().for_each(|f| f.test.sort_unstable());
    folds
}

/// The positions of `0..n` not in `test` (which must be sorted).
pub fn complement(n: usize, test: &[usize]) -> Vec<usize> {
    (0..n)
        .filter(|at| test.binary_search(at).is_err())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_multiline_fields_and_labels_are_read() {
        let dir =
            std::env::temp_dir().join(format!("forgecast-models-dataset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("rows.csv");
        std::fs::write(&path, "id,dataset,text,oracle\n1,f_0,\"Great, \"\"thanks\"\"!\nSecond line\",1\n2,f_1,meh,-1\n")
            .expect("written");
        let rows = read_rows(&path).expect("read");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].text, "Great, \"thanks\"!\nSecond line");
        assert_eq!(
            (rows[0].label, rows[1].label, rows[1].fold.as_str()),
            ("positive", "negative", "f_1")
        );
        std::fs::write(&path, "id,dataset,text,oracle\n1,f_0,x,2\n").expect("written");
        assert!(matches!(
            read_rows(&path),
            Err(DatasetError::BadLabel { line: 2, .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn stratified_folds_keep_label_shares_and_cover_every_row_once() {
        let labels: Vec<u8> = (0..30).map(|i| if i < 20 { 0 } else { 1 }).collect();
        let folds = stratified(&labels, 5, 7);
        let mut all: Vec<usize> = folds.iter().flat_map(|f| f.test.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..30).collect::<Vec<_>>());
        for fold in &folds {
            let ones = fold.test.iter().filter(|at| labels[**at] == 1).count();
            assert_eq!((fold.test.len(), ones), (6, 2));
        }
        assert_eq!(stratified(&labels, 5, 7), folds);
    }

    #[test]
    fn named_folds_follow_the_rows() {
        let folds = Folds::Named.split(&["b", "a", "b"], &[0, 0, 0]);
        assert_eq!(
            folds,
            [
                Fold {
                    name: "a".into(),
                    test: vec![1]
                },
                Fold {
                    name: "b".into(),
                    test: vec![0, 2]
                }
            ]
        );
        assert_eq!(complement(3, &folds[1].test), [1]);
    }
}
