//! The model registry in MongoDB: `models` holds one document per version (unique on name and version), its
//! artifact in `model_artifacts` (binary, `_id` = `name/version`), so that listing versions stays light.

use forgecast_core::registry::{Alias, ModelVersion, NewVersion, Registry};
use forgecast_core::store::StoreError;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, doc};

use super::{DUPLICATE_KEY, MongoStore, failed};

/// Times a registration runs again after another process took the same version number.
const REGISTER_ATTEMPTS: u32 = 10;

fn refused(operation: &'static str, reason: impl ToString) -> StoreError {
    StoreError::Operation {
        operation,
        reason: reason.to_string(),
    }
}

/// Whether the error is a unique index refusing a second document with the same key.
pub(crate) fn duplicate(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    matches!(&*e.kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == DUPLICATE_KEY)
}

fn artifact_id(name: &str, version: u32) -> String {
    format!("{name}/{version}")
}

fn version_of(doc: &Document) -> Result<ModelVersion, StoreError> {
    let bad = |what: &str| refused("versions", format!("a model document without {what}"));
    let number = |key: &str| match doc.get(key) {
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        Some(Bson::Int64(n)) => Some(*n),
        _ => None,
    };
    let json = |key: &str| -> Result<serde_json::Value, StoreError> {
        let text = doc.get_str(key).map_err(|_| bad(key))?;
        serde_json::from_str(text).map_err(|e| refused("versions", e))
    };
    Ok(ModelVersion {
        version: number("version").ok_or_else(|| bad("version"))? as u32,
        meta: NewVersion {
            name: doc.get_str("name").map_err(|_| bad("name"))?.to_string(),
            created: number("created").ok_or_else(|| bad("created"))?,
            training: doc.get_str("training").unwrap_or_default().to_string(),
            params: json("params")?,
            metrics: serde_json::from_value(json("metrics")?)
                .map_err(|e| refused("versions", e))?,
            sha256: doc.get_str("sha256").unwrap_or_default().to_string(),
            size: number("size").unwrap_or_default() as u64,
        },
        alias: doc.get_str("alias").ok().and_then(Alias::parse),
    })
}

impl Registry for MongoStore {
    async fn register(&self, v: NewVersion, artifact: Vec<u8>) -> Result<u32, StoreError> {
        let models = self.db.collection::<Document>("models");
        let params = serde_json::to_string(&v.params).map_err(|e| refused("register", e))?;
        let metrics = serde_json::to_string(&v.metrics).map_err(|e| refused("register", e))?;
        for _ in 0..REGISTER_ATTEMPTS {
            let last = models
                .find_one(doc! { "name": &v.name })
                .sort(doc! { "version": -1 })
                .await
                .map_err(failed("register"))?;
            let version = match last.as_ref().map(version_of).transpose()? {
                Some(last) => last.version + 1,
                None => 1,
            };
            // The artifact first: a version is listed only once its artifact can be read.
            self.db
                .collection::<Document>("model_artifacts")
                .replace_one(
                    doc! { "_id": artifact_id(&v.name, version) },
                    doc! {
                        "_id": artifact_id(&v.name, version),
                        "bytes": Binary { subtype: BinarySubtype::Generic, bytes: artifact.clone() },
                    },
                )
                .upsert(true)
                .await
                .map_err(failed("register"))?;
            let inserted = models
                .insert_one(doc! {
                    "name": &v.name,
                    "version": i64::from(version),
                    "created": v.created,
                    "training": &v.training,
                    "params": &params,
                    "metrics": &metrics,
                    "sha256": &v.sha256,
                    "size": v.size as i64,
                    "alias": Bson::Null,
                })
                .await;
            match inserted {
                Ok(_) => return Ok(version),
                // Another process registered this number meanwhile: take the next one.
                Err(e) if duplicate(&e) => continue,
                Err(e) => return Err(failed("register")(e)),
            }
        }
        Err(refused(
            "register",
            format!(
                "version numbers of {:?} kept being taken by other processes",
                v.name
            ),
        ))
    }

    async fn versions(&self, name: &str) -> Result<Vec<ModelVersion>, StoreError> {
        let err = failed("versions");
        let mut cursor = self
            .db
            .collection::<Document>("models")
            .find(doc! { "name": name })
            .sort(doc! { "version": 1 })
            .await
            .map_err(&err)?;
        let mut versions = Vec::new();
        while cursor.advance().await.map_err(&err)? {
            let doc: Document = cursor.deserialize_current().map_err(&err)?;
            versions.push(version_of(&doc)?);
        }
        Ok(versions)
    }

    async fn model_names(&self) -> Result<Vec<String>, StoreError> {
        let names = self
            .db
            .collection::<Document>("models")
            .distinct("name", doc! {})
            .await
            .map_err(failed("model_names"))?;
        let mut names: Vec<String> = names
            .into_iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn artifact(&self, name: &str, version: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let listed = self
            .db
            .collection::<Document>("models")
            .find_one(doc! { "name": name, "version": i64::from(version) })
            .await
            .map_err(failed("artifact"))?;
        if listed.is_none() {
            return Ok(None);
        }
        let found = self
            .db
            .collection::<Document>("model_artifacts")
            .find_one(doc! { "_id": artifact_id(name, version) })
            .await
            .map_err(failed("artifact"))?;
        Ok(found.and_then(|d| d.get_binary_generic("bytes").ok().cloned()))
    }

    async fn set_alias(&self, name: &str, version: u32, alias: Alias) -> Result<(), StoreError> {
        let err = failed("set_alias");
        let models = self.db.collection::<Document>("models");
        let mut session = self.client.start_session().await.map_err(&err)?;
        session.start_transaction().await.map_err(&err)?;
        let result = async {
            if alias == Alias::Champion {
                models
                    .update_many(
                        doc! { "name": name, "alias": "champion", "version": { "$ne": i64::from(version) } },
                        doc! { "$set": { "alias": "retired" } },
                    )
                    .session(&mut session)
                    .await?;
            }
            models
                .update_one(
                    doc! { "name": name, "version": i64::from(version) },
                    doc! { "$set": { "alias": alias.as_str() } },
                )
                .session(&mut session)
                .await
        }
        .await;
        match result {
            Ok(updated) if updated.matched_count == 1 => {
                session.commit_transaction().await.map_err(&err)
            }
            Ok(_) => {
                let _ = session.abort_transaction().await;
                Err(refused(
                    "set_alias",
                    format!("model {name:?} has no version {version}"),
                ))
            }
            Err(e) => {
                let _ = session.abort_transaction().await;
                Err(err(e))
            }
        }
    }

    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let taken = self
            .db
            .collection::<Document>("leases")
            .update_one(
                doc! { "_id": name, "$or": [ { "holder": holder }, { "until": { "$lt": now } } ] },
                doc! { "$set": { "holder": holder, "until": until } },
            )
            .upsert(true)
            .await;
        match taken {
            Ok(_) => Ok(true),
            // Another holder's lease runs: the filter missed it and the upsert met its `_id`.
            Err(e) if duplicate(&e) => Ok(false),
            Err(e) => Err(failed("lease")(e)),
        }
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.db
            .collection::<Document>("leases")
            .delete_one(doc! { "_id": name, "holder": holder })
            .await
            .map(|_| ())
            .map_err(failed("release"))
    }
}
