//! After each evaluation window of the issue-outcome model, and at each alarm of its change detector: the retrain
//! policy's decision, and the retrain it asks for.
//!
//! `policies/retrain.rhai` is called with the documented context; every decision, yes or no, is one log line
//! and is kept. A retrain runs in one process of those sharing the store (the lease `train/issue_outcome`), off
//! the async runtime: the challenger learns the most recent labels before the window (the [`PROMOTION`] rule's
//! number, or the policy's `labels`), as the online learner from zero or, when the policy asks for `batch`, fitted
//! at once; the champion is the learner as it stood at the window's start, and both score the window (at an
//! alarm, the window so far), which neither learnt ([`forgecast_models::promotion`]). The challenger is registered either way,
//! with its figures; it becomes the champion only when the rule says so, and every process then takes it over
//! ([`super::outcome`] adopts the registry's champion).

use forgecast_core::outcomes::{
    Decision, Drift, DriftReference, Evaluation, FeatureDrift, OutcomeStore, Resolution, Retrained,
    Trigger,
};
use forgecast_core::registry::{Alias, NewVersion, Registry};
use forgecast_core::store::StoreError;
use forgecast_core::time::now_unix;
use forgecast_models::drift::{CategoryBins, NumericBins, ks_statistic};
use forgecast_models::online::{BatchParams, Features, OnlineLogistic};
use forgecast_models::promotion::{Candidate, Rule, Trial, trial};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::outcome::{Learner, OUTCOME, WINDOW, evaluate, served_params};
use crate::retry::{PIPELINE, retry};

/// The retrain policy script.
pub const RETRAIN_POLICY: &str = "policies/retrain";

/// The promotion rule of the issue-outcome model (`[promotion]` in `models/issue_outcome/model.toml`): a
/// challenger learns the 200 most recent labels before the window (one window: it forgets what no longer holds),
/// and must gain 0.01 of log-loss and at least 0.02 of AUC over the champion on the window, its AUC gain and its
/// AUC above 0.5 both 2 standard errors beyond chance, and beat the base rate's log-loss by 0.01.
pub const PROMOTION: Rule = Rule {
    train_labels: 200,
    margin: 0.02,
    log_loss_margin: 0.01,
    sigmas: 2.0,
};

/// Numeric features whose drift is watched: the script's counts of an opened issue.
const NUMERIC: [&str; 3] = ["title_words", "body_chars", "labels"];
/// Categorical ones.
const CATEGORICAL: [&str; 2] = ["author_association", "repo"];

/// The values of a feature in the features kept with resolutions.
fn feature_values(rows: &[Resolution], name: &str) -> Vec<serde_json::Value> {
    rows.iter()
        .filter_map(|r| {
            let mut features: serde_json::Value = serde_json::from_str(&r.opened.features).ok()?;
            Some(features[name].take()).filter(|v| !v.is_null())
        })
        .collect()
}

/// How far `rows` moved from `reference`: PSI (10 bins from the reference for numbers; categories with an
/// "other" bin) and KS for each watched feature and for the predicted probabilities, largest PSI first.
fn drift(
    reference: &[Resolution],
    rows: &[Resolution],
    evaluation: &Evaluation,
    version: u32,
) -> Drift {
    let numeric = |name: &str, before: Vec<f64>, now: Vec<f64>| FeatureDrift {
        feature: name.to_string(),
        kind: "numeric".into(),
        psi: if before.is_empty() || now.is_empty() {
            0.0
        } else {
            NumericBins::from_reference(&before, 10).psi(&now)
        },
        ks: (!before.is_empty() && !now.is_empty()).then(|| ks_statistic(&before, &now)),
    };
    let numbers = |rows: &[Resolution], name: &str| -> Vec<f64> {
        feature_values(rows, name)
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect()
    };
    let words = |rows: &[Resolution], name: &str| -> Vec<String> {
        feature_values(rows, name)
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect()
    };
    let mut features: Vec<FeatureDrift> = NUMERIC
        .iter()
        .map(|name| numeric(name, numbers(reference, name), numbers(rows, name)))
        .chain(CATEGORICAL.iter().map(|name| {
            let (before, now) = (words(reference, name), words(rows, name));
            FeatureDrift {
                feature: name.to_string(),
                kind: "categorical".into(),
                psi: if before.is_empty() || now.is_empty() {
                    0.0
                } else {
                    CategoryBins::from_reference(&before).psi(&now)
                },
                ks: None,
            }
        }))
        .collect();
    features.sort_by(|a, b| b.psi.total_cmp(&a.psi));
    let probabilities =
        |rows: &[Resolution]| -> Vec<f64> { rows.iter().map(|r| r.opened.probability).collect() };
    Drift {
        model: OUTCOME.into(),
        version,
        window: evaluation.first_seq,
        from: evaluation.from,
        to: evaluation.to,
        count: rows.len() as u64,
        reference: DriftReference {
            from: reference.first().map_or(0, |r| r.resolved_at),
            to: reference.last().map_or(0, |r| r.resolved_at),
            count: reference.len() as u64,
        },
        features,
        prediction: numeric("probability", probabilities(reference), probabilities(rows)),
    }
}

