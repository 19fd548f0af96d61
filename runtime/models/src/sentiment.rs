//! The sentiment model (negative / neutral / positive) of issue, review and comment text: the tf-idf vectoriser,
//! a one-vs-rest linear SVM and the label names, trained, saved, loaded and cross-validated.
//!
//! Training chooses the feature set and the SVM's `C` by an inner cross-validation over the training texts only
//! (so the outer test fold of [`cross_validate`] is never looked at), and fits the softmax scale that turns
//! margins into probabilities on the same inner folds' held-out margins. When the texts come in groups (the
//! gold standards' folds are contiguous slices of the collection, which differ in length and topic), the inner
//! folds keep each group whole, so the choice is made on the same kind of shift the model will meet.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::dataset::{self, Folds, Row};
use crate::linear::{self, Convergence, OneVsRest, SvmParams};
use crate::metrics::{self, Confusion};
use crate::sparse::SparseMatrix;
use crate::tfidf::{Corpus, FeatureParams, TfIdf};

/// The version of the saved form; [`SentimentModel::from_bytes`] refuses any other.
const FORMAT: u32 = 1;

/// How a model is trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The candidate feature sets; the inner cross-validation keeps one (the first without one).
    pub feature_sets: Vec<FeatureParams>,
    /// The SVM's settings; its `c` is used as is when `c_grid` is empty or there is no inner cross-validation.
    pub svm: SvmParams,
    /// The candidate values of `C`.
    pub c_grid: Vec<f64>,
    /// The folds of the inner cross-validation: whole groups when the texts have them, else drawn within each
    /// label from `svm.seed`. Below 2 there is none: the first feature set, `svm.c` and a softmax scale of 1.
    pub inner_folds: usize,
}

impl Default for Params {
    /// Three feature sets from the usual text-classification settings: word 1-2-grams
    /// with character n-grams (scikit-learn's char_wb 2-5) and negation marking, the same without characters,
    /// and word unigrams; LIBLINEAR's squared hinge with `C` from powers of two around scikit-learn's default 1;
    /// a 3-fold inner cross-validation.
    fn default() -> Self {
        let full = FeatureParams::default();
        Params {
            feature_sets: vec![
                full.clone(),
                FeatureParams {
                    char_ngrams: None,
                    ..full.clone()
                },
                FeatureParams {
                    word_ngrams: (1, 1),
                    char_ngrams: None,
                    negation: false,
                    ..full
                },
            ],
            svm: SvmParams::default(),
            c_grid: vec![0.125, 0.25, 0.5, 1.0, 2.0],
            inner_folds: 3,
        }
    }
}

impl Params {
    /// What a first start trains with, in a few seconds: word unigrams (the feature set the full selection
    /// keeps on the bundled GitHub data, and the cheapest of the candidates), `C` and the softmax scale chosen by
    /// the same inner cross-validation as [`Params::default`].
    pub fn first_start() -> Self {
        Params {
            feature_sets: vec![unigram_features()],
            ..Params::default()
        }
    }

    /// One feature set and one `C`, no inner cross-validation.
    pub fn fixed(features: FeatureParams, c: f64) -> Self {
        Params {
            feature_sets: vec![features],
            svm: SvmParams {
                c,
                ..SvmParams::default()
            },
            c_grid: vec![c],
            inner_folds: 0,
        }
    }
}

/// Why a model could not be trained or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Texts and labels differ in number.
    #[error("{texts} texts but {labels} labels")]
    LengthMismatch {
        /// The number of texts.
        texts: usize,
        /// The number of labels.
        labels: usize,
    },
    /// No feature set to train with.
    #[error("no feature set given")]
    NoFeatureSet,
    /// Fewer than two distinct labels: nothing to tell apart.
    #[error("training needs at least two labels, found {0:?}")]
    TooFewLabels(Vec<String>),
    /// The saved bytes are not a model of this format.
    #[error("not a sentiment model of format {FORMAT}: {0}")]
    Decode(String),
}

