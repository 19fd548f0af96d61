//! How a batch of events reaches the lake and SQLite, with the lake under a lock of its own.
//!
//! The lake is the single writer's: its lock is taken first and held for the whole batch; the connection's is
//! taken only for the SQLite work, so the model stages' writes (predictions, labels, learners) go on while a
//! batch's lake bytes are compressed and synced, which is most of a batch's time.
//!
//! A batch is written one of two ways, with the same result:
//! - *Fresh* (a batch whose first and last events are not stored: nearly every batch): every event's line is
//!   placed, compressed and synced without the connection, then one transaction inserts the rows pointing at
//!   them and increments their counters. Should an event turn out to be stored already, the transaction is
//!   dropped (nothing of it commits) and the batch is written the careful way; the bytes already written lie
//!   past the files' committed ends, where the next write goes over them.
//! - *Checked* (a batch delivered again, or one that met a stored event): inside the transaction, each event is
//!   inserted first and its line placed only if it was new; the lake is written before the commit.
//!
//! Either way the lake's bytes are on disk before the rows that point at them commit.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use foldhash::HashMap;
use forgecast_core::Event;
use forgecast_core::aggregate::{Dimension, Granularity, RepoFacts, for_each_counter_as};
use forgecast_core::store::{StoreError, WriteOutcome};
use forgecast_lake::committed::{Lake, hour_of, placement_order};
use rusqlite::{CachedStatement, Connection, OptionalExtension, Transaction, params};
use tokio::sync::Notify;

use crate::store::{Inner, failed, lake_files, lock, record_files, record_files_durably};

/// Writes `events`: those not stored yet go to the lake and SQLite with their counters, in one transaction.
/// `lines_written` is told when a fresh batch's lines are on disk and only its transaction is left.
pub(crate) fn write_events(
    db: &Mutex<Inner>,
    lake: &mut Lake,
    events: &[Arc<Event>],
    lines_written: &Notify,
) -> Result<WriteOutcome, StoreError> {
    let fresh = {
        let mut inner = lock(db);
        prepare(&mut inner, lake, events)?;
        !stored_already(&inner.conn, events)?
    };
    if fresh && let Some(outcome) = write_fresh(db, lake, events, lines_written)? {
        return Ok(outcome);
    }
    write_checked(&mut lock(db), lake, events)
}

fn lake_error(e: std::io::Error) -> StoreError {
    StoreError::Operation {
        operation: "write_events",
        reason: format!("lake: {e}"),
    }
}

/// Before anything is written: the hours this batch makes over are compressed, and every file it writes to is
/// recorded, durably, as possibly holding a tail.
fn prepare(inner: &mut Inner, lake: &mut Lake, events: &[Arc<Event>]) -> Result<(), StoreError> {
    let err = failed("write_events");
    if inner.writer.is_none() {
        return Err(StoreError::Operation {
            operation: "write_events",
            reason: "this store was opened alongside the data directory's writer and cannot write events".into(),
        });
    }
    let mut hours: Vec<i64> = Vec::new();
    for event in events {
        let hour = hour_of(event.created_at);
        if hours.last() != Some(&hour) && !hours.contains(&hour) {
            hours.push(hour);
        }
        lake.saw(event.created_at);
    }
    close_over(&mut inner.conn, lake)?;
    let names: Vec<(String, i64)> = hours
        .iter()
        .map(|&hour| (forgecast_lake::layout::hour_file(hour), hour))
        .collect();
    for (name, _) in &names {
        if !lake.knows(name) {
            let known = lake_files(&inner.conn, "file = ?1", [name]).map_err(&err)?;
            for (name, state) in known {
                lake.learn(name, state);
            }
        }
    }
    let opening = lake.opening(names.iter().map(|(name, hour)| (name.as_str(), *hour)));
    if !opening.is_empty() {
        record_files_durably(&mut inner.conn, &opening).map_err(&err)?;
        lake.opened(opening);
    }
    Ok(())
}

