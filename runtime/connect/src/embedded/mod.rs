//! Backends of the embedded default: everything in one process, nothing to install.

mod bus;
mod lake;
mod store;

pub use bus::{EmbeddedBus, EmbeddedSubscription};
pub use store::SqliteStore;
