//! `forgecast backfill` on GH Archive hour files from a directory and from a local HTTP server: counts per
//! event type match the files, finished hours are skipped on the next run, a corrupted line is
//! dead-lettered with its file and line while the rest goes on, a line over the length limit is dead-lettered
//! by its head without being held whole, and a file cut short keeps the lines before the cut.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::Compression;
use flate2::write::GzEncoder;
use forgecast_gharchive::replay::{SAMPLES, sample_text};

fn forgecast() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forgecast"));
    command
        .env("NO_COLOR", "1")
        .arg("backfill")
        .arg("--scripts")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts"));
    command
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// The three bundled samples as the hours 2024-01-01 00:00, 01:00 and 02:00, in the archive's file naming.
fn archive(dir: &Path) -> Vec<String> {
    let mut texts = Vec::new();
    for (hour, (name, bytes)) in SAMPLES.iter().enumerate() {
        let text = sample_text(name, bytes).unwrap();
        fs::write(dir.join(format!("2024-01-01-{hour}.json.gz")), gzip(&text)).unwrap();
        texts.push(text);
    }
    texts
}

/// Counts per event type, read with plain JSON trees.
fn expected(texts: &[String]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in texts.iter().flat_map(|t| t.lines()) {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        *counts
            .entry(event["type"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    counts
}

/// Counts per event type as the summary prints them.
fn printed(output: &Output) -> BTreeMap<String, u64> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (kind, n) = (parts.next()?, parts.next()?);
            (l.starts_with("  ") && kind.ends_with("Event"))
                .then(|| (kind.to_string(), n.parse().unwrap()))
        })
        .collect()
}

