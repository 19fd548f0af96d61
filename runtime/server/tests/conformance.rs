//! One contract, every implementation: the bus suite runs against the in-process bus and a real Kafka broker,
//! the store suite against SQLite and a real MongoDB-wire server (SecantusDB), all on loopback. Every case
//! exists once, generic over the trait, and is instantiated per backend at the bottom of each section.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use forgecast_core::aggregate::{AggregateQuery, AggregateRow, Dimension, Granularity};
use forgecast_core::bus::{Bus, Subscription, TopicFilter};
use forgecast_core::predictions::{LabelQuery, PredictionStore, Scope, StoredPrediction};
use forgecast_core::registry::Registry;
use forgecast_core::store::{RepoMeta, ScriptReload, Store};
use forgecast_core::{DeadLetter, Event, Record, RecordBody};
use forgecast_embedded::{EmbeddedBus, SqliteStore};
use forgecast_gharchive::replay::sample_lines;
use forgecast_kafka::{KafkaBus, KafkaConfig};
use forgecast_mongo::MongoStore;
use forgecast_testkit::{shared_kafka, shared_mongo, unique_name};
use serde_json::Value;

fn sample_events(n: usize) -> Vec<Arc<Event>> {
    sample_lines()
        .iter()
        .take(n)
        .map(|l| Arc::new(Event::parse(l).unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// Bus

fn kafka_bus() -> KafkaBus {
    let mut config = KafkaConfig::local(shared_kafka().brokers());
    config.partitions = 4;
    KafkaBus::connect(config).unwrap()
}

/// Receives until `n` records arrived (or fails after a minute), committing after each batch.
async fn receive<S: Subscription>(subscription: &mut S, n: usize) -> Vec<Record> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got.len() < n {
        let batch = tokio::time::timeout_at(deadline, subscription.next_batch(1000))
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} records arrived", got.len()))
            .unwrap()
            .expect("the bus is open");
        got.extend(batch);
        subscription.commit().await.unwrap();
    }
    got
}

fn event_ids(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::Event(e) => Some(e.id.clone()),
            RecordBody::DeadLetter(_) => None,
        })
        .collect()
}

async fn every_group_gets_every_record_intact<B: Bus>(bus: B, prefix: &str) {
    let filter = vec![TopicFilter::Prefix(format!("{prefix}."))];
    let mut first = bus
        .subscribe(&format!("{prefix}-a"), filter.clone())
        .unwrap();
    let mut second = bus.subscribe(&format!("{prefix}-b"), filter).unwrap();
    let events = sample_events(300);
    let letter = DeadLetter {
        stage: "route".into(),
        error: "script failed: boom".into(),
        script: Some("routing".into()),
        version: Some("abc123".into()),
        origin: Some("2015-01-01-15.json.gz:7".into()),
        raw: "{\"id\":".into(),
    };
    let mut records: Vec<Record> = events
        .iter()
        .map(|e| {
            let topic = format!("{prefix}.raw.{}", e.kind.to_lowercase());
            Record::event(Arc::from(topic), None, e.clone())
        })
        .collect();
    let mut dead = Record::dead_letter(letter.clone());
    dead.topic = Arc::from(format!("{prefix}.dlq"));
    records.push(dead);
    bus.publish(records.clone()).await.unwrap();

    for subscription in [&mut first, &mut second] {
        let got = receive(subscription, records.len()).await;
        let by_id: HashMap<String, &Record> = got
            .iter()
            .filter_map(|r| match &r.body {
                RecordBody::Event(e) => Some((e.id.clone(), r)),
                _ => None,
            })
            .collect();
        assert_eq!(by_id.len(), events.len(), "every event once");
        for event in &events {
            let record = by_id[&event.id];
            assert_eq!(
                &*record.topic,
                format!("{prefix}.raw.{}", event.kind.to_lowercase())
            );
            match &record.body {
                RecordBody::Event(got) => assert_eq!(**got, **event, "event intact"),
                RecordBody::DeadLetter(_) => unreachable!(),
            }
        }
        let letters: Vec<&DeadLetter> = got
            .iter()
            .filter_map(|r| match &r.body {
                RecordBody::DeadLetter(l) => Some(&**l),
                _ => None,
            })
            .collect();
        assert_eq!(letters, vec![&letter], "the dead letter, with its reason");
    }
}

async fn one_key_keeps_its_order<B: Bus>(bus: B, prefix: &str) {
    let filter = vec![TopicFilter::Prefix(format!("{prefix}."))];
    let mut subscription = bus.subscribe(&format!("{prefix}-order"), filter).unwrap();
    let events = sample_events(400);
    let topic: Arc<str> = Arc::from(format!("{prefix}.raw.all"));
    // Four batches; each repository's events must come out in the order they went in.
    for chunk in events.chunks(100) {
        let records = chunk
            .iter()
            .map(|e| Record::event(topic.clone(), None, e.clone()))
            .collect();
        bus.publish(records).await.unwrap();
    }
    let got = receive(&mut subscription, events.len()).await;
    let order_of = |list: Vec<(String, String)>| {
        let mut per_repo: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (repo, id) in list {
            per_repo.entry(repo).or_default().push(id);
        }
        per_repo
    };
    let sent = order_of(
        events
            .iter()
            .map(|e| (e.repo.clone(), e.id.clone()))
            .collect(),
    );
    let received = order_of(
        got.iter()
            .filter_map(|r| match &r.body {
                RecordBody::Event(e) => Some((e.repo.clone(), e.id.clone())),
                _ => None,
            })
            .collect(),
    );
    assert_eq!(received, sent);
}

