//! The embedded store: a SQLite file for events and counters, and the lake of the events' JSON.
//!
//! Writing a batch inserts the events it has not seen (`INSERT OR IGNORE` on the event id) and increments the
//! counters of exactly those, in one transaction. A batch delivered twice, or an event seen from two sources,
//! therefore changes nothing the second time, and a crash mid-batch leaves no half-counted events.
//!
//! The events' JSON (2–3 KB each) does not go through SQLite, whose write-ahead log would write every byte
//! twice: it is appended to the [lake](forgecast_lake::committed), hourly GH Archive-format files beside the SQLite file, and
//! the row keeps the file, offset and length. The lake's bytes are on disk before the row that points at them
//! commits, so the lake holds every stored event exactly once.
//!
//! The table `lake_files` records each hour file: its committed end, its form (plain while the hour goes on,
//! compressed once it is over) and whether it may hold bytes past its committed end. A file is recorded so,
//! durably, before its first bytes are written, and each batch's transaction records the new ends with the
//! events; opening the store as the writer looks only at the files recorded so, and at the other files of their
//! days' directories, so its cost does not grow with the lake.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use forgecast_core::aggregate::{AggregateQuery, AggregateRow};
use forgecast_core::store::{RepoMeta, ScriptReload, Store, StoreError, WriteOutcome};
use forgecast_core::time::now_unix;
use forgecast_core::{DeadLetter, Event};
use forgecast_lake::committed::{FileState, Lake, committed_ends};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;

/// Layout version of the SQLite file, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 5;

