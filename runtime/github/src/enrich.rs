//! Repository enrichment: the language, topics and stars of the repositories events mention.
//!
//! Most events do not carry their repository's language, so trends per language need it from the repository
//! itself. The enricher fetches `GET /repos/{owner}/{name}` through the same polite client as the queries,
//! caches the answer in the store with its ETag and fetch time, refreshes it (conditionally) once it is older
//! than `stale_after`, remembers 404s, and spends only a share of the rate budget: it waits while fewer than
//! `(1 - share) × limit` requests are left in the window, which leaves the rest to the queries. Names are
//! checked against what GitHub allows before they become a request path; others are counted and skipped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use forgecast_core::stars::{StarPoint, StarStore};
use forgecast_core::store::{RepoMeta, Store};
use forgecast_core::time::now_unix;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::client::{FetchError, Fetched, GithubClient, RateState, Request};

/// How the enricher behaves.
#[derive(Debug, Clone, Copy)]
pub struct EnrichConfig {
    /// Share of the rate limit the enricher may use, 0 to 1.
    pub share: f64,
    /// Age after which cached metadata is refreshed.
    pub stale_after: Duration,
    /// Repositories waiting at most; more are dropped (and counted) until the queue drains.
    pub queue: usize,
    /// Wait before looking at the budget again when it is spent.
    pub budget_wait: Duration,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            share: 0.2,
            stale_after: Duration::from_secs(7 * 86_400),
            queue: 10_000,
            budget_wait: Duration::from_secs(5),
        }
    }
}

/// What the enricher did, for `GET /api/sources`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EnrichStats {
    /// Repositories waiting.
    pub queued: u64,
    /// Fetched with new content.
    pub fetched: u64,
    /// Refreshed with a 304 (unchanged).
    pub unchanged: u64,
    /// Already cached and fresh: nothing asked.
    pub cached: u64,
    /// Unknown to GitHub (404), remembered.
    pub missing: u64,
    /// Failed after retries; asked again when mentioned again.
    pub failed: u64,
    /// Times the enricher waited for its share of the rate budget.
    pub held_back: u64,
    /// Names dropped because the queue was full.
    pub dropped: u64,
    /// Names that are not a valid `owner/name`: never looked up.
    pub invalid: u64,
}

/// Whether the enricher may send a request, given the rate state and its share.
pub fn budget_allows(rate: &RateState, share: f64) -> bool {
    match (rate.limit, rate.remaining) {
        (Some(limit), Some(remaining)) => {
            remaining as f64 > limit as f64 * (1.0 - share.clamp(0.0, 1.0))
        }
        _ => true,
    }
}

#[derive(Deserialize)]
struct Repository {
    full_name: Option<String>,
    language: Option<String>,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    stargazers_count: u64,
}

/// Repositories remembered as fresh in memory, at most; past that the memory starts over.
const FRESH_REMEMBERED: usize = 100_000;

/// Repositories waiting, each once, and those known fresh.
#[derive(Default)]
struct Queue {
    pending: VecDeque<String>,
    waiting: HashSet<String>,
    /// Repository → when its cached metadata was fetched, for those handled in this run.
    fresh: HashMap<String, i64>,
}

impl Queue {
    /// Adds a name unless it waits already; `false` when the queue is full.
    fn push(&mut self, name: String, capacity: usize) -> bool {
        if self.waiting.contains(&name) {
            return true;
        }
        if self.waiting.len() >= capacity {
            return false;
        }
        self.waiting.insert(name.clone());
        self.pending.push_back(name);
        true
    }

    fn pop(&mut self) -> Option<String> {
        let name = self.pending.pop_front()?;
        self.waiting.remove(&name);
        Some(name)
    }
}

/// Fetches and caches repository metadata.
pub struct Enricher<S> {
    client: Arc<GithubClient>,
    store: S,
    config: EnrichConfig,
    stats: Arc<Mutex<EnrichStats>>,
}

impl<S: Store + StarStore> Enricher<S> {
    /// An enricher on the shared client, caching in `store`.
    pub fn new(client: Arc<GithubClient>, store: S, config: EnrichConfig) -> Enricher<S> {
        Enricher {
            client,
            store,
            config,
            stats: Arc::new(Mutex::new(EnrichStats::default())),
        }
    }

    /// Its counters, updated as it runs.
    pub fn stats(&self) -> Arc<Mutex<EnrichStats>> {
        self.stats.clone()
    }

