//! The enricher's star points in MongoDB: `star_points` (`_id` = `repo/at`).

use forgecast_core::stars::{StarPoint, StarStore};
use forgecast_core::store::StoreError;
use mongodb::bson::{Document, doc};

use super::{MongoStore, failed};

impl StarStore for MongoStore {
    async fn record_stars(&self, points: Vec<StarPoint>) -> Result<(), StoreError> {
        let collection = self.db.collection::<Document>("star_points");
        for p in &points {
            let id = format!("{}/{}", p.repo, p.at);
            collection
                .update_one(
                    doc! { "_id": &id },
                    doc! { "$setOnInsert": {
                        "repo": &p.repo, "at": p.at, "stars": p.stars as i64,
                    } },
                )
                .upsert(true)
                .await
                .map_err(failed("record_stars"))?;
        }
        Ok(())
    }

    async fn star_points(&self, repo: &str) -> Result<Vec<StarPoint>, StoreError> {
        let err = failed("star_points");
        let mut cursor = self
            .db
            .collection::<Document>("star_points")
            .find(doc! { "repo": repo })
            .sort(doc! { "at": 1 })
            .await
            .map_err(&err)?;
        let mut found = Vec::new();
        while cursor.advance().await.map_err(&err)? {
            let doc: Document = cursor.deserialize_current().map_err(&err)?;
            let number = |key: &str| {
                doc.get_i64(key)
                    .or_else(|_| doc.get_i32(key).map(i64::from))
            };
            if let (Ok(at), Ok(stars)) = (number("at"), number("stars")) {
                found.push(StarPoint {
                    repo: repo.to_string(),
                    at,
                    stars: stars.max(0) as u64,
                });
            }
        }
        Ok(found)
    }
}
