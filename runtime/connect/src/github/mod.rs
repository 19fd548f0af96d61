//! GitHub's REST API: a polite client and the poller driven by the query scripts.
//!
//! - [`client`]: one GET with conditional requests, rate limits, retries and a token that is never printed.
//! - [`poller`]: the queries of `scripts/queries/*.rhai` on their schedules, pages followed, events deduplicated.

pub mod client;
pub mod poller;

pub use client::{ClientConfig, FetchError, Fetched, GithubClient, RateState, Token};
pub use poller::{Poller, Query, QueryStatus};