    fn count(&self, change: impl FnOnce(&mut EnrichStats)) {
        change(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn take(&self, queue: &mut Queue, name: String, observe: &super::poller::Observe) {
        if super::client::repo_path(&name).is_none() {
            // Names come from events, that is from anyone: one that is not a repository name is not requested.
            self.count(|s| s.invalid += 1);
            observe("enrich", "invalid_name");
            tracing::debug!(
                component = "enrich",
                "A repository name that GitHub cannot have given is skipped."
            );
            return;
        }
        // Every event names its repository: a busy repository known fresh here is not looked up again.
        if queue
            .fresh
            .get(&name)
            .is_some_and(|&at| now_unix() - at < self.config.stale_after.as_secs() as i64)
        {
            self.count(|s| s.cached += 1);
        } else if !queue.push(name, self.config.queue) {
            self.count(|s| s.dropped += 1);
        }
    }

    /// Enriches the repositories named on `names` until `shutdown` or the end of `names`.
    pub async fn run(
        self,
        mut names: mpsc::Receiver<String>,
        observe: super::poller::Observe,
        shutdown: CancellationToken,
    ) {
        let mut queue = Queue::default();
        loop {
            while let Ok(name) = names.try_recv() {
                self.take(&mut queue, name, &observe);
            }
            self.count(|s| s.queued = queue.pending.len() as u64);
            if queue.pending.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    next = names.recv() => match next {
                        Some(name) => self.take(&mut queue, name, &observe),
                        None => return,
                    },
                }
                continue;
            }
            if !budget_allows(&self.client.rate(), self.config.share) {
                self.count(|s| s.held_back += 1);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(self.config.budget_wait) => {}
                }
                continue;
            }
            let Some(name) = queue.pop() else { continue };
            let fetched_at = tokio::select! {
                _ = shutdown.cancelled() => return,
                fetched_at = self.enrich(&name, &observe) => fetched_at,
            };
            if let Some(at) = fetched_at {
                if queue.fresh.len() >= FRESH_REMEMBERED {
                    queue.fresh.clear();
                }
                queue.fresh.insert(name, at);
            }
        }
    }

    /// Looks one repository up (cache first); returns when its cached metadata was fetched, if it is cached now.
    async fn enrich(&self, name: &str, observe: &super::poller::Observe) -> Option<i64> {
        let cached = match self.store.repo_meta(vec![name.to_string()]).await {
            Ok(mut found) => found.pop(),
            Err(e) => {
                tracing::warn!(component = "enrich", repo = name, error = %e, "Cannot read the repository cache.");
                return None;
            }
        };
        let now = now_unix();
        if cached
            .as_ref()
            .is_some_and(|c| now - c.fetched_at < self.config.stale_after.as_secs() as i64)
        {
            self.count(|s| s.cached += 1);
            return cached.map(|c| c.fetched_at);
        }
        let path = super::client::repo_path(name)?;
        let params = Default::default();
        let etag = cached
            .as_ref()
            .filter(|c| c.found)
            .and_then(|c| c.etag.clone());
        let see = |status: &str| observe("enrich", status);
        let request = Request {
            path: &path,
            params: &params,
            etag: etag.as_deref(),
        };
        let meta = match self.client.get(&request, &see).await {
            Ok(Fetched::Fresh { body, etag, .. }) => {
                match serde_json::from_slice::<Repository>(&body) {
                    Ok(repo) => {
                        self.count(|s| s.fetched += 1);
                        RepoMeta {
                            name: repo
                                .full_name
                                .filter(|n| n.eq_ignore_ascii_case(name))
                                .unwrap_or_else(|| name.to_string()),
                            found: true,
                            language: repo.language,
                            topics: repo.topics,
                            stars: repo.stargazers_count,
                            etag,
                            fetched_at: now,
                        }
                    }
                    Err(e) => {
                        self.count(|s| s.failed += 1);
                        tracing::warn!(component = "enrich", repo = name, error = %e, "GitHub's repository answer is not what was expected.");
                        return None;
                    }
                }
            }
            Ok(Fetched::NotModified { .. }) => {
                self.count(|s| s.unchanged += 1);
                RepoMeta {
                    fetched_at: now,
                    ..cached.expect("a 304 answers a conditional request for a cached repository")
                }
            }
            Err(FetchError::Status {
                status: 404 | 451, ..
            }) => {
                self.count(|s| s.missing += 1);
                RepoMeta {
                    name: name.to_string(),
                    found: false,
                    language: None,
                    topics: vec![],
                    stars: 0,
                    etag: None,
                    fetched_at: now,
                }
            }
            Err(e) => {
                self.count(|s| s.failed += 1);
                tracing::warn!(component = "enrich", repo = name, error = %e, "Repository not enriched; it is asked again when mentioned again.");
                return None;
            }
        };
        let fetched_at = meta.fetched_at;
        let point = meta.found.then(|| StarPoint {
            repo: meta.name.clone(),
            at: meta.fetched_at,
            stars: meta.stars,
        });
        match self.store.put_repo_meta(vec![meta]).await {
            Ok(()) => {
                // A point per fetch, for the repository's growth forecast.
                if let Some(point) = point
                    && let Err(e) = self.store.record_stars(vec![point]).await
                {
                    tracing::warn!(component = "enrich", repo = name, error = %e, "Cannot keep the repository's stars.");
                }
                Some(fetched_at)
            }
            Err(e) => {
                tracing::warn!(component = "enrich", repo = name, error = %e, "Cannot cache repository metadata.");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_the_rest_for_the_queries() {
        let rate = |remaining| RateState {
            limit: Some(5000),
            remaining: Some(remaining),
            ..RateState::default()
        };
        assert!(budget_allows(&rate(4500), 0.2));
        assert!(
            !budget_allows(&rate(3999), 0.2),
            "below 80% left, the enricher waits"
        );
        assert!(
            budget_allows(&RateState::default(), 0.2),
            "unknown state: allowed, the first answer tells"
        );
        assert!(
            !budget_allows(&rate(4999), 0.0),
            "a share of 0 turns enrichment off"
        );
    }
}