/// The feature maps and labels of resolutions.
fn examples(rows: &[Resolution]) -> Vec<(Features, bool)> {
    rows.iter()
        .map(|r| {
            (
                serde_json::from_str(&r.opened.features).unwrap_or_default(),
                r.label,
            )
        })
        .collect()
}

/// What the policy asked a retrain to be.
#[derive(Clone, Copy, Debug)]
struct Asked {
    candidate: Candidate,
    labels: usize,
}

impl Asked {
    /// From the policy's optional `challenger` and `labels`; the online learner on the rule's labels by default.
    fn from_policy(challenger: Option<&str>, labels: Option<u64>) -> Asked {
        let ftrl = served_params();
        Asked {
            candidate: match challenger {
                Some("batch") => Candidate::Batch {
                    ftrl,
                    batch: BatchParams::default(),
                },
                _ => Candidate::Online { ftrl },
            },
            labels: labels.map_or(PROMOTION.train_labels, |n| n as usize),
        }
    }
}

/// Decides after the window `evaluation` scored (`rows` its resolutions), retrains when the policy asks, and
/// keeps the decision. `Some(true)` when a new champion was promoted, `None` when shutdown was forced while the
/// store was failing.
pub(super) async fn after_window(
    shared: &Shared,
    learner: &mut Learner,
    evaluation: &Evaluation,
    rows: &[Resolution],
    stop: &CancellationToken,
) -> Option<bool> {
    let called = Called {
        trigger: Trigger::Window,
        evaluation,
        rows,
    };
    after(shared, learner, called, stop).await
}

/// Decides at once when the change detector fired on the error of resolution `seq`, which lies inside a window
/// (an alarm on a window's last resolution is that window's to answer): the context is the window so far, and
/// a retrain's trial is scored on it. As [`after_window`] otherwise.
pub(super) async fn after_alarm(
    shared: &Shared,
    learner: &mut Learner,
    seq: u64,
    stop: &CancellationToken,
) -> Option<bool> {
    let metrics = &shared.metrics;
    let failed = || {
        metrics.store_retries.inc();
    };
    let start = seq / WINDOW * WINDOW;
    let rows = retry("resolutions_after", &PIPELINE, stop, failed, || {
        shared
            .store
            .resolutions_after(OUTCOME, start, (seq - start) as usize)
    })
    .await?;
    let so_far = evaluate(&rows, learner.version);
    let called = Called {
        trigger: Trigger::Alarm,
        evaluation: &so_far,
        rows: &rows,
    };
    after(shared, learner, called, stop).await
}

/// What the policy is called on: the trigger, and the window's figures and resolutions (at an alarm, the window
/// so far).
#[derive(Clone, Copy)]
struct Called<'a> {
    trigger: Trigger,
    evaluation: &'a Evaluation,
    rows: &'a [Resolution],
}

/// The decision after a window, or at an alarm, and the retrain it asks for.
async fn after(
    shared: &Shared,
    learner: &mut Learner,
    called: Called<'_>,
    stop: &CancellationToken,
) -> Option<bool> {
    let Called { trigger, rows, .. } = called;
    let metrics = &shared.metrics;
    let failed = || {
        metrics.store_retries.inc();
    };
    let (mut decision, asked) = decide(shared, learner, called, stop).await?;
    if decision.retrain {
        let window = decision.window;
        let done = || async {
            Ok(shared
                .store
                .decisions(OUTCOME)
                .await?
                .into_iter()
                .any(|d| d.window == window && d.trigger == trigger))
        };
        let result = std::sync::Mutex::new(None);
        let serving: &Learner = learner;
        let work = || async {
            let retrained = retrain(shared, serving, asked, rows, stop).await;
            *result.lock().unwrap_or_else(|e| e.into_inner()) = Some(retrained);
            Ok(())
        };
        if let Err(e) =
            crate::champions::once_per_store(&shared.store, "train/issue_outcome", done, work).await
        {
            tracing::warn!(component = "models", model = OUTCOME, error = %e, "The retrain's lease failed; the window is decided again later.");
            return Some(false);
        }
        match result.into_inner().unwrap_or_else(|e| e.into_inner()) {
            // Another process trained for this window and kept the decision.
            None => return Some(false),
            Some(None) => return None,
            Some(Some(retrained)) => decision.retrain_result = Some(retrained),
        }
    }
    let promoted = decision.retrain_result.as_ref().is_some_and(|r| r.promoted);
    retry("record_decision", &PIPELINE, stop, failed, || {
        shared.store.record_decision(decision.clone())
    })
    .await?;
    Some(promoted)
}

