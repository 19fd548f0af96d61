//! `forgecast forecast backtest | trends | repos`: the forecasts of the trends' shares from the store's counters
//! (the bundled GitHut history loaded first, as `up` does), and of repository stars from the bundled snapshots
//! (one repository's also from the star counts the enricher kept in the store, as `GET /api/forecast/repos`
//! reads them), printed as tables or JSON.

use anyhow::bail;
use forgecast_core::stars::StarStore;
use forgecast_models::forecast::{Method, Settings};
use tokio_util::sync::CancellationToken;

use crate::backends::{Access, AnyStore, open_store};
use crate::config::{ForecastAction, ForecastPlan, StoragePlan};
use crate::forecasts::{backtest_all, forecast, history};
use crate::pipeline::load_bundled_history;
use crate::repo_growth::{bundled, forecast_repo, risers};

/// Runs the plan; prints what it found.
pub async fn run(plan: ForecastPlan) -> anyhow::Result<()> {
    if let ForecastAction::Repos { repo, limit, json } = &plan.action {
        return repos(&plan.storage, repo.as_deref(), plan.horizon, *limit, *json).await;
    }
    let store = open(&plan.storage).await?;
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
        ForecastAction::Repos { .. } => unreachable!("answered above"),
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

async fn open(storage: &StoragePlan) -> anyhow::Result<AnyStore> {
    match open_store(storage, Access::Reader, &CancellationToken::new()).await? {
        Some(store) => Ok(store),
        None => bail!("the store could not be reached"),
    }
}

/// Repository stars ahead: one repository from the bundled snapshots and the store's star counts, or the
/// ranking of the snapshots.
async fn repos(
    storage: &StoragePlan,
    repo: Option<&str>,
    horizon: usize,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let growth = bundled().map_err(anyhow::Error::msg)?;
    let as_of = growth
        .snapshots
        .last()
        .map(|s| s.date.as_str())
        .unwrap_or("-");
    match repo {
        Some(repo) => {
            let fetched = open(storage).await?.star_points(repo).await?;
            let Some(found) = forecast_repo(growth, repo, horizon, &fetched) else {
                bail!(
                    "{repo}: no snapshot lists it (the bundled snapshots hold the most starred repositories) and the enricher has not fetched it"
                );
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
                return Ok(());
            }
            println!(
                "{repo}: stars per snapshot, then forecast by damped drift, [80 % interval] (95 % interval)."
            );
            for (day, stars) in found.history.periods.iter().zip(&found.history.stars) {
                println!("  {day}  {stars:>10}");
            }
            let f = &found.forecast;
            for i in 0..f.periods.len() {
                println!(
                    "  {}  {:>10.0}  [{:.0} – {:.0}]  ({:.0} – {:.0})",
                    f.periods[i],
                    f.stars[i],
                    f.lower80[i],
                    f.upper80[i],
                    f.lower95[i],
                    f.upper95[i]
                );
            }
        }
        None => {
            let (relative, absolute) = risers(growth, horizon, limit);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "as_of": as_of, "horizon": horizon, "relative": relative, "absolute": absolute,
                    }))?
                );
                return Ok(());
            }
            println!(
                "Expected to grow most in {horizon} half-year(s) from the snapshot of {as_of}:"
            );
            for (title, list) in [("relative", &relative), ("absolute", &absolute)] {
                println!("{title}:");
                for r in list {
                    println!(
                        "  {:<40} {:>9} → {:>9.0}  ({:+.0}, {:+.2} %)",
                        r.repo, r.stars, r.expected, r.gain, r.gain_percent
                    );
                }
            }
        }
    }
    Ok(())
}
