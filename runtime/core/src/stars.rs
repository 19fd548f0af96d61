//! The stars of a repository each time the enricher fetched it: a point per fetch, kept so that a repository's
//! growth can be forecast from what this instance saw, beside the bundled ranking snapshots.

use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// A repository's stars at one fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarPoint {
    /// `owner/name`.
    pub repo: String,
    /// When it was fetched, Unix seconds.
    pub at: i64,
    /// Its stars then.
    pub stars: u64,
}

/// Where the points are kept.
pub trait StarStore: Send + Sync + 'static {
    /// Keeps points; the same repository and time again is kept once.
    fn record_stars(
        &self,
        points: Vec<StarPoint>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The points of `repo`, oldest first.
    fn star_points(
        &self,
        repo: &str,
    ) -> impl Future<Output = Result<Vec<StarPoint>, StoreError>> + Send;
}
