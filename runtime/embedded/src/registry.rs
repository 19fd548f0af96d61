//! The model registry in the SQLite file: one row per version, its artifact beside its figures.

use forgecast_core::registry::{Alias, ModelVersion, NewVersion, Registry};
use forgecast_core::store::StoreError;
use rusqlite::{OptionalExtension, params};

use crate::store::{SqliteStore, failed};

fn json_failed(operation: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Operation {
        operation,
        reason: e.to_string(),
    }
}

impl Registry for SqliteStore {
    async fn register(&self, v: NewVersion, artifact: Vec<u8>) -> Result<u32, StoreError> {
        self.with_conn(move |conn| {
            let err = failed("register");
            let params_text = serde_json::to_string(&v.params).map_err(json_failed("register"))?;
            let metrics = serde_json::to_string(&v.metrics).map_err(json_failed("register"))?;
            let tx = conn.transaction().map_err(&err)?;
            let version: u32 = tx
                .query_row(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?1",
                    [&v.name],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            tx.execute(
                "INSERT INTO model_versions
                 (name, version, created, training, params, metrics, sha256, size, alias, artifact)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9)",
                params![
                    v.name,
                    version,
                    v.created,
                    v.training,
                    params_text,
                    metrics,
                    v.sha256,
                    v.size as i64,
                    artifact
                ],
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(version)
        })
        .await
    }

    async fn versions(&self, name: &str) -> Result<Vec<ModelVersion>, StoreError> {
        let name = name.to_string();
        self.with_conn(move |conn| {
            let err = failed("versions");
            let mut select = conn
                .prepare_cached(
                    "SELECT version, created, training, params, metrics, sha256, size, alias
                     FROM model_versions WHERE name = ?1 ORDER BY version",
                )
                .map_err(&err)?;
            let rows = select
                .query_map([&name], |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, Option<String>>(7)?,
                    ))
                })
                .map_err(&err)?;
            let mut versions = Vec::new();
            for row in rows {
                let (version, created, training, params_text, metrics, sha256, size, alias) =
                    row.map_err(&err)?;
                versions.push(ModelVersion {
                    version,
                    meta: NewVersion {
                        name: name.clone(),
                        created,
                        training,
                        params: serde_json::from_str(&params_text)
                            .map_err(json_failed("versions"))?,
                        metrics: serde_json::from_str(&metrics).map_err(json_failed("versions"))?,
                        sha256,
                        size: size as u64,
                    },
                    alias: alias.as_deref().and_then(Alias::parse),
                });
            }
            Ok(versions)
        })
        .await
    }

    async fn model_names(&self) -> Result<Vec<String>, StoreError> {
        self.with_conn(|conn| {
            let err = failed("model_names");
            let mut select = conn
                .prepare_cached("SELECT DISTINCT name FROM model_versions ORDER BY name")
                .map_err(&err)?;
            let names = select.query_map([], |r| r.get(0)).map_err(&err)?;
            names.collect::<Result<Vec<String>, _>>().map_err(&err)
        })
        .await
    }

    async fn artifact(&self, name: &str, version: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let name = name.to_string();
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT artifact FROM model_versions WHERE name = ?1 AND version = ?2",
                params![name, version],
                |r| r.get(0),
            )
            .optional()
            .map_err(failed("artifact"))
        })
        .await
    }

    async fn set_alias(&self, name: &str, version: u32, alias: Alias) -> Result<(), StoreError> {
        let name = name.to_string();
        self.with_conn(move |conn| {
            let err = failed("set_alias");
            let tx = conn.transaction().map_err(&err)?;
            if alias == Alias::Champion {
                tx.execute(
                    "UPDATE model_versions SET alias = 'retired'
                     WHERE name = ?1 AND alias = 'champion' AND version != ?2",
                    params![name, version],
                )
                .map_err(&err)?;
            }
            let changed = tx
                .execute(
                    "UPDATE model_versions SET alias = ?3 WHERE name = ?1 AND version = ?2",
                    params![name, version, alias.as_str()],
                )
                .map_err(&err)?;
            if changed == 0 {
                return Err(StoreError::Operation {
                    operation: "set_alias",
                    reason: format!("model {name:?} has no version {version}"),
                });
            }
            tx.commit().map_err(&err)
        })
        .await
    }

    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.with_conn(move |conn| {
            conn.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.holder = excluded.holder OR leases.until < ?4",
                params![name, holder, until, now],
            )
            .map(|changed| changed == 1)
            .map_err(failed("lease"))
        })
        .await
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.with_conn(move |conn| {
            conn.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )
            .map(|_| ())
            .map_err(failed("release"))
        })
        .await
    }
}
