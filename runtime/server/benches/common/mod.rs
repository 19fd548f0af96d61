//! What the benchmarks share: the replay configuration and the rate line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use forgecast_core::Event;
use forgecast_core::store::Store;
use forgecast_gharchive::replay::ReplayConfig;

/// `events/s (n events in t s)`.
pub fn rate(events: u64, took: Duration) -> String {
    format!(
        "{:>9.0} events/s  ({events} events in {:.2} s)",
        events as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    )
}

/// The bundled events replayed as fast as possible, `events` of them (rounds with new ids).
pub fn replay_config(events: u64) -> ReplayConfig {
    ReplayConfig {
        speed: 0.0,
        once: false,
        limit: Some(events),
        batch: 512,
    }
}

/// How long `store` takes to write `events` in batches of the store writer's size (32,768 records).
pub async fn time_writes<S: Store>(store: &S, events: &[Arc<Event>]) -> Duration {
    let started = Instant::now();
    for chunk in events.chunks(32_768) {
        store.write_events(chunk.to_vec()).await.unwrap();
    }
    started.elapsed()
}
