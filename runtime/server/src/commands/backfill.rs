//! `forgecast backfill`: GH Archive hours through the same routing and store as live events.
//!
//! Hours are decoded as they download, several at once (a gzip stream inflates on one core only, so one hour
//! per core keeps them busy), fed to the pipeline, and recorded as done in `<data-dir>/backfill.done`, in
//! order, only once every event of the hour is stored, so an interrupted backfill resumes where it stopped and
//! never skips an hour it did not finish. The hours' decoders wait while the pipeline holds more than
//! [`IN_FLIGHT`] records not yet taken by every stage, which bounds the memory whatever the stages' speeds (a
//! record the store writer has taken counts as taken while its batch is written; on the embedded store the
//! writer takes its next batch once the current one's lines are on disk, so the decoders and the model stages
//! go on during its transaction; those two batches come on top of the bound). On
//! the embedded store, past hours are declared over before the first event, so their events are written to
//! the lake compressed, as GH Archive publishes them. An hour that cannot be downloaded is retried,
//! then reported; the others go on. An hour whose file is damaged (a gzip cut short) keeps the lines before the
//! damage and is recorded as partial with the count kept: a local file is not read again, since its bytes stay
//! as they are, while a download is retried first, since the damage may have happened on the way.

use std::collections::{BTreeSet, VecDeque};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use forgecast_core::backoff::Backoff;
use forgecast_core::source::Incoming;
use forgecast_gharchive::{
    self as gharchive, Decoded, Hour, HourError, HourSource, Lines, LinesError,
};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::backends::{AnyBus, AnyStore};
use crate::config::BackfillPlan;
use crate::pipeline::{Pipeline, Shared};
use crate::shutdown::Shutdown;

/// Lines, and so events, handed on at once.
const BATCH: usize = 1024;
/// Records the pipeline may hold at once, fed and not yet taken by every stage (about 3 KB each); the batch the
/// store writer is writing, and the next one it has taken, come on top.
const IN_FLIGHT: u64 = 8_192;
/// Chunks of lines an hour's inflater may be ahead of its parser.
const LINES_AHEAD: usize = 4;
/// Hours decoded at once at most; fewer on fewer cores.
const MOST_PARALLEL: usize = 4;
/// Attempts per hour before it is reported as failed.
const ATTEMPTS: u32 = 3;
/// Waits between attempts of an hour: 2 s, then 4 s.
const HOUR_BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(2),
    max: Duration::from_secs(60),
    jitter: 0.0,
};

/// What a backfill did.
#[derive(Debug, Default)]
pub struct Report {
    /// Hours decoded and stored in this run.
    pub done: Vec<Hour>,
    /// Hours skipped because an earlier run finished them.
    pub skipped: u64,
    /// Hours the archive does not have.
    pub missing: Vec<Hour>,
    /// Hours without a file, expected with `--sparse`.
    pub empty: u64,
    /// Hours that failed after retries, with the reason.
    pub failed: Vec<(Hour, String)>,
    /// Hours whose file is damaged, with the events kept (those before the damage) and the reason.
    pub partial: Vec<(Hour, u64, String)>,
    /// Events and malformed lines of the hours done and partial.
    pub decoded: Decoded,
    /// Events stored for the first time.
    pub stored: u64,
}

fn done_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("backfill.done")
}

/// The hours recorded as done; a line is an hour, followed by a note for a partial one.
fn read_done(data_dir: &Path) -> anyhow::Result<BTreeSet<String>> {
    match std::fs::read_to_string(done_file(data_dir)) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e).context("cannot read the list of finished hours"),
    }
}

/// Records `hour` as done, with `note` after it when it is partial.
fn mark_done(data_dir: &Path, hour: Hour, note: Option<&str>) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(done_file(data_dir))
        .context("cannot record a finished hour")?;
    match note {
        Some(note) => writeln!(file, "{hour} partial: {}", note.replace('\n', " "))?,
        None => writeln!(file, "{hour}")?,
    }
    file.sync_data()?;
    Ok(())
}

