//! The REST poller: runs the queries of `scripts/queries/*.rhai` on their schedules.
//!
//! Each query is fetched page by page (following `Link: rel="next"` while it stays on the configured API, up to
//! its `max_pages`), its first page
//! conditionally (ETag), and again after `every` seconds, or after `X-Poll-Interval` if GitHub asks for longer.
//! Items of event endpoints (paths ending in `/events`) become events; events already seen in an earlier poll
//! are dropped by id. The query list is read again before every round, so an edited query script changes the
//! schedule without a restart.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use forgecast_core::source::{Incoming, QuerySpec};
use forgecast_core::time::{format_timestamp, now_unix};
use forgecast_core::{DeadLetter, Event};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{Fetched, GithubClient, Request};

/// A query's state, as `GET /api/sources` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueryStatus {
    /// Query name.
    pub name: String,
    /// REST path.
    pub path: String,
    /// Seconds between runs, after `X-Poll-Interval`.
    pub every: u64,
    /// When it runs next, RFC 3339.
    pub next_run: String,
    /// When it last ran, RFC 3339.
    pub last_run: Option<String>,
    /// What the last run did.
    pub last_outcome: Option<String>,
    /// New events it produced since start.
    pub events: u64,
}

struct State {
    query: QuerySpec,
    due: Instant,
    etag: Option<String>,
    poll_interval: Option<u64>,
    status: QueryStatus,
}

/// Event ids seen lately, to drop the overlap between consecutive polls of a feed.
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Seen {
    fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }
}

/// Counts what the poller does, by query and outcome (HTTP status, `error`, `timeout`, `bad_body`).
pub type Observe = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// The poller.
pub struct Poller {
    client: Arc<GithubClient>,
    states: HashMap<String, State>,
    seen: Seen,
    statuses: Arc<Mutex<Vec<QueryStatus>>>,
}

