//! `forgecast archive` on a real Kafka broker: the lake of the distributed mode. A one-pass replay goes through
//! Kafka into the embedded store (whose own lake is the reference) while the archive, in its own consumer
//! group, appends to another lake; the archive is killed with SIGKILL mid-stream and started again. The
//! assertions: every input event is in the archive's lake, in the hour file of its creation time, and the
//! history computed from that lake equals the one computed from the store's lake, row for row.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use forgecast_testkit::Service;
use support::{input_events, scripts, spawn_logged, start};

/// Starts `forgecast archive` on `lake`; its log lines are collected into the returned receiver.
fn archive(
    kafka: &Service,
    lake: &Path,
    extra: &[&str],
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let (child, log, _) = spawn_logged(
        Command::new(env!("CARGO_BIN_EXE_forgecast"))
            .args(["archive", "--kafka-brokers", &kafka.brokers(), "--lake"])
            .arg(lake)
            .args(extra)
            .env_remove("FORGECAST_ARCHIVE_GROUP"),
    );
    (child, log)
}

/// Every line of every hour file under `lake`, with the file it is in.
fn lake_lines(lake: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    let mut lines = Vec::new();
    let mut pending = vec![lake.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                for line in fs::read_to_string(&path).unwrap().lines() {
                    let value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display()));
                    lines.push((path.strip_prefix(lake).unwrap().to_path_buf(), value));
                }
            }
        }
    }
    lines
}

/// The history rows `forgecast aggregate` computes from `lake`.
fn history(lake: &Path, data: &Path) -> BTreeMap<String, u64> {
    let output = Command::new(env!("CARGO_BIN_EXE_forgecast"))
        .args(["aggregate", "--no-import", "--lake"])
        .arg(lake)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    fs::read_to_string(data.join("history/embedded.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            let count = r["count"].as_u64().unwrap();
            let key = format!(
                "{} {} {} {}",
                r["granularity"], r["bucket"], r["dimension"], r["key"]
            );
            (key, count)
        })
        .collect()
}

/// Waits (a minute at most) for a log line containing `needle`.
fn wait_for_line(log: &std::sync::mpsc::Receiver<String>, needle: &str) {
    loop {
        let line = log
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return;
        }
    }
}

/// Waits for a process to exit by itself, `limit` at most (then kills it and fails).
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("a process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for_lines(lake: &Path, at_least: usize, limit: Duration) {
    let started = Instant::now();
    while lake_lines(lake).len() < at_least {
        assert!(
            started.elapsed() < limit,
            "the lake has fewer than {at_least} lines"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_archive_keeps_every_event_through_a_crash_and_its_lake_gives_the_same_history() {
    let kafka = Service::kafka();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (mut first, log) = archive(&kafka, &lake, &[]);
    wait_for_line(&log, "Archiving the pipeline topics");

    // A second archive on the same lake is refused, saying why.
    let (mut refused, said) = archive(&kafka, &lake, &[]);
    let status = wait_exit(&mut refused, Duration::from_secs(30));
    assert!(!status.success());
    let said: Vec<String> = said.iter().collect();
    assert!(
        said.iter().any(|l| l.contains("one per lake")),
        "{}",
        said.join("\n")
    );

    let brokers = kafka.brokers();
    let store_dir = dir.path().join("store");
    let mut producer = start(
        &scripts(),
        &store_dir,
        &[
            "--bus",
            "kafka",
            "--kafka-brokers",
            &brokers,
            "--source",
            "replay",
            "--replay-once",
            "--replay-speed",
            "40",
        ],
    );

    // Mid-stream, the archive dies as in a crash; a new one takes over where the group's offsets are.
    let total = input_events().len();
    wait_for_lines(&lake, 300, Duration::from_secs(120));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        lake_lines(&lake).len() < total,
        "the kill came after the end of the stream"
    );
    let (mut second, log) = archive(&kafka, &lake, &["--idle-exit", "8"]);
    wait_exit(&mut producer.child, Duration::from_secs(180));
    let status = wait_exit(&mut second, Duration::from_secs(60));
    assert!(status.success());
    let said: Vec<String> = log.try_iter().collect();
    assert!(
        said.iter().any(|l| l.contains("--idle-exit")),
        "{}",
        said.join("\n")
    );

    // Every event is there (some perhaps twice: what the killed archive wrote but had not committed), each in
    // the file of its hour, and nothing else.
    let lines = lake_lines(&lake);
    let ids: BTreeSet<String> = lines
        .iter()
        .map(|(_, e)| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), total, "every replayed event, once or more");
    for (file, event) in &lines {
        let at = event["created_at"].as_str().unwrap();
        let expected = format!(
            "{}/{}/{}/{}.json",
            &at[..4],
            &at[5..7],
            &at[8..10],
            &at[11..13]
        );
        assert_eq!(file.to_str().unwrap(), expected);
    }
    // Lines may repeat (at least once: the killed archive synced lines it could not commit); the history
    // engines below must count each id once.
    // The history engines count each id once: the archive's lake gives the store's history exactly.
    let ours = history(&lake, &dir.path().join("from-archive"));
    let reference = history(&store_dir.join("lake"), &dir.path().join("from-store"));
    assert_eq!(ours, reference);
    let events: u64 = ours
        .iter()
        .filter(|(k, _)| k.starts_with("\"year\"") && k.contains("\"all\""))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(events, total as u64);
}
