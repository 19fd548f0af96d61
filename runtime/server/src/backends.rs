//! The backends chosen at start-up, behind the bus and store traits: the rest of the runtime is written once
//! against [`AnyBus`] and [`AnyStore`], whatever runs underneath. They are opened here only, from a plan
//! ([`open_store`], [`open_bus`]).

use std::sync::Arc;

use forgecast_core::aggregate::{AggregateQuery, AggregateRow};
use forgecast_core::bus::{Bus, BusError, BusStats, Subscription, TopicFilter};
use forgecast_core::outcomes::{Decision, Drift, Evaluation, Opened, OutcomeStore, Resolution};
use forgecast_core::predictions::{LabelQuery, LabelRow, PredictionStore, StoredPrediction};
use forgecast_core::registry::{Alias, ModelVersion, NewVersion, Registry};
use forgecast_core::stars::{StarPoint, StarStore};
use forgecast_core::store::{RepoMeta, ScriptReload, Store, StoreError, WriteOutcome};
use forgecast_core::{DeadLetter, Event, Record};

use forgecast_embedded::{EmbeddedBus, EmbeddedSubscription, SqliteStore};
use tokio_util::sync::CancellationToken;

use crate::config::{BusPlan, StoragePlan, StorePlan};
use crate::retry::{PIPELINE, retry};
use forgecast_kafka::{KafkaBus, KafkaSubscription};
use forgecast_mongo::MongoStore;

/// How a process uses the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The one writer of a data directory (`up`, `backfill`): the embedded store takes its lock, brings its
    /// layout up to date and cuts its lake's uncommitted tails.
    Writer,
    /// Alongside a writer (`aggregate`): reads, sets counters, touches no lake file.
    Reader,
}

/// Opens the store of `plan`. MongoDB is waited for with backoff until it answers; `None` if `stop` came first.
pub async fn open_store(
    plan: &StoragePlan,
    access: Access,
    stop: &CancellationToken,
) -> Result<Option<AnyStore>, StoreError> {
    match &plan.store {
        StorePlan::Embedded => {
            let path = plan.sqlite_path();
            let store = match access {
                Access::Writer => SqliteStore::open(&path)?,
                Access::Reader => SqliteStore::open_alongside(&path)?,
            };
            Ok(Some(AnyStore::Sqlite(store)))
        }
        StorePlan::Mongo { uri, database } => {
            let connect = || MongoStore::connect(uri, database);
            let store = retry("connect to MongoDB", &PIPELINE, stop, || {}, connect).await;
            if store.is_some() {
                tracing::info!(component = "store", database = %database, "Using MongoDB.");
            }
            Ok(store.map(AnyStore::Mongo))
        }
    }
}

/// Connects the bus of `plan`; returns it with the store writers' consumer group.
pub fn open_bus(plan: &BusPlan) -> Result<(AnyBus, String), BusError> {
    Ok(match plan {
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
    })
}

/// One of the buses.
#[derive(Clone)]
pub enum AnyBus {
    /// In-process queues.
    Embedded(EmbeddedBus),
    /// Apache Kafka.
    Kafka(KafkaBus),
}

/// A subscription on one of the buses.
pub enum AnySubscription {
    /// On the in-process bus.
    Embedded(EmbeddedSubscription),
    /// On Kafka.
    Kafka(KafkaSubscription),
}

impl Bus for AnyBus {
    type Subscription = AnySubscription;

    async fn publish(&self, records: Vec<Record>) -> Result<(), BusError> {
        match self {
            AnyBus::Embedded(bus) => bus.publish(records).await,
            AnyBus::Kafka(bus) => bus.publish(records).await,
        }
    }

    fn subscribe(
        &self,
        group: &str,
        filters: Vec<TopicFilter>,
    ) -> Result<AnySubscription, BusError> {
        Ok(match self {
            AnyBus::Embedded(bus) => AnySubscription::Embedded(bus.subscribe(group, filters)?),
            AnyBus::Kafka(bus) => AnySubscription::Kafka(bus.subscribe(group, filters)?),
        })
    }

