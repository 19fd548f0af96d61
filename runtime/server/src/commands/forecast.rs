//! `forgecast forecast backtest | trends`: the forecasts of the trends' shares from the store's counters (the
//! bundled GitHut history loaded first, as `up` does), printed as tables or JSON.

use anyhow::bail;
use forgecast_models::forecast::{Method, Settings};
use tokio_util::sync::CancellationToken;

use crate::backends::{Access, open_store};
use crate::config::{ForecastAction, ForecastPlan};
use crate::forecasts::{backtest_all, forecast, history};
use crate::pipeline::load_bundled_history;

/// Runs the plan; prints what it found.
pub async fn run(plan: ForecastPlan) -> anyhow::Result<()> {
    let Some(store) = open_store(&plan.storage, Access::Reader, &CancellationToken::new()).await?
    else {
        bail!("the store could not be reached");
    };
    load_bundled_history(&store).await?;
    let history = history(&store, &plan.query).await?;
    let labels = history.labels();
    let described = format!(
        "{} {}{} per {}, {} series, {} to {} ({} periods)",
        plan.query.dimension.as_deref().unwrap_or("language"),
        plan.query
            .metric
            .as_deref()
            .map(|m| format!("{m} "))
            .unwrap_or_default(),
        "shares",
        history.period.name(),
        history.series.len(),
        labels[0],
        labels[labels.len() - 1],
        labels.len()
    );
    match plan.action {
        ForecastAction::Backtest { origins } => {
            println!(
                "Backtest: {described}; horizon {}, the last {origins} origins; MASE scaled by each training window's mean absolute one-step change.",
                plan.horizon
            );
            let reports = backtest_all(&history, plan.horizon, origins)?;
            let naive = reports
                .iter()
                .find(|r| r.method == Method::Naive)
                .map(|r| r.mase)
                .unwrap_or(f64::NAN);
            let served = Settings::default().method;
            println!(
                "{:<16} {:>7} {:>7} {:>9}  {:<28} {:>7} {:>7}",
                "method", "MASE", "median", "/ naive", "MASE per step ahead", "cov80", "cov95"
            );
            for r in &reports {
                let steps: Vec<String> = r.mase_by_step.iter().map(|m| format!("{m:.3}")).collect();
                println!(
                    "{:<16} {:>7.3} {:>7.3} {:>9.3}  {:<28} {:>7.3} {:>7.3}{}",
                    r.method.name(),
                    r.mase,
                    r.median_mase,
                    r.mase / naive,
                    steps.join(" "),
                    r.coverage80,
                    r.coverage95,
                    if r.method == served { "  (served)" } else { "" }
                );
            }
            if let Some(r) = reports.first() {
                println!(
                    "{} forecasts per method, origins {}..={} of {} periods.",
                    r.forecasts,
                    labels[r.first_origin - 1],
                    labels[r.last_origin - 1],
                    labels.len()
                );
            }
        }
        ForecastAction::Trends { json } => {
            let settings = Settings::default();
            let series = forecast(&history, &settings, plan.horizon)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "as_of": labels[labels.len() - 1],
                        "horizon": plan.horizon,
                        "model": { "name": "trends", "method": settings.method.name() },
                        "series": series,
                    }))?
                );
                return Ok(());
            }
            println!(
                "Forecast by {} as of {}: {described}; percent, [80 % interval] (95 % interval).",
                settings.method.name(),
                labels[labels.len() - 1]
            );
            for s in &series {
                println!(
                    "{:<20} last {:>6.2}",
                    s.key,
                    s.history.shares[s.history.shares.len() - 1]
                );
                for i in 0..s.forecast.periods.len() {
                    let f = &s.forecast;
                    println!(
                        "  {:<8} {:>6.2}  [{:>6.2} – {:>6.2}]  ({:>6.2} – {:>6.2})",
                        f.periods[i],
                        f.shares[i],
                        f.lower80[i],
                        f.upper80[i],
                        f.lower95[i],
                        f.upper95[i]
                    );
                }
            }
        }
    }
    Ok(())
}
