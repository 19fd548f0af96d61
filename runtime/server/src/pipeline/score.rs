//! The model stage: every event of a type the sentiment features script reads (its `event_types()`, or every
//! type) through that script and the champion, each prediction kept once per event and version with its label
//! counters.
//!
//! It consumes every pipeline topic in its own consumer group, as the store writer does, and commits only after
//! the store kept the batch's predictions: a crash means redelivery, and the store keeps nothing twice and
//! counts an event once per model ([`forgecast_core::predictions`]). An event the features script fails on is
//! kept as a dead letter (stage `features`) and the stage goes on; events that arrive while the model has no
//! champion (every version rolled back) are passed over, counted, and said once in the log. What the scored
//! texts and labels look like is watched for drift ([`super::text_drift`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use forgecast_core::bus::Subscription;
use forgecast_core::predictions::{PredictionStore, StoredPrediction, excerpt};
use forgecast_core::store::Store;
use forgecast_core::{DeadLetter, Event, RecordBody};
use forgecast_models::SentimentModel;
use forgecast_script::{EventView, FeatureValue, Script, ScriptEngine};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::text_drift::{Sample, TextDrift};
use crate::backends::AnySubscription;
use crate::retry::{PIPELINE, retry};

/// The model the stage runs.
pub const SENTIMENT: &str = "sentiment";
/// Its features script.
pub const SENTIMENT_FEATURES: &str = "features/sentiment";
/// Records taken from the bus at once.
const BATCH: usize = 4096;

/// What the stage did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreReport {
    /// Events taken.
    pub events: u64,
    /// Predictions kept for the first time.
    pub kept: u64,
    /// Events the features script skipped (of a type it does not read, or it returned `()`).
    pub skipped: u64,
    /// Events the features script failed on (kept as dead letters).
    pub failed: u64,
    /// Events passed over because the model had no champion.
    pub unscored: u64,
}

/// What scoring one batch gave.
#[derive(Default)]
struct Scored {
    predictions: Vec<StoredPrediction>,
    /// What the drift monitor reads of each prediction's text, in the same order.
    samples: Vec<Sample>,
    letters: Vec<Arc<DeadLetter>>,
    skipped: u64,
}

