//! The Prometheus metrics of a running pipeline, served at `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A topic label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    /// Topic name.
    pub topic: String,
}

/// A stage label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    /// Pipeline stage.
    pub stage: String,
}

/// A script label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScriptLabel {
    /// Script id.
    pub script: String,
}

/// A reload-result label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `accepted` or `refused`.
    pub result: String,
}

/// A consumer group label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabel {
    /// Consumer group.
    pub group: String,
}

/// A GitHub request label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    /// Query name.
    pub query: String,
    /// HTTP status, or `error`, `timeout`, `bad_body`.
    pub status: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the pipeline.
pub struct Metrics {
    registry: Registry,
    /// Records published, per topic.
    pub events_in: Family<TopicLabel, Counter>,
    /// Records consumed and handled by the store writer, per topic.
    pub events_out: Family<TopicLabel, Counter>,
    /// Dead letters, per stage that produced them.
    pub dead_letters: Family<StageLabel, Counter>,
    /// Script reload decisions.
    pub reloads: Family<ResultLabel, Counter>,
    /// Time per script call, in seconds.
    pub script_seconds: HistogramFamily<ScriptLabel>,
    /// Events stored for the first time.
    pub stored: Counter,
    /// Events the store already held.
    pub duplicates: Counter,
    /// Store operations that failed and were retried.
    pub store_retries: Counter,
    /// GitHub requests, by query and outcome.
    pub github_requests: Family<RequestLabel, Counter>,
    /// Records waiting in the bus per consumer group, as the bus last reported (Kafka only).
    pub bus_lag: Family<GroupLabel, Gauge>,
    /// Records the bus failed to deliver and that were published again.
    pub bus_produce_errors: Gauge,
    /// Produce requests the bus client retried on its own.
    pub bus_produce_retries: Gauge,
}

fn call_time_histogram() -> Histogram {
    // 0.5 µs to about 0.5 s.
    Histogram::new(exponential_buckets(5e-7, 4.0, 11))
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("forgecast");
        let events_in = Family::default();
        let events_out = Family::default();
        let dead_letters = Family::default();
        let reloads = Family::default();
        let github_requests = Family::default();
        let script_seconds: HistogramFamily<ScriptLabel> =
            Family::new_with_constructor(call_time_histogram);
        let (stored, duplicates, store_retries) =
            (Counter::default(), Counter::default(), Counter::default());
        registry.register(
            "events_in",
            "Records published to a topic",
            events_in.clone(),
        );
        registry.register(
            "events_out",
            "Records consumed from a topic and handled by the store writer",
            events_out.clone(),
        );
        registry.register(
            "dead_letters",
            "Records sent to the dead-letter topic, by stage",
            dead_letters.clone(),
        );
        registry.register("script_reloads", "Script reload decisions", reloads.clone());
        registry.register(
            "script_call_seconds",
            "Time per script call",
            script_seconds.clone(),
        );
        registry.register(
            "store_events_stored",
            "Events stored for the first time",
            stored.clone(),
        );
        registry.register(
            "store_duplicates",
            "Events the store already held",
            duplicates.clone(),
        );
        registry.register(
            "store_retries",
            "Store operations retried after a failure",
            store_retries.clone(),
        );
        registry.register(
            "github_requests",
            "GitHub requests by query and outcome",
            github_requests.clone(),
        );
        let bus_lag = Family::default();
        let (bus_produce_errors, bus_produce_retries) = (Gauge::default(), Gauge::default());
        registry.register(
            "bus_consumer_lag",
            "Records waiting in the bus per consumer group (Kafka)",
            bus_lag.clone(),
        );
        registry.register(
            "bus_produce_errors",
            "Records the bus failed to deliver (published again)",
            bus_produce_errors.clone(),
        );
        registry.register(
            "bus_produce_retries",
            "Produce requests the bus client retried",
            bus_produce_retries.clone(),
        );
        Metrics {
            registry,
            bus_lag,
            bus_produce_errors,
            bus_produce_retries,
            events_in,
            events_out,
            dead_letters,
            reloads,
            script_seconds,
            stored,
            duplicates,
            store_retries,
            github_requests,
        }
    }

    /// Takes in what the bus reports of itself.
    pub fn observe_bus(&self, stats: &forgecast_core::bus::BusStats) {
        for (group, lag) in &stats.lag {
            self.bus_lag
                .get_or_create(&GroupLabel {
                    group: group.clone(),
                })
                .set(*lag as i64);
        }
        self.bus_produce_errors.set(stats.produce_errors as i64);
        self.bus_produce_retries.set(stats.produce_retries as i64);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String");
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