async fn members_of_a_group_share_the_records<B: Bus>(bus: B, prefix: &str) {
    let filter = vec![TopicFilter::Prefix(format!("{prefix}."))];
    let group = format!("{prefix}-shared");
    let one = bus.subscribe(&group, filter.clone()).unwrap();
    let two = bus.subscribe(&group, filter).unwrap();
    let topic: Arc<str> = Arc::from(format!("{prefix}.raw.all"));
    // Keyed records, so that they spread over the partitions a group splits.
    let keyed = |events: &[Arc<Event>]| -> Vec<Record> {
        events
            .iter()
            .map(|e| Record::event(topic.clone(), Some(Arc::from(e.id.as_str())), e.clone()))
            .collect()
    };
    // Each member keeps the ids it received; both poll and commit until stopped.
    let seen: [Arc<std::sync::Mutex<Vec<String>>>; 2] = Default::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    for (mut member, seen) in [one, two].into_iter().zip(seen.clone()) {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    batch = member.next_batch(100) => {
                        let batch = batch.unwrap().unwrap();
                        seen.lock().unwrap().extend(event_ids(&batch));
                        member.commit().await.unwrap();
                    }
                }
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // Warm-up until both members receive records: by then the group has settled who owns what.
    let events = sample_events(800);
    let (warm_up, measured) = events.split_at(200);
    let mut offered = 0;
    while seen.iter().any(|s| s.lock().unwrap().is_empty()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a member of the group never received anything"
        );
        // Round and round the warm-up records, so a member that joins late still gets some.
        let from = offered % warm_up.len();
        let to = (from + 20).min(warm_up.len());
        bus.publish(keyed(&warm_up[from..to])).await.unwrap();
        offered += to - from;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before: Vec<usize> = seen.iter().map(|s| s.lock().unwrap().len()).collect();
    bus.publish(keyed(measured)).await.unwrap();
    let expected: BTreeSet<String> = measured.iter().map(|e| e.id.clone()).collect();
    // Warm-up records still in flight may arrive after the snapshot: only the measured ones count.
    let received = |i: usize| -> Vec<String> {
        seen[i].lock().unwrap()[before[i]..]
            .iter()
            .filter(|id| expected.contains(*id))
            .cloned()
            .collect()
    };
    loop {
        let union: BTreeSet<String> = received(0).into_iter().chain(received(1)).collect();
        if expected.is_subset(&union) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} records reached the group",
            union.intersection(&expected).count(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little longer, so that a record delivered twice would show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    let (a, b) = (received(0), received(1));
    let (a_set, b_set): (BTreeSet<String>, BTreeSet<String>) =
        (a.iter().cloned().collect(), b.iter().cloned().collect());
    assert!(
        !a_set.is_empty() && !b_set.is_empty(),
        "the members did not split the work: {} and {}",
        a_set.len(),
        b_set.len()
    );
    assert_eq!(
        a_set.intersection(&b_set).count(),
        0,
        "a record went to both members"
    );
    assert_eq!(
        a.len() + b.len(),
        expected.len(),
        "a record went twice to one member"
    );
    let union: BTreeSet<String> = a_set.union(&b_set).cloned().collect();
    assert_eq!(union, expected);
}

async fn closing_delivers_what_is_left_then_ends<B: Bus>(bus: B, prefix: &str) {
    let filter = vec![TopicFilter::Prefix(format!("{prefix}."))];
    let mut subscription = bus.subscribe(&format!("{prefix}-close"), filter).unwrap();
    let events = sample_events(250);
    let topic: Arc<str> = Arc::from(format!("{prefix}.raw.all"));
    bus.publish(
        events
            .iter()
            .map(|e| Record::event(topic.clone(), None, e.clone()))
            .collect(),
    )
    .await
    .unwrap();
    bus.close();
    assert!(
        bus.publish(vec![Record::event(topic.clone(), None, events[0].clone())])
            .await
            .is_err(),
        "a closed bus refuses records"
    );
    let mut got = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(batch) = subscription.next_batch(64).await.unwrap() {
            got.extend(event_ids(&batch));
            subscription.commit().await.unwrap();
        }
    })
    .await;
    assert!(ended.is_ok(), "the subscription ended after the close");
    assert_eq!(got.len(), events.len());
}

