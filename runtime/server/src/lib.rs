//! The `forgecast` binary's library: everything between the command line and the other crates.
//!
//! - [`cli`]: the command line (clap), as the user types it.
//! - [`config`]: the config file, environment and flags merged and validated into a ready-to-run plan.
//! - [`logging`]: human-readable logs on a terminal, JSON lines in containers.
//! - [`metrics`]: the Prometheus metrics of a running pipeline.
//! - [`pipeline`]: assembling source, routing, bus and store writer into one running pipeline, and stopping
//!   it without losing events.
//! - [`http`]: the HTTP server: the dashboard and its JSON API, health, metrics, scripts, sources, live taps.
//! - [`aggregate`], [`backfill`], [`check`] and [`tap`]: the `forgecast aggregate`, `backfill`, `check` and
//!   `tap` commands.

pub mod aggregate;
pub mod archive;
pub mod backfill;
pub mod check;
pub mod cli;
pub mod config;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod tap;
