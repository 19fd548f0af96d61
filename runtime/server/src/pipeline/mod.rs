//! One running pipeline: source → routing script → bus → store writer (events, counters, dead letters).
//!
//! - [`route`]: the routing stage, on its own thread because script calls are CPU work.
//! - [`write`]: the store writer, which commits what it consumed only after the store accepted it.
//! - [`backoff`]: retrying a failed backend operation with exponential backoff until it works or shutdown.
//!
//! Shutdown drains: the source stops first, routing finishes what the source handed over and closes the bus,
//! the writer stores what is left in the queues, and only then does [`Pipeline::drain`] return.

pub mod backoff;
pub mod route;
pub mod write;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use forgecast_connect::backend::{AnyBus, AnyStore, AnySubscription};
use forgecast_connect::embedded::{EmbeddedBus, SqliteStore};
use forgecast_connect::github::{
    EnrichConfig, EnrichStats, Enricher, GithubClient, Poller, Query, QueryStatus,
};
use forgecast_connect::kafka::KafkaBus;
use forgecast_connect::mongo::MongoStore;
use forgecast_connect::replay::Replay;
use forgecast_core::Record;
use forgecast_core::RecordBody;
use forgecast_core::aggregate::{AggregateQuery, Dimension, Granularity};
use forgecast_core::bus::Subscription;
use forgecast_core::bus::{Bus, TopicFilter};
use forgecast_core::source::Incoming;
use forgecast_core::store::{ScriptReload, Store};
use forgecast_core::topic::PIPELINE_PREFIX;
use forgecast_script::watch::watch;
use forgecast_script::{Role, ScriptEngine, ScriptHost};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{BusPlan, SourcePlan, StorePlan, UpPlan};
use crate::metrics::Metrics;
use write::WriteReport;

/// Event ids the GitHub poller remembers to drop repeats across polls.
const DEDUP_IDS: usize = 100_000;
/// Batches the source may hand over before it waits for routing.
const SOURCE_QUEUE: usize = 16;
/// Records a tap may fall behind before it skips.
const TAP_CAPACITY: usize = 4096;

/// What the HTTP server and the stages share.
pub struct Shared {
    /// The live scripts.
    pub host: Arc<ScriptHost>,
    /// The store.
    pub store: AnyStore,
    /// The bus.
    pub bus: AnyBus,
    /// The store writer's subscriber group on the bus.
    pub writer_group: String,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Every routed record, for `forgecast tap`.
    pub tap: broadcast::Sender<Record>,
    /// Whether the last store operation succeeded.
    pub store_ok: AtomicBool,
    /// Records published by routing so far.
    pub published: AtomicU64,
    /// Records the store writer has handled so far; `published - handled` is the lag.
    pub handled: AtomicU64,
    /// Source items routing has taken (routed, dropped or dead-lettered) and published.
    pub taken: AtomicU64,
    /// The GitHub source, when it runs.
    pub github: Mutex<Option<GithubView>>,
    /// Script versions that went live since start (the ones loaded at start not counted).
    pub reloads_accepted: AtomicU64,
    /// Script versions refused since start.
    pub reloads_refused: AtomicU64,
    /// The distinct topics routing may publish to.
    pub topics: route::TopicCap,
}

/// What `GET /api/sources` shows of the GitHub source.
#[derive(Clone)]
pub struct GithubView {
    /// The client, with its rate-limit state.
    pub client: Arc<GithubClient>,
    /// Each query's schedule and last outcome.
    pub queries: Arc<Mutex<Vec<QueryStatus>>>,
    /// What the repository enricher did.
    pub enrichment: Arc<Mutex<EnrichStats>>,
}

impl Shared {
    /// Whether the first `items` source items are safe: routed, and stored, or on Kafka acknowledged by the
    /// broker (from there the consumer group stores them, whichever process takes their partition).
    pub fn settled(&self, items: u64) -> bool {
        let routed = self.taken.load(Ordering::SeqCst) >= items;
        match self.bus {
            AnyBus::Kafka(_) => routed,
            AnyBus::Embedded(_) => {
                routed
                    && self.handled.load(Ordering::SeqCst) >= self.published.load(Ordering::SeqCst)
            }
        }
    }

    /// Records routed but not stored yet: what the bus reports for the store writer's group (which counts the
    /// work of every process in it), or else what this process published and has not stored.
    pub fn lag(&self, published: u64, handled: u64) -> u64 {
        self.bus
            .stats()
            .lag
            .into_iter()
            .find(|(group, _)| *group == self.writer_group)
            .map(|(_, lag)| lag)
            .unwrap_or_else(|| published.saturating_sub(handled))
    }

    /// Whether the pipeline can take work now.
    pub fn ready(&self) -> bool {
        self.store_ok.load(Ordering::Relaxed)
    }
}

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
}