/// The answer for one text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The most probable label.
    pub label: String,
    /// Every label with its probability, in the model's label order; the probabilities sum to 1.
    pub scores: Vec<(String, f64)>,
}

/// What training chose and how it went.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingSummary {
    /// The position of the feature set kept in [`Params::feature_sets`].
    pub feature_set: usize,
    /// The `C` kept.
    pub c: f64,
    /// The inner cross-validation's macro-F1 of every candidate: (feature set, `C`, macro-F1). Empty without one.
    pub inner_scores: Vec<(usize, f64, f64)>,
    /// Whether the inner folds kept groups whole (rather than being drawn within each label).
    pub grouped: bool,
    /// The softmax scale fitted on the inner folds' held-out margins.
    pub softmax_scale: f64,
    /// How each class's SVM converged in the final training.
    pub convergence: Vec<Convergence>,
    /// The vocabulary's size.
    pub features: usize,
}

/// A trained model: vectoriser, one-vs-rest SVM, label names and the softmax scale.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentimentModel {
    format: u32,
    labels: Vec<String>,
    vectorizer: TfIdf,
    classifier: OneVsRest,
    softmax_scale: f64,
}

impl SentimentModel {
    /// Trains on `texts` labelled `labels` (any label names; classes in sorted name order).
    pub fn train<T: AsRef<str>, L: AsRef<str>>(
        texts: &[T],
        labels: &[L],
        params: &Params,
    ) -> Result<Self, ModelError> {
        Ok(SentimentModel::train_with_summary(texts, labels, params)?.0)
    }

    /// [`SentimentModel::train`], also saying what training chose.
    pub fn train_with_summary<T: AsRef<str>, L: AsRef<str>>(
        texts: &[T],
        labels: &[L],
        params: &Params,
    ) -> Result<(Self, TrainingSummary), ModelError> {
        SentimentModel::train_grouped(texts, labels, None::<&[&str]>, params)
    }

    /// Trains on texts that come in groups (`groups[i]` names the group of `texts[i]`, e.g. the gold standard's
    /// fold): the inner cross-validation keeps each group whole when there are at least as many groups as inner
    /// folds.
    pub fn train_grouped<T: AsRef<str>, L: AsRef<str>, G: AsRef<str>>(
        texts: &[T],
        labels: &[L],
        groups: Option<&[G]>,
        params: &Params,
    ) -> Result<(Self, TrainingSummary), ModelError> {
        if texts.len() != labels.len() || groups.is_some_and(|g| g.len() != texts.len()) {
            return Err(ModelError::LengthMismatch {
                texts: texts.len(),
                labels: labels.len(),
            });
        }
        if params.feature_sets.is_empty() {
            return Err(ModelError::NoFeatureSet);
        }
        let names = label_names(labels.iter().map(AsRef::as_ref));
        if names.len() < 2 {
            return Err(ModelError::TooFewLabels(names));
        }
        let classes = class_indices(&names, labels.iter().map(AsRef::as_ref));
        let groups = groups.map(|g| group_indices(g.iter().map(AsRef::as_ref)));
        let corpora = analyse(params, texts);
        let all: Vec<usize> = (0..texts.len()).collect();
        Ok(train_corpus(
            &corpora,
            &all,
            &classes,
            groups.as_deref(),
            &names,
            params,
        ))
    }

    /// The label names, in class order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The vectoriser.
    pub fn vectorizer(&self) -> &TfIdf {
        &self.vectorizer
    }

    /// Predicts one text.
    pub fn predict(&self, text: &str) -> Prediction {
        let margins = self.classifier.margins(&self.vectorizer.transform(text));
        self.prediction(&margins)
    }

    /// Predicts each of `texts`.
    pub fn predict_batch<T: AsRef<str>>(&self, texts: &[T]) -> Vec<Prediction> {
        texts.iter().map(|t| self.predict(t.as_ref())).collect()
    }

