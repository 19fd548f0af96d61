//! What the benchmarks share: the replay configuration and the rate line.

use std::time::Duration;

use forgecast_connect::replay::ReplayConfig;

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
