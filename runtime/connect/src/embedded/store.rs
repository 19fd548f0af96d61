//! The store in one SQLite file: events unique by id, counters applied in the same transaction.
//!
//! Writing a batch inserts the events it has not seen (`INSERT OR IGNORE` on the event id) and increments the
//! counters of exactly those, in one transaction. A batch delivered twice, or an event seen from two sources,
//! therefore changes nothing the second time, and a crash mid-batch leaves no half-counted events.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use forgecast_core::aggregate::{
    AggregateQuery, AggregateRow, Dimension, Granularity, for_each_counter,
};
use forgecast_core::store::{ScriptReload, Store, StoreError, WriteOutcome};
use forgecast_core::time::now_unix;
use forgecast_core::{DeadLetter, Event};
use rusqlite::{Connection, OptionalExtension, params};

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA cache_size = -131072;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    actor TEXT NOT NULL,
    repo TEXT NOT NULL,
    org TEXT,
    language TEXT,
    created_at INTEGER NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (created_at);
CREATE TABLE IF NOT EXISTS aggregates (
    granularity TEXT NOT NULL,
    dimension TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    key TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (granularity, dimension, bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    stage TEXT NOT NULL,
    error TEXT NOT NULL,
    script TEXT,
    version TEXT,
    origin TEXT,
    raw TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS script_reloads (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    script TEXT NOT NULL,
    old_hash TEXT,
    new_hash TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    reason TEXT
);
";

/// The embedded store; cheap to clone, clones share one connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

fn failed(operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Operation {
        operation,
        reason: e.to_string(),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store file at `path`, with its tables and indexes.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_failed = |reason: String| StoreError::Open {
            location: path.display().to_string(),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_failed(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| open_failed(e.to_string()))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| open_failed(e.to_string()))?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs blocking SQLite work off the async runtime.
    async fn with_conn<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            work(&mut conn.lock().unwrap_or_else(|e| e.into_inner()))
        })
        .await
        .map_err(|e| StoreError::Operation {
            operation: "task",
            reason: e.to_string(),
        })?
    }
}

fn write_events(conn: &mut Connection, events: &[Arc<Event>]) -> Result<WriteOutcome, StoreError> {
    let err = failed("write_events");
    let tx = conn.transaction().map_err(&err)?;
    let mut outcome = WriteOutcome::default();
    let mut counters: HashMap<(Granularity, Dimension, i64, &str), i64> = HashMap::new();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO events (id, type, actor, repo, org, language, created_at, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(&err)?;
        for event in events {
            let e = &**event;
            let changed = insert
                .execute(params![
                    e.id,
                    e.kind,
                    e.actor,
                    e.repo,
                    e.org,
                    e.language,
                    e.created_at,
                    &*e.raw
                ])
                .map_err(&err)?;
            if changed == 0 {
                outcome.duplicates += 1;
                continue;
            }
            outcome.inserted += 1;
            for_each_counter(e, |k| {
                *counters
                    .entry((k.granularity, k.dimension, k.bucket, k.key))
                    .or_default() += 1
            });
        }
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO aggregates (granularity, dimension, bucket, key, count) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO UPDATE SET count = count + excluded.count",
            )
            .map_err(&err)?;
        for ((granularity, dimension, bucket, key), count) in counters {
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
    }
    tx.commit().map_err(&err)?;
    Ok(outcome)
}

impl Store for SqliteStore {
    async fn write_events(&self, events: Vec<Arc<Event>>) -> Result<WriteOutcome, StoreError> {
        self.with_conn(move |conn| write_events(conn, &events))
            .await
    }

    async fn write_dead_letters(&self, letters: Vec<Arc<DeadLetter>>) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            let err = failed("write_dead_letters");
            let tx = conn.transaction().map_err(&err)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO dead_letters (at, stage, error, script, version, origin, raw)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(&err)?;
                let at = now_unix();
                for l in &letters {
                    insert
                        .execute(params![
                            at, l.stage, l.error, l.script, l.version, l.origin, l.raw
                        ])
                        .map_err(&err)?;
                }
            }
            tx.commit().map_err(&err)
        })
        .await
    }

    async fn record_reload(&self, r: ScriptReload) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            conn.execute(
                "INSERT INTO script_reloads (at, script, old_hash, new_hash, accepted, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![r.at, r.script, r.old_hash, r.new_hash, r.accepted, r.reason],
            )
            .map(|_| ())
            .map_err(failed("record_reload"))
        })
        .await
    }

    async fn aggregates(&self, q: AggregateQuery) -> Result<Vec<AggregateRow>, StoreError> {
        self.with_conn(move |conn| {
            let err = failed("aggregates");
            let mut select = conn
                .prepare_cached(
                    "SELECT bucket, key, count FROM aggregates
                     WHERE granularity = ?1 AND dimension = ?2 AND bucket >= ?3 AND bucket < ?4
                     ORDER BY bucket, key",
                )
                .map_err(&err)?;
            let rows = select
                .query_map(
                    params![q.granularity.as_str(), q.dimension.as_str(), q.from, q.to],
                    |row| {
                        Ok(AggregateRow {
                            granularity: q.granularity,
                            dimension: q.dimension,
                            bucket: row.get(0)?,
                            key: row.get(1)?,
                            count: row.get::<_, i64>(2)? as u64,
                        })
                    },
                )
                .map_err(&err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&err)
        })
        .await
    }

    async fn event_count(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(failed("event_count"))
        })
        .await
    }

    async fn dead_letter_count(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            conn.query_row("SELECT count(*) FROM dead_letters", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(failed("dead_letter_count"))
        })
        .await
    }

    async fn recent_reloads(&self, limit: usize) -> Result<Vec<ScriptReload>, StoreError> {
        self.with_conn(move |conn| {
            let err = failed("recent_reloads");
            let mut select = conn
                .prepare_cached(
                    "SELECT at, script, old_hash, new_hash, accepted, reason FROM script_reloads
                     ORDER BY seq DESC LIMIT ?1",
                )
                .map_err(&err)?;
            let rows = select
                .query_map([limit as i64], |row| {
                    Ok(ScriptReload {
                        at: row.get(0)?,
                        script: row.get(1)?,
                        old_hash: row.get(2)?,
                        new_hash: row.get(3)?,
                        accepted: row.get(4)?,
                        reason: row.get(5)?,
                    })
                })
                .map_err(&err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&err)
        })
        .await
    }
}

impl SqliteStore {
    /// The raw JSON of one stored event, for inspection and tests.
    pub async fn event_raw(&self, id: String) -> Result<Option<String>, StoreError> {
        self.with_conn(move |conn| {
            conn.query_row("SELECT raw FROM events WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(failed("event_raw"))
        })
        .await
    }
}
