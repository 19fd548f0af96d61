//! Serving the sentiment champion: latency over HTTP under an open-loop load at a fixed rate, and how fast the
//! model scores in process and inside the pipeline.
//!
//! `forgecast up --source none` on a fresh data directory (its first start trains and promotes the default
//! champion) is sent one text per request, the texts of `data/se-sentiment/github.csv` in turn, on
//! `POST /api/models/sentiment/predict` and then on `POST /v2/models/sentiment/infer`. Requests leave at fixed
//! intervals whether or not earlier ones have been answered, and each latency runs from the moment its request
//! was due to the whole answer read: a slow answer delays no later request, so queueing is measured rather than
//! hidden (no coordinated omission). Connections are kept alive in the client's pool.
//!
//! `FORGECAST_BENCH_RATE` (requests/s, default 1,000), `FORGECAST_BENCH_SECONDS` (per route, default 20) and
//! `FORGECAST_BENCH_EVENTS` (replayed through the pipeline, default 193,600: fifty rounds of the bundled events
//! with new ids) set the load. Prints figures; it asserts nothing about them (machines here are shared and noisy).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use forgecast::backends::{Access, open_store};
use forgecast::config::{BusPlan, PipelinePlan, SourcePlan, StoragePlan, StorePlan};
use forgecast::pipeline::{Pipeline, Summary};
use forgecast_core::registry::{Registry, champion};
use forgecast_gharchive::replay::ReplayConfig;
use forgecast_models::SentimentModel;
use forgecast_models::dataset::bundled_rows;
use forgecast_script::Limits;
use forgecast_script::watch::WatchConfig;
use tokio_util::sync::CancellationToken;

/// A setting from the environment, or its default.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one request gave: how long after it was due its answer was read, and whether it was a 200.
struct Answered {
    latency: Duration,
    done: Instant,
    ok: bool,
}

/// What a load run gave.
struct Run {
    sent: usize,
    latencies: Vec<Duration>,
    errors: usize,
    first_due: Instant,
    last_done: Instant,
}

/// Sends `bodies` in turn to `url`, `rate` requests a second for `seconds`, each when it is due.
///
/// A plain thread keeps the schedule (a sleeping thread wakes within tens of microseconds; tokio's timer has
/// millisecond ticks) and hands each request to `runtime`, so that no answer holds back the next request.
fn open_loop(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    bodies: &[String],
    rate: f64,
    seconds: f64,
) -> Run {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let count = (rate * seconds).round() as usize;
    let (tx, rx) = std::sync::mpsc::channel::<Answered>();
    let first_due = Instant::now() + Duration::from_millis(10);
    for i in 0..count {
        let due = first_due + interval * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let request = client
            .post(url)
            .header("content-type", "application/json")
            .body(bodies[i % bodies.len()].clone());
        let tx = tx.clone();
        runtime.spawn(async move {
            let ok = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    response.bytes().await.is_ok() && status == reqwest::StatusCode::OK
                }
                Err(_) => false,
            };
            let done = Instant::now();
            let _ = tx.send(Answered {
                latency: done - due,
                done,
                ok,
            });
        });
    }
    drop(tx);
    let answers: Vec<Answered> = rx.iter().collect();
    let last_done = answers.iter().map(|a| a.done).max().unwrap_or(first_due);
    let errors = answers.iter().filter(|a| !a.ok).count() + (count - answers.len());
    let mut latencies: Vec<Duration> = answers.iter().filter(|a| a.ok).map(|a| a.latency).collect();
    latencies.sort();
    Run {
        sent: count,
        latencies,
        errors,
        first_due,
        last_done,
    }
}

/// The `q` quantile of sorted `values`, in milliseconds.
fn quantile_ms(values: &[Duration], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let at = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
    values[at].as_secs_f64() * 1e3
}

fn report(route: &str, run: &Run) {
    let completed = run.latencies.len();
    let span = (run.last_done - run.first_due).as_secs_f64();
    println!(
        "  {route:<36} p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  {:>7.1} req/s completed  \
         ({completed} of {} in {span:.2} s)  {} errors",
        quantile_ms(&run.latencies, 0.50),
        quantile_ms(&run.latencies, 0.90),
        quantile_ms(&run.latencies, 0.99),
        quantile_ms(&run.latencies, 1.0),
        completed as f64 / span,
        run.sent,
        run.errors,
    );
}

/// The champion `up` serves, loaded from its store the way the CLI reads it alongside a running `up`; with the
/// artifact's size.
async fn served_model(data: &Path) -> (u32, SentimentModel, usize) {
    let storage = StoragePlan {
        data_dir: data.to_path_buf(),
        store: StorePlan::Embedded,
    };
    let store = open_store(&storage, Access::Reader, &CancellationToken::new())
        .await
        .unwrap()
        .unwrap();
    let versions = store.versions("sentiment").await.unwrap();
    let version = champion(&versions).expect("a champion").version;
    let bytes = store.artifact("sentiment", version).await.unwrap().unwrap();
    (
        version,
        SentimentModel::from_bytes(&bytes).unwrap(),
        bytes.len(),
    )
}

