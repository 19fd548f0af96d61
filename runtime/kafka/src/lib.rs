//! The Kafka bus: the same topics as the in-process bus, on Apache Kafka through librdkafka.
//!
//! - Publishing creates a topic the first time it is named (configured partitions and replication), keys every
//!   record by its partition key or else its repository (one repository's events stay in order), and returns
//!   once the broker acknowledged every record. The producer is idempotent, so its own retries never
//!   duplicate a record; a record the broker never acknowledged makes `publish` fail, and the caller publishes
//!   the batch again (the store ignores the copies).
//! - Events travel as their GH Archive JSON line, so any Kafka consumer (Spark's included) reads them as they
//!   are; dead letters travel as JSON objects with the reason, marked by the header [`BODY_HEADER`].
//! - A subscription is a member of a Kafka consumer group; one by pattern finds a topic created later at once
//!   when this process created it, and within about [`TOPIC_REFRESH_MS`] when another did. Offsets are
//!   committed only when the subscriber commits, after its sink accepted the records, and asynchronously: a
//!   commit that fails (a broker away) is covered by the next one, and a subscription that ends waits a moment
//!   for its last commit. On a rebalance the offsets not yet committed are dropped and the new owner gets those
//!   records again. A message that is not an event becomes a dead letter naming the topic, partition and
//!   offset.
//! - A broker that is down is waited for: librdkafka reconnects with backoff, consumers keep polling, and
//!   `publish` keeps failing (and being retried by its caller) until records are acknowledged again. The
//!   client's complaints meanwhile are logged once per kind every [`QUIET`], not ten times a second.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use forgecast_core::bus::{Bus, BusError, BusStats, Subscription, TopicFilter};
use forgecast_core::topic::validate_topic;
use forgecast_core::{DeadLetter, Event, Record, RecordBody};
use futures_util::{FutureExt, StreamExt};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

/// How long a closed subscription waits for more records before it reports the end.
const DRAIN_IDLE: Duration = Duration::from_secs(2);
/// How long a closed subscription that never had partitions assigned waits for them.
const DRAIN_UNASSIGNED: Duration = Duration::from_secs(20);
/// The header that says what a message carries; messages without it are events.
pub const BODY_HEADER: &str = "forgecast-body";
/// [`BODY_HEADER`]'s value on a dead letter.
const DEAD_LETTER_BODY: &[u8] = b"dead-letter";
/// How long the producer keeps trying to deliver a record before `publish` fails (and is retried).
const DELIVERY_TIMEOUT_MS: &str = "30000";
/// How often librdkafka reports statistics (lag, retries).
const STATS_INTERVAL_MS: &str = "2000";
/// How often a group member asks the brokers for the topic list, which is how a subscription by pattern finds a
/// topic created after it subscribed (routing creates topics on first use): a new topic's records reach their
/// consumers about this much later the first time. One small metadata request per member per second.
const TOPIC_REFRESH_MS: &str = "1000";
/// How long an ending subscription waits for its last commit to be acknowledged.
const LAST_COMMIT_WAIT: Duration = Duration::from_secs(5);
/// The same complaint of the Kafka client is logged at most once in this time.
const QUIET: Duration = Duration::from_secs(10);

/// Logs a complaint of the Kafka client unless the same kind was logged less than [`QUIET`] ago.
fn complain(kind: &str, message: &str) {
    static LAST: Mutex<Option<HashMap<String, std::time::Instant>>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let last = last.get_or_insert_with(HashMap::new);
    let now = std::time::Instant::now();
    if last
        .get(kind)
        .is_some_and(|at| now.duration_since(*at) < QUIET)
    {
        return;
    }
    last.insert(kind.to_string(), now);
    tracing::warn!(component = "bus", kind, "Kafka client: {message}");
}

