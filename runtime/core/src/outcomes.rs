//! What the streaming issue-outcome model keeps: a prediction for each opened issue until its label is known,
//! each label resolved exactly once, the learner's state with the last resolution it has learnt, and the
//! prequential evaluations.
//!
//! An issue's label is known when a `closed` event comes within the horizon of its opening (positive) or when
//! event time passes the opening plus the horizon without one (negative). Resolutions are numbered in the order
//! the store made them (`seq`); the learner's state says through which number it has learnt, so that after a
//! restart the resolutions after it are learnt again in the same order and nothing is learnt twice or lost.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::store::{StoreError, WriteOutcome};

/// An opened issue and what the model said of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    /// `owner/name#number`.
    pub issue: String,
    /// The opening event's id.
    pub event_id: String,
    /// The version that predicted.
    pub version: u32,
    /// The predicted probability of a close within the horizon.
    pub probability: f64,
    /// Event time of the opening, Unix seconds.
    pub opened_at: i64,
    /// The features the model saw, as JSON (learnt from when the label is known).
    pub features: String,
}

/// An issue whose label became known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// Its number in the order of resolution, from 1, per model.
    pub seq: u64,
    /// The issue and its prediction.
    #[serde(flatten)]
    pub opened: Opened,
    /// Event time at which the label became known.
    pub resolved_at: i64,
    /// Closed within the horizon.
    pub label: bool,
}

/// Prequential figures of one version over one window of resolutions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Model name.
    pub model: String,
    /// The version whose predictions were scored.
    pub version: u32,
    /// First and last resolution of the window (`seq`).
    pub first_seq: u64,
    /// See `first_seq`.
    pub last_seq: u64,
    /// Event time of the window's first and last resolution.
    pub from: i64,
    /// See `from`.
    pub to: i64,
    /// Resolutions scored.
    pub count: u64,
    /// Share of positives.
    pub positive_rate: f64,
    /// Area under the ROC curve, when both labels occur.
    pub auc: Option<f64>,
    /// Mean log-loss.
    pub log_loss: f64,
    /// Mean Brier score.
    pub brier: f64,
    /// Mean days from opening to the label being known.
    pub label_delay_days: f64,
}

/// What the retrain policy script decided after an evaluation window or at a change detector's alarm, with
/// what it was shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Model name.
    pub model: String,
    /// For a window's decision, the window it followed (its first resolution); for an alarm's, the resolution
    /// whose error set the detector off. One decision per window and one per alarm.
    pub window: u64,
    /// What called the policy.
    #[serde(default)]
    pub trigger: Trigger,
    /// Event time of the window's end or of the alarm's resolution, Unix seconds.
    pub at: i64,
    /// The champion's version.
    pub version: u32,
    /// Content hash of the policy script's version that decided.
    pub script: String,
    /// Whether to train a challenger.
    pub retrain: bool,
    /// The script's reason, or why there is no decision (the script failed).
    pub reason: String,
    /// The context `should_retrain(ctx)` was called with.
    pub context: serde_json::Value,
    /// What the retrain it asked for did; `None` when it asked for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrain_result: Option<Retrained>,
}

impl Decision {
    /// Puts decisions in the order they were taken: by event time (a window's is its end's), then resolution,
    /// an alarm before the decision of a window that starts at the same resolution; the order given otherwise.
    pub fn in_order(decisions: &mut [Decision]) {
        decisions.sort_by_key(|d| (d.at, d.window, d.trigger == Trigger::Window));
    }
}

/// What called the retrain policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// An evaluation window ended (the schedule).
    #[default]
    Window,
    /// The change detector fired on the prediction errors.
    Alarm,
}

impl Trigger {
    /// The name kept in the store and shown to the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Window => "window",
            Trigger::Alarm => "alarm",
        }
    }
}

