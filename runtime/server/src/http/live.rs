//! `GET /api/live`: the numbers of the dashboard's live view.
//!
//! The window is the 60 minutes up to the newest minute with events (or now, whichever is later), so a replay
//! running ahead of the clock still shows its newest events. Top lists cover the clock hours that overlap the
//! window, which is the finest granularity the store keeps repositories, languages and organisations at.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use forgecast_core::aggregate::{AggregateQuery, Dimension, Granularity};
use forgecast_core::store::{Store, StoreError};
use forgecast_core::time::{format_timestamp, now_unix};
use serde::Serialize;

use crate::pipeline::Shared;

/// Minutes in the live window.
const WINDOW_MINUTES: i64 = 60;
/// Event types drawn separately; the rest are summed as "other".
const SERIES: usize = 6;
/// Rows in each top list.
const TOP: usize = 10;

/// The live view.
#[derive(Debug, Serialize)]
pub struct Live {
    /// When this was computed, RFC 3339.
    pub generated_at: String,
    /// Start of each minute of the window, RFC 3339.
    pub minutes: Vec<String>,
    /// Events per minute of the most frequent types, then `other`.
    pub series: Vec<Series>,
    /// Events in the window.
    pub total: u64,
    /// First hour counted by the top lists, RFC 3339.
    pub top_since: String,
    /// Busiest repositories.
    pub top_repos: Vec<Entry>,
    /// Busiest languages (from pull request events, which carry their repository's language).
    pub top_languages: Vec<Entry>,
    /// Busiest organisations.
    pub top_orgs: Vec<Entry>,
    /// Busiest repository topics (known once repositories are enriched from GitHub).
    pub top_topics: Vec<Entry>,
    /// Pipeline health.
    pub health: Health,
}

/// One line of the events-per-minute chart.
#[derive(Debug, Serialize)]
pub struct Series {
    /// Event type, or `other`.
    pub name: String,
    /// Count per minute, aligned with `minutes`.
    pub counts: Vec<u64>,
}

/// One row of a top list.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// Repository, language or organisation.
    pub key: String,
    /// Events.
    pub count: u64,
}

/// Pipeline health, as the live view shows it.
#[derive(Debug, Serialize)]
pub struct Health {
    /// Whether the store accepts writes.
    pub ready: bool,
    /// Events in the store.
    pub events_stored: u64,
    /// Dead letters in the store.
    pub dead_letters: u64,
    /// Records published but not yet handled by the store writer.
    pub lag: u64,
    /// Scripts live.
    pub scripts_live: usize,
    /// Scripts with a refused version since start.
    pub scripts_refused: usize,
    /// Script versions that went live since start.
    pub reloads_accepted: u64,
    /// Script versions refused since start.
    pub reloads_refused: u64,
}

async fn counts(
    shared: &Shared,
    granularity: Granularity,
    dimension: Dimension,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, String, u64)>, StoreError> {
    let rows = shared
        .store
        .aggregates(AggregateQuery {
            granularity,
            dimension,
            from,
            to,
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.bucket, r.key, r.count))
        .collect())
}

fn top(rows: &[(i64, String, u64)]) -> Vec<Entry> {
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, key, count) in rows {
        *sums.entry(key).or_default() += count;
    }
    let mut list: Vec<Entry> = sums
        .into_iter()
        .map(|(key, count)| Entry {
            key: key.to_string(),
            count,
        })
        .collect();
    list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    list.truncate(TOP);
    list
}

/// Computes the live view from the store.
pub async fn compute(shared: &Shared) -> Result<Live, StoreError> {
    let now = Granularity::Minute.bucket(now_unix());
    let recent = counts(
        shared,
        Granularity::Minute,
        Dimension::All,
        now - 86_400,
        i64::MAX,
    )
    .await?;
    let newest = recent
        .iter()
        .map(|(bucket, _, _)| *bucket)
        .max()
        .unwrap_or(now)
        .max(now);
    let (from, to) = (newest - (WINDOW_MINUTES - 1) * 60, newest + 60);
    let minutes: Vec<i64> = (0..WINDOW_MINUTES).map(|i| from + i * 60).collect();

    let by_type = counts(shared, Granularity::Minute, Dimension::Type, from, to).await?;
    let ranked = top(&by_type);
    let mut series: Vec<Series> = Vec::new();
    let named: Vec<&str> = ranked.iter().take(SERIES).map(|e| e.key.as_str()).collect();
    for name in named.iter().copied().chain(["other"]) {
        series.push(Series {
            name: name.to_string(),
            counts: vec![0; minutes.len()],
        });
    }
    for (bucket, kind, count) in &by_type {
        let slot = ((bucket - from) / 60) as usize;
        let line = named.iter().position(|n| n == kind).unwrap_or(named.len());
        series[line].counts[slot] += count;
    }
    series.retain(|s| s.name != "other" || s.counts.iter().any(|&c| c > 0));
    let total = series.iter().flat_map(|s| s.counts.iter()).sum();

    let hours_from = Granularity::Hour.bucket(from);
    let top_of = |dimension| counts(shared, Granularity::Hour, dimension, hours_from, to);
    let (repos, languages, orgs, topics) = (
        top_of(Dimension::Repo).await?,
        top_of(Dimension::Language).await?,
        top_of(Dimension::Org).await?,
        top_of(Dimension::Topic).await?,
    );

    let statuses = shared.host.statuses();
    let published = shared.published.load(Ordering::Relaxed);
    let handled = shared.handled.load(Ordering::Relaxed);
    Ok(Live {
        generated_at: format_timestamp(now_unix()),
        minutes: minutes.iter().map(|&m| format_timestamp(m)).collect(),
        series,
        total,
        top_since: format_timestamp(hours_from),
        top_repos: top(&repos),
        top_languages: top(&languages),
        top_orgs: top(&orgs),
        top_topics: top(&topics),
        health: Health {
            ready: shared.ready(),
            events_stored: shared.store.event_count().await?,
            dead_letters: shared.store.dead_letter_count().await?,
            lag: shared.lag(published, handled),
            scripts_live: statuses.iter().filter(|s| s.hash.is_some()).count(),
            scripts_refused: statuses.iter().filter(|s| s.last_refusal.is_some()).count(),
            reloads_accepted: shared.reloads_accepted.load(Ordering::Relaxed),
            reloads_refused: shared.reloads_refused.load(Ordering::Relaxed),
        },
    })
}

pub(super) async fn live(State(shared): State<Arc<Shared>>) -> Response {
    match compute(&shared).await {
        Ok(live) => Json(live).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}