/// Whether the batch's first or last event is stored: a batch delivered again after a crash starts or ends so.
fn stored_already(conn: &Connection, events: &[Arc<Event>]) -> Result<bool, StoreError> {
    let mut select = conn
        .prepare_cached("SELECT 1 FROM events WHERE id = ?1")
        .map_err(failed("write_events"))?;
    for event in [events.first(), events.last()].into_iter().flatten() {
        if select
            .query_row([&event.id], |_| Ok(()))
            .optional()
            .map_err(failed("write_events"))?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The lake file of each event in turn, named once per run of events of one hour.
struct FileNames {
    last: Option<(i64, String)>,
}

impl FileNames {
    fn of(&mut self, created_at: i64) -> &str {
        let hour = created_at.div_euclid(3600);
        if self.last.as_ref().is_none_or(|(h, _)| *h != hour) {
            self.last = Some((hour, forgecast_lake::layout::hour_file(created_at)));
        }
        &self.last.as_ref().expect("set just above").1
    }
}

/// Writes a batch taken to be wholly new: its lines go to the lake without the connection, then its rows and
/// counters in one transaction. `None` (nothing committed) when an event was stored already.
fn write_fresh(
    db: &Mutex<Inner>,
    lake: &mut Lake,
    events: &[Arc<Event>],
    lines_written: &Notify,
) -> Result<Option<WriteOutcome>, StoreError> {
    let err = failed("write_events");
    let mut pending = lake.pending();
    let mut files = FileNames { last: None };
    let mut offsets = vec![0; events.len()];
    for at in placement_order(events) {
        let event = &events[at];
        let file = files.of(event.created_at);
        offsets[at] = lake.offset(&pending, file);
        pending.push(file, event.created_at, &event.raw);
    }
    let written = lake.write(&pending).map_err(lake_error)?;
    lake.recycle(pending);
    lines_written.notify_waiters();

    let mut inner = lock(db);
    let repos_known = inner.repos_known;
    let tx = inner.conn.transaction().map_err(&err)?;
    let facts = KnownRepos::of(&tx, repos_known, events)?;
    // The counters are summed on a thread of their own while the rows go in: the transaction is the part of a
    // batch that runs on one core.
    let counts = std::thread::scope(|scope| {
        let sums = scope.spawn(|| facts.sums(events.iter().map(|e| &**e)));
        let mut insert = insert_statement(&tx)?;
        let mut files = FileNames { last: None };
        for (event, offset) in events.iter().zip(offsets) {
            if !insert_row(&mut insert, event, files.of(event.created_at), offset)? {
                return Ok(None);
            }
        }
        Ok(Some(sums.join().expect("summing counters does not panic")))
    });
    // Dropping the transaction rolls it back.
    let Some(counts) = counts? else {
        return Ok(None);
    };
    store_counters(&tx, counts)?;
    record_files(&tx, &written).map_err(&err)?;
    tx.commit().map_err(&err)?;
    lake.commit(written);
    Ok(Some(WriteOutcome {
        inserted: events.len() as u64,
        duplicates: 0,
    }))
}

/// Writes a batch event by event: each line is placed only once its row proved new.
fn write_checked(
    inner: &mut Inner,
    lake: &mut Lake,
    events: &[Arc<Event>],
) -> Result<WriteOutcome, StoreError> {
    let err = failed("write_events");
    let mut pending = lake.pending();
    let repos_known = inner.repos_known;
    let tx = inner.conn.transaction().map_err(&err)?;
    let mut outcome = WriteOutcome::default();
    let facts = KnownRepos::of(&tx, repos_known, events)?;
    let mut inserted = Vec::with_capacity(events.len());
    {
        let mut insert = insert_statement(&tx)?;
        let mut files = FileNames { last: None };
        for at in placement_order(events) {
            let event = &events[at];
            let file = files.of(event.created_at);
            if !insert_row(&mut insert, event, file, lake.offset(&pending, file))? {
                outcome.duplicates += 1;
                continue;
            }
            outcome.inserted += 1;
            pending.push(file, event.created_at, &event.raw);
            inserted.push(&**event);
        }
    }
    store_counters(&tx, facts.sums(inserted))?;
    let written = lake.write(&pending).map_err(lake_error)?;
    lake.recycle(pending);
    record_files(&tx, &written).map_err(&err)?;
    tx.commit().map_err(&err)?;
    lake.commit(written);
    Ok(outcome)
}

fn insert_statement<'c>(tx: &'c Transaction<'_>) -> Result<CachedStatement<'c>, StoreError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO events
         (id, type, actor, repo, org, language, created_at, raw_file, raw_offset, raw_len)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .map_err(failed("write_events"))
}

/// Inserts `event`'s row, its line at `offset` of `file`; false when the event was stored already.
fn insert_row(
    insert: &mut CachedStatement<'_>,
    event: &Event,
    file: &str,
    offset: u64,
) -> Result<bool, StoreError> {
    let changed = insert
        .execute(params![
            event.id,
            event.kind,
            event.actor,
            event.repo,
            event.org,
            event.language,
            event.created_at,
            file,
            offset as i64,
            event.raw.len() as i64
        ])
        .map_err(failed("write_events"))?;
    Ok(changed > 0)
}

/// What the store knows of a batch's repositories (language and topics, once the enricher has fetched them),
/// looked up once per repository.
struct KnownRepos {
    known: HashMap<String, (Option<String>, Vec<String>)>,
}

/// A batch's counter increments: about 17 keys per event, hashed with foldhash as the history engine's counters
/// are (`forgecast_core::history`).
type Counts<'a> = HashMap<(Granularity, Dimension, i64, Cow<'a, str>), i64>;