/// Client callbacks shared by every context: errors and logs through [`complain`].
macro_rules! quiet_client {
    () => {
        fn error(&self, error: KafkaError, reason: &str) {
            let kind = match &error {
                KafkaError::Global(code) => format!("{code:?}"),
                other => format!("{other:?}"),
            };
            complain(&kind, reason);
        }

        fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
            use rdkafka::config::RDKafkaLogLevel as L;
            match level {
                L::Emerg | L::Alert | L::Critical | L::Error | L::Warning => complain(fac, message),
                _ => tracing::debug!(component = "bus", facility = fac, "Kafka client: {message}"),
            }
        }
    };
}

/// Where the brokers are and how topics are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Partitions of a topic the bus creates.
    pub partitions: i32,
    /// Replication factor of a topic the bus creates.
    pub replication: i32,
    /// How long the group waits for a silent member before giving its partitions to others, in milliseconds.
    pub session_timeout_ms: u32,
}

impl KafkaConfig {
    /// Defaults for one broker on this machine's default port.
    pub fn local(brokers: impl Into<String>) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.into(),
            partitions: 6,
            replication: 1,
            session_timeout_ms: 10_000,
        }
    }
}

/// What the clients report through librdkafka's statistics.
#[derive(Default)]
struct Counters {
    produce_errors: AtomicU64,
    produce_retries: AtomicU64,
    /// Lag per group, summed over the partitions its members here own.
    lag: Mutex<HashMap<String, u64>>,
}

/// A subscription of this process, as the bus sees it while the subscription lives.
struct Member {
    group: String,
    /// Its offsets received but not committed.
    offsets: Weak<OffsetMap>,
    /// Told at once when this process creates a topic (others find it within [`TOPIC_REFRESH_MS`]).
    consumer: Weak<StreamConsumer<GroupContext>>,
}

/// Receives the producer's statistics.
struct ProducerContext {
    counters: Arc<Counters>,
}

impl ClientContext for ProducerContext {
    quiet_client!();

    fn stats(&self, statistics: Statistics) {
        let retries = statistics.brokers.values().map(|b| b.txretries).sum();
        self.counters
            .produce_retries
            .store(retries, Ordering::Relaxed);
    }
}

/// The Kafka bus; cheap to clone, clones share the clients.
#[derive(Clone)]
pub struct KafkaBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: KafkaConfig,
    producer: FutureProducer<ProducerContext>,
    admin: AdminClient<AdminContext>,
    /// Topics known to exist.
    topics: tokio::sync::Mutex<HashSet<String>>,
    counters: Arc<Counters>,
    /// This process's subscriptions.
    members: Mutex<Vec<Member>>,
    /// Cancelled by [`Bus::close`]: subscriptions drain, publishing is refused.
    closed: CancellationToken,
}

/// The admin client's context: only its complaints matter.
struct AdminContext;

impl ClientContext for AdminContext {
    quiet_client!();
}

fn backend(context: &str) -> impl Fn(KafkaError) -> BusError + '_ {
    move |e| BusError::Backend(format!("{context}: {e}"))
}

impl KafkaBus {
    /// Connects the producer and the admin client and makes sure the dead-letter topic exists. Brokers that
    /// are not up yet are waited for in the background; only a configuration librdkafka refuses fails here.
    pub fn connect(config: KafkaConfig) -> Result<KafkaBus, BusError> {
        let counters = Arc::new(Counters::default());
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("client.id", "forgecast")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("message.timeout.ms", DELIVERY_TIMEOUT_MS)
            .set("queue.buffering.max.messages", "200000")
            .set("statistics.interval.ms", STATS_INTERVAL_MS)
            .create_with_context(ProducerContext {
                counters: counters.clone(),
            })
            .map_err(backend("producer"))?;
        let admin = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("client.id", "forgecast-admin")
            .create_with_context(AdminContext)
            .map_err(backend("admin client"))?;
        Ok(KafkaBus {
            inner: Arc::new(Inner {
                config,
                producer,
                admin,
                topics: tokio::sync::Mutex::new(HashSet::new()),
                counters,
                members: Mutex::new(Vec::new()),
                closed: CancellationToken::new(),
            }),
        })
    }

