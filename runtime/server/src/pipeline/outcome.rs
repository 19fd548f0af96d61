//! The streaming issue-outcome stage: will an issue opened now be closed within the horizon (30 days)?
//!
//! It consumes every pipeline topic in its own consumer group. An `IssuesEvent` `opened` goes through
//! `scripts/features/issue_outcome.rhai` and the online learner, and the prediction is kept until the label is
//! known ([`forgecast_core::outcomes`]): a `closed` event within the horizon is a positive, event time passing
//! the horizon a negative, so that backfills and replays behave like live data. The learner (FTRL-Proximal
//! logistic regression on hashed features, `forgecast_models::online`) learns each label once, in the order the
//! store resolved them; its state is kept with the last resolution learnt, and a restart learns the ones after
//! it again. Every [`WINDOW`] resolutions, the predictions made before their labels were known are scored
//! (prequential AUC, log-loss, Brier, positive rate, label delay) and kept in `evaluations`, and the retrain
//! policy decides ([`super::retrain`]); when the change detector fires inside a window, learning stops at that
//! label and the policy decides at once.
//!
//! The learner serves the registry's champion: each version's learner is kept under its own name
//! ([`learner_key`]), and when the champion changes (a promotion by the retrain, or `forgecast models promote` by
//! hand) every process takes it over within [`crate::champions::RECHECK`]: the version's kept learner if there is
//! one, else its artifact, then learns the labels after the last one it had learnt.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use forgecast_core::bus::Subscription;
use forgecast_core::json_path::value_at;
use forgecast_core::outcomes::{Evaluation, Opened, OutcomeStore, Resolution, Trigger};
use forgecast_core::registry::{Alias, NewVersion, Registry, champion};
use forgecast_core::store::StoreError;
use forgecast_core::time::now_unix;
use forgecast_core::{Event, RecordBody};
use forgecast_models::detect::{Detector, PageHinkley};
use forgecast_models::online::{Features, FtrlParams, OnlineLogistic};
use forgecast_models::prequential::scores;
use forgecast_script::{EventView, FeatureValue};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::backends::{AnyStore, AnySubscription};
use crate::retry::{PIPELINE, retry};

/// The model's registered name.
pub const OUTCOME: &str = "issue_outcome";
/// Its features script.
pub const OUTCOME_FEATURES: &str = "features/issue_outcome";
/// An issue closed within this many seconds of its opening is a positive.
pub const HORIZON: i64 = 30 * 86_400;
/// Resolutions per evaluation window.
pub const WINDOW: u64 = 200;
/// Records taken from the bus at once.
const BATCH: usize = 4096;
/// Resolutions learnt per store read.
const LEARN_BATCH: usize = 5000;

/// The learner's settings: FTRL-Proximal with α 1, β 1, L1 0, L2 1 on 2^20 hashed coordinates, chosen by
/// prequential AUC on the first 1,000 issues of the Jira history only (`models/issue_outcome/README.md`).
pub fn served_params() -> FtrlParams {
    FtrlParams {
        alpha: 1.0,
        beta: 1.0,
        l1: 0.0,
        l2: 1.0,
        bits: 20,
    }
}

/// What the stage did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeReport {
    /// Opened issues predicted and kept for the first time.
    pub opened: u64,
    /// Labels learnt.
    pub learnt: u64,
    /// Evaluation windows recorded.
    pub evaluations: u64,
}

/// The name the learner of `version` is kept under.
pub fn learner_key(version: u32) -> String {
    format!("{OUTCOME}/v{version}")
}

/// The name the learner of `version` as it stood at the start of the latest window is kept under.
fn window_start_key(version: u32) -> String {
    format!("{OUTCOME}/v{version}/window-start")
}

/// The learner and how far it has learnt.
pub(super) struct Learner {
    pub(super) model: OnlineLogistic,
    pub(super) through: u64,
    /// The registry's version it serves.
    pub(super) version: u32,
    /// The learner as it stood at the start of each window not decided yet (having learnt a multiple of
    /// [`WINDOW`] labels), for the retrain's trial of that window.
    starts: BTreeMap<u64, OnlineLogistic>,
    /// Page-Hinkley on the absolute error of each prediction whose label is learnt (River's defaults).
    detector: PageHinkley,
    /// Alarms since the last decision.
    pub(super) alarms: u64,
    /// The first evaluation window of the version served, once it has one (the retrain policy's baseline and the
    /// drift reference).
    pub(super) first_window: Option<Evaluation>,
    /// Labels up to this one were learnt before by an earlier learner (an adoption learns them again): the
    /// detector has seen their errors.
    seen_through: u64,
    /// Whether the windows completed before this learner took over have been looked at.
    windows_checked: bool,
    /// When the registry's champion was last asked.
    checked: Instant,
}