/// Trains the challenger `asked` for on the labels before the window `rows`, sets it beside the champion as it
/// stood at the window's start, registers it, and promotes it if the rule says so. `None` when shutdown was
/// forced while the store was failing.
async fn retrain(
    shared: &Shared,
    learner: &Learner,
    asked: Asked,
    rows: &[Resolution],
    stop: &CancellationToken,
) -> Option<Retrained> {
    let metrics = &shared.metrics;
    let failed = || {
        metrics.store_retries.inc();
    };
    let start = rows.first().map_or(1, |r| r.seq) - 1;
    let from = start.saturating_sub(asked.labels as u64);
    // The labels before the window only: never the window's own.
    let before = (start - from) as usize;
    let train = if before == 0 {
        Vec::new()
    } else {
        retry("resolutions_after", &PIPELINE, stop, failed, || {
            shared.store.resolutions_after(OUTCOME, from, before)
        })
        .await?
    };
    let evaluated_on = (start + 1, rows.last().map_or(start, |r| r.seq));
    let trained_on = (
        train.first().map_or(0, |r| r.seq),
        train.last().map_or(0, |r| r.seq),
    );
    let Some(champion) = learner.at_window_start(start) else {
        return Some(refused(
            asked,
            trained_on,
            evaluated_on,
            "the champion as it stood at the window's start is not kept (the window was learnt before this \
             process started); no fair trial",
        ));
    };
    let (train_examples, window) = (examples(&train), examples(rows));
    let began = std::time::Instant::now();
    let rule = Rule {
        train_labels: asked.labels,
        ..PROMOTION
    };
    let t: Trial = match tokio::task::spawn_blocking(move || {
        trial(&champion, &asked.candidate, &train_examples, &window, &rule)
    })
    .await
    {
        Ok(t) => t,
        Err(e) => {
            return Some(refused(
                asked,
                trained_on,
                evaluated_on,
                &format!("training failed: {e}"),
            ));
        }
    };
    let reason = if t.promote {
        format!(
            "AUC {:.3} against the champion's {:.3} and log-loss {:.3} against {:.3} on resolutions {}–{}: \
             better by the margins",
            t.challenger_figures.auc,
            t.champion.auc,
            t.challenger_figures.log_loss,
            t.champion.log_loss,
            evaluated_on.0,
            evaluated_on.1
        )
    } else {
        format!(
            "AUC {:.3} against the champion's {:.3} and log-loss {:.3} against {:.3} on resolutions {}–{}: \
             not better by the margins (AUC +{} and {}σ of chance, log-loss −{})",
            t.challenger_figures.auc,
            t.champion.auc,
            t.challenger_figures.log_loss,
            t.champion.log_loss,
            evaluated_on.0,
            evaluated_on.1,
            PROMOTION.margin,
            PROMOTION.sigmas,
            PROMOTION.log_loss_margin
        )
    };
    let artifact = t.challenger.to_bytes();
    let new = NewVersion {
        name: OUTCOME.into(),
        created: now_unix(),
        training: format!(
            "retrained: {} on resolutions {}–{} ({} labels), then online from the stream; scored beside version \
             {} on resolutions {}–{}",
            match asked.candidate {
                Candidate::Online { .. } => "FTRL-Proximal from zero",
                Candidate::Batch { .. } =>
                    "logistic regression fitted at once (C by 5-fold cross-validation), served by FTRL-Proximal",
            },
            trained_on.0,
            trained_on.1,
            train.len(),
            learner.version,
            evaluated_on.0,
            evaluated_on.1
        ),
        params: serde_json::json!({
            "learner": "FTRL-Proximal logistic regression on hashed features",
            "challenger": asked.candidate,
            "ftrl": served_params(),
            "horizon_days": super::outcome::HORIZON / 86_400,
            "trained_through": start,
            "promotion": rule,
        }),
        metrics: [
            ("auc".to_string(), t.challenger_figures.auc),
            ("log_loss".to_string(), t.challenger_figures.log_loss),
            ("champion_auc".to_string(), t.champion.auc),
            ("champion_log_loss".to_string(), t.champion.log_loss),
        ]
        .into_iter()
        .collect(),
        sha256: format!("{:x}", Sha256::digest(&artifact)),
        size: artifact.len() as u64,
    };
    let version = retry("register", &PIPELINE, stop, failed, || {
        shared.store.register(new.clone(), artifact.clone())
    })
    .await?;
    let alias = if t.promote {
        Alias::Champion
    } else {
        Alias::Challenger
    };
    retry("set_alias", &PIPELINE, stop, failed, || {
        shared.store.set_alias(OUTCOME, version, alias)
    })
    .await?;
    tracing::info!(component = "models", model = OUTCOME, challenger = version, kind = asked.candidate.kind(), champion = learner.version, promoted = t.promote, seconds = began.elapsed().as_secs_f64(), reason = %reason, "Retrained.");
    Some(Retrained {
        challenger: Some(version),
        promoted: t.promote,
        metric: "auc".into(),
        champion_score: t.champion.auc,
        challenger_score: t.challenger_figures.auc,
        margin: PROMOTION.margin,
        champion_log_loss: t.champion.log_loss,
        challenger_log_loss: t.challenger_figures.log_loss,
        candidate: asked.candidate.kind().into(),
        trained_on,
        evaluated_on,
        reason,
    })
}

