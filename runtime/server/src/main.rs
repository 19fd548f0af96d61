//! The `forgecast` command.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use forgecast::cli::{Cli, Command, UpArgs};
use forgecast::pipeline::Pipeline;
use forgecast::{aggregate, archive, backfill, check, config, http, logging, tap};

// Counts what each thread holds, so that a script call is stopped at its memory bound (`limits.max_call_bytes`).
#[global_allocator]
static ALLOCATOR: forgecast_script::memory::CountingAllocator =
    forgecast_script::memory::CountingAllocator;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Check(args) => Ok(check::run(&args.dir)),
        Command::Tap(args) => runtime.block_on(tap::run(args)).map(|()| true),
        Command::Up(args) => runtime.block_on(up(args)).map(|()| true),
        Command::Aggregate(args) => match args.every {
            Some(every) => runtime
                .block_on(aggregate_every(args, every))
                .map(|()| true),
            None => runtime.block_on(aggregate::run(args)).map(|report| {
                println!("{}", report.summary());
                true
            }),
        },
        Command::Archive(args) => runtime.block_on(run_archive(args)).map(|report| {
            println!(
                "{} events appended to the lake ({} already there, {} dead letters left to the store), {} hour files compressed",
                report.events, report.repeated, report.skipped, report.compressed
            );
            true
        }),
        Command::Backfill(args) => runtime
            .block_on(backfill::run(args))
            .map(|report| backfill::print(&report)),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let plan = config::plan(args)?;
    // Bind first: a busy port should stop start-up before any event is taken in.
    let listener = tokio::net::TcpListener::bind(plan.listen)
        .await
        .with_context(|| format!("cannot listen on {}", plan.listen))?;
    let pipeline = Pipeline::start(&plan).await?;
    let address = listener.local_addr()?;
    tracing::info!(component = "http", address = %address, "Serving http://{address}/");
    let stop_http = tokio_util::sync::CancellationToken::new();
    let server = {
        let stop = stop_http.clone();
        let guard = std::sync::Arc::new(http::Guard::new(plan.http.clone(), plan.bounds));
        let app = http::router(pipeline.shared().clone(), guard)
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        })
    };
    let finished_replay = async {
        while !pipeline.source_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = stop_signal() => tracing::info!(component = "pipeline", "Stopping: draining what was taken in (Ctrl-C again to force)."),
        _ = finished_replay => tracing::info!(component = "pipeline", "Replay finished; draining."),
    }
    let abort = pipeline.abort_token();
    tokio::spawn(async move {
        if stop_signal().await {
            tracing::warn!(component = "pipeline", "Forced stop.");
            abort.cancel();
        }
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
    Ok(())
}

/// `aggregate --every`: a run now, then one every `every` (counted from each start). A signal stops it between
/// runs, or once the current run is over (a second one at once).
async fn aggregate_every(
    args: forgecast::cli::AggregateArgs,
    every: std::time::Duration,
) -> anyhow::Result<()> {
    let (stop, force) = stops(
        "aggregate",
        "Stopping once the current run is over (Ctrl-C again to force).",
    );
    tokio::spawn(async move {
        force.cancelled().await;
        tracing::warn!(component = "aggregate", "Forced stop.");
        std::process::exit(130);
    });
    let mut next = tokio::time::Instant::now();
    while !stop.is_cancelled() {
        match aggregate::run(args.clone()).await {
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
    Ok(())
}

/// The archive until a signal: the first one stops it after the batches fetched, a second one stops waiting on a
/// failing disk.
async fn run_archive(args: forgecast::cli::ArchiveArgs) -> anyhow::Result<archive::Report> {
    let (closing, abort) = stops(
        "archive",
        "Stopping: appending what was fetched (Ctrl-C again to force).",
    );
    let report = archive::run(args, closing, abort).await?;
    tracing::info!(
        component = "archive",
        events = report.events,
        repeated = report.repeated,
        "Stopped cleanly."
    );
    Ok(report)
}

/// Two tokens for a command that stops in two steps: the first signal cancels the first token (after logging
/// `saying`), a second signal the second one.
fn stops(
    component: &'static str,
    saying: &'static str,
) -> (
    tokio_util::sync::CancellationToken,
    tokio_util::sync::CancellationToken,
) {
    let (first, second) = (
        tokio_util::sync::CancellationToken::new(),
        tokio_util::sync::CancellationToken::new(),
    );
    let (on_first, on_second) = (first.clone(), second.clone());
    tokio::spawn(async move {
        if stop_signal().await {
            tracing::info!(component, "{saying}");
            on_first.cancel();
        }
        if stop_signal().await {
            on_second.cancel();
        }
    });
    (first, second)
}

/// Ctrl-C, or SIGTERM as `docker stop` and Kubernetes send it; `false` if no signal can be awaited.
async fn stop_signal() -> bool {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return tokio::signal::ctrl_c().await.is_ok(),
    };
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.is_ok(),
        _ = term.recv() => true,
    }
}