    fn close(&self) {
        match self {
            AnyBus::Embedded(bus) => bus.close(),
            AnyBus::Kafka(bus) => bus.close(),
        }
    }

    fn stats(&self) -> BusStats {
        match self {
            AnyBus::Embedded(bus) => bus.stats(),
            AnyBus::Kafka(bus) => bus.stats(),
        }
    }

    fn publish_size(&self) -> usize {
        match self {
            AnyBus::Embedded(bus) => bus.publish_size(),
            AnyBus::Kafka(bus) => bus.publish_size(),
        }
    }
}

impl Subscription for AnySubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Record>>, BusError> {
        match self {
            AnySubscription::Embedded(s) => s.next_batch(max).await,
            AnySubscription::Kafka(s) => s.next_batch(max).await,
        }
    }

    async fn commit(&mut self) -> Result<(), BusError> {
        match self {
            AnySubscription::Embedded(s) => s.commit().await,
            AnySubscription::Kafka(s) => s.commit().await,
        }
    }
}

/// One of the stores.
#[derive(Clone)]
pub enum AnyStore {
    /// SQLite under the data directory.
    Sqlite(SqliteStore),
    /// MongoDB.
    Mongo(MongoStore),
}

/// Calls the same method on whichever store it is.
macro_rules! each_store {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($store) => $call.await,
            AnyStore::Mongo($store) => $call.await,
        }
    };
}

impl AnyStore {
    /// On the embedded store, what tells a writer that a batch's lines are on disk and only its rows are left
    /// to commit ([`SqliteStore::lines_written`]); MongoDB writes a batch in one piece.
    pub fn lines_written(&self) -> Option<Arc<tokio::sync::Notify>> {
        match self {
            AnyStore::Sqlite(store) => Some(store.lines_written()),
            AnyStore::Mongo(_) => None,
        }
    }

    /// Language and topics of every repository GitHub knows that the store has cached, by name.
    pub async fn repo_facts(
        &self,
    ) -> Result<Vec<(String, Option<String>, Vec<String>)>, StoreError> {
        each_store!(self, s => s.repo_facts())
    }
}

impl Store for AnyStore {
    async fn write_events(&self, events: Vec<Arc<Event>>) -> Result<WriteOutcome, StoreError> {
        each_store!(self, s => s.write_events(events))
    }

    async fn put_counters(&self, rows: Vec<AggregateRow>) -> Result<(), StoreError> {
        each_store!(self, s => s.put_counters(rows))
    }

    async fn repo_meta(&self, names: Vec<String>) -> Result<Vec<RepoMeta>, StoreError> {
        each_store!(self, s => s.repo_meta(names))
    }

    async fn put_repo_meta(&self, repos: Vec<RepoMeta>) -> Result<(), StoreError> {
        each_store!(self, s => s.put_repo_meta(repos))
    }

    async fn write_dead_letters(&self, letters: Vec<Arc<DeadLetter>>) -> Result<(), StoreError> {
        each_store!(self, s => s.write_dead_letters(letters))
    }

    async fn record_reload(&self, reload: ScriptReload) -> Result<(), StoreError> {
        each_store!(self, s => s.record_reload(reload))
    }

    async fn aggregates(&self, query: AggregateQuery) -> Result<Vec<AggregateRow>, StoreError> {
        each_store!(self, s => s.aggregates(query))
    }

    async fn event_count(&self) -> Result<u64, StoreError> {
        each_store!(self, s => s.event_count())
    }

    async fn dead_letter_count(&self) -> Result<u64, StoreError> {
        each_store!(self, s => s.dead_letter_count())
    }

    async fn recent_reloads(&self, limit: usize) -> Result<Vec<ScriptReload>, StoreError> {
        each_store!(self, s => s.recent_reloads(limit))
    }
}

impl Registry for AnyStore {
    async fn register(&self, version: NewVersion, artifact: Vec<u8>) -> Result<u32, StoreError> {
        each_store!(self, s => s.register(version, artifact))
    }

