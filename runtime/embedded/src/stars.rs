//! The enricher's star points in the SQLite file (`star_points`).

use forgecast_core::stars::{StarPoint, StarStore};
use forgecast_core::store::StoreError;
use rusqlite::params;

use crate::store::{SqliteStore, failed};

impl StarStore for SqliteStore {
    async fn record_stars(&self, points: Vec<StarPoint>) -> Result<(), StoreError> {
        self.with_conn(move |conn| {
            let err = failed("record_stars");
            let tx = conn.transaction().map_err(&err)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO star_points (repo, at, stars) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                    )
                    .map_err(&err)?;
                for p in &points {
                    insert
                        .execute(params![p.repo, p.at, p.stars as i64])
                        .map_err(&err)?;
                }
            }
            tx.commit().map_err(&err)
        })
        .await
    }

    async fn star_points(&self, repo: &str) -> Result<Vec<StarPoint>, StoreError> {
        let repo = repo.to_string();
        self.with_conn(move |conn| {
            let err = failed("star_points");
            let mut select = conn
                .prepare_cached("SELECT at, stars FROM star_points WHERE repo = ?1 ORDER BY at")
                .map_err(&err)?;
            let rows = select
                .query_map([&repo], |r| {
                    Ok(StarPoint {
                        repo: repo.clone(),
                        at: r.get(0)?,
                        stars: r.get::<_, i64>(1)? as u64,
                    })
                })
                .map_err(&err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&err)
        })
        .await
    }
}
