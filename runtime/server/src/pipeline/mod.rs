//! One running pipeline: source → routing script → bus → store writer (events, counters, dead letters).
//!
//! - [`route`]: the routing stage, on its own thread because script calls are CPU work.
//! - [`write`]: the store writer, which commits what it consumed only after the store accepted it.
//! - [`score`]: the model stage, which scores events with the sentiment champion and keeps the predictions,
//!   committing likewise.
//! - [`outcome`]: the streaming issue-outcome model: predicts at opening, learns each label once it is known,
//!   evaluates prequentially.
//! - `shared`: what the stages and the HTTP server share ([`Shared`]).
//! - `github`: the GitHub source, the poller and the enricher on one client.
//! - `bundled`: the GitHut history loaded at start.
//! - `reloads`: every script reload kept in the store and counted.
//!
//! Shutdown drains: the source stops first, routing finishes what the source handed over and closes the bus,
//! the writer and the model stage take what is left in the queues, and only then does [`Pipeline::drain`]
//! return.

mod bundled;
mod github;
pub mod outcome;
mod reloads;
pub mod retrain;
pub mod route;
pub mod score;
mod shared;
pub mod text_drift;
pub mod write;

pub use shared::{GithubView, Shared};

/// Loads the bundled GitHut history into the store, as every pipeline does at start (setting the same counters
/// again changes nothing); for commands that read history without a pipeline.
pub async fn load_bundled_history(store: &crate::backends::AnyStore) -> Result<(), StartError> {
    bundled::load_history(store).await
}

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use forgecast_core::bus::{Bus, TopicFilter};
use forgecast_core::source::Incoming;
use forgecast_core::topic::PIPELINE_PREFIX;
use forgecast_gharchive::replay::Replay;
use forgecast_script::watch::watch;
use forgecast_script::{ScriptEngine, ScriptHost};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backends::{Access, open_bus, open_store};
use crate::config::{PipelinePlan, SourcePlan};
use crate::metrics::Metrics;
use outcome::OutcomeReport;
use score::ScoreReport;
use write::WriteReport;

/// Batches the source may hand over before it waits for routing.
const SOURCE_QUEUE: usize = 16;
/// Records a tap may fall behind before it skips.
const TAP_CAPACITY: usize = 4096;

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A script is not valid: every problem, one per line.
    #[error("the scripts are not valid:\n{}", .0.join("\n"))]
    Scripts(Vec<String>),
    /// There is no routing script.
    #[error("no routing script: {0}/routing.rhai must define `fn route(event)`")]
    NoRouting(String),
    /// The store cannot be opened.
    #[error(transparent)]
    Store(#[from] forgecast_core::store::StoreError),
    /// The bus refused the subscription.
    #[error(transparent)]
    Bus(#[from] forgecast_core::bus::BusError),
    /// The bundled history cannot be read.
    #[error("cannot read the bundled history: {0}")]
    History(String),
    /// The GitHub client cannot be built.
    #[error("GitHub source: {0}")]
    Github(String),
    /// The bundled events cannot be read.
    #[error("cannot read the bundled events: {0}")]
    Replay(std::io::Error),
    /// The default model could not be trained at first start.
    #[error("cannot train the default sentiment model: {0}")]
    Models(String),
    /// Shutdown came before a backend could be reached.
    #[error("stopped before the store could be reached")]
    Stopped,
}

/// What a pipeline did, from start to drain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events the source produced.
    pub source_events: u64,
    /// Records routed (an event routed to two topics counts twice), dead letters included.
    pub routed: u64,
    /// What the writer did.
    pub written: WriteReport,
    /// What the model stage did.
    pub scored: ScoreReport,
    /// What the issue-outcome stage did.
    pub outcome: OutcomeReport,
}

/// A running pipeline.
pub struct Pipeline {
    feed: Option<mpsc::Sender<Vec<Incoming>>>,
    shared: Arc<Shared>,
    stop_source: CancellationToken,
    stop_all: CancellationToken,
    source: JoinHandle<u64>,
    router: JoinHandle<u64>,
    writer: JoinHandle<WriteReport>,
    scorer: JoinHandle<ScoreReport>,
    learner: JoinHandle<OutcomeReport>,
}

