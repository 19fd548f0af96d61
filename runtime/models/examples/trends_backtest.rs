//! Backtests every share-forecasting method on the GitHut files, per quarter and per year, and prints one line per
//! method: MASE, its median over languages and per step ahead, and interval coverage.
//!
//! ```text
//! cargo run --release -p forgecast-models --example trends_backtest -- [data/githut] [--top N]
//!     [--no-renormalise] [--local] [--season M] [--shift K] [--by-language] [--save model.json]
//! ```
//!
//! Quarters: horizon 4, the last 9 origins (`len − 12 ..= len − 4`, the reference script's protocol). Years (only
//! complete ones): horizon 2, the last 4 origins (`len − 5 ..= len − 2`). Every method runs with the served
//! settings but its own method (`Settings::new(method, season)`).
//!
//! `--no-renormalise` keeps each language's forecast as it is; `--local` fits the smoothing parameters per language
//! instead of once for all; `--season M` sets the quarters' seasonal period (1 turns the seasonal adjustment off);
//! `--shift K` moves the quarterly origins K quarters earlier: with 12, the test values of the last origin end
//! where the first regular origin begins, the development window the settings were checked on. `--by-language`
//! also prints each language's MASE. `--save` writes the served model (`TrendModel` with the combination's
//! backtests of this run), as the registry stores it.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use forgecast_models::forecast::githut::{self, Granularity};
use forgecast_models::forecast::{Method, Settings, TrendModel, backtest};

const FILES: [&str; 4] = [
    "gh-pull-request.json",
    "gh-push-event.json",
    "gh-star-event.json",
    "gh-issue-event.json",
];

fn main() -> anyhow::Result<()> {
    let mut dir = PathBuf::from("data/githut");
    let mut top = 20;
    let mut renormalise = true;
    let mut save = None;
    let mut shift = 0;
    let mut by_language = false;
    let mut pooled = true;
    let mut quarter_season = 4;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--top" => top = args.next().context("--top needs a value")?.parse()?,
            "--no-renormalise" => renormalise = false,
            "--season" => {
                quarter_season = args.next().context("--season needs a value")?.parse()?
            }
            "--by-language" => by_language = true,
            "--local" => pooled = false,
            "--shift" => shift = args.next().context("--shift needs a value")?.parse()?,
            "--save" => save = Some(PathBuf::from(args.next().context("--save needs a path")?)),
            _ => dir = PathBuf::from(arg),
        }
    }
    let mut served = Vec::new();
    for file in FILES {
        let json = std::fs::read(dir.join(file)).with_context(|| format!("reading {file}"))?;
        for (granularity, season, horizon, last_origins) in [
            (Granularity::Quarter, quarter_season, 4, 9),
            (Granularity::Year, 1, 2, 4),
        ] {
            let shares = githut::shares(&json, granularity, top)?;
            let len = shares.periods.len();
            let shift = if granularity == Granularity::Quarter {
                shift
            } else {
                0
            };
            let origins = len + 1 - horizon - last_origins - shift..len + 1 - horizon - shift;
            let name = format!("{file} {granularity:?}");
            println!(
                "\n{name}: {} periods {}..{}, top {top}, horizon {horizon}, origins {}..={}",
                len,
                shares.periods[0],
                shares.periods[len - 1],
                origins.start,
                origins.end - 1
            );
            for method in Method::ALL {
                let settings = Settings {
                    renormalise,
                    pooled,
                    ..Settings::new(method, season)
                };
                let started = Instant::now();
                let report = backtest(&shares.series, &settings, horizon, origins.clone())?;
                println!("{report}  {:.2} s", started.elapsed().as_secs_f64());
                if by_language {
                    let scores: Vec<String> = report
                        .series
                        .iter()
                        .map(|s| format!("{} {:.2}", s.key, s.mase))
                        .collect();
                    println!("    {}", scores.join(", "));
                }
                if method == Settings::default().method {
                    served.push((name.clone(), report));
                }
            }
        }
    }
    if let Some(path) = save {
        let settings = Settings {
            renormalise,
            pooled,
            season: quarter_season,
            ..Settings::default()
        };
        let model = TrendModel::new(settings, 4, served);
        std::fs::write(&path, model.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("\nsaved {}", path.display());
    }
    Ok(())
}