async fn bad_topic_names_are_refused<B: Bus>(bus: B) {
    let event = sample_events(1).remove(0);
    let err = bus
        .publish(vec![Record::event(Arc::from("gh raw"), None, event)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("' '"), "{err}");
}

mod embedded_bus {
    use super::*;

    #[tokio::test]
    async fn every_group_gets_every_record_intact() {
        super::every_group_gets_every_record_intact(EmbeddedBus::new(), "t").await;
    }

    #[tokio::test]
    async fn one_key_keeps_its_order() {
        super::one_key_keeps_its_order(EmbeddedBus::new(), "t").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn members_of_a_group_share_the_records() {
        super::members_of_a_group_share_the_records(EmbeddedBus::new(), "t").await;
    }

    #[tokio::test]
    async fn closing_delivers_what_is_left_then_ends() {
        super::closing_delivers_what_is_left_then_ends(EmbeddedBus::new(), "t").await;
    }

    #[tokio::test]
    async fn bad_topic_names_are_refused() {
        super::bad_topic_names_are_refused(EmbeddedBus::new()).await;
    }
}

mod kafka_bus {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_group_gets_every_record_intact() {
        super::every_group_gets_every_record_intact(kafka_bus(), &unique_name("t")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_key_keeps_its_order() {
        super::one_key_keeps_its_order(kafka_bus(), &unique_name("t")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn members_of_a_group_share_the_records() {
        super::members_of_a_group_share_the_records(kafka_bus(), &unique_name("t")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_delivers_what_is_left_then_ends() {
        super::closing_delivers_what_is_left_then_ends(kafka_bus(), &unique_name("t")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_topic_names_are_refused() {
        super::bad_topic_names_are_refused(kafka_bus()).await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Store

/// Per-key totals (summed over buckets) of the counters an independent reading of `lines` gives, for the
/// dimensions that need no repository metadata.
fn expected_totals(lines: &[String]) -> BTreeMap<(&'static str, String), u64> {
    let mut totals = BTreeMap::new();
    let mut add = |dimension: &'static str, key: &str| {
        *totals.entry((dimension, key.to_string())).or_insert(0) += 1
    };
    for line in lines {
        let e: Value = serde_json::from_str(line).unwrap();
        add("all", "*");
        add("type", e["type"].as_str().unwrap());
        add("repo", e["repo"]["name"].as_str().unwrap());
        if let Some(org) = e["org"]["login"].as_str() {
            add("org", org);
        }
    }
    totals
}

async fn stored_totals<S: Store>(
    store: &S,
    granularity: Granularity,
) -> BTreeMap<(&'static str, String), u64> {
    let mut totals = BTreeMap::new();
    for dimension in [
        Dimension::All,
        Dimension::Type,
        Dimension::Repo,
        Dimension::Org,
    ] {
        for row in store
            .aggregates(all_of(granularity, dimension))
            .await
            .unwrap()
        {
            *totals.entry((dimension.as_str(), row.key)).or_insert(0) += row.count;
        }
    }
    totals
}

fn all_of(granularity: Granularity, dimension: Dimension) -> AggregateQuery {
    AggregateQuery {
        granularity,
        dimension,
        from: i64::MIN,
        to: i64::MAX,
    }
}

/// Every counter row of every granularity and dimension.
async fn every_row<S: Store>(store: &S) -> Vec<AggregateRow> {
    let mut rows = Vec::new();
    for granularity in Granularity::ALL {
        for dimension in Dimension::ALL {
            rows.extend(
                store
                    .aggregates(all_of(granularity, dimension))
                    .await
                    .unwrap(),
            );
        }
    }
    rows
}

async fn stores_each_event_once_and_counts_exactly<S: Store>(store: S) -> Vec<AggregateRow> {
    let lines: Vec<String> = sample_lines().into_iter().take(900).collect();
    let events: Vec<Arc<Event>> = lines
        .iter()
        .map(|l| Arc::new(Event::parse(l).unwrap()))
        .collect();
    let mut inserted = 0;
    for chunk in events.chunks(200) {
        let outcome = store.write_events(chunk.to_vec()).await.unwrap();
        assert_eq!(outcome.duplicates, 0);
        inserted += outcome.inserted;
    }
    assert_eq!(inserted, events.len() as u64);
    let counted = every_row(&store).await;

    // Delivered again, in other slices and with a repeat inside one batch: nothing changes.
    let mut again: Vec<Arc<Event>> = events[100..400].to_vec();
    again.push(events[150].clone());
    let outcome = store.write_events(again).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 301));
    assert_eq!(store.event_count().await.unwrap(), events.len() as u64);
    assert_eq!(
        every_row(&store).await,
        counted,
        "redelivery changed counters"
    );

    let expected = expected_totals(&lines);
    for granularity in [Granularity::Minute, Granularity::Hour, Granularity::Day] {
        let totals = stored_totals(&store, granularity).await;
        let expected: BTreeMap<_, _> = if granularity == Granularity::Minute {
            // Minute buckets count only everything and types.
            expected
                .iter()
                .filter(|((d, _), _)| *d == "all" || *d == "type")
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        } else {
            expected.clone()
        };
        assert_eq!(totals, expected, "{granularity} totals");
    }
    counted
}

async fn concurrent_writers_count_shared_events_once<S: Store + Clone>(store: S) {
    let events = sample_events(1200);
    let (a, b) = (store.clone(), store.clone());
    let forward = events.clone();
    let mut backward = events.clone();
    backward.reverse();
    let one = tokio::spawn(async move {
        for chunk in forward.chunks(150) {
            a.write_events(chunk.to_vec()).await.unwrap();
        }
    });
    let two = tokio::spawn(async move {
        for chunk in backward.chunks(110) {
            b.write_events(chunk.to_vec()).await.unwrap();
        }
    });
    one.await.unwrap();
    two.await.unwrap();
    assert_eq!(store.event_count().await.unwrap(), events.len() as u64);
    let all = store
        .aggregates(all_of(Granularity::Day, Dimension::All))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.count).sum::<u64>(),
        events.len() as u64
    );
}

async fn put_counters_sets_and_queries_by_range<S: Store>(store: S) {
    let row = |bucket: i64, key: &str, count: u64| AggregateRow {
        granularity: Granularity::Quarter,
        dimension: Dimension::GithutLanguage,
        bucket,
        key: key.into(),
        count,
    };
    let rows = vec![
        row(300, "Rust", 5),
        row(100, "Go", 7),
        row(100, "C", 1),
        row(200, "Go", 9),
    ];
    store.put_counters(rows.clone()).await.unwrap();
    store.put_counters(rows).await.unwrap();
    store.put_counters(vec![row(200, "Go", 10)]).await.unwrap();
    let query = AggregateQuery {
        granularity: Granularity::Quarter,
        dimension: Dimension::GithutLanguage,
        from: 100,
        to: 300,
    };
    assert_eq!(
        store.aggregates(query).await.unwrap(),
        vec![row(100, "C", 1), row(100, "Go", 7), row(200, "Go", 10)],
        "set, not added; ordered by bucket then key; `to` excluded"
    );
}

async fn repository_metadata_adds_language_and_topics<S: Store>(store: S) {
    let events = sample_events(50);
    let target = events
        .iter()
        .find(|e| e.language.is_none())
        .unwrap()
        .clone();
    let meta = RepoMeta {
        name: target.repo.clone(),
        found: true,
        language: Some("Zig".into()),
        topics: vec!["compilers".into(), "wasm".into()],
        stars: 42,
        etag: Some("\"abc\"".into()),
        fetched_at: 1_700_000_000,
    };
    let missing = RepoMeta {
        name: "nobody/nothing".into(),
        found: false,
        language: None,
        topics: vec![],
        stars: 0,
        etag: None,
        fetched_at: 1_700_000_001,
    };
    store
        .put_repo_meta(vec![meta.clone(), missing.clone()])
        .await
        .unwrap();
    let mut got = store
        .repo_meta(vec![
            "nobody/nothing".into(),
            target.repo.clone(),
            "not/cached".into(),
        ])
        .await
        .unwrap();
    got.sort_by(|a, b| a.name.cmp(&b.name));
    let mut expected = vec![meta, missing];
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(got, expected);

    let of_repo: Vec<Arc<Event>> = events
        .iter()
        .filter(|e| e.repo == target.repo)
        .cloned()
        .collect();
    store.write_events(of_repo.clone()).await.unwrap();
    let languages = store
        .aggregates(all_of(Granularity::Day, Dimension::Language))
        .await
        .unwrap();
    assert_eq!(
        languages
            .iter()
            .filter(|r| r.key == "Zig")
            .map(|r| r.count)
            .sum::<u64>(),
        of_repo.len() as u64
    );
    let topics = store
        .aggregates(all_of(Granularity::Day, Dimension::Topic))
        .await
        .unwrap();
    let topic_keys: BTreeSet<&str> = topics.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(topic_keys, BTreeSet::from(["compilers", "wasm"]));
}

async fn counters_set_over_counted_ones_replace_them<S: Store>(store: S) {
    let events = sample_events(400);
    store.write_events(events[..300].to_vec()).await.unwrap();
    let days = store
        .aggregates(all_of(Granularity::Day, Dimension::All))
        .await
        .unwrap();
    let day = days[0].clone();
    store
        .put_counters(vec![AggregateRow {
            count: 5,
            ..day.clone()
        }])
        .await
        .unwrap();
    let set = store
        .aggregates(all_of(Granularity::Day, Dimension::All))
        .await
        .unwrap();
    assert_eq!(set[0].count, 5, "the set value replaces the events counted");
    assert_eq!(set[1..], days[1..], "other buckets unchanged");
    // Events counted after the set add to the value set.
    let later: Vec<Arc<Event>> = events[300..]
        .iter()
        .filter(|e| Granularity::Day.bucket(e.created_at) == day.bucket)
        .cloned()
        .collect();
    assert!(!later.is_empty());
    store.write_events(later.clone()).await.unwrap();
    let after = store
        .aggregates(all_of(Granularity::Day, Dimension::All))
        .await
        .unwrap();
    assert_eq!(after[0].count, 5 + later.len() as u64);
}

async fn a_bucket_of_many_keys_is_kept_whole<S: Store>(store: S) {
    // More keys in one bucket than MongoDB keeps in one document: set, then set again in part.
    let row = |key: usize, count: u64| AggregateRow {
        granularity: Granularity::Quarter,
        dimension: Dimension::GithutLanguage,
        bucket: 0,
        key: format!("PushEvent/language-{key:05}"),
        count,
    };
    let rows: Vec<AggregateRow> = (0..45_000).map(|k| row(k, k as u64 % 7)).collect();
    store.put_counters(rows.clone()).await.unwrap();
    store
        .put_counters(vec![row(3, 1000), row(44_999, 5)])
        .await
        .unwrap();
    let mut expected = rows;
    expected[3].count = 1000;
    expected[44_999].count = 5;
    assert_eq!(
        store
            .aggregates(all_of(Granularity::Quarter, Dimension::GithutLanguage))
            .await
            .unwrap(),
        expected
    );
}

async fn dead_letters_and_reloads_are_kept<S: Store>(store: S) {
    let letter = |n: u32| {
        Arc::new(DeadLetter {
            stage: "parse".into(),
            error: "not JSON".into(),
            script: None,
            version: None,
            origin: Some(format!("hour.json.gz:{n}")),
            raw: "{oops".into(),
        })
    };
    store
        .write_dead_letters(vec![letter(1), letter(2), letter(3)])
        .await
        .unwrap();
    assert_eq!(store.dead_letter_count().await.unwrap(), 3);
    // Delivered again (a consumer that died before committing): kept once.
    store
        .write_dead_letters(vec![letter(2), letter(3), letter(4)])
        .await
        .unwrap();
    assert_eq!(store.dead_letter_count().await.unwrap(), 4);
    for (at, hash) in [(10, "h1"), (20, "h2"), (30, "h3")] {
        store
            .record_reload(ScriptReload {
                at,
                script: "routing".into(),
                old_hash: Some("h0".into()),
                new_hash: hash.into(),
                accepted: hash != "h2",
                reason: (hash == "h2").then(|| "routing.rhai:3:7: syntax error".into()),
            })
            .await
            .unwrap();
    }
    let reloads = store.recent_reloads(2).await.unwrap();
    let hashes: Vec<&str> = reloads.iter().map(|r| r.new_hash.as_str()).collect();
    assert_eq!(hashes, ["h3", "h2"], "newest first, limited");
    assert_eq!(
        reloads[1].reason.as_deref(),
        Some("routing.rhai:3:7: syntax error")
    );
    assert!(!reloads[1].accepted);
}

fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("forgecast.sqlite")).unwrap();
    (dir, store)
}

async fn mongo() -> MongoStore {
    MongoStore::connect(&shared_mongo().mongo_uri(), &unique_name("conformance"))
        .await
        .unwrap()
}

/// A version of `name` as a training run would register it.
fn new_version(name: &str, f1: f64, artifact: &[u8]) -> forgecast_core::registry::NewVersion {
    forgecast_core::registry::NewVersion {
        name: name.into(),
        created: 1_764_460_800,
        training: "data/se-sentiment/github.csv (7,122 rows), 10 folds".into(),
        params: serde_json::json!({ "learner": "linear-svm", "c": 0.5 }),
        metrics: [("macro_f1".to_string(), f1)].into(),
        sha256: format!("{:x}", artifact.len()),
        size: artifact.len() as u64,
    }
}

async fn models_are_registered_promoted_and_read_back<S: Registry>(store: S) {
    use forgecast_core::registry::{Alias, champion};
    assert!(store.versions("sentiment").await.unwrap().is_empty());
    assert_eq!(store.artifact("sentiment", 1).await.unwrap(), None);
    // An artifact with every byte value, and one of a few megabytes.
    let small: Vec<u8> = (0..=255).collect();
    let large: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let expected_two = new_version("sentiment", 0.86, &large);
    let one = store
        .register(new_version("sentiment", 0.84, &small), small.clone())
        .await
        .unwrap();
    let two = store
        .register(new_version("sentiment", 0.86, &large), large.clone())
        .await
        .unwrap();
    let other = store
        .register(new_version("issue_outcome", 0.63, b"x"), b"x".to_vec())
        .await
        .unwrap();
    assert_eq!((one, two, other), (1, 2, 1), "numbers per model, from 1");
    assert_eq!(
        store.model_names().await.unwrap(),
        ["issue_outcome", "sentiment"]
    );
    assert_eq!(store.artifact("sentiment", 1).await.unwrap(), Some(small));
    assert_eq!(store.artifact("sentiment", 2).await.unwrap(), Some(large));

    let versions = store.versions("sentiment").await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[1].meta, expected_two,
        "what was registered is read back"
    );
    assert_eq!(champion(&versions), None, "nothing serves until promoted");

    store
        .set_alias("sentiment", 1, Alias::Champion)
        .await
        .unwrap();
    store
        .set_alias("sentiment", 2, Alias::Challenger)
        .await
        .unwrap();
    let versions = store.versions("sentiment").await.unwrap();
    assert_eq!(champion(&versions).unwrap().version, 1);
    assert_eq!(versions[1].alias, Some(Alias::Challenger));

    // Promoting the challenger retires the champion in the same step.
    store
        .set_alias("sentiment", 2, Alias::Champion)
        .await
        .unwrap();
    let versions = store.versions("sentiment").await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.alias).collect::<Vec<_>>(),
        [Some(Alias::Retired), Some(Alias::Champion)]
    );
    // And a roll-back by hand is the same operation.
    store
        .set_alias("sentiment", 1, Alias::Champion)
        .await
        .unwrap();
    assert_eq!(
        champion(&store.versions("sentiment").await.unwrap())
            .unwrap()
            .version,
        1
    );
    assert!(
        store.versions("issue_outcome").await.unwrap()[0]
            .alias
            .is_none(),
        "other models are untouched"
    );

    let missing = store
        .set_alias("sentiment", 9, Alias::Champion)
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("no version 9"), "{missing}");
    assert_eq!(
        champion(&store.versions("sentiment").await.unwrap())
            .unwrap()
            .version,
        1,
        "a refused promotion changes nothing"
    );
}

async fn concurrent_registrations_get_distinct_numbers<S: Registry + Clone>(store: S) {
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .register(new_version("raced", 0.5, &[i]), vec![i])
                .await
                .unwrap()
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (1..=8).collect::<Vec<u32>>());
    for v in store.versions("raced").await.unwrap() {
        let bytes = store.artifact("raced", v.version).await.unwrap().unwrap();
        assert_eq!(bytes.len(), 1, "each number has its own artifact");
    }
}

