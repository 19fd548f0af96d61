//! What sources hand to the pipeline.

use std::sync::Arc;

use crate::event::Event;
use crate::topic::DeadLetter;

/// One item from a source: an event, or input that could not be read as one.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A parsed event.
    Event(Arc<Event>),
    /// Input that is not an event; it goes to the dead-letter topic.
    Malformed(DeadLetter),
}
