//! The `forgecast` commands, one file each. Every command is run the same way: its arguments are turned into a
//! validated plan by [`crate::config`], and `run(plan, shutdown)` does the work, stopping as
//! [`crate::shutdown::Shutdown`] says.
//!
//! - [`up`]: the pipeline and the HTTP server (the main job).
//! - [`check`]: every script compiled, its entry point checked, its cases run.
//! - [`tap`]: the records passing a topic of a running instance, printed.
//! - [`backfill`]: GH Archive hours through the routing script into the store, resumable.
//! - [`aggregate`]: the history of a lake, once or on a schedule, loaded into the store.
//! - [`archive`]: every event on the Kafka topics appended to a lake.
//! - [`train`], [`eval`], [`predict`], [`models`]: the model layer: train and register a version, score one on
//!   labelled data, predict JSON lines, list and promote versions.
//! - [`convert`]: issue histories kept elsewhere (Apache Jira) written as GH Archive hour files.
//! - [`forecast`]: the trends' shares forecast, and the forecasting methods backtested.

pub mod aggregate;
pub mod archive;
pub mod backfill;
pub mod check;
pub mod convert;
pub mod eval;
pub mod forecast;
pub mod models;
pub mod predict;
pub mod tap;
pub mod train;
pub mod up;
