//! The model layer: the features, learners, metrics and evaluation behind Forgecast's models: the sentiment of
//! issue, review and comment text, and the forecasts of language shares and repository stars.
//!
//! - [`text`]: normalisation of developer discussions (quoted replies and code dropped; URLs, mentions and numbers
//!   as placeholders; emoticons and emoji kept) and tokenisation, with negation marking.
//! - [`sparse`]: sparse vectors and row matrices: dot products, L2 normalisation.
//! - [`tfidf`]: the tf-idf vectoriser (word and character n-grams) whose vocabulary and idf come from the training
//!   texts only, and the analysed corpus cross-validation reuses.
//! - [`linear`]: one-vs-rest linear SVMs trained by LIBLINEAR's dual coordinate descent; softmax and its scale.
//! - [`metrics`]: confusion matrices, per-class precision, recall and F1, macro-F1, accuracy.
//! - [`dataset`]: the labelled CSV files and the folds of a cross-validation.
//! - [`sentiment`]: [`SentimentModel`] (train, predict, save, load) and [`cross_validate`] with its baselines.
//! - [`forecast`]: share forecasts per language (naive, seasonal naive, SES, damped trend, Theta and their
//!   combination on the logit scale, renormalised, with empirical intervals), rolling-origin backtests with MASE
//!   and coverage, and the GitHut files as share series.
//! - [`growth`]: forecasts of a repository's stars half-years ahead (a drift damped by one factor fitted over all
//!   repositories), with intervals, its backtest beside the naive and drift baselines, and the GitHub-Ranking
//!   snapshots read as histories.
//! - [`online`]: feature hashing of a features script's map, FTRL-Proximal logistic regression learning one label
//!   at a time (the issue-outcome model), and the batch logistic regression refitted on a recent window.
//! - [`prequential`]: test-then-train scores of a stream of predictions (exact AUC, log-loss, Brier, positive
//!   rate), over everything, the last `n`, or per window, and the predictions waiting for a delayed label.
//! - [`drift`]: the population stability index of numbers and of categories, and the two-sample
//!   Kolmogorov–Smirnov statistic, between a reference and a current sample.
//! - [`promotion`]: a challenger retrained on the recent labels, set beside the champion on a window neither
//!   learnt, and the rule that promotes it.
//! - [`detect`]: change detectors for a stream of errors: Page-Hinkley and ADWIN.
//!
//! Everything here is written for sparse text: linfa, which the project uses for dense models, holds features in
//! dense arrays and its tf-idf recomputes idf on every batch it transforms, so one text could not be scored
//! with the training idf.

pub mod dataset;
pub mod detect;
pub mod drift;
pub mod forecast;
pub mod growth;
pub mod linear;
pub mod metrics;
pub mod online;
pub mod prequential;
pub mod promotion;
pub mod sentiment;
pub mod sparse;
pub mod text;
pub mod tfidf;

pub use sentiment::{Params, Prediction, SentimentModel, cross_validate};
