//! GitHub's REST API: a polite client, the poller driven by the query scripts, and repository enrichment.
//!
//! - [`client`]: one GET with conditional requests, rate limits, retries and a token that is never printed nor
//!   sent off the configured API.
//! - [`enrich`]: language, topics and stars of the repositories events mention, cached, within a rate budget.
//! - [`poller`]: the queries of `scripts/queries/*.rhai` on their schedules, pages followed, events deduplicated.
//! - [`http`]: building the process's HTTP clients (TLS set up once, one User-Agent), GitHub's and the others.

pub mod client;
pub mod enrich;
pub mod http;
pub mod poller;

pub use client::{ClientConfig, FetchError, Fetched, GithubClient, RateState, Token};
pub use enrich::{EnrichConfig, EnrichStats, Enricher};
pub use poller::{Poller, QueryStatus};
