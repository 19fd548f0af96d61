//! The Prometheus metrics of a running pipeline, served at `GET /metrics`.
//!
//! Label values that scripts or clients choose (topics, script ids, query names) are bounded per label: past
//! `bounds.max_metric_series` distinct values, new ones are counted under `other`, so `/metrics` stays small
//! whatever a script does.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

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

/// A partition of a consumer group.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

/// A model label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    /// Model name.
    pub model: String,
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

/// The value a label takes past its bound.
pub const OTHER: &str = "other";

/// The distinct values one label has taken, up to a bound.
#[derive(Debug)]
struct SeriesCap {
    max: usize,
    seen: Mutex<HashSet<String>>,
}

impl SeriesCap {
    fn new(max: usize) -> SeriesCap {
        SeriesCap {
            max,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// `value`, or [`OTHER`] once the label has `max` other values.
    fn value(&self, value: &str) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(value) {
            return value.to_string();
        }
        if seen.len() >= self.max {
            return OTHER.to_string();
        }
        seen.insert(value.to_string());
        value.to_string()
    }
}

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
    /// Next offset of the records received and not committed yet, per partition that holds some (Kafka).
    pub bus_uncommitted: Family<PartitionLabel, Gauge>,
    /// Predictions kept by the model stage, per model.
    pub predictions: Family<ModelLabel, Counter>,
    /// The version the model stage scores with, per model (0: none).
    pub model_champion: Family<ModelLabel, Gauge>,
    /// Labels learnt by the streaming model, per model.
    pub model_labels: Family<ModelLabel, Counter>,
    /// Prequential AUC of the latest evaluation window, per model.
    pub model_auc: Family<ModelLabel, Gauge<f64, AtomicU64>>,
    topics: SeriesCap,
    scripts: SeriesCap,
    queries: SeriesCap,
}

fn call_time_histogram() -> Histogram {
    // 0.5 µs to about 0.5 s.
    Histogram::new(exponential_buckets(5e-7, 4.0, 11))
}

impl Metrics {
    /// Creates and registers every metric, with the default bound on label values.
    pub fn new() -> Metrics {
        Metrics::with_series_cap(crate::config::Bounds::default().max_metric_series)
    }

    /// Creates and registers every metric; each label chosen by scripts or clients takes at most `max_series`
    /// values.
    pub fn with_series_cap(max_series: usize) -> Metrics {
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
        let bus_uncommitted = Family::default();
        registry.register(
            "bus_uncommitted_next_offset",
            "Next offset of records received and not committed yet, per partition holding some (Kafka)",
            bus_uncommitted.clone(),
        );
        let predictions = Family::default();
        let model_champion = Family::default();
        registry.register(
            "model_predictions",
            "Predictions kept by the model stage",
            predictions.clone(),
        );
        registry.register(
            "model_champion_version",
            "The version the model stage scores with (0: none)",
            model_champion.clone(),
        );
        let model_labels = Family::default();
        let model_auc = Family::<ModelLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "model_labels",
            "Labels learnt by the streaming model",
            model_labels.clone(),
        );
        registry.register(
            "model_window_auc",
            "Prequential AUC of the latest evaluation window",
            model_auc.clone(),
        );
        Metrics {
            registry,
            predictions,
            model_champion,
            model_labels,
            model_auc,
            bus_uncommitted,
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
            topics: SeriesCap::new(max_series),
            scripts: SeriesCap::new(max_series),
            queries: SeriesCap::new(max_series),
        }
    }

    /// The label of `topic`, within the bound.
    pub fn topic(&self, topic: &str) -> TopicLabel {
        TopicLabel {
            topic: self.topics.value(topic),
        }
    }

    /// The label of a model (the models are the runtime's own, so the label is bounded).
    pub fn model(&self, name: &str) -> ModelLabel {
        ModelLabel {
            model: name.to_string(),
        }
    }

    /// The label of script `id`, within the bound.
    pub fn script(&self, id: &str) -> ScriptLabel {
        ScriptLabel {
            script: self.scripts.value(id),
        }
    }

    /// The label of a GitHub request of `query` with outcome `status`, within the bound.
    pub fn request(&self, query: &str, status: &str) -> RequestLabel {
        RequestLabel {
            query: self.queries.value(query),
            status: status.to_string(),
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
        // Only the partitions holding uncommitted records now: committed ones leave the exposition.
        self.bus_uncommitted.clear();
        for (group, topic, partition, next) in &stats.uncommitted {
            self.bus_uncommitted
                .get_or_create(&PartitionLabel {
                    group: group.clone(),
                    topic: self.topic(topic).topic,
                    partition: *partition,
                })
                .set(*next);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_chosen_by_scripts_are_bounded() {
        let metrics = Metrics::with_series_cap(3);
        for i in 0..1000 {
            metrics
                .events_in
                .get_or_create(&metrics.topic(&format!("gh.t{i}")))
                .inc();
        }
        let text = metrics.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("forgecast_events_in_total{"))
            .count();
        assert_eq!(series, 4, "three topics and `other`:\n{text}");
        assert!(
            text.contains("forgecast_events_in_total{topic=\"other\"} 997"),
            "{text}"
        );
        assert_eq!(
            metrics.topic("gh.t1").topic,
            "gh.t1",
            "a known value keeps its series"
        );
    }
}
