//! The embedded pipeline end to end on the bundled real events: every event stored once, counters equal to
//! counts computed independently from the input files, runaway scripts dead-lettered, reloads lossless.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod support;

use forgecast::config::{BusPlan, PipelinePlan, SourcePlan, StoragePlan, StorePlan};
use std::sync::Arc;

use forgecast::pipeline::{Pipeline, Shared, Summary};
use forgecast_core::aggregate::{AggregateQuery, Dimension, Granularity};
use forgecast_core::store::Store;
use forgecast_gharchive::replay::ReplayConfig;
use forgecast_script::Limits;
use forgecast_script::watch::WatchConfig;
use serde_json::Value;
use support::{expected_totals, input_events, stored_totals};

fn shipped_scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

fn plan(scripts: &Path, data: &Path, replay: ReplayConfig) -> PipelinePlan {
    PipelinePlan {
        scripts: scripts.to_path_buf(),
        source: SourcePlan::Replay(replay),
        limits: Limits::default(),
        watch: WatchConfig {
            debounce: Duration::from_millis(20),
            ..WatchConfig::default()
        },
        enrich_share: 0.2,
        bus: BusPlan::Embedded,
        storage: StoragePlan {
            data_dir: data.to_path_buf(),
            store: StorePlan::Embedded,
        },
        bounds: Default::default(),
        models: false,
    }
}

fn once() -> ReplayConfig {
    ReplayConfig {
        speed: 0.0,
        once: true,
        ..ReplayConfig::default()
    }
}

/// Runs a one-pass replay to the end; the returned handles keep the store open for inspection.
async fn run_to_end(plan: &PipelinePlan) -> (Arc<Shared>, Summary) {
    let pipeline = Pipeline::start(plan).await.expect("pipeline starts");
    while !pipeline.source_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shared = pipeline.shared().clone();
    (shared, pipeline.drain().await)
}

