//! How long to wait between attempts, one policy for every retry of the runtime: the pipeline's backend calls,
//! the GitHub client, MongoDB transactions that conflicted, backfill downloads.

use std::time::Duration;

/// Waits that double from `first` up to `max`, spread by `jitter` so that many clients do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
    /// How far a wait is spread around its value, as a share of it: 0 exactly, 0.2 within ±20 %, 1 anywhere
    /// from nothing to twice the value.
    pub jitter: f64,
}

impl Backoff {
    /// The wait after `failures` failures in a row (1 for the first).
    pub fn wait(&self, failures: u32) -> Duration {
        let doubled = 2u32.saturating_pow(failures.saturating_sub(1).min(31));
        let wait = self.first.saturating_mul(doubled).min(self.max);
        if self.jitter <= 0.0 {
            return wait;
        }
        let jitter = self.jitter.min(1.0);
        wait.mul_f64(1.0 - jitter + 2.0 * jitter * unit())
    }
}

/// A number in [0, 1) that differs from call to call and from process to process.
fn unit() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    mixed as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_longest() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.0,
        };
        let waits: Vec<u128> = (1..=6).map(|n| b.wait(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.wait(1_000), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_within_its_share() {
        let b = Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: 0.2,
        };
        for _ in 0..100 {
            let first = b.wait(1).as_secs_f64();
            let third = b.wait(3).as_secs_f64();
            assert!((0.8..1.2).contains(&first), "{first}");
            assert!((3.2..4.8).contains(&third), "{third}");
        }
    }
}