    /// The configuration it was connected with.
    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    /// Creates the topics not known to exist yet; a topic that already exists is fine.
    pub async fn ensure_topics(&self, names: &[&str]) -> Result<(), BusError> {
        let mut known = self.inner.topics.lock().await;
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !known.contains(*n))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let config = &self.inner.config;
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|name| {
                NewTopic::new(
                    name,
                    config.partitions,
                    TopicReplication::Fixed(config.replication),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self
            .inner
            .admin
            .create_topics(&new, &options)
            .await
            .map_err(backend("create topics"))?;
        let mut created = false;
        for result in results {
            match result {
                Ok(name) => {
                    tracing::info!(component = "bus", topic = %name, partitions = config.partitions, replication = config.replication, "Created Kafka topic.");
                    known.insert(name);
                    created = true;
                }
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    known.insert(name);
                }
                Err((name, code)) => {
                    return Err(BusError::Backend(format!(
                        "cannot create topic {name}: {code}"
                    )));
                }
            }
        }
        if created {
            self.tell_members();
        }
        Ok(())
    }

    /// Has this process's group members list the cluster's topics now, so that a subscription by pattern takes
    /// a topic just created without waiting for its next periodic look (in the background: publishing goes on).
    fn tell_members(&self) {
        let members: Vec<_> = {
            let mut members = self.inner.members.lock().unwrap_or_else(|e| e.into_inner());
            members.retain(|m| m.consumer.strong_count() > 0);
            members
                .iter()
                .filter_map(|m| m.consumer.upgrade())
                .collect()
        };
        if members.is_empty() {
            return;
        }
        tokio::task::spawn_blocking(move || {
            for member in members {
                // Listing every topic is what makes librdkafka match its patterns again and rejoin the group.
                if let Err(e) = member.fetch_metadata(None, Duration::from_secs(5)) {
                    tracing::debug!(component = "bus", error = %e, "Topic list not refreshed; the periodic look will find the new topic.");
                }
            }
        });
    }
}

/// The bytes a record travels as.
fn encode(body: &RecordBody) -> Vec<u8> {
    match body {
        RecordBody::Event(event) => event.raw.as_bytes().to_vec(),
        RecordBody::DeadLetter(letter) => {
            serde_json::to_vec(&**letter).expect("a dead letter is plain JSON")
        }
    }
}

/// The record a message carries; a message that is not one becomes a dead letter saying where it was.
fn decode(message: &BorrowedMessage<'_>, topic: Arc<str>) -> Record {
    let key = message
        .key()
        .and_then(|k| std::str::from_utf8(k).ok())
        .map(Arc::from);
    let payload = message.payload().unwrap_or_default();
    let origin = || {
        format!(
            "{}/{}@{}",
            message.topic(),
            message.partition(),
            message.offset()
        )
    };
    let refused = |error: String| {
        Record::dead_letter(DeadLetter {
            stage: "consume".into(),
            error,
            script: None,
            version: None,
            origin: Some(origin()),
            raw: String::from_utf8_lossy(payload).into_owned(),
        })
    };
    let Ok(text) = std::str::from_utf8(payload) else {
        return refused("the message is not UTF-8 text".into());
    };
    let dead_letter = message.headers().is_some_and(|headers| {
        headers
            .iter()
            .any(|h| h.key == BODY_HEADER && h.value == Some(DEAD_LETTER_BODY))
    });
    if dead_letter {
        return match serde_json::from_str::<DeadLetter>(text) {
            Ok(letter) => Record::dead_letter(letter),
            Err(e) => refused(format!("not a dead letter: {e}")),
        };
    }
    match Event::parse(text) {
        Ok(event) => Record::event(topic, key, Arc::new(event)),
        Err(e) => refused(e.to_string()),
    }
}

impl Bus for KafkaBus {
    type Subscription = KafkaSubscription;