/// The bundled events replayed through the whole pipeline, with or without the model stage; the time from the
/// pipeline started (a first start's training excluded) to everything drained.
async fn pipeline(events: u64, models: bool) -> (Summary, Duration) {
    let data = tempfile::tempdir().unwrap();
    let plan = PipelinePlan {
        scripts: support::scripts(),
        source: SourcePlan::Replay(ReplayConfig {
            speed: 0.0,
            once: false,
            limit: Some(events),
            batch: 512,
        }),
        limits: Limits::default(),
        watch: WatchConfig::default(),
        enrich_share: 0.2,
        bus: BusPlan::Embedded,
        storage: StoragePlan {
            data_dir: data.path().to_path_buf(),
            store: StorePlan::Embedded,
        },
        bounds: Default::default(),
        models,
    };
    let pipeline = Pipeline::start(&plan).await.unwrap();
    let started = Instant::now();
    while !pipeline.source_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let summary = pipeline.drain().await;
    (summary, started.elapsed())
}

fn main() {
    let rate: f64 = setting("FORGECAST_BENCH_RATE", 1000.0);
    let seconds: f64 = setting("FORGECAST_BENCH_SECONDS", 20.0);
    let events: u64 = setting("FORGECAST_BENCH_EVENTS", 193_600);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let texts: Vec<String> = bundled_rows()
        .unwrap()
        .into_iter()
        .map(|r| r.text)
        .collect();

    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let up = support::up(data.path(), &["--source", "none"]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = forgecast_github::http::client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let model_url = format!("{}/api/models/sentiment", up.url);
    loop {
        let model = runtime.block_on(support::get_json(&model_url));
        if model["champion"].is_u64() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no champion: {model}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "Serving the sentiment champion on loopback: {rate:.0} requests/s for {seconds:.0} s per route, one text \
         each ({} texts of github.csv in turn), keep-alive; {cores} cores shared by server and client",
        texts.len()
    );
    println!(
        "  (first start with its training, to a champion served: {:.1} s)",
        started.elapsed().as_secs_f64()
    );

    let routes = [
        (
            "POST /api/models/sentiment/predict",
            format!("{}/api/models/sentiment/predict", up.url),
            texts
                .iter()
                .map(|t| serde_json::json!({ "instances": [{ "text": t }] }).to_string())
                .collect::<Vec<_>>(),
        ),
        (
            "POST /v2/models/sentiment/infer",
            format!("{}/v2/models/sentiment/infer", up.url),
            texts
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "inputs": [{ "name": "text", "shape": [1], "datatype": "BYTES", "data": [t] }]
                    })
                    .to_string()
                })
                .collect::<Vec<_>>(),
        ),
    ];
    for (route, url, bodies) in &routes {
        // A second of the same load first: connections opened, the champion loaded, caches warm.
        open_loop(&runtime, &client, url, bodies, rate, 1.0);
        let run = open_loop(&runtime, &client, url, bodies, rate, seconds);
        report(route, &run);
    }

    // The same champion in process: one thread, one text at a time.
    let (version, model, artifact) = runtime.block_on(served_model(data.path()));
    drop(up);
    let mut each = Vec::with_capacity(texts.len());
    let mut labels = 0usize;
    let all = Instant::now();
    for text in &texts {
        let at = Instant::now();
        labels += model.predict(text).label.len();
        each.push(at.elapsed());
    }
    let took = all.elapsed();
    std::hint::black_box(labels);
    each.sort();
    println!(
        "  model alone (version {version}), one thread      {:>9.0} predictions/s  ({:.1} µs per text on average, \
         p99 {:.1} µs, {} texts)",
        texts.len() as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / texts.len() as f64,
        quantile_ms(&each, 0.99) * 1e3,
        texts.len()
    );
    println!(
        "  model in memory                          {:>9} kB  (memory_bytes: {} terms × {} labels); artifact {} kB",
        model.memory_bytes() / 1000,
        model.vectorizer().len(),
        model.labels().len(),
        artifact / 1000
    );

    // Inside the pipeline: the bundled events replayed as fast as possible, through routing, the store and the
    // model stage (its features script picks the texts), against the same pipeline without the model stage.
    let pipelines = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (without, without_took) = pipelines.block_on(pipeline(events, false));
    let (with, with_took) = pipelines.block_on(pipeline(events, true));
    println!(
        "  pipeline without the model stage        {:>9.0} events/s  ({} events in {:.2} s)",
        without.written.stored as f64 / without_took.as_secs_f64(),
        without.written.stored,
        without_took.as_secs_f64()
    );
    println!(
        "  pipeline with the model stage           {:>9.0} events/s, {:.0} predictions/s  ({} events, {} texts \
         scored and kept, {} without text, in {:.2} s)",
        with.written.stored as f64 / with_took.as_secs_f64(),
        with.scored.kept as f64 / with_took.as_secs_f64(),
        with.written.stored,
        with.scored.kept,
        with.scored.skipped,
        with_took.as_secs_f64()
    );
}
