//! The vocabulary every Forgecast crate shares, with no network dependencies.
//!
//! - [`event`]: a GitHub event as it travels through the pipeline, parsed only as far as routing and counting
//!   need, with the original JSON kept alongside.
//! - [`topic`]: topic names and the records that travel on the bus, dead letters included.
//! - [`aggregate`]: which counters an event increments (time bucket × dimension × key).
//! - [`githut`]: GitHut 2.0's counts per language and quarter, as its files hold them.
//! - [`history`]: counts per month, quarter and year over a span at once, as the batch jobs define them.
//! - [`bus`] and [`store`]: the two backend traits, each with a short required surface, implemented by
//!   `forgecast-embedded`, `forgecast-kafka` and `forgecast-mongo`.
//! - [`outcomes`]: what the streaming issue-outcome model keeps (pending predictions, labels resolved once, the
//!   learner's state, evaluations), and the `OutcomeStore` trait.
//! - [`predictions`]: what the model stage keeps (a prediction per event, model and version) and the counters
//!   of predicted labels, and the `PredictionStore` trait.
//! - [`registry`]: trained model versions, their figures, artifacts and roles, and the `Registry` trait.
//! - [`source`]: what a source of events hands to the pipeline.
//! - [`backoff`]: how long to wait between attempts, the one retry policy of the runtime.
//! - [`time`]: Unix seconds and RFC 3339, as events carry them.

pub mod aggregate;
pub mod backoff;
pub mod bus;
pub mod event;
pub mod githut;
pub mod history;
pub mod json_path;
pub mod outcomes;
pub mod predictions;
pub mod registry;
pub mod source;
pub mod stars;
pub mod store;
pub mod time;
pub mod topic;

pub use event::{Event, EventError, EventFields};
pub use topic::{DeadLetter, Record, RecordBody};