/// Waits until the first `items` source items are safe: routed, and on the embedded bus stored (on Kafka the
/// consumer group stores them). Other hours may be feeding meanwhile: only the records published for these
/// items are waited for, which the single writer stores in order.
async fn settle(shared: &Shared, items: u64) {
    while shared.taken.load(Ordering::SeqCst) < items {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if matches!(shared.bus, AnyBus::Kafka(_)) {
        return;
    }
    // Routing counts records published before the items taken: these are at least those of the first `items`.
    let published = shared.published.load(Ordering::SeqCst);
    while shared.handled.load(Ordering::SeqCst) < published {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What feeding an hour shares with the pipeline.
#[derive(Clone)]
struct Feeder {
    feed: mpsc::Sender<Vec<Incoming>>,
    shared: Arc<Shared>,
    /// Source items fed so far, by every hour.
    fed: Arc<AtomicU64>,
    /// Whether the model stages consume the bus too.
    models: bool,
}

impl Feeder {
    /// Records held in the pipeline: items fed and not routed, and records published and not yet taken by
    /// every stage. On Kafka the broker holds them, not this process.
    fn backlog(&self) -> u64 {
        let shared = &self.shared;
        if matches!(shared.bus, AnyBus::Kafka(_)) {
            return 0;
        }
        let taken = shared.taken.load(Ordering::SeqCst);
        let published = shared.published.load(Ordering::SeqCst);
        let mut done = shared.writer_taken.load(Ordering::SeqCst);
        if self.models {
            done = done
                .min(shared.scored.load(Ordering::SeqCst))
                .min(shared.outcome_taken.load(Ordering::SeqCst));
        }
        self.fed.load(Ordering::SeqCst).saturating_sub(taken) + published.saturating_sub(done)
    }

    /// Hands `items` to the pipeline once it holds few enough records (blocking); false once it is closed.
    fn send(&self, items: Vec<Incoming>) -> bool {
        while self.backlog() > IN_FLIGHT {
            if self.feed.is_closed() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let n = items.len() as u64;
        let sent = self.feed.blocking_send(items).is_ok();
        if sent {
            self.fed.fetch_add(n, Ordering::SeqCst);
        }
        sent
    }
}

/// What one attempt at an hour did.
struct Attempt {
    /// Counts of what was fed: the whole file, or the lines before it failed.
    decoded: Decoded,
    /// How it ended.
    result: Result<(), HourError>,
}

/// Decodes one hour into the pipeline, inflating on one thread and parsing on another (inflating is the
/// slowest step).
async fn feed_hour(
    source: &HourSource,
    hour: Hour,
    client: &reqwest::Client,
    feeder: &Feeder,
    max_line: usize,
) -> Attempt {
    let name = hour.file_name();
    let failed = |reason: String| HourError::Failed {
        name: name.clone(),
        reason,
    };
    let reader = match gharchive::open(source, hour, client).await {
        Ok(reader) => reader,
        Err(e) => {
            return Attempt {
                decoded: Decoded::default(),
                result: Err(e),
            };
        }
    };
    // A few chunks ahead are enough to keep both threads busy; each holds about 2.6 MB of lines.
    let (lines_tx, lines_rx) = std::sync::mpsc::sync_channel::<Lines>(LINES_AHEAD);
    let inflate = tokio::task::spawn_blocking(move || {
        gharchive::read_lines(reader, BATCH, max_line, |chunk| {
            lines_tx.send(chunk).is_ok()
        })
    });
    let parse = {
        let (feeder, name) = (feeder.clone(), name.clone());
        tokio::task::spawn_blocking(move || {
            let mut decoded = Decoded::default();
            for chunk in lines_rx {
                let items = gharchive::parse_lines(&name, chunk, &mut decoded);
                if !feeder.send(items) {
                    break;
                }
            }
            decoded
        })
    };
    let inflated = inflate.await;
    let decoded = match parse.await {
        Ok(decoded) => decoded,
        Err(e) => {
            return Attempt {
                decoded: Decoded::default(),
                result: Err(failed(e.to_string())),
            };
        }
    };
    let result = match inflated {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e @ LinesError::Damaged { .. })) => Err(HourError::Damaged {
            name: name.clone(),
            reason: e.to_string(),
        }),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(e) => Err(failed(e.to_string())),
    };
    Attempt { decoded, result }
}

/// Feeds one hour, trying again as its errors allow; returns the last attempt.
async fn attempt_hour(
    source: HourSource,
    hour: Hour,
    client: reqwest::Client,
    feeder: Feeder,
    max_line: usize,
) -> Attempt {
    let mut attempt = 1;
    loop {
        // Items of a failed attempt were fed too (the store ignores events it already holds); the feeder
        // counted them, so that waiting for this hour to settle also waits for them.
        let tried = feed_hour(&source, hour, &client, &feeder, max_line).await;
        let again = match &tried.result {
            Err(HourError::Failed { reason, .. }) => Some(reason),
            // A local file's bytes stay as they are; a download may have been damaged on its way.
            Err(HourError::Damaged { reason, .. }) if matches!(source, HourSource::Url(_)) => {
                Some(reason)
            }
            _ => None,
        };
        match again {
            Some(reason) if attempt < ATTEMPTS => {
                tracing::warn!(component = "backfill", hour = %hour, attempt, error = %reason, "Hour failed; retrying.");
                tokio::time::sleep(HOUR_BACKOFF.wait(attempt)).await;
                attempt += 1;
            }
            _ => return tried,
        }
    }
}

/// Declares to the embedded store the hours over by now: their events are written compressed.
async fn declare_past_hours(shared: &Shared) -> anyhow::Result<()> {
    if let AnyStore::Sqlite(store) = &shared.store {
        let before = forgecast_core::time::now_unix() - forgecast_lake::committed::OVER_AFTER;
        store
            .hours_over_before(before)
            .await
            .context("cannot compress the lake's hours that are over")?;
    }
    Ok(())
}

/// Runs the backfill; returns the report, or an error when nothing could start. The first step of `shutdown`
/// stops it once the hours in progress are stored (the next run resumes from there), the second at once.
pub async fn run(plan: BackfillPlan, shutdown: Shutdown) -> anyhow::Result<Report> {
    let data_dir = plan.pipeline.storage.data_dir.clone();
    let done = read_done(&data_dir)?;
    let abort = shutdown.abort.clone();
    tokio::spawn(async move {
        abort.cancelled().await;
        // Hours recorded as done are stored; the rest is read again by the next run.
        std::process::exit(130);
    });
    let (hours, source) = (plan.hours, plan.source);
    let mut pipeline = Pipeline::start(&plan.pipeline).await?;
    let feed = pipeline.take_feed().expect("a feed pipeline has a feed");
    let shared = pipeline.shared().clone();
    declare_past_hours(&shared).await?;
    let client = forgecast_github::http::client_builder().build()?;
    let feeder = Feeder {
        feed,
        shared: shared.clone(),
        fed: Arc::new(AtomicU64::new(0)),
        models: plan.pipeline.models,
    };
    let parallel = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MOST_PARALLEL);

    let bar = ProgressBar::new(hours.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} hours  {msg}  ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut report = Report::default();
    let mut waiting = hours.into_iter();
    let mut running: VecDeque<(Hour, tokio::task::JoinHandle<Attempt>)> = VecDeque::new();
    let mut stopped = false;
    loop {
        // Start hours up to the parallelism, then take the oldest running one when it has ended.
        while running.len() < parallel && !stopped {
            let Some(hour) = waiting.next() else { break };
            if shutdown.closing.is_cancelled() {
                tracing::info!(component = "backfill", hour = %hour, "Stopped before this hour; the next run starts here.");
                stopped = true;
                break;
            }
            if done.contains(&hour.to_string()) {
                report.skipped += 1;
                bar.inc(1);
                continue;
            }
            let task = tokio::spawn(attempt_hour(
                source.clone(),
                hour,
                client.clone(),
                feeder.clone(),
                plan.max_line_bytes,
            ));
            running.push_back((hour, task));
        }
        let Some((hour, task)) = running.pop_front() else {
            break;
        };
        let outcome = task.await.context("an hour's decoding failed")?;
        let fed_total = feeder.fed.load(Ordering::SeqCst);
        let kept = outcome.decoded.events() + outcome.decoded.malformed;
        match outcome.result {
            Ok(()) => {
                settle(&shared, fed_total).await;
                mark_done(&data_dir, hour, None)?;
                report.decoded.add(&outcome.decoded);
                report.done.push(hour);
            }
            Err(HourError::Damaged { name, reason }) if kept > 0 => {
                let events = outcome.decoded.events();
                tracing::warn!(component = "backfill", hour = %hour, events, error = %reason, "{name} is damaged; the events before the damage were kept, the rest of the hour is lost.");
                settle(&shared, fed_total).await;
                let note = format!("{events} events kept, {reason}");
                mark_done(&data_dir, hour, Some(&note))?;
                report.decoded.add(&outcome.decoded);
                report.partial.push((hour, events, reason));
            }
            Err(HourError::Missing(_)) if plan.sparse => report.empty += 1,
            Err(HourError::Missing(name)) => {
                tracing::warn!(component = "backfill", hour = %hour, "{name} is not in the archive; skipped.");
                report.missing.push(hour);
            }
            Err(e @ (HourError::Failed { .. } | HourError::Damaged { .. })) => {
                tracing::error!(component = "backfill", hour = %hour, error = %e, "Hour failed; it will be tried again next run.");
                report.failed.push((hour, e.to_string()));
            }
        }
        let rate = report.decoded.events() as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let partial = match report.partial.len() {
            0 => String::new(),
            n => format!(", {n} hours partial"),
        };
        bar.set_message(format!(
            "{} events, {rate:.0} events/s{partial}",
            report.decoded.events()
        ));
        bar.inc(1);
    }
    bar.finish();
    drop(feeder);
    let summary = pipeline.drain().await;
    report.stored = summary.written.stored;
    declare_past_hours(&shared).await?;
    Ok(report)
}

/// Prints the summary; returns whether every hour was done whole or skipped.
pub fn print(report: &Report) -> bool {
    let empty = match report.empty {
        0 => String::new(),
        n => format!(", {n} without a file (--sparse)"),
    };
    println!(
        "Backfill: {} hours done, {} skipped (done before), {} missing, {} failed, {} partial{empty}",
        report.done.len(),
        report.skipped,
        report.missing.len(),
        report.failed.len(),
        report.partial.len()
    );
    let too_long = match report.decoded.too_long {
        0 => String::new(),
        n => format!(" ({n} longer than the line limit)"),
    };
    println!(
        "{} events decoded, {} new in the store, {} malformed lines sent to dead letters{too_long}",
        report.decoded.events(),
        report.stored,
        report.decoded.malformed
    );
    let mut types: Vec<_> = report.decoded.per_type.iter().collect();
    types.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (kind, n) in types {
        println!("  {kind:<32} {n:>10}");
    }
    for hour in &report.missing {
        println!("missing: {}", hour.file_name());
    }
    for (hour, reason) in &report.failed {
        println!("failed: {hour}: {reason}");
    }
    for (hour, events, reason) in &report.partial {
        println!(
            "partial: {}: {events} events kept, {reason}",
            hour.file_name()
        );
    }
    report.failed.is_empty() && report.missing.is_empty() && report.partial.is_empty()
}
