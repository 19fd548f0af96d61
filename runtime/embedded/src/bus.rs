//! The in-process bus: bounded queues per subscriber group, with Kafka's topic names and group semantics.
//!
//! Each group receives every matching record once; members of one group share its queue, so they split the
//! work, at most `max` records per batch (what a publish brought beyond that waits in the group's queue for
//! whichever member asks next). Queues are bounded, so a slow consumer slows the publisher instead of growing memory. Records
//! published before a group subscribed are not delivered to it, as with a Kafka consumer starting at the end.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use forgecast_core::Record;
use forgecast_core::bus::{Bus, BusError, Subscription, TopicFilter};
use forgecast_core::topic::validate_topic;
use tokio::sync::mpsc;

/// Batches a group's queue holds before publishers wait.
const QUEUE_BATCHES: usize = 128;

/// A group's queue: published batches, and what is left of the last one taken.
type Queue = Arc<tokio::sync::Mutex<(mpsc::Receiver<Vec<Record>>, VecDeque<Record>)>>;

/// A group's filters and the sending end of its queue.
type Route = (Vec<TopicFilter>, mpsc::Sender<Vec<Record>>);

struct Group {
    name: String,
    filters: Vec<TopicFilter>,
    tx: mpsc::Sender<Vec<Record>>,
    rx: Queue,
}

/// The in-process bus; cheap to clone, clones share the same topics.
#[derive(Clone, Default)]
pub struct EmbeddedBus {
    groups: Arc<Mutex<Option<Vec<Group>>>>,
}

impl EmbeddedBus {
    /// An open bus with no subscribers.
    pub fn new() -> EmbeddedBus {
        EmbeddedBus {
            groups: Arc::new(Mutex::new(Some(Vec::new()))),
        }
    }

    fn senders(&self) -> Result<Vec<Route>, BusError> {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let groups = groups.as_ref().ok_or(BusError::Closed)?;
        Ok(groups
            .iter()
            .map(|g| (g.filters.clone(), g.tx.clone()))
            .collect())
    }
}

impl Bus for EmbeddedBus {
    type Subscription = EmbeddedSubscription;

    async fn publish(&self, records: Vec<Record>) -> Result<(), BusError> {
        for record in &records {
            validate_topic(&record.topic).map_err(BusError::Topic)?;
        }
        for (filters, tx) in self.senders()? {
            let matching: Vec<Record> = records
                .iter()
                .filter(|r| filters.iter().any(|f| f.matches(&r.topic)))
                .cloned()
                .collect();
            if !matching.is_empty() {
                tx.send(matching).await.map_err(|_| BusError::Closed)?;
            }
        }
        Ok(())
    }

    fn subscribe(
        &self,
        group: &str,
        filters: Vec<TopicFilter>,
    ) -> Result<EmbeddedSubscription, BusError> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let groups = groups.as_mut().ok_or(BusError::Closed)?;
        if let Some(existing) = groups.iter().find(|g| g.name == group) {
            return Ok(EmbeddedSubscription {
                queue: existing.rx.clone(),
            });
        }
        let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
        let queue: Queue = Arc::new(tokio::sync::Mutex::new((rx, VecDeque::new())));
        groups.push(Group {
            name: group.to_string(),
            filters,
            tx,
            rx: queue.clone(),
        });
        Ok(EmbeddedSubscription { queue })
    }

    fn close(&self) {
        // Dropping the senders lets every queue drain and then end.
        self.groups.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// A member of a group on the [`EmbeddedBus`].
pub struct EmbeddedSubscription {
    queue: Queue,
}

impl Subscription for EmbeddedSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Record>>, BusError> {
        let max = max.max(1);
        let mut queue = self.queue.lock().await;
        let (rx, left) = &mut *queue;
        if left.is_empty() {
            match rx.recv().await {
                Some(batch) => left.extend(batch),
                None => return Ok(None),
            }
        }
        while left.len() < max {
            match rx.try_recv() {
                Ok(more) => left.extend(more),
                Err(_) => break,
            }
        }
        let take = left.len().min(max);
        Ok(Some(left.drain(..take).collect()))
    }

    async fn commit(&mut self) -> Result<(), BusError> {
        // Records leave the in-process queue when received; there is no later redelivery to prevent.
        Ok(())
    }
}