/// A retrain and its trial: the challenger and the champion scored on the same labelled window, which the
/// challenger did not learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retrained {
    /// The challenger's registered version; `None` when it could not be trained or kept.
    pub challenger: Option<u32>,
    /// Whether it was promoted to champion.
    pub promoted: bool,
    /// The metric compared (`auc`).
    pub metric: String,
    /// The champion's value of it on the window.
    pub champion_score: f64,
    /// The challenger's.
    pub challenger_score: f64,
    /// The gain the challenger needed.
    pub margin: f64,
    /// Both models' mean log-loss on the window.
    pub champion_log_loss: f64,
    /// The challenger's.
    pub challenger_log_loss: f64,
    /// How the challenger learnt them: `online` (the learner from zero) or `batch` (fitted at once, then served
    /// online).
    #[serde(default = "online")]
    pub candidate: String,
    /// The resolutions it learnt (first and last).
    pub trained_on: (u64, u64),
    /// The resolutions both were scored on (first and last).
    pub evaluated_on: (u64, u64),
    /// Why it was promoted or not, in words.
    pub reason: String,
}

fn online() -> String {
    "online".into()
}

/// How far a window's inputs and predictions moved from the version's reference window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Model name.
    pub model: String,
    /// The version serving.
    pub version: u32,
    /// The window (its first resolution).
    pub window: u64,
    /// Event time of the window's first and last label, Unix seconds.
    pub from: i64,
    /// See `from`.
    pub to: i64,
    /// Examples in the window.
    pub count: u64,
    /// The reference window: the version's first.
    pub reference: DriftReference,
    /// Per feature, largest PSI first.
    pub features: Vec<FeatureDrift>,
    /// The predicted probabilities' drift.
    pub prediction: FeatureDrift,
}

/// The window a drift is measured against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReference {
    /// Event time of its first and last label.
    pub from: i64,
    /// See `from`.
    pub to: i64,
    /// Examples in it.
    pub count: u64,
}

/// One feature's drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// Its name.
    pub feature: String,
    /// `numeric` or `categorical`.
    pub kind: String,
    /// Population stability index (fixed bins from the reference; categories with an "other" bin).
    pub psi: f64,
    /// Two-sample Kolmogorov–Smirnov statistic, for numbers.
    pub ks: Option<f64>,
}

/// Where the streaming model's state lives.
pub trait OutcomeStore: Send + Sync + 'static {
    /// Keeps the predictions of issues not opened before for `model` (the first opening counts).
    fn open_issues(
        &self,
        model: &str,
        opened: Vec<Opened>,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// Resolves, in one step: each issue of `closed` (issue, close time) still pending and closed within
    /// `horizon` seconds of its opening, as positive; then every issue still pending whose opening is more than
    /// `horizon` before `now`, as negative. Returns the resolutions made, numbered, in order.
    fn resolve(
        &self,
        model: &str,
        closed: Vec<(String, i64)>,
        now: i64,
        horizon: i64,
    ) -> impl Future<Output = Result<Vec<Resolution>, StoreError>> + Send;

    /// The resolutions numbered after `seq`, in order, at most `limit`.
    fn resolutions_after(
        &self,
        model: &str,
        seq: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Resolution>, StoreError>> + Send;

    /// Issues waiting for their label.
    fn pending_count(&self, model: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Keeps the learner's state and the last resolution it has learnt.
    fn put_learner(
        &self,
        model: &str,
        state: Vec<u8>,
        through_seq: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The learner's state and the last resolution it has learnt, if kept.
    fn learner(
        &self,
        model: &str,
    ) -> impl Future<Output = Result<Option<(Vec<u8>, u64)>, StoreError>> + Send;

    /// Keeps an evaluation (the same version and window again replaces it).
    fn record_evaluation(
        &self,
        evaluation: Evaluation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every evaluation of `model`, oldest window first.
    fn evaluations(
        &self,
        model: &str,
    ) -> impl Future<Output = Result<Vec<Evaluation>, StoreError>> + Send;

    /// Keeps a retrain decision (the same model, window and trigger again replaces it).
    fn record_decision(
        &self,
        decision: Decision,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The decisions about `model`, oldest window (or alarm) first.
    fn decisions(
        &self,
        model: &str,
    ) -> impl Future<Output = Result<Vec<Decision>, StoreError>> + Send;

    /// Keeps a window's drift figures (the same version and window again replaces them).
    fn record_drift(&self, drift: Drift) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The drift figures of `model`, oldest window first.
    fn drift(&self, model: &str) -> impl Future<Output = Result<Vec<Drift>, StoreError>> + Send;
}
