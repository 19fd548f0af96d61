//! The streaming model's state in the SQLite file: `outcome_pending` (one row per model and issue; `seq`,
//! `resolved_at` and `label` set once, when the label is known), `outcome_learners`, `evaluations`.

use std::collections::HashMap;

use forgecast_core::outcomes::{Decision, Drift, Evaluation, Opened, OutcomeStore, Resolution};
use forgecast_core::store::{StoreError, WriteOutcome};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{SqliteStore, failed};

const COLUMNS: &str =
    "seq, issue, event_id, version, probability, opened_at, features, resolved_at, label";

fn resolution(r: &Row<'_>) -> rusqlite::Result<Resolution> {
    Ok(Resolution {
        seq: r.get::<_, i64>(0)? as u64,
        opened: Opened {
            issue: r.get(1)?,
            event_id: r.get(2)?,
            version: r.get(3)?,
            probability: r.get(4)?,
            opened_at: r.get(5)?,
            features: r.get(6)?,
        },
        resolved_at: r.get(7)?,
        label: r.get(8)?,
    })
}

impl OutcomeStore for SqliteStore {
    async fn open_issues(
        &self,
        model: &str,
        opened: Vec<Opened>,
    ) -> Result<WriteOutcome, StoreError> {
        let model = model.to_string();
        self.with_conn(move |conn| {
            let err = failed("open_issues");
            let tx = conn.transaction().map_err(&err)?;
            let mut outcome = WriteOutcome::default();
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO outcome_pending
                         (model, issue, event_id, version, probability, opened_at, features)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(&err)?;
                for o in &opened {
                    let changed = insert
                        .execute(params![
                            model,
                            o.issue,
                            o.event_id,
                            o.version,
                            o.probability,
                            o.opened_at,
                            o.features
                        ])
                        .map_err(&err)?;
                    if changed == 0 {
                        outcome.duplicates += 1;
                    } else {
                        outcome.inserted += 1;
                    }
                }
            }
            tx.commit().map_err(&err)?;
            Ok(outcome)
        })
        .await
    }

    async fn resolve(
        &self,
        model: &str,
        closed: Vec<(String, i64)>,
        now: i64,
        horizon: i64,
    ) -> Result<Vec<Resolution>, StoreError> {
        let model = model.to_string();
        self.with_conn(move |conn| {
            let err = failed("resolve");
            let tx = conn.transaction().map_err(&err)?;
            let first: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM outcome_pending WHERE model = ?1",
                    [&model],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            // (known at, issue, label): a close within the horizon at its time; a horizon passed at its end.
            let mut known: Vec<(i64, String, bool)> = Vec::new();
            {
                let mut waiting = tx
                    .prepare_cached(
                        "SELECT opened_at FROM outcome_pending WHERE model = ?1 AND issue = ?2 AND seq IS NULL",
                    )
                    .map_err(&err)?;
                let mut closing: HashMap<&str, i64> = HashMap::new();
                for (issue, at) in &closed {
                    let opened_at: Option<i64> = waiting
                        .query_row(params![model, issue], |r| r.get(0))
                        .optional()
                        .map_err(&err)?;
                    if opened_at.is_some_and(|o| *at <= o + horizon) {
                        let earliest = closing.entry(issue).or_insert(*at);
                        *earliest = (*earliest).min(*at);
                    }
                }
                known.extend(closing.iter().map(|(issue, at)| (*at, issue.to_string(), true)));
                let mut due = tx
                    .prepare_cached(
                        "SELECT issue, opened_at FROM outcome_pending
                         WHERE model = ?1 AND seq IS NULL AND opened_at + ?2 < ?3",
                    )
                    .map_err(&err)?;
                let rows = due
                    .query_map(params![model, horizon, now], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })
                    .map_err(&err)?;
                for row in rows {
                    let (issue, opened_at) = row.map_err(&err)?;
                    if !closing.contains_key(issue.as_str()) {
                        known.push((opened_at + horizon, issue, false));
                    }
                }
            }
            // Numbered in the order the labels became known, so that the learner learns them as they came.
            known.sort();
            {
                let mut set = tx
                    .prepare_cached(
                        "UPDATE outcome_pending SET seq = ?1, resolved_at = ?2, label = ?3
                         WHERE model = ?4 AND issue = ?5 AND seq IS NULL",
                    )
                    .map_err(&err)?;
                for (n, (at, issue, label)) in known.iter().enumerate() {
                    set.execute(params![first + n as i64, at, label, model, issue])
                        .map_err(&err)?;
                }
            }
            let made = {
                let mut select = tx
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM outcome_pending WHERE model = ?1 AND seq >= ?2 ORDER BY seq"
                    ))
                    .map_err(&err)?;
                let rows = select.query_map(params![model, first], resolution).map_err(&err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(&err)?
            };
            tx.commit().map_err(&err)?;
            Ok(made)
        })
        .await
    }

    async fn resolutions_after(
        &self,
        model: &str,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<Resolution>, StoreError> {
        let model = model.to_string();
        self.with_conn(move |conn| {
            let err = failed("resolutions_after");
            let mut select = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM outcome_pending WHERE model = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
                ))
                .map_err(&err)?;
            let rows = select
                .query_map(params![model, seq as i64, limit as i64], resolution)
                .map_err(&err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&err)
        })
        .await
    }

    async fn pending_count(&self, model: &str) -> Result<u64, StoreError> {
        let model = model.to_string();
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT count(*) FROM outcome_pending WHERE model = ?1 AND seq IS NULL",
                [model],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(failed("pending_count"))
        })
        .await
    }

    async fn put_learner(
        &self,
        model: &str,
        state: Vec<u8>,
        through_seq: u64,
    ) -> Result<(), StoreError> {
        let model = model.to_string();
        self.with_conn(move |conn| {
            conn.execute(
                "INSERT INTO outcome_learners (model, state, through_seq) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO UPDATE SET state = excluded.state, through_seq = excluded.through_seq",
                params![model, state, through_seq as i64],
            )
            .map(|_| ())
            .map_err(failed("put_learner"))
        })
        .await
    }

    async fn learner(&self, model: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let model = model.to_string();
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT state, through_seq FROM outcome_learners WHERE model = ?1",
                [model],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .map_err(failed("learner"))
        })
        .await
    }

    async fn record_evaluation(&self, e: Evaluation) -> Result<(), StoreError> {
        let key = (e.model.clone(), e.first_seq, e.version);
        self.with_conn(move |conn| put_json(conn, "record_evaluation", "evaluations", key, &e))
            .await
    }

    async fn evaluations(&self, model: &str) -> Result<Vec<Evaluation>, StoreError> {
        let model = model.to_string();
        self.with_conn(move |conn| json_rows(conn, "evaluations", "evaluations", &model))
            .await
    }

    async fn record_decision(&self, d: Decision) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            let body = serde_json::to_string(&d).map_err(|e| StoreError::Operation {
                operation: "record_decision",
                reason: e.to_string(),
            })?;
            conn.execute(
                "INSERT INTO retrain_decisions (model, window, version, trigger, body)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO UPDATE SET body = excluded.body",
                params![
                    d.model,
                    d.window as i64,
                    d.version,
                    d.trigger.as_str(),
                    body
                ],
            )
            .map(|_| ())
            .map_err(failed("record_decision"))
        })
        .await
    }

    async fn decisions(&self, model: &str) -> Result<Vec<Decision>, StoreError> {
        let model = model.to_string();
        let mut decisions: Vec<Decision> = self
            .with_conn(move |conn| json_rows(conn, "decisions", "retrain_decisions", &model))
            .await?;
        Decision::in_order(&mut decisions);
        Ok(decisions)
    }

    async fn record_drift(&self, d: Drift) -> Result<(), StoreError> {
        let key = (d.model.clone(), d.window, d.version);
        self.with_conn(move |conn| put_json(conn, "record_drift", "drift", key, &d))
            .await
    }

    async fn drift(&self, model: &str) -> Result<Vec<Drift>, StoreError> {
        let model = model.to_string();
        self.with_conn(move |conn| json_rows(conn, "drift", "drift", &model))
            .await
    }
}