impl Pipeline {
    /// Loads the scripts, opens the store and starts every stage.
    pub async fn start(plan: &PipelinePlan) -> Result<Pipeline, StartError> {
        let engine = Arc::new(ScriptEngine::new(plan.limits));
        let host = ScriptHost::start(engine, &plan.scripts).map_err(|problems| {
            StartError::Scripts(problems.iter().map(ToString::to_string).collect())
        })?;
        if host.scripts().routing().is_none() {
            return Err(StartError::NoRouting(plan.scripts.display().to_string()));
        }
        let stop_source = CancellationToken::new();
        let stop_all = CancellationToken::new();
        let store = open_store(&plan.storage, Access::Writer, &stop_all)
            .await?
            .ok_or(StartError::Stopped)?;
        let (bus, writer_group) = open_bus(&plan.bus)?;
        bundled::load_history(&store).await?;
        if plan.models {
            crate::commands::train::first_start(&store)
                .await
                .map_err(|e| StartError::Models(format!("{e:#}")))?;
        }
        let metrics = Arc::new(Metrics::with_series_cap(plan.bounds.max_metric_series));
        let shared = Arc::new(Shared {
            host: Arc::new(host),
            store,
            bus: bus.clone(),
            writer_group: writer_group.clone(),
            metrics,
            tap: broadcast::channel(TAP_CAPACITY).0,
            store_ok: AtomicBool::new(true),
            published: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            writer_taken: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            github: Mutex::new(None),
            reloads_accepted: AtomicU64::new(0),
            reloads_refused: AtomicU64::new(0),
            topics: route::TopicCap::new(plan.bounds.max_topics),
            champions: Default::default(),
            scored: AtomicU64::new(0),
            outcome_taken: AtomicU64::new(0),
        });
        reloads::record_reloads(&shared);

        tokio::spawn(watch(shared.host.clone(), plan.watch, stop_all.clone()));

        let subscription = bus.subscribe(
            &writer_group,
            vec![TopicFilter::Prefix(PIPELINE_PREFIX.into())],
        )?;
        let writer = tokio::spawn(write::run(subscription, shared.clone(), stop_all.clone()));
        let scorer = if plan.models {
            let subscription = bus.subscribe(
                &format!("{writer_group}-models"),
                vec![TopicFilter::Prefix(PIPELINE_PREFIX.into())],
            )?;
            tokio::spawn(score::run(subscription, shared.clone(), stop_all.clone()))
        } else {
            tokio::spawn(async { ScoreReport::default() })
        };
        let learner = if plan.models {
            let subscription = bus.subscribe(
                &format!("{writer_group}-outcome"),
                vec![TopicFilter::Prefix(PIPELINE_PREFIX.into())],
            )?;
            tokio::spawn(outcome::run(subscription, shared.clone(), stop_all.clone()))
        } else {
            tokio::spawn(async { OutcomeReport::default() })
        };

        let (tx, rx) = mpsc::channel(SOURCE_QUEUE);
        let mut feed = None;
        let router = route::spawn(rx, bus.clone(), shared.clone(), stop_all.clone());
        let source = match &plan.source {
            SourcePlan::Github(config) => github::start(
                config,
                plan.enrich_share,
                &shared,
                &bus,
                tx,
                &stop_source,
                &stop_all,
            )?,
            SourcePlan::Replay(config) => {
                let replay = Replay::bundled(*config).map_err(StartError::Replay)?;
                tracing::info!(
                    component = "source",
                    events = replay.len(),
                    speed = config.speed,
                    "Replaying the bundled GH Archive events."
                );
                let stop = stop_source.clone();
                tokio::spawn(async move { replay.run(tx, stop).await.events })
            }
            SourcePlan::Feed => {
                feed = Some(tx);
                tokio::spawn(async { 0 })
            }
            SourcePlan::None => {
                let stop = stop_source.clone();
                tokio::spawn(async move {
                    stop.cancelled().await;
                    drop(tx);
                    0
                })
            }
        };
        Ok(Pipeline {
            feed,
            shared,
            stop_source,
            stop_all,
            source,
            router,
            writer,
            scorer,
            learner,
        })
    }

    /// The input of a pipeline started with [`SourcePlan::Feed`]; dropping it ends the input, as a finished
    /// source does.
    pub fn take_feed(&mut self) -> Option<mpsc::Sender<Vec<Incoming>>> {
        self.feed.take()
    }

    /// What the HTTP server needs.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Whether the source has finished on its own (a one-pass replay).
    pub fn source_finished(&self) -> bool {
        self.source.is_finished()
    }

    /// Stops the source, lets everything already taken in reach the store, and reports.
    pub async fn drain(self) -> Summary {
        self.stop_source.cancel();
        let source_events = self.source.await.unwrap_or_default();
        let routed = self.router.await.unwrap_or_default();
        let written = self.writer.await.unwrap_or_default();
        let scored = self.scorer.await.unwrap_or_default();
        let outcome = self.learner.await.unwrap_or_default();
        self.stop_all.cancel();
        Summary {
            source_events,
            routed,
            written,
            scored,
            outcome,
        }
    }

    /// Gives up on draining: stops retries and the watcher (a second Ctrl-C).
    pub fn abort_token(&self) -> CancellationToken {
        self.stop_all.clone()
    }
}
