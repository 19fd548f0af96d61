//! `forgecast archive`: the lake of the distributed mode. A consumer group of its own reads every pipeline
//! topic and appends each event to GH Archive hour files ([`LakeAppender`]); the Spark history job (and
//! `forgecast aggregate`) read them. Offsets are committed only once the lines are on disk; a disk that
//! refuses writes is retried with backoff, the offsets left uncommitted meanwhile. Hours that have been over
//! for `--compress-after` are compressed, as GH Archive publishes them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use forgecast_core::bus::{Bus, Subscription, TopicFilter};
use forgecast_core::topic::PIPELINE_PREFIX;
use forgecast_core::{Event, RecordBody};
use forgecast_lake::LakeAppender;

use crate::backends::open_bus;
use crate::config::{ArchivePlan, BusPlan};
use crate::retry::{PIPELINE, retry};
use crate::shutdown::Shutdown;

/// Records taken from the bus at once.
const BATCH: usize = 32_768;

/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// How often hours that are over are looked for, to compress them.
const COMPRESS_EVERY: Duration = Duration::from_secs(60);

/// What an archive run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Events appended.
    pub events: u64,
    /// Events skipped as already appended (an event routed to several topics, or delivered again).
    pub repeated: u64,
    /// Records that were not events (dead letters), left to the store.
    pub skipped: u64,
    /// Hour files compressed.
    pub compressed: u64,
}

/// Runs until the first step of `shutdown` (then takes what the group has fetched, commits and returns), or
/// until `--idle-exit` seconds pass without an event. The second step ends waiting on a failing disk.
pub async fn run(plan: ArchivePlan, shutdown: Shutdown) -> anyhow::Result<Report> {
    let Shutdown { closing, abort } = shutdown;
    let lake = plan.lake.clone();
    let appender = tokio::task::spawn_blocking(move || LakeAppender::open(&lake))
        .await?
        .with_context(|| format!("cannot open the lake {}", plan.lake.display()))?;
    let appender = Arc::new(std::sync::Mutex::new(appender));
    let brokers = plan.kafka.brokers.clone();
    let (bus, group) = open_bus(&BusPlan::Kafka {
        config: plan.kafka,
        group: plan.group,
    })?;
    let mut subscription =
        bus.subscribe(&group, vec![TopicFilter::Prefix(PIPELINE_PREFIX.into())])?;
    tracing::info!(component = "archive", lake = %plan.lake.display(), brokers = %brokers, group = %group, "Archiving the pipeline topics.");

    let last_event = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    {
        // Closing the bus makes the subscription hand over what is fetched, then end.
        let (bus, closing, last_event) = (bus.clone(), closing.clone(), last_event.clone());
        let idle = plan.idle_exit;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = closing.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let quiet =
                    started.elapsed() - Duration::from_millis(last_event.load(Ordering::Relaxed));
                if idle.is_some_and(|idle| quiet >= idle) {
                    tracing::info!(
                        component = "archive",
                        idle_s = quiet.as_secs(),
                        "No event for a while; stopping (--idle-exit)."
                    );
                    break;
                }
            }
            bus.close();
        });
    }

    let mut report = Report::default();
    let mut logged = Instant::now();
    let mut compressed = Instant::now();
    compress(&appender, plan.compress_after, &mut report).await;
    let mut since_log = 0u64;
    loop {
        let batch = match subscription.next_batch(BATCH).await {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(e) => return Err(e).context("the bus failed"),
        };
        let events: Arc<Vec<Arc<Event>>> = Arc::new(
            batch
                .iter()
                .filter_map(|record| match &record.body {
                    RecordBody::Event(event) => Some(event.clone()),
                    RecordBody::DeadLetter(_) => None,
                })
                .collect(),
        );
        report.skipped += (batch.len() - events.len()) as u64;
        if !events.is_empty() {
            last_event.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        let appended = retry(
            "append_to_lake",
            &PIPELINE,
            &abort,
            || {},
            || {
                let (appender, events) = (appender.clone(), events.clone());
                async move {
                    tokio::task::spawn_blocking(move || {
                        let mut appender = appender.lock().unwrap_or_else(|e| e.into_inner());
                        appender.append(events.iter().map(|e| &**e))
                    })
                    .await
                    .map_err(std::io::Error::other)?
                }
            },
        )
        .await;
        let Some(appended) = appended else {
            anyhow::bail!("stopped while the lake refused writes; the last batch is not committed");
        };
        if let Err(e) = subscription.commit().await {
            tracing::warn!(component = "archive", error = %e, "Commit failed; the batch may be delivered again (harmless).");
        }
        report.events += appended.events;
        report.repeated += appended.repeated;
        since_log += appended.events;
        if logged.elapsed() >= PROGRESS_EVERY && since_log > 0 {
            tracing::info!(
                component = "archive",
                events = since_log,
                total = report.events,
                "Appended to the lake."
            );
            (logged, since_log) = (Instant::now(), 0);
        }
        if compressed.elapsed() >= COMPRESS_EVERY {
            compress(&appender, plan.compress_after, &mut report).await;
            compressed = Instant::now();
        }
    }
    compress(&appender, plan.compress_after, &mut report).await;
    Ok(report)
}

/// Compresses the hour files whose hour has been over for `after`. A failure is logged and tried again later:
/// the plain files stay readable meanwhile.
async fn compress(
    appender: &Arc<std::sync::Mutex<LakeAppender>>,
    after: Duration,
    report: &mut Report,
) {
    let before = chrono::Utc::now().timestamp() - after.as_secs() as i64;
    let appender = appender.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut appender = appender.lock().unwrap_or_else(|e| e.into_inner());
        appender.compress_closed(before)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|done| done);
    match done {
        Ok(files) if !files.is_empty() => {
            report.compressed += files.len() as u64;
            tracing::info!(component = "archive", files = files.len(), last = %files.last().map(String::as_str).unwrap_or(""), "Hours that are over compressed.");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(component = "archive", error = %e, "Could not compress the hours that are over; trying again later.")
        }
    }
}