/// Every file under the lake.
fn lake_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(lake_files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_events_are_stored_once_and_counted_exactly() {
    let data = tempfile::tempdir().unwrap();
    let (shared, summary) = run_to_end(&plan(&shipped_scripts(), data.path(), once())).await;
    let input = input_events();
    assert_eq!(summary.source_events, input.len() as u64);
    assert_eq!(
        shared.store.event_count().await.unwrap(),
        input.len() as u64
    );
    assert_eq!(summary.written.dead_letters, 0);

    let expected = expected_totals(&input);
    for granularity in [Granularity::Hour, Granularity::Day] {
        assert_eq!(
            stored_totals(&shared.store, granularity).await,
            expected,
            "{granularity} counters"
        );
    }
    let minute = stored_totals(&shared.store, Granularity::Minute).await;
    let expected_minute: BTreeMap<_, _> = expected
        .iter()
        .filter(|((d, _), _)| *d == "all" || *d == "type")
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(minute, expected_minute, "minute counters");

    // The lake holds every event once, as GH Archive lines, in the file of its (shifted) creation hour; each
    // event sits in the hour bucket of that timestamp and keeps its GitHub id on the first round.
    let mut per_hour: BTreeMap<i64, u64> = BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    let mut lines = 0;
    for file in lake_files(&data.path().join("lake")) {
        let hour_of_file = chrono::NaiveDateTime::parse_from_str(
            &format!(
                "{}:00:00",
                file.strip_prefix(data.path().join("lake"))
                    .unwrap()
                    .display()
            ),
            "%Y/%m/%d/%H.json:%M:%S",
        )
        .unwrap()
        .and_utc()
        .timestamp();
        for line in fs::read_to_string(&file).unwrap().lines() {
            lines += 1;
            let tree: Value = serde_json::from_str(line).unwrap();
            ids.insert(tree["id"].as_str().unwrap().to_string());
            let time = chrono::DateTime::parse_from_rfc3339(tree["created_at"].as_str().unwrap())
                .unwrap()
                .timestamp();
            assert_eq!(
                time - time.rem_euclid(3600),
                hour_of_file,
                "{} in {}",
                tree["id"],
                file.display()
            );
            *per_hour.entry(time - time.rem_euclid(3600)).or_insert(0) += 1;
        }
    }
    assert_eq!(lines, input.len(), "no event twice in the lake");
    let query = AggregateQuery {
        granularity: Granularity::Hour,
        dimension: Dimension::All,
        from: i64::MIN,
        to: i64::MAX,
    };
    let rows = shared.store.aggregates(query).await.unwrap();
    let stored_hours: BTreeMap<i64, u64> = rows.into_iter().map(|r| (r.bucket, r.count)).collect();
    assert_eq!(stored_hours, per_hour);
    let input_ids: std::collections::BTreeSet<String> = input
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, input_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_same_events_again_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let first = plan(&shipped_scripts(), data.path(), once());
    let (shared, _) = run_to_end(&first).await;
    let before = stored_totals(&shared.store, Granularity::Day).await;
    drop(shared);
    // Same ids again (round 0 keeps GitHub's ids): a redelivery as after a crash.
    let (shared, summary) = run_to_end(&first).await;
    assert_eq!(summary.written.stored, 0);
    assert_eq!(summary.written.duplicates, summary.source_events);
    assert_eq!(stored_totals(&shared.store, Granularity::Day).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_script_dead_letters_its_events_and_the_rest_flows() {
    let scripts = tempfile::tempdir().unwrap();
    fs::write(
        scripts.path().join("routing.rhai"),
        "fn route(event) {\n    if event.type == \"GollumEvent\" { loop { } }\n    \"gh.raw.all\"\n}\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut plan = plan(scripts.path(), data.path(), once());
    plan.limits = Limits {
        deadline_ms: 20,
        max_operations: 0,
        ..Limits::default()
    };
    let (shared, summary) = run_to_end(&plan).await;
    let input = input_events();
    let gollum = input.iter().filter(|e| e["type"] == "GollumEvent").count() as u64;
    assert!(gollum > 0);
    assert_eq!(summary.written.dead_letters, gollum);
    assert_eq!(shared.store.dead_letter_count().await.unwrap(), gollum);
    assert_eq!(
        shared.store.event_count().await.unwrap(),
        input.len() as u64 - gollum
    );

    let db = rusqlite::Connection::open(data.path().join("forgecast.sqlite")).unwrap();
    let (stage, script, error, raw): (String, String, String, String) = db
        .query_row(
            "SELECT stage, script, error, raw FROM dead_letters LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((stage.as_str(), script.as_str()), ("route", "routing"));
    assert!(error.contains("deadline exceeded"), "{error}");
    assert!(raw.contains("\"GollumEvent\""), "the whole event is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_naming_ever_new_topics_is_held_to_the_bound() {
    // One new topic per event: without a bound, as many topics and metric series as events.
    let scripts = tempfile::tempdir().unwrap();
    fs::write(
        scripts.path().join("routing.rhai"),
        "fn route(event) { \"gh.each.\" + event.id }\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut plan = plan(scripts.path(), data.path(), once());
    plan.bounds.max_topics = 64;
    plan.bounds.max_metric_series = 64;
    let (shared, summary) = run_to_end(&plan).await;
    let input = input_events();
    assert!(input.len() > 200);
    let over = input.len() as u64 - 64;
    assert_eq!(shared.store.event_count().await.unwrap(), 64);
    assert_eq!(summary.written.dead_letters, over);
    let status = shared.topics.status();
    assert_eq!(
        (status.used, status.max, status.refused_events),
        (64, 64, over)
    );

    let db = rusqlite::Connection::open(data.path().join("forgecast.sqlite")).unwrap();
    let error: String = db
        .query_row("SELECT error FROM dead_letters LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert!(error.contains("bounds.max_topics"), "{error}");
    let metrics = shared.metrics.render();
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("forgecast_events_in_total{"))
        .count();
    assert!(series <= 66, "{series} series of events_in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_routing_under_a_steady_stream_loses_and_duplicates_nothing() {
    let scripts = tempfile::tempdir().unwrap();
    let file = scripts.path().join("routing.rhai");
    let version = |n: u32| format!("fn route(event) {{\n    [\"gh.v{n}\", \"gh.all\"]\n}}\n");
    fs::write(&file, version(0)).unwrap();
    let data = tempfile::tempdir().unwrap();
    // At a thousand times real time a round of the bundled timeline (about 400 s of it) takes 0.4 s; four rounds
    // leave time for a couple of dozen edits while events flow, whatever the machine's speed.
    let rounds = 4;
    let replay = ReplayConfig {
        speed: 1000.0,
        once: false,
        limit: Some(3872 * rounds),
        batch: 64,
    };
    let pipeline = Pipeline::start(&plan(scripts.path(), data.path(), replay))
        .await
        .unwrap();
    let mut n = 0;
    while !pipeline.source_finished() {
        n += 1;
        fs::write(
            &file,
            if n % 3 == 0 {
                "fn route(event) {".to_string()
            } else {
                version(n)
            },
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert!(n >= 10, "only {n} edits happened while events flowed");
    let shared = pipeline.shared().clone();
    let summary = pipeline.drain().await;
    assert_eq!(summary.source_events, 3872 * rounds);
    assert_eq!(
        summary.routed,
        2 * summary.source_events,
        "every event routed to exactly two topics"
    );
    assert_eq!(summary.written.stored, summary.source_events);
    assert_eq!(summary.written.dead_letters, 0);
    assert_eq!(
        shared.store.event_count().await.unwrap(),
        summary.source_events
    );
    let reloads = shared.store.recent_reloads(1000).await.unwrap();
    assert!(
        reloads.iter().any(|r| r.accepted && r.old_hash.is_some()),
        "some reloads went live during the stream"
    );
    assert!(
        reloads.iter().any(|r| !r.accepted),
        "broken versions were refused"
    );
}

/// The sentiment labels of the shipped features script and a model, computed here, event by event: the events the
/// model stage must score, and what it must predict.
fn expected_sentiment(
    model: &forgecast_models::SentimentModel,
) -> BTreeMap<String, (String, i64, String)> {
    let engine = forgecast_script::ScriptEngine::new(Limits::default());
    let path = shipped_scripts().join("features/sentiment.rhai");
    let script = forgecast_script::Script::compile(
        &engine,
        "features/sentiment",
        &path,
        &fs::read_to_string(&path).unwrap(),
    )
    .unwrap();
    let mut expected = BTreeMap::new();
    for line in forgecast_gharchive::replay::sample_lines() {
        let event = Arc::new(forgecast_core::Event::parse(&line).unwrap());
        let features = script
            .event_features(&engine, forgecast_script::EventView::new(event.clone()))
            .unwrap();
        if let Some(features) = features {
            let Some(forgecast_script::FeatureValue::Text(text)) = features.get("text") else {
                panic!("no text in {features:?}");
            };
            let label = model.predict(text).label;
            expected.insert(
                event.id.clone(),
                (label, event.created_at, event.repo.clone()),
            );
        }
    }
    expected
}

/// The day counters of every label, summed over buckets, under `scope`.
async fn label_totals(
    store: &forgecast::backends::AnyStore,
    scope: forgecast_core::predictions::Scope,
) -> BTreeMap<(String, String), u64> {
    use forgecast_core::predictions::{LabelQuery, PredictionStore};
    let rows = store
        .label_counts(LabelQuery {
            model: "sentiment".into(),
            granularity: Granularity::Day,
            scope,
            key: None,
            from: i64::MIN,
            to: i64::MAX,
        })
        .await
        .unwrap();
    let mut totals = BTreeMap::new();
    for row in rows {
        *totals.entry((row.key, row.label)).or_insert(0) += row.count;
    }
    totals
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_trains_a_champion_and_scores_every_discussion_once() {
    use forgecast_core::predictions::{PredictionStore, Scope};
    use forgecast_core::registry::{Alias, Registry};
    let data = tempfile::tempdir().unwrap();
    let mut with_models = plan(&shipped_scripts(), data.path(), once());
    with_models.models = true;
    let (shared, summary) = run_to_end(&with_models).await;
    let versions = shared.store.versions("sentiment").await.unwrap();
    assert_eq!(
        versions.len(),
        1,
        "one default version trained at first start"
    );
    assert_eq!(versions[0].alias, Some(Alias::Champion));
    let artifact = shared
        .store
        .artifact("sentiment", 1)
        .await
        .unwrap()
        .unwrap();
    let model = forgecast_models::SentimentModel::from_bytes(&artifact).unwrap();

    let expected = expected_sentiment(&model);
    assert!(expected.len() > 100, "{} discussions", expected.len());
    assert_eq!(summary.scored.kept, expected.len() as u64);
    assert_eq!(summary.scored.failed, 0);
    assert_eq!(
        summary.scored.skipped + summary.scored.kept,
        summary.source_events
    );
    assert_eq!(
        shared.store.prediction_count("sentiment").await.unwrap(),
        expected.len() as u64
    );
    let mut by_label: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut by_repo: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (label, _, repo) in expected.values() {
        *by_label.entry(("*".into(), label.clone())).or_default() += 1;
        *by_repo.entry((repo.clone(), label.clone())).or_default() += 1;
    }
    assert_eq!(label_totals(&shared.store, Scope::All).await, by_label);
    assert_eq!(label_totals(&shared.store, Scope::Repo).await, by_repo);
    let newest = shared
        .store
        .recent_predictions("sentiment", Some("negative"), 5)
        .await
        .unwrap();
    assert!(!newest.is_empty());
    for p in &newest {
        assert_eq!(p.label, "negative");
        assert_eq!(expected[&p.event_id].0, "negative");
        assert!(!p.excerpt.is_empty());
    }
    assert!(newest.windows(2).all(|w| w[0].at >= w[1].at));
    // Drift of what it scored: a window per 200 texts against the version's first.
    {
        use forgecast_core::outcomes::OutcomeStore;
        let drift = shared.store.drift("sentiment").await.unwrap();
        let windows = expected.len() as u64 / forgecast::pipeline::text_drift::TEXT_WINDOW as u64;
        assert!(windows >= 1, "{} texts", expected.len());
        assert_eq!(
            drift.iter().map(|d| d.window).collect::<Vec<_>>(),
            (0..windows).map(|w| w * 200 + 1).collect::<Vec<_>>()
        );
        for d in &drift {
            assert_eq!((d.version, d.count, d.reference.count), (1, 200, 200));
            let mut names: Vec<&str> = d.features.iter().map(|f| f.feature.as_str()).collect();
            names.sort_unstable();
            assert_eq!(
                names,
                ["event_type", "language", "text_chars", "text_words"]
            );
            assert_eq!(d.prediction.feature, "label");
        }
        assert!(drift[0].features.iter().all(|f| f.psi == 0.0));
        assert_eq!(drift[0].prediction.psi, 0.0);
    }
    drop(shared);

    // The same events again (a redelivery after a crash): nothing kept twice, nothing counted twice.
    let (shared, again) = run_to_end(&with_models).await;
    assert_eq!(again.scored.kept, 0);
    assert_eq!(
        shared.store.versions("sentiment").await.unwrap().len(),
        1,
        "a later start does not train again"
    );
    assert_eq!(label_totals(&shared.store, Scope::All).await, by_label);

    // A new champion scores them again: its predictions are kept beside the first ones, the counters still
    // count each event once.
    let second = shared
        .store
        .register(versions[0].meta.clone(), artifact)
        .await
        .unwrap();
    shared
        .store
        .set_alias("sentiment", second, Alias::Champion)
        .await
        .unwrap();
    drop(shared);
    let (shared, third) = run_to_end(&with_models).await;
    assert_eq!(third.scored.kept, expected.len() as u64);
    assert_eq!(
        shared.store.prediction_count("sentiment").await.unwrap(),
        2 * expected.len() as u64
    );
    assert_eq!(label_totals(&shared.store, Scope::All).await, by_label);
    assert_eq!(label_totals(&shared.store, Scope::Repo).await, by_repo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_on_one_store_train_one_first_model() {
    use forgecast_core::registry::Registry;
    let database = forgecast_testkit::unique_name("first-start");
    let uri = forgecast_testkit::shared_mongo().mongo_uri();
    let plan_on = |data: &Path| {
        let mut plan = plan(&shipped_scripts(), data, once());
        plan.source = SourcePlan::None;
        plan.models = true;
        plan.storage.store = StorePlan::Mongo {
            uri: uri.clone(),
            database: database.clone(),
        };
        plan
    };
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, second) = (plan_on(one.path()), plan_on(two.path()));
    let (a, b) = tokio::join!(Pipeline::start(&first), Pipeline::start(&second));
    let (a, b) = (a.expect("the first starts"), b.expect("the second starts"));
    let versions = a.shared().store.versions("sentiment").await.unwrap();
    assert_eq!(
        versions.len(),
        1,
        "one process trained, the other waited for its version"
    );
    assert_eq!(
        versions[0].alias,
        Some(forgecast_core::registry::Alias::Champion)
    );
    a.drain().await;
    b.drain().await;
}
