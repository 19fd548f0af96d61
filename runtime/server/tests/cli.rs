//! The `forgecast` binary as a user runs it: `check`, `up` with its HTTP endpoints, `tap`, and Ctrl-C.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{Up, copy_dir, start, wait_for_log};

fn forgecast() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forgecast"));
    command.env_remove("RUST_LOG").env("NO_COLOR", "1");
    command
}

fn shipped_scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_passes_on_the_shipped_scripts() {
    let output = forgecast()
        .arg("check")
        .arg(shipped_scripts())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("6 scripts OK"), "{}", text(&output));
}

#[test]
fn check_names_file_and_line_of_a_broken_script_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&shipped_scripts(), dir.path());
    let routing = dir.path().join("routing.rhai");
    let source = fs::read_to_string(&routing).unwrap();
    let broken = source
        .replacen("return \"gh.bots\";", "return \"gh.bots\"", 1)
        .replacen("    }\n", "    ]\n", 1);
    fs::write(&routing, broken).unwrap();
    let features = dir.path().join("features/issue_outcome.rhai");
    let source = fs::read_to_string(&features).unwrap();
    fs::write(
        &features,
        source.replace("labels: labels.len(),", "labels: labels.len() + 1,"),
    )
    .unwrap();

    let output = forgecast().arg("check").arg(dir.path()).output().unwrap();
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    let expected_routing = format!("{}:11:", routing.display());
    assert!(
        out.lines().any(|l| l.starts_with(&expected_routing)),
        "routing problem at line 11 in:\n{out}"
    );
    let cases = dir.path().join("features/issue_outcome.cases.jsonl");
    assert!(
        out.lines().any(|l| l.starts_with(&format!(
            "{}:2:1: case \"an opened issue\": expected",
            cases.display()
        ))),
        "failing case reported at its line in:\n{out}"
    );
}

#[test]
fn unknown_flags_and_bad_values_are_refused_clearly() {
    let output = forgecast()
        .args(["up", "--replay-sped", "2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("--replay-sped"), "{}", text(&output));
    let output = forgecast()
        .args(["up", "--source", "carrier-pigeon"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("possible values"),
        "{}",
        text(&output)
    );
    let output = forgecast()
        .args(["up", "--listen", "localhost"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

fn up(scripts: &Path, data: &Path) -> Up {
    start(scripts, data, &["--replay-speed", "20"])
}

fn get(url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = forgecast_github::http::client()
            .get(url)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

#[test]
fn up_serves_health_metrics_scripts_and_taps_then_stops_cleanly_on_ctrl_c() {
    let scripts = tempfile::tempdir().unwrap();
    copy_dir(&shipped_scripts(), scripts.path());
    let data = tempfile::tempdir().unwrap();
    let up = up(scripts.path(), data.path());

    assert_eq!(get(&format!("{}/healthz", up.url)), (200, "ok\n".into()));
    assert_eq!(get(&format!("{}/readyz", up.url)).0, 200);
    let (status, body) = get(&format!("{}/api/scripts", up.url));
    assert_eq!(status, 200);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "features/issue_outcome",
            "features/sentiment",
            "policies/retrain",
            "queries/events",
            "queries/new_repos",
            "routing"
        ]
    );
    assert!(listed[5]["hash"].as_str().unwrap().len() == 12 && listed[5]["status"] == "live");

    // A tap on all raw topics prints live events, one line each.
    let tap = forgecast()
        .args(["tap", "gh.raw.*", "--limit", "3", "--url", &up.url])
        .output()
        .unwrap();
    assert!(tap.status.success(), "{}", text(&tap));
    let lines: Vec<String> = String::from_utf8_lossy(&tap.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("gh.raw.") && l.contains("Event")),
        "{lines:?}"
    );

    // A broken edit is refused in one log line naming the file and place; the old version stays live.
    let routing = scripts.path().join("routing.rhai");
    fs::write(&routing, "fn route(event) {\n    \"gh.raw.\" +\n}\n").unwrap();
    let refusal = wait_for_log(&up, "Script refused");
    assert!(refusal.contains("routing.rhai:3:1"), "{refusal}");
    let (_, body) = get(&format!("{}/api/scripts", up.url));
    assert!(body.contains("\"last_refusal\":{"), "{body}");
    let (_, live) = get(&format!("{}/api/live", up.url));
    let live: serde_json::Value = serde_json::from_str(&live).unwrap();
    assert_eq!(
        live["health"]["reloads_refused"], 1,
        "the live view's health counts the refusal"
    );
    assert_eq!(live["health"]["reloads_accepted"], 0);

    let (_, metrics) = get(&format!("{}/metrics", up.url));
    for name in [
        "forgecast_events_in_total{topic=\"gh.raw.push\"}",
        "forgecast_script_reloads_total{result=\"refused\"} 1",
        "forgecast_script_call_seconds_count{script=\"routing\"}",
        "forgecast_store_events_stored_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }

    assert_stops_cleanly_on(up, "-INT");
}

/// Sends `signal` to a running `forgecast up` and checks that it drains, says so and exits with success.
fn assert_stops_cleanly_on(mut up: Up, signal: &str) {
    let pid = up.child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = wait_for_log(&up, "Stopped cleanly");
    assert!(stopped.contains("dead_letters=0"), "{stopped}");
    assert!(up.child.wait().unwrap().success());
}

#[test]
fn json_logs_carry_script_output_with_script_and_version() {
    let scripts = tempfile::tempdir().unwrap();
    fs::write(scripts.path().join("routing.rhai"), "fn route(event) {\n    if event.type == \"ReleaseEvent\" { print(`release in ${event.repo}`); }\n    \"gh.raw.all\"\n}\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let output = forgecast()
        .env("FORGECAST_LOG_FORMAT", "json")
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--replay-speed",
            "0",
            "--replay-once",
            "--scripts",
        ])
        .arg(scripts.path())
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let logs = String::from_utf8_lossy(&output.stderr);
    let printed: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("every log line is JSON"))
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("release in "))
        })
        .collect();
    assert_eq!(
        printed.len(),
        7 + 3 + 23,
        "one line per ReleaseEvent in the samples"
    );
    assert_eq!(printed[0]["script"], "routing");
    assert_eq!(printed[0]["version"].as_str().unwrap().len(), 12);
}

#[test]
fn sigterm_drains_and_stops_cleanly_as_containers_stop_it() {
    let data = tempfile::tempdir().unwrap();
    let up = up(&shipped_scripts(), data.path());
    assert_eq!(get(&format!("{}/healthz", up.url)).0, 200);
    assert_stops_cleanly_on(up, "-TERM");
}

#[test]
fn a_second_writer_on_the_same_data_directory_is_refused_clearly() {
    let data = tempfile::tempdir().unwrap();
    let first = up(&shipped_scripts(), data.path());
    let second = forgecast()
        .args(["up", "--listen", "127.0.0.1:0", "--scripts"])
        .arg(shipped_scripts())
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        text(&second)
            .contains("another forgecast (up or backfill) is writing to this data directory"),
        "{}",
        text(&second)
    );
    assert_stops_cleanly_on(first, "-INT");
}

#[test]
fn logs_written_to_a_file_or_pipe_are_plain_text() {
    let data = tempfile::tempdir().unwrap();
    let up = start(&shipped_scripts(), data.path(), &["--source", "none"]);
    let log = up.all.lock().unwrap().clone();
    assert!(
        log.contains("component=\"scripts\""),
        "fields as plain key=value: {log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes off a terminal: {log}"
    );
}
