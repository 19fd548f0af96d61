//! Distributed pipeline throughput against the embedded one, in the same run and on the same events: the
//! bundled real events replayed as fast as possible through the shipped routing script, then either the
//! in-process bus and SQLite, or Kafka (KRaft, one broker on loopback) and SecantusDB (a MongoDB-wire server on
//! loopback). Each backend alone is measured too, so the limiting one is visible.
//!
//! `FORGECAST_BENCH_EVENTS` sets the number of events (default 20,000). Needs `tools/services.sh install`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{rate, replay_config, time_writes};
use forgecast::config::{BusPlan, PipelinePlan, SourcePlan, StoragePlan, StorePlan};
use forgecast::pipeline::Pipeline;
use forgecast_core::bus::{Bus, Subscription, TopicFilter};
use forgecast_core::source::Incoming;
use forgecast_core::store::Store;
use forgecast_core::{Event, Record};
use forgecast_gharchive::replay::Replay;
use forgecast_kafka::{KafkaBus, KafkaConfig};
use forgecast_mongo::MongoStore;
use forgecast_script::Limits;
use forgecast_script::watch::WatchConfig;
use forgecast_testkit::{Service, repo_root};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Runs the whole pipeline on `events` replayed events; returns the time from the first event to the last
/// one stored (start-up, which loads the GitHut history, excluded).
async fn whole(events: u64, bus: BusPlan, store: StorePlan) -> Duration {
    let data = tempfile::tempdir().unwrap();
    let plan = PipelinePlan {
        scripts: repo_root().join("scripts"),
        source: SourcePlan::Replay(replay_config(events)),
        limits: Limits::default(),
        watch: WatchConfig::default(),
        enrich_share: 0.2,
        bus,
        storage: StoragePlan {
            data_dir: data.path().to_path_buf(),
            store,
        },
        bounds: Default::default(),
        models: false,
    };
    let pipeline = Pipeline::start(&plan).await.unwrap();
    let started = Instant::now();
    let shared = pipeline.shared().clone();
    // The writer's own count, read in memory: asking the store every few milliseconds would load the very
    // server being measured.
    while shared.metrics.stored.get() < events {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    assert_eq!(shared.store.event_count().await.unwrap(), events);
    pipeline.drain().await;
    took
}

/// The replayed events, in memory.
async fn replayed(events: u64) -> Vec<Arc<Event>> {
    let replay = Replay::bundled(replay_config(events)).unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let producer = tokio::spawn(replay.run(tx, CancellationToken::new()));
    let mut all = Vec::new();
    while let Some(batch) = rx.recv().await {
        for item in batch {
            if let Incoming::Event(e) = item {
                all.push(e);
            }
        }
    }
    producer.await.unwrap();
    all
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events: u64 = std::env::var("FORGECAST_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("Whole pipeline, {events} replayed real events, {cores} cores (start-up excluded)");
    let took = whole(events, BusPlan::Embedded, StorePlan::Embedded).await;
    println!("  embedded (queues + SQLite)      {}", rate(events, took));

    let kafka = Service::kafka();
    let mongo = Service::mongo();
    let mut config = KafkaConfig::local(kafka.brokers());
    config.partitions = 6;
    let bus = BusPlan::Kafka {
        config: config.clone(),
        group: "bench-writer".into(),
    };
    let store = StorePlan::Mongo {
        uri: mongo.mongo_uri(),
        database: "bench_whole".into(),
    };
    let took = whole(events, bus, store).await;
    println!("  Kafka + MongoDB (SecantusDB)    {}", rate(events, took));

    // Each backend alone, on the same events.
    let all = replayed(events).await;
    let kafka_bus = KafkaBus::connect(config).unwrap();
    let mut subscription = kafka_bus
        .subscribe("bench-alone", vec![TopicFilter::Prefix("bench.".into())])
        .unwrap();
    let topic: Arc<str> = Arc::from("bench.raw.all");
    let started = Instant::now();
    for chunk in all.chunks(512) {
        let records = chunk
            .iter()
            .map(|e| Record::event(topic.clone(), None, e.clone()))
            .collect();
        kafka_bus.publish(records).await.unwrap();
    }
    println!(
        "  Kafka publish alone             {}",
        rate(events, started.elapsed())
    );
    let started = Instant::now();
    let mut received = 0u64;
    while received < events {
        let batch = subscription.next_batch(32_768).await.unwrap().unwrap();
        received += batch.len() as u64;
        subscription.commit().await.unwrap();
    }
    println!(
        "  Kafka consume alone             {}  (subscribed before the publishing)",
        rate(events, started.elapsed())
    );

    let mongo_store = MongoStore::connect(&mongo.mongo_uri(), "bench_alone")
        .await
        .unwrap();
    println!(
        "  MongoDB store alone             {}",
        rate(events, time_writes(&mongo_store, &all).await)
    );
}
