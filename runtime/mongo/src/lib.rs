//! The MongoDB store: the same contract as the embedded store, on MongoDB through the official driver.
//!
//! Modules: this file holds the connection, the indexes and the transaction machinery every part shares;
//! `store` the `Store` trait (events, dead letters, repositories, reloads); `counters` the counters' layout
//! (per-slice deltas folded into bucket documents); `registry` the model registry, `predictions` predictions
//! and their label counters, `outcomes` the streaming model's state.
//!
//! Collections (indexes are created at start-up): `events` (`_id` is GitHub's event id, the raw JSON line
//! kept whole), `counter_deltas` and `counters` (see `counters`), `repos` (`_id` is the full name),
//! `dead_letters` (`_id` is a hash of the content, so a dead letter delivered twice is kept once),
//! `script_reloads`, and for the model layer `models` (with `model_artifacts`; see `registry`), `predictions` and
//! `label_counts` (see `predictions`), `outcome_pending`, `outcome_learners` and `evaluations` (see `outcomes`), and
//! `drift`.
//!
//! Writing events is one multi-document transaction per slice of [`TRANSACTION_EVENTS`] events: insert them
//! and the deltas of their counters (see `counters`), taking every event as new; a stored one aborts the
//! transaction on its duplicate key and the slice is written again after looking up which ids are stored. A
//! transaction that fails (a conflict with another writer storing the same event, a database that went away)
//! leaves nothing behind and the write is retried, so redelivered events change nothing and a crash loses
//! nothing. MongoDB runs transactions on a replica set (a single-node one is enough); the connection refuses a
//! standalone server at start-up with that explanation.

mod counters;
mod outcomes;
mod predictions;
mod registry;
mod stars;
mod store;

pub use store::event_document;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use forgecast_core::Event;
use forgecast_core::backoff::Backoff;
use forgecast_core::predictions::StoredPrediction;
use forgecast_core::store::{StoreError, WriteOutcome};
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
    /// Slices written since the last fold of counter deltas (see `counters`).
    slices_unfolded: Arc<AtomicUsize>,
    /// Whether a task of this process is folding counter deltas.
    folding: Arc<AtomicBool>,
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

    /// Whether a unique index refused a document: for events, one stored already.
    fn duplicate(&self) -> bool {
        use mongodb::error::{ErrorKind, WriteFailure};
        let Failure::Driver(e) = self else {
            return false;
        };
        match &*e.kind {
            ErrorKind::InsertMany(failure) => failure
                .write_errors
                .iter()
                .flatten()
                .any(|w| w.code == DUPLICATE_KEY),
            ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
            ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
            _ => false,
        }
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
            slices_unfolded: Arc::new(AtomicUsize::new(0)),
            folding: Arc::new(AtomicBool::new(false)),
        };
        store
            .create_indexes()
            .await
            .map_err(|e| open_failed(e.to_string()))?;
        let moved = store
            .migrate_legacy_counters()
            .await
            .map_err(|e| open_failed(e.to_string()))?;
        if moved > 0 {
            tracing::info!(
                component = "store",
                counters = moved,
                "Moved the counters of an earlier version into counter deltas."
            );
        }
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
        // Earlier versions indexed events by time, which no reader uses and which cost inserting events about
        // 40 % of their rate on SecantusDB: the index is dropped where it exists.
        let events_indexes = self.events().list_index_names().await.unwrap_or_default();
        if events_indexes.iter().any(|name| name == "created_at_1") {
            self.events().drop_index("created_at_1").await?;
        }
        self.counter_pages()
            .create_index(index(
                doc! { "granularity": 1, "dimension": 1, "bucket": 1 },
                false,
            ))
            .await?;
        self.counter_deltas()
            .create_index(index(doc! { "class": 1 }, false))
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
            let repo = store::repo_meta(&doc);
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

    fn repos(&self) -> Collection<Document> {
        self.db.collection("repos")
    }

    fn dead_letters(&self) -> Collection<Document> {
        self.db.collection("dead_letters")
    }

    fn reloads(&self) -> Collection<Document> {
        self.db.collection("script_reloads")
    }

    /// Stores one slice of events or predictions (or folds counters) in one transaction, run again while the
    /// server says it may succeed then.
    async fn write_slice(&self, slice: Slice<'_>) -> Result<WriteOutcome, StoreError> {
        let operation = match slice {
            Slice::Events(..) => "write_events",
            Slice::Predictions(_) => "write_predictions",
            Slice::Fold(_, operation) => operation,
            Slice::Legacy => "move_legacy_counters",
        };
        let write: Body<Slice<'_>, WriteOutcome> = |store, session, slice| {
            Box::pin(async move {
                match *slice {
                    Slice::Events(events, look_up) => {
                        store.write_in(session, events, look_up).await
                    }
                    Slice::Predictions(predictions) => {
                        store.predictions_in(session, predictions).await
                    }
                    Slice::Fold(fold, _) => store.fold_in(session, fold).await,
                    Slice::Legacy => store.legacy_in(session).await,
                }
            })
        };
        match (self.transaction(&slice, write).await, slice) {
            // Some events were stored already: the same slice again, looking them up.
            (Err(e), Slice::Events(events, false)) if e.duplicate() => {
                self.transaction(&Slice::Events(events, true), write).await
            }
            (result, _) => result,
        }
        .map_err(|e| e.during(operation))
    }

    /// Runs `body` on `input` in a transaction of a session of its own and commits it; runs it again, after a
    /// short backoff, while the server says a transient failure may succeed then (up to
    /// [`TRANSACTION_ATTEMPTS`] in all). A failure is the caller's to name.
    async fn transaction<I: Sync + ?Sized, T>(
        &self,
        input: &I,
        body: Body<I, T>,
    ) -> Result<T, Failure> {
        let mut attempt = 1;
        loop {
            let mut session = self.client.start_session().await?;
            session.start_transaction().await?;
            let result = match body(self, &mut session, input).await {
                Ok(value) => commit(&mut session).await.map(|()| value),
                Err(e) => {
                    let _ = session.abort_transaction().await;
                    Err(e)
                }
            };
            match result {
                Err(e) if e.transient() && attempt < TRANSACTION_ATTEMPTS => {
                    tracing::debug!(component = "store", attempt, error = ?e, "Transaction conflicted; running it again.");
                    tokio::time::sleep(CONFLICT_BACKOFF.wait(attempt)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
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
/// What a transaction does with its session ([`MongoStore::transaction`]).
type Body<I, T> = for<'s> fn(
    &'s MongoStore,
    &'s mut ClientSession,
    &'s I,
) -> Pin<Box<dyn Future<Output = Result<T, Failure>> + Send + 's>>;

#[derive(Clone, Copy)]
enum Slice<'a> {
    /// Events, with their counters; whether to look up which are stored first (see `MongoStore::write_in`).
    Events(&'a [&'a Event], bool),
    /// Predictions, with their label counters.
    Predictions(&'a [StoredPrediction]),
    /// Counter deltas folded into their groups' pages (and counters set), for the operation named.
    Fold(&'a counters::Fold, &'static str),
    /// A chunk of the counters of an earlier version's layout, moved into deltas.
    Legacy,
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