    fn prediction(&self, margins: &[f64]) -> Prediction {
        let probabilities = linear::softmax(margins, self.softmax_scale);
        let best = argmax(margins);
        Prediction {
            label: self.labels[best].clone(),
            scores: self.labels.iter().cloned().zip(probabilities).collect(),
        }
    }

    /// The saved form (postcard): the same model always gives the same bytes, so their SHA-256 names it.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a model always serialises")
    }

    /// Loads a model saved by [`SentimentModel::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let model: SentimentModel =
            postcard::from_bytes(bytes).map_err(|e| ModelError::Decode(e.to_string()))?;
        if model.format != FORMAT {
            return Err(ModelError::Decode(format!("format {}", model.format)));
        }
        if model.classifier.classes() != model.labels.len()
            || model.classifier.features() != model.vectorizer.len()
        {
            return Err(ModelError::Decode(
                "the classifier does not match the labels or the vocabulary".to_owned(),
            ));
        }
        Ok(model)
    }

    /// An estimate of the memory the loaded model holds: vocabulary (stored and indexed), idf and weights.
    pub fn memory_bytes(&self) -> usize {
        let terms: usize = (0..self.vectorizer.len() as u32)
            .map(|i| self.vectorizer.term(i).len())
            .sum();
        let features = self.vectorizer.len();
        // Each term is held twice (sorted list and lookup key, 16-byte pointers each); the hash table adds its
        // u32 value and a control byte per slot, at 7/8 load.
        let vocabulary = 2 * (terms + 16 * features) + features * 5 * 8 / 7;
        vocabulary + features * 4 + features * self.labels.len() * 4
    }
}

fn argmax(values: &[f64]) -> usize {
    // The first of equal maxima, so ties are broken the same way everywhere.
    let mut best = 0;
    for (at, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = at;
        }
    }
    best
}

fn label_names<'a>(labels: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = labels.map(str::to_owned).collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn class_indices<'a>(names: &[String], labels: impl Iterator<Item = &'a str>) -> Vec<usize> {
    labels
        .map(|l| {
            names
                .binary_search_by(|n| n.as_str().cmp(l))
                .expect("a known label")
        })
        .collect()
}

/// Each group's rank among the sorted group names.
fn group_indices<'a>(groups: impl Iterator<Item = &'a str> + Clone) -> Vec<usize> {
    let names = label_names(groups.clone());
    class_indices(&names, groups)
}

/// The texts analysed once per candidate feature set (none past the first without an inner cross-validation).
fn analyse<T: AsRef<str>>(params: &Params, texts: &[T]) -> Vec<Corpus> {
    let candidates = if params.inner_folds >= 2 {
        params.feature_sets.len()
    } else {
        1
    };
    params.feature_sets[..candidates]
        .iter()
        .map(|f| Corpus::new(f, texts))
        .collect()
}

/// Trains on the texts at `docs` of `corpora` (one per candidate feature set), labelled `classes[k]` and in group
/// `groups[k]` for `docs[k]`.
fn train_corpus(
    corpora: &[Corpus],
    docs: &[usize],
    classes: &[usize],
    groups: Option<&[usize]>,
    names: &[String],
    params: &Params,
) -> (SentimentModel, TrainingSummary) {
    let n_classes = names.len();
    let choice = if params.inner_folds >= 2 {
        choose(corpora, docs, classes, groups, n_classes, params)
    } else {
        Choice {
            feature_set: 0,
            c: params.svm.c,
            scores: Vec::new(),
            grouped: false,
            softmax_scale: 1.0,
        }
    };
    let corpus = &corpora[choice.feature_set];
    let vectorizer = TfIdf::fit_corpus(corpus, docs);
    let x = vectorizer.transform_corpus(corpus, docs);
    let svm = SvmParams {
        c: choice.c,
        ..params.svm.clone()
    };
    let (classifier, convergence) = OneVsRest::train(&x, classes, n_classes, &svm);
    let summary = TrainingSummary {
        feature_set: choice.feature_set,
        c: choice.c,
        inner_scores: choice.scores,
        grouped: choice.grouped,
        softmax_scale: choice.softmax_scale,
        convergence,
        features: vectorizer.len(),
    };
    let model = SentimentModel {
        format: FORMAT,
        labels: names.to_vec(),
        vectorizer,
        classifier,
        softmax_scale: choice.softmax_scale,
    };
    (model, summary)
}