impl Learner {
    /// The learner as it stood after learning `start` labels, if kept.
    pub(super) fn at_window_start(&self, start: u64) -> Option<OnlineLogistic> {
        self.starts.get(&start).cloned()
    }
}

/// The champion's number, registering the zero-start learner as version 1 on a store without one (one process
/// of those sharing the store does, under a lease).
async fn version(store: &AnyStore) -> Result<u32, StoreError> {
    let registered = crate::champions::once_per_store(
        store,
        "register/issue_outcome",
        || async { Ok(!store.versions(OUTCOME).await?.is_empty()) },
        || async { register_first(store).await.map_err(anyhow::Error::from) },
    )
    .await;
    if let Err(e) = registered {
        return Err(match e.downcast::<StoreError>() {
            Ok(e) => e,
            Err(e) => StoreError::Operation {
                operation: "register",
                reason: e.to_string(),
            },
        });
    }
    let versions = store.versions(OUTCOME).await?;
    Ok(champion(&versions)
        .or(versions.last())
        .map_or(1, |v| v.version))
}

async fn register_first(store: &AnyStore) -> Result<(), StoreError> {
    let artifact = OnlineLogistic::new(served_params()).to_bytes();
    let number = store
        .register(
            NewVersion {
                name: OUTCOME.into(),
                created: now_unix(),
                training: "online from the stream: each label learnt once as it becomes known, from a zero start"
                    .into(),
                params: serde_json::json!({
                    "learner": "FTRL-Proximal logistic regression on hashed features",
                    "ftrl": served_params(),
                    "horizon_days": HORIZON / 86_400,
                }),
                metrics: Default::default(),
                sha256: format!("{:x}", Sha256::digest(&artifact)),
                size: artifact.len() as u64,
            },
            artifact,
        )
        .await?;
    store.set_alias(OUTCOME, number, Alias::Champion).await
}

/// The learner serving the registry's champion: its kept learner, else its artifact (and the labels after it
/// learnt again by the stage).
async fn load(store: &AnyStore) -> Result<Learner, StoreError> {
    let version = version(store).await?;
    let mut learner = Learner {
        model: OnlineLogistic::new(served_params()),
        through: 0,
        version,
        starts: BTreeMap::new(),
        detector: PageHinkley::default(),
        alarms: 0,
        first_window: None,
        seen_through: 0,
        windows_checked: false,
        checked: Instant::now(),
    };
    adopt(&mut learner, read_version(store, version).await?);
    Ok(learner)
}

/// What serving a version starts from: its kept learner if there is one, else its artifact, and the learner as
/// it stood at the start of its latest window.
struct Served {
    version: u32,
    model: OnlineLogistic,
    through: u64,
    starts: BTreeMap<u64, OnlineLogistic>,
}

/// Reads what serving `version` starts from.
async fn read_version(store: &AnyStore, version: u32) -> Result<Served, StoreError> {
    let read = |bytes: &[u8]| match OnlineLogistic::from_bytes(bytes) {
        Ok(model) => Some(model),
        Err(e) => {
            tracing::warn!(component = "models", model = OUTCOME, version, error = %e, "A kept learner cannot be read; starting from the version's artifact.");
            None
        }
    };
    let kept = store
        .learner(&learner_key(version))
        .await?
        .and_then(|(bytes, through)| read(&bytes).map(|m| (m, through)));
    let (model, through) = match kept {
        Some(kept) => kept,
        None => super::retrain::artifact_learner(store, version)
            .await?
            .unwrap_or_else(|| (OnlineLogistic::new(served_params()), 0)),
    };
    let mut starts = BTreeMap::new();
    if let Some((bytes, start)) = store.learner(&window_start_key(version)).await?
        && let Some(model) = read(&bytes)
    {
        starts.insert(start, model);
    }
    if through.is_multiple_of(WINDOW) {
        starts.insert(through, model.clone());
    }
    Ok(Served {
        version,
        model,
        through,
        starts,
    })
}

