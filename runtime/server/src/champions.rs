//! The champions a process serves: each model's champion loaded from the registry once, and the registry asked
//! again every [`RECHECK`], so a promotion by any process (the CLI, another pod) takes over within seconds,
//! without a restart. The HTTP API and the pipeline's model stage share one [`Champions`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use forgecast_core::registry::{Registry, champion};
use forgecast_models::SentimentModel;

use crate::backends::AnyStore;

/// How long a loaded champion serves (and a model without one stays without) before the registry is asked
/// again.
pub const RECHECK: Duration = Duration::from_secs(5);

/// The champions loaded so far.
#[derive(Default)]
pub struct Champions {
    loaded: Mutex<HashMap<String, Loaded>>,
}

struct Loaded {
    /// The champion, or `None` while the model has none.
    serving: Option<(u32, Arc<SentimentModel>)>,
    checked: Instant,
}

impl Champions {
    /// The champion of `name` and its version; `None` when there is none.
    pub async fn get(
        &self,
        store: &AnyStore,
        name: &str,
    ) -> Result<Option<(u32, Arc<SentimentModel>)>, String> {
        if let Some(fresh) = self.fresh(name) {
            return Ok(fresh);
        }
        let versions = store.versions(name).await.map_err(|e| e.to_string())?;
        let current = champion(&versions).map(|v| v.version);
        let same = {
            let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
            loaded
                .get(name)
                .and_then(|l| l.serving.clone())
                .filter(|(version, _)| Some(*version) == current)
        };
        let serving = match (same, current) {
            (Some(same), _) => Some(same),
            (None, None) => None,
            (None, Some(version)) => {
                let bytes = store
                    .artifact(name, version)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("{name} version {version}: no artifact"))?;
                let model = tokio::task::spawn_blocking(move || SentimentModel::from_bytes(&bytes))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                tracing::info!(
                    component = "models",
                    model = name,
                    version,
                    "Serving a new champion."
                );
                Some((version, Arc::new(model)))
            }
        };
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                name.to_string(),
                Loaded {
                    serving: serving.clone(),
                    checked: Instant::now(),
                },
            );
        Ok(serving)
    }

    /// What was loaded less than [`RECHECK`] ago.
    fn fresh(&self, name: &str) -> Option<Option<(u32, Arc<SentimentModel>)>> {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded
            .get(name)
            .filter(|l| l.checked.elapsed() < RECHECK)
            .map(|l| l.serving.clone())
    }
}

/// How long a lease taken by [`once_per_store`] is held before another process may take it over.
pub const LEASE_SECONDS: i64 = 120;

/// Runs `work` in one of the processes sharing `store`, unless `done` says it is done: the process holding the
/// lease `lease` runs it, the others wait until `done` (and take the lease over if its holder dies first). For
/// training a model's first version, so that any number of pipeline processes start together and one trains.
pub async fn once_per_store<D, DF, W, WF>(
    store: &AnyStore,
    lease: &str,
    done: D,
    work: W,
) -> anyhow::Result<()>
where
    D: Fn() -> DF,
    DF: std::future::Future<Output = anyhow::Result<bool>>,
    W: FnOnce() -> WF,
    WF: std::future::Future<Output = anyhow::Result<()>>,
{
    // Host, process and a number of its own: two callers are never the same holder, even in one process.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let holder = format!(
        "{}/{}/{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into()),
        std::process::id(),
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut waited = false;
    loop {
        if done().await? {
            return Ok(());
        }
        let now = forgecast_core::time::now_unix();
        if store
            .lease(lease, &holder, now, now + LEASE_SECONDS)
            .await?
        {
            break;
        }
        if !waited {
            tracing::info!(
                component = "models",
                lease,
                "Another process holds the lease; waiting for its work."
            );
            waited = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let worked = if done().await? {
        Ok(())
    } else {
        // Renewed while the work runs, however long it takes on a busy machine.
        let renew = async {
            loop {
                tokio::time::sleep(Duration::from_secs(LEASE_SECONDS as u64 / 4)).await;
                let now = forgecast_core::time::now_unix();
                if !store
                    .lease(lease, &holder, now, now + LEASE_SECONDS)
                    .await
                    .unwrap_or(false)
                {
                    tracing::warn!(
                        component = "models",
                        lease,
                        "The lease could not be renewed."
                    );
                }
            }
        };
        tokio::select! {
            worked = work() => worked,
            () = renew => unreachable!("renewing never ends"),
        }
    };
    store.release(lease, &holder).await?;
    worked
}