impl KnownRepos {
    fn of(
        tx: &Transaction<'_>,
        repos_known: bool,
        events: &[Arc<Event>],
    ) -> Result<KnownRepos, StoreError> {
        let mut known = HashMap::default();
        if !repos_known {
            return Ok(KnownRepos { known });
        }
        let err = failed("write_events");
        let mut lookup = tx
            .prepare_cached("SELECT language, topics FROM repos WHERE name = ?1 AND found = 1")
            .map_err(&err)?;
        let mut asked = foldhash::HashSet::default();
        for event in events {
            if !asked.insert(event.repo.as_str()) {
                continue;
            }
            let row = lookup
                .query_row([&event.repo], |r| {
                    Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
                })
                .optional()
                .map_err(&err)?;
            if let Some((language, topics)) = row {
                let topics: Vec<String> = serde_json::from_str(&topics).unwrap_or_default();
                known.insert(event.repo.clone(), (language, topics));
            }
        }
        Ok(KnownRepos { known })
    }

    /// The counters `events` increment, with what is known of their repositories.
    fn sums<'a>(&'a self, events: impl IntoIterator<Item = &'a Event>) -> Counts<'a> {
        let mut counts = Counts::default();
        for event in events {
            let facts = match self.known.get(&event.repo) {
                Some((language, topics)) => RepoFacts {
                    language: language.as_deref(),
                    topics,
                },
                None => RepoFacts::default(),
            };
            for_each_counter_as(event, facts, |k| {
                *counts
                    .entry((k.granularity, k.dimension, k.bucket, k.key))
                    .or_default() += 1
            });
        }
        counts
    }
}

/// Adds a batch's sums to the stored counters.
fn store_counters(tx: &Transaction<'_>, counts: Counts<'_>) -> Result<(), StoreError> {
    let err = failed("write_events");
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO aggregates (granularity, dimension, bucket, key, count) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO UPDATE SET count = count + excluded.count",
        )
        .map_err(&err)?;
    for ((granularity, dimension, bucket, key), count) in counts {
        upsert
            .execute(params![
                granularity.as_str(),
                dimension.as_str(),
                bucket,
                key,
                count
            ])
            .map_err(&err)?;
    }
    Ok(())
}

/// Compresses the lake's plain files whose hour is over, each recorded as compressed before its plain file
/// goes.
pub(crate) fn close_over(conn: &mut Connection, lake: &mut Lake) -> Result<(), StoreError> {
    let err = failed("compress_lake");
    let io = |name: &str, e: std::io::Error| StoreError::Operation {
        operation: "compress_lake",
        reason: format!("lake {name}: {e}"),
    };
    for name in lake.closable() {
        let compressed = lake.compress(&name).map_err(|e| io(&name, e))?;
        record_files_durably(conn, &[(name.clone(), compressed)]).map_err(&err)?;
        let closed = lake.compressed(&name).map_err(|e| io(&name, e))?;
        record_files(conn, &[(name.clone(), closed)]).map_err(&err)?;
        tracing::debug!(component = "store", file = %name, bytes = closed.end, "Lake hour compressed.");
    }
    Ok(())
}