/// Makes `learner` serve what was read. Labels it had learnt before are not shown to the change detector again.
fn adopt(learner: &mut Learner, served: Served) {
    learner.seen_through = learner.seen_through.max(learner.through);
    learner.model = served.model;
    learner.through = served.through;
    learner.version = served.version;
    learner.starts = served.starts;
    learner.detector = PageHinkley::default();
    learner.first_window = None;
    learner.windows_checked = false;
    learner.checked = Instant::now();
    tracing::info!(
        component = "models",
        model = OUTCOME,
        version = served.version,
        through = served.through,
        "Issue-outcome learner serving."
    );
}

/// `owner/name#number` of an issue event, and its action.
fn issue_of(event: &Event) -> Option<(String, String)> {
    if event.kind != "IssuesEvent" {
        return None;
    }
    // Two scans of the event's text cost less than a tree of all of it (issue bodies, users, labels).
    let number = value_at(&event.raw, &["payload", "issue", "number"])?.as_u64()?;
    let serde_json::Value::String(action) = value_at(&event.raw, &["payload", "action"])? else {
        return None;
    };
    Some((format!("{}#{number}", event.repo), action))
}

/// The script's features as the learner reads them.
fn learner_features(features: &forgecast_script::Features) -> Features {
    use forgecast_models::online::Value;
    features
        .iter()
        .map(|(name, value)| {
            let value = match value {
                FeatureValue::Number(n) => Value::Number(*n),
                FeatureValue::Text(t) => Value::Text(t.clone()),
                FeatureValue::Bool(b) => Value::Bool(*b),
            };
            (name.clone(), value)
        })
        .collect()
}

/// Runs until the bus is closed and drained, or `stop` forces an end while the store is failing.
pub async fn run(
    mut subscription: AnySubscription,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> OutcomeReport {
    let mut report = OutcomeReport::default();
    let metrics = shared.metrics.clone();
    let failed = || {
        metrics.store_retries.inc();
    };
    let Some(mut learner) = retry("outcome learner", &PIPELINE, &stop, failed, || {
        load(&shared.store)
    })
    .await
    else {
        return report;
    };
    loop {
        let batch = match subscription.next_batch(BATCH).await {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(e) => {
                tracing::error!(component = "models", error = %e, "Bus failed; stopping the issue-outcome stage.");
                break;
            }
        };
        let script = shared.host.scripts().get(OUTCOME_FEATURES).cloned();
        let engine = shared.host.engine().clone();
        let mut slice = Slice::default();
        let mut stopped = false;
        for record in &batch {
            let RecordBody::Event(event) = &record.body else {
                continue;
            };
            slice.now = slice.now.max(event.created_at);
            let Some((issue, action)) = issue_of(event) else {
                continue;
            };
            match action.as_str() {
                "closed" => slice.closed.push((issue, event.created_at)),
                "opened" => {
                    let Some(script) = &script else { continue };
                    let features = match script
                        .event_features(&engine, EventView::new(event.clone()))
                    {
                        Ok(Some(features)) => features,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(component = "models", script = %e.script, event = %event.id, error = %e.message, "Features script failed on an issue; not scored.");
                            continue;
                        }
                    };
                    let probability = learner.model.predict_proba(&learner_features(&features));
                    slice.opened.push(Opened {
                        issue,
                        event_id: event.id.clone(),
                        version: learner.version,
                        probability,
                        opened_at: event.created_at,
                        features: serde_json::to_string(&features).unwrap_or_default(),
                    });
                    // A backfill brings years in one batch: settle every few openings, so that each issue is
                    // predicted by a learner that has learnt the labels known at its opening.
                    if slice.opened.len() >= SLICE_OPENINGS {
                        if !settle(
                            &shared,
                            &mut learner,
                            std::mem::take(&mut slice),
                            &stop,
                            &mut report,
                        )
                        .await
                        {
                            stopped = true;
                            break;
                        }
                        slice.now = event.created_at;
                    }
                }
                _ => {}
            }
        }
        if stopped || !settle(&shared, &mut learner, slice, &stop, &mut report).await {
            break;
        }
        if let Err(e) = subscription.commit().await {
            tracing::warn!(component = "models", error = %e, "Commit failed; the batch may be delivered again (harmless).");
        }
        shared
            .outcome_taken
            .fetch_add(batch.len() as u64, Ordering::SeqCst);
    }
    report
}

/// Openings predicted between two settlements of a batch.
const SLICE_OPENINGS: usize = 16;

/// What part of a batch brings: openings predicted, closings, and the latest event time.
struct Slice {
    opened: Vec<Opened>,
    closed: Vec<(String, i64)>,
    now: i64,
}

