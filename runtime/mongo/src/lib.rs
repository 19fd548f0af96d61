//! The MongoDB store: the same contract as the embedded store, on MongoDB through the official driver.
//!
//! Collections (indexes are created at start-up): `events` (`_id` is GitHub's event id, the raw JSON line
//! kept whole), `aggregates` (unique on granularity, dimension, bucket and key), `repos` (`_id` is the full
//! name), `dead_letters` (`_id` is a hash of the content, so a dead letter delivered twice is kept once),
//! `script_reloads`, and for the model layer `models` (with `model_artifacts`; see `registry`), `predictions` and
//! `label_counts` (see `predictions`), `outcome_pending`, `outcome_learners` and `evaluations` (see `outcomes`), and
//! `drift`.
//!
//! Writing events is one multi-document transaction per slice of [`TRANSACTION_EVENTS`] events: find which
//! ids are stored already, insert the others and increment the counters of exactly those. A transaction that
//! fails (a conflict with another writer storing the same event, a database that went away) leaves nothing
//! behind and the write is retried, so redelivered events change nothing and a crash loses nothing. MongoDB
//! runs transactions on a replica set (a single-node one is enough); the connection refuses a standalone
//! server at start-up with that explanation.

mod outcomes;
mod predictions;
mod registry;
mod stars;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use forgecast_core::aggregate::{
    AggregateQuery, AggregateRow, Dimension, Granularity, RepoFacts, for_each_counter_as,
};
use forgecast_core::backoff::Backoff;
use forgecast_core::predictions::StoredPrediction;
use forgecast_core::store::{RepoMeta, ScriptReload, Store, StoreError, WriteOutcome};
use forgecast_core::time::now_unix;
use forgecast_core::{DeadLetter, Event};
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};

/// Events (or predictions) written in one transaction: enough to amortise the round trips, few enough that a transaction
/// stays small (under a megabyte of events) and a conflict repeats little work. Transactions cost more than
/// linearly in their size on some servers: on SecantusDB, 3,800 events in one transaction took minutes where
/// slices of 256 stored them in seconds.
const TRANSACTION_EVENTS: usize = 256;
/// Statements in one `update` command.
const UPDATES_PER_COMMAND: usize = 5000;
/// Ids in one `$in` lookup.
const IDS_PER_LOOKUP: usize = 10_000;
/// Times a transaction that failed with a transient error (such as a conflict with another writer counting
/// into the same counters) is run again before the write fails; attempts wait longer and longer, with jitter,
/// so that writers that collided do not collide again.
const TRANSACTION_ATTEMPTS: u32 = 30;

/// The MongoDB store; cheap to clone, clones share the connection pool.
#[derive(Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    /// Whether any repository metadata is cached (if not, there is no language to look up).
    repos_known: Arc<AtomicBool>,
}

/// A failed store step: the driver's error (which may say "run the transaction again") or a refusal in a reply.
#[derive(Debug)]
enum Failure {
    Driver(mongodb::error::Error),
    Refused(String),
}

impl From<mongodb::error::Error> for Failure {
    fn from(e: mongodb::error::Error) -> Failure {
        Failure::Driver(e)
    }
}

impl Failure {
    /// Whether running the transaction again at once may succeed: a conflict with another writer. A server
    /// that cannot be reached also carries the transient label, but is the caller's to wait for (with its
    /// backoff, readiness and retry count), not a reason to spin here.
    fn transient(&self) -> bool {
        matches!(self, Failure::Driver(e)
            if e.contains_label(TRANSIENT_TRANSACTION_ERROR) && !unreachable(e))
    }

    fn during(self, operation: &'static str) -> StoreError {
        StoreError::Operation {
            operation,
            reason: match self {
                Failure::Driver(e) => e.to_string(),
                Failure::Refused(reason) => reason,
            },
        }
    }
}

fn failed(operation: &'static str) -> impl Fn(mongodb::error::Error) -> StoreError {
    move |e| StoreError::Operation {
        operation,
        reason: e.to_string(),
    }
}