/// What brings an older layout to this one, by the version it starts from.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        2,
        // A dead letter's digest (`DeadLetter::digest`), unique: a letter delivered twice is kept once. Rows kept
        // before have none (NULLs are distinct in a unique index).
        "ALTER TABLE dead_letters ADD COLUMN digest TEXT;",
    ),
    (
        3,
        // The lake's files, from where the events point: all plain and open, so that the first start looks at
        // each of them once, as every start did before.
        "CREATE TABLE IF NOT EXISTS lake_files (
            file TEXT PRIMARY KEY, hour INTEGER NOT NULL, end INTEGER NOT NULL, plain INTEGER NOT NULL,
            gz INTEGER NOT NULL, open INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO lake_files (file, hour, end, plain, gz, open)
            SELECT raw_file, (min(created_at) / 3600) * 3600, max(raw_offset + raw_len + 1),
                   max(raw_offset + raw_len + 1), 0, 1
            FROM events GROUP BY raw_file;",
    ),
    (
        4,
        // Retrain decisions keyed by what called the policy too: a change detector's alarm is decided apart
        // from the window it falls in. The ones kept before were all windows' (a store older than the table has
        // none).
        "CREATE TABLE IF NOT EXISTS retrain_decisions (
            model TEXT NOT NULL, window INTEGER NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL,
            PRIMARY KEY (model, window, version)
        );
        CREATE TABLE retrain_decisions_5 (
            model TEXT NOT NULL, window INTEGER NOT NULL, version INTEGER NOT NULL,
            trigger TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (model, window, version, trigger)
        );
        INSERT INTO retrain_decisions_5 (model, window, version, trigger, body)
            SELECT model, window, version, 'window', body FROM retrain_decisions;
        DROP TABLE retrain_decisions;
        ALTER TABLE retrain_decisions_5 RENAME TO retrain_decisions;",
    ),
];

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA cache_size = -65536;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    actor TEXT NOT NULL,
    repo TEXT NOT NULL,
    org TEXT,
    language TEXT,
    created_at INTEGER NOT NULL,
    raw_file TEXT NOT NULL,
    raw_offset INTEGER NOT NULL,
    raw_len INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lake_files (
    file TEXT PRIMARY KEY,
    hour INTEGER NOT NULL,
    end INTEGER NOT NULL,
    plain INTEGER NOT NULL,
    gz INTEGER NOT NULL,
    open INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lake_files_open ON lake_files (file) WHERE open = 1;
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
    raw TEXT NOT NULL,
    digest TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_digest ON dead_letters (digest);
CREATE TABLE IF NOT EXISTS repos (
    name TEXT PRIMARY KEY,
    found INTEGER NOT NULL,
    language TEXT,
    topics TEXT NOT NULL,
    stars INTEGER NOT NULL,
    etag TEXT,
    fetched_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS model_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL,
    training TEXT NOT NULL,
    params TEXT NOT NULL,
    metrics TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    alias TEXT,
    artifact BLOB NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS predictions (
    model TEXT NOT NULL,
    event_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    label TEXT NOT NULL,
    scores TEXT NOT NULL,
    at INTEGER NOT NULL,
    repo TEXT NOT NULL,
    org TEXT,
    language TEXT,
    excerpt TEXT NOT NULL,
    PRIMARY KEY (model, event_id, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS predictions_recent ON predictions (model, at);
CREATE INDEX IF NOT EXISTS predictions_recent_label ON predictions (model, label, at);
CREATE TABLE IF NOT EXISTS label_counts (
    model TEXT NOT NULL,
    granularity TEXT NOT NULL,
    scope TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    key TEXT NOT NULL,
    label TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (model, granularity, scope, bucket, key, label)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outcome_pending (
    model TEXT NOT NULL,
    issue TEXT NOT NULL,
    event_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    probability REAL NOT NULL,
    opened_at INTEGER NOT NULL,
    features TEXT NOT NULL,
    seq INTEGER,
    resolved_at INTEGER,
    label INTEGER,
    PRIMARY KEY (model, issue)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outcome_open ON outcome_pending (model, seq, opened_at);
CREATE UNIQUE INDEX IF NOT EXISTS outcome_seq ON outcome_pending (model, seq);
CREATE TABLE IF NOT EXISTS outcome_learners (
    model TEXT PRIMARY KEY,
    state BLOB NOT NULL,
    through_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    model TEXT NOT NULL,
    window INTEGER NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (model, window, version)
);
CREATE TABLE IF NOT EXISTS retrain_decisions (
    model TEXT NOT NULL,
    window INTEGER NOT NULL,
    version INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (model, window, version, trigger)
);
CREATE TABLE IF NOT EXISTS drift (
    model TEXT NOT NULL,
    window INTEGER NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (model, window, version)
);
CREATE TABLE IF NOT EXISTS star_points (
    repo TEXT NOT NULL,
    at INTEGER NOT NULL,
    stars INTEGER NOT NULL,
    PRIMARY KEY (repo, at)
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until INTEGER NOT NULL
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
    inner: Arc<Mutex<Inner>>,
    /// The lake, under a lock of its own, taken before the connection's when both are needed
    /// ([`crate::write`]).
    lake: Arc<Mutex<Lake>>,
    /// Told each time a batch's new lines are on disk, before its rows commit ([`SqliteStore::lines_written`]).
    lines_written: Arc<Notify>,
    path: PathBuf,
}

/// The connection, used under one lock.
pub(crate) struct Inner {
    pub(crate) conn: Connection,
    /// Whether any repository metadata is cached (if not, there is no language to look up).
    pub(crate) repos_known: bool,
    /// The data directory's writer lock, held while this store may write events; `None` when opened
    /// alongside a writer.
    pub(crate) writer: Option<File>,
}

/// Takes `mutex`, whose value stays usable after a panic elsewhere (every change to it is a transaction).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn failed(operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Operation {
        operation,
        reason: e.to_string(),
    }
}

impl SqliteStore {
    /// Wakes whoever waits on it (`notified()`, taken before the write) once a batch of new events has its lines
    /// in the lake, synced, and only its transaction is left: a writer may take its next batch from then on, so
    /// what feeds it goes on while the rows commit. A batch delivered again, or one that met a stored event, is
    /// written in one piece and wakes no one.
    pub fn lines_written(&self) -> Arc<Notify> {
        self.lines_written.clone()
    }

    /// Opens (creating if needed) the store file at `path`, with its tables and indexes, as the data
    /// directory's one writer of events: another `forgecast up` or `backfill` on the same directory is refused.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_as(path, true)
    }

    /// Opens the store beside a writer that may be running (`forgecast aggregate`): it reads events and sets
    /// counters, but never touches the lake's files and cannot write events.
    pub fn open_alongside(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_as(path, false)
    }

    fn open_as(path: &Path, writer: bool) -> Result<SqliteStore, StoreError> {
        let open_failed = |reason: String| StoreError::Open {
            location: path.display().to_string(),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_failed(e.to_string()))?;
        }
        let lock = if writer {
            let lock_path = path.with_file_name("forgecast.lock");
            let lock = File::create(&lock_path)
                .map_err(|e| open_failed(format!("{}: {e}", lock_path.display())))?;
            if let Err(e) = lock.try_lock() {
                return Err(open_failed(match e {
                    TryLockError::WouldBlock => {
                        "another forgecast (up or backfill) is writing to this data directory; \
                        stop it first, or use a command that reads alongside it (aggregate)"
                            .into()
                    }
                    TryLockError::Error(e) => format!("cannot lock {}: {e}", lock_path.display()),
                }));
            }
            Some(lock)
        } else {
            None
        };
        let conn = Connection::open(path).map_err(|e| open_failed(e.to_string()))?;
        // Another process (a writer, or a command alongside it) may hold SQLite's lock for a moment.
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| open_failed(e.to_string()))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| open_failed(e.to_string()))?;
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| open_failed(e.to_string()))?;
        if tables > 0 && version != SCHEMA_VERSION {
            let steps: Vec<&str> = MIGRATIONS
                .iter()
                .filter(|(from, _)| *from >= version)
                .map(|(_, sql)| *sql)
                .collect();
            let reachable = MIGRATIONS.iter().any(|(from, _)| *from == version);
            if !writer || !reachable || version > SCHEMA_VERSION {
                return Err(open_failed(format!(
                    "the store has layout version {version}, this forgecast uses {SCHEMA_VERSION}{}",
                    if reachable && version < SCHEMA_VERSION {
                        "; start `forgecast up` on it once to bring it up to date"
                    } else {
                        "; move the data directory away to start afresh"
                    }
                )));
            }
            conn.execute_batch(&format!("BEGIN; {} COMMIT;", steps.join(" ")))
                .map_err(|e| open_failed(format!("cannot bring the layout up to date: {e}")))?;
            tracing::info!(
                component = "store",
                from = version,
                to = SCHEMA_VERSION,
                "Store layout brought up to date."
            );
        }
        conn.execute_batch(SCHEMA)
            .map_err(|e| open_failed(e.to_string()))?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| open_failed(e.to_string()))?;
        let repos_known = conn
            .query_row("SELECT EXISTS (SELECT 1 FROM repos)", [], |r| {
                r.get::<_, bool>(0)
            })
            .map_err(|e| open_failed(e.to_string()))?;
        let lake_dir = SqliteStore::lake_path(path);
        let lake = if writer {
            let (files, newest) = files_to_check(&conn).map_err(|e| open_failed(e.to_string()))?;
            Lake::open(&lake_dir, files, newest)
        } else {
            // A reader learns a file's record when it reads it: the writer changes them.
            Lake::attach(&lake_dir, HashMap::new())
        }
        .map_err(|e| open_failed(format!("lake {}: {e}", lake_dir.display())))?;
        Ok(SqliteStore {
            inner: Arc::new(Mutex::new(Inner {
                conn,
                repos_known,
                writer: lock,
            })),
            lake: Arc::new(Mutex::new(lake)),
            lines_written: Arc::new(Notify::new()),
            path: path.to_path_buf(),
        })
    }

    /// The lake beside the SQLite file at `path`: `<dir>/forgecast.sqlite` → `<dir>/lake`.
    pub fn lake_path(path: &Path) -> PathBuf {
        path.with_file_name("lake")
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs blocking store work off the async runtime.
    async fn with_inner<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        blocking(move || work(&mut lock(&inner))).await
    }

    /// Runs blocking work on the lake and the connection, taken in that order, off the async runtime.
    async fn with_lake<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Lake, &Mutex<Inner>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (lake, inner) = (self.lake.clone(), self.inner.clone());
        blocking(move || work(&mut lock(&lake), &inner)).await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Operation {
            operation: "task",
            reason: e.to_string(),
        })?
}