impl Default for Slice {
    fn default() -> Self {
        Slice {
            opened: Vec::new(),
            closed: Vec::new(),
            now: i64::MIN,
        }
    }
}

/// Keeps a slice's openings, resolves what its closings and time make known, and learns it. `false` when
/// shutdown was forced while the store was failing.
async fn settle(
    shared: &Shared,
    learner: &mut Learner,
    slice: Slice,
    stop: &CancellationToken,
    report: &mut OutcomeReport,
) -> bool {
    let metrics = &shared.metrics;
    let failed = || {
        metrics.store_retries.inc();
    };
    if !slice.opened.is_empty() {
        let Some(outcome) = retry("open_issues", &PIPELINE, stop, failed, || {
            shared.store.open_issues(OUTCOME, slice.opened.clone())
        })
        .await
        else {
            return false;
        };
        report.opened += outcome.inserted;
    }
    if slice.now > i64::MIN || !slice.closed.is_empty() {
        let closed = slice.closed;
        if retry("resolve", &PIPELINE, stop, failed, || {
            shared
                .store
                .resolve(OUTCOME, closed.clone(), slice.now, HORIZON)
        })
        .await
        .is_none()
        {
            return false;
        }
    }
    match learn(shared, learner, stop).await {
        Some((learnt, evaluations)) => {
            report.learnt += learnt;
            report.evaluations += evaluations;
            true
        }
        None => false,
    }
}

/// Learns every resolution after the learner's, in order, keeps its state, and records each evaluation window
/// completed, with the retrain policy's decision after it. `None` when shutdown was forced while the store was
/// failing.
async fn learn(
    shared: &Shared,
    learner: &mut Learner,
    stop: &CancellationToken,
) -> Option<(u64, u64)> {
    let metrics = &shared.metrics;
    let failed = || {
        metrics.store_retries.inc();
    };
    let (mut learnt, mut evaluations) = (0, 0);
    let mut now = false;
    loop {
        // The registry's champion, taken over when it is not the version served (asked every RECHECK, and at
        // once after a promotion).
        if now || learner.checked.elapsed() >= crate::champions::RECHECK {
            learner.checked = Instant::now();
            let versions = retry("versions", &PIPELINE, stop, failed, || {
                shared.store.versions(OUTCOME)
            })
            .await?;
            if let Some(c) = champion(&versions).filter(|c| c.version != learner.version) {
                let version = c.version;
                let served = retry("read_version", &PIPELINE, stop, failed, || {
                    read_version(&shared.store, version)
                })
                .await?;
                adopt(learner, served);
            }
        }
        now = false;
        let through = learner.through;
        let resolutions = retry("resolutions_after", &PIPELINE, stop, failed, || {
            shared
                .store
                .resolutions_after(OUTCOME, through, LEARN_BATCH)
        })
        .await?;
        let mut done = resolutions.len() < LEARN_BATCH;
        // Learnt up to an alarm of the change detector, which is answered before the labels after it.
        let mut alarm = None;
        let mut taken = 0;
        for r in &resolutions {
            taken += 1;
            let features: Features = serde_json::from_str(&r.opened.features).unwrap_or_default();
            learner.model.learn(&features, r.label);
            learner.through = r.seq;
            if r.seq.is_multiple_of(WINDOW) {
                learner.starts.insert(r.seq, learner.model.clone());
            }
            if r.seq <= learner.seen_through {
                continue;
            }
            learnt += 1;
            let error = (r.opened.probability - if r.label { 1.0 } else { 0.0 }).abs();
            if learner.detector.update(error) {
                learner.alarms += 1;
                tracing::info!(
                    component = "models",
                    model = OUTCOME,
                    seq = r.seq,
                    "Change detector: the error stream moved (Page-Hinkley)."
                );
                alarm = Some(r.seq);
                done &= taken == resolutions.len();
                break;
            }
        }
        let resolutions = &resolutions[..taken];
        if !resolutions.is_empty() {
            metrics
                .model_labels
                .get_or_create(&metrics.model(OUTCOME))
                .inc_by(resolutions.len() as u64);
            let (state, through, version) =
                (learner.model.to_bytes(), learner.through, learner.version);
            let key = learner_key(version);
            retry("put_learner", &PIPELINE, stop, failed, || {
                shared.store.put_learner(&key, state.clone(), through)
            })
            .await?;
            // The learner at the latest window start, kept when this batch reached a new one.
            if let Some((start, model)) = learner
                .starts
                .last_key_value()
                .filter(|(start, _)| **start >= resolutions[0].seq)
            {
                let (start, bytes, key) = (*start, model.to_bytes(), window_start_key(version));
                retry("put_learner", &PIPELINE, stop, failed, || {
                    shared.store.put_learner(&key, bytes.clone(), start)
                })
                .await?;
            }
        }
        // The windows completed and not yet decided on, scored from the store so that a restart changes nothing:
        // after a crash between keeping the learner and a window's decision, the next start does that window.
        let through = learner.through;
        let crossed = through / WINDOW > (through - resolutions.len() as u64) / WINDOW;
        if crossed || !learner.windows_checked {
            learner.windows_checked = true;
            if decide_windows(shared, learner, through, stop, &mut evaluations).await? {
                now = true;
                continue;
            }
        }
        // An alarm inside a window is answered at once; one on a window's last label was answered with it.
        if let Some(seq) = alarm.filter(|seq| !seq.is_multiple_of(WINDOW))
            && super::retrain::after_alarm(shared, learner, seq, stop).await?
        {
            now = true;
            continue;
        }
        if done {
            return Some((learnt, evaluations));
        }
    }
}

