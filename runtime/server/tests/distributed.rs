//! The distributed deployment under faults: `forgecast` processes on a real Kafka broker and a real
//! MongoDB-wire server (both on loopback, each test with its own), replaying the bundled events once. Each
//! fault (a consumer killed with SIGKILL while it holds records it has not committed, the broker stopped, the
//! database stopped) happens mid-stream, and each test first shows that the fault hit (the group's commits
//! behind what the killed consumer held, `/readyz` failing and retries counted during the outage); the
//! assertions are then the store's counts: every event stored once, every counter equal to the counts computed
//! independently from the input files, and the malformed message dead-lettered once.

mod support;

use std::time::{Duration, Instant};

use forgecast_core::aggregate::Granularity;
use forgecast_core::store::Store;
use forgecast_kafka::{KafkaBus, KafkaConfig};
use forgecast_mongo::MongoStore;
use forgecast_testkit::Service;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::{Up, expected_totals, input_events, scripts, start, stored_totals};

/// A broker, a database and a scratch directory for the processes.
struct Cluster {
    kafka: Service,
    mongo: Service,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        Cluster {
            kafka: Service::kafka(),
            mongo: Service::mongo(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts `forgecast up` on the cluster with `args`; `name` keeps its data directory apart.
    fn forgecast(&self, name: &str, args: &[&str]) -> Up {
        let brokers = self.kafka.brokers();
        let uri = self.mongo.mongo_uri();
        let mut all = vec![
            "--bus",
            "kafka",
            "--kafka-brokers",
            &brokers,
            "--store",
            "mongo",
            "--mongo-uri",
            &uri,
            "--mongo-db",
            "forgecast",
        ];
        all.extend_from_slice(args);
        start(&scripts(), &self.dir.path().join(name), &all)
    }

    async fn store(&self) -> MongoStore {
        MongoStore::connect(&self.mongo.mongo_uri(), "forgecast")
            .await
            .unwrap()
    }

    /// Puts a message that is not an event on a routed topic, as a foreign producer might.
    /// Publishes `lines` (events the store holds) on the partitions of `gh.raw.push`, one each.
    async fn publish_copies(&self, lines: &[String]) {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", self.kafka.brokers())
            .create()
            .unwrap();
        for (partition, line) in lines.iter().enumerate() {
            producer
                .send(
                    FutureRecord::<str, str>::to("gh.raw.push")
                        .partition(partition as i32)
                        .payload(line),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
    }

    async fn publish_garbage(&self) {
        let bus = KafkaBus::connect(KafkaConfig::local(self.kafka.brokers())).unwrap();
        bus.ensure_topics(&["gh.raw.push"]).await.unwrap();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", self.kafka.brokers())
            .create()
            .unwrap();
        producer
            .send(
                FutureRecord::<str, str>::to("gh.raw.push").payload("{\"id\": \"truncated"),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
}

/// The replay of the bundled events, once, at 40 times real time (about ten seconds of stream).
const PRODUCER: &[&str] = &[
    "--source",
    "replay",
    "--replay-once",
    "--replay-speed",
    "40",
];
/// A processor only: consumes its share of the partitions and stores it.
const CONSUMER: &[&str] = &["--source", "none"];

/// Waits until the store holds at least `n` events; panics with what it holds after `limit`.
async fn wait_for_events(store: &MongoStore, n: u64, limit: Duration) {
    let started = Instant::now();
    loop {
        let count = store.event_count().await.unwrap_or(0);
        if count >= n {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "the store holds {count} of {n} events after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for a process to exit by itself.
fn wait_exit(up: &mut Up, limit: Duration) {
    let started = Instant::now();
    while up.child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < limit,
            "the process did not finish; its log:\n{}",
            up.all.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every event once, every counter exact, `dead_letters` dead letters.
async fn assert_exact(store: &MongoStore, dead_letters: u64) {
    let input = input_events();
    assert_eq!(store.event_count().await.unwrap(), input.len() as u64);
    let expected = expected_totals(&input);
    for granularity in [Granularity::Hour, Granularity::Day] {
        assert_eq!(
            stored_totals(store, granularity).await,
            expected,
            "{granularity} counters"
        );
    }
    assert_eq!(store.dead_letter_count().await.unwrap(), dead_letters);
}

/// Once the producer is done, a processor takes whatever is left on the topics, then is stopped.
async fn finish_with_a_processor(cluster: &Cluster, store: &MongoStore) {
    let total = input_events().len() as u64;
    let _processor = cluster.forgecast("finisher", CONSUMER);
    wait_for_events(store, total, Duration::from_secs(180)).await;
    // Whatever was still in flight is stored too before the counts are read.
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// The text of `GET /metrics` of a running process.
async fn metrics(up: &Up) -> String {
    forgecast_github::http::client()
        .get(format!("{}/metrics", up.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of a metric line starting with `prefix` (a name with its labels), if the exposition has it.
fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Partitions of the store writers' group holding records a process received and has not committed:
/// `(topic, partition) -> next offset`, from its `/metrics`.
fn uncommitted(text: &str) -> std::collections::BTreeMap<(String, i32), i64> {
    let label = |line: &str, name: &str| -> String {
        let at = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        line[at..].split('"').next().unwrap().to_string()
    };
    text.lines()
        .filter(|l| l.starts_with("forgecast_bus_uncommitted_next_offset{"))
        .filter(|l| l.contains("group=\"forgecast-store-writer\""))
        .map(|l| {
            let next: i64 = l.rsplit(' ').next().unwrap().parse().unwrap();
            (
                (label(l, "topic"), label(l, "partition").parse().unwrap()),
                next,
            )
        })
        .collect()
}

/// The store writers' group's committed offsets of `partitions`, as the broker has them.
fn committed(cluster: &Cluster, partitions: &[(String, i32)]) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    // Not subscribed, so it does not join the group: it only reads what the group committed.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.kafka.brokers())
        .set("group.id", "forgecast-store-writer")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    let answer = reader
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    partitions
        .iter()
        .map(|(topic, partition)| {
            match answer.find_partition(topic, *partition).unwrap().offset() {
                Offset::Offset(at) => at,
                _ => 0,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_stream_loses_and_duplicates_nothing() {
    let cluster = Cluster::start();
    cluster.publish_garbage().await;
    let store = cluster.store().await;
    let mut consumer = cluster.forgecast("consumer", CONSUMER);
    support::wait_for_log(&consumer, "Kafka partitions assigned");
    let mut producer = cluster.forgecast("producer", PRODUCER);
    // Well into the stream, every pipeline topic exists; a few seconds more (the consumers look for new topics
    // every second) let the group settle, so that no rebalance takes the consumer's partitions while it is frozen.
    wait_for_events(&store, 1500, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Freeze the database: the writers hold the batches they received and cannot store them, so cannot commit
    // them either. The consumer's own figures say which records it holds. Copies of stored events, one on every
    // partition of a topic, make sure it receives some whatever the stream is doing (a copy changes no count).
    let copies: Vec<String> = {
        let events = store
            .database()
            .collection::<mongodb::bson::Document>("events");
        let mut cursor = events.find(mongodb::bson::doc! {}).limit(6).await.unwrap();
        let mut raw = Vec::new();
        while cursor.advance().await.unwrap() {
            let doc: mongodb::bson::Document = cursor.deserialize_current().unwrap();
            raw.push(doc.get_str("raw").unwrap().to_string());
        }
        raw
    };
    cluster.mongo.pause();
    cluster.publish_copies(&copies).await;
    let started = Instant::now();
    let held = loop {
        let text = metrics(&consumer).await;
        let held = uncommitted(&text);
        if !held.is_empty() {
            break held;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the consumer never held uncommitted records; its bus metrics:\n{}\nits log:\n{}",
            text.lines()
                .filter(|l| l.contains("bus_") || l.contains("events_out") || l.contains("store_"))
                .collect::<Vec<_>>()
                .join("\n"),
            consumer.all.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    consumer.child.kill().unwrap();
    consumer.child.wait().unwrap();
    let partitions: Vec<(String, i32)> = held.keys().cloned().collect();
    let at_kill = committed(&cluster, &partitions);
    let behind: Vec<usize> = (0..partitions.len())
        .filter(|&i| at_kill[i] < held[&partitions[i]])
        .collect();
    assert!(
        !behind.is_empty(),
        "the killed consumer held received records beyond the group's commits: {held:?} vs {at_kill:?}"
    );
    cluster.mongo.resume();

    let _consumer = cluster.forgecast("consumer", CONSUMER);
    wait_exit(&mut producer, Duration::from_secs(180));
    finish_with_a_processor(&cluster, &store).await;
    assert_exact(&store, 1).await;
    // The group took those records up again from its last commit and committed past them: redelivered, and
    // (by the counts above) stored once.
    // Commits are sent after each batch, asynchronously: give the last ones a moment to arrive.
    let started = Instant::now();
    loop {
        let at_end = committed(&cluster, &partitions);
        let short: Vec<String> = behind
            .iter()
            .filter(|&&i| at_end[i] < held[&partitions[i]])
            .map(|&i| {
                format!(
                    "{:?}: committed {}, short of {}",
                    partitions[i], at_end[i], held[&partitions[i]]
                )
            })
            .collect();
        if short.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the group never committed past what the killed consumer held: {short:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let letter_origin = {
        let letters = store
            .database()
            .collection::<mongodb::bson::Document>("dead_letters");
        let letter = letters
            .find_one(mongodb::bson::doc! {})
            .await
            .unwrap()
            .unwrap();
        assert_eq!(letter.get_str("stage").unwrap(), "consume");
        letter.get_str("origin").unwrap().to_string()
    };
    assert!(letter_origin.starts_with("gh.raw.push/"), "{letter_origin}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stopped_mid_stream_loses_and_duplicates_nothing() {
    let mut cluster = Cluster::start();
    let store = cluster.store().await;
    let mut producer = cluster.forgecast("producer", PRODUCER);
    wait_for_events(&store, 300, Duration::from_secs(120)).await;
    cluster.kafka.stop();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stored_while_down = store.event_count().await.unwrap();
    assert!(stored_while_down < input_events().len() as u64);
    cluster.kafka.start();
    wait_exit(&mut producer, Duration::from_secs(240));
    assert!(
        producer.all.lock().unwrap().contains("Stopped cleanly"),
        "{}",
        producer.all.lock().unwrap()
    );
    finish_with_a_processor(&cluster, &store).await;
    assert_exact(&store, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_stopped_mid_stream_loses_and_duplicates_nothing() {
    let mut cluster = Cluster::start();
    let mut producer = cluster.forgecast("producer", PRODUCER);
    let stored_at_stop = {
        let store = cluster.store().await;
        wait_for_events(&store, 300, Duration::from_secs(120)).await;
        store.event_count().await.unwrap()
    };
    cluster.mongo.stop();
    // Writes fail once the driver has waited for a server (5 s in the test's URI, for each step that selects one:
    // a write in progress may finish its counter fold first) and are retried; the process says so while it lasts:
    // /readyz answers 503 and the retries are counted. The database stays down until it does, a minute at most.
    let started = Instant::now();
    let mut unready = false;
    while !unready && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let status = forgecast_github::http::client()
            .get(format!("{}/readyz", producer.url))
            .send()
            .await
            .unwrap()
            .status();
        unready = status == 503;
    }
    let retries = metric(&metrics(&producer).await, "forgecast_store_retries_total").unwrap_or(0.0);
    // A while longer down, so that the retries back off more than once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.mongo.start();
    assert!(
        unready,
        "/readyz never answered 503 while the database was down; log:\n{}",
        producer.all.lock().unwrap()
    );
    assert!(
        retries > 0.0,
        "no store retry counted while the database was down"
    );
    assert!(
        stored_at_stop < input_events().len() as u64,
        "the database stopped after the end of the stream"
    );
    let store = cluster.store().await;
    wait_exit(&mut producer, Duration::from_secs(240));
    finish_with_a_processor(&cluster, &store).await;
    assert_exact(&store, 0).await;
    // The writers folded counter deltas into pages along the way (a fold cut by the outage left its deltas
    // pending); folding what is left moves counts, never changes them.
    let pages = store
        .database()
        .collection::<mongodb::bson::Document>("counters")
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap();
    assert!(pages > 0, "the writers never folded counter deltas");
    store.fold_pending().await.unwrap();
    assert_exact(&store, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_through_kafka_lands_in_mongodb_once_and_resumes() {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use forgecast_gharchive::replay::{SAMPLES, sample_text};
    use std::io::Write;

    let cluster = Cluster::start();
    // The 2015 sample as the GH Archive hour it comes from.
    let hours = cluster.dir.path().join("hours");
    std::fs::create_dir_all(&hours).unwrap();
    let text = sample_text(SAMPLES[0].0, SAMPLES[0].1).unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    std::fs::write(hours.join("2015-01-01-15.json.gz"), gz.finish().unwrap()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let backfill = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_forgecast"))
            .args([
                "backfill",
                "--from",
                "2015-01-01T15",
                "--to",
                "2015-01-01T15",
            ])
            .arg("--source-dir")
            .arg(&hours)
            .arg("--data-dir")
            .arg(cluster.dir.path().join("backfill"))
            .arg("--scripts")
            .arg(scripts())
            .args([
                "--bus",
                "kafka",
                "--kafka-brokers",
                &cluster.kafka.brokers(),
            ])
            .args([
                "--store",
                "mongo",
                "--mongo-uri",
                &cluster.mongo.mongo_uri(),
            ])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let output = backfill();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("1 hours done"), "{printed}");
    let store = cluster.store().await;
    // The backfill's own writer drained its partitions before it exited.
    wait_for_events(&store, lines.len() as u64, Duration::from_secs(60)).await;
    assert_eq!(store.event_count().await.unwrap(), lines.len() as u64);
    let expected = expected_totals(&lines);
    assert_eq!(stored_totals(&store, Granularity::Hour).await, expected);

    // Done hours are skipped the next time; nothing changes.
    let output = backfill();
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 skipped"));
    assert_eq!(stored_totals(&store, Granularity::Hour).await, expected);
}