/// What the inner cross-validation chose.
struct Choice {
    feature_set: usize,
    c: f64,
    scores: Vec<(usize, f64, f64)>,
    grouped: bool,
    softmax_scale: f64,
}

/// The inner cross-validation: every candidate feature set and `C` trained on each inner training part (with a
/// vectoriser fitted on that part alone) and scored by the macro-F1 of the pooled held-out predictions. Keeps the
/// best (of equals, the earlier feature set and the smaller `C`: the simpler model), and fits the softmax scale
/// on its held-out margins.
fn choose(
    corpora: &[Corpus],
    docs: &[usize],
    classes: &[usize],
    groups: Option<&[usize]>,
    n_classes: usize,
    params: &Params,
) -> Choice {
    let grid = if params.c_grid.is_empty() {
        vec![params.svm.c]
    } else {
        params.c_grid.clone()
    };
    let (folds, grouped) = inner_folds(classes, groups, params);
    let candidates: Vec<(usize, f64)> = (0..corpora.len())
        .flat_map(|f| grid.iter().map(move |c| (f, *c)))
        .collect();
    let mut held_out: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); docs.len()]; candidates.len()];
    for fold in &folds {
        let train = dataset::complement(docs.len(), &fold.test);
        let train_docs: Vec<usize> = train.iter().map(|k| docs[*k]).collect();
        let test_docs: Vec<usize> = fold.test.iter().map(|k| docs[*k]).collect();
        let train_classes: Vec<usize> = train.iter().map(|k| classes[*k]).collect();
        for (f, corpus) in corpora.iter().enumerate() {
            let vectorizer = TfIdf::fit_corpus(corpus, &train_docs);
            let x = vectorizer.transform_corpus(corpus, &train_docs);
            let x_test = vectorizer.transform_corpus(corpus, &test_docs);
            for (k, (_, c)) in candidates
                .iter()
                .enumerate()
                .filter(|(_, (cf, _))| *cf == f)
            {
                let svm = SvmParams {
                    c: *c,
                    ..params.svm.clone()
                };
                let (model, _) = OneVsRest::train(&x, &train_classes, n_classes, &svm);
                for (row, at) in x_test.rows().iter().zip(&fold.test) {
                    held_out[k][*at] = model.margins(row);
                }
            }
        }
    }
    let scores: Vec<(usize, f64, f64)> = candidates
        .iter()
        .zip(&held_out)
        .map(|((f, c), margins)| {
            let predicted: Vec<usize> = margins.iter().map(|m| argmax(m)).collect();
            (
                *f,
                *c,
                Confusion::from_pairs(n_classes, classes, &predicted).macro_f1(),
            )
        })
        .collect();
    // Strictly better only: candidates come simplest C first within a set, and earlier sets first.
    let mut best = 0;
    for (k, (_, _, score)) in scores.iter().enumerate() {
        if *score > scores[best].2 {
            best = k;
        }
    }
    let softmax_scale = linear::fit_softmax_scale(&held_out[best], classes);
    Choice {
        feature_set: scores[best].0,
        c: scores[best].1,
        scores,
        grouped,
        softmax_scale,
    }
}

