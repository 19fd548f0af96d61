//! The streaming model's state in MongoDB: `outcome_pending` (`_id` = `model/issue`; `seq`, `resolved_at` and
//! `label` set once, in the transaction that resolves it), `outcome_learners` (`_id` = model) and
//! `evaluations` (`_id` = `model/version/first_seq`).

use std::collections::HashMap;

use forgecast_core::outcomes::{
    Decision, Drift, Evaluation, Opened, OutcomeStore, Resolution, Trigger,
};
use forgecast_core::store::{StoreError, WriteOutcome};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, doc};
use mongodb::{ClientSession, Collection};

use super::{Failure, MongoStore, failed};

fn int(doc: &Document, key: &str) -> Option<i64> {
    match doc.get(key) {
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        Some(Bson::Int64(n)) => Some(*n),
        _ => None,
    }
}

fn opened_of(doc: &Document) -> Opened {
    Opened {
        issue: doc.get_str("issue").unwrap_or_default().to_string(),
        event_id: doc.get_str("event_id").unwrap_or_default().to_string(),
        version: int(doc, "version").unwrap_or_default() as u32,
        probability: doc.get_f64("probability").unwrap_or_default(),
        opened_at: int(doc, "opened_at").unwrap_or_default(),
        features: doc.get_str("features").unwrap_or_default().to_string(),
    }
}

impl MongoStore {
    fn pending(&self) -> Collection<Document> {
        self.db.collection("outcome_pending")
    }

    async fn resolve_in(
        &self,
        session: &mut ClientSession,
        model: &str,
        closed: &[(String, i64)],
        now: i64,
        horizon: i64,
    ) -> Result<Vec<Resolution>, Failure> {
        let last = self
            .pending()
            .find_one(doc! { "model": model, "seq": { "$ne": Bson::Null } })
            .sort(doc! { "seq": -1 })
            .session(&mut *session)
            .await?;
        let mut next = last.and_then(|d| int(&d, "seq")).unwrap_or(0) as u64 + 1;
        let mut waiting: HashMap<String, Opened> = HashMap::new();
        let issues: Vec<&str> = closed.iter().map(|(i, _)| i.as_str()).collect();
        let mut cursor = self
            .pending()
            .find(doc! { "model": model, "issue": { "$in": issues }, "seq": Bson::Null })
            .session(&mut *session)
            .await?;
        while let Some(found) = cursor.next(&mut *session).await {
            let o = opened_of(&found?);
            waiting.insert(o.issue.clone(), o);
        }
        // (known at, issue, label): a close within the horizon at its time; a horizon passed at its end.
        let mut closing: HashMap<String, i64> = HashMap::new();
        for (issue, at) in closed {
            if let Some(o) = waiting.get(issue).filter(|o| *at <= o.opened_at + horizon) {
                let earliest = closing.entry(o.issue.clone()).or_insert(*at);
                *earliest = (*earliest).min(*at);
            }
        }
        let mut known: Vec<(i64, String, bool, Opened)> = closing
            .iter()
            .map(|(issue, at)| (*at, issue.clone(), true, waiting[issue].clone()))
            .collect();
        let mut cursor = self
            .pending()
            .find(doc! { "model": model, "seq": Bson::Null, "opened_at": { "$lt": now - horizon } })
            .session(&mut *session)
            .await?;
        while let Some(found) = cursor.next(&mut *session).await {
            let o = opened_of(&found?);
            if !closing.contains_key(&o.issue) {
                known.push((o.opened_at + horizon, o.issue.clone(), false, o));
            }
        }
        // Numbered in the order the labels became known, so that the learner learns them as they came.
        known.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let made: Vec<Resolution> = known
            .into_iter()
            .map(|(resolved_at, _, label, opened)| {
                let r = Resolution {
                    seq: next,
                    opened,
                    resolved_at,
                    label,
                };
                next += 1;
                r
            })
            .collect();
        let updates = made.iter().map(|r| {
            doc! {
                "q": { "_id": format!("{model}/{}", r.opened.issue), "seq": Bson::Null },
                "u": { "$set": { "seq": r.seq as i64, "resolved_at": r.resolved_at, "label": r.label } },
            }
        });
        self.update(Some(session), "outcome_pending", updates)
            .await?;
        Ok(made)
    }
}