/// Runs until the bus is closed and drained, or `stop` forces an end while the store is failing.
pub async fn run(
    mut subscription: AnySubscription,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> ScoreReport {
    let mut report = ScoreReport::default();
    let mut serving: Option<Option<u32>> = None;
    let mut drift = TextDrift::new(SENTIMENT);
    let metrics = shared.metrics.clone();
    let failed = || {
        metrics.store_retries.inc();
    };
    loop {
        let batch = match subscription.next_batch(BATCH).await {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(e) => {
                tracing::error!(component = "models", error = %e, "Bus failed; stopping the model stage.");
                break;
            }
        };
        let events: Vec<Arc<Event>> = batch
            .iter()
            .filter_map(|r| match &r.body {
                RecordBody::Event(event) => Some(event.clone()),
                RecordBody::DeadLetter(_) => None,
            })
            .collect();
        let Some(champion) = retry("champion", &PIPELINE, &stop, failed, || {
            shared.champions.get(&shared.store, SENTIMENT)
        })
        .await
        else {
            break;
        };
        let version = champion.as_ref().map(|(v, _)| *v);
        if serving != Some(version) {
            match version {
                Some(version) => tracing::info!(
                    component = "models",
                    model = SENTIMENT,
                    version,
                    "Scoring events with the champion."
                ),
                None => tracing::warn!(
                    component = "models",
                    model = SENTIMENT,
                    "No champion: events are not scored until a version is promoted (`forgecast models promote`)."
                ),
            }
            metrics
                .model_champion
                .get_or_create(&metrics.model(SENTIMENT))
                .set(version.map_or(0, i64::from));
            serving = Some(version);
        }
        let script = shared.host.scripts().get(SENTIMENT_FEATURES).cloned();
        let mut scored = match (champion, script) {
            (Some((version, model)), Some(script)) => {
                let engine = shared.host.engine().clone();
                let events = events.clone();
                tokio::task::spawn_blocking(move || {
                    score(&engine, &script, &model, version, &events)
                })
                .await
                .unwrap_or_default()
            }
            _ => {
                report.unscored += events.len() as u64;
                Scored::default()
            }
        };
        if !scored.predictions.is_empty() {
            let Some(languages) = retry("repo_meta", &PIPELINE, &stop, failed, || {
                languages_of(&shared, &scored.predictions)
            })
            .await
            else {
                break;
            };
            for (p, sample) in scored.predictions.iter_mut().zip(&mut scored.samples) {
                if p.language.is_none() {
                    p.language = languages.get(&p.repo).cloned();
                }
                if let Some(language) = &p.language {
                    sample.language.clone_from(language);
                }
            }
        }
        if !scored.letters.is_empty() {
            let letters = scored.letters.clone();
            if retry("write_dead_letters", &PIPELINE, &stop, failed, || {
                shared.store.write_dead_letters(letters.clone())
            })
            .await
            .is_none()
            {
                break;
            }
            metrics
                .dead_letters
                .get_or_create(&crate::metrics::StageLabel {
                    stage: "features".into(),
                })
                .inc_by(scored.letters.len() as u64);
        }
        let predictions = std::mem::take(&mut scored.predictions);
        let version = predictions.first().map(|p| p.version);
        let Some(outcome) = retry("write_predictions", &PIPELINE, &stop, failed, || {
            shared.store.write_predictions(predictions.clone())
        })
        .await
        else {
            tracing::error!(
                component = "models",
                "Shutdown forced while the store was failing; predictions not kept."
            );
            break;
        };
        if let Err(e) = subscription.commit().await {
            tracing::warn!(component = "models", error = %e, "Commit failed; the batch may be delivered again (harmless).");
        }
        if let Some(version) = version
            && let Err(e) = drift
                .add(&shared.store, version, std::mem::take(&mut scored.samples))
                .await
        {
            tracing::warn!(component = "models", model = SENTIMENT, error = %e, "Drift figures not kept this time.");
        }
        report.events += events.len() as u64;
        report.kept += outcome.inserted;
        report.skipped += scored.skipped;
        report.failed += scored.letters.len() as u64;
        metrics
            .predictions
            .get_or_create(&metrics.model(SENTIMENT))
            .inc_by(outcome.inserted);
        shared
            .scored
            .fetch_add(batch.len() as u64, Ordering::SeqCst);
    }
    report
}

/// The features script and the model on each event of a batch (CPU work, off the async runtime).
fn score(
    engine: &ScriptEngine,
    script: &Script,
    model: &SentimentModel,
    version: u32,
    events: &[Arc<Event>],
) -> Scored {
    let mut scored = Scored::default();
    for event in events {
        let text = match script.event_features(engine, EventView::new(event.clone())) {
            Ok(None) => None,
            Ok(Some(features)) => match features.get("text") {
                Some(FeatureValue::Text(text)) => Some(text.clone()),
                _ => {
                    scored.letters.push(Arc::new(features_letter(
                        script,
                        event,
                        "features returned no `text` string; the sentiment model reads #{ text: \"…\" }".into(),
                    )));
                    continue;
                }
            },
            Err(e) => {
                if scored.letters.is_empty() {
                    tracing::warn!(component = "models", script = %e.script, version = %e.version, line = e.line, event = %event.id, error = %e.message, "Features script failed on an event; event sent to dead letters.");
                }
                scored
                    .letters
                    .push(Arc::new(features_letter(script, event, e.message)));
                continue;
            }
        };
        let Some(text) = text else {
            scored.skipped += 1;
            continue;
        };
        let p = model.predict(&text);
        scored.samples.push(Sample::of(
            &text,
            event.created_at,
            &event.kind,
            event.language.as_deref(),
            &p.label,
        ));
        scored.predictions.push(StoredPrediction {
            event_id: event.id.clone(),
            model: SENTIMENT.into(),
            version,
            label: p.label,
            scores: p.scores.into_iter().collect(),
            at: event.created_at,
            repo: event.repo.clone(),
            org: event.org.clone(),
            language: event.language.clone(),
            excerpt: excerpt(&text),
        });
    }
    scored
}

fn features_letter(script: &Script, event: &Event, error: String) -> DeadLetter {
    DeadLetter {
        stage: "features".into(),
        error,
        script: Some(script.id().to_string()),
        version: Some(script.hash().to_string()),
        origin: None,
        raw: event.raw.to_string(),
    }
}

/// The languages of the predictions' repositories that carry none, from the cached repository metadata.
async fn languages_of(
    shared: &Shared,
    predictions: &[StoredPrediction],
) -> Result<HashMap<String, String>, forgecast_core::store::StoreError> {
    let mut names: Vec<String> = predictions
        .iter()
        .filter(|p| p.language.is_none())
        .map(|p| p.repo.clone())
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(shared
        .store
        .repo_meta(names)
        .await?
        .into_iter()
        .filter(|m| m.found)
        .filter_map(|m| m.language.map(|l| (m.name, l)))
        .collect())
}