/// The inner folds: groups dealt whole over `inner_folds` folds in name order when there are enough of them,
/// else drawn within each label.
fn inner_folds(
    classes: &[usize],
    groups: Option<&[usize]>,
    params: &Params,
) -> (Vec<dataset::Fold>, bool) {
    let k = params.inner_folds;
    if let Some(groups) = groups {
        let mut distinct = groups.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() >= k {
            let mut folds: Vec<dataset::Fold> = (0..k)
                .map(|f| dataset::Fold {
                    name: format!("inner {}", f + 1),
                    test: Vec::new(),
                })
                .collect();
            for (at, group) in groups.iter().enumerate() {
                let rank = distinct.binary_search(group).expect("a known group");
                folds[rank % k].test.push(at);
            }
            return (folds, true);
        }
    }
    (dataset::stratified(classes, k, params.svm.seed), false)
}

/// One outer fold of [`cross_validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct FoldReport {
    /// The fold's name.
    pub name: String,
    /// Training and test texts.
    pub train: usize,
    /// Test texts.
    pub test: usize,
    /// The model's macro-F1 on the fold.
    pub macro_f1: f64,
    /// The model's accuracy on the fold.
    pub accuracy: f64,
    /// What training chose.
    pub summary: TrainingSummary,
    /// The confusion matrix on the fold.
    pub confusion: Confusion,
    /// Macro-F1 of always answering the training part's most common label.
    pub majority_f1: f64,
    /// Macro-F1 of the baseline: word-unigram tf-idf and the same SVM at `C` = `svm.c`, no inner search.
    pub unigram_f1: f64,
    /// Seconds spent on the fold (training, inner search, baseline and prediction).
    pub seconds: f64,
}

/// The outcome of [`cross_validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct CvReport {
    /// The label names, in class order.
    pub labels: Vec<String>,
    /// Each fold, in order.
    pub folds: Vec<FoldReport>,
    /// The confusion matrix of every fold's predictions pooled.
    pub pooled: Confusion,
}

impl CvReport {
    /// Mean and sample standard deviation of the folds' macro-F1.
    pub fn macro_f1(&self) -> (f64, f64) {
        metrics::mean_sd(&self.folds.iter().map(|f| f.macro_f1).collect::<Vec<_>>())
    }

    /// Mean and sample standard deviation of the majority baseline's macro-F1.
    pub fn majority_f1(&self) -> (f64, f64) {
        metrics::mean_sd(&self.folds.iter().map(|f| f.majority_f1).collect::<Vec<_>>())
    }

    /// Mean and sample standard deviation of the word-unigram baseline's macro-F1.
    pub fn unigram_f1(&self) -> (f64, f64) {
        metrics::mean_sd(&self.folds.iter().map(|f| f.unigram_f1).collect::<Vec<_>>())
    }
}

/// The features of the word-unigram baseline.
pub fn unigram_features() -> FeatureParams {
    FeatureParams {
        word_ngrams: (1, 1),
        char_ngrams: None,
        negation: false,
        ..FeatureParams::default()
    }
}