/// The write errors of a command reply, except those whose code is `ignored`.
fn refusals(reply: &Document, ignored: Option<i32>) -> Result<(), Failure> {
    let Ok(errors) = reply.get_array("writeErrors") else {
        return Ok(());
    };
    let first = errors
        .iter()
        .filter_map(Bson::as_document)
        .find(|e| ignored.is_none_or(|code| e.get_i32("code").ok() != Some(code)));
    match first {
        Some(e) => Err(Failure::Refused(format!(
            "{} of the writes refused, first: {}",
            errors.len(),
            e.get_str("errmsg").unwrap_or("no message")
        ))),
        None => Ok(()),
    }
}

/// A count as stored: drivers write it as a 32- or 64-bit integer (or a double, from some tools).
fn count_of(value: Option<&Bson>) -> u64 {
    match value {
        Some(Bson::Int32(n)) => (*n).max(0) as u64,
        Some(Bson::Int64(n)) => (*n).max(0) as u64,
        Some(Bson::Double(n)) => n.max(0.0) as u64,
        _ => 0,
    }
}

/// Duplicate key, as the server codes it.
const DUPLICATE_KEY: i32 = 11000;

impl MongoStore {
    /// Connects to `uri`, checks that the server runs transactions and creates the collections' indexes in
    /// `database`.
    pub async fn connect(uri: &str, database: &str) -> Result<MongoStore, StoreError> {
        let open_failed = |reason: String| StoreError::Open {
            location: redact(uri),
            reason,
        };
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(|e| open_failed(e.to_string()))?;
        options.app_name = Some("forgecast".into());
        options
            .server_selection_timeout
            .get_or_insert(Duration::from_secs(10));
        let client = Client::with_options(options).map_err(|e| open_failed(e.to_string()))?;
        let db = client.database(database);
        let hello = db
            .run_command(doc! { "hello": 1 })
            .await
            .map_err(|e| open_failed(e.to_string()))?;
        if !hello.contains_key("setName") && hello.get_str("msg") != Ok("isdbgrid") {
            return Err(open_failed(
                "the server is a standalone mongod, which has no transactions; run it as a replica set \
                 (a single node is enough: mongod --replSet rs0, then rs.initiate())"
                    .into(),
            ));
        }
        let store = MongoStore {
            client,
            db,
            repos_known: Arc::new(AtomicBool::new(false)),
        };
        store
            .create_indexes()
            .await
            .map_err(|e| open_failed(e.to_string()))?;
        let known = store
            .repos()
            .find_one(doc! {})
            .await
            .map_err(|e| open_failed(e.to_string()))?
            .is_some();
        store.repos_known.store(known, Ordering::Relaxed);
        Ok(store)
    }

