//! Predictions in MongoDB: `predictions` holds one document per event, model and version (`_id` =
//! `model/version/event`), `label_counts` the label counters (unique on model, granularity, scope, bucket, key
//! and label). Like events, predictions are written in transactions of a slice each: look up which are kept and
//! which events their model scored already, insert the others, count the events scored for the first time.

use std::collections::{HashMap, HashSet};

use forgecast_core::aggregate::Granularity;
use forgecast_core::predictions::{
    LabelQuery, LabelRow, PredictionStore, Scope, StoredPrediction, for_each_label_counter,
};
use forgecast_core::store::{StoreError, WriteOutcome};
use mongodb::ClientSession;
use mongodb::bson::{Bson, Document, doc};

use super::{Failure, IDS_PER_LOOKUP, MongoStore, Slice, TRANSACTION_EVENTS, count_of, failed};

fn prediction_id(p: &StoredPrediction) -> String {
    format!("{}/{}/{}", p.model, p.version, p.event_id)
}

fn int(doc: &Document, key: &str) -> Option<i64> {
    match doc.get(key) {
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        Some(Bson::Int64(n)) => Some(*n),
        _ => None,
    }
}

fn prediction_of(model: &str, doc: &Document) -> StoredPrediction {
    let text = |key: &str| doc.get_str(key).unwrap_or_default().to_string();
    let optional = |key: &str| doc.get_str(key).ok().map(str::to_string);
    let scores = doc
        .get_document("scores")
        .map(|s| {
            s.iter()
                .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default();
    StoredPrediction {
        event_id: text("event_id"),
        model: model.to_string(),
        version: int(doc, "version").unwrap_or_default() as u32,
        label: text("label"),
        scores,
        at: int(doc, "at").unwrap_or_default(),
        repo: text("repo"),
        org: optional("org"),
        language: optional("language"),
        excerpt: text("excerpt"),
    }
}

impl MongoStore {
    fn predictions(&self) -> mongodb::Collection<Document> {
        self.db.collection("predictions")
    }

    /// Writes one slice of predictions inside the session's transaction.
    pub(crate) async fn predictions_in(
        &self,
        session: &mut ClientSession,
        predictions: &[StoredPrediction],
    ) -> Result<WriteOutcome, Failure> {
        let mut kept: HashSet<String> = HashSet::new();
        let mut scored: HashSet<(String, String)> = HashSet::new();
        let mut by_model: HashMap<&str, Vec<&str>> = HashMap::new();
        for p in predictions {
            by_model.entry(&p.model).or_default().push(&p.event_id);
        }
        for (model, ids) in by_model {
            for chunk in ids.chunks(IDS_PER_LOOKUP) {
                let mut cursor = self
                    .predictions()
                    .find(doc! { "model": model, "event_id": { "$in": chunk } })
                    .projection(doc! { "_id": 1, "event_id": 1 })
                    .session(&mut *session)
                    .await?;
                while let Some(found) = cursor.next(&mut *session).await {
                    let found = found?;
                    if let (Ok(id), Ok(event)) = (found.get_str("_id"), found.get_str("event_id")) {
                        kept.insert(id.to_string());
                        scored.insert((model.to_string(), event.to_string()));
                    }
                }
            }
        }
        let mut outcome = WriteOutcome::default();
        let mut docs = Vec::new();
        let mut counters: HashMap<(&str, Granularity, Scope, i64, &str, &str), i64> =
            HashMap::new();
        for p in predictions {
            let id = prediction_id(p);
            if !kept.insert(id.clone()) {
                outcome.duplicates += 1;
                continue;
            }
            outcome.inserted += 1;
            if scored.insert((p.model.clone(), p.event_id.clone())) {
                for_each_label_counter(p, |k| {
                    *counters
                        .entry((&p.model, k.granularity, k.scope, k.bucket, k.key, k.label))
                        .or_default() += 1
                });
            }
            let scores: Document = p
                .scores
                .iter()
                .map(|(k, v)| (k.clone(), Bson::Double(*v)))
                .collect();
            docs.push(doc! {
                "_id": id,
                "model": &p.model,
                "event_id": &p.event_id,
                "version": i64::from(p.version),
                "label": &p.label,
                "scores": scores,
                "at": p.at,
                "repo": &p.repo,
                "org": p.org.as_deref(),
                "language": p.language.as_deref(),
                "excerpt": &p.excerpt,
            });
        }
        if docs.is_empty() {
            return Ok(outcome);
        }
        self.predictions()
            .insert_many(docs)
            .session(&mut *session)
            .await?;
        let updates =
            counters
                .into_iter()
                .map(|((model, granularity, scope, bucket, key, label), n)| {
                    doc! {
                        "q": {
                            "model": model,
                            "granularity": granularity.as_str(),
                            "scope": scope.as_str(),
                            "bucket": bucket,
                            "key": key,
                            "label": label,
                        },
                        "u": { "$inc": { "count": n } },
                        "upsert": true,
                    }
                });
        self.update(Some(session), "label_counts", updates).await?;
        Ok(outcome)
    }
}

impl PredictionStore for MongoStore {
    async fn write_predictions(
        &self,
        predictions: Vec<StoredPrediction>,
    ) -> Result<WriteOutcome, StoreError> {
        let mut total = WriteOutcome::default();
        for slice in predictions.chunks(TRANSACTION_EVENTS) {
            let outcome = self.write_slice(Slice::Predictions(slice)).await?;
            total.inserted += outcome.inserted;
            total.duplicates += outcome.duplicates;
        }
        Ok(total)
    }

    async fn label_counts(&self, q: LabelQuery) -> Result<Vec<LabelRow>, StoreError> {
        let err = failed("label_counts");
        let mut filter = doc! {
            "model": &q.model,
            "granularity": q.granularity.as_str(),
            "scope": q.scope.as_str(),
            "bucket": { "$gte": q.from, "$lt": q.to },
        };
        if let Some(key) = &q.key {
            filter.insert("key", key);
        }
        let mut cursor = self
            .db
            .collection::<Document>("label_counts")
            .find(filter)
            .sort(doc! { "bucket": 1, "key": 1, "label": 1 })
            .await
            .map_err(&err)?;
        let mut rows = Vec::new();
        while cursor.advance().await.map_err(&err)? {
            let doc: Document = cursor.deserialize_current().map_err(&err)?;
            let Some(bucket) = int(&doc, "bucket") else {
                continue;
            };
            rows.push(LabelRow {
                bucket,
                key: doc.get_str("key").unwrap_or_default().to_string(),
                label: doc.get_str("label").unwrap_or_default().to_string(),
                count: count_of(doc.get("count")),
            });
        }
        Ok(rows)
    }

    async fn recent_predictions(
        &self,
        model: &str,
        label: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredPrediction>, StoreError> {
        let err = failed("recent_predictions");
        let mut filter = doc! { "model": model };
        if let Some(label) = label {
            filter.insert("label", label);
        }
        let mut cursor = self
            .predictions()
            .find(filter)
            .sort(doc! { "at": -1, "event_id": -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(&err)?;
        let mut found = Vec::new();
        while cursor.advance().await.map_err(&err)? {
            let doc: Document = cursor.deserialize_current().map_err(&err)?;
            found.push(prediction_of(model, &doc));
        }
        Ok(found)
    }

    async fn prediction_count(&self, model: &str) -> Result<u64, StoreError> {
        self.predictions()
            .count_documents(doc! { "model": model })
            .await
            .map_err(failed("prediction_count"))
    }
}
