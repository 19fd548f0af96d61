//! Embedded pipeline throughput: the bundled real events replayed (as fast as possible, new ids per round)
//! through the shipped routing script, the in-process bus and the SQLite store with its counters.
//!
//! Prints events per second for the whole pipeline and, in the same run, for each stage alone, so that the
//! limiting stage is visible. `FORGECAST_BENCH_EVENTS` sets the number of events (default 1,000,000).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{rate, replay_config, time_writes};
use forgecast::config::{BusPlan, PipelinePlan, SourcePlan, StoragePlan, StorePlan};
use forgecast::metrics::Metrics;
use forgecast::pipeline::Pipeline;
use forgecast::pipeline::route::{TopicCap, route_batch};
use forgecast_core::Event;
use forgecast_core::source::Incoming;
use forgecast_core::store::Store;
use forgecast_embedded::SqliteStore;
use forgecast_gharchive::replay::Replay;
use forgecast_script::host::check_dir;
use forgecast_script::watch::WatchConfig;
use forgecast_script::{Limits, ScriptEngine};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Every replayed event, collected in memory (for the stage-alone measurements).
async fn replayed(events: u64) -> (Vec<Vec<Incoming>>, Duration) {
    let replay = Replay::bundled(replay_config(events)).unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let started = Instant::now();
    let producer = tokio::spawn(replay.run(tx, CancellationToken::new()));
    let mut batches = Vec::new();
    while let Some(batch) = rx.recv().await {
        batches.push(batch);
    }
    producer.await.unwrap();
    (batches, started.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events: u64 = std::env::var("FORGECAST_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let scripts = root.join("scripts");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("Embedded pipeline, {events} replayed real events, {cores} cores");

    // The whole pipeline, as `forgecast up --replay-speed 0` runs it.
    let data = tempfile::tempdir().unwrap();
    let plan = PipelinePlan {
        scripts: scripts.clone(),
        source: SourcePlan::Replay(replay_config(events)),
        limits: Limits::default(),
        watch: WatchConfig::default(),
        enrich_share: 0.2,
        bus: BusPlan::Embedded,
        storage: StoragePlan {
            data_dir: data.path().to_path_buf(),
            store: StorePlan::Embedded,
        },
        bounds: Default::default(),
        models: false,
    };
    let started = Instant::now();
    let pipeline = Pipeline::start(&plan).await.unwrap();
    let shared = pipeline.shared().clone();
    while !pipeline.source_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let summary = pipeline.drain().await;
    let took = started.elapsed();
    assert_eq!(summary.written.stored, events);
    assert_eq!(shared.store.event_count().await.unwrap(), events);
    println!("  whole pipeline          {}", rate(events, took));
    let size = std::fs::metadata(data.path().join("forgecast.sqlite"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("  store file              {:.0} MB", size as f64 / 1e6);

    // Each stage alone, on the same events.
    let (batches, took) = replayed(events).await;
    println!("  replay source alone     {}", rate(events, took));

    let engine = ScriptEngine::default();
    let (loaded, _) = check_dir(&engine, &scripts);
    let routing = loaded.iter().find(|s| s.id() == "routing").unwrap();
    let metrics = Metrics::new();
    let topics = TopicCap::new(64);
    let started = Instant::now();
    let mut routed = Vec::with_capacity(batches.len());
    for batch in batches {
        routed.push(route_batch(&engine, routing, batch, &metrics, &topics));
    }
    println!(
        "  routing script alone    {}",
        rate(events, started.elapsed())
    );

    let store_dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&store_dir.path().join("s.sqlite")).unwrap();
    let mut write_batches: Vec<Vec<Arc<Event>>> = Vec::new();
    for records in routed {
        let batch = records
            .into_iter()
            .filter_map(|r| match r.body {
                forgecast_core::RecordBody::Event(e) => Some(e),
                forgecast_core::RecordBody::DeadLetter(_) => None,
            })
            .collect();
        write_batches.push(batch);
    }
    let flat: Vec<Arc<Event>> = write_batches.into_iter().flatten().collect();
    println!(
        "  SQLite store alone      {}",
        rate(events, time_writes(&store, &flat).await)
    );
}
