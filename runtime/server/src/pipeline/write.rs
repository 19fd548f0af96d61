//! The store writer: consumes every pipeline topic and stores events (with their counters) and dead letters.
//!
//! Offsets are committed only after the store accepted the batch, so a crash means redelivery, never loss;
//! the store ignores events it already holds, so redelivery never double-counts. On the in-process bus, where
//! taking records commits nothing, the writer takes its next batch as soon as the embedded store has the current
//! one's lines on disk, so whatever feeds it goes on while the rows commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::backends::AnySubscription;
use forgecast_core::bus::Subscription;
use forgecast_core::store::Store;
use forgecast_core::{Record, RecordBody};
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::retry::{PIPELINE, retry};

/// Records taken from the bus at once.
const BATCH: usize = 32_768;

/// What the writer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Records consumed.
    pub consumed: u64,
    /// Events stored for the first time.
    pub stored: u64,
    /// Events the store already held.
    pub duplicates: u64,
    /// Dead letters stored.
    pub dead_letters: u64,
}

/// Runs until the bus is closed and drained, or `stop` forces an end while the store is failing.
pub async fn run(
    mut subscription: AnySubscription,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> WriteReport {
    let mut report = WriteReport::default();
    let taken = |batch: &Vec<Record>| {
        shared
            .writer_taken
            .fetch_add(batch.len() as u64, Ordering::SeqCst);
    };
    // The batch taken while the one before it committed.
    let mut next: Option<Vec<Record>> = None;
    loop {
        let batch = match next.take() {
            Some(batch) => batch,
            None => match subscription.next_batch(BATCH).await {
                Ok(Some(batch)) => {
                    taken(&batch);
                    batch
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(component = "store-writer", error = %e, "Bus failed; stopping the writer.");
                    break;
                }
            },
        };
        let mut events = Vec::with_capacity(batch.len());
        let mut letters = Vec::new();
        let mut per_topic: HashMap<&str, u64> = HashMap::new();
        for record in &batch {
            *per_topic.entry(&record.topic).or_default() += 1;
            match &record.body {
                RecordBody::Event(event) => events.push(event.clone()),
                RecordBody::DeadLetter(letter) => letters.push(letter.clone()),
            }
        }
        let metrics = &shared.metrics;
        let failed = || {
            shared.store_ok.store(false, Ordering::Relaxed);
            metrics.store_retries.inc();
        };
        let write = retry("write_events", &PIPELINE, &stop, failed, || {
            shared.store.write_events(events.clone())
        });
        let outcome = match (shared.store.lines_written(), &mut subscription) {
            // Once this batch's lines are on disk the next one is taken, so that what feeds the writer goes on
            // while the rows commit; on the in-process bus, taking records commits nothing.
            (Some(lines_written), AnySubscription::Embedded(queue)) => {
                let lines = lines_written.notified();
                tokio::pin!(write, lines);
                tokio::select! {
                    outcome = &mut write => outcome,
                    () = &mut lines => {
                        next = queue.queued_batch(BATCH).await;
                        if let Some(batch) = &next {
                            taken(batch);
                        }
                        write.await
                    }
                }
            }
            _ => write.await,
        };
        let Some(outcome) = outcome else {
            tracing::error!(
                component = "store-writer",
                events = events.len(),
                taken_after = next.as_ref().map_or(0, Vec::len),
                "Shutdown forced while the store was failing; batch not stored."
            );
            break;
        };
        if !letters.is_empty() {
            let letters_len = letters.len() as u64;
            if retry("write_dead_letters", &PIPELINE, &stop, failed, || {
                shared.store.write_dead_letters(letters.clone())
            })
            .await
            .is_none()
            {
                break;
            }
            report.dead_letters += letters_len;
        }
        shared.store_ok.store(true, Ordering::Relaxed);
        if let Err(e) = subscription.commit().await {
            tracing::warn!(component = "store-writer", error = %e, "Commit failed; the batch may be delivered again (harmless).");
        }
        report.consumed += batch.len() as u64;
        shared
            .handled
            .fetch_add(batch.len() as u64, Ordering::SeqCst);
        report.stored += outcome.inserted;
        report.duplicates += outcome.duplicates;
        metrics.stored.inc_by(outcome.inserted);
        metrics.duplicates.inc_by(outcome.duplicates);
        for (topic, n) in per_topic {
            metrics
                .events_out
                .get_or_create(&metrics.topic(topic))
                .inc_by(n);
        }
    }
    report
}
