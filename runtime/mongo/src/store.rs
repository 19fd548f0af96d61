//! The `Store` trait on MongoDB: events with their counter deltas (one transaction per slice), dead letters,
//! the repository cache and script reloads; counters are read and set through `counters`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use forgecast_core::aggregate::{
    AggregateQuery, AggregateRow, Dimension, Granularity, RepoFacts, for_each_counter_as,
};
use forgecast_core::store::{RepoMeta, ScriptReload, Store, StoreError, WriteOutcome};
use forgecast_core::time::now_unix;
use forgecast_core::{DeadLetter, Event};
use mongodb::ClientSession;
use mongodb::bson::{Document, doc};

use super::counters::{GroupCounts, delta_documents};
use super::{
    DUPLICATE_KEY, Failure, IDS_PER_LOOKUP, MongoStore, Slice, TRANSACTION_EVENTS, count_of,
    failed, refusals,
};

impl MongoStore {
    /// Writes one slice of events inside the session's transaction: the events not stored yet, and the deltas
    /// of exactly their counters. Without `look_up`, every event is taken as new: a stored one makes the insert
    /// fail with a duplicate key and the transaction abort, and the slice is then written again looking up
    /// which events are stored. Events are new far more often than not, and the look-up costs the server about
    /// a tenth of a slice.
    pub(crate) async fn write_in(
        &self,
        session: &mut ClientSession,
        events: &[&Event],
        look_up: bool,
    ) -> Result<WriteOutcome, Failure> {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let mut stored: HashSet<String> = HashSet::new();
        for chunk in ids.chunks(IDS_PER_LOOKUP).filter(|_| look_up) {
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
        let docs: Vec<Document> = new.iter().map(|e| event_document(e)).collect();
        self.events()
            .insert_many(docs)
            .session(&mut *session)
            .await?;
        let mut counts: GroupCounts = HashMap::new();
        for event in &new {
            let repo = facts
                .get(&event.repo)
                .map(|(language, topics)| RepoFacts {
                    language: language.as_deref(),
                    topics,
                })
                .unwrap_or_default();
            for_each_counter_as(event, repo, |k| {
                *counts
                    .entry((k.granularity, k.dimension, k.bucket))
                    .or_default()
                    .entry(k.key.into_owned())
                    .or_default() += 1
            });
        }
        self.counter_deltas()
            .insert_many(delta_documents(counts))
            .session(&mut *session)
            .await?;
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
}

/// An event as the `events` collection holds it: `_id` is GitHub's event id, the raw line is kept whole beside
/// the fields the store's readers use.
pub fn event_document(e: &Event) -> Document {
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
}

/// A cached repository as `repos` holds it.
pub(crate) fn repo_meta(doc: &Document) -> RepoMeta {
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
            let outcome = self.write_slice(Slice::Events(slice, false)).await?;
            total.inserted += outcome.inserted;
            total.duplicates += outcome.duplicates;
        }
        self.slices_written(events.len().div_ceil(TRANSACTION_EVENTS))
            .await;
        Ok(total)
    }

    async fn put_counters(&self, rows: Vec<AggregateRow>) -> Result<(), StoreError> {
        self.set_counters(rows).await
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
        let counts = self.read_counters(&q).await?;
        Ok(counts
            .into_iter()
            .map(|((bucket, key), count)| AggregateRow {
                granularity: q.granularity,
                dimension: q.dimension,
                bucket,
                key,
                count,
            })
            .collect())
    }

    async fn event_count(&self) -> Result<u64, StoreError> {
        // The day counters of all events, whose deltas each event's transaction writes: a few documents per
        // day read, not the whole collection counted (the live view asks on every refresh).
        let all_days = AggregateQuery {
            granularity: Granularity::Day,
            dimension: Dimension::All,
            from: i64::MIN,
            to: i64::MAX,
        };
        Ok(self.read_counters(&all_days).await?.values().sum())
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
