//! Every script reload, accepted or refused, kept in the store and counted in the metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use forgecast_core::store::{ScriptReload, Store};

use super::Shared;

/// Records the versions loaded at start and, from now on, every reload decision of the live scripts.
pub(super) fn record_reloads(shared: &Arc<Shared>) {
    let runtime = tokio::runtime::Handle::current();
    let keep = {
        let shared = Arc::downgrade(shared);
        move |reload: ScriptReload| {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            runtime.spawn(async move {
                if let Err(e) = shared.store.record_reload(reload).await {
                    tracing::warn!(component = "scripts", error = %e, "Could not record a script reload in the store.");
                }
            });
        }
    };
    // The versions loaded at start open this run's history.
    for script in shared.host.scripts().iter() {
        keep(ScriptReload {
            at: forgecast_core::time::now_unix(),
            script: script.id().to_string(),
            old_hash: None,
            new_hash: script.hash().to_string(),
            accepted: true,
            reason: None,
        });
    }
    let counts = Arc::downgrade(shared);
    let metrics = shared.metrics.clone();
    shared.host.on_reload(move |event| {
        if let Some(shared) = counts.upgrade() {
            let counter = if event.accepted {
                &shared.reloads_accepted
            } else {
                &shared.reloads_refused
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let result = if event.accepted {
            "accepted"
        } else {
            "refused"
        };
        metrics
            .reloads
            .get_or_create(&crate::metrics::ResultLabel {
                result: result.into(),
            })
            .inc();
        keep(ScriptReload {
            at: forgecast_core::time::now_unix(),
            script: event.script.clone(),
            old_hash: event.old_hash.clone(),
            new_hash: event.new_hash.clone(),
            accepted: event.accepted,
            reason: event.reason(),
        });
    });
}
