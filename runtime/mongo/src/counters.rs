//! The counters' layout: one delta document per slice of events, folded later into bucket documents.
//!
//! A counter group is one granularity × dimension × time bucket (the hour starting 15:00, `repo`). Its keys'
//! counts are kept as parallel arrays `keys` and `counts` (keys such as repository names hold dots, which field
//! names could not), in two collections:
//! - `counter_deltas`: what one slice of events added, inserted in the slice's own transaction, so a slice's
//!   counts are stored with its events or not at all, and a redelivered event (skipped as a duplicate) adds
//!   nothing. A slice writes one delta per [`Class`] of dimensions, holding all the groups it touched.
//! - `counters`: each group's folded counts, in pages of up to [`PAGE_KEYS`] keys in key order (`_id` is
//!   `granularity/dimension/bucket/page`); page 0 also holds how many pages and keys the group has.
//!
//! A fold moves a class's deltas into the pages of the groups they touch in one transaction: it reads the
//! deltas and those pages, writes the merged pages and deletes exactly the deltas it read, so every count is in
//! one place at any time, and two folders racing conflict and one runs again. Readers read the pages of the
//! groups asked for and the pending deltas of their class in one snapshot, and add them up.
//!
//! Writers fold every [`FOLD_EVERY_SLICES`] slices. The few-keyed class (totals, types, languages, bots) is
//! folded every time; the many-keyed one (repositories, organisations, topics, types by language), whose
//! groups grow to hundreds of thousands of keys on a busy day, once its pending deltas hold at least a
//! [`FOLD_RATIO`]th as many entries as the pages a fold would rewrite, so that the work of a fold stays
//! proportional to what it folds.
//!
//! Setting counters (history imports) folds the class's deltas in the same transaction that writes the set
//! values, so a set value replaces whatever was counted before it.
//!
//! Stores written by earlier versions kept one document per counter in `aggregates`; [`MongoStore::connect`]
//! moves them into deltas (a transaction per chunk, the old documents deleted in the same transaction).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use forgecast_core::aggregate::{AggregateQuery, AggregateRow, Dimension, Granularity};
use forgecast_core::store::{StoreError, WriteOutcome};
use mongodb::bson::{Bson, Document, doc};
use mongodb::{ClientSession, Collection};

use super::{Failure, IDS_PER_LOOKUP, MongoStore, Slice, count_of, failed};

/// Keys in one page of a group: about 0.5-1 MB of document, well under MongoDB's 16 MB, even for the
/// repositories of a busy day.
const PAGE_KEYS: usize = 20_000;
/// Slices a writer stores between two folds.
const FOLD_EVERY_SLICES: usize = 32;
/// The many-keyed class is folded once its pending deltas hold at least 1/`FOLD_RATIO` as many entries as the
/// pages the fold rewrites hold keys: a fold then rewrites at most `FOLD_RATIO` keys per entry it folds.
const FOLD_RATIO: u64 = 4;
/// Legacy counter documents moved per transaction (few: some servers look up long `$in` lists slowly).
const LEGACY_PER_TRANSACTION: i64 = 500;

/// A counter group: granularity, dimension and bucket start.
pub(crate) type Group = (Granularity, Dimension, i64);

/// Counts by group, then key.
pub(crate) type GroupCounts = HashMap<Group, HashMap<String, i64>>;

/// Dimensions whose deltas are kept and folded together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Class {
    /// A handful of keys per group: everything, types, languages, bots, and the history's measures.
    Few,
    /// Up to one key per event: repositories, organisations, topics, types by language.
    Many,
}

impl Class {
    const ALL: [Class; 2] = [Class::Few, Class::Many];

    fn of(dimension: Dimension) -> Class {
        match dimension {
            Dimension::Repo | Dimension::Org | Dimension::Topic | Dimension::TypeLanguage => {
                Class::Many
            }
            _ => Class::Few,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Class::Few => "few",
            Class::Many => "many",
        }
    }
}

fn page_id((granularity, dimension, bucket): Group, page: i64) -> String {
    format!("{granularity}/{dimension}/{bucket}/{page}")
}

