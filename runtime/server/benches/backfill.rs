//! Backfill throughput.
//!
//! With `FORGECAST_BENCH_HOUR` naming one GH Archive hour file: inflate alone, decode (inflate + parse) alone,
//! and decode + route with the shipped routing script, decoding and routing on two threads as `forgecast
//! backfill` does (`tools/bench-backfill.sh` builds one and runs DuckDB on it in the same run, for reference).
//!
//! Without it, end to end: `forgecast backfill` (this build's binary, the shipped scripts, the default config)
//! on the standard benchmark lake (`../shared/bench/make_hours.py OUT 200000 5`: 1,000,000 real events in five
//! hour files, built once under `$HOME/.cache/forgecast`, or `FORGECAST_BENCH_LAKE`), in a fresh data
//! directory per run (`FORGECAST_BENCH_RUNS`, default 1; `FORGECAST_BENCH_MODELS=0` turns the model stage off):
//! events/s, the process's peak resident memory, and the lake's and SQLite's bytes at rest; the lake's
//! compression of the bundled real events (`data/gharchive-samples`), which the standard lake's repeated events
//! overstate (see [`real_events_encoding`]). Then, in the same run, the reference: DuckDB counting the same
//! files by type (`FORGECAST_BENCH_PYTHON`, default the Python of `$HOME/.cache/forgecast/spark-venv`, where
//! `tools/bench-aggregate.sh` installs DuckDB), and DuckDB counting the events of the lake the backfill wrote,
//! to show it reads it as it reads GH Archive.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use forgecast::metrics::Metrics;
use forgecast::pipeline::route::{TopicCap, route_batch};
use forgecast_core::Event;
use forgecast_gharchive::replay::{SAMPLES, sample_text};
use forgecast_gharchive::{Decoded, Lines, MAX_LINE_BYTES, decode, parse_lines, read_lines};
use forgecast_lake::committed::placement_order;
use forgecast_script::host::check_dir;
use forgecast_script::{Script, ScriptEngine};

fn rate(label: &str, events: u64, took: Duration) {
    println!(
        "  {label:<28} {:>9.0} events/s  ({events} events in {:.2} s)",
        events as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    );
}

fn main() {
    let Ok(path) = std::env::var("FORGECAST_BENCH_HOUR") else {
        end_to_end();
        return;
    };
    let bytes = std::fs::read(&path).expect("the hour file");
    println!(
        "Backfill of {path} ({:.0} MB compressed)",
        bytes.len() as f64 / 1e6
    );

    let started = Instant::now();
    let mut sink = Vec::with_capacity(bytes.len() * 8);
    MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut sink)
        .unwrap();
    let lines = sink.iter().filter(|&&b| b == b'\n').count() as u64;
    rate("inflate alone", lines, started.elapsed());
    drop(sink);

    let started = Instant::now();
    let decoded = decode(&bytes[..], "bench", 1024, MAX_LINE_BYTES, |_| true).unwrap();
    let events = decoded.events();
    rate("decode alone", events, started.elapsed());

    let engine = ScriptEngine::default();
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
    let (loaded, problems) = check_dir(&engine, &scripts);
    assert!(problems.is_empty(), "{problems:?}");
    let routing = loaded.into_iter().find(|s| s.id() == "routing").unwrap();
    let (again, _) = check_dir(&engine, &scripts);
    split(
        &bytes,
        ScriptEngine::default(),
        again.into_iter().find(|s| s.id() == "routing").unwrap(),
        events,
    );
    let metrics = Metrics::new();
    let topics = TopicCap::new(64);
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel(64);
    let router = std::thread::spawn(move || {
        let mut records = 0u64;
        for batch in rx {
            records += route_batch(&engine, &routing, batch, &metrics, &topics).len() as u64;
        }
        records
    });
    decode(&bytes[..], "bench", 1024, MAX_LINE_BYTES, |batch| {
        tx.send(batch).is_ok()
    })
    .unwrap();
    drop(tx);
    let records = router.join().unwrap();
    assert_eq!(records, events);
    rate("decode + route (2 threads)", events, started.elapsed());
}

