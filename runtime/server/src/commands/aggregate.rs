//! `forgecast aggregate`: the history of a lake ([`crate::history`]) once, or on a schedule (`--every`) as a
//! scheduler would run it, in compose without a host scheduler.

use anyhow::Result;

use crate::config::AggregatePlan;
use crate::history::{self, Report};
use crate::shutdown::Shutdown;

/// Runs the history once and returns its report, or with `plan.every` a run now and then one every period
/// (counted from each start) until `shutdown`: the first step stops it between runs or once the current one is
/// over, the second at once. A failed scheduled run is logged and the next one comes on time.
pub async fn run(plan: AggregatePlan, shutdown: Shutdown) -> Result<Option<Report>> {
    let Some(every) = plan.every else {
        return history::run(&plan, &shutdown.abort).await.map(Some);
    };
    let abort = shutdown.abort.clone();
    tokio::spawn(async move {
        abort.cancelled().await;
        // Seconds of work may be under way on every core; a second signal means now.
        std::process::exit(130);
    });
    let stop = shutdown.closing;
    let mut next = tokio::time::Instant::now();
    while !stop.is_cancelled() {
        match history::run(&plan, &shutdown.abort).await {
            Ok(report) => tracing::info!(
                component = "aggregate",
                rows = report.rows,
                "{}",
                report.summary()
            ),
            Err(e) => tracing::error!(
                component = "aggregate",
                error = format!("{e:#}"),
                "The history run failed; the next one comes on time."
            ),
        }
        let now = tokio::time::Instant::now();
        // A run longer than the period skips the starts it overran.
        while next <= now {
            next += every;
        }
        if stop.is_cancelled() {
            break;
        }
        tracing::info!(
            component = "aggregate",
            in_s = (next - now).as_secs(),
            "Next history run scheduled."
        );
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep_until(next) => {}
        }
    }
    tracing::info!(component = "aggregate", "Stopped.");
    Ok(None)
}
