//! Connections to the world outside the pipeline, one folder per system.
//!
//! - [`backend`]: the bus and store chosen at start-up ([`backend::AnyBus`], [`backend::AnyStore`]).
//! - [`embedded`]: the one-process backends: an in-process [`embedded::EmbeddedBus`] with the same topic names
//!   and delivery semantics as Kafka, and [`embedded::SqliteStore`], the store in one SQLite file.
//! - [`github`]: the GitHub REST client (polite: ETags, rate limits, backoff) and the query-driven poller.
//! - [`gharchive`]: GH Archive hour files, named, listed and decoded as a stream, from a directory or a URL.
//! - [`githut`]: GitHut's quarterly counts per language, bundled as the history of previous years.
//! - [`http`]: building HTTP clients (TLS set up once, one User-Agent).
//! - [`kafka`]: the Kafka bus (topics created on first use, consumer groups, commits after the sink).
//! - [`mongo`]: the MongoDB store (one transaction per slice of events, indexes created at start-up).
//! - [`replay`]: the replay source, which plays the bundled real GH Archive events with timestamps shifted to
//!   now, round after round, so the embedded default has live data without network access.

pub mod archive;
pub mod backend;
pub mod embedded;
pub mod gharchive;
pub mod github;
pub mod githut;
pub mod http;
pub mod kafka;
pub mod mongo;
pub mod replay;