/// Inflating on one thread, parsing and routing on another: the way `forgecast backfill` runs.
fn split(bytes: &[u8], engine: ScriptEngine, routing: Script, events: u64) {
    let metrics = Metrics::new();
    let topics = TopicCap::new(64);
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Lines>(64);
    let parser = std::thread::spawn(move || {
        let mut decoded = Decoded::default();
        let mut records = 0u64;
        for chunk in rx {
            let batch = parse_lines("bench", chunk, &mut decoded);
            records += route_batch(&engine, &routing, batch, &metrics, &topics).len() as u64;
        }
        records
    });
    read_lines(bytes, 1024, MAX_LINE_BYTES, |chunk| tx.send(chunk).is_ok()).unwrap();
    drop(tx);
    assert_eq!(parser.join().unwrap(), events);
    rate("inflate | parse + route", events, started.elapsed());
}

/// The standard benchmark lake, built once.
fn standard_lake() -> PathBuf {
    if let Ok(dir) = std::env::var("FORGECAST_BENCH_LAKE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var("HOME").expect("HOME");
    let dir = Path::new(&home).join(".cache/forgecast/bench-lake-5x200k");
    if !dir.join("2024-01-01-4.json.gz").exists() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/make_hours.py");
        let status = Command::new("python3")
            .arg(script)
            .arg(&dir)
            .args(["200000", "5"])
            .status()
            .expect("python3 runs the workplace's make_hours.py");
        assert!(status.success(), "make_hours.py failed");
    }
    dir
}

/// Bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| match p.is_dir() {
            true => bytes_under(&p),
            false => p.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// What one run of the binary took.
struct Took {
    ok: bool,
    wall: Duration,
    /// User and system CPU time of the process.
    cpu: Duration,
    /// Peak resident memory, bytes.
    peak: u64,
}

/// Runs `command` to its end and measures it (its own rusage, from `wait4`: processes other benchmarks or
/// builds run at the same time do not count).
#[expect(
    clippy::zombie_processes,
    reason = "wait4 reaps the child, with its rusage"
)]
fn measured(command: &mut Command) -> Took {
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the forgecast binary starts");
    let (status, usage) = forgecast_testkit::wait_with_usage(&child);
    Took {
        ok: status.success(),
        wall: started.elapsed(),
        cpu: usage.cpu,
        peak: usage.peak,
    }
}

