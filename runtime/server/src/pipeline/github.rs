//! The GitHub source: the REST poller driven by the query scripts, and the enricher that looks up the
//! repositories of stored events, both on one client that shares the rate limit.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use forgecast_core::RecordBody;
use forgecast_core::bus::{Bus, Subscription, TopicFilter};
use forgecast_core::source::{Incoming, QuerySpec};
use forgecast_core::topic::PIPELINE_PREFIX;
use forgecast_github::{ClientConfig, EnrichConfig, EnrichStats, Enricher, GithubClient, Poller};
use forgecast_script::{Role, ScriptHost};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{GithubView, Shared, StartError};
use crate::backends::{AnyBus, AnySubscription};

/// Event ids the GitHub poller remembers to drop repeats across polls.
const DEDUP_IDS: usize = 100_000;

/// Starts the poller (feeding `tx` until `stop_source`) and the enricher (until `stop_all`) on one client.
pub(super) fn start(
    config: &ClientConfig,
    enrich_share: f64,
    shared: &Arc<Shared>,
    bus: &AnyBus,
    tx: mpsc::Sender<Vec<Incoming>>,
    stop_source: &CancellationToken,
    stop_all: &CancellationToken,
) -> Result<JoinHandle<u64>, StartError> {
    let client = Arc::new(GithubClient::new(config.clone()).map_err(StartError::Github)?);
    let poller = Poller::new(client.clone(), DEDUP_IDS);
    let observe = github_observer(shared);
    // Repositories that events mention get their language and topics from the same client.
    let enrich = EnrichConfig {
        share: enrich_share,
        ..EnrichConfig::default()
    };
    let enricher = Enricher::new(client.clone(), shared.store.clone(), enrich);
    let enrichment = enricher.stats();
    let (names, names_rx) = mpsc::channel(enrich.queue);
    let repos = bus.subscribe(
        "forgecast-enricher",
        vec![TopicFilter::Prefix(PIPELINE_PREFIX.into())],
    )?;
    tokio::spawn(forward_repos(repos, names, enrichment.clone()));
    tokio::spawn(enricher.run(names_rx, observe.clone(), stop_all.clone()));
    *shared.github.lock().unwrap_or_else(|e| e.into_inner()) = Some(GithubView {
        client,
        queries: poller.statuses(),
        enrichment,
    });
    tracing::info!(component = "source", api = %config.base_url, token = config.token.is_some(), "Polling GitHub as the query scripts say.");
    Ok(tokio::spawn(poller.run(
        queries_of(shared.host.clone()),
        tx,
        observe,
        stop_source.clone(),
    )))
}

/// The queries of every live query script, read again each time it is called. A script that fails keeps its
/// previous list and is reported once per version; a name used twice keeps its first query.
fn queries_of(host: Arc<ScriptHost>) -> impl Fn() -> Vec<QuerySpec> + Send + 'static {
    let last: Mutex<std::collections::HashMap<String, Vec<QuerySpec>>> =
        Mutex::new(Default::default());
    let reported: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    move || {
        let set = host.scripts();
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        for script in set.of_role(Role::Queries) {
            match script.queries(host.engine()) {
                Ok(specs) => {
                    last.insert(script.id().to_string(), specs);
                }
                Err(e) => {
                    if reported
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(format!("{}@{}", e.script, e.version))
                    {
                        tracing::warn!(component = "source", script = %e.script, version = %e.version, error = %e.message, "Query script failed; keeping its previous queries.");
                    }
                }
            }
        }
        let mut names = HashSet::new();
        let mut all = Vec::new();
        for (script, list) in last.iter() {
            for query in list {
                if names.insert(query.name.clone()) {
                    all.push(query.clone());
                } else if reported
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(format!("dup:{}", query.name))
                {
                    tracing::warn!(component = "source", script = %script, query = %query.name, "Query name used twice; the first one runs.");
                }
            }
        }
        all
    }
}

fn github_observer(shared: &Arc<Shared>) -> forgecast_github::poller::Observe {
    let metrics = shared.metrics.clone();
    Arc::new(move |query: &str, status: &str| {
        metrics
            .github_requests
            .get_or_create(&metrics.request(query, status))
            .inc();
    })
}

/// Hands the repository of every stored event to the enricher, never waiting: when its queue is full the name
/// is dropped (and counted), the next event of that repository brings it again.
async fn forward_repos(
    mut events: AnySubscription,
    names: mpsc::Sender<String>,
    stats: Arc<Mutex<EnrichStats>>,
) {
    while let Ok(Some(batch)) = events.next_batch(4096).await {
        for record in batch {
            if let RecordBody::Event(event) = record.body
                && names.try_send(event.repo.clone()).is_err()
            {
                stats.lock().unwrap_or_else(|e| e.into_inner()).dropped += 1;
            }
        }
        let _ = events.commit().await;
    }
}
