//! The routing stage: every event through `route(event)`, onto the topics it names.
//!
//! An event the script fails on (an error, a limit, a bad return value) goes to the dead-letter topic with the
//! error, the script id and the version; the stage goes on with the next event. So does an event routed to a
//! new topic once routing has used its bound of distinct topics ([`TopicCap`]): a script cannot make the
//! process (and, on Kafka, the broker) hold an unbounded number of topics.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::backends::AnyBus;
use forgecast_core::bus::Bus;
use forgecast_core::source::Incoming;
use forgecast_core::topic::DEAD_LETTER;
use forgecast_core::{DeadLetter, Record};
use forgecast_script::{EventView, Script, ScriptEngine};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::metrics::{Metrics, StageLabel};
use crate::retry::{PIPELINE, retry};

/// The distinct topics routing may publish to, and those it has.
#[derive(Debug)]
pub struct TopicCap {
    max: usize,
    known: Mutex<HashSet<Arc<str>>>,
    refused: AtomicU64,
}

/// What `GET /api/scripts` shows of the bound, beside the routing script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TopicsStatus {
    /// Distinct topics routed to so far (the dead-letter topic not counted).
    pub used: usize,
    /// The bound (`bounds.max_topics`).
    pub max: usize,
    /// Events dead-lettered because they named a new topic past the bound.
    pub refused_events: u64,
}

impl TopicCap {
    /// At most `max` distinct topics.
    pub fn new(max: usize) -> TopicCap {
        TopicCap {
            max,
            known: Mutex::new(HashSet::new()),
            refused: AtomicU64::new(0),
        }
    }

    /// Whether records may go to `topic`: one seen before, or a new one while there is room.
    fn admit(&self, topic: &Arc<str>) -> bool {
        if &**topic == DEAD_LETTER {
            return true;
        }
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.contains(topic) {
            return true;
        }
        if known.len() >= self.max {
            return false;
        }
        known.insert(topic.clone());
        true
    }

    /// The bound and its use.
    pub fn status(&self) -> TopicsStatus {
        TopicsStatus {
            used: self.known.lock().unwrap_or_else(|e| e.into_inner()).len(),
            max: self.max,
            refused_events: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// Routes one batch with one script version; returns the records to publish.
pub fn route_batch(
    engine: &ScriptEngine,
    routing: &Script,
    batch: Vec<Incoming>,
    metrics: &Metrics,
    topics: &TopicCap,
) -> Vec<Record> {
    let mut records = Vec::with_capacity(batch.len());
    let timing = metrics
        .script_seconds
        .get_or_create_owned(&metrics.script(routing.id()));
    for item in batch {
        match item {
            Incoming::Event(event) => {
                let started = Instant::now();
                let decision = routing.route(engine, EventView::new(event.clone()));
                timing.observe(started.elapsed().as_secs_f64());
                match decision {
                    Ok(decision) => {
                        if let Some(over) = decision.topics.iter().find(|t| !topics.admit(t)) {
                            let refused = topics.refused.fetch_add(1, Ordering::Relaxed) + 1;
                            let error = format!(
                                "routed to {over:?}, a new topic past the bound of {} distinct topics (bounds.max_topics)",
                                topics.max
                            );
                            if refused == 1 || refused.is_multiple_of(10_000) {
                                tracing::warn!(component = "route", script = %routing.id(), version = %routing.hash(), topic = %over, max_topics = topics.max, refused, "Routing reached its bound of distinct topics; events naming new topics go to dead letters.");
                            }
                            records.push(Record::dead_letter(DeadLetter {
                                stage: "route".into(),
                                error,
                                script: Some(routing.id().to_string()),
                                version: Some(routing.hash().to_string()),
                                origin: None,
                                raw: event.raw.to_string(),
                            }));
                            continue;
                        }
                        let key = decision
                            .key
                            .unwrap_or_else(|| Arc::from(event.repo.as_str()));
                        for topic in decision.topics {
                            records.push(Record::event(topic, Some(key.clone()), event.clone()));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(component = "route", script = %e.script, version = %e.version, line = e.line, event = %event.id, error = %e.message, "Script failed on an event; event sent to dead letters.");
                        records.push(Record::dead_letter(DeadLetter {
                            stage: "route".into(),
                            error: e.message.clone(),
                            script: Some(e.script),
                            version: Some(e.version),
                            origin: None,
                            raw: event.raw.to_string(),
                        }));
                    }
                }
            }
            Incoming::Malformed(letter) => records.push(Record::dead_letter(letter)),
        }
    }
    count(&records, metrics);
    records
}

fn count(records: &[Record], metrics: &Metrics) {
    let mut per_topic: HashMap<&str, u64> = HashMap::new();
    let mut dead: HashMap<&str, u64> = HashMap::new();
    for record in records {
        *per_topic.entry(&record.topic).or_default() += 1;
        if let forgecast_core::RecordBody::DeadLetter(letter) = &record.body {
            *dead.entry(&letter.stage).or_default() += 1;
        }
    }
    for (topic, n) in per_topic {
        metrics
            .events_in
            .get_or_create(&metrics.topic(topic))
            .inc_by(n);
    }
    for (stage, n) in dead {
        metrics
            .dead_letters
            .get_or_create(&StageLabel {
                stage: stage.to_string(),
            })
            .inc_by(n);
    }
}

/// Runs the stage on a blocking thread until the source is done, then closes the bus. Returns records routed.
pub fn spawn(
    mut rx: mpsc::Receiver<Vec<Incoming>>,
    bus: AnyBus,
    shared: Arc<Shared>,
    stop_all: CancellationToken,
) -> JoinHandle<u64> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut routed = 0u64;
        let publish_size = bus.publish_size();
        while let Some(mut batch) = rx.blocking_recv() {
            // Batches already waiting are routed and published with this one, up to the bus's publish size
            // (on Kafka, larger publishes cost the broker less per event; the in-process bus takes them as
            // they come: a backfill measured about 5 % more CPU with them joined).
            while batch.len() < publish_size {
                match rx.try_recv() {
                    Ok(more) => batch.extend(more),
                    Err(_) => break,
                }
            }
            let items = batch.len() as u64;
            let scripts = shared.host.scripts();
            let routing = scripts
                .routing()
                .expect("a routing script stays live once loaded");
            let records = route_batch(
                shared.host.engine(),
                routing,
                batch,
                &shared.metrics,
                &shared.topics,
            );
            routed += records.len() as u64;
            if shared.tap.receiver_count() > 0 {
                for record in &records {
                    let _ = shared.tap.send(record.clone());
                }
            }
            let published = runtime.block_on(retry(
                "publish",
                &PIPELINE,
                &stop_all,
                || {},
                || bus.publish(records.clone()),
            ));
            if published.is_none() {
                tracing::error!(
                    component = "route",
                    records = records.len(),
                    "Shutdown forced while the bus was failing; records not published."
                );
                break;
            }
            // `published` before `taken`: whoever sees the items taken also sees their records published.
            shared
                .published
                .fetch_add(records.len() as u64, Ordering::SeqCst);
            shared.taken.fetch_add(items, Ordering::SeqCst);
        }
        bus.close();
        routed
    })
}