/// The machine's load average over the last minute.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn end_to_end() {
    let lake = standard_lake();
    let runs: usize = std::env::var("FORGECAST_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let models = std::env::var("FORGECAST_BENCH_MODELS").map_or(true, |v| v != "0");
    let input = bytes_under(&lake);
    println!(
        "Backfill of {} ({:.0} MB of GH Archive hour files), end to end, model stage {}",
        lake.display(),
        input as f64 / 1e6,
        if models { "on" } else { "off" }
    );
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
    let mut last = None;
    for run in 1..=runs {
        let data = tempfile::tempdir().expect("a data directory");
        let mut command = Command::new(env!("CARGO_BIN_EXE_forgecast"));
        command
            .args([
                "backfill",
                "--from",
                "2024-01-01T00",
                "--to",
                "2024-01-01T04",
            ])
            .arg("--source-dir")
            .arg(&lake)
            .arg("--scripts")
            .arg(&scripts)
            .arg("--data-dir")
            .arg(data.path())
            .env("NO_COLOR", "1");
        if !models {
            let config = data.path().join("bench.toml");
            std::fs::write(&config, "models = false\n").unwrap();
            command.arg("--config").arg(config);
        }
        let before = load();
        let took = measured(&mut command);
        assert!(took.ok, "forgecast backfill failed");
        let db = rusqlite::Connection::open(data.path().join("forgecast.sqlite")).unwrap();
        let events: u64 = db
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64;
        drop(db);
        let lake_bytes = bytes_under(&data.path().join("lake"));
        let sqlite_bytes: u64 = ["forgecast.sqlite", "forgecast.sqlite-wal"]
            .iter()
            .map(|f| std::fs::metadata(data.path().join(f)).map_or(0, |m| m.len()))
            .sum();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "  run {run}: {:>9.0} events/s  ({events} events in {:.2} s; load average {before} before), CPU \
             {:.1} s (at most {:.0} events/s on {cores} idle cores), peak RSS {:.0} MB, lake at rest {:.0} MB \
             ({:.2} GB per million events), SQLite {:.0} MB",
            events as f64 / took.wall.as_secs_f64(),
            took.wall.as_secs_f64(),
            took.cpu.as_secs_f64(),
            events as f64 * cores as f64 / took.cpu.as_secs_f64(),
            took.peak as f64 / 1e6,
            lake_bytes as f64 / 1e6,
            lake_bytes as f64 / events.max(1) as f64 * 1e6 / 1e9,
            sqlite_bytes as f64 / 1e6
        );
        last = Some((data, events));
    }
    real_events_encoding();
    let python = std::env::var("FORGECAST_BENCH_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/forgecast/spark-venv/bin/python")
    });
    let has_duckdb = Command::new(&python)
        .args(["-c", "import duckdb"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_duckdb {
        println!(
            "  reference: DuckDB is not available ({python} cannot import duckdb): no reference figure in this run"
        );
        return;
    }
    let reference = format!("{}/*.json.gz", lake.display());
    duckdb(
        &python,
        "reference: DuckDB count by type of the same files",
        &reference,
    );
    if let Some((data, events)) = last {
        let ours = format!("{}/lake/**/*.json*", data.path().display());
        println!("  (the backfill's lake holds {events} events)");
        duckdb(
            &python,
            "DuckDB count by type of the backfill's lake",
            &ours,
        );
    }
}

/// The lake's compression of real hours. The standard lake repeats the 3,872 bundled real events
/// (`data/gharchive-samples`) round-robin, so in a batch placed by type and repository the copies of one event
/// lie side by side and its lake compresses far better than real hours would. This compresses each bundled file
/// as one batch of past hours, with the store's encoder, in arrival order and in the store's placement order.
fn real_events_encoding() {
    let compressors = forgecast_lake::gzip::Compressors::default();
    println!(
        "  the lake's encoding of real events (bundled GH Archive samples, each file one batch):"
    );
    for (name, bytes) in SAMPLES {
        let text = sample_text(name, bytes).expect("the bundled samples decompress");
        let events: Vec<Event> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Event::parse(l).expect("a bundled event"))
            .collect();
        let joined = |order: &mut dyn Iterator<Item = usize>| {
            let mut plain = Vec::new();
            for at in order {
                plain.extend_from_slice(events[at].raw.as_bytes());
                plain.push(b'\n');
            }
            plain
        };
        let arrival = joined(&mut (0..events.len()));
        let placed = joined(&mut placement_order(&events).into_iter());
        let mut figures = Vec::new();
        for plain in [&arrival, &placed] {
            let rounds = 40;
            let started = Instant::now();
            let mut size = 0;
            for _ in 0..rounds {
                size = compressors.members(plain).len();
            }
            let took = started.elapsed().as_secs_f64() / rounds as f64;
            figures.push(format!(
                "{:.2} times, {:.0} MB/s, {:.2} GB per million events",
                plain.len() as f64 / size as f64,
                plain.len() as f64 / took / 1e6,
                size as f64 / events.len() as f64 * 1e6 / 1e9
            ));
        }
        println!(
            "    {name} ({} events, {:.1} MB): in arrival order {}; placed {}",
            events.len(),
            arrival.len() as f64 / 1e6,
            figures[0],
            figures[1]
        );
    }
}

/// DuckDB counting the events of `glob` by type, timed by itself.
fn duckdb(python: &str, label: &str, glob: &str) {
    let program = r#"
import sys, time, duckdb
db = duckdb.connect()
db.execute("SET enable_progress_bar = false")
t = time.time()
rows = db.execute(
    f"select type, count(*) from read_json('{sys.argv[1]}', format='newline_delimited', "
    "columns={'id':'VARCHAR','type':'VARCHAR','created_at':'VARCHAR'}) group by type").fetchall()
n = sum(c for _, c in rows); dt = time.time() - t
print(f"{n} {dt} {duckdb.__version__}")
"#;
    let output = Command::new(python)
        .args(["-c", program, glob])
        .output()
        .expect("python runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.lines().last().unwrap_or_default().split_whitespace();
    match (
        parts.next().and_then(|n| n.parse::<u64>().ok()),
        parts.next().and_then(|t| t.parse::<f64>().ok()),
        parts.next(),
    ) {
        (Some(n), Some(seconds), Some(version)) => println!(
            "  {label} (DuckDB {version}): {:>9.0} events/s  ({n} events in {seconds:.2} s)",
            n as f64 / seconds
        ),
        _ => println!(
            "  {label}: DuckDB failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}