/// The columns of `lake_files` a [`FileState`] is read from, in order.
const LAKE_FILE: &str = "SELECT file, hour, end, plain, gz, open FROM lake_files";

fn lake_file(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, FileState)> {
    Ok((
        r.get(0)?,
        FileState {
            hour: r.get(1)?,
            end: r.get::<_, i64>(2)? as u64,
            plain: r.get::<_, i64>(3)? as u64,
            gz: r.get(4)?,
            open: r.get(5)?,
        },
    ))
}

/// The records of the lake's files that match `filter` (SQL after `WHERE`).
pub(crate) fn lake_files(
    conn: &Connection,
    filter: &str,
    values: impl rusqlite::Params,
) -> rusqlite::Result<HashMap<String, FileState>> {
    let mut select = conn.prepare_cached(&format!("{LAKE_FILE} WHERE {filter}"))?;
    let rows = select.query_map(values, lake_file)?;
    rows.collect()
}

/// What the writer looks at when it opens the lake: the open files and every file recorded in their
/// directories (a day holds at most 24 hours); and the start of the newest hour recorded.
fn files_to_check(conn: &Connection) -> rusqlite::Result<(HashMap<String, FileState>, i64)> {
    let mut files = lake_files(conn, "open = 1", [])?;
    let days: std::collections::BTreeSet<String> = files
        .keys()
        .filter_map(|name| name.rsplit_once('/').map(|(day, _)| format!("{day}/")))
        .collect();
    for day in days {
        // Names under `day/`: from `day/` up to `day0` ('0' follows '/').
        let past = format!("{}0", &day[..day.len() - 1]);
        files.extend(lake_files(conn, "file >= ?1 AND file < ?2", [&day, &past])?);
    }
    let newest = conn
        .query_row(
            "SELECT hour FROM lake_files ORDER BY file DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(i64::MIN);
    Ok((files, newest))
}

/// Records the lake files' new states in the transaction `tx`.
pub(crate) fn record_files(
    tx: &Connection,
    states: &[(String, FileState)],
) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO lake_files (file, hour, end, plain, gz, open) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (file) DO UPDATE SET hour = excluded.hour, end = excluded.end, plain = excluded.plain,
             gz = excluded.gz, open = excluded.open",
    )?;
    for (name, s) in states {
        upsert.execute(params![
            name,
            s.hour,
            s.end as i64,
            s.plain as i64,
            s.gz,
            s.open
        ])?;
    }
    Ok(())
}

/// Records the lake files' new states in a transaction of their own, synced to disk before it returns (the
/// write-ahead log is otherwise synced at checkpoints only): what the lake does next relies on the record.
pub(crate) fn record_files_durably(
    conn: &mut Connection,
    states: &[(String, FileState)],
) -> rusqlite::Result<()> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    let recorded = conn.transaction().and_then(|tx| {
        record_files(&tx, states)?;
        tx.commit()
    });
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    recorded
}

impl SqliteStore {
    /// Runs blocking SQLite work off the async runtime.
    pub(crate) async fn with_conn<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.with_inner(move |inner| work(&mut inner.conn)).await
    }
}

impl Store for SqliteStore {
    async fn write_events(&self, events: Vec<Arc<Event>>) -> Result<WriteOutcome, StoreError> {
        let lines_written = self.lines_written.clone();
        self.with_lake(move |lake, inner| {
            crate::write::write_events(inner, lake, &events, &lines_written)
        })
        .await
    }

