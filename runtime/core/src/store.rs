//! The store: events, their counters, dead letters and the record of script reloads.

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;

use crate::aggregate::{AggregateQuery, AggregateRow};
use crate::event::Event;
use crate::topic::DeadLetter;

/// Why the store refused an operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened or prepared at start-up.
    #[error("cannot open the store at {location}: {reason}")]
    Open {
        /// Path or URI.
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// An operation failed; it may be retried, nothing was half-applied.
    #[error("store operation `{operation}` failed: {reason}")]
    Operation {
        /// The store method.
        operation: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// What one [`Store::write_events`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Events stored for the first time (and counted).
    pub inserted: u64,
    /// Events the store already held (ignored, not counted again).
    pub duplicates: u64,
}

/// One script reload decision, kept for the dashboard and audits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptReload {
    /// Unix seconds.
    pub at: i64,
    /// Script id such as `routing` or `features/issue_outcome`.
    pub script: String,
    /// Content hash of the version that was live before.
    pub old_hash: Option<String>,
    /// Content hash of the version considered.
    pub new_hash: String,
    /// Whether it went live.
    pub accepted: bool,
    /// Why it was refused, with file, line and column where known.
    pub reason: Option<String>,
}

/// What the store keeps of a repository, fetched from GitHub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoMeta {
    /// Full name, `owner/name`.
    pub name: String,
    /// Whether GitHub knows it (a 404 is remembered too, so it is not asked again and again).
    pub found: bool,
    /// Main language.
    pub language: Option<String>,
    /// Topics.
    pub topics: Vec<String>,
    /// Stars.
    pub stars: u64,
    /// ETag of the answer, for conditional refreshes.
    pub etag: Option<String>,
    /// When it was fetched or confirmed unchanged, Unix seconds.
    pub fetched_at: i64,
}

/// Persistent state of the pipeline.
pub trait Store: Send + Sync + 'static {
    /// Stores events not seen before (by event id) and increments their counters, atomically per batch:
    /// writing the same event again changes nothing.
    fn write_events(
        &self,
        events: Vec<Arc<Event>>,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// Sets counters to the given values (imports of history computed elsewhere); setting the same rows again
    /// changes nothing.
    fn put_counters(
        &self,
        rows: Vec<AggregateRow>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The cached metadata of these repositories (those the store has).
    fn repo_meta(
        &self,
        names: Vec<String>,
    ) -> impl Future<Output = Result<Vec<RepoMeta>, StoreError>> + Send;

    /// Caches repository metadata; events stored later are counted under the repository's language.
    fn put_repo_meta(
        &self,
        repos: Vec<RepoMeta>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Keeps dead letters for inspection and replay.
    fn write_dead_letters(
        &self,
        letters: Vec<Arc<DeadLetter>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Keeps a script reload decision.
    fn record_reload(
        &self,
        reload: ScriptReload,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads counters, ordered by bucket then key.
    fn aggregates(
        &self,
        query: AggregateQuery,
    ) -> impl Future<Output = Result<Vec<AggregateRow>, StoreError>> + Send;

    /// Number of events stored, without counting them one by one (the day counters of all events say it).
    fn event_count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Number of dead letters stored.
    fn dead_letter_count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The most recent reload decisions, newest first.
    fn recent_reloads(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ScriptReload>, StoreError>> + Send;
}
