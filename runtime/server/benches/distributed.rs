//! Distributed pipeline throughput against the embedded one, in the same run and on the same events: the
//! bundled real events replayed as fast as possible through the shipped routing script, then either the
//! in-process bus and SQLite, or Kafka (KRaft, one broker on loopback) and SecantusDB (a MongoDB-wire server on
//! loopback). Each backend alone is measured too, so the limiting one is visible.
//!
//! The reference for the MongoDB side is the server's own rate at taking the same event documents with plain
//! `insert_many` (no transaction, no counters), measured in the same run on the same server: the store cannot be
//! faster than that, and the distributed pipeline is judged against it.
//!
//! The new broker first serves a throwaway consumer group, as any broker that has served one has its group state,
//! then a first whole run of `FORGECAST_BENCH_WARM_UP` events (default 10,000; 0 for none), reported on its own:
//! on a new broker that run also pays for the JVM compiling the broker's produce and fetch paths and for creating
//! routing's topics, which a broker that has served for a while has behind it. The measured run follows on the
//! same broker. `FORGECAST_BENCH_EVENTS` sets its number of events (default 20,000). `FORGECAST_BENCH_MONGO_URI`
//! runs the MongoDB side on a server already running (another build of SecantusDB, a real `mongod` replica set)
//! instead of the SecantusDB from PyPI that the benchmark starts. Needs `tools/services.sh install`.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
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
use forgecast_mongo::{MongoStore, event_document};
use forgecast_script::Limits;
use forgecast_script::watch::WatchConfig;
use forgecast_testkit::{Service, repo_root};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// CPU time (user and system) that process `pid` has used so far, `None` for `self`; zero if it has ended.
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // The fields after the command's closing parenthesis; utime and stime are the 14th and 15th of the line.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_second
}

