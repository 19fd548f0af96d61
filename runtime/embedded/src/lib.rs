//! The embedded backends: everything in one process, nothing to install.
//!
//! - [`bus`]: the in-process bus, with Kafka's topic names and group semantics on bounded queues.
//! - [`store`]: the store in one SQLite file, events written once into the lake beside it
//!   ([`forgecast_lake::committed`]: hours going on plain, hours over compressed, each file's committed end
//!   recorded), counters in the same transaction; it is also the model registry
//!   (`registry`: versions and artifacts in the same file) and the keeper of predictions (`predictions`: one
//!   row per event, model and version, and the label counters in the same transaction) and of the streaming
//!   model's state (`outcomes`), and of the enricher's star points (`stars`).
//! - `write`: how a batch of events reaches the lake and SQLite, the lake under a lock of its own so that its
//!   compression does not hold the connection the model stages write through.

pub mod bus;
mod outcomes;
mod predictions;
mod registry;
mod stars;
pub mod store;
mod write;

pub use bus::{EmbeddedBus, EmbeddedSubscription};
pub use store::SqliteStore;
