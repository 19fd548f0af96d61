//! The sentiment model on the GitHub gold standard (`data/se-sentiment/github.csv`): trained on the nine training
//! folds of fold 0, scored on fold 0, saved and loaded back.
//!
//! Debug builds are slow, so the tests train the configuration the full evaluation chooses (word unigrams, `C`
//! 0.5; see `models/sentiment/README.md`) rather than running the whole inner search, and a small search on a
//! subset checks that the search itself runs end to end.

use std::path::PathBuf;

use forgecast_models::dataset::{Folds, Row, SENTIMENT_LABELS, read_rows};
use forgecast_models::sentiment::{self, SentimentModel, unigram_features};
use forgecast_models::{Params, cross_validate};

fn github() -> Vec<Row> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/se-sentiment/github.csv");
    read_rows(&path).expect("the GitHub gold standard is in the repository")
}

#[test]
fn fold_0_is_predicted_well_above_the_majority_and_survives_save_and_load() {
    let rows = github();
    assert_eq!(rows.len(), 7122);
    let (test, train): (Vec<&Row>, Vec<&Row>) =
        rows.iter().partition(|r| r.fold == "github_test_0");
    assert_eq!((train.len(), test.len()), (6409, 713));
    let texts: Vec<&str> = train.iter().map(|r| r.text.as_str()).collect();
    let labels: Vec<&str> = train.iter().map(|r| r.label).collect();
    let model = SentimentModel::train(&texts, &labels, &Params::fixed(unigram_features(), 0.5))
        .expect("trains");
    assert_eq!(model.labels(), SENTIMENT_LABELS);

    let test_rows: Vec<Row> = test.iter().map(|r| (*r).clone()).collect();
    let confusion = sentiment::evaluate(&model, &test_rows);
    // The release evaluation measured 0.797 on this fold; the majority label scores 0.199.
    let macro_f1 = confusion.macro_f1();
    assert!(macro_f1 > 0.77, "macro-F1 {macro_f1:.4} on fold 0");
    for (class, label) in SENTIMENT_LABELS.iter().enumerate() {
        let scores = confusion.class_scores(class);
        assert!(scores.f1 > 0.7, "{label}: {scores:?}");
    }

    let bytes = model.to_bytes();
    let loaded = SentimentModel::from_bytes(&bytes).expect("loads");
    assert_eq!(
        loaded.to_bytes(),
        bytes,
        "saving a loaded model gives the same bytes"
    );
    let test_texts: Vec<&str> = test.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(
        loaded.predict_batch(&test_texts),
        model.predict_batch(&test_texts)
    );
    let again = SentimentModel::train(&texts, &labels, &Params::fixed(unigram_features(), 0.5))
        .expect("trains");
    assert_eq!(again.to_bytes(), bytes, "training is deterministic");
}

#[test]
fn the_nested_search_runs_on_a_subset() {
    // Every tenth row keeps all ten named folds; two word feature sets and two values of C keep it quick in debug.
    let rows: Vec<Row> = github().into_iter().step_by(10).collect();
    let defaults = Params::default();
    let params = Params {
        feature_sets: vec![
            defaults.feature_sets[0].clone(),
            defaults.feature_sets[2].clone(),
        ],
        c_grid: vec![0.25, 1.0],
        ..defaults
    };
    let mut seen = 0;
    let report = cross_validate(&rows, &Folds::Named, &params, &mut |_| seen += 1);
    assert_eq!((seen, report.folds.len()), (10, 10));
    assert_eq!(report.pooled.total(), rows.len() as u64);
    assert!(
        report
            .folds
            .iter()
            .all(|f| f.summary.grouped && f.summary.inner_scores.len() == 4)
    );
    let (mean, _) = report.macro_f1();
    let (majority, _) = report.majority_f1();
    eprintln!("subset: macro-F1 {mean:.4}, majority {majority:.4}");
    assert!(
        mean > 0.7 && majority < 0.25,
        "macro-F1 {mean:.4}, majority {majority:.4}"
    );
}
