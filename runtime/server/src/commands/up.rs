//! `forgecast up`: the pipeline and the HTTP server, until the replay ends or `shutdown`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::UpPlan;
use crate::http::{self, Guard};
use crate::pipeline::{Pipeline, Summary};
use crate::shutdown::Shutdown;

/// Binds the HTTP address, starts the pipeline, serves until a one-pass replay ends or the first step of
/// `shutdown`, then drains what was taken in (the second step stops waiting) and reports.
pub async fn run(plan: UpPlan, shutdown: Shutdown) -> Result<Summary> {
    // Bind first: a busy port should stop start-up before any event is taken in.
    let listener = tokio::net::TcpListener::bind(plan.listen)
        .await
        .with_context(|| format!("cannot listen on {}", plan.listen))?;
    let pipeline = Pipeline::start(&plan.pipeline).await?;
    let address = listener.local_addr()?;
    tracing::info!(component = "http", address = %address, "Serving http://{address}/");
    let stop_http = tokio_util::sync::CancellationToken::new();
    if plan.pipeline.models {
        // The trend forecaster refits off the request path when its input changes.
        tokio::spawn(crate::forecasts::keep_trends_fitted(
            pipeline.shared().store.clone(),
            stop_http.clone(),
        ));
        let store = pipeline.shared().store.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::repo_growth::register_growth(&store).await {
                tracing::warn!(component = "models", model = crate::repo_growth::GROWTH_MODEL, error = %e, "Cannot register the growth model.");
            }
        });
    }
    let server = {
        let stop = stop_http.clone();
        let guard = Arc::new(Guard::new(plan.http.clone(), plan.pipeline.bounds));
        let app = http::router(pipeline.shared().clone(), guard)
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        })
    };
    let finished_replay = async {
        while !pipeline.source_finished() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let by_signal = tokio::select! {
        _ = shutdown.closing.cancelled() => true,
        _ = finished_replay => {
            tracing::info!(component = "pipeline", "Replay finished; draining.");
            false
        }
    };
    // Draining waits on the backends; the next signal stops the wait (the first one, when the replay ended).
    let abort = pipeline.abort_token();
    tokio::spawn(async move {
        if by_signal {
            shutdown.abort.cancelled().await;
        } else {
            tokio::select! {
                _ = shutdown.closing.cancelled() => {}
                _ = shutdown.abort.cancelled() => {}
            }
        }
        abort.cancel();
    });
    let summary = pipeline.drain().await;
    stop_http.cancel();
    let _ = server.await;
    tracing::info!(
        component = "pipeline",
        source_events = summary.source_events,
        routed = summary.routed,
        stored = summary.written.stored,
        duplicates = summary.written.duplicates,
        dead_letters = summary.written.dead_letters,
        "Stopped cleanly."
    );
    Ok(summary)
}