/// Cross-validates `params` on `rows` split by `folds`: for each fold a model is trained on the other folds (its
/// feature set and `C` chosen inside them, with the named folds as groups) and scored on the fold, next to two
/// baselines trained on the same rows. `progress` is called after each fold.
pub fn cross_validate(
    rows: &[Row],
    folds: &Folds,
    params: &Params,
    progress: &mut dyn FnMut(&FoldReport),
) -> CvReport {
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let names = label_names(rows.iter().map(|r| r.label));
    let classes = class_indices(&names, rows.iter().map(|r| r.label));
    let fold_names: Vec<&str> = rows.iter().map(|r| r.fold.as_str()).collect();
    let groups = match folds {
        Folds::Named => Some(group_indices(fold_names.iter().copied())),
        Folds::Stratified { .. } => None,
    };
    let corpora = analyse(params, &texts);
    let unigram_params = Params::fixed(unigram_features(), params.svm.c);
    let unigrams = analyse(&unigram_params, &texts);
    let mut pooled = Confusion::new(names.len());
    let mut reports = Vec::new();
    for fold in folds.split(&fold_names, &classes) {
        let started = Instant::now();
        let train = dataset::complement(rows.len(), &fold.test);
        let train_classes: Vec<usize> = train.iter().map(|k| classes[*k]).collect();
        let train_groups: Option<Vec<usize>> = groups
            .as_ref()
            .map(|g| train.iter().map(|k| g[*k]).collect());
        let test_classes: Vec<usize> = fold.test.iter().map(|k| classes[*k]).collect();
        let (model, summary) = train_corpus(
            &corpora,
            &train,
            &train_classes,
            train_groups.as_deref(),
            &names,
            params,
        );
        let confusion = score(
            &model,
            &corpora[summary.feature_set],
            &fold.test,
            &test_classes,
        );
        let (baseline, _) = train_corpus(
            &unigrams,
            &train,
            &train_classes,
            None,
            &names,
            &unigram_params,
        );
        let unigram_f1 = score(&baseline, &unigrams[0], &fold.test, &test_classes).macro_f1();
        let majority = majority_class(&train_classes, names.len());
        let majority_f1 =
            Confusion::from_pairs(names.len(), &test_classes, &vec![majority; fold.test.len()])
                .macro_f1();
        pooled.merge(&confusion);
        let report = FoldReport {
            name: fold.name,
            train: train.len(),
            test: fold.test.len(),
            macro_f1: confusion.macro_f1(),
            accuracy: confusion.accuracy(),
            summary,
            confusion,
            majority_f1,
            unigram_f1,
            seconds: started.elapsed().as_secs_f64(),
        };
        progress(&report);
        reports.push(report);
    }
    CvReport {
        labels: names,
        folds: reports,
        pooled,
    }
}

/// The confusion matrix of `model` on the texts of `corpus` at `docs`, whose classes are `truth`.
fn score(model: &SentimentModel, corpus: &Corpus, docs: &[usize], truth: &[usize]) -> Confusion {
    let x: SparseMatrix = model.vectorizer.transform_corpus(corpus, docs);
    let predicted: Vec<usize> = x
        .rows()
        .iter()
        .map(|row| argmax(&model.classifier.margins(row)))
        .collect();
    Confusion::from_pairs(model.labels.len(), truth, &predicted)
}

fn majority_class(classes: &[usize], n_classes: usize) -> usize {
    let mut counts = vec![0usize; n_classes];
    classes.iter().for_each(|c| counts[*c] += 1);
    // The first of equal counts, like argmax.
    (0..n_classes).fold(0, |best, c| if counts[c] > counts[best] { c } else { best })
}