impl OutcomeStore for MongoStore {
    async fn open_issues(
        &self,
        model: &str,
        opened: Vec<Opened>,
    ) -> Result<WriteOutcome, StoreError> {
        let mut outcome = WriteOutcome::default();
        for o in opened {
            let inserted = self
                .pending()
                .insert_one(doc! {
                    "_id": format!("{model}/{}", o.issue),
                    "model": model,
                    "issue": &o.issue,
                    "event_id": &o.event_id,
                    "version": i64::from(o.version),
                    "probability": o.probability,
                    "opened_at": o.opened_at,
                    "features": &o.features,
                    "seq": Bson::Null,
                })
                .await;
            match inserted {
                Ok(_) => outcome.inserted += 1,
                Err(e) if super::registry::duplicate(&e) => outcome.duplicates += 1,
                Err(e) => return Err(failed("open_issues")(e)),
            }
        }
        Ok(outcome)
    }

    async fn resolve(
        &self,
        model: &str,
        closed: Vec<(String, i64)>,
        now: i64,
        horizon: i64,
    ) -> Result<Vec<Resolution>, StoreError> {
        let mut session = self
            .client
            .start_session()
            .await
            .map_err(failed("resolve"))?;
        session
            .start_transaction()
            .await
            .map_err(failed("resolve"))?;
        match self
            .resolve_in(&mut session, model, &closed, now, horizon)
            .await
        {
            Ok(made) => {
                super::commit(&mut session)
                    .await
                    .map_err(|e| e.during("resolve"))?;
                Ok(made)
            }
            Err(e) => {
                let _ = session.abort_transaction().await;
                Err(e.during("resolve"))
            }
        }
    }

