//! `forgecast aggregate` on a lake of the bundled real events: the runtime's own engine and the Spark job give
//! the same rows, running again changes nothing, the rows reach the store, and only what the store committed
//! of its own lake is counted.
//!
//! Needs a Python with PySpark: `tools/test.sh` installs one and names it in `FORGECAST_SPARK_PYTHON`.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use flate2::Compression;
use flate2::write::GzEncoder;
use forgecast_core::Event;
use forgecast_core::store::{RepoMeta, Store};
use forgecast_embedded::SqliteStore;
use forgecast_gharchive::replay::{SAMPLES, sample_lines, sample_text};

type Rows = BTreeMap<(String, i64, String, String), u64>;

fn spark_python() -> String {
    std::env::var("FORGECAST_SPARK_PYTHON")
        .expect("FORGECAST_SPARK_PYTHON names a Python with PySpark; tools/test.sh sets it up")
}

/// The samples as a lake (`YYYY/MM/DD/HH.json.gz`), with a repeated event and a broken line in the last hour.
fn lake(dir: &Path) {
    let names = [
        "2015/01/01/15.json.gz",
        "2021/07/21/06.json.gz",
        "2025/01/01/15.json.gz",
    ];
    for ((name, bytes), path) in SAMPLES.iter().zip(names) {
        let mut text = sample_text(name, bytes).unwrap();
        if path.starts_with("2025") {
            let first = text.lines().next().unwrap().to_string();
            text = format!("{text}{first}\n{{\"id\": \"broken\n");
        }
        let file = dir.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        fs::write(file, gz.finish().unwrap()).unwrap();
    }
}

