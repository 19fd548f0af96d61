//! Backtests the repository-growth forecasts on the GitHub-Ranking snapshots and prints MAPE per horizon for the
//! naive, drift, drift-per-time and damped-drift forecasts, with the damped drift's interval coverage.
//!
//! ```text
//! cargo run --release -p forgecast-models --example growth_backtest -- [data/github-ranking-top100]
//!     [--save model.json]
//! ```
//!
//! Three protocols: the reference one (every origin from the third snapshot, the model refitted at each origin
//! on the forecasts whose targets it has seen); targets from 2023-07 on only, with the model fitted once on the
//! snapshots up to 2022-07; and the last two snapshots only, fitted once on the ones before. `--save` writes the
//! model fitted on every snapshot, with these backtests, as the registry stores it.

use std::path::PathBuf;

use anyhow::Context;
use flate2::read::GzDecoder;
use forgecast_models::growth::{self, BacktestSpec, GrowthModel, Snapshot};

fn main() -> anyhow::Result<()> {
    let mut dir = PathBuf::from("data/github-ranking-top100");
    let mut save = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--save" => save = Some(PathBuf::from(args.next().context("--save needs a path")?)),
            _ => dir = PathBuf::from(arg),
        }
    }
    let snapshots = read_all(&dir)?;
    let dates: Vec<&str> = snapshots.iter().map(|s| s.date.as_str()).collect();
    println!("{} snapshots: {}", snapshots.len(), dates.join(" "));
    let position = |date: &str| dates.iter().position(|d| *d == date);
    let held_out = position("2023-07-01").context("no 2023-07-01 snapshot")?;
    let protocols = [
        (
            "reference protocol (origins from 2, refitted)".to_owned(),
            BacktestSpec::default(),
        ),
        (
            format!(
                "targets from {} on, fitted once on the snapshots before",
                dates[held_out]
            ),
            BacktestSpec {
                first_target: held_out,
                refit: false,
                ..BacktestSpec::default()
            },
        ),
        (
            format!(
                "last two snapshots ({} on), fitted once on the ones before",
                dates[snapshots.len() - 2]
            ),
            BacktestSpec {
                first_target: snapshots.len() - 2,
                refit: false,
                ..BacktestSpec::default()
            },
        ),
    ];
    let mut model = GrowthModel::fit(&snapshots, 2);
    for (name, spec) in protocols {
        let report = growth::backtest(&snapshots, &spec);
        println!("\n{name}\n{report}");
        model.backtests.push((name, report));
    }
    println!(
        "\nserved model, fitted on every snapshot: phi {:.4} from {} cases; spreads {:?}",
        model.phi, model.cases, model.spreads
    );
    if let Some(path) = save {
        std::fs::write(&path, model.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("saved {}", path.display());
    }
    Ok(())
}

/// Every `github-ranking-YYYY-MM-DD.csv.gz` of `dir`, in date order.
fn read_all(dir: &PathBuf) -> anyhow::Result<Vec<Snapshot>> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let date = name
                .strip_prefix("github-ranking-")?
                .strip_suffix(".csv.gz")?;
            Some((date.to_owned(), p.clone()))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|(date, path)| {
            let file = std::fs::File::open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            Ok(growth::read_snapshot(GzDecoder::new(file), &date)?)
        })
        .collect()
}