    async fn publish(&self, records: Vec<Record>) -> Result<(), BusError> {
        if self.inner.closed.is_cancelled() {
            return Err(BusError::Closed);
        }
        for record in &records {
            validate_topic(&record.topic).map_err(BusError::Topic)?;
        }
        let names: Vec<&str> = records.iter().map(|r| &*r.topic).collect();
        self.ensure_topics(&names).await?;
        let producer = &self.inner.producer;
        let mut deliveries: Vec<DeliveryFuture> = Vec::with_capacity(records.len());
        let mut failed = 0u64;
        let mut first_error = None;
        for record in &records {
            let payload = encode(&record.body);
            let key = match (&record.key, &record.body) {
                (Some(key), _) => Some(&**key),
                (None, RecordBody::Event(event)) => Some(event.repo.as_str()),
                (None, RecordBody::DeadLetter(_)) => None,
            };
            let mut message = FutureRecord::<str, [u8]>::to(&record.topic).payload(&payload);
            if let Some(key) = key {
                message = message.key(key);
            }
            if let RecordBody::DeadLetter(_) = record.body {
                message = message.headers(OwnedHeaders::new().insert(Header {
                    key: BODY_HEADER,
                    value: Some(DEAD_LETTER_BODY),
                }));
            }
            loop {
                match producer.send_result(message) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The client's queue is full: wait for the oldest record to be acknowledged.
                        message = back;
                        match deliveries.first_mut() {
                            Some(oldest) => {
                                if !matches!(oldest.await, Ok(Ok(_))) {
                                    failed += 1;
                                }
                                deliveries.remove(0);
                            }
                            None => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                    Err((e, _)) => return Err(BusError::Backend(format!("produce: {e}"))),
                }
            }
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
                Err(_) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| "delivery cancelled".into());
                }
            }
        }
        if failed > 0 {
            self.inner
                .counters
                .produce_errors
                .fetch_add(failed, Ordering::Relaxed);
            return Err(BusError::Backend(format!(
                "{failed} of {} records not acknowledged by Kafka: {}",
                records.len(),
                first_error.unwrap_or_else(|| "delivery failed".into())
            )));
        }
        Ok(())
    }

    fn subscribe(
        &self,
        group: &str,
        filters: Vec<TopicFilter>,
    ) -> Result<KafkaSubscription, BusError> {
        if self.inner.closed.is_cancelled() {
            return Err(BusError::Closed);
        }
        let offsets: Offsets = Arc::new(Mutex::new(HashMap::new()));
        let assigned = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let context = GroupContext {
            group: group.to_string(),
            offsets: offsets.clone(),
            counters: self.inner.counters.clone(),
            assigned: assigned.clone(),
            commits: commits.clone(),
        };
        let consumer: StreamConsumer<GroupContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.inner.config.brokers)
            .set("group.id", group)
            .set("client.id", format!("forgecast-{group}"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                self.inner.config.session_timeout_ms.to_string(),
            )
            .set("heartbeat.interval.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", TOPIC_REFRESH_MS)
            .set("statistics.interval.ms", STATS_INTERVAL_MS)
            .create_with_context(context)
            .map_err(backend("consumer"))?;
        let patterns: Vec<String> = filters.iter().map(pattern).collect();
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        consumer
            .subscribe(&patterns)
            .map_err(backend("subscribe"))?;
        let consumer = Arc::new(consumer);
        {
            let mut members = self.inner.members.lock().unwrap_or_else(|e| e.into_inner());
            members.retain(|m| m.consumer.strong_count() > 0);
            members.push(Member {
                group: group.to_string(),
                offsets: Arc::downgrade(&offsets),
                consumer: Arc::downgrade(&consumer),
            });
        }
        Ok(KafkaSubscription {
            consumer,
            offsets,
            closed: self.inner.closed.clone(),
            topics: HashMap::new(),
            assigned,
            draining: None,
            commits,
        })
    }

    fn close(&self) {
        self.inner.closed.cancel();
    }

    /// The broker's work goes by the batches of each partition in a produce request, and the records of one
    /// publish share them: publishes of 512 events spread over routing's topics and partitions gave batches of
    /// a few records, and publishes of up to 8,192 halved the broker's CPU per event (docs/performance.md).
    fn publish_size(&self) -> usize {
        8192
    }

    fn stats(&self) -> BusStats {
        let counters = &self.inner.counters;
        let mut lag: Vec<(String, u64)> = counters
            .lag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(g, n)| (g.clone(), *n))
            .collect();
        lag.sort();
        let mut uncommitted = Vec::new();
        for member in self
            .inner
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if let Some(offsets) = member.offsets.upgrade() {
                let offsets = offsets.lock().unwrap_or_else(|e| e.into_inner());
                uncommitted.extend(
                    offsets
                        .iter()
                        .map(|((t, p), next)| (member.group.clone(), t.clone(), *p, *next)),
                );
            }
        }
        uncommitted.sort();
        BusStats {
            lag,
            produce_errors: counters.produce_errors.load(Ordering::Relaxed),
            produce_retries: counters.produce_retries.load(Ordering::Relaxed),
            uncommitted,
        }
    }
}

