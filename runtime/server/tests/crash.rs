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