    async fn versions(&self, name: &str) -> Result<Vec<ModelVersion>, StoreError> {
        each_store!(self, s => s.versions(name))
    }

    async fn model_names(&self) -> Result<Vec<String>, StoreError> {
        each_store!(self, s => s.model_names())
    }

    async fn artifact(&self, name: &str, version: u32) -> Result<Option<Vec<u8>>, StoreError> {
        each_store!(self, s => s.artifact(name, version))
    }

    async fn set_alias(&self, name: &str, version: u32, alias: Alias) -> Result<(), StoreError> {
        each_store!(self, s => s.set_alias(name, version, alias))
    }

    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        each_store!(self, s => s.lease(name, holder, now, until))
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        each_store!(self, s => s.release(name, holder))
    }
}

impl PredictionStore for AnyStore {
    async fn write_predictions(
        &self,
        predictions: Vec<StoredPrediction>,
    ) -> Result<WriteOutcome, StoreError> {
        each_store!(self, s => s.write_predictions(predictions))
    }

    async fn label_counts(&self, query: LabelQuery) -> Result<Vec<LabelRow>, StoreError> {
        each_store!(self, s => s.label_counts(query))
    }

    async fn recent_predictions(
        &self,
        model: &str,
        label: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredPrediction>, StoreError> {
        each_store!(self, s => s.recent_predictions(model, label, limit))
    }

    async fn prediction_count(&self, model: &str) -> Result<u64, StoreError> {
        each_store!(self, s => s.prediction_count(model))
    }
}

impl StarStore for AnyStore {
    async fn record_stars(&self, points: Vec<StarPoint>) -> Result<(), StoreError> {
        each_store!(self, s => s.record_stars(points))
    }

    async fn star_points(&self, repo: &str) -> Result<Vec<StarPoint>, StoreError> {
        each_store!(self, s => s.star_points(repo))
    }
}

impl OutcomeStore for AnyStore {
    async fn open_issues(
        &self,
        model: &str,
        opened: Vec<Opened>,
    ) -> Result<WriteOutcome, StoreError> {
        each_store!(self, s => s.open_issues(model, opened))
    }

    async fn resolve(
        &self,
        model: &str,
        closed: Vec<(String, i64)>,
        now: i64,
        horizon: i64,
    ) -> Result<Vec<Resolution>, StoreError> {
        each_store!(self, s => s.resolve(model, closed, now, horizon))
    }

    async fn resolutions_after(
        &self,
        model: &str,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<Resolution>, StoreError> {
        each_store!(self, s => s.resolutions_after(model, seq, limit))
    }

    async fn pending_count(&self, model: &str) -> Result<u64, StoreError> {
        each_store!(self, s => s.pending_count(model))
    }

    async fn put_learner(
        &self,
        model: &str,
        state: Vec<u8>,
        through_seq: u64,
    ) -> Result<(), StoreError> {
        each_store!(self, s => s.put_learner(model, state, through_seq))
    }

    async fn learner(&self, model: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        each_store!(self, s => s.learner(model))
    }

    async fn record_evaluation(&self, evaluation: Evaluation) -> Result<(), StoreError> {
        each_store!(self, s => s.record_evaluation(evaluation))
    }

    async fn evaluations(&self, model: &str) -> Result<Vec<Evaluation>, StoreError> {
        each_store!(self, s => s.evaluations(model))
    }

    async fn record_decision(&self, decision: Decision) -> Result<(), StoreError> {
        each_store!(self, s => s.record_decision(decision))
    }

    async fn decisions(&self, model: &str) -> Result<Vec<Decision>, StoreError> {
        each_store!(self, s => s.decisions(model))
    }

    async fn record_drift(&self, d: Drift) -> Result<(), StoreError> {
        each_store!(self, s => s.record_drift(d))
    }

    async fn drift(&self, model: &str) -> Result<Vec<Drift>, StoreError> {
        each_store!(self, s => s.drift(model))
    }
}
