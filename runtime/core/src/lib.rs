//! The vocabulary every Forgecast crate shares, with no network dependencies.
//!
//! - [`event`]: a GitHub event as it travels through the pipeline, parsed only as far as routing and counting
//!   need, with the original JSON kept alongside.
//! - [`topic`]: topic names and the records that travel on the bus, dead letters included.
//! - [`aggregate`]: which counters an event increments (time bucket × dimension × key).
//! - [`history`]: counts per month, quarter and year over a span at once, as the batch jobs define them.
//! - [`bus`] and [`store`]: the two backend traits, each with a short required surface, implemented in
//!   `forgecast-connect`.
//! - [`source`]: what a source of events hands to the pipeline.

pub mod aggregate;
pub mod bus;
pub mod event;
pub mod history;
pub mod source;
pub mod store;
pub mod time;
pub mod topic;

pub use event::{Event, EventError, EventFields};
pub use topic::{DeadLetter, Record, RecordBody};
