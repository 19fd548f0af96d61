//! The routing stage: every event through `route(event)`, onto the topics it names.
//!
//! An event the script fails on (an error, a limit, a bad return value) goes to the dead-letter topic with the
//! error, the script id and the version; the stage goes on with the next event.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use forgecast_connect::backend::AnyBus;
use forgecast_core::bus::Bus;
use forgecast_core::source::Incoming;
use forgecast_core::{DeadLetter, Record};
use forgecast_script::{EventView, Script, ScriptEngine};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::backoff::retry;
use crate::metrics::{Metrics, ScriptLabel, StageLabel, TopicLabel};

/// Routes one batch with one script version; returns the records to publish.
pub fn route_batch(
    engine: &ScriptEngine,
    routing: &Script,
    batch: Vec<Incoming>,
    metrics: &Metrics,
) -> Vec<Record> {
    let mut records = Vec::with_capacity(batch.len());
    let timing = metrics.script_seconds.get_or_create_owned(&ScriptLabel {
        script: routing.id().to_string(),
    });
    for item in batch {
        match item {
            Incoming::Event(event) => {
                let started = Instant::now();
                let decision = routing.route(engine, EventView::new(event.clone()));
                timing.observe(started.elapsed().as_secs_f64());
                match decision {
                    Ok(decision) => {
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
            .get_or_create(&TopicLabel {
                topic: topic.to_string(),
            })
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
        while let Some(batch) = rx.blocking_recv() {
            let items = batch.len() as u64;
            let scripts = shared.host.scripts();
            let routing = scripts
                .routing()
                .expect("a routing script stays live once loaded");
            let records = route_batch(shared.host.engine(), routing, batch, &shared.metrics);
            routed += records.len() as u64;
            if shared.tap.receiver_count() > 0 {
                for record in &records {
                    let _ = shared.tap.send(record.clone());
                }
            }
            let published = runtime.block_on(retry(
                "publish",
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