/// A retrain that trained nothing, and why (no challenger, no figures).
fn refused(
    asked: Asked,
    trained_on: (u64, u64),
    evaluated_on: (u64, u64),
    reason: &str,
) -> Retrained {
    tracing::warn!(
        component = "models",
        model = OUTCOME,
        reason,
        "Retrain not done."
    );
    Retrained {
        challenger: None,
        promoted: false,
        metric: "auc".into(),
        champion_score: 0.0,
        challenger_score: 0.0,
        margin: PROMOTION.margin,
        champion_log_loss: 0.0,
        challenger_log_loss: 0.0,
        candidate: asked.candidate.kind().into(),
        trained_on,
        evaluated_on,
        reason: reason.into(),
    }
}

/// Asks `policies/retrain.rhai` whether to train a challenger, after an evaluation window or at an alarm: its
/// context is what called it, the champion's age (event time since its first window), labels learnt, the
/// window's error (1 − AUC; at an alarm, of the window so far) against the first window's, the largest PSI of the
/// watched features between the first window and this one (a window's drift figures are kept in `drift`), the
/// change detector's alarms since the last decision, and the labels the window holds. Every decision, yes or no,
/// is one log line; a failing script is a decision not to retrain, with its error as the reason, and the loop
/// goes on.
async fn decide(
    shared: &Shared,
    learner: &mut Learner,
    called: Called<'_>,
    stop: &CancellationToken,
) -> Option<(Decision, Asked)> {
    let Called {
        trigger,
        evaluation,
        rows,
    } = called;
    let metrics = &shared.metrics;
    let failed = || {
        metrics.store_retries.inc();
    };
    // The serving version's first window: read once, then kept with the learner.
    if learner.first_window.is_none() {
        let windows = retry("evaluations", &PIPELINE, stop, failed, || {
            shared.store.evaluations(OUTCOME)
        })
        .await?;
        learner.first_window = windows.into_iter().find(|e| e.version == learner.version);
    }
    let first = learner
        .first_window
        .clone()
        .unwrap_or_else(|| evaluation.clone());
    let start = first.first_seq.saturating_sub(1);
    let reference = retry("resolutions_after", &PIPELINE, stop, failed, || {
        shared
            .store
            .resolutions_after(OUTCOME, start, WINDOW as usize)
    })
    .await?;
    let drift = drift(&reference, rows, evaluation, learner.version);
    let drift_psi = drift.features.iter().map(|f| f.psi).fold(0.0, f64::max);
    if trigger == Trigger::Window {
        retry("record_drift", &PIPELINE, stop, failed, || {
            shared.store.record_drift(drift.clone())
        })
        .await?;
    }
    let error = |e: &Evaluation| 1.0 - e.auc.unwrap_or(0.5);
    let context = serde_json::json!({
        "model": OUTCOME,
        "trigger": trigger.as_str(),
        "window_labels": rows.len(),
        "age_days": ((evaluation.to - first.from) as f64 / 86_400.0).round(),
        "new_labels": evaluation.last_seq - start,
        "live_error": error(evaluation),
        "baseline_error": error(&first),
        "drift_psi": drift_psi,
        "alarms": learner.alarms,
    });
    learner.alarms = 0;
    let script = shared.host.scripts().get(RETRAIN_POLICY).cloned();
    let (hash, retrain, reason, asked) = match &script {
        None => (
            String::new(),
            false,
            format!("no {RETRAIN_POLICY} script"),
            Asked::from_policy(None, None),
        ),
        Some(script) => {
            let ctx = forgecast_script::engine::json_to_dynamic(&context);
            match script.should_retrain(shared.host.engine(), ctx) {
                Ok(d) => (
                    script.hash().to_string(),
                    d.retrain,
                    d.reason,
                    Asked::from_policy(d.challenger.as_deref(), d.labels),
                ),
                Err(e) => {
                    tracing::warn!(component = "models", model = OUTCOME, script = %e.script, version = %e.version, line = e.line, error = %e.message, "Retrain policy failed; no retraining this time.");
                    (
                        script.hash().to_string(),
                        false,
                        format!("policy failed: {}", e.message),
                        Asked::from_policy(None, None),
                    )
                }
            }
        }
    };
    // A window's decision is keyed by its first resolution, an alarm's by the resolution that set it off.
    let window = match trigger {
        Trigger::Window => evaluation.first_seq,
        Trigger::Alarm => evaluation.last_seq,
    };
    tracing::info!(component = "models", model = OUTCOME, version = learner.version, script = RETRAIN_POLICY, script_version = %hash, trigger = trigger.as_str(), window, retrain, challenger = asked.candidate.kind(), labels = asked.labels, reason = %reason, "Retrain policy decided.");
    let decision = Decision {
        model: OUTCOME.into(),
        window,
        trigger,
        at: evaluation.to,
        version: learner.version,
        script: hash,
        retrain,
        reason,
        context,
        retrain_result: None,
    };
    Some((decision, asked))
}