fn prediction(event: &str, version: u32, label: &str, at: i64, repo: &str) -> StoredPrediction {
    StoredPrediction {
        event_id: event.into(),
        model: "sentiment".into(),
        version,
        label: label.into(),
        scores: [(label.to_string(), 0.75), ("neutral".to_string(), 0.25)].into(),
        at,
        repo: repo.into(),
        org: repo
            .split('/')
            .next()
            .filter(|o| *o == "acme")
            .map(Into::into),
        language: (repo == "acme/tool").then(|| "Rust".into()),
        excerpt: format!("text of {event} «é»"),
    }
}

fn labels_of(model: &str, granularity: Granularity, scope: Scope, key: Option<&str>) -> LabelQuery {
    LabelQuery {
        model: model.into(),
        granularity,
        scope,
        key: key.map(Into::into),
        from: i64::MIN,
        to: i64::MAX,
    }
}

async fn predictions_are_kept_once_and_each_event_counted_once<S: PredictionStore>(store: S) {
    let day = 1_717_200_000; // 2024-06-01T00:00:00Z
    let first = vec![
        prediction("1", 1, "negative", day + 10, "acme/tool"),
        prediction("2", 1, "positive", day + 20, "acme/tool"),
        prediction("3", 1, "negative", day + 86_400 + 5, "solo/app"),
        prediction("1", 1, "negative", day + 10, "acme/tool"), // twice in one write
    ];
    let outcome = store.write_predictions(first.clone()).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (3, 1));
    // Delivered again; then scored again by version 2, which says otherwise about event 1.
    let again = store.write_predictions(first[..3].to_vec()).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 3));
    let second = store
        .write_predictions(vec![prediction("1", 2, "neutral", day + 10, "acme/tool")])
        .await
        .unwrap();
    assert_eq!(second.inserted, 1, "kept beside version 1's");
    assert_eq!(store.prediction_count("sentiment").await.unwrap(), 4);
    assert_eq!(store.prediction_count("other").await.unwrap(), 0);

    let rows = store
        .label_counts(labels_of("sentiment", Granularity::Day, Scope::All, None))
        .await
        .unwrap();
    let got: Vec<(i64, &str, &str, u64)> = rows
        .iter()
        .map(|r| (r.bucket, r.key.as_str(), r.label.as_str(), r.count))
        .collect();
    assert_eq!(
        got,
        [
            (day, "*", "negative", 1),
            (day, "*", "positive", 1),
            (day + 86_400, "*", "negative", 1)
        ],
        "each event counted once, under the first label kept"
    );
    let month = store
        .label_counts(labels_of(
            "sentiment",
            Granularity::Month,
            Scope::Repo,
            Some("acme/tool"),
        ))
        .await
        .unwrap();
    assert_eq!(
        month
            .iter()
            .map(|r| (r.key.as_str(), r.label.as_str(), r.count))
            .collect::<Vec<_>>(),
        [("acme/tool", "negative", 1), ("acme/tool", "positive", 1)]
    );
    let languages = store
        .label_counts(labels_of(
            "sentiment",
            Granularity::Day,
            Scope::Language,
            None,
        ))
        .await
        .unwrap();
    assert_eq!(languages.iter().map(|r| r.count).sum::<u64>(), 2);
    let orgs = store
        .label_counts(labels_of("sentiment", Granularity::Day, Scope::Org, None))
        .await
        .unwrap();
    assert!(orgs.iter().all(|r| r.key == "acme"));
    let mut in_range = labels_of("sentiment", Granularity::Day, Scope::All, None);
    in_range.from = day + 1;
    assert_eq!(store.label_counts(in_range).await.unwrap().len(), 1);

    let negative = store
        .recent_predictions("sentiment", Some("negative"), 10)
        .await
        .unwrap();
    assert_eq!(
        negative
            .iter()
            .map(|p| p.event_id.as_str())
            .collect::<Vec<_>>(),
        ["3", "1"],
        "newest first"
    );
    assert_eq!(negative[0], first[2], "read back whole");
    assert_eq!(
        store
            .recent_predictions("sentiment", None, 2)
            .await
            .unwrap()
            .len(),
        2
    );
}