impl Pipeline {
    /// Loads the scripts, opens the store and starts every stage.
    pub async fn start(plan: &UpPlan) -> Result<Pipeline, StartError> {
        let engine = Arc::new(ScriptEngine::new(plan.limits));
        let host = ScriptHost::start(engine, &plan.scripts).map_err(|problems| {
            StartError::Scripts(problems.iter().map(ToString::to_string).collect())
        })?;
        if host.scripts().routing().is_none() {
            return Err(StartError::NoRouting(plan.scripts.display().to_string()));
        }
        let stop_source = CancellationToken::new();
        let stop_all = CancellationToken::new();
        let store = open_store(plan, &stop_all).await?;
        let (bus, writer_group) = match &plan.bus {
            BusPlan::Embedded => (
                AnyBus::Embedded(EmbeddedBus::new()),
                "store-writer".to_string(),
            ),
            BusPlan::Kafka { config, group } => {
                tracing::info!(component = "bus", brokers = %config.brokers, group = %group, "Using Kafka.");
                (
                    AnyBus::Kafka(KafkaBus::connect(config.clone())?),
                    group.clone(),
                )
            }
        };
        load_history(&store).await?;
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
            taken: AtomicU64::new(0),
            github: Mutex::new(None),
            reloads_accepted: AtomicU64::new(0),
            reloads_refused: AtomicU64::new(0),
            topics: route::TopicCap::new(plan.bounds.max_topics),
        });
        record_reloads(&shared);

        tokio::spawn(watch(shared.host.clone(), plan.watch, stop_all.clone()));

        let subscription = bus.subscribe(
            &writer_group,
            vec![TopicFilter::Prefix(PIPELINE_PREFIX.into())],
        )?;
        let writer = tokio::spawn(write::run(subscription, shared.clone(), stop_all.clone()));

        let (tx, rx) = mpsc::channel(SOURCE_QUEUE);
        let mut feed = None;
        let router = route::spawn(rx, bus.clone(), shared.clone(), stop_all.clone());
        let source = match &plan.source {
            SourcePlan::Github(config) => {
                let client =
                    Arc::new(GithubClient::new(config.clone()).map_err(StartError::Github)?);
                let poller = Poller::new(client.clone(), DEDUP_IDS);
                let observe = github_observer(&shared);
                // Repositories that events mention get their language and topics from the same client.
                let enrich = EnrichConfig {
                    share: plan.enrich_share,
                    ..EnrichConfig::default()
                };
                let enricher = Enricher::new(client.clone(), shared.store.clone(), enrich);
                let enrichment = enricher.stats();
                let (names, names_rx) = mpsc::channel(enrich.queue);
                let repos = bus.subscribe(
                    "forgecast-enricher",
                    vec![TopicFilter::Prefix(PIPELINE_PREFIX.into())],
                )?;
                tokio::spawn(forward_repos(repos, names, enrichment.clone()));
                tokio::spawn(enricher.run(names_rx, observe.clone(), stop_all.clone()));
                *shared.github.lock().unwrap_or_else(|e| e.into_inner()) = Some(GithubView {
                    client,
                    queries: poller.statuses(),
                    enrichment,
                });
                tracing::info!(component = "source", api = %config.base_url, token = config.token.is_some(), "Polling GitHub as the query scripts say.");
                tokio::spawn(poller.run(
                    queries_of(shared.host.clone()),
                    tx,
                    observe,
                    stop_source.clone(),
                ))
            }
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
        self.stop_all.cancel();
        Summary {
            source_events,
            routed,
            written,
        }
    }

    /// Gives up on draining: stops retries and the watcher (a second Ctrl-C).
    pub fn abort_token(&self) -> CancellationToken {
        self.stop_all.clone()
    }
}

/// Loads the bundled history of previous years into the store, unless the store holds it already (a restart
/// then costs one read instead of 17,986 writes; setting the same counters again would change nothing).
async fn load_history(store: &AnyStore) -> Result<(), StartError> {
    let mut history = forgecast_connect::githut::bundled().map_err(StartError::History)?;
    history.sort_by(|a, b| (a.bucket, &a.key).cmp(&(b.bucket, &b.key)));
    history.dedup_by(|a, b| a.bucket == b.bucket && a.key == b.key);
    let held = store
        .aggregates(AggregateQuery {
            granularity: Granularity::Quarter,
            dimension: Dimension::GithutLanguage,
            from: i64::MIN,
            to: i64::MAX,
        })
        .await?;
    let rows = history.len();
    if held == history {
        tracing::info!(
            component = "store",
            rows,
            "The GitHut history (2012Q2-2024Q1) is loaded."
        );
        return Ok(());
    }
    store.put_counters(history).await?;
    tracing::info!(
        component = "store",
        rows,
        "Loaded the GitHut history (2012Q2-2024Q1)."
    );
    Ok(())
}

