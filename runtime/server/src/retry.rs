//! Retrying backend operations: a dead broker or database means waiting and trying again, not crashing. The
//! waits follow the runtime's one policy, [`Backoff`].

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

pub use forgecast_core::backoff::Backoff;
use tokio_util::sync::CancellationToken;

/// The pipeline's backend calls: 0.1 s, 0.2 s, … up to 10 s between attempts.
pub const PIPELINE: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(10),
    jitter: 0.0,
};

/// Runs `op` until it succeeds, waiting as `backoff` says between attempts. Returns `None` only if `stop` is
/// cancelled first. `on_failure` is called after each failed attempt.
pub async fn retry<T, E: Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    backoff: &Backoff,
    stop: &CancellationToken,
    mut on_failure: impl FnMut(),
    mut op: impl FnMut() -> F,
) -> Option<T> {
    let mut attempt = 1u32;
    loop {
        match op().await {
            Ok(value) => {
                if attempt > 1 {
                    tracing::info!(
                        component = "pipeline",
                        operation = what,
                        attempt,
                        "Operation succeeded after retrying."
                    );
                }
                return Some(value);
            }
            Err(e) => {
                on_failure();
                let wait = backoff.wait(attempt);
                tracing::warn!(component = "pipeline", operation = what, attempt, error = %e, retry_in_ms = wait.as_millis() as u64, "Operation failed; retrying.");
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_with_growing_waits_until_success() {
        let started = tokio::time::Instant::now();
        let mut calls = 0;
        let mut failures = 0;
        let value = retry(
            "test",
            &PIPELINE,
            &CancellationToken::new(),
            || failures += 1,
            || {
                calls += 1;
                let result = if calls < 4 { Err("down") } else { Ok(calls) };
                async move { result }
            },
        )
        .await;
        assert_eq!(value, Some(4));
        assert_eq!(failures, 3);
        // 0.1 + 0.2 + 0.4 s of (paused, virtual) waiting.
        assert_eq!(started.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_only_when_stopped() {
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            stopper.cancel();
        });
        let value: Option<()> = retry(
            "test",
            &PIPELINE,
            &stop,
            || {},
            || async { Err::<(), _>("down") },
        )
        .await;
        assert_eq!(value, None);
    }
}
