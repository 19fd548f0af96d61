//! Predictions and their label counters in the SQLite file, in one transaction per write.

use std::collections::HashMap;

use forgecast_core::aggregate::Granularity;
use forgecast_core::predictions::{
    LabelQuery, LabelRow, PredictionStore, Scope, StoredPrediction, for_each_label_counter,
};
use forgecast_core::store::{StoreError, WriteOutcome};
use rusqlite::params;

use crate::store::{SqliteStore, failed};

impl PredictionStore for SqliteStore {
    async fn write_predictions(
        &self,
        predictions: Vec<StoredPrediction>,
    ) -> Result<WriteOutcome, StoreError> {
        self.with_conn(move |conn| {
            let err = failed("write_predictions");
            let tx = conn.transaction().map_err(&err)?;
            let mut outcome = WriteOutcome::default();
            {
                let mut scored = tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM predictions WHERE model = ?1 AND event_id = ?2)",
                    )
                    .map_err(&err)?;
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO predictions
                         (model, event_id, version, label, scores, at, repo, org, language, excerpt)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )
                    .map_err(&err)?;
                let mut counters: HashMap<(String, Granularity, Scope, i64, &str, &str), i64> =
                    HashMap::new();
                for p in &predictions {
                    let counted: bool = scored
                        .query_row(params![p.model, p.event_id], |r| r.get(0))
                        .map_err(&err)?;
                    let scores = serde_json::to_string(&p.scores).unwrap_or_default();
                    let changed = insert
                        .execute(params![
                            p.model, p.event_id, p.version, p.label, scores, p.at, p.repo, p.org,
                            p.language, p.excerpt
                        ])
                        .map_err(&err)?;
                    if changed == 0 {
                        outcome.duplicates += 1;
                        continue;
                    }
                    outcome.inserted += 1;
                    if !counted {
                        for_each_label_counter(p, |k| {
                            *counters
                                .entry((p.model.clone(), k.granularity, k.scope, k.bucket, k.key, k.label))
                                .or_default() += 1
                        });
                    }
                }
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO label_counts (model, granularity, scope, bucket, key, label, count)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT DO UPDATE SET count = count + excluded.count",
                    )
                    .map_err(&err)?;
                for ((model, granularity, scope, bucket, key, label), n) in counters {
                    upsert
                        .execute(params![
                            model,
                            granularity.as_str(),
                            scope.as_str(),
                            bucket,
                            key,
                            label,
                            n
                        ])
                        .map_err(&err)?;
                }
            }
            tx.commit().map_err(&err)?;
            Ok(outcome)
        })
        .await
    }

    async fn label_counts(&self, q: LabelQuery) -> Result<Vec<LabelRow>, StoreError> {
        self.with_conn(move |conn| {
            let err = failed("label_counts");
            let mut select = conn
                .prepare_cached(
                    "SELECT bucket, key, label, count FROM label_counts
                     WHERE model = ?1 AND granularity = ?2 AND scope = ?3 AND bucket >= ?4 AND bucket < ?5
                       AND (?6 IS NULL OR key = ?6)
                     ORDER BY bucket, key, label",
                )
                .map_err(&err)?;
            let rows = select
                .query_map(
                    params![
                        q.model,
                        q.granularity.as_str(),
                        q.scope.as_str(),
                        q.from,
                        q.to,
                        q.key
                    ],
                    |r| {
                        Ok(LabelRow {
                            bucket: r.get(0)?,
                            key: r.get(1)?,
                            label: r.get(2)?,
                            count: r.get::<_, i64>(3)? as u64,
                        })
                    },
                )
                .map_err(&err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&err)
        })
        .await
    }

    async fn recent_predictions(
        &self,
        model: &str,
        label: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredPrediction>, StoreError> {
        let model = model.to_string();
        let label = label.map(str::to_string);
        self.with_conn(move |conn| {
            let err = failed("recent_predictions");
            let mut select = conn
                .prepare_cached(
                    "SELECT event_id, version, label, scores, at, repo, org, language, excerpt
                     FROM predictions WHERE model = ?1 AND (?2 IS NULL OR label = ?2)
                     ORDER BY at DESC, event_id DESC LIMIT ?3",
                )
                .map_err(&err)?;
            let rows = select
                .query_map(params![model, label, limit as i64], |r| {
                    Ok(StoredPrediction {
                        event_id: r.get(0)?,
                        model: model.clone(),
                        version: r.get(1)?,
                        label: r.get(2)?,
                        scores: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                        at: r.get(4)?,
                        repo: r.get(5)?,
                        org: r.get(6)?,
                        language: r.get(7)?,
                        excerpt: r.get(8)?,
                    })
                })
                .map_err(&err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&err)
        })
        .await
    }

    async fn prediction_count(&self, model: &str) -> Result<u64, StoreError> {
        let model = model.to_string();
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT count(*) FROM predictions WHERE model = ?1",
                [model],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(failed("prediction_count"))
        })
        .await
    }
}