    async fn resolutions_after(
        &self,
        model: &str,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<Resolution>, StoreError> {
        let err = failed("resolutions_after");
        let mut cursor = self
            .pending()
            .find(doc! { "model": model, "seq": { "$gt": seq as i64 } })
            .sort(doc! { "seq": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(&err)?;
        let mut found = Vec::new();
        while cursor.advance().await.map_err(&err)? {
            let doc: Document = cursor.deserialize_current().map_err(&err)?;
            found.push(Resolution {
                seq: int(&doc, "seq").unwrap_or_default() as u64,
                opened: opened_of(&doc),
                resolved_at: int(&doc, "resolved_at").unwrap_or_default(),
                label: doc.get_bool("label").unwrap_or_default(),
            });
        }
        Ok(found)
    }

    async fn pending_count(&self, model: &str) -> Result<u64, StoreError> {
        self.pending()
            .count_documents(doc! { "model": model, "seq": Bson::Null })
            .await
            .map_err(failed("pending_count"))
    }

    async fn put_learner(
        &self,
        model: &str,
        state: Vec<u8>,
        through_seq: u64,
    ) -> Result<(), StoreError> {
        let state = Binary {
            subtype: BinarySubtype::Generic,
            bytes: state,
        };
        self.db
            .collection::<Document>("outcome_learners")
            .replace_one(
                doc! { "_id": model },
                doc! { "_id": model, "state": state, "through_seq": through_seq as i64 },
            )
            .upsert(true)
            .await
            .map(|_| ())
            .map_err(failed("put_learner"))
    }

    async fn learner(&self, model: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let found = self
            .db
            .collection::<Document>("outcome_learners")
            .find_one(doc! { "_id": model })
            .await
            .map_err(failed("learner"))?;
        Ok(found.and_then(|doc| {
            let state = match doc.get("state") {
                Some(Bson::Binary(b)) => b.bytes.clone(),
                _ => return None,
            };
            Some((state, int(&doc, "through_seq").unwrap_or_default() as u64))
        }))
    }

    async fn record_evaluation(&self, e: Evaluation) -> Result<(), StoreError> {
        let body = mongodb::bson::to_document(&e).map_err(|x| StoreError::Operation {
            operation: "record_evaluation",
            reason: x.to_string(),
        })?;
        let mut doc =
            doc! { "_id": format!("{}/{}/{}", e.model, e.version, e.first_seq), "at": e.to };
        doc.extend(body);
        self.db
            .collection::<Document>("evaluations")
            .replace_one(
                doc! { "_id": doc.get_str("_id").unwrap_or_default() },
                doc.clone(),
            )
            .upsert(true)
            .await
            .map(|_| ())
            .map_err(failed("record_evaluation"))
    }

    async fn evaluations(&self, model: &str) -> Result<Vec<Evaluation>, StoreError> {
        let err = failed("evaluations");
        let mut cursor = self
            .db
            .collection::<Document>("evaluations")
            .find(doc! { "model": model })
            .sort(doc! { "first_seq": 1, "version": 1 })
            .await
            .map_err(&err)?;
        let mut found = Vec::new();
        while cursor.advance().await.map_err(&err)? {
            let mut doc: Document = cursor.deserialize_current().map_err(&err)?;
            doc.remove("_id");
            doc.remove("at");
            if let Ok(e) = mongodb::bson::from_document(doc) {
                found.push(e);
            }
        }
        Ok(found)
    }

    async fn record_decision(&self, d: Decision) -> Result<(), StoreError> {
        // A window's decision and an alarm's at the same resolution are two decisions.
        let id = match d.trigger {
            Trigger::Window => format!("{}/{}", d.model, d.window),
            Trigger::Alarm => format!("{}/{}/alarm", d.model, d.window),
        };
        put_body(
            &self.db,
            "record_decision",
            "retrain_decisions",
            id,
            &d.model,
            d.window,
            serde_json::to_string(&d),
        )
        .await
    }

    async fn decisions(&self, model: &str) -> Result<Vec<Decision>, StoreError> {
        let found = bodies(&self.db, "decisions", "retrain_decisions", model).await?;
        // A record that no longer reads is left out.
        let mut decisions: Vec<Decision> = found
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect();
        Decision::in_order(&mut decisions);
        Ok(decisions)
    }

    async fn record_drift(&self, d: Drift) -> Result<(), StoreError> {
        let id = format!("{}/{}/{}", d.model, d.window, d.version);
        put_body(
            &self.db,
            "record_drift",
            "drift",
            id,
            &d.model,
            d.window,
            serde_json::to_string(&d),
        )
        .await
    }

    async fn drift(&self, model: &str) -> Result<Vec<Drift>, StoreError> {
        let found = bodies(&self.db, "drift", "drift", model).await?;
        Ok(found
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect())
    }
}

/// Keeps `record` as JSON in `collection` under `id`, with its model and window to find and sort it by; the
/// same id again replaces it.
async fn put_body(
    db: &mongodb::Database,
    operation: &'static str,
    collection: &str,
    id: String,
    model: &str,
    window: u64,
    record: Result<String, serde_json::Error>,
) -> Result<(), StoreError> {
    let body = record.map_err(|x| StoreError::Operation {
        operation,
        reason: x.to_string(),
    })?;
    db.collection::<Document>(collection)
        .replace_one(
            doc! { "_id": &id },
            doc! { "_id": &id, "model": model, "window": window as i64, "body": body },
        )
        .upsert(true)
        .await
        .map(|_| ())
        .map_err(failed(operation))
}

/// The JSON of the records of `model` kept by [`put_body`] in `collection`, by window then id.
async fn bodies(
    db: &mongodb::Database,
    operation: &'static str,
    collection: &str,
    model: &str,
) -> Result<Vec<String>, StoreError> {
    let err = failed(operation);
    let mut cursor = db
        .collection::<Document>(collection)
        .find(doc! { "model": model })
        .sort(doc! { "window": 1, "_id": 1 })
        .await
        .map_err(&err)?;
    let mut found = Vec::new();
    while cursor.advance().await.map_err(&err)? {
        let doc: Document = cursor.deserialize_current().map_err(&err)?;
        found.push(doc.get_str("body").unwrap_or_default().to_string());
    }
    Ok(found)
}
