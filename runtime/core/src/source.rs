//! What sources hand to the pipeline, and what the REST poller is asked to fetch.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::event::Event;
use crate::topic::DeadLetter;

/// One item from a source: an event, or input that could not be read as one.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A parsed event.
    Event(Arc<Event>),
    /// Input that is not an event; it goes to the dead-letter topic.
    Malformed(DeadLetter),
}

/// One GitHub query, as `fn queries()` of a query script returns it and the poller runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuerySpec {
    /// Unique name, used in metrics and logs.
    pub name: String,
    /// REST path such as `/events` or `/search/repositories`.
    pub path: String,
    /// Query parameters (`q`, `per_page`, …).
    pub params: BTreeMap<String, String>,
    /// Seconds between runs.
    pub every: u64,
    /// Most pages fetched per run.
    pub max_pages: u32,
}