/// Keeps `record` as JSON in `table` under (model, window, version); the same key again replaces it.
fn put_json<T: Serialize>(
    conn: &mut Connection,
    operation: &'static str,
    table: &str,
    (model, window, version): (String, u64, u32),
    record: &T,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(record).map_err(|e| StoreError::Operation {
        operation,
        reason: e.to_string(),
    })?;
    conn.execute(
        &format!(
            "INSERT INTO {table} (model, window, version, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO UPDATE SET body = excluded.body"
        ),
        params![model, window as i64, version, body],
    )
    .map(|_| ())
    .map_err(failed(operation))
}

/// The records of `model` in `table`, by window then version.
fn json_rows<T: DeserializeOwned>(
    conn: &mut Connection,
    operation: &'static str,
    table: &str,
    model: &str,
) -> Result<Vec<T>, StoreError> {
    let err = failed(operation);
    let mut select = conn
        .prepare_cached(&format!(
            "SELECT body FROM {table} WHERE model = ?1 ORDER BY window, version"
        ))
        .map_err(&err)?;
    let rows = select
        .query_map([model], |r| r.get::<_, String>(0))
        .map_err(&err)?;
    let mut found = Vec::new();
    for body in rows {
        if let Ok(record) = serde_json::from_str(&body.map_err(&err)?) {
            found.push(record);
        }
    }
    Ok(found)
}