/// The confusion matrix of `model` on labelled `rows`, e.g. of another dataset. Panics on a label the model does
/// not know.
pub fn evaluate(model: &SentimentModel, rows: &[Row]) -> Confusion {
    let truth: Vec<usize> = rows
        .iter()
        .map(|r| {
            model
                .labels
                .iter()
                .position(|l| l == r.label)
                .expect("the model knows every label of the rows")
        })
        .collect();
    let predicted: Vec<usize> = rows
        .iter()
        .map(|r| {
            argmax(
                &model
                    .classifier
                    .margins(&model.vectorizer.transform(&r.text)),
            )
        })
        .collect();
    Confusion::from_pairs(model.labels.len(), &truth, &predicted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (Vec<&'static str>, Vec<&'static str>) {
        let texts = vec![
            "thanks, this is great work!",
            "great job, thanks a lot :)",
            "awesome, love it",
            "this is terrible and broken",
            "awful, this breaks everything :(",
            "I hate this, it is broken again",
            "the function returns a list",
            "moved the file to src",
            "updated the readme",
        ];
        let labels = vec![
            "positive", "positive", "positive", "negative", "negative", "negative", "neutral",
            "neutral", "neutral",
        ];
        (texts, labels)
    }

    fn small_params() -> Params {
        Params::fixed(
            FeatureParams {
                min_df: 1,
                ..FeatureParams::default()
            },
            0.5,
        )
    }

    #[test]
    fn a_tiny_model_learns_its_words_and_its_scores_sum_to_one() {
        let (texts, labels) = tiny();
        let model = SentimentModel::train(&texts, &labels, &small_params()).expect("trains");
        assert_eq!(model.labels(), ["negative", "neutral", "positive"]);
        let p = model.predict("great, thanks!");
        assert_eq!(p.label, "positive");
        assert!((p.scores.iter().map(|(_, s)| s).sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(
            model.predict("this is broken and terrible").label,
            "negative"
        );
        assert_eq!(
            model.predict_batch(&["updated the file"])[0].label,
            "neutral"
        );
    }

    #[test]
    fn saved_bytes_are_deterministic_and_load_back() {
        let (texts, labels) = tiny();
        let a = SentimentModel::train(&texts, &labels, &small_params()).expect("trains");
        let b = SentimentModel::train(&texts, &labels, &small_params()).expect("trains");
        assert_eq!(a.to_bytes(), b.to_bytes());
        let loaded = SentimentModel::from_bytes(&a.to_bytes()).expect("loads");
        assert_eq!(loaded.predict("awful work"), a.predict("awful work"));
        assert!(matches!(
            SentimentModel::from_bytes(b"not a model"),
            Err(ModelError::Decode(_))
        ));
    }

    #[test]
    fn training_refuses_bad_input() {
        assert!(matches!(
            SentimentModel::train(&["a", "b"], &["x"], &small_params()),
            Err(ModelError::LengthMismatch {
                texts: 2,
                labels: 1
            })
        ));
        assert!(matches!(
            SentimentModel::train(&["a", "b"], &["x", "x"], &small_params()),
            Err(ModelError::TooFewLabels(_))
        ));
    }

    #[test]
    fn the_inner_search_reports_every_candidate() {
        let (texts, labels) = tiny();
        let unigrams = FeatureParams {
            min_df: 1,
            ..unigram_features()
        };
        let params = Params {
            feature_sets: vec![small_params().feature_sets[0].clone(), unigrams],
            inner_folds: 3,
            c_grid: vec![0.5, 2.0],
            ..small_params()
        };
        let (model, summary) =
            SentimentModel::train_with_summary(&texts, &labels, &params).expect("trains");
        let tried: Vec<(usize, f64)> = summary
            .inner_scores
            .iter()
            .map(|(f, c, _)| (*f, *c))
            .collect();
        assert_eq!(tried, [(0, 0.5), (0, 2.0), (1, 0.5), (1, 2.0)]);
        assert!(!summary.grouped);
        assert_eq!(
            model.vectorizer().params(),
            &params.feature_sets[summary.feature_set]
        );
        assert!(summary.softmax_scale > 0.0);
    }

    #[test]
    fn inner_folds_keep_groups_whole() {
        let classes = [0, 1, 0, 1, 0, 1];
        let groups = [2, 2, 0, 0, 1, 1];
        let (folds, grouped) = inner_folds(
            &classes,
            Some(&groups),
            &Params {
                inner_folds: 2,
                ..small_params()
            },
        );
        assert!(grouped);
        // Groups 0 and 2 go to the first fold, group 1 to the second.
        assert_eq!(
            folds.iter().map(|f| f.test.clone()).collect::<Vec<_>>(),
            [vec![0, 1, 2, 3], vec![4, 5]]
        );
        let (_, grouped) = inner_folds(
            &classes,
            Some(&groups),
            &Params {
                inner_folds: 4,
                ..small_params()
            },
        );
        assert!(!grouped, "too few groups: drawn within labels instead");
    }
}