fn aggregate(lake: &Path, data: &Path, engine: &str) -> Output {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new(env!("CARGO_BIN_EXE_forgecast"))
        .args(["aggregate", "--engine", engine, "--lake"])
        .arg(lake)
        .arg("--data-dir")
        .arg(data)
        .args(["--spark-python", &spark_python(), "--spark-job"])
        .arg(manifest.join("../../spark/jobs/history.py"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn rows(path: &Path) -> Rows {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            let key = (
                r["granularity"].as_str().unwrap().to_string(),
                r["bucket"].as_i64().unwrap(),
                r["dimension"].as_str().unwrap().to_string(),
                r["key"].as_str().unwrap().to_string(),
            );
            (key, r["count"].as_u64().unwrap())
        })
        .collect()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_and_spark_compute_the_same_history() {
    let dir = tempfile::tempdir().unwrap();
    let (lake_dir, data) = (dir.path().join("lake"), dir.path().join("data"));
    lake(&lake_dir);
    // A cached repository language, which both engines must use for events that do not carry one.
    let store = SqliteStore::open(&data.join("forgecast.sqlite")).unwrap();
    let first = sample_text(SAMPLES[0].0, SAMPLES[0].1).unwrap();
    let repo = serde_json::from_str::<serde_json::Value>(first.lines().next().unwrap()).unwrap()["repo"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let meta = RepoMeta {
        name: repo,
        found: true,
        language: Some("Zig".into()),
        topics: vec!["embedded".into(), "zig".into()],
        stars: 0,
        etag: None,
        fetched_at: 0,
    };
    store.put_repo_meta(vec![meta]).await.unwrap();
    drop(store);

    let embedded = aggregate(&lake_dir, &data, "embedded");
    assert!(embedded.status.success(), "{}", text(&embedded));
    let spark = aggregate(&lake_dir, &data, "spark");
    assert!(spark.status.success(), "{}", text(&spark));
    assert!(
        text(&spark).contains("history: 3872 events"),
        "the job's log reaches the runtime's:\n{}",
        text(&spark)
    );

    let (ours, theirs) = (
        rows(&data.join("history/embedded.jsonl")),
        rows(&data.join("history/spark.jsonl")),
    );
    let differing: Vec<_> = ours
        .keys()
        .chain(theirs.keys())
        .filter(|k| ours.get(*k) != theirs.get(*k))
        .collect();
    assert!(differing.is_empty(), "rows that differ: {differing:?}");
    assert!(ours.len() > 300, "{} rows", ours.len());
    let total: u64 = ours
        .iter()
        .filter(|((g, _, d, _), _)| g == "year" && d == "all")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        total, 3872,
        "the repeated event counted once, the broken line left out"
    );
    assert!(
        ours.keys()
            .any(|(_, _, d, k)| d == "type_language" && k.ends_with("/Zig")),
        "the cached language is used"
    );
    assert!(
        ours.keys().any(|(_, _, d, k)| d == "topic" && k == "zig"),
        "the cached topics are used"
    );

    // Again: the same file, the same store.
    let before = fs::read(data.join("history/spark.jsonl")).unwrap();
    assert!(aggregate(&lake_dir, &data, "spark").status.success());
    assert_eq!(fs::read(data.join("history/spark.jsonl")).unwrap(), before);
    let db = rusqlite::Connection::open(data.join("forgecast.sqlite")).unwrap();
    let stored: i64 = db
        .query_row(
            "SELECT count(*) FROM aggregates WHERE granularity IN ('month', 'year')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let expected = ours
        .keys()
        .filter(|(g, ..)| g == "month" || g == "year")
        .count() as i64;
    assert_eq!(stored, expected, "loaded once, whatever the runs");
}

#[test]
fn a_lake_that_is_not_there_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = aggregate(
        &dir.path().join("nowhere"),
        &dir.path().join("data"),
        "embedded",
    );
    assert!(!output.status.success());
    assert!(
        text(&output).contains("is not a directory"),
        "{}",
        text(&output)
    );
}

#[test]
fn both_engines_read_the_lake_the_runtime_wrote() {
    let data = tempfile::tempdir().unwrap();
    support::replay_once(data.path());
    let totals = |engine: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_forgecast"))
            .args(["aggregate", "--engine", engine, "--no-import", "--data-dir"])
            .arg(data.path())
            .args(["--spark-python", &spark_python(), "--spark-job"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spark/jobs/history.py"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        rows(&data.path().join(format!("history/{engine}.jsonl")))
    };
    let (ours, theirs) = (totals("embedded"), totals("spark"));
    assert_eq!(ours, theirs);
    let events: u64 = ours
        .iter()
        .filter(|((g, _, d, _), _)| g == "year" && d == "all")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        events, 3872,
        "every replayed event, from the store's own lake"
    );
}

/// A store of 1,000 events of one hour, then what a `kill -9` of its writer between the lake's sync and SQLite's
/// commit leaves: whole event lines no row points at after the hour file's committed end (the last one cut
/// short), and a file of the next hour that nothing committed points into. Returns the events stored.
async fn store_with_uncommitted_tails(data: &Path) -> u64 {
    let lines = sample_lines();
    let store = SqliteStore::open(&data.join("forgecast.sqlite")).unwrap();
    let events: Vec<_> = lines[..1_000]
        .iter()
        .map(|l| std::sync::Arc::new(Event::parse(l).unwrap()))
        .collect();
    store.write_events(events).await.unwrap();
    let stored = store.event_count().await.unwrap();
    drop(store);
    let hours = SqliteStore::lake_path(&data.join("forgecast.sqlite")).join("2015/01/01");
    let mut hour = fs::OpenOptions::new()
        .append(true)
        .open(hours.join("15.json"))
        .unwrap();
    for line in &lines[1_000..1_024] {
        writeln!(hour, "{line}").unwrap();
    }
    write!(hour, "{}", &lines[1_000][..100]).unwrap();
    fs::write(hours.join("16.json"), format!("{}\n", lines[1_001])).unwrap();
    stored
}

/// Events counted in the year rows of a counts file.
fn year_total(rows: &Rows) -> u64 {
    rows.iter()
        .filter(|((g, _, d, _), _)| g == "year" && d == "all")
        .map(|(_, n)| n)
        .sum()
}

fn aggregate_own_lake(data: &Path, engine: &str) -> Rows {
    let output = Command::new(env!("CARGO_BIN_EXE_forgecast"))
        .args(["aggregate", "--engine", engine, "--no-import", "--data-dir"])
        .arg(data)
        .args(["--spark-python", &spark_python_or_none(), "--spark-job"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spark/jobs/history.py"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    rows(&data.join(format!("history/{engine}.jsonl")))
}

/// The Python for the Spark job, for the tests that need it; another name for those that do not.
fn spark_python_or_none() -> String {
    std::env::var("FORGECAST_SPARK_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_engine_reads_the_store_s_lake_only_up_to_what_was_committed() {
    let data = tempfile::tempdir().unwrap();
    let stored = store_with_uncommitted_tails(data.path()).await;
    let lake = SqliteStore::lake_path(&data.path().join("forgecast.sqlite"));
    let before = fs::read(lake.join("2015/01/01/15.json")).unwrap();
    let ours = aggregate_own_lake(data.path(), "embedded");
    assert_eq!(
        year_total(&ours),
        stored,
        "the events the store holds, not the lines its lake's files hold"
    );
    assert_eq!(
        fs::read(lake.join("2015/01/01/15.json")).unwrap(),
        before,
        "the reader leaves the tail to the writer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_reads_the_store_s_lake_only_up_to_what_was_committed() {
    spark_python();
    let data = tempfile::tempdir().unwrap();
    let stored = store_with_uncommitted_tails(data.path()).await;
    let theirs = aggregate_own_lake(data.path(), "spark");
    assert_eq!(year_total(&theirs), stored);
    assert_eq!(theirs, aggregate_own_lake(data.path(), "embedded"));
    assert!(
        !data.path().join("history/committed").exists(),
        "the copies of committed parts are removed after the job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_loads_into_mongodb_with_its_cached_repositories() {
    use forgecast_core::aggregate::{AggregateQuery, Dimension, Granularity};
    use forgecast_mongo::MongoStore;

    let mongo = forgecast_testkit::shared_mongo();
    let database = forgecast_testkit::unique_name("history");
    let store = MongoStore::connect(&mongo.mongo_uri(), &database)
        .await
        .unwrap();
    let first = sample_text(SAMPLES[0].0, SAMPLES[0].1).unwrap();
    let repo = serde_json::from_str::<serde_json::Value>(first.lines().next().unwrap()).unwrap()
        ["repo"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    store
        .put_repo_meta(vec![RepoMeta {
            name: repo,
            found: true,
            language: Some("Zig".into()),
            topics: vec!["compilers".into()],
            stars: 1,
            etag: None,
            fetched_at: 1_700_000_000,
        }])
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (lake_dir, data) = (dir.path().join("lake"), dir.path().join("data"));
    lake(&lake_dir);
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_forgecast"))
            .args([
                "aggregate",
                "--engine",
                "embedded",
                "--store",
                "mongo",
                "--lake",
            ])
            .arg(&lake_dir)
            .arg("--data-dir")
            .arg(&data)
            .args(["--mongo-uri", &mongo.mongo_uri(), "--mongo-db", &database])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let output = run();
    assert!(output.status.success(), "{}", text(&output));
    let computed = rows(&data.join("history/embedded.jsonl"));
    // Every computed row is in MongoDB, the cached repository's language and topic included.
    let held = support::stored_rows(
        &store,
        &[Granularity::Month, Granularity::Quarter, Granularity::Year],
    )
    .await;
    assert_eq!(held, computed);
    assert!(
        held.keys()
            .any(|(_, _, d, k)| d == "topic" && k == "compilers")
    );
    // Loading again changes nothing.
    assert!(run().status.success());
    let again = store
        .aggregates(AggregateQuery {
            granularity: Granularity::Year,
            dimension: Dimension::Type,
            from: i64::MIN,
            to: i64::MAX,
        })
        .await
        .unwrap();
    let year_types: u64 = again.iter().map(|r| r.count).sum();
    let expected: u64 = computed
        .iter()
        .filter(|((g, _, d, _), _)| g == "year" && d == "type")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(year_types, expected);

    // Without a lake, MongoDB has none to offer: refused with the reason.
    let output = Command::new(env!("CARGO_BIN_EXE_forgecast"))
        .args(["aggregate", "--store", "mongo", "--data-dir"])
        .arg(&data)
        .args(["--mongo-uri", &mongo.mongo_uri()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(text(&output).contains("--lake is needed with --store mongo"));
}

#[test]
fn every_runs_on_schedule_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    lake(&lake_dir);
    let (mut child, rx, _) = support::spawn_logged(
        Command::new(env!("CARGO_BIN_EXE_forgecast"))
            .args(["aggregate", "--no-import", "--every", "2s", "--lake"])
            .arg(&lake_dir)
            .arg("--data-dir")
            .arg(dir.path().join("data")),
    );
    let mut said = Vec::new();
    let mut runs = 0;
    while runs < 2 {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no second run; the log:\n{}", said.join("\n")));
        runs += usize::from(line.contains("history rows in"));
        said.push(line);
    }
    assert!(
        said.iter()
            .any(|l| l.contains("Next history run scheduled")),
        "{}",
        said.join("\n")
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    said.extend(rx.iter());
    assert!(status.success(), "{}", said.join("\n"));
    assert!(
        said.last().is_some_and(|l| l.contains("Stopped.")),
        "{}",
        said.join("\n")
    );
}

/// Every sample event in a store whose hours of 2015 and 2021 are over (so compressed: 2015's after it was
/// written plain, 2021's as it was written) and whose 2025 hour goes on (plain), with what a crash between the
/// lake's sync and SQLite's commit leaves past each end: a gzip member, and a line and a half, of events no row
/// holds. Returns the events stored.
async fn store_with_compressed_hours(data: &Path) -> u64 {
    let events: Vec<_> = sample_lines()
        .iter()
        .filter_map(|l| Event::parse(l).ok())
        .map(std::sync::Arc::new)
        .collect();
    let (early, later): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|e| e.created_at < 1_500_000_000);
    let store = SqliteStore::open(&data.join("forgecast.sqlite")).unwrap();
    store.write_events(early).await.unwrap();
    store.write_events(later).await.unwrap();
    let stored = store.event_count().await.unwrap();
    drop(store);
    let lake = SqliteStore::lake_path(&data.join("forgecast.sqlite"));
    assert!(!lake.join("2015/01/01/15.json").exists());
    assert!(lake.join("2025/01/01/15.json").exists());
    let uncommitted = sample_lines()[0].replacen("\"id\":\"", "\"id\":\"9", 1);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    writeln!(gz, "{uncommitted}").unwrap();
    let mut closed = fs::OpenOptions::new()
        .append(true)
        .open(lake.join("2015/01/01/15.json.gz"))
        .unwrap();
    closed.write_all(&gz.finish().unwrap()).unwrap();
    let mut open = fs::OpenOptions::new()
        .append(true)
        .open(lake.join("2025/01/01/15.json"))
        .unwrap();
    write!(open, "{uncommitted}\n{}", &uncommitted[..100]).unwrap();
    stored
}

/// The embedded engine's rows for the lake at `lake`, computed in the data directory `data`.
fn aggregate_lake_embedded(lake: &Path, data: &Path) -> Rows {
    let output = Command::new(env!("CARGO_BIN_EXE_forgecast"))
        .args(["aggregate", "--engine", "embedded", "--no-import", "--lake"])
        .arg(lake)
        .arg("--data-dir")
        .arg(data)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    rows(&data.join("history/embedded.jsonl"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_s_compressed_hours_are_read_as_gh_archive_s_own_files_are() {
    let data = tempfile::tempdir().unwrap();
    let stored = store_with_compressed_hours(data.path()).await;
    let ours = aggregate_own_lake(data.path(), "embedded");
    assert_eq!(year_total(&ours), stored, "nothing past a committed end");
    // GH Archive's files of the same events (with a repeated event and a broken line, counted as nothing).
    let (archive, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    lake(archive.path());
    assert_eq!(
        ours,
        aggregate_lake_embedded(archive.path(), elsewhere.path())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_reads_the_store_s_compressed_hours_up_to_what_was_committed() {
    spark_python();
    let data = tempfile::tempdir().unwrap();
    let stored = store_with_compressed_hours(data.path()).await;
    let theirs = aggregate_own_lake(data.path(), "spark");
    assert_eq!(year_total(&theirs), stored);
    assert_eq!(theirs, aggregate_own_lake(data.path(), "embedded"));
}
