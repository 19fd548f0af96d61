//! The `forgecast` command: parse, set up logging and the async runtime, then the command's plan and its run.

use std::process::ExitCode;

use clap::Parser;
use forgecast::cli::{Cli, Command};
use forgecast::commands::{
    aggregate, archive, backfill, check, convert, eval, forecast, models, predict, tap, train, up,
};
use forgecast::shutdown::Shutdown;
use forgecast::{config, logging};

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
    match runtime.block_on(dispatch(cli.command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command; `Ok(false)` when it ran but did not succeed (a check with problems, a backfill with failed
/// hours).
async fn dispatch(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Check(args) => Ok(check::run(&args.dir)),
        Command::Tap(args) => tap::run(config::tap(args)?).await.map(|()| true),
        Command::Up(args) => {
            let plan = config::up(args)?;
            let shutdown = Shutdown::on_signals(
                "pipeline",
                "Stopping: draining what was taken in (Ctrl-C again to force).",
            );
            up::run(plan, shutdown).await.map(|_| true)
        }
        Command::Aggregate(args) => {
            let plan = config::aggregate(args)?;
            let shutdown = Shutdown::on_signals(
                "aggregate",
                "Stopping once the current run is over (Ctrl-C again to force).",
            );
            let report = aggregate::run(plan, shutdown).await?;
            if let Some(report) = report {
                println!("{}", report.summary());
            }
            Ok(true)
        }
        Command::Archive(args) => {
            let plan = config::archive(args)?;
            let shutdown = Shutdown::on_signals(
                "archive",
                "Stopping: appending what was fetched (Ctrl-C again to force).",
            );
            let report = archive::run(plan, shutdown).await?;
            tracing::info!(
                component = "archive",
                events = report.events,
                repeated = report.repeated,
                "Stopped cleanly."
            );
            println!(
                "{} events appended to the lake ({} already there, {} dead letters left to the store), {} hour files compressed",
                report.events, report.repeated, report.skipped, report.compressed
            );
            Ok(true)
        }
        Command::Train(args) => train::run(config::train(args)?).await.map(|_| true),
        Command::Eval(args) => eval::run(config::eval(args)?).await.map(|_| true),
        Command::Predict(args) => predict::run(config::predict(args)?)
            .await
            .map(|bad| bad == 0),
        Command::Convert(args) => convert::run(args).map(|()| true),
        Command::Forecast(args) => forecast::run(config::forecast(args)?).await.map(|()| true),
        Command::Models(args) => {
            let (action, storage) = config::models(args)?;
            models::run(action, storage).await.map(|()| true)
        }
        Command::Backfill(args) => {
            let plan = config::backfill(args)?;
            let shutdown = Shutdown::on_signals(
                "backfill",
                "Stopping once the hour in progress is stored (Ctrl-C again to stop at once).",
            );
            let report = backfill::run(plan, shutdown).await?;
            Ok(backfill::print(&report))
        }
    }
}