/// A topic filter as librdkafka's subscription: a name, or a regular expression starting with `^`.
fn pattern(filter: &TopicFilter) -> String {
    match filter {
        TopicFilter::Exact(name) => name.clone(),
        TopicFilter::Prefix(prefix) => {
            let mut regex = String::from("^");
            // Topic names hold letters, digits, '.', '_' and '-'; only '.' means something in a pattern.
            for c in prefix.chars() {
                if c == '.' {
                    regex.push('\\');
                }
                regex.push(c);
            }
            regex.push_str(".*");
            regex
        }
    }
}

/// Offsets received but not committed yet, per topic and partition: the next offset to read.
type OffsetMap = Mutex<HashMap<(String, i32), i64>>;
/// A subscription's [`OffsetMap`], shared with its group context.
type Offsets = Arc<OffsetMap>;

/// Sees the group's rebalances and statistics.
struct GroupContext {
    group: String,
    offsets: Offsets,
    counters: Arc<Counters>,
    assigned: Arc<AtomicBool>,
    /// Commits sent and not answered yet.
    commits: Arc<AtomicU64>,
}

impl ClientContext for GroupContext {
    quiet_client!();

    fn stats(&self, statistics: Statistics) {
        let lag = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0)
            .map(|p| p.consumer_lag.max(0) as u64)
            .sum();
        self.counters
            .lag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.group.clone(), lag);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            // Records of these partitions that were received but not committed go to their next owner.
            let mut offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
            for p in partitions.elements() {
                offsets.remove(&(p.topic().to_string(), p.partition()));
            }
            tracing::info!(component = "bus", group = %self.group, partitions = partitions.count(), "Kafka partitions revoked.");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, committed: &TopicPartitionList) {
        self.commits.fetch_sub(1, Ordering::SeqCst);
        match result {
            Ok(()) => {
                // Forget what was committed, unless newer records of the partition arrived meanwhile.
                let mut offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
                for p in committed.elements() {
                    let key = (p.topic().to_string(), p.partition());
                    if let (Some(taken), Offset::Offset(done)) = (offsets.get(&key), p.offset())
                        && *taken <= done
                    {
                        offsets.remove(&key);
                    }
                }
            }
            Err(e) => complain(
                "commit",
                &format!("commit failed, the next one covers it: {e}"),
            ),
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                self.assigned.store(true, Ordering::Relaxed);
                tracing::info!(component = "bus", group = %self.group, partitions = partitions.count(), "Kafka partitions assigned.")
            }
            Rebalance::Error(e) => {
                tracing::warn!(component = "bus", group = %self.group, error = %e, "Kafka rebalance failed.")
            }
            Rebalance::Revoke(_) => {}
        }
    }
}

