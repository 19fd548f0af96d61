//! What the stages and the HTTP server share of a running pipeline: its scripts, backends, metrics, the tap,
//! and the counts that say how far the work has gone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use forgecast_core::Record;
use forgecast_core::bus::Bus;
use forgecast_github::{EnrichStats, GithubClient, QueryStatus};
use forgecast_script::ScriptHost;
use tokio::sync::broadcast;

use super::route;
use crate::backends::{AnyBus, AnyStore};
use crate::champions::Champions;
use crate::metrics::Metrics;

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
    /// Records the store writer has taken from the bus (stored or being stored).
    pub writer_taken: AtomicU64,
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
    /// The champions the model stage and the HTTP API use.
    pub champions: Champions,
    /// Events the model stage has taken (scored, skipped or failed), for tests and the dashboard.
    pub scored: AtomicU64,
    /// Records the issue-outcome stage has taken.
    pub outcome_taken: AtomicU64,
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
