//! The bundled history of previous years (GitHut's quarters), loaded into the store at start.

use forgecast_core::aggregate::{AggregateQuery, Dimension, Granularity};
use forgecast_core::store::Store;

use super::StartError;
use crate::backends::AnyStore;

/// Loads the bundled history of previous years into the store, unless the store holds it already (a restart
/// then costs one read instead of 17,986 writes; setting the same counters again would change nothing).
pub(super) async fn load_history(store: &AnyStore) -> Result<(), StartError> {
    let mut history = forgecast_gharchive::githut::bundled().map_err(StartError::History)?;
    history.sort_by(|a, b| (a.bucket, &a.key).cmp(&(b.bucket, &b.key)));
    history.dedup_by(|a, b| a.bucket == b.bucket && a.key == b.key);
    let held = store
        .aggregates(AggregateQuery {
            granularity: Granularity::Quarter,
            dimension: Dimension::GithutLanguage,
            from: i64::MIN,
            to: i64::MAX,
        })
        .await?;
    let rows = history.len();
    if held == history {
        tracing::info!(
            component = "store",
            rows,
            "The GitHut history (2012Q2-2024Q1) is loaded."
        );
        return Ok(());
    }
    store.put_counters(history).await?;
    tracing::info!(
        component = "store",
        rows,
        "Loaded the GitHut history (2012Q2-2024Q1)."
    );
    Ok(())
}
