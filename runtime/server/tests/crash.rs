//! `forgecast up` killed with SIGKILL mid-stream, as a power cut or the OOM killer would, and started again: the
//! store and its lake come back consistent, and after the replay every event is stored once and counted once.

mod support;

use std::time::{Duration, Instant};

use forgecast_core::aggregate::Granularity;
use forgecast_core::store::Store;
use forgecast_embedded::SqliteStore;
use support::{expected_totals, input_events, scripts, start};

/// The number of events the running process says it stored, from its `/metrics`.
async fn stored(url: &str) -> u64 {
    let text = forgecast_github::http::client()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("forgecast_store_events_stored_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Lines in the lake's hour files.
fn lake_lines(dir: &std::path::Path) -> usize {
    let mut lines = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            lines += lake_lines(&path);
        } else {
            lines += std::fs::read(&path)
                .unwrap()
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_killed_mid_stream_comes_back_with_every_event_once() {
    let data = tempfile::tempdir().unwrap();
    let input = input_events();
    let total = input.len() as u64;

    let mut up = start(
        &scripts(),
        data.path(),
        &["--replay-once", "--replay-speed", "20"],
    );
    let started = Instant::now();
    while stored(&up.url).await < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "nothing stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    up.child.kill().unwrap();
    up.child.wait().unwrap();
    let at_kill = SqliteStore::open_alongside(&data.path().join("forgecast.sqlite"))
        .unwrap()
        .event_count()
        .await
        .unwrap();
    assert!(
        (200..total).contains(&at_kill),
        "the kill did not land mid-stream: {at_kill} of {total} stored"
    );
    drop(up);

    // Started again, the replay offers every event once more: the store keeps each once, and the writer cuts
    // whatever the kill left uncommitted at the end of the lake's files.
    let mut again = start(
        &scripts(),
        data.path(),
        &["--replay-once", "--replay-speed", "0"],
    );
    let started = Instant::now();
    while again.child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the second run did not finish; its log:\n{}",
            again.all.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.child.wait().unwrap().success());

    let store = SqliteStore::open(&data.path().join("forgecast.sqlite")).unwrap();
    assert_eq!(store.event_count().await.unwrap(), total);
    assert_eq!(store.dead_letter_count().await.unwrap(), 0);
    let expected = expected_totals(&input);
    for granularity in [Granularity::Hour, Granularity::Day] {
        assert_eq!(
            support::stored_totals(&store, granularity).await,
            expected,
            "{granularity} counters"
        );
    }
    assert_eq!(
        lake_lines(&data.path().join("lake")) as u64,
        total,
        "the lake holds every event once, with no uncommitted tail left"
    );
}

/// `hours` hours of the bundled samples as GH Archive files (`2024-01-01-H.json.gz`), each event with an id of its
/// own and a `created_at` inside its hour; returns every id.
fn archive_hours(dir: &std::path::Path, hours: u32) -> std::collections::BTreeSet<String> {
    use std::io::Write;
    let samples = forgecast_gharchive::replay::sample_lines();
    let mut ids = std::collections::BTreeSet::new();
    for hour in 0..hours {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for (n, line) in samples.iter().enumerate() {
            let mut event: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = format!("{hour}{n:06}");
            event["id"] = serde_json::Value::from(id.clone());
            event["created_at"] = serde_json::Value::from(format!(
                "2024-01-01T{hour:02}:{:02}:{:02}Z",
                n % 60,
                (n / 60) % 60
            ));
            writeln!(gz, "{event}").unwrap();
            ids.insert(id);
        }
        std::fs::write(
            dir.join(format!("2024-01-01-{hour}.json.gz")),
            gz.finish().unwrap(),
        )
        .unwrap();
    }
    ids
}

fn backfill(hours: &std::path::Path, data: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_forgecast"));
    command
        .env("NO_COLOR", "1")
        .args([
            "backfill",
            "--from",
            "2024-01-01T00",
            "--to",
            "2024-01-01T09",
        ])
        .arg("--source-dir")
        .arg(hours)
        .arg("--data-dir")
        .arg(data)
        .arg("--scripts")
        .arg(scripts())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

fn stored_events(data: &std::path::Path) -> u64 {
    let Ok(db) = rusqlite::Connection::open(data.join("forgecast.sqlite")) else {
        return 0;
    };
    db.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        .map_or(0, |n| n as u64)
}

/// The ids of the lines of every hour file under `dir`, compressed ones inflated.
fn lake_ids(dir: &std::path::Path, ids: &mut Vec<String>) {
    use std::io::Read;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            lake_ids(&path, ids);
            continue;
        }
        let mut text = String::new();
        let file = std::fs::File::open(&path).unwrap();
        if path.to_string_lossy().ends_with(".gz") {
            flate2::read::MultiGzDecoder::new(file)
                .read_to_string(&mut text)
                .unwrap();
        } else {
            std::io::BufReader::new(file)
                .read_to_string(&mut text)
                .unwrap();
        }
        for line in text.lines() {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: {e}: {line:.80}", path.display()));
            ids.push(event["id"].as_str().unwrap().to_string());
        }
    }
}

#[test]
fn backfill_killed_mid_way_comes_back_with_every_event_once_in_its_compressed_lake() {
    let hours = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let expected = archive_hours(hours.path(), 10);
    let total = expected.len() as u64;

    let mut first = support::Killed(backfill(hours.path(), data.path()).spawn().unwrap());
    let started = Instant::now();
    while stored_events(data.path()) < total / 10 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "nothing stored"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let at_kill = stored_events(data.path());
    assert!(
        at_kill < total,
        "the kill did not land mid-way: {at_kill} of {total} stored"
    );
    drop(first);

    let again = backfill(hours.path(), data.path()).status().unwrap();
    assert!(again.success());
    assert_eq!(stored_events(data.path()), total);
    let mut ids = Vec::new();
    lake_ids(&data.path().join("lake"), &mut ids);
    assert_eq!(
        ids.len() as u64,
        total,
        "each event once in the lake, nothing past a commit"
    );
    assert_eq!(
        ids.into_iter().collect::<std::collections::BTreeSet<_>>(),
        expected
    );
    for file in forgecast_lake::layout::hour_files(&data.path().join("lake")).unwrap() {
        assert!(
            file.to_string_lossy().ends_with(".json.gz"),
            "{}: a past hour is kept compressed",
            file.display()
        );
    }
}