impl Poller {
    /// A poller on `client`, remembering the last `dedup` event ids.
    pub fn new(client: Arc<GithubClient>, dedup: usize) -> Poller {
        Poller {
            client,
            states: HashMap::new(),
            seen: Seen {
                ids: HashSet::new(),
                order: VecDeque::new(),
                capacity: dedup.max(1),
            },
            statuses: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The queries' states, updated as the poller runs.
    pub fn statuses(&self) -> Arc<Mutex<Vec<QueryStatus>>> {
        self.statuses.clone()
    }

    fn sync(&mut self, queries: Vec<QuerySpec>) {
        let names: HashSet<String> = queries.iter().map(|q| q.name.clone()).collect();
        self.states.retain(|name, _| names.contains(name));
        for query in queries {
            match self.states.get_mut(&query.name) {
                Some(state) if state.query == query => {}
                Some(state) => {
                    // Changed: run it now, without the old ETag (it belonged to another request).
                    state.query = query;
                    state.due = Instant::now();
                    state.etag = None;
                }
                None => {
                    let status = QueryStatus {
                        name: query.name.clone(),
                        path: query.path.clone(),
                        ..QueryStatus::default()
                    };
                    self.states.insert(
                        query.name.clone(),
                        State {
                            query,
                            due: Instant::now(),
                            etag: None,
                            poll_interval: None,
                            status,
                        },
                    );
                }
            }
        }
    }

    fn publish_statuses(&self) {
        let mut list: Vec<QueryStatus> = self
            .states
            .values()
            .map(|s| {
                let mut status = s.status.clone();
                status.every = s.query.every.max(s.poll_interval.unwrap_or(0));
                let wait = s.due.saturating_duration_since(Instant::now()).as_secs() as i64;
                status.next_run = format_timestamp(now_unix() + wait);
                status
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        *self.statuses.lock().unwrap_or_else(|e| e.into_inner()) = list;
    }

    /// Polls until `shutdown`, reading the queries from `queries` before every round; returns the number of
    /// new events produced.
    pub async fn run(
        mut self,
        queries: impl Fn() -> Vec<QuerySpec> + Send,
        out: mpsc::Sender<Vec<Incoming>>,
        observe: Observe,
        shutdown: CancellationToken,
    ) -> u64 {
        let mut produced = 0u64;
        loop {
            self.sync(queries());
            let now = Instant::now();
            let due: Vec<String> = self
                .states
                .iter()
                .filter(|(_, s)| s.due <= now)
                .map(|(n, _)| n.clone())
                .collect();
            for name in due {
                let items = tokio::select! {
                    _ = shutdown.cancelled() => return produced,
                    items = self.poll(&name, &observe) => items,
                };
                produced += items
                    .iter()
                    .filter(|i| matches!(i, Incoming::Event(_)))
                    .count() as u64;
                if !items.is_empty() && out.send(items).await.is_err() {
                    return produced;
                }
            }
            self.publish_statuses();
            // Wake for the next due query, or within a second to pick up edited query scripts.
            let next = self
                .states
                .values()
                .map(|s| s.due)
                .min()
                .unwrap_or(now + Duration::from_secs(1));
            let wake = next.min(Instant::now() + Duration::from_secs(1));
            tokio::select! {
                _ = shutdown.cancelled() => return produced,
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn poll(&mut self, name: &str, observe: &Observe) -> Vec<Incoming> {
        let Some(state) = self.states.get_mut(name) else {
            return vec![];
        };
        let query = state.query.clone();
        let is_feed = query.path.trim_end_matches('/').ends_with("/events");
        let see = |status: &str| observe(&query.name, status);
        let no_params = BTreeMap::new();
        let mut url = query.path.clone();
        let mut items = Vec::new();
        let mut outcome = String::from("not modified");
        let mut fresh = 0u64;
        for page in 1..=page_cap(&query) {
            let request = Request {
                path: &url,
                params: if page == 1 { &query.params } else { &no_params },
                etag: if page == 1 {
                    state.etag.as_deref()
                } else {
                    None
                },
            };
            match self.client.get(&request, &see).await {
                Ok(Fetched::NotModified { poll_interval }) => {
                    state.poll_interval = poll_interval.or(state.poll_interval);
                    break;
                }
                Ok(Fetched::Fresh {
                    body,
                    etag,
                    next,
                    poll_interval,
                }) => {
                    if page == 1 {
                        state.etag = etag;
                        state.poll_interval = poll_interval.or(state.poll_interval);
                    }
                    let page_items = match page_items(&body) {
                        Ok(list) => list,
                        Err(e) => {
                            observe(&query.name, "bad_body");
                            tracing::warn!(component = "github", query = %query.name, page, error = %e, "GitHub sent a body that is not JSON; the page is skipped.");
                            outcome = format!("page {page}: body is not JSON: {e}");
                            break;
                        }
                    };
                    fresh += page_items.len() as u64;
                    outcome = format!("{fresh} items in {page} page(s)");
                    if is_feed {
                        for item in page_items {
                            items.extend(to_incoming(&mut self.seen, &query.name, item));
                        }
                    }
                    match next {
                        Some(link) if self.client.is_api_url(&link) => url = link,
                        Some(link) => {
                            // Every request carries the token: a link elsewhere is not followed.
                            observe(&query.name, "link_refused");
                            tracing::warn!(component = "github", query = %query.name, page, link = super::client::without_query(&link), "GitHub's next-page link leaves the configured API; paging stops here.");
                            outcome = format!(
                                "{fresh} items in {page} page(s); next-page link refused (not on the configured API)"
                            );
                            break;
                        }
                        None => break,
                    }
                }
                Err(e) => {
                    tracing::warn!(component = "github", query = %query.name, error = %e, "Query failed; it runs again on schedule.");
                    outcome = e.to_string();
                    break;
                }
            }
        }
        let every = query.every.max(state.poll_interval.unwrap_or(0));
        state.due = Instant::now() + Duration::from_secs(every);
        state.status.last_run = Some(format_timestamp(now_unix()));
        state.status.last_outcome = Some(outcome);
        state.status.events += items
            .iter()
            .filter(|i| matches!(i, Incoming::Event(_)))
            .count() as u64;
        items
    }
}

/// Results the search API returns at most for one query, however many pages are asked for.
const SEARCH_RESULTS: u32 = 1000;

/// Pages to fetch: the query's `max_pages`, and for the search API no more than its 1,000 results need.
fn page_cap(query: &QuerySpec) -> u32 {
    let pages = query.max_pages.max(1);
    if !query.path.starts_with("/search/") {
        return pages;
    }
    let per_page: u32 = query
        .params
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    pages.min(SEARCH_RESULTS.div_ceil(per_page))
}

/// The items of a page: a JSON array, or the `items` of a search answer.
fn page_items(body: &[u8]) -> Result<Vec<serde_json::Value>, String> {
    match serde_json::from_slice::<serde_json::Value>(body).map_err(|e| e.to_string())? {
        serde_json::Value::Array(list) => Ok(list),
        serde_json::Value::Object(mut map) => match map.remove("items") {
            Some(serde_json::Value::Array(list)) => Ok(list),
            _ => Ok(vec![serde_json::Value::Object(map)]),
        },
        other => Err(format!("expected an array or object, got {other}")),
    }
}

fn to_incoming(seen: &mut Seen, query: &str, item: serde_json::Value) -> Option<Incoming> {
    let raw = item.to_string();
    match Event::parse(&raw) {
        Ok(event) => seen
            .insert(&event.id)
            .then(|| Incoming::Event(Arc::new(event))),
        Err(e) => Some(Incoming::Malformed(DeadLetter {
            stage: "github".into(),
            error: e.to_string(),
            script: None,
            version: None,
            origin: Some(format!("query {query}")),
            raw,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_ids_drop_repeats_and_forget_the_oldest() {
        let mut seen = Seen {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity: 2,
        };
        assert!(seen.insert("1"));
        assert!(!seen.insert("1"));
        assert!(seen.insert("2"));
        assert!(seen.insert("3"));
        assert!(seen.insert("1"), "the oldest id was forgotten");
    }

    #[test]
    fn search_queries_stop_at_a_thousand_results() {
        let query = |path: &str, per_page: &str| QuerySpec {
            name: "q".into(),
            path: path.into(),
            params: [("per_page".to_string(), per_page.to_string())].into(),
            every: 60,
            max_pages: 50,
        };
        assert_eq!(page_cap(&query("/search/repositories", "100")), 10);
        assert_eq!(page_cap(&query("/search/issues", "30")), 34);
        assert_eq!(page_cap(&query("/events", "100")), 50);
    }

    #[test]
    fn pages_are_arrays_or_search_answers() {
        assert_eq!(page_items(b"[1,2]").unwrap().len(), 2);
        assert_eq!(
            page_items(br#"{"total_count":1,"items":[{"a":1}]}"#)
                .unwrap()
                .len(),
            1
        );
        assert!(page_items(b"<html>").is_err());
    }
}