/// A member of a consumer group on the [`KafkaBus`].
pub struct KafkaSubscription {
    consumer: Arc<StreamConsumer<GroupContext>>,
    offsets: Offsets,
    closed: CancellationToken,
    /// Topic names, shared by the records of a topic.
    topics: HashMap<String, Arc<str>>,
    /// Whether partitions were ever assigned to this member.
    assigned: Arc<AtomicBool>,
    /// Since when it drains, once closed.
    draining: Option<tokio::time::Instant>,
    /// Commits sent and not answered yet.
    commits: Arc<AtomicU64>,
}

impl KafkaSubscription {
    fn take(&mut self, message: &BorrowedMessage<'_>) -> Record {
        let topic = match self.topics.get(message.topic()) {
            Some(topic) => topic.clone(),
            None => {
                let topic: Arc<str> = Arc::from(message.topic());
                self.topics
                    .insert(message.topic().to_string(), topic.clone());
                topic
            }
        };
        self.offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                (message.topic().to_string(), message.partition()),
                message.offset() + 1,
            );
        decode(message, topic)
    }
}

/// Whether a consumer error only reports a state that passes (a broker away, a topic not created yet).
fn passing(error: &KafkaError) -> bool {
    !matches!(error, KafkaError::Canceled)
}

impl KafkaSubscription {
    /// Serves the client until the commits sent are answered, for [`LAST_COMMIT_WAIT`] at most. A record that
    /// arrives meanwhile is left uncommitted, so it is delivered again later.
    async fn await_commits(&self) {
        let deadline = tokio::time::Instant::now() + LAST_COMMIT_WAIT;
        while self.commits.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(100), self.consumer.recv()).await;
        }
    }
}

impl Subscription for KafkaSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Record>>, BusError> {
        let consumer = self.consumer.clone();
        let first = loop {
            let received = if self.closed.is_cancelled() {
                let draining = *self.draining.get_or_insert_with(tokio::time::Instant::now);
                match tokio::time::timeout(DRAIN_IDLE, consumer.recv()).await {
                    Ok(received) => received,
                    // Idle: the end, once partitions were assigned (or they never come).
                    Err(_)
                        if self.assigned.load(Ordering::Relaxed)
                            || draining.elapsed() > DRAIN_UNASSIGNED =>
                    {
                        self.await_commits().await;
                        return Ok(None);
                    }
                    Err(_) => continue,
                }
            } else {
                tokio::select! {
                    received = consumer.recv() => received,
                    _ = self.closed.cancelled() => continue,
                }
            };
            match received {
                Ok(message) => break message,
                Err(e) if passing(&e) => {
                    tracing::debug!(component = "bus", error = %e, "Kafka consumer reported an error; going on.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(BusError::Backend(format!("consume: {e}"))),
            }
        };
        let mut batch = Vec::with_capacity(max.min(4096));
        batch.push(self.take(&first));
        drop(first);
        let mut stream = consumer.stream();
        while batch.len() < max {
            match stream.next().now_or_never() {
                Some(Some(Ok(message))) => {
                    let record = self.take(&message);
                    batch.push(record);
                }
                _ => break,
            }
        }
        Ok(Some(batch))
    }

    async fn commit(&mut self) -> Result<(), BusError> {
        let list = {
            let offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
            let mut list = TopicPartitionList::new();
            for ((topic, partition), offset) in offsets.iter() {
                list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                    .map_err(backend("commit"))?;
            }
            list
        };
        if list.count() == 0 {
            return Ok(());
        }
        // Asynchronous: the answer comes to the group context, which forgets what was committed.
        self.commits.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.consumer.commit(&list, CommitMode::Async) {
            self.commits.fetch_sub(1, Ordering::SeqCst);
            complain(
                "commit",
                &format!("commit not sent, the next one covers it: {e}"),
            );
        }
        Ok(())
    }
}
