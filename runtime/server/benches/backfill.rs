//! Backfill throughput on one GH Archive hour file: inflate alone, decode (inflate + parse) alone, and decode +
//! route with the shipped routing script, decoding and routing on two threads as `forgecast backfill` does.
//!
//! `FORGECAST_BENCH_HOUR` names the file (`tools/bench-backfill.sh` builds one and runs DuckDB on it in the
//! same run, for reference).

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use forgecast::metrics::Metrics;
use forgecast::pipeline::route::{TopicCap, route_batch};
use forgecast_gharchive::{Decoded, Lines, MAX_LINE_BYTES, decode, parse_lines, read_lines};
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
        eprintln!(
            "Set FORGECAST_BENCH_HOUR to a GH Archive hour file (tools/bench-backfill.sh does)."
        );
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