fn stdout(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(data: &Path, args: &[&str], source: &[&str]) -> Output {
    forgecast()
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .args(source)
        .output()
        .unwrap()
}

/// Origin, error and raw line of each dead letter.
fn dead_letters(data: &Path) -> Vec<(String, String, String)> {
    let db = rusqlite::Connection::open(data.join("forgecast.sqlite")).unwrap();
    let mut select = db
        .prepare("SELECT origin, error, raw FROM dead_letters ORDER BY seq")
        .unwrap();
    select
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Ids of the stored events.
fn stored_ids(data: &Path) -> BTreeSet<String> {
    let db = rusqlite::Connection::open(data.join("forgecast.sqlite")).unwrap();
    let mut select = db.prepare("SELECT id FROM events").unwrap();
    select
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn id_of(line: &str) -> String {
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    event["id"].as_str().unwrap().to_string()
}

/// Runs `forgecast backfill` as [`run`] does; also returns the peak memory of that one process (its own rusage,
/// collected by `wait4`, so processes that other tests start at the same time do not count).
#[expect(
    clippy::zombie_processes,
    reason = "wait4 reaps the child, with its rusage"
)]
fn run_measured(data: &Path, args: &[&str], source: &[&str]) -> (Output, u64) {
    use std::io::Read;
    let mut child = forgecast()
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .args(source)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reading = std::thread::spawn(move || {
        let mut text = Vec::new();
        err.read_to_end(&mut text).unwrap();
        text
    });
    let mut stdout = Vec::new();
    out.read_to_end(&mut stdout).unwrap();
    let stderr = reading.join().unwrap();
    let (status, usage) = forgecast_testkit::wait_with_usage(&child);
    (
        Output {
            status,
            stdout,
            stderr,
        },
        usage.peak,
    )
}

fn event_count(data: &Path) -> u64 {
    let db = rusqlite::Connection::open(data.join("forgecast.sqlite")).unwrap();
    db.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

#[test]
fn a_directory_backfill_counts_every_event_and_resumes_where_it_stopped() {
    let hours = tempfile::tempdir().unwrap();
    let texts = archive(hours.path());
    let data = tempfile::tempdir().unwrap();
    let dir = hours.path().to_str().unwrap();

    // First only the first two hours, as an interrupted run would leave it.
    let first = run(
        data.path(),
        &["--from", "2024-01-01T00", "--to", "2024-01-01T01"],
        &["--source-dir", dir],
    );
    assert!(first.status.success(), "{}", stdout(&first));
    assert_eq!(printed(&first), expected(&texts[..2]));

    let second = run(
        data.path(),
        &["--from", "2024-01-01T00", "--to", "2024-01-01T02"],
        &["--source-dir", dir],
    );
    assert!(second.status.success(), "{}", stdout(&second));
    assert!(
        stdout(&second).contains("1 hours done, 2 skipped"),
        "{}",
        stdout(&second)
    );
    assert_eq!(printed(&second), expected(&texts[2..]));
    assert_eq!(
        event_count(data.path()),
        expected(&texts).values().sum::<u64>()
    );

    let again = run(
        data.path(),
        &["--from", "2024-01-01T00", "--to", "2024-01-01T02"],
        &["--source-dir", dir],
    );
    assert!(
        stdout(&again).contains("0 hours done, 3 skipped"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn a_corrupted_line_is_dead_lettered_with_file_and_line_and_the_rest_is_stored() {
    let hours = tempfile::tempdir().unwrap();
    let text = sample_text(SAMPLES[0].0, SAMPLES[0].1).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[9] = "{\"id\": \"123\", \"type\": \"PushEvent\", \"actor\": {\"lo";
    let corrupted = lines.join("\n");
    fs::write(hours.path().join("2024-01-01-0.json.gz"), gzip(&corrupted)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let output = run(
        data.path(),
        &["--from", "2024-01-01T00", "--to", "2024-01-01T00"],
        &["--source-dir", hours.path().to_str().unwrap()],
    );
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("1 malformed lines sent to dead letters"),
        "{}",
        stdout(&output)
    );
    assert_eq!(event_count(data.path()), lines.len() as u64 - 1);
    let letters = dead_letters(data.path());
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, "2024-01-01-0.json.gz:10");
    assert!(
        letters[0].1.contains("not a GitHub event"),
        "{}",
        letters[0].1
    );
}

#[test]
fn a_line_over_the_limit_is_dead_lettered_by_its_head_and_never_held_whole() {
    const LIMIT: usize = 1 << 20;
    // Far above what the process needs otherwise (60 MB or so with the models' first-start training), so that
    // holding the line whole could not hide in the noise.
    const LONG: usize = 256 << 20;
    let hours = tempfile::tempdir().unwrap();
    let text = sample_text(SAMPLES[0].0, SAMPLES[0].1).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Gzip members concatenate into one stream: the long line is one small member of 1 MiB of `x` repeated,
    // so neither this test nor the file holds it whole.
    let mut file = gzip(&format!("{}\n", lines[..10].join("\n")));
    let filler = gzip(&"x".repeat(1 << 20));
    for _ in 0..LONG >> 20 {
        file.extend_from_slice(&filler);
    }
    file.extend(gzip(&format!("\n{}\n", lines[10..].join("\n"))));
    fs::write(hours.path().join("2024-01-01-0.json.gz"), &file).unwrap();

    let data = tempfile::tempdir().unwrap();
    let (output, peak) = run_measured(
        data.path(),
        &[
            "--from",
            "2024-01-01T00",
            "--to",
            "2024-01-01T00",
            "--max-line-bytes",
            &LIMIT.to_string(),
        ],
        &["--source-dir", hours.path().to_str().unwrap()],
    );
    let out = stdout(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        peak < LONG as u64 / 2,
        "backfill grew to {} MB on a line of {} MB",
        peak >> 20,
        LONG >> 20
    );
    assert!(
        out.contains("1 malformed lines sent to dead letters (1 longer than the line limit)"),
        "{out}"
    );
    assert_eq!(
        stored_ids(data.path()),
        lines.iter().map(|l| id_of(l)).collect(),
        "every event before and after the long line is stored"
    );
    let letters = dead_letters(data.path());
    assert_eq!(letters.len(), 1, "{letters:?}");
    let (origin, error, raw) = &letters[0];
    assert_eq!(origin, "2024-01-01-0.json.gz:11");
    assert!(
        error.contains(&LIMIT.to_string()) && error.contains(&LONG.to_string()),
        "the error names the limit and the length: {error}"
    );
    assert_eq!(*raw, "x".repeat(1024), "only the line's first KB is kept");
}

#[test]
fn a_file_cut_short_keeps_every_line_before_the_cut_and_is_reported_partial() {
    let hours = tempfile::tempdir().unwrap();
    let text = sample_text(SAMPLES[0].0, SAMPLES[0].1).unwrap();
    let lines: Vec<&str> = text.lines().take(300).collect();
    let whole = gzip(&format!("{}\n", lines.join("\n")));
    let cut = &whole[..whole.len() / 2];
    fs::write(hours.path().join("2024-01-01-0.json.gz"), cut).unwrap();
    // What an independent inflater gets out of the cut file before it fails: the lines ended before the cut.
    let mut inflated = Vec::new();
    let failed = flate2::read::MultiGzDecoder::new(cut).read_to_end(&mut inflated);
    assert!(failed.is_err(), "a cut gzip fails to inflate");
    let kept = inflated.iter().filter(|b| **b == b'\n').count();
    assert!(kept > 50 && kept < 300, "{kept} lines before the cut");

    let data = tempfile::tempdir().unwrap();
    let dir = hours.path().to_str().unwrap();
    let hour = ["--from", "2024-01-01T00", "--to", "2024-01-01T00"];
    let output = run(data.path(), &hour, &["--source-dir", dir]);
    let out = stdout(&output);
    assert!(
        !output.status.success(),
        "lost lines are reported in the exit status\n{out}"
    );
    assert!(
        out.contains("0 hours done, 0 skipped (done before), 0 missing, 0 failed, 1 partial"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "partial: 2024-01-01-0.json.gz: {kept} events kept, damaged after line {kept}"
        )),
        "{out}"
    );
    assert!(
        !out.contains("retrying"),
        "a local file is not retried\n{out}"
    );
    assert_eq!(
        stored_ids(data.path()),
        lines[..kept].iter().map(|l| id_of(l)).collect(),
        "every line before the cut is stored"
    );
    let done = fs::read_to_string(data.path().join("backfill.done")).unwrap();
    assert!(
        done.starts_with(&format!("2024-01-01T00 partial: {kept} events kept")),
        "{done}"
    );

    // The damage does not go away: the next run skips the hour.
    let again = run(data.path(), &hour, &["--source-dir", dir]);
    assert!(again.status.success(), "{}", stdout(&again));
    assert!(
        stdout(&again).contains("0 hours done, 1 skipped"),
        "{}",
        stdout(&again)
    );
}

/// Serves a directory over HTTP on loopback, 404 for files it does not have.
fn serve(dir: PathBuf) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/{file}",
                axum::routing::get(
                    move |axum::extract::Path(file): axum::extract::Path<String>| {
                        let path = dir.join(file);
                        async move {
                            match fs::read(path) {
                                Ok(bytes) => (axum::http::StatusCode::OK, bytes),
                                Err(_) => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
                            }
                        }
                    },
                ),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{address}")
}

#[test]
fn an_http_backfill_streams_the_hours_and_reports_missing_ones() {
    let hours = tempfile::tempdir().unwrap();
    let texts = archive(hours.path());
    let url = serve(hours.path().to_path_buf());
    let data = tempfile::tempdir().unwrap();
    let output = run(
        data.path(),
        &["--from", "2024-01-01T00", "--to", "2024-01-01T03"],
        &["--source-url", &url],
    );
    let out = stdout(&output);
    assert!(
        !output.status.success(),
        "a missing hour is reported in the exit status\n{out}"
    );
    assert!(
        out.contains("3 hours done, 0 skipped (done before), 1 missing"),
        "{out}"
    );
    assert!(out.contains("missing: 2024-01-01-3.json.gz"), "{out}");
    assert_eq!(printed(&output), expected(&texts));
    assert_eq!(
        event_count(data.path()),
        expected(&texts).values().sum::<u64>()
    );
}

#[test]
fn a_download_cut_short_is_retried_then_kept_as_partial() {
    let hours = tempfile::tempdir().unwrap();
    let text = sample_text(SAMPLES[0].0, SAMPLES[0].1).unwrap();
    let whole = gzip(&text);
    fs::write(
        hours.path().join("2024-01-01-0.json.gz"),
        &whole[..whole.len() / 2],
    )
    .unwrap();
    let url = serve(hours.path().to_path_buf());
    let data = tempfile::tempdir().unwrap();
    let output = run(
        data.path(),
        &["--from", "2024-01-01T00", "--to", "2024-01-01T00"],
        &["--source-url", &url],
    );
    let out = stdout(&output);
    assert!(!output.status.success(), "{out}");
    assert_eq!(
        out.matches("retrying").count(),
        2,
        "a download is tried three times\n{out}"
    );
    assert!(out.contains("0 failed, 1 partial"), "{out}");
    assert!(event_count(data.path()) > 0, "{out}");
}

#[test]
fn bad_ranges_are_refused_before_anything_runs() {
    let data = tempfile::tempdir().unwrap();
    let output = run(
        data.path(),
        &["--from", "2024-01-02T00", "--to", "2024-01-01T00"],
        &["--source-dir", "."],
    );
    assert!(!output.status.success());
    assert!(
        stdout(&output).contains("is before --from"),
        "{}",
        stdout(&output)
    );
    let output = run(
        data.path(),
        &["--from", "yesterday", "--to", "2024-01-01T00"],
        &["--source-dir", "."],
    );
    assert!(stdout(&output).contains("--from"), "{}", stdout(&output));
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

#[test]
fn a_backfill_leaves_its_past_hours_compressed_with_every_event_once() {
    let hours = tempfile::tempdir().unwrap();
    archive(hours.path());
    let data = tempfile::tempdir().unwrap();
    let output = run(
        data.path(),
        &["--from", "2024-01-01T00", "--to", "2024-01-01T02"],
        &["--source-dir", hours.path().to_str().unwrap()],
    );
    assert!(output.status.success(), "{}", stdout(&output));
    let files = files_under(&data.path().join("lake"));
    assert!(!files.is_empty());
    let mut ids = Vec::new();
    for file in &files {
        assert!(
            file.to_string_lossy().ends_with(".json.gz"),
            "{} is not compressed",
            file.display()
        );
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(fs::File::open(file).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        ids.extend(text.lines().map(id_of));
    }
    let stored = stored_ids(data.path());
    assert_eq!(ids.len(), stored.len(), "each event once in the lake");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), stored);
}