/// The learner a version's artifact holds, and the last resolution it learnt (`trained_through` in the
/// version's parameters; 0 for a zero start).
pub(super) async fn artifact_learner(
    store: &crate::backends::AnyStore,
    version: u32,
) -> Result<Option<(OnlineLogistic, u64)>, StoreError> {
    let versions = store.versions(OUTCOME).await?;
    let Some(v) = versions.iter().find(|v| v.version == version) else {
        return Ok(None);
    };
    let through = v.meta.params["trained_through"].as_u64().unwrap_or(0);
    let Some(bytes) = store.artifact(OUTCOME, version).await? else {
        return Ok(None);
    };
    match OnlineLogistic::from_bytes(&bytes) {
        Ok(model) => Ok(Some((model, through))),
        Err(e) => {
            tracing::warn!(component = "models", model = OUTCOME, version, error = %e, "A version's artifact cannot be read.");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `models/issue_outcome/model.toml` declares what the runtime does.
    #[test]
    fn the_model_file_declares_the_served_settings() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/issue_outcome/model.toml");
        let spec: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let promotion = &spec["promotion"];
        assert_eq!(
            promotion["train_labels"].as_integer(),
            Some(PROMOTION.train_labels as i64)
        );
        assert_eq!(promotion["margin"].as_float(), Some(PROMOTION.margin));
        assert_eq!(
            promotion["log_loss_margin"].as_float(),
            Some(PROMOTION.log_loss_margin)
        );
        assert_eq!(promotion["sigmas"].as_float(), Some(PROMOTION.sigmas));
        let params = &spec["params"];
        let served = served_params();
        assert_eq!(params["alpha"].as_float(), Some(served.alpha));
        assert_eq!(params["beta"].as_float(), Some(served.beta));
        assert_eq!(params["l1"].as_float(), Some(served.l1));
        assert_eq!(params["l2"].as_float(), Some(served.l2));
        assert_eq!(
            params["hash_bits"].as_integer(),
            Some(i64::from(served.bits))
        );
        assert_eq!(
            spec["evaluation"]["window"].as_integer(),
            Some(WINDOW as i64)
        );
    }
}
