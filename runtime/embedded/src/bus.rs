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

impl EmbeddedSubscription {
    /// Up to `max` records already in the group's queue, without waiting for more; `None` when there are none.
    pub async fn queued_batch(&mut self, max: usize) -> Option<Vec<Record>> {
        let mut queue = self.queue.lock().await;
        let (rx, left) = &mut *queue;
        take_queued(rx, left, max.max(1))
    }
}

/// Moves what `rx` holds now into `left` until there are `max` records, and takes up to `max` of them.
fn take_queued(
    rx: &mut mpsc::Receiver<Vec<Record>>,
    left: &mut VecDeque<Record>,
    max: usize,
) -> Option<Vec<Record>> {
    while left.len() < max {
        match rx.try_recv() {
            Ok(more) => left.extend(more),
            Err(_) => break,
        }
    }
    let take = left.len().min(max);
    (take > 0).then(|| left.drain(..take).collect())
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
        Ok(take_queued(rx, left, max))
    }

    async fn commit(&mut self) -> Result<(), BusError> {
        // Records leave the in-process queue when received; there is no later redelivery to prevent.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgecast_core::Event;

    fn records(ids: std::ops::Range<u32>) -> Vec<Record> {
        ids.map(|id| {
            let line = format!(
                r#"{{"id":"{id}","type":"PushEvent","actor":{{"login":"a"}},"repo":{{"name":"o/r"}},"created_at":"2025-01-01T15:00:00Z"}}"#
            );
            Record::event("events.push".into(), None, Arc::new(Event::parse(&line).unwrap()))
        })
        .collect()
    }

    fn ids(batch: &[Record]) -> Vec<String> {
        batch
            .iter()
            .map(|r| match &r.body {
                forgecast_core::RecordBody::Event(e) => e.id.to_string(),
                forgecast_core::RecordBody::DeadLetter(_) => unreachable!(),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_queued_batch_takes_what_is_there_in_order_and_never_waits() {
        let bus = EmbeddedBus::new();
        let mut member = bus
            .subscribe("writer", vec![TopicFilter::Prefix("events.".into())])
            .unwrap();
        assert!(
            member.queued_batch(10).await.is_none(),
            "nothing queued yet"
        );
        bus.publish(records(0..3)).await.unwrap();
        bus.publish(records(3..8)).await.unwrap();
        let first = member.queued_batch(4).await.unwrap();
        assert_eq!(ids(&first), ["0", "1", "2", "3"]);
        // What a publish brought beyond `max` stays for the next take, whichever way it is taken.
        let rest = member.next_batch(100).await.unwrap().unwrap();
        assert_eq!(ids(&rest), ["4", "5", "6", "7"]);
        assert!(member.queued_batch(10).await.is_none());
        bus.close();
        assert!(
            member.queued_batch(10).await.is_none(),
            "a closed, drained bus has nothing"
        );
        assert!(member.next_batch(10).await.unwrap().is_none());
    }
}
