//! The `forgecast` binary's library: everything between the command line and the other crates.
//!
//! - [`cli`]: the command line (clap), as the user types it, in argument groups the commands share.
//! - [`config`]: the config file, environment and flags merged and validated into a plan per command.
//! - [`commands`]: one file per command, each `run(plan, shutdown)`.
//! - [`shutdown`]: the two-step stop every command obeys.
//! - [`backends`]: the bus and store, opened from a plan ([`backends::AnyBus`], [`backends::AnyStore`]).
//! - [`pipeline`]: assembling source, routing, bus and store writer into one running pipeline, and stopping
//!   it without losing events.
//! - [`history`]: the history of a lake per month, quarter and year, by the runtime's engine or Spark.
//! - [`champions`]: the champion of each model, loaded from the registry and kept current, for the HTTP API and
//!   the model stage.
//! - [`forecasts`]: the trends' share series cut for forecasting, forecast and backtested.
//! - [`repo_growth`]: the bundled star snapshots and the repository growth forecaster fitted on them.
//! - [`retry`]: retrying backend operations with the runtime's backoff policy.
//! - [`http`]: the HTTP server: the dashboard and its JSON API, health, metrics, scripts, sources, live taps.
//! - [`metrics`]: the Prometheus metrics of a running pipeline.
//! - [`logging`]: human-readable logs on a terminal, JSON lines in containers.

pub mod backends;
pub mod champions;
pub mod cli;
pub mod commands;
pub mod config;
pub mod forecasts;
pub mod history;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod repo_growth;
pub mod retry;
pub mod shutdown;