fn int(value: Option<&Bson>) -> Option<i64> {
    match value {
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        Some(Bson::Int64(n)) => Some(*n),
        _ => None,
    }
}

/// The group a page, a delta's group or a legacy counter belongs to.
fn group_of(doc: &Document) -> Option<Group> {
    Some((
        Granularity::parse(doc.get_str("granularity").ok()?)?,
        Dimension::parse(doc.get_str("dimension").ok()?)?,
        int(doc.get("bucket"))?,
    ))
}

/// Calls `each` with every (key, count) of a page or a delta's group.
fn for_each_count(doc: &Document, mut each: impl FnMut(&str, i64)) {
    let (Ok(keys), Ok(counts)) = (doc.get_array("keys"), doc.get_array("counts")) else {
        return;
    };
    for (key, count) in keys.iter().zip(counts) {
        if let Some(key) = key.as_str() {
            each(key, count_of(Some(count)) as i64);
        }
    }
}

/// Calls `each` with every group of a delta and its part of the delta.
fn for_each_group(delta: &Document, mut each: impl FnMut(Group, &Document)) {
    for part in delta.get_array("groups").into_iter().flatten() {
        if let Some(part) = part.as_document()
            && let Some(group) = group_of(part)
        {
            each(group, part);
        }
    }
}

/// The delta documents of one slice's counts: one per class that has any.
pub(crate) fn delta_documents(counts: GroupCounts) -> Vec<Document> {
    let mut by_class: BTreeMap<Class, (Vec<Document>, Vec<String>, i64)> = BTreeMap::new();
    for ((granularity, dimension, bucket), counts) in counts {
        let (keys, counts): (Vec<String>, Vec<i64>) = counts.into_iter().unzip();
        let (parts, touched, entries) = by_class.entry(Class::of(dimension)).or_default();
        *entries += keys.len() as i64;
        touched.push(page_id((granularity, dimension, bucket), 0));
        parts.push(doc! {
            "granularity": granularity.as_str(),
            "dimension": dimension.as_str(),
            "bucket": bucket,
            "keys": keys,
            "counts": counts,
        });
    }
    by_class
        .into_iter()
        .map(|(class, (parts, touched, entries))| {
            doc! {
                "class": class.as_str(),
                "n": entries,
                // The first page of every group touched, so a folder knows what it would rewrite without
                // reading the counts.
                "touched": touched,
                "groups": parts,
            }
        })
        .collect()
}

/// The pages of a group holding `counts`, in key order.
fn pages_of(group: Group, counts: &BTreeMap<String, i64>) -> Vec<Document> {
    let entries: Vec<(&String, &i64)> = counts.iter().collect();
    let pages = entries.len().div_ceil(PAGE_KEYS).max(1);
    let (granularity, dimension, bucket) = group;
    entries
        .chunks(PAGE_KEYS)
        .enumerate()
        .map(|(page, chunk)| {
            let mut doc = doc! {
                "_id": page_id(group, page as i64),
                "granularity": granularity.as_str(),
                "dimension": dimension.as_str(),
                "bucket": bucket,
                "page": page as i64,
            };
            if page == 0 {
                doc.insert("pages", pages as i64);
                doc.insert("total", counts.len() as i64);
            }
            doc.insert(
                "keys",
                chunk.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            );
            doc.insert("counts", chunk.iter().map(|(_, n)| **n).collect::<Vec<_>>());
            doc
        })
        .collect()
}

/// One fold: the deltas of a class seen when it was planned (those another writer folded meanwhile are
/// skipped), and the counts to set.
#[derive(Debug)]
pub(crate) struct Fold {
    deltas: Vec<Bson>,
    sets: BTreeMap<Group, Vec<(String, u64)>>,
}

/// A class's pending deltas: their ids, the entries they hold and the first pages of the groups they touch.
#[derive(Debug, Default)]
struct Pending {
    ids: Vec<Bson>,
    entries: u64,
    touched: BTreeSet<String>,
}