/// Scores and decides the windows completed by `through` labels and not decided yet, oldest first, and forgets
/// the learner's snapshots of the windows decided. `Some(true)` when a decision promoted a new champion (the
/// windows after it are left to its watch), `None` when shutdown was forced while the store was failing.
async fn decide_windows(
    shared: &Shared,
    learner: &mut Learner,
    through: u64,
    stop: &CancellationToken,
    evaluations: &mut u64,
) -> Option<bool> {
    let metrics = &shared.metrics;
    let failed = || {
        metrics.store_retries.inc();
    };
    let decided: std::collections::HashSet<u64> =
        retry("decisions", &PIPELINE, stop, failed, || {
            shared.store.decisions(OUTCOME)
        })
        .await?
        .into_iter()
        .filter(|d| d.trigger == Trigger::Window)
        .map(|d| d.window)
        .collect();
    let mut promoted = false;
    for window in (0..through / WINDOW).filter(|w| !decided.contains(&(w * WINDOW + 1))) {
        let start = window * WINDOW;
        let rows = retry("resolutions_after", &PIPELINE, stop, failed, || {
            shared
                .store
                .resolutions_after(OUTCOME, start, WINDOW as usize)
        })
        .await?;
        let evaluation = evaluate(&rows, learner.version);
        if let Some(auc) = evaluation.auc {
            metrics
                .model_auc
                .get_or_create(&metrics.model(OUTCOME))
                .set(auc);
        }
        retry("record_evaluation", &PIPELINE, stop, failed, || {
            shared.store.record_evaluation(evaluation.clone())
        })
        .await?;
        *evaluations += 1;
        promoted = super::retrain::after_window(shared, learner, &evaluation, &rows, stop).await?;
        if promoted {
            // The new champion learns the labels after its training again; the windows after this one are
            // decided on its watch.
            break;
        }
    }
    // Snapshots of windows decided are not needed any more.
    let open = (0..through / WINDOW)
        .find(|w| !decided.contains(&(w * WINDOW + 1)))
        .map_or(through / WINDOW * WINDOW, |w| w * WINDOW);
    learner.starts.retain(|start, _| *start >= open);
    Some(promoted)
}

/// The prequential figures of one window of resolutions.
pub fn evaluate(rows: &[Resolution], version: u32) -> Evaluation {
    let pairs: Vec<(f64, bool)> = rows
        .iter()
        .map(|r| (r.opened.probability, r.label))
        .collect();
    let s = scores(&pairs);
    let delay = rows
        .iter()
        .map(|r| (r.resolved_at - r.opened.opened_at) as f64 / 86_400.0)
        .sum::<f64>()
        / rows.len().max(1) as f64;
    Evaluation {
        model: OUTCOME.into(),
        version,
        first_seq: rows.first().map_or(0, |r| r.seq),
        last_seq: rows.last().map_or(0, |r| r.seq),
        from: rows.first().map_or(0, |r| r.resolved_at),
        to: rows.last().map_or(0, |r| r.resolved_at),
        count: rows.len() as u64,
        positive_rate: s.positive_rate,
        auc: s.auc,
        log_loss: s.log_loss,
        brier: s.brier,
        label_delay_days: delay,
    }
}