/// CPU seconds of this process and of the services' processes, taken before and after a measurement.
struct CpuUse {
    pids: Vec<(&'static str, Option<u32>)>,
    before: Vec<f64>,
}

impl CpuUse {
    fn start(pids: Vec<(&'static str, Option<u32>)>) -> CpuUse {
        let before = pids.iter().map(|(_, pid)| cpu_seconds(*pid)).collect();
        CpuUse { pids, before }
    }

    /// `name X s (Y us/event), …`: the CPU time each process used since the start, and per event.
    fn line(&self, events: u64) -> String {
        self.pids
            .iter()
            .zip(&self.before)
            .map(|((name, pid), before)| {
                let used = cpu_seconds(*pid) - before;
                format!(
                    "{name} {used:.2} s ({:.0} us/event)",
                    used * 1e6 / events as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What one run of the whole pipeline measured.
struct Whole {
    /// From the first event to the last one stored (start-up, which loads the GitHut history, excluded).
    took: Duration,
    /// From the first event to the store writer taking its first record: on Kafka, routing creating its topics on
    /// first use and the writer's group taking them.
    first: Duration,
    /// The CPU time the processes asked for used over the same span.
    cpu: String,
}

impl Whole {
    /// The line saying when the writer began and the rate from then on.
    fn steady(&self, events: u64) -> String {
        let after = self.took.saturating_sub(self.first).as_secs_f64();
        format!(
            "(first record taken by the writer after {:.2} s; {:.0} events/s from then)",
            self.first.as_secs_f64(),
            events as f64 / after.max(1e-9)
        )
    }
}

/// Runs the whole pipeline on `events` replayed events, with the CPU time of `processes` over the run.
async fn whole(
    events: u64,
    bus: BusPlan,
    store: StorePlan,
    processes: Vec<(&'static str, Option<u32>)>,
) -> Whole {
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
    let cpu = CpuUse::start(processes);
    let started = Instant::now();
    let shared = pipeline.shared().clone();
    // The writer's own count, read in memory: asking the store every few milliseconds would load the very
    // server being measured.
    let mut first = None;
    loop {
        let stored = shared.metrics.stored.get();
        if first.is_none() && shared.writer_taken.load(Ordering::SeqCst) > 0 {
            first = Some(started.elapsed());
        }
        if stored >= events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let cpu = cpu.line(events);
    assert_eq!(shared.store.event_count().await.unwrap(), events);
    pipeline.drain().await;
    Whole {
        took,
        first: first.unwrap_or(took),
        cpu,
    }
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

/// Has a consumer group take a record on the new broker, so that the cluster's group state exists: a broker's
/// first group waits for it to be created (librdkafka asks again after a second), once in a cluster's life, which
/// is not the pipeline's cost.
async fn warm(config: &KafkaConfig) {
    let bus = KafkaBus::connect(config.clone()).unwrap();
    let mut subscription = bus
        .subscribe(
            "bench-warm-up",
            vec![TopicFilter::Prefix("warm-up.".into())],
        )
        .unwrap();
    let event = replayed(1).await.remove(0);
    bus.publish(vec![Record::event(Arc::from("warm-up.raw"), None, event)])
        .await
        .unwrap();
    while subscription
        .next_batch(1)
        .await
        .unwrap()
        .unwrap()
        .is_empty()
    {}
    subscription.commit().await.unwrap();
}

/// How long the server takes plain `insert_many` calls of `per_call` documents of `events`, into a collection of
/// its own.
async fn time_insert_many(
    uri: &str,
    database: &str,
    events: &[Arc<Event>],
    per_call: usize,
) -> Duration {
    let client = mongodb::Client::with_uri_str(uri).await.unwrap();
    let collection = client
        .database(database)
        .collection::<mongodb::bson::Document>("events");
    let started = Instant::now();
    for chunk in events.chunks(per_call) {
        let mut attempt = 1;
        // Unordered after a failure, so that the documents stored before it are skipped and the rest stored.
        while let Err(e) = collection
            .insert_many(chunk.iter().map(|e| event_document(e)))
            .ordered(attempt == 1)
            .await
        {
            use mongodb::error::ErrorKind;
            if matches!(*e.kind, ErrorKind::InsertMany(ref f) if f.write_concern_error.is_none()
                && f.write_errors.iter().flatten().all(|w| w.code == 11000))
            {
                break;
            }
            assert!(attempt < 5, "insert_many failed {attempt} times: {e}");
            println!("  (insert_many failed, sent again: {e})");
            attempt += 1;
        }
    }
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events: u64 = std::env::var("FORGECAST_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let warm_up: u64 = std::env::var("FORGECAST_BENCH_WARM_UP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("Whole pipeline, {events} replayed real events, {cores} cores (start-up excluded)");
    let embedded = whole(
        events,
        BusPlan::Embedded,
        StorePlan::Embedded,
        vec![("pipeline", None)],
    )
    .await;
    println!(
        "  embedded (queues + SQLite)      {}",
        rate(events, embedded.took)
    );
    println!("                                  (CPU: {})", embedded.cpu);

    let kafka = Service::kafka();
    let external = std::env::var("FORGECAST_BENCH_MONGO_URI").ok();
    println!(
        "  (MongoDB side: {})",
        match external {
            Some(_) => "the server at FORGECAST_BENCH_MONGO_URI, a database per measurement",
            None => "SecantusDB from PyPI, a fresh server per measurement",
        }
    );
    // A server of its own for each measurement, so that none runs on a server that earlier ones filled (its
    // cache, its checkpoints); a server given by URI is shared, a database each.
    let fresh = || match &external {
        Some(uri) => (None, uri.clone()),
        None => {
            let mongo = Service::mongo();
            let uri = mongo.mongo_uri();
            (Some(mongo), uri)
        }
    };
    let mut config = KafkaConfig::local(kafka.brokers());
    config.partitions = 6;
    warm(&config).await;
    let bus = BusPlan::Kafka {
        config: config.clone(),
        group: "bench-writer".into(),
    };
    // One whole run on Kafka and a fresh MongoDB server, with the CPU of the pipeline, the broker and the server.
    let on_kafka = async |events: u64, database: &str| {
        let (server, uri) = fresh();
        let processes = vec![
            ("pipeline", None),
            ("broker", kafka.pid()),
            ("server", server.as_ref().and_then(Service::pid)),
        ];
        let store = StorePlan::Mongo {
            uri,
            database: database.into(),
        };
        whole(events, bus.clone(), store, processes).await
    };
    // The first run on a new broker also pays for its JIT compiling the produce and fetch paths and for creating
    // routing's topics; a broker that has served for a while has done both. It is reported, then the measured run
    // follows on the same broker and writer group (which goes on from the first run's committed offsets).
    if warm_up > 0 {
        let first = on_kafka(warm_up, "bench_warm_up").await;
        println!(
            "  Kafka + MongoDB, new broker     {}",
            rate(warm_up, first.took)
        );
        println!("                                  (CPU: {})", first.cpu);
    }
    let distributed = on_kafka(events, "bench_whole").await;
    println!(
        "  Kafka + MongoDB{}{}",
        if warm_up > 0 {
            ", served before  "
        } else {
            "                 "
        },
        rate(events, distributed.took)
    );
    println!(
        "                                  {}",
        distributed.steady(events)
    );
    println!(
        "                                  (CPU: {})",
        distributed.cpu
    );

    // Each backend alone, on the same events.
    let all = replayed(events).await;
    let kafka_bus = KafkaBus::connect(config).unwrap();
    let mut subscription = kafka_bus
        .subscribe("bench-alone", vec![TopicFilter::Prefix("bench.".into())])
        .unwrap();
    let topic: Arc<str> = Arc::from("bench.raw.all");
    let broker = || vec![("broker", kafka.pid())];
    let cpu = CpuUse::start(broker());
    let started = Instant::now();
    for chunk in all.chunks(512) {
        let records = chunk
            .iter()
            .map(|e| Record::event(topic.clone(), None, e.clone()))
            .collect();
        kafka_bus.publish(records).await.unwrap();
    }
    println!(
        "  Kafka publish alone             {}  (CPU: {})",
        rate(events, started.elapsed()),
        cpu.line(events)
    );
    let cpu = CpuUse::start(broker());
    let started = Instant::now();
    let mut received = 0u64;
    while received < events {
        let batch = subscription.next_batch(32_768).await.unwrap().unwrap();
        received += batch.len() as u64;
        subscription.commit().await.unwrap();
    }
    println!(
        "  Kafka consume alone             {}  (subscribed before the publishing; CPU: {})",
        rate(events, started.elapsed()),
        cpu.line(events)
    );

    let (server, uri) = fresh();
    let mongo_store = MongoStore::connect(&uri, "bench_alone").await.unwrap();
    println!(
        "  MongoDB store alone             {}",
        rate(events, time_writes(&mongo_store, &all).await)
    );
    drop((mongo_store, server));

    // The reference: the same documents into the same kind of server with nothing else, in calls of the store's slice
    // and in calls of the writer's whole batch (the driver splits those into messages of up to 48 MB).
    let mut fastest = Duration::MAX;
    for (per_call, database) in [(256, "bench_insert_256"), (32_768, "bench_insert_batch")] {
        let (server, uri) = fresh();
        let took = time_insert_many(&uri, database, &all, per_call).await;
        drop(server);
        fastest = fastest.min(took);
        println!(
            "  MongoDB insert_many alone       {}  (calls of {per_call} documents)",
            rate(events, took)
        );
    }
    println!(
        "  Kafka + MongoDB whole / insert_many: {:.2} (target: at least 0.5)",
        fastest.as_secs_f64() / distributed.took.as_secs_f64()
    );
}