/// Opens the planned store; a database that cannot be reached yet is waited for (until shutdown).
async fn open_store(plan: &UpPlan, stop: &CancellationToken) -> Result<AnyStore, StartError> {
    match &plan.store {
        StorePlan::Embedded => Ok(AnyStore::Sqlite(SqliteStore::open(&plan.store_path())?)),
        StorePlan::Mongo { uri, database } => {
            let connect = || MongoStore::connect(uri, database);
            match backoff::retry("connect to MongoDB", stop, || {}, connect).await {
                Some(store) => {
                    tracing::info!(component = "store", database = %database, "Using MongoDB.");
                    Ok(AnyStore::Mongo(store))
                }
                None => Err(StartError::Stopped),
            }
        }
    }
}

fn record_reloads(shared: &Arc<Shared>) {
    let runtime = tokio::runtime::Handle::current();
    let keep = {
        let shared = Arc::downgrade(shared);
        move |reload: ScriptReload| {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            runtime.spawn(async move {
                if let Err(e) = shared.store.record_reload(reload).await {
                    tracing::warn!(component = "scripts", error = %e, "Could not record a script reload in the store.");
                }
            });
        }
    };
    // The versions loaded at start open this run's history.
    for script in shared.host.scripts().iter() {
        keep(ScriptReload {
            at: forgecast_core::time::now_unix(),
            script: script.id().to_string(),
            old_hash: None,
            new_hash: script.hash().to_string(),
            accepted: true,
            reason: None,
        });
    }
    let counts = Arc::downgrade(shared);
    let metrics = shared.metrics.clone();
    shared.host.on_reload(move |event| {
        if let Some(shared) = counts.upgrade() {
            let counter = if event.accepted {
                &shared.reloads_accepted
            } else {
                &shared.reloads_refused
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let result = if event.accepted {
            "accepted"
        } else {
            "refused"
        };
        metrics
            .reloads
            .get_or_create(&crate::metrics::ResultLabel {
                result: result.into(),
            })
            .inc();
        keep(ScriptReload {
            at: forgecast_core::time::now_unix(),
            script: event.script.clone(),
            old_hash: event.old_hash.clone(),
            new_hash: event.new_hash.clone(),
            accepted: event.accepted,
            reason: event.reason(),
        });
    });
}

/// The queries of every live query script, read again each time it is called. A script that fails keeps its
/// previous list and is reported once per version; a name used twice keeps its first query.
fn queries_of(host: Arc<ScriptHost>) -> impl Fn() -> Vec<Query> + Send + 'static {
    let last: Mutex<std::collections::HashMap<String, Vec<Query>>> = Mutex::new(Default::default());
    let reported: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    move || {
        let set = host.scripts();
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        for script in set.of_role(Role::Queries) {
            match script.queries(host.engine()) {
                Ok(specs) => {
                    let list = specs
                        .into_iter()
                        .map(|q| Query {
                            name: q.name,
                            path: q.path,
                            params: q.params,
                            every: q.every,
                            max_pages: q.max_pages,
                        })
                        .collect();
                    last.insert(script.id().to_string(), list);
                }
                Err(e) => {
                    if reported
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(format!("{}@{}", e.script, e.version))
                    {
                        tracing::warn!(component = "source", script = %e.script, version = %e.version, error = %e.message, "Query script failed; keeping its previous queries.");
                    }
                }
            }
        }
        let mut names = HashSet::new();
        let mut all = Vec::new();
        for (script, list) in last.iter() {
            for query in list {
                if names.insert(query.name.clone()) {
                    all.push(query.clone());
                } else if reported
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(format!("dup:{}", query.name))
                {
                    tracing::warn!(component = "source", script = %script, query = %query.name, "Query name used twice; the first one runs.");
                }
            }
        }
        all
    }
}

fn github_observer(shared: &Arc<Shared>) -> forgecast_connect::github::poller::Observe {
    let metrics = shared.metrics.clone();
    Arc::new(move |query: &str, status: &str| {
        metrics
            .github_requests
            .get_or_create(&metrics.request(query, status))
            .inc();
    })
}

/// Hands the repository of every stored event to the enricher, never waiting: when its queue is full the name
/// is dropped (and counted), the next event of that repository brings it again.
async fn forward_repos(
    mut events: AnySubscription,
    names: mpsc::Sender<String>,
    stats: Arc<Mutex<EnrichStats>>,
) {
    while let Ok(Some(batch)) = events.next_batch(4096).await {
        for record in batch {
            if let RecordBody::Event(event) = record.body
                && names.try_send(event.repo.clone()).is_err()
            {
                stats.lock().unwrap_or_else(|e| e.into_inner()).dropped += 1;
            }
        }
        let _ = events.commit().await;
    }
}