    async fn create_indexes(&self) -> mongodb::error::Result<()> {
        let index = |keys: Document, unique: bool| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().unique(unique).build())
                .build()
        };
        self.events()
            .create_index(index(doc! { "created_at": 1 }, false))
            .await?;
        self.aggregates_collection()
            .create_index(index(
                doc! { "granularity": 1, "dimension": 1, "bucket": 1, "key": 1 },
                true,
            ))
            .await?;
        self.dead_letters()
            .create_index(index(doc! { "at": 1 }, false))
            .await?;
        self.reloads()
            .create_index(index(doc! { "at": -1 }, false))
            .await?;
        self.db
            .collection::<Document>("models")
            .create_index(index(doc! { "name": 1, "version": 1 }, true))
            .await?;
        self.db
            .collection::<Document>("predictions")
            .create_index(index(doc! { "model": 1, "event_id": 1 }, false))
            .await?;
        self.db
            .collection::<Document>("predictions")
            .create_index(index(doc! { "model": 1, "at": -1 }, false))
            .await?;
        self.db
            .collection::<Document>("predictions")
            .create_index(index(doc! { "model": 1, "label": 1, "at": -1 }, false))
            .await?;
        self.db
            .collection::<Document>("label_counts")
            .create_index(index(
                doc! { "model": 1, "granularity": 1, "scope": 1, "bucket": 1, "key": 1, "label": 1 },
                true,
            ))
            .await?;
        self.db
            .collection::<Document>("outcome_pending")
            .create_index(index(doc! { "model": 1, "seq": 1 }, false))
            .await?;
        self.db
            .collection::<Document>("outcome_pending")
            .create_index(index(doc! { "model": 1, "opened_at": 1 }, false))
            .await?;
        self.db
            .collection::<Document>("evaluations")
            .create_index(index(doc! { "model": 1, "at": 1 }, false))
            .await?;
        self.db
            .collection::<Document>("drift")
            .create_index(index(
                doc! { "model": 1, "feature": 1, "window_start": 1 },
                false,
            ))
            .await?;
        Ok(())
    }

    /// Language and topics of every repository GitHub knows that the store has cached, by name.
    pub async fn repo_facts(
        &self,
    ) -> Result<Vec<(String, Option<String>, Vec<String>)>, StoreError> {
        let err = failed("repo_facts");
        let mut cursor = self
            .repos()
            .find(doc! { "found": true })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(&err)?;
        let mut facts = Vec::new();
        while cursor.advance().await.map_err(&err)? {
            let doc: Document = cursor.deserialize_current().map_err(&err)?;
            let repo = repo_meta(&doc);
            facts.push((repo.name, repo.language, repo.topics));
        }
        Ok(facts)
    }

    /// The database it writes to.
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn events(&self) -> Collection<Document> {
        self.db.collection("events")
    }

    fn aggregates_collection(&self) -> Collection<Document> {
        self.db.collection("aggregates")
    }

    fn repos(&self) -> Collection<Document> {
        self.db.collection("repos")
    }

    fn dead_letters(&self) -> Collection<Document> {
        self.db.collection("dead_letters")
    }

    fn reloads(&self) -> Collection<Document> {
        self.db.collection("script_reloads")
    }

    /// Stores one slice of events or predictions in one transaction, run again while the server says it may
    /// succeed then.
    async fn write_slice(&self, slice: Slice<'_>) -> Result<WriteOutcome, StoreError> {
        let operation = match slice {
            Slice::Events(_) => "write_events",
            Slice::Predictions(_) => "write_predictions",
        };
        let mut attempt = 1;
        loop {
            let mut session = self
                .client
                .start_session()
                .await
                .map_err(failed(operation))?;
            session
                .start_transaction()
                .await
                .map_err(failed(operation))?;
            let written = match slice {
                Slice::Events(events) => self.write_in(&mut session, events).await,
                Slice::Predictions(predictions) => {
                    self.predictions_in(&mut session, predictions).await
                }
            };
            let result = match written {
                Ok(outcome) => commit(&mut session).await.map(|()| outcome),
                Err(e) => {
                    let _ = session.abort_transaction().await;
                    Err(e)
                }
            };
            match result {
                Ok(outcome) => return Ok(outcome),
                Err(e) if e.transient() && attempt < TRANSACTION_ATTEMPTS => {
                    tracing::debug!(component = "store", attempt, error = ?e, "Transaction conflicted; running it again.");
                    tokio::time::sleep(CONFLICT_BACKOFF.wait(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.during(operation)),
            }
        }
    }

    async fn write_in(
        &self,
        session: &mut ClientSession,
        events: &[&Event],
    ) -> Result<WriteOutcome, Failure> {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let mut stored: HashSet<String> = HashSet::new();
        for chunk in ids.chunks(IDS_PER_LOOKUP) {
            let mut cursor = self
                .events()
                .find(doc! { "_id": { "$in": chunk } })
                .projection(doc! { "_id": 1 })
                .session(&mut *session)
                .await?;
            while let Some(found) = cursor.next(&mut *session).await {
                if let Ok(id) = found?.get_str("_id") {
                    stored.insert(id.to_string());
                }
            }
        }
        let mut outcome = WriteOutcome::default();
        let mut new: Vec<&Event> = Vec::with_capacity(events.len());
        for event in events {
            if stored.insert(event.id.clone()) {
                new.push(event);
            } else {
                outcome.duplicates += 1;
            }
        }
        outcome.inserted = new.len() as u64;
        if new.is_empty() {
            return Ok(outcome);
        }
        let facts = self.facts_of(session, &new).await?;
        let docs: Vec<Document> = new
            .iter()
            .map(|e| {
                doc! {
                    "_id": &e.id,
                    "type": &e.kind,
                    "actor": &e.actor,
                    "repo": &e.repo,
                    "org": e.org.as_deref(),
                    "language": e.language.as_deref(),
                    "created_at": e.created_at,
                    "raw": &*e.raw,
                }
            })
            .collect();
        self.events()
            .insert_many(docs)
            .session(&mut *session)
            .await?;
        let mut counters: HashMap<(Granularity, Dimension, i64, String), i64> = HashMap::new();
        for event in &new {
            let repo = facts
                .get(&event.repo)
                .map(|(language, topics)| RepoFacts {
                    language: language.as_deref(),
                    topics,
                })
                .unwrap_or_default();
            for_each_counter_as(event, repo, |k| {
                *counters
                    .entry((k.granularity, k.dimension, k.bucket, k.key.into_owned()))
                    .or_default() += 1
            });
        }
        let updates = counters
            .into_iter()
            .map(|((granularity, dimension, bucket, key), n)| {
                doc! {
                    "q": {
                        "granularity": granularity.as_str(),
                        "dimension": dimension.as_str(),
                        "bucket": bucket,
                        "key": key,
                    },
                    "u": { "$inc": { "count": n } },
                    "upsert": true,
                }
            });
        self.update(Some(session), "aggregates", updates).await?;
        Ok(outcome)
    }

    /// Language and topics of the repositories of `events` that GitHub knows, when any are cached.
    async fn facts_of(
        &self,
        session: &mut ClientSession,
        events: &[&Event],
    ) -> Result<HashMap<String, (Option<String>, Vec<String>)>, Failure> {
        let mut facts = HashMap::new();
        if !self.repos_known.load(Ordering::Relaxed) {
            return Ok(facts);
        }
        let names: Vec<&str> = events
            .iter()
            .map(|e| e.repo.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for chunk in names.chunks(IDS_PER_LOOKUP) {
            let mut cursor = self
                .repos()
                .find(doc! { "_id": { "$in": chunk }, "found": true })
                .session(&mut *session)
                .await?;
            while let Some(repo) = cursor.next(&mut *session).await {
                let repo = repo_meta(&repo?);
                facts.insert(repo.name, (repo.language, repo.topics));
            }
        }
        Ok(facts)
    }

    /// Runs `update` commands of up to [`UPDATES_PER_COMMAND`] statements each.
    async fn update(
        &self,
        mut session: Option<&mut ClientSession>,
        collection: &str,
        statements: impl Iterator<Item = Document>,
    ) -> Result<(), Failure> {
        let statements: Vec<Document> = statements.collect();
        for chunk in statements.chunks(UPDATES_PER_COMMAND) {
            let command = doc! { "update": collection, "updates": chunk, "ordered": true };
            let reply = match session.as_deref_mut() {
                Some(session) => self.db.run_command(command).session(session).await?,
                None => self.db.run_command(command).await?,
            };
            refusals(&reply, None)?;
        }
        Ok(())
    }
}

/// What one transaction writes.
#[derive(Clone, Copy)]
enum Slice<'a> {
    /// Events, with their counters.
    Events(&'a [&'a Event]),
    /// Predictions, with their label counters.
    Predictions(&'a [StoredPrediction]),
}

/// Waits between runs of a transaction that conflicted: random (up to twice the value), so that writers that
/// collided do not collide again.
const CONFLICT_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(5),
    max: Duration::from_millis(250),
    jitter: 1.0,
};

