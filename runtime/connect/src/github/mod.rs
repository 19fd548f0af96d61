//! GitHub's REST API: a polite client and the poller driven by the query scripts.
//!
//! - [`client`]: one GET with conditional requests, rate limits, retries and a token that is never printed.
//! - [`enrich`]: language, topics and stars of the repositories events mention, cached, within a rate budget.
//! - [`poller`]: the queries of `scripts/queries/*.rhai` on their schedules, pages followed, events deduplicated.

pub mod client;
pub mod enrich;
pub mod poller;

pub use client::{ClientConfig, FetchError, Fetched, GithubClient, RateState, Token};
pub use enrich::{EnrichConfig, EnrichStats, Enricher};
pub use poller::{Poller, Query, QueryStatus};
