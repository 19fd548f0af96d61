//! The bus: topics between the routing stage and the processors.
//!
//! Delivery is at least once: a subscriber commits after its sink accepted a batch, and a batch that was not
//! committed may be delivered again. Sinks are idempotent, so redelivery changes nothing.

use std::future::Future;

use crate::topic::Record;

/// Why the bus refused an operation.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus was closed for shutdown; nothing more is accepted.
    #[error("the bus is closed")]
    Closed,
    /// A topic name the bus cannot carry.
    #[error("invalid topic: {0}")]
    Topic(String),
    /// The backend failed; the operation may be retried.
    #[error("bus backend failed: {0}")]
    Backend(String),
}

/// Which topics a subscription receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicFilter {
    /// Exactly this topic.
    Exact(String),
    /// Every topic whose name starts with this.
    Prefix(String),
}

impl TopicFilter {
    /// Whether `topic` passes this filter.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            TopicFilter::Exact(name) => topic == name,
            TopicFilter::Prefix(prefix) => topic.starts_with(prefix.as_str()),
        }
    }
}

/// Carries records from publishers to subscriber groups.
pub trait Bus: Send + Sync + 'static {
    /// What [`Bus::subscribe`] returns.
    type Subscription: Subscription;

    /// Publishes records in order per key; returns once the bus holds them (waits when consumers lag).
    fn publish(&self, records: Vec<Record>) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Joins `group`: the group's members split the matching records between them.
    fn subscribe(
        &self,
        group: &str,
        filters: Vec<TopicFilter>,
    ) -> Result<Self::Subscription, BusError>;

    /// Stops accepting records; subscribers receive what is left, then the end.
    fn close(&self);

    /// What the backend reports of itself, for `/metrics`; an in-process bus has nothing to add.
    fn stats(&self) -> BusStats {
        BusStats::default()
    }

    /// How many records a publisher with more waiting should gather into one [`Bus::publish`]; 0 for a bus
    /// that gains nothing from larger publishes (the default: consumers gather their own batches).
    fn publish_size(&self) -> usize {
        0
    }
}

/// What a bus backend reports of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Records waiting in the backend for each subscriber group, as last reported: `(group, records)`.
    pub lag: Vec<(String, u64)>,
    /// Records the backend failed to deliver (each is published again).
    pub produce_errors: u64,
    /// Produce requests the backend's client retried on its own.
    pub produce_retries: u64,
    /// Records this process received and has not committed yet: `(group, topic, partition, next offset)`,
    /// one per partition that holds some. A member that dies leaves these to the group's next owner.
    pub uncommitted: Vec<(String, String, i32, i64)>,
}

/// A member of a subscriber group.
pub trait Subscription: Send + 'static {
    /// Waits for up to `max` records; `None` once the bus is closed and drained.
    fn next_batch(
        &mut self,
        max: usize,
    ) -> impl Future<Output = Result<Option<Vec<Record>>, BusError>> + Send;

    /// Marks everything received so far as done, so it is not delivered again.
    fn commit(&mut self) -> impl Future<Output = Result<(), BusError>> + Send;
}