/// Whether the error says the server cannot be reached (rather than what it answered).
fn unreachable(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    matches!(
        *e.kind,
        ErrorKind::Io(..)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::ServerSelection { .. }
    )
}

/// Times a commit whose result is unknown is sent again while the server answers.
const COMMIT_ATTEMPTS: u32 = 3;

/// Commits, sending the commit again (as the driver's specification asks) when its result is unknown, a few times
/// while the server answers. A server that cannot be reached is the caller's to wait for; the whole write runs
/// again later, which stores nothing twice (it looks up which events exist inside its transaction).
async fn commit(session: &mut ClientSession) -> Result<(), Failure> {
    let mut attempt = 1;
    loop {
        match session.commit_transaction().await {
            Ok(()) => return Ok(()),
            Err(e)
                if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                    && !unreachable(&e)
                    && attempt < COMMIT_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err(e) => return Err(Failure::Driver(e)),
        }
    }
}

/// A connection string without its password, for messages.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &uri[..scheme], &uri[at + 1..])
        }
        _ => uri.to_string(),
    }
}

fn repo_meta(doc: &Document) -> RepoMeta {
    RepoMeta {
        name: doc.get_str("_id").unwrap_or_default().to_string(),
        found: doc.get_bool("found").unwrap_or(false),
        language: doc.get_str("language").ok().map(str::to_string),
        topics: doc
            .get_array("topics")
            .map(|t| {
                t.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        stars: count_of(doc.get("stars")),
        etag: doc.get_str("etag").ok().map(str::to_string),
        fetched_at: doc.get_i64("fetched_at").unwrap_or_default(),
    }
}

impl Store for MongoStore {
    async fn write_events(&self, events: Vec<Arc<Event>>) -> Result<WriteOutcome, StoreError> {
        let events: Vec<&Event> = events.iter().map(|e| &**e).collect();
        let mut total = WriteOutcome::default();
        for slice in events.chunks(TRANSACTION_EVENTS) {
            let outcome = self.write_slice(Slice::Events(slice)).await?;
            total.inserted += outcome.inserted;
            total.duplicates += outcome.duplicates;
        }
        Ok(total)
    }

    async fn put_counters(&self, rows: Vec<AggregateRow>) -> Result<(), StoreError> {
        let statements = rows.into_iter().map(|r| {
            doc! {
                "q": {
                    "granularity": r.granularity.as_str(),
                    "dimension": r.dimension.as_str(),
                    "bucket": r.bucket,
                    "key": r.key,
                },
                "u": { "$set": { "count": r.count as i64 } },
                "upsert": true,
            }
        });
        self.update(None, "aggregates", statements)
            .await
            .map_err(|e| e.during("put_counters"))
    }

    async fn repo_meta(&self, names: Vec<String>) -> Result<Vec<RepoMeta>, StoreError> {
        let mut found = Vec::new();
        for chunk in names.chunks(IDS_PER_LOOKUP) {
            let mut cursor = self
                .repos()
                .find(doc! { "_id": { "$in": chunk } })
                .await
                .map_err(failed("repo_meta"))?;
            while cursor.advance().await.map_err(failed("repo_meta"))? {
                let doc: Document = cursor.deserialize_current().map_err(failed("repo_meta"))?;
                found.push(repo_meta(&doc));
            }
        }
        Ok(found)
    }

    async fn put_repo_meta(&self, repos: Vec<RepoMeta>) -> Result<(), StoreError> {
        let any = !repos.is_empty();
        let statements = repos.into_iter().map(|r| {
            doc! {
                "q": { "_id": &r.name },
                "u": {
                    "found": r.found,
                    "language": r.language,
                    "topics": r.topics,
                    "stars": r.stars as i64,
                    "etag": r.etag,
                    "fetched_at": r.fetched_at,
                },
                "upsert": true,
            }
        });
        self.update(None, "repos", statements)
            .await
            .map_err(|e| e.during("put_repo_meta"))?;
        if any {
            self.repos_known.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn write_dead_letters(&self, letters: Vec<Arc<DeadLetter>>) -> Result<(), StoreError> {
        if letters.is_empty() {
            return Ok(());
        }
        let at = now_unix();
        let docs: Vec<Document> = letters
            .iter()
            .map(|l| {
                doc! {
                    "_id": DeadLetter::digest(l),
                    "at": at,
                    "stage": &l.stage,
                    "error": &l.error,
                    "script": l.script.as_deref(),
                    "version": l.version.as_deref(),
                    "origin": l.origin.as_deref(),
                    "raw": &l.raw,
                }
            })
            .collect();
        let reply = self
            .db
            .run_command(doc! { "insert": "dead_letters", "documents": docs, "ordered": false })
            .await
            .map_err(failed("write_dead_letters"))?;
        refusals(&reply, Some(DUPLICATE_KEY)).map_err(|e| e.during("write_dead_letters"))
    }

    async fn record_reload(&self, r: ScriptReload) -> Result<(), StoreError> {
        self.reloads()
            .insert_one(doc! {
                "at": r.at,
                "script": r.script,
                "old_hash": r.old_hash,
                "new_hash": r.new_hash,
                "accepted": r.accepted,
                "reason": r.reason,
            })
            .await
            .map(|_| ())
            .map_err(failed("record_reload"))
    }

    async fn aggregates(&self, q: AggregateQuery) -> Result<Vec<AggregateRow>, StoreError> {
        let err = failed("aggregates");
        let mut cursor = self
            .aggregates_collection()
            .find(doc! {
                "granularity": q.granularity.as_str(),
                "dimension": q.dimension.as_str(),
                "bucket": { "$gte": q.from, "$lt": q.to },
            })
            .sort(doc! { "bucket": 1, "key": 1 })
            .await
            .map_err(&err)?;
        let mut rows = Vec::new();
        while cursor.advance().await.map_err(&err)? {
            let doc: Document = cursor.deserialize_current().map_err(&err)?;
            rows.push(AggregateRow {
                granularity: q.granularity,
                dimension: q.dimension,
                bucket: match doc.get("bucket") {
                    Some(Bson::Int32(b)) => i64::from(*b),
                    Some(Bson::Int64(b)) => *b,
                    _ => continue,
                },
                key: doc.get_str("key").unwrap_or_default().to_string(),
                count: count_of(doc.get("count")),
            });
        }
        Ok(rows)
    }

    async fn event_count(&self) -> Result<u64, StoreError> {
        // The day counters of all events, incremented with each event in its transaction: a row per day read,
        // not the whole collection counted (the live view asks on every refresh).
        let err = failed("event_count");
        let mut cursor = self
            .aggregates_collection()
            .find(doc! { "granularity": Granularity::Day.as_str(), "dimension": Dimension::All.as_str() })
            .projection(doc! { "count": 1 })
            .await
            .map_err(&err)?;
        let mut total = 0;
        while cursor.advance().await.map_err(&err)? {
            let doc: Document = cursor.deserialize_current().map_err(&err)?;
            total += count_of(doc.get("count"));
        }
        Ok(total)
    }

    async fn dead_letter_count(&self) -> Result<u64, StoreError> {
        self.dead_letters()
            .count_documents(doc! {})
            .await
            .map_err(failed("dead_letter_count"))
    }

    async fn recent_reloads(&self, limit: usize) -> Result<Vec<ScriptReload>, StoreError> {
        let err = failed("recent_reloads");
        let mut cursor = self
            .reloads()
            .find(doc! {})
            .sort(doc! { "at": -1, "_id": -1 })
            .limit(limit as i64)
            .await
            .map_err(&err)?;
        let mut reloads = Vec::new();
        while cursor.advance().await.map_err(&err)? {
            let doc: Document = cursor.deserialize_current().map_err(&err)?;
            reloads.push(ScriptReload {
                at: doc.get_i64("at").unwrap_or_default(),
                script: doc.get_str("script").unwrap_or_default().to_string(),
                old_hash: doc.get_str("old_hash").ok().map(str::to_string),
                new_hash: doc.get_str("new_hash").unwrap_or_default().to_string(),
                accepted: doc.get_bool("accepted").unwrap_or(false),
                reason: doc.get_str("reason").ok().map(str::to_string),
            });
        }
        Ok(reloads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("mongodb://user:secret@db:27017/?replicaSet=rs0"),
            "mongodb://…@db:27017/?replicaSet=rs0"
        );
        assert_eq!(redact("mongodb://db:27017"), "mongodb://db:27017");
    }
}
