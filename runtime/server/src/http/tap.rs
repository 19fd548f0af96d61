//! `GET /api/tap?topic=T`: every record routed to a topic, as server-sent events, for `forgecast tap`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use forgecast_core::time::format_timestamp;
use forgecast_core::{Record, RecordBody};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::Guard;
use super::params::Params;
use crate::pipeline::Shared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TapQuery {
    topic: String,
}

/// One tapped record as sent to `forgecast tap`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Tapped {
    /// Topic.
    pub topic: String,
    /// Event id, or empty for a dead letter.
    pub id: String,
    /// Event type, or `DeadLetter`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Actor login.
    pub actor: String,
    /// Repository.
    pub repo: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// The dead letter's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The record's JSON.
    pub raw: String,
}

impl Tapped {
    fn from_record(record: &Record) -> Tapped {
        match &record.body {
            RecordBody::Event(e) => Tapped {
                topic: record.topic.to_string(),
                id: e.id.clone(),
                kind: e.kind.clone(),
                actor: e.actor.clone(),
                repo: e.repo.clone(),
                created_at: format_timestamp(e.created_at),
                error: None,
                raw: e.raw.to_string(),
            },
            RecordBody::DeadLetter(l) => Tapped {
                topic: record.topic.to_string(),
                id: String::new(),
                kind: "DeadLetter".into(),
                actor: String::new(),
                repo: String::new(),
                created_at: String::new(),
                error: Some(format!(
                    "{} ({}): {}",
                    l.stage,
                    l.script.as_deref().unwrap_or("-"),
                    l.error
                )),
                raw: l.raw.clone(),
            },
        }
    }
}

/// Whether a topic matches a tap pattern: exact, or a prefix ending in `*`.
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => topic.starts_with(prefix),
        None => topic == pattern,
    }
}

pub(super) async fn tap(
    State(shared): State<Arc<Shared>>,
    Extension(guard): Extension<Arc<Guard>>,
    Params(query): Params<TapQuery>,
) -> Response {
    // The slot travels with the stream and is given back when the client goes away.
    let slot = match guard.tap_slot() {
        Ok(slot) => slot,
        Err(refusal) => return refusal.into_response(),
    };
    let receiver = shared.tap.subscribe();
    let pattern = query.topic;
    stream_records(receiver, pattern, slot).into_response()
}

fn stream_records(
    receiver: tokio::sync::broadcast::Receiver<Record>,
    pattern: String,
    slot: super::guard::TapSlot,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let events = stream::unfold(
        (receiver, pattern, slot),
        |(mut receiver, pattern, slot)| async move {
            loop {
                let event = match receiver.recv().await {
                    Ok(record) if topic_matches(&pattern, &record.topic) => {
                        let body = serde_json::to_string(&Tapped::from_record(&record))
                            .unwrap_or_default();
                        SseEvent::default().event("record").data(body)
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        SseEvent::default().event("skipped").data(n.to_string())
                    }
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(event), (receiver, pattern, slot)));
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_patterns_match_exactly_or_by_prefix() {
        assert!(topic_matches("gh.raw.push", "gh.raw.push"));
        assert!(!topic_matches("gh.raw.push", "gh.raw.pushy"));
        assert!(topic_matches("gh.raw.*", "gh.raw.issues"));
        assert!(topic_matches("*", "gh.dlq"));
    }
}