/// The documents of `collection` with these `_id`s, in the session's transaction.
async fn by_id(
    session: &mut ClientSession,
    collection: &Collection<Document>,
    ids: &[Bson],
) -> Result<Vec<Document>, Failure> {
    let mut found = Vec::new();
    for chunk in ids.chunks(IDS_PER_LOOKUP) {
        let mut cursor = collection
            .find(doc! { "_id": { "$in": chunk } })
            .session(&mut *session)
            .await?;
        while let Some(doc) = cursor.next(&mut *session).await {
            found.push(doc?);
        }
    }
    Ok(found)
}

impl MongoStore {
    pub(crate) fn counter_pages(&self) -> Collection<Document> {
        self.db.collection("counters")
    }

    pub(crate) fn counter_deltas(&self) -> Collection<Document> {
        self.db.collection("counter_deltas")
    }

    /// Counts slices written by this handle's clones and folds once [`FOLD_EVERY_SLICES`] have gathered, unless
    /// another task of this process is folding. A fold that fails leaves the deltas where they are (they are
    /// read and counted as they are) and is tried again after the next slices.
    pub(crate) async fn slices_written(&self, slices: usize) {
        let due = self.slices_unfolded.fetch_add(slices, Ordering::Relaxed) + slices;
        if due < FOLD_EVERY_SLICES || self.folding.swap(true, Ordering::Acquire) {
            return;
        }
        self.slices_unfolded.store(0, Ordering::Relaxed);
        if let Err(e) = self.fold(false).await {
            tracing::warn!(component = "store", error = %e, "Folding counter deltas failed; they stay pending and are read as they are.");
        }
        self.folding.store(false, Ordering::Release);
    }

    /// Folds every pending counter delta into the counters' pages; returns the deltas folded. Writers fold as
    /// they go (see the module's documentation); this folds what they left pending too.
    pub async fn fold_pending(&self) -> Result<u64, StoreError> {
        self.fold(true).await
    }

    async fn fold(&self, all: bool) -> Result<u64, StoreError> {
        let mut folded = 0;
        for class in Class::ALL {
            let pending = self.pending_deltas(class).await?;
            if pending.ids.is_empty() {
                continue;
            }
            if class == Class::Many && !all {
                let rewritten = self.folded_keys(&pending.touched).await?;
                if pending.entries * FOLD_RATIO < rewritten {
                    continue;
                }
            }
            folded += pending.ids.len() as u64;
            let fold = Fold {
                deltas: pending.ids,
                sets: BTreeMap::new(),
            };
            self.write_slice(Slice::Fold(&fold, "fold_counters"))
                .await?;
        }
        Ok(folded)
    }

    /// The pending deltas of `class`, without their counts.
    async fn pending_deltas(&self, class: Class) -> Result<Pending, StoreError> {
        let err = failed("fold_counters");
        let mut pending = Pending::default();
        let mut cursor = self
            .counter_deltas()
            .find(doc! { "class": class.as_str() })
            .projection(doc! { "n": 1, "touched": 1 })
            .await
            .map_err(&err)?;
        while cursor.advance().await.map_err(&err)? {
            let delta: Document = cursor.deserialize_current().map_err(&err)?;
            let Some(id) = delta.get("_id") else {
                continue;
            };
            pending.ids.push(id.clone());
            pending.entries += int(delta.get("n")).unwrap_or(0).max(0) as u64;
            for page in delta.get_array("touched").into_iter().flatten() {
                if let Some(page) = page.as_str() {
                    pending.touched.insert(page.to_string());
                }
            }
        }
        Ok(pending)
    }

    /// The keys the groups of these first pages hold, together.
    async fn folded_keys(&self, first_pages: &BTreeSet<String>) -> Result<u64, StoreError> {
        let err = failed("fold_counters");
        let ids: Vec<&String> = first_pages.iter().collect();
        let mut keys = 0;
        for chunk in ids.chunks(IDS_PER_LOOKUP) {
            let mut cursor = self
                .counter_pages()
                .find(doc! { "_id": { "$in": chunk } })
                .projection(doc! { "total": 1 })
                .await
                .map_err(&err)?;
            while cursor.advance().await.map_err(&err)? {
                let page: Document = cursor.deserialize_current().map_err(&err)?;
                keys += int(page.get("total")).unwrap_or(0).max(0) as u64;
            }
        }
        Ok(keys)
    }