    async fn put_counters(&self, rows: Vec<AggregateRow>) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            let err = failed("put_counters");
            let tx = conn.transaction().map_err(&err)?;
            {
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO aggregates (granularity, dimension, bucket, key, count) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT DO UPDATE SET count = excluded.count",
                    )
                    .map_err(&err)?;
                for r in &rows {
                    upsert
                        .execute(params![r.granularity.as_str(), r.dimension.as_str(), r.bucket, r.key, r.count as i64])
                        .map_err(&err)?;
                }
            }
            tx.commit().map_err(&err)
        })
        .await
    }

    async fn repo_meta(&self, names: Vec<String>) -> Result<Vec<RepoMeta>, StoreError> {
        self.with_conn(move |conn| {
            let err = failed("repo_meta");
            let mut select = conn
                .prepare_cached(
                    "SELECT name, found, language, topics, stars, etag, fetched_at FROM repos WHERE name = ?1",
                )
                .map_err(&err)?;
            let mut found = Vec::new();
            for name in names {
                let row = select
                    .query_row([name], |r| {
                        let topics: String = r.get(3)?;
                        Ok(RepoMeta {
                            name: r.get(0)?,
                            found: r.get(1)?,
                            language: r.get(2)?,
                            topics: serde_json::from_str(&topics).unwrap_or_default(),
                            stars: r.get::<_, i64>(4)? as u64,
                            etag: r.get(5)?,
                            fetched_at: r.get(6)?,
                        })
                    })
                    .optional()
                    .map_err(&err)?;
                found.extend(row);
            }
            Ok(found)
        })
        .await
    }

    async fn put_repo_meta(&self, repos: Vec<RepoMeta>) -> Result<(), StoreError> {
        self.with_inner(move |inner| {
            let err = failed("put_repo_meta");
            let tx = inner.conn.transaction().map_err(&err)?;
            {
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO repos (name, found, language, topics, stars, etag, fetched_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(&err)?;
                for r in &repos {
                    let topics = serde_json::to_string(&r.topics).unwrap_or_else(|_| "[]".into());
                    upsert
                        .execute(params![r.name, r.found, r.language, topics, r.stars as i64, r.etag, r.fetched_at])
                        .map_err(&err)?;
                }
            }
            tx.commit().map_err(&err)?;
            inner.repos_known |= !repos.is_empty();
            Ok(())
        })
        .await
    }

    async fn write_dead_letters(&self, letters: Vec<Arc<DeadLetter>>) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            let err = failed("write_dead_letters");
            let tx = conn.transaction().map_err(&err)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO dead_letters
                         (at, stage, error, script, version, origin, raw, digest)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .map_err(&err)?;
                let at = now_unix();
                for l in &letters {
                    insert
                        .execute(params![
                            at,
                            l.stage,
                            l.error,
                            l.script,
                            l.version,
                            l.origin,
                            l.raw,
                            l.digest()
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
            // The day counters of all events, incremented with each event in its transaction: a row per day
            // read, not every event counted.
            conn.query_row(
                "SELECT COALESCE(SUM(count), 0) FROM aggregates WHERE granularity = 'day' AND dimension = 'all'",
                [],
                |r| r.get::<_, i64>(0),
            )
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
    /// What the cache knows of every repository GitHub has: name, language and topics.
    pub async fn repo_facts(
        &self,
    ) -> Result<Vec<(String, Option<String>, Vec<String>)>, StoreError> {
        self.with_conn(|conn| {
            let err = failed("repo_facts");
            let mut select = conn
                .prepare("SELECT name, language, topics FROM repos WHERE found = 1 ORDER BY name")
                .map_err(&err)?;
            let rows = select
                .query_map([], |r| {
                    let topics: String = r.get(2)?;
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        serde_json::from_str(&topics).unwrap_or_default(),
                    ))
                })
                .map_err(&err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&err)
        })
        .await
    }

    /// Where each file of the lake ends as committed, by its path under the lake as it is on disk
    /// (`2025/01/01/15.json`, or `2025/01/01/14.json.gz` for an hour that is over); a file absent has nothing
    /// committed. A reader of the lake stops there: bytes past it are a write in progress, or what a crash left
    /// between the lake's sync and the commit, which only the writer cuts off. A plain file listed may be
    /// compressed (and removed) while the reader runs: its compressed form then starts with the same lines.
    pub async fn committed_lake(&self) -> Result<HashMap<String, u64>, StoreError> {
        self.with_conn(|conn| {
            let files = lake_files(conn, "1", []).map_err(failed("committed_lake"))?;
            Ok(committed_ends(&files))
        })
        .await
    }

    /// Declares the hours that ended by `before` (Unix seconds) over, as a backfill of past hours does: their
    /// plain files are compressed now, and their events from now on are written compressed. The writer also
    /// finds hours over by itself, [`forgecast_lake::committed::OVER_AFTER`] before the newest event it wrote.
    pub async fn hours_over_before(&self, before: i64) -> Result<(), StoreError> {
        self.with_lake(move |lake, inner| {
            let mut inner = lock(inner);
            if inner.writer.is_none() {
                return Ok(());
            }
            lake.declare_over(before);
            crate::write::close_over(&mut inner.conn, lake)
        })
        .await
    }

    /// The JSON of one stored event.
    pub async fn event_raw(&self, id: String) -> Result<Option<String>, StoreError> {
        self.with_lake(move |lake, inner| {
            let inner = lock(inner);
            let place: Option<(String, i64, i64)> = inner
                .conn
                .query_row(
                    "SELECT raw_file, raw_offset, raw_len FROM events WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(failed("event_raw"))?;
            let Some((file, offset, len)) = place else {
                return Ok(None);
            };
            // The file's form now (a writer may have compressed it since this store learnt it).
            let known =
                lake_files(&inner.conn, "file = ?1", [&file]).map_err(failed("event_raw"))?;
            drop(inner);
            for (name, state) in known {
                lake.learn(name, state);
            }
            let bytes =
                lake.read(&file, offset as u64, len as u64)
                    .map_err(|e| StoreError::Operation {
                        operation: "event_raw",
                        reason: format!("lake {file}: {e}"),
                    })?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgecast_core::aggregate::{Dimension, Granularity};

    fn event(id: &str, repo: &str) -> Arc<Event> {
        let line = format!(
            r#"{{"id":"{id}","type":"PushEvent","actor":{{"login":"a"}},"repo":{{"name":"{repo}"}},"created_at":"2025-01-01T15:00:00Z"}}"#
        );
        Arc::new(Event::parse(&line).unwrap())
    }

    fn event_at(id: u32, at: &str) -> Arc<Event> {
        let line = format!(
            r#"{{"id":"{id}","type":"IssuesEvent","actor":{{"login":"a"}},"repo":{{"name":"o/r"}},"payload":{{"n":"{}"}},"created_at":"{at}"}}"#,
            "x".repeat(id as usize % 40)
        );
        Arc::new(Event::parse(&line).unwrap())
    }

    /// Events `ids` created in the hour starting at `hour` (`2025-01-01T15`).
    fn hour_of_events(hour: &str, ids: std::ops::Range<u32>) -> Vec<Arc<Event>> {
        ids.map(|id| event_at(id, &format!("{hour}:{:02}:00Z", id % 60)))
            .collect()
    }

    fn gunzip(path: &Path) -> String {
        use std::io::Read;
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    fn lines(events: &[Arc<Event>]) -> String {
        events.iter().map(|e| format!("{}\n", e.raw)).collect()
    }

    #[tokio::test]
    async fn an_hour_over_is_compressed_and_every_event_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        let lake = SqliteStore::lake_path(&path);
        let first = hour_of_events("2025-01-01T15", 0..300);
        store.write_events(first.clone()).await.unwrap();
        assert!(lake.join("2025/01/01/15.json").exists());
        // Events three hours later: 15:00 is over (two hours past its end), 16:00 not yet.
        let second = hour_of_events("2025-01-01T16", 300..310);
        let third = hour_of_events("2025-01-01T18", 310..320);
        store.write_events(second.clone()).await.unwrap();
        store.write_events(third.clone()).await.unwrap();
        assert!(!lake.join("2025/01/01/15.json").exists());
        let gz = lake.join("2025/01/01/15.json.gz");
        assert_eq!(
            gunzip(&gz),
            lines(&first),
            "the same lines, as GH Archive publishes an hour"
        );
        assert!(lake.join("2025/01/01/16.json").exists());
        for event in first.iter().chain(&second).chain(&third) {
            assert_eq!(
                store.event_raw(event.id.clone()).await.unwrap().unwrap(),
                *event.raw
            );
        }
        let committed = store.committed_lake().await.unwrap();
        assert_eq!(
            committed.get("2025/01/01/15.json.gz"),
            Some(&std::fs::metadata(&gz).unwrap().len())
        );
        assert!(!committed.contains_key("2025/01/01/15.json"));

        // A late event for the compressed hour: appended to it, compressed, and read back; a reader alongside
        // finds it too.
        let late = event_at(999, "2025-01-01T15:59:59Z");
        store.write_events(vec![late.clone()]).await.unwrap();
        assert_eq!(
            gunzip(&gz),
            lines(&first) + &lines(std::slice::from_ref(&late))
        );
        let reader = SqliteStore::open_alongside(&path).unwrap();
        assert_eq!(
            reader.event_raw("999".into()).await.unwrap().unwrap(),
            *late.raw
        );
        assert_eq!(
            reader.event_raw("5".into()).await.unwrap().unwrap(),
            *first[5].raw
        );

        // A backfill declares past hours over: the plain files go now, and later events are compressed at once.
        store.hours_over_before(i64::MAX).await.unwrap();
        assert!(!lake.join("2025/01/01/16.json").exists());
        assert_eq!(gunzip(&lake.join("2025/01/01/18.json.gz")), lines(&third));
        let old = hour_of_events("2024-06-01T03", 400..410);
        store.write_events(old.clone()).await.unwrap();
        assert_eq!(gunzip(&lake.join("2024/06/01/03.json.gz")), lines(&old));
        assert!(!lake.join("2024/06/01/03.json").exists());
        assert_eq!(store.event_count().await.unwrap(), 331);
    }

    #[tokio::test]
    async fn a_new_batch_tells_its_waiters_when_its_lines_are_on_disk_and_a_batch_delivered_again_does_not()
     {
        use std::task::{Context, Poll, Waker};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        let lines_written = store.lines_written();
        let woken = |notified: &mut std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>| {
            notified
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                == Poll::Ready(())
        };

        let batch = hour_of_events("2025-01-01T15", 0..50);
        let notified = lines_written.notified();
        tokio::pin!(notified);
        assert!(!woken(&mut notified), "nothing written yet");
        store.write_events(batch.clone()).await.unwrap();
        assert!(
            woken(&mut notified),
            "a waiter from before a new batch is told"
        );
        let lake = SqliteStore::lake_path(&path);
        assert_eq!(
            std::fs::read_to_string(lake.join("2025/01/01/15.json")).unwrap(),
            lines(&batch)
        );

        let again = lines_written.notified();
        tokio::pin!(again);
        let outcome = store.write_events(batch.clone()).await.unwrap();
        assert_eq!(outcome.duplicates, 50);
        assert!(
            !woken(&mut again),
            "a batch delivered again is written in one piece"
        );
        assert_eq!(store.event_count().await.unwrap(), 50);
    }

    #[tokio::test]
    async fn a_restart_after_a_crash_cuts_only_the_recorded_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let lake = SqliteStore::lake_path(&path);
        let store = SqliteStore::open(&path).unwrap();
        store.hours_over_before(1_735_740_000).await.unwrap(); // 2025-01-01T14:00 ended
        store
            .write_events(hour_of_events("2025-01-01T13", 0..50))
            .await
            .unwrap();
        store
            .write_events(hour_of_events("2025-01-01T15", 50..100))
            .await
            .unwrap();
        drop(store);
        let closed = lake.join("2025/01/01/13.json.gz");
        let open = lake.join("2025/01/01/15.json");
        let (closed_len, open_len) = (
            std::fs::metadata(&closed).unwrap().len(),
            std::fs::metadata(&open).unwrap().len(),
        );
        // What a crash between the lake's sync and the commit leaves: bytes past the end of the file written
        // to. Put such bytes past both files: the writer looks only at the one recorded as written to.
        for file in [&closed, &open] {
            let mut bytes = std::fs::read(file).unwrap();
            bytes.extend_from_slice(b"{\"half\":");
            std::fs::write(file, bytes).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&open).unwrap().len(),
            open_len,
            "cut back"
        );
        assert_eq!(
            std::fs::metadata(&closed).unwrap().len(),
            closed_len + 8,
            "a file recorded as closed is not looked at"
        );
        // Readers stop at the committed end all the same.
        assert_eq!(
            store
                .committed_lake()
                .await
                .unwrap()
                .get("2025/01/01/13.json.gz"),
            Some(&closed_len)
        );
        store
            .write_events(hour_of_events("2025-01-01T15", 100..110))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&open).unwrap(),
            lines(&hour_of_events("2025-01-01T15", 50..110))
        );
    }

    #[tokio::test]
    async fn start_up_does_not_open_the_hour_files_that_are_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let lake = SqliteStore::lake_path(&path);
        let store = SqliteStore::open(&path).unwrap();
        store.hours_over_before(1_735_740_000).await.unwrap();
        for hour in 0..12 {
            let at = format!("2024-12-{:02}T{:02}", 1 + hour / 4, hour % 24);
            store
                .write_events(hour_of_events(&at, hour * 10..hour * 10 + 10))
                .await
                .unwrap();
        }
        store
            .write_events(hour_of_events("2025-01-01T15", 500..510))
            .await
            .unwrap();
        drop(store);
        // Every closed hour's file turned into a directory: opening any of them as a file would fail.
        let closed: Vec<_> = forgecast_lake::layout::hour_files(&lake)
            .unwrap()
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
            .collect();
        assert_eq!(closed.len(), 12);
        for file in &closed {
            std::fs::remove_file(file).unwrap();
            std::fs::create_dir(file).unwrap();
        }
        let store = SqliteStore::open(&path).expect("start-up leaves closed hours alone");
        store
            .write_events(hour_of_events("2025-01-01T15", 510..520))
            .await
            .unwrap();
        assert_eq!(store.event_count().await.unwrap(), 140);
    }

    #[tokio::test]
    async fn a_store_of_layout_3_records_its_lake_files_and_checks_them_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        let events = hour_of_events("2025-01-01T15", 0..20);
        store.write_events(events.clone()).await.unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE lake_files; PRAGMA user_version = 3;")
            .unwrap();
        drop(conn);
        let hour = SqliteStore::lake_path(&path).join("2025/01/01/15.json");
        let mut bytes = std::fs::read(&hour).unwrap();
        bytes.extend_from_slice(b"{\"half\":");
        std::fs::write(&hour, bytes).unwrap();

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&hour).unwrap(), lines(&events));
        assert_eq!(
            store.committed_lake().await.unwrap(),
            HashMap::from([(
                "2025/01/01/15.json".to_string(),
                lines(&events).len() as u64
            )])
        );
        assert_eq!(
            store.event_raw("7".into()).await.unwrap().unwrap(),
            *events[7].raw
        );
    }

    #[tokio::test]
    async fn a_store_of_the_previous_layout_is_brought_up_to_date_by_its_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let letter = |n: u32| {
            Arc::new(DeadLetter {
                stage: "parse".into(),
                error: "not JSON".into(),
                script: None,
                version: None,
                origin: Some(format!("h.json:{n}")),
                raw: "{".into(),
            })
        };
        {
            let store = SqliteStore::open(&path).unwrap();
            store.write_events(vec![event("1", "o/a")]).await.unwrap();
            store.write_dead_letters(vec![letter(1)]).await.unwrap();
        }
        // Back to layout 2, as an older forgecast left it: no digest column.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX dead_letters_digest; ALTER TABLE dead_letters DROP COLUMN digest; PRAGMA user_version = 2;",
        )
        .unwrap();
        drop(conn);

        let Err(refused) = SqliteStore::open_alongside(&path) else {
            panic!("a reader brought the layout up to date");
        };
        let refused = refused.to_string();
        assert!(
            refused.contains("start `forgecast up` on it once"),
            "{refused}"
        );
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.event_count().await.unwrap(), 1);
        store
            .write_dead_letters(vec![letter(1), letter(2), letter(2)])
            .await
            .unwrap();
        assert_eq!(
            store.dead_letter_count().await.unwrap(),
            3,
            "the old letter (no digest) kept, the new one once"
        );
    }

    #[tokio::test]
    async fn a_store_of_layout_4_keeps_its_decisions_and_takes_alarms_apart() {
        use forgecast_core::outcomes::{Decision, OutcomeStore, Trigger};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let decision = Decision {
            model: "m".into(),
            window: 201,
            trigger: Trigger::Window,
            at: 1,
            version: 1,
            script: "abc".into(),
            retrain: false,
            reason: "fine".into(),
            context: serde_json::json!({}),
            retrain_result: None,
        };
        drop(SqliteStore::open(&path).unwrap());
        // As layout 4 kept decisions: one per model, window and version, no trigger.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE retrain_decisions;
             CREATE TABLE retrain_decisions (model TEXT NOT NULL, window INTEGER NOT NULL,
                 version INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (model, window, version));
             PRAGMA user_version = 4;",
        )
        .unwrap();
        let mut old = serde_json::to_value(&decision).unwrap();
        old.as_object_mut().unwrap().remove("trigger");
        conn.execute(
            "INSERT INTO retrain_decisions VALUES ('m', 201, 1, ?1)",
            [old.to_string()],
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.decisions("m").await.unwrap(),
            std::slice::from_ref(&decision)
        );
        let alarm = Decision {
            trigger: Trigger::Alarm,
            retrain: true,
            ..decision.clone()
        };
        store.record_decision(alarm.clone()).await.unwrap();
        assert_eq!(store.decisions("m").await.unwrap(), [alarm, decision]);
    }

    #[tokio::test]
    async fn stores_each_event_once_and_reads_its_json_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        let first = store
            .write_events(vec![event("1", "o/a"), event("2", "o/b")])
            .await
            .unwrap();
        assert_eq!(
            first,
            WriteOutcome {
                inserted: 2,
                duplicates: 0
            }
        );
        let again = store
            .write_events(vec![event("2", "o/b"), event("3", "o/c")])
            .await
            .unwrap();
        assert_eq!(
            again,
            WriteOutcome {
                inserted: 1,
                duplicates: 1
            }
        );
        assert_eq!(store.event_count().await.unwrap(), 3);
        let raw = store.event_raw("3".into()).await.unwrap().unwrap();
        assert_eq!(raw, *event("3", "o/c").raw);
        // The lake: one file per hour of creation, GH Archive lines.
        let hour = SqliteStore::lake_path(store.path()).join("2025/01/01/15.json");
        let file = std::fs::read_to_string(hour).unwrap();
        assert_eq!(file.lines().count(), 3);
    }

    #[tokio::test]
    async fn a_stored_event_amid_new_ones_leaves_every_line_once_in_either_form() {
        // The batch's first and last events are new, so its lines are written before its rows; the stored event
        // in its middle then sends it through event by event, over what the first attempt wrote.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        let lake = SqliteStore::lake_path(&path);
        let count = |store: SqliteStore| async move {
            let rows = store
                .aggregates(AggregateQuery {
                    granularity: Granularity::Hour,
                    dimension: Dimension::Type,
                    from: 0,
                    to: i64::MAX,
                })
                .await
                .unwrap();
            rows.iter().map(|r| r.count).sum::<u64>()
        };
        for (hour, ids, file, gz) in [
            ("2025-01-01T15", 0..40, "2025/01/01/15.json", false),
            ("2024-06-01T03", 100..140, "2024/06/01/03.json.gz", true),
        ] {
            if gz {
                store.hours_over_before(i64::MAX).await.unwrap();
            }
            let all = hour_of_events(hour, ids);
            let (before, after) = all.split_at(20);
            store.write_events(before.to_vec()).await.unwrap();
            let mut mixed = after.to_vec();
            mixed.insert(10, before[7].clone());
            let outcome = store.write_events(mixed).await.unwrap();
            assert_eq!(
                outcome,
                WriteOutcome {
                    inserted: 20,
                    duplicates: 1
                }
            );
            let text = match gz {
                true => gunzip(&lake.join(file)),
                false => std::fs::read_to_string(lake.join(file)).unwrap(),
            };
            assert_eq!(text, lines(&all), "{file}");
            for event in &all {
                assert_eq!(
                    store.event_raw(event.id.clone()).await.unwrap().unwrap(),
                    *event.raw
                );
            }
        }
        assert_eq!(store.event_count().await.unwrap(), 80);
        assert_eq!(count(store.clone()).await, 80, "each event counted once");
        // Delivered again whole: nothing changes.
        let again = hour_of_events("2025-01-01T15", 0..40);
        let outcome = store.write_events(again).await.unwrap();
        assert_eq!(outcome.duplicates, 40);
        assert_eq!(count(store.clone()).await, 80);
        let text = gunzip(&lake.join("2025/01/01/15.json.gz"));
        assert_eq!(text, lines(&hour_of_events("2025-01-01T15", 0..40)));
    }

    #[tokio::test]
    async fn a_batch_is_placed_by_hour_type_and_repository_and_each_line_found_where_its_row_says()
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        let lake = SqliteStore::lake_path(&path);
        store.hours_over_before(i64::MAX).await.unwrap();
        let kinds = ["WatchEvent", "PushEvent", "IssuesEvent"];
        let repos = ["o/c", "o/a", "o/b"];
        let make = |id: u32| {
            let line = format!(
                r#"{{"id":"{id}","type":"{}","actor":{{"login":"a"}},"repo":{{"name":"{}"}},"payload":{{}},"created_at":"2025-01-01T{}:{:02}:00Z"}}"#,
                kinds[id as usize % 3],
                repos[id as usize / 3 % 3],
                15 + id % 2,
                id % 60
            );
            Arc::new(Event::parse(&line).unwrap())
        };
        let all: Vec<_> = (0..60).map(make).collect();
        // A fresh batch, then one holding a stored event (written event by event).
        store.write_events(all[..30].to_vec()).await.unwrap();
        let mut checked = all[30..].to_vec();
        checked.insert(5, all[3].clone());
        assert_eq!(store.write_events(checked).await.unwrap().duplicates, 1);
        for event in &all {
            assert_eq!(
                store.event_raw(event.id.clone()).await.unwrap().unwrap(),
                *event.raw
            );
        }
        for (hour, file) in [(15, "2025/01/01/15.json.gz"), (16, "2025/01/01/16.json.gz")] {
            let of_hour = |batch: &[Arc<Event>]| -> Vec<Arc<Event>> {
                let mine: Vec<_> = batch
                    .iter()
                    .filter(|e| e.created_at.div_euclid(3600) % 24 == hour)
                    .cloned()
                    .collect();
                forgecast_lake::committed::placement_order(&mine)
                    .into_iter()
                    .map(|at| mine[at].clone())
                    .collect()
            };
            let expected = [of_hour(&all[..30]), of_hour(&all[30..])].concat();
            let text = gunzip(&lake.join(file));
            assert_eq!(text, lines(&expected), "{file}");
            let first: Vec<&str> = text.lines().take(4).collect();
            assert!(
                first.iter().all(|l| l.contains("\"IssuesEvent\"")),
                "a batch's lines grouped by type: {first:?}"
            );
        }
    }

    #[tokio::test]
    async fn events_count_under_their_repository_language_once_it_is_known() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        let meta = RepoMeta {
            name: "o/b".into(),
            found: true,
            language: Some("Rust".into()),
            topics: vec!["cli".into()],
            stars: 7,
            etag: Some("\"e\"".into()),
            fetched_at: 1,
        };
        store.put_repo_meta(vec![meta.clone()]).await.unwrap();
        assert_eq!(
            store
                .repo_meta(vec!["o/b".into(), "o/x".into()])
                .await
                .unwrap(),
            vec![meta]
        );
        store
            .write_events(vec![event("1", "o/a"), event("2", "o/b")])
            .await
            .unwrap();
        let query = |dimension| AggregateQuery {
            granularity: Granularity::Day,
            dimension,
            from: 0,
            to: i64::MAX,
        };
        let languages = store.aggregates(query(Dimension::Language)).await.unwrap();
        assert_eq!(
            languages
                .iter()
                .map(|r| (r.key.as_str(), r.count))
                .collect::<Vec<_>>(),
            [("Rust", 1)]
        );
        let pairs = store
            .aggregates(query(Dimension::TypeLanguage))
            .await
            .unwrap();
        assert_eq!(pairs[0].key, "PushEvent/Rust");
        let topics = store.aggregates(query(Dimension::Topic)).await.unwrap();
        assert_eq!(
            topics
                .iter()
                .map(|r| (r.key.as_str(), r.count))
                .collect::<Vec<_>>(),
            [("cli", 1)]
        );
    }

    #[tokio::test]
    async fn one_writer_per_data_directory_and_readers_alongside_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("forgecast.sqlite");
        let writer = SqliteStore::open(&path).unwrap();
        writer.write_events(vec![event("1", "o/a")]).await.unwrap();
        let second = SqliteStore::open(&path)
            .err()
            .expect("a second writer is refused");
        assert!(second.to_string().contains("another forgecast"), "{second}");

        // A pending tail (the writer between its lake write and its commit) must survive a reader opening.
        let hour = SqliteStore::lake_path(&path).join("2025/01/01/15.json");
        let mut bytes = std::fs::read(&hour).unwrap();
        bytes.extend_from_slice(b"{\"pending\":1}\n");
        std::fs::write(&hour, &bytes).unwrap();
        let reader = SqliteStore::open_alongside(&path).unwrap();
        assert_eq!(
            std::fs::read(&hour).unwrap(),
            bytes,
            "opening alongside cuts nothing"
        );
        assert_eq!(reader.event_count().await.unwrap(), 1);
        let refused = reader
            .write_events(vec![event("2", "o/b")])
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("cannot write events"),
            "{refused}"
        );

        drop(writer);
        SqliteStore::open(&path).expect("the lock goes with the writer");
    }

    #[tokio::test]
    async fn a_reader_alongside_learns_where_each_lake_file_was_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let writer = SqliteStore::open(&path).unwrap();
        writer
            .write_events(vec![event("1", "o/a"), event("2", "o/b")])
            .await
            .unwrap();
        let hour = SqliteStore::lake_path(&path).join("2025/01/01/15.json");
        let committed = std::fs::metadata(&hour).unwrap().len();
        let mut bytes = std::fs::read(&hour).unwrap();
        bytes.extend_from_slice(b"{\"pending\":1}\n");
        std::fs::write(&hour, &bytes).unwrap();
        let reader = SqliteStore::open_alongside(&path).unwrap();
        assert_eq!(
            reader.committed_lake().await.unwrap(),
            HashMap::from([("2025/01/01/15.json".to_string(), committed)])
        );
    }

    #[tokio::test]
    async fn bytes_past_the_last_commit_are_cut_off_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        store.write_events(vec![event("1", "o/a")]).await.unwrap();
        drop(store);
        // A crash after appending JSON but before the commit leaves a tail no row points at.
        let raw_path = SqliteStore::lake_path(&path).join("2025/01/01/15.json");
        let stray = SqliteStore::lake_path(&path).join("2025/01/01/16.json");
        std::fs::write(&stray, "{\"never\":\"committed\"}\n").unwrap();
        let committed = std::fs::read(&raw_path).unwrap();
        std::fs::write(
            &raw_path,
            [committed.clone(), b"{\"half\":".to_vec()].concat(),
        )
        .unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(std::fs::read(&raw_path).unwrap(), committed);
        assert_eq!(
            std::fs::read(&stray).unwrap(),
            b"",
            "a file nothing committed points into is emptied"
        );
        store.write_events(vec![event("2", "o/b")]).await.unwrap();
        assert_eq!(
            store.event_raw("2".into()).await.unwrap().unwrap(),
            *event("2", "o/b").raw
        );
        assert_eq!(
            store.event_raw("1".into()).await.unwrap().unwrap(),
            *event("1", "o/a").raw
        );
    }
}