fn opened(issue: &str, at: i64) -> forgecast_core::outcomes::Opened {
    forgecast_core::outcomes::Opened {
        issue: issue.into(),
        event_id: format!("e-{issue}"),
        version: 1,
        probability: 0.7,
        opened_at: at,
        features: r#"{"repo":"o/r"}"#.into(),
    }
}

async fn issue_labels_are_resolved_once_in_order<S: forgecast_core::outcomes::OutcomeStore>(
    store: S,
) {
    use forgecast_core::outcomes::Evaluation;
    let day = 86_400;
    let horizon = 30 * day;
    let first = store
        .open_issues(
            "outcome",
            vec![
                opened("o/r#1", 0),
                opened("o/r#2", day),
                opened("o/r#3", 2 * day),
                opened("o/r#1", 5),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        (first.inserted, first.duplicates),
        (3, 1),
        "the first opening counts"
    );
    assert_eq!(store.pending_count("outcome").await.unwrap(), 3);
    // #2 closes in time, #3 too late (after its horizon), #9 was never opened.
    let made = store
        .resolve(
            "outcome",
            vec![
                ("o/r#2".into(), 3 * day),
                ("o/r#3".into(), 40 * day),
                ("o/r#9".into(), day),
            ],
            10 * day,
            horizon,
        )
        .await
        .unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(
        (made[0].seq, made[0].opened.issue.as_str(), made[0].label),
        (1, "o/r#2", true)
    );
    assert_eq!(made[0].resolved_at, 3 * day);
    // Event time passes #1's and #3's horizons: negatives, oldest opening first; #2 is not resolved again.
    let made = store
        .resolve(
            "outcome",
            vec![("o/r#2".into(), 4 * day)],
            33 * day,
            horizon,
        )
        .await
        .unwrap();
    let got: Vec<(u64, &str, bool, i64)> = made
        .iter()
        .map(|r| (r.seq, r.opened.issue.as_str(), r.label, r.resolved_at))
        .collect();
    assert_eq!(
        got,
        [
            (2, "o/r#1", false, horizon),
            (3, "o/r#3", false, 2 * day + horizon)
        ]
    );
    assert_eq!(made[0].opened, opened("o/r#1", 0), "read back whole");
    assert_eq!(store.pending_count("outcome").await.unwrap(), 0);
    assert!(
        store
            .resolve("outcome", vec![], 99 * day, horizon)
            .await
            .unwrap()
            .is_empty()
    );
    let after = store.resolutions_after("outcome", 1, 10).await.unwrap();
    assert_eq!(after.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(
        store
            .resolutions_after("other", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(store.learner("outcome").await.unwrap(), None);
    store
        .put_learner("outcome", vec![1, 2, 3], 2)
        .await
        .unwrap();
    store.put_learner("outcome", vec![4, 5], 3).await.unwrap();
    assert_eq!(
        store.learner("outcome").await.unwrap(),
        Some((vec![4, 5], 3))
    );

    let evaluation = Evaluation {
        model: "outcome".into(),
        version: 1,
        first_seq: 1,
        last_seq: 3,
        from: 3 * day,
        to: 32 * day,
        count: 3,
        positive_rate: 1.0 / 3.0,
        auc: Some(0.5),
        log_loss: 0.9,
        brier: 0.3,
        label_delay_days: 21.0,
    };
    store.record_evaluation(evaluation.clone()).await.unwrap();
    let mut later = evaluation.clone();
    later.auc = None;
    later.first_seq = 4;
    store.record_evaluation(later.clone()).await.unwrap();
    store.record_evaluation(later.clone()).await.unwrap();
    assert_eq!(
        store.evaluations("outcome").await.unwrap(),
        [evaluation, later]
    );

    // Decisions, with what a retrain did, one per window and one per alarm: the same window again replaces it,
    // an alarm at the same resolution is another decision.
    use forgecast_core::outcomes::{
        Decision, Drift, DriftReference, FeatureDrift, Retrained, Trigger,
    };
    let decision = Decision {
        model: "outcome".into(),
        window: 1,
        trigger: Trigger::Window,
        at: 32 * day,
        version: 1,
        script: "abc".into(),
        retrain: true,
        reason: "the change detector fired 1 time(s)".into(),
        context: serde_json::json!({"alarms": 1, "drift_psi": 0.3}),
        retrain_result: None,
    };
    store.record_decision(decision.clone()).await.unwrap();
    let mut retrained = decision.clone();
    retrained.retrain_result = Some(Retrained {
        challenger: Some(2),
        promoted: false,
        metric: "auc".into(),
        champion_score: 0.61,
        challenger_score: 0.58,
        margin: 0.02,
        champion_log_loss: 0.65,
        challenger_log_loss: 0.7,
        candidate: "batch".into(),
        trained_on: (0, 0),
        evaluated_on: (1, 3),
        reason: "not better by the margins".into(),
    });
    store.record_decision(retrained.clone()).await.unwrap();
    let mut alarm = decision.clone();
    alarm.trigger = Trigger::Alarm;
    alarm.retrain = false;
    store.record_decision(alarm.clone()).await.unwrap();
    let mut next = decision.clone();
    next.window = 4;
    next.retrain = false;
    store.record_decision(next.clone()).await.unwrap();
    assert_eq!(
        store.decisions("outcome").await.unwrap(),
        [alarm, retrained, next]
    );

    // Drift figures per window and version, oldest window first; the same key again replaces them.
    let feature = |name: &str, psi: f64, ks: Option<f64>| FeatureDrift {
        feature: name.into(),
        kind: if ks.is_some() {
            "numeric"
        } else {
            "categorical"
        }
        .into(),
        psi,
        ks,
    };
    let drift = Drift {
        model: "outcome".into(),
        version: 1,
        window: 4,
        from: 40 * day,
        to: 50 * day,
        count: 3,
        reference: DriftReference {
            from: 3 * day,
            to: 32 * day,
            count: 3,
        },
        features: vec![
            feature("title_words", 0.4, Some(0.5)),
            feature("repo", 0.1, None),
        ],
        prediction: feature("probability", 0.05, Some(0.2)),
    };
    let mut first = drift.clone();
    first.window = 1;
    first.features = vec![feature("title_words", 0.0, Some(0.0))];
    store.record_drift(drift.clone()).await.unwrap();
    store.record_drift(first.clone()).await.unwrap();
    let mut replaced = drift.clone();
    replaced.count = 4;
    store.record_drift(replaced.clone()).await.unwrap();
    assert_eq!(store.drift("outcome").await.unwrap(), [first, replaced]);
    assert!(store.drift("other").await.unwrap().is_empty());
}

async fn star_points_are_kept_once_per_repository_and_time<S: forgecast_core::stars::StarStore>(
    store: S,
) {
    use forgecast_core::stars::StarPoint;
    let point = |repo: &str, at: i64, stars: u64| StarPoint {
        repo: repo.into(),
        at,
        stars,
    };
    store
        .record_stars(vec![point("a/b", 200, 12), point("a/b", 100, 10)])
        .await
        .unwrap();
    // The same fetch again (a retried write) keeps the first.
    store
        .record_stars(vec![point("a/b", 100, 99), point("c/d", 100, 1)])
        .await
        .unwrap();
    assert_eq!(
        store.star_points("a/b").await.unwrap(),
        [point("a/b", 100, 10), point("a/b", 200, 12)]
    );
    assert!(store.star_points("e/f").await.unwrap().is_empty());
}

async fn a_lease_has_one_holder_until_it_expires_or_is_given_up<S: Registry>(store: S) {
    let (now, later) = (1_000, 1_120);
    assert!(store.lease("train/x", "a", now, later).await.unwrap());
    assert!(
        !store
            .lease("train/x", "b", now + 1, now + 121)
            .await
            .unwrap(),
        "a holds it"
    );
    assert!(
        store
            .lease("train/x", "a", now + 60, later + 60)
            .await
            .unwrap(),
        "its holder renews it"
    );
    assert!(
        store.lease("train/y", "b", now, later).await.unwrap(),
        "another lease is free"
    );
    // Expired: a holder that died loses it.
    assert!(
        store
            .lease("train/x", "b", later + 61, later + 200)
            .await
            .unwrap()
    );
    assert!(
        !store
            .lease("train/x", "a", later + 62, later + 300)
            .await
            .unwrap()
    );
    store.release("train/x", "a").await.unwrap();
    assert!(
        !store
            .lease("train/x", "a", later + 63, later + 300)
            .await
            .unwrap(),
        "only the holder gives it up"
    );
    store.release("train/x", "b").await.unwrap();
    assert!(
        store
            .lease("train/x", "a", later + 64, later + 300)
            .await
            .unwrap()
    );
}

mod sqlite_store {
    use super::*;

    #[tokio::test]
    async fn stores_each_event_once_and_counts_exactly() {
        let (_dir, store) = sqlite();
        super::stores_each_event_once_and_counts_exactly(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_count_shared_events_once() {
        let (_dir, store) = sqlite();
        super::concurrent_writers_count_shared_events_once(store).await;
    }

    #[tokio::test]
    async fn put_counters_sets_and_queries_by_range() {
        let (_dir, store) = sqlite();
        super::put_counters_sets_and_queries_by_range(store).await;
    }

    #[tokio::test]
    async fn repository_metadata_adds_language_and_topics() {
        let (_dir, store) = sqlite();
        super::repository_metadata_adds_language_and_topics(store).await;
    }

    #[tokio::test]
    async fn dead_letters_and_reloads_are_kept() {
        let (_dir, store) = sqlite();
        super::dead_letters_and_reloads_are_kept(store).await;
    }

    #[tokio::test]
    async fn counters_set_over_counted_ones_replace_them() {
        let (_dir, store) = sqlite();
        super::counters_set_over_counted_ones_replace_them(store).await;
    }

    #[tokio::test]
    async fn a_bucket_of_many_keys_is_kept_whole() {
        let (_dir, store) = sqlite();
        super::a_bucket_of_many_keys_is_kept_whole(store).await;
    }

    #[tokio::test]
    async fn models_are_registered_promoted_and_read_back() {
        let (_dir, store) = sqlite();
        super::models_are_registered_promoted_and_read_back(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_registrations_get_distinct_numbers() {
        let (_dir, store) = sqlite();
        super::concurrent_registrations_get_distinct_numbers(store).await;
    }

    #[tokio::test]
    async fn predictions_are_kept_once_and_each_event_counted_once() {
        let (_dir, store) = sqlite();
        super::predictions_are_kept_once_and_each_event_counted_once(store).await;
    }

    #[tokio::test]
    async fn issue_labels_are_resolved_once_in_order() {
        let (_dir, store) = sqlite();
        super::issue_labels_are_resolved_once_in_order(store).await;
    }

    #[tokio::test]
    async fn star_points_are_kept_once_per_repository_and_time() {
        let (_dir, store) = sqlite();
        super::star_points_are_kept_once_per_repository_and_time(store).await;
    }

    #[tokio::test]
    async fn a_lease_has_one_holder_until_it_expires_or_is_given_up() {
        let (_dir, store) = sqlite();
        super::a_lease_has_one_holder_until_it_expires_or_is_given_up(store).await;
    }
}

mod mongo_store {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stores_each_event_once_and_counts_exactly() {
        let rows = super::stores_each_event_once_and_counts_exactly(mongo().await).await;
        // And row for row what the embedded store counts from the same events.
        let (_dir, sqlite) = sqlite();
        let embedded = super::stores_each_event_once_and_counts_exactly(sqlite).await;
        assert_eq!(rows, embedded, "MongoDB and SQLite hold the same counters");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_count_shared_events_once() {
        super::concurrent_writers_count_shared_events_once(mongo().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn put_counters_sets_and_queries_by_range() {
        super::put_counters_sets_and_queries_by_range(mongo().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repository_metadata_adds_language_and_topics() {
        super::repository_metadata_adds_language_and_topics(mongo().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dead_letters_and_reloads_are_kept() {
        super::dead_letters_and_reloads_are_kept(mongo().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counters_set_over_counted_ones_replace_them() {
        super::counters_set_over_counted_ones_replace_them(mongo().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bucket_of_many_keys_is_kept_whole() {
        super::a_bucket_of_many_keys_is_kept_whole(mongo().await).await;
    }

    /// Documents in one of the store's collections.
    async fn documents(store: &MongoStore, collection: &str) -> u64 {
        store
            .database()
            .collection::<mongodb::bson::Document>(collection)
            .count_documents(mongodb::bson::doc! {})
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn folded_and_pending_counters_read_the_same() {
        // Slices of 10 events: writers fold along the way (every 32 slices), so counts sit partly in folded
        // pages and partly in pending deltas; the rows are SQLite's at every stage.
        let store = mongo().await;
        let (_dir, sqlite) = sqlite();
        let events = sample_events(1000);
        for chunk in events.chunks(10) {
            store.write_events(chunk.to_vec()).await.unwrap();
            sqlite.write_events(chunk.to_vec()).await.unwrap();
        }
        let expected = every_row(&sqlite).await;
        assert!(documents(&store, "counters").await > 0, "nothing folded");
        assert!(
            documents(&store, "counter_deltas").await > 0,
            "nothing pending"
        );
        assert_eq!(every_row(&store).await, expected, "partly folded");
        store.fold_pending().await.unwrap();
        assert_eq!(every_row(&store).await, expected, "folded again");
        // Redelivered after folding: nothing added, in deltas or pages.
        let outcome = store.write_events(events[200..700].to_vec()).await.unwrap();
        assert_eq!((outcome.inserted, outcome.duplicates), (0, 500));
        store.fold_pending().await.unwrap();
        assert_eq!(every_row(&store).await, expected, "redelivered");
        assert_eq!(store.event_count().await.unwrap(), 1000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_of_two_processes_folding_at_once_count_each_event_once() {
        // Two connections, as two processes: each folds on its own, racing the other on the same groups.
        let database = unique_name("conformance");
        let uri = shared_mongo().mongo_uri();
        let a = MongoStore::connect(&uri, &database).await.unwrap();
        let b = MongoStore::connect(&uri, &database).await.unwrap();
        let events = sample_events(1200);
        let forward = events.clone();
        let mut backward = events.clone();
        backward.reverse();
        let (one, two) = (a.clone(), b.clone());
        let one = tokio::spawn(async move {
            for chunk in forward.chunks(7) {
                one.write_events(chunk.to_vec()).await.unwrap();
            }
        });
        let two = tokio::spawn(async move {
            for chunk in backward.chunks(5) {
                two.write_events(chunk.to_vec()).await.unwrap();
            }
        });
        one.await.unwrap();
        two.await.unwrap();
        let (folded_a, folded_b) = tokio::join!(a.fold_pending(), b.fold_pending());
        folded_a.unwrap();
        folded_b.unwrap();
        let (_dir, sqlite) = sqlite();
        sqlite.write_events(events.clone()).await.unwrap();
        assert_eq!(every_row(&a).await, every_row(&sqlite).await);
        assert_eq!(b.event_count().await.unwrap(), 1200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counters_of_the_earlier_layout_are_moved_on_connect() {
        use mongodb::bson::doc;
        let database = unique_name("conformance");
        let uri = shared_mongo().mongo_uri();
        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        // One document per counter, as earlier versions kept them.
        let legacy = client
            .database(&database)
            .collection::<mongodb::bson::Document>("aggregates");
        legacy
            .insert_many([
                doc! { "granularity": "day", "dimension": "repo", "bucket": 86_400_i64, "key": "a/b.js", "count": 3_i64 },
                doc! { "granularity": "day", "dimension": "repo", "bucket": 86_400_i64, "key": "c/d", "count": 2_i32 },
                doc! { "granularity": "day", "dimension": "all", "bucket": 86_400_i64, "key": "*", "count": 5_i64 },
                doc! { "granularity": "quarter", "dimension": "githut_language", "bucket": 0_i64, "key": "Rust", "count": 0_i64 },
            ])
            .await
            .unwrap();
        let store = MongoStore::connect(&uri, &database).await.unwrap();
        let row = |granularity, dimension, bucket, key: &str, count| AggregateRow {
            granularity,
            dimension,
            bucket,
            key: key.into(),
            count,
        };
        assert_eq!(
            store
                .aggregates(all_of(Granularity::Day, Dimension::Repo))
                .await
                .unwrap(),
            vec![
                row(Granularity::Day, Dimension::Repo, 86_400, "a/b.js", 3),
                row(Granularity::Day, Dimension::Repo, 86_400, "c/d", 2),
            ]
        );
        assert_eq!(
            store
                .aggregates(all_of(Granularity::Quarter, Dimension::GithutLanguage))
                .await
                .unwrap(),
            vec![row(
                Granularity::Quarter,
                Dimension::GithutLanguage,
                0,
                "Rust",
                0
            )]
        );
        assert_eq!(store.event_count().await.unwrap(), 5);
        assert_eq!(legacy.count_documents(doc! {}).await.unwrap(), 0);
        // Connecting again moves nothing twice.
        let again = MongoStore::connect(&uri, &database).await.unwrap();
        assert_eq!(again.event_count().await.unwrap(), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn models_are_registered_promoted_and_read_back() {
        super::models_are_registered_promoted_and_read_back(mongo().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_registrations_get_distinct_numbers() {
        super::concurrent_registrations_get_distinct_numbers(mongo().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn predictions_are_kept_once_and_each_event_counted_once() {
        super::predictions_are_kept_once_and_each_event_counted_once(mongo().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue_labels_are_resolved_once_in_order() {
        super::issue_labels_are_resolved_once_in_order(mongo().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn star_points_are_kept_once_per_repository_and_time() {
        super::star_points_are_kept_once_per_repository_and_time(mongo().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_has_one_holder_until_it_expires_or_is_given_up() {
        super::a_lease_has_one_holder_until_it_expires_or_is_given_up(mongo().await).await;
    }
}