    /// Sets counters: in one transaction per class, the class's pending deltas are folded and the rows'
    /// counts replace what their groups held for those keys.
    pub(crate) async fn set_counters(&self, rows: Vec<AggregateRow>) -> Result<(), StoreError> {
        let mut sets: BTreeMap<Class, BTreeMap<Group, Vec<(String, u64)>>> = BTreeMap::new();
        for row in rows {
            sets.entry(Class::of(row.dimension))
                .or_default()
                .entry((row.granularity, row.dimension, row.bucket))
                .or_default()
                .push((row.key, row.count));
        }
        for (class, sets) in sets {
            let pending = self.pending_deltas(class).await?;
            let fold = Fold {
                deltas: pending.ids,
                sets,
            };
            self.write_slice(Slice::Fold(&fold, "put_counters")).await?;
        }
        Ok(())
    }

    /// One fold's transaction: read the deltas and the pages of the groups they touch (and of those set), write
    /// the merged pages, delete the deltas read.
    pub(crate) async fn fold_in(
        &self,
        session: &mut ClientSession,
        fold: &Fold,
    ) -> Result<WriteOutcome, Failure> {
        // The deltas still there: one another writer folded meanwhile is gone from this snapshot (or, if it
        // was folded after the snapshot, deleting it here conflicts and the transaction runs again).
        let mut merged: BTreeMap<Group, BTreeMap<String, i64>> = BTreeMap::new();
        let mut folded: Vec<Bson> = Vec::new();
        for delta in by_id(session, &self.counter_deltas(), &fold.deltas).await? {
            for_each_group(&delta, |group, part| {
                let counts = merged.entry(group).or_default();
                for_each_count(part, |key, n| {
                    *counts.entry(key.to_string()).or_default() += n
                });
            });
            if let Some(id) = delta.get("_id") {
                folded.push(id.clone());
            }
        }
        for group in fold.sets.keys() {
            merged.entry(*group).or_default();
        }
        // The pages of those groups as this snapshot has them: page 0 says how many there are.
        let first: Vec<Bson> = merged.keys().map(|g| page_id(*g, 0).into()).collect();
        let mut pages = by_id(session, &self.counter_pages(), &first).await?;
        let more: Vec<Bson> = pages
            .iter()
            .filter_map(|page| Some((group_of(page)?, int(page.get("pages"))?)))
            .flat_map(|(group, pages)| (1..pages).map(move |n| page_id(group, n).into()))
            .collect();
        pages.extend(by_id(session, &self.counter_pages(), &more).await?);
        for page in &pages {
            if let Some(counts) = group_of(page).and_then(|g| merged.get_mut(&g)) {
                for_each_count(page, |key, n| {
                    *counts.entry(key.to_string()).or_default() += n
                });
            }
        }
        for (group, sets) in &fold.sets {
            let counts = merged.entry(*group).or_default();
            for (key, n) in sets {
                counts.insert(key.clone(), *n as i64);
            }
        }
        let old: Vec<&Bson> = pages.iter().filter_map(|p| p.get("_id")).collect();
        for chunk in old.chunks(IDS_PER_LOOKUP) {
            self.counter_pages()
                .delete_many(doc! { "_id": { "$in": chunk } })
                .session(&mut *session)
                .await?;
        }
        let new: Vec<Document> = merged
            .iter()
            .filter(|(_, counts)| !counts.is_empty())
            .flat_map(|(group, counts)| pages_of(*group, counts))
            .collect();
        if !new.is_empty() {
            self.counter_pages()
                .insert_many(new)
                .session(&mut *session)
                .await?;
        }
        for chunk in folded.chunks(IDS_PER_LOOKUP) {
            self.counter_deltas()
                .delete_many(doc! { "_id": { "$in": chunk } })
                .session(&mut *session)
                .await?;
        }
        Ok(WriteOutcome {
            inserted: folded.len() as u64,
            duplicates: 0,
        })
    }

    /// The counters `query` asks for, by bucket and key: the pages and the pending deltas read in one snapshot,
    /// so that a fold committing meanwhile is seen whole or not at all.
    pub(crate) async fn read_counters(
        &self,
        query: &AggregateQuery,
    ) -> Result<BTreeMap<(i64, String), u64>, StoreError> {
        self.transaction(query, |store, session, query| {
            Box::pin(store.read_in(session, query))
        })
        .await
        .map_err(|e| e.during("aggregates"))
    }

    async fn read_in(
        &self,
        session: &mut ClientSession,
        query: &AggregateQuery,
    ) -> Result<BTreeMap<(i64, String), u64>, Failure> {
        let mut counts: BTreeMap<(i64, String), i64> = BTreeMap::new();
        let wanted = |g: Group| {
            g.0 == query.granularity
                && g.1 == query.dimension
                && (query.from..query.to).contains(&g.2)
        };
        let mut add = |bucket: i64, part: &Document| {
            for_each_count(part, |key, n| {
                *counts.entry((bucket, key.to_string())).or_default() += n
            })
        };
        let mut cursor = self
            .counter_pages()
            .find(doc! {
                "granularity": query.granularity.as_str(),
                "dimension": query.dimension.as_str(),
                "bucket": { "$gte": query.from, "$lt": query.to },
            })
            .projection(doc! { "bucket": 1, "keys": 1, "counts": 1 })
            .session(&mut *session)
            .await?;
        while let Some(page) = cursor.next(&mut *session).await {
            let page = page?;
            if let Some(bucket) = int(page.get("bucket")) {
                add(bucket, &page);
            }
        }
        let mut cursor = self
            .counter_deltas()
            .find(doc! { "class": Class::of(query.dimension).as_str() })
            .projection(doc! { "groups": 1 })
            .session(&mut *session)
            .await?;
        while let Some(delta) = cursor.next(&mut *session).await {
            for_each_group(&delta?, |group, part| {
                if wanted(group) {
                    add(group.2, part);
                }
            });
        }
        Ok(counts
            .into_iter()
            .map(|(at, n)| (at, n.max(0) as u64))
            .collect())
    }

    /// Moves the one-document-per-counter layout of earlier versions (`aggregates`) into deltas, a transaction
    /// per chunk, the old documents deleted in the chunk's transaction; returns the counters moved.
    pub(crate) async fn migrate_legacy_counters(&self) -> Result<u64, StoreError> {
        let mut moved = 0;
        loop {
            let outcome = self.write_slice(Slice::Legacy).await?;
            if outcome.inserted == 0 {
                return Ok(moved);
            }
            moved += outcome.inserted;
        }
    }

    pub(crate) async fn legacy_in(
        &self,
        session: &mut ClientSession,
    ) -> Result<WriteOutcome, Failure> {
        let legacy = self.db.collection::<Document>("aggregates");
        let mut cursor = legacy
            .find(doc! {})
            .limit(LEGACY_PER_TRANSACTION)
            .session(&mut *session)
            .await?;
        let mut counts: GroupCounts = HashMap::new();
        let mut ids: Vec<Bson> = Vec::new();
        while let Some(doc) = cursor.next(&mut *session).await {
            let doc = doc?;
            if let Some(id) = doc.get("_id") {
                ids.push(id.clone());
            }
            if let (Some(group), Ok(key)) = (group_of(&doc), doc.get_str("key")) {
                *counts
                    .entry(group)
                    .or_default()
                    .entry(key.to_string())
                    .or_default() += count_of(doc.get("count")) as i64;
            }
        }
        if ids.is_empty() {
            return Ok(WriteOutcome::default());
        }
        if !counts.is_empty() {
            self.counter_deltas()
                .insert_many(delta_documents(counts))
                .session(&mut *session)
                .await?;
        }
        for chunk in ids.chunks(IDS_PER_LOOKUP) {
            legacy
                .delete_many(doc! { "_id": { "$in": chunk } })
                .session(&mut *session)
                .await?;
        }
        Ok(WriteOutcome {
            inserted: ids.len() as u64,
            duplicates: 0,
        })
    }
}
