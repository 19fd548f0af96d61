//! The served forecasters on the bundled data, with the protocols of their model cards: the language-share
//! combination beats naive on GitHut's pull requests, the damped drift beats drift on the GitHub-Ranking
//! snapshots, their intervals cover about what they claim, and the specs in `models/` hold the code's defaults.

use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use forgecast_models::forecast::githut::{self, Granularity};
use forgecast_models::forecast::{Method, Settings, backtest};
use forgecast_models::growth::{self, BacktestSpec, Snapshot};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn quarterly_shares(file: &str) -> githut::Shares {
    let json = std::fs::read(repository().join("data/githut").join(file))
        .expect("the GitHut file is bundled");
    githut::shares(&json, Granularity::Quarter, 20).expect("a GitHut file")
}

fn snapshots() -> Vec<Snapshot> {
    let dir = repository().join("data/github-ranking-top100");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the snapshots are bundled")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "gz"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let date = date_of(path);
            let file = std::fs::File::open(path).expect("readable");
            growth::read_snapshot(GzDecoder::new(file), &date).expect("a snapshot")
        })
        .collect()
}

fn date_of(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    name.trim_start_matches("github-ranking-")
        .trim_end_matches(".csv.gz")
        .to_owned()
}

#[test]
fn the_served_share_forecast_beats_naive_on_pull_requests() {
    let shares = quarterly_shares("gh-pull-request.json");
    let len = shares.periods.len();
    assert_eq!((len, shares.series.len()), (48, 20));
    // The reference protocol: horizon 4, the last 9 origins.
    let origins = len - 12..len - 3;
    let naive = backtest(
        &shares.series,
        &Settings::new(Method::Naive, 4),
        4,
        origins.clone(),
    )
    .unwrap();
    assert!(
        (naive.mase - 1.194).abs() < 0.0005,
        "the reference script's naive: {naive}"
    );
    let served = backtest(&shares.series, &Settings::default(), 4, origins).unwrap();
    assert_eq!(served.method, Method::Combination);
    assert!(served.mase < 0.96 * naive.mase, "{served}\n{naive}");
    assert!(
        served.coverage95 >= 0.9 && served.coverage80 >= 0.7,
        "{served}"
    );
    assert!(served.coverage80 <= served.coverage95);
}

#[test]
fn the_served_share_forecast_is_never_far_behind_naive_on_the_other_files() {
    for file in [
        "gh-push-event.json",
        "gh-star-event.json",
        "gh-issue-event.json",
    ] {
        let shares = quarterly_shares(file);
        let len = shares.periods.len();
        let naive = backtest(
            &shares.series,
            &Settings::new(Method::Naive, 4),
            4,
            len - 12..len - 3,
        )
        .unwrap();
        let served = backtest(&shares.series, &Settings::default(), 4, len - 12..len - 3).unwrap();
        assert!(served.mase < 1.03 * naive.mase, "{file}: {served}\n{naive}");
        assert!(served.coverage95 >= 0.85, "{file}: {served}");
    }
}

#[test]
fn forecasts_of_the_latest_quarters_keep_the_total_and_are_ordered() {
    let shares = quarterly_shares("gh-pull-request.json");
    let forecasts = Settings::default().forecast(&shares.series, 4).unwrap();
    let last_total: f64 = shares
        .series
        .iter()
        .map(|s| s.values[s.values.len() - 1])
        .sum();
    for step in 0..4 {
        let total: f64 = forecasts.iter().map(|f| f.point[step]).sum();
        assert!((total - last_total).abs() < 1e-9);
        for f in &forecasts {
            let ordered = [
                f.lower95[step],
                f.lower80[step],
                f.point[step],
                f.upper80[step],
                f.upper95[step],
            ];
            assert!(
                ordered.windows(2).all(|w| w[0] <= w[1]),
                "{}: {ordered:?}",
                f.key
            );
        }
    }
}

#[test]
fn the_damped_drift_beats_drift_on_the_ranking_snapshots() {
    let snapshots = snapshots();
    assert_eq!(
        snapshots.len(),
        13,
        "2019-01 to 2025-07, without the incomplete 2023-01"
    );
    let report = growth::backtest(&snapshots, &BacktestSpec::default());
    let expected = [(1, 4.69, 2.04), (2, 8.57, 3.82)];
    for (h, (steps, naive, drift)) in report.horizons.iter().zip(expected) {
        assert_eq!(h.steps, steps);
        // The reference script's figures, same protocol.
        assert!(
            (h.naive - naive).abs() < 0.005 && (h.drift - drift).abs() < 0.005,
            "{report}"
        );
        assert!(h.damped < 0.9 * h.drift, "{report}");
        assert!(h.damped < h.drift_per_time, "{report}");
        assert!(h.coverage95 >= 0.9 && h.coverage80 >= 0.75, "{report}");
    }
    // Fitted once on the snapshots up to 2022-07 and scored on the later ones only.
    let held_out = BacktestSpec {
        first_target: 8,
        refit: false,
        ..BacktestSpec::default()
    };
    let report = growth::backtest(&snapshots, &held_out);
    for h in &report.horizons {
        assert!(
            h.damped < 0.9 * h.drift && h.damped < h.drift_per_time,
            "{report}"
        );
    }
}

#[test]
fn the_specs_hold_the_code_defaults() {
    let spec = |name: &str| -> toml::Table {
        let text =
            std::fs::read_to_string(repository().join("models").join(name).join("model.toml"))
                .expect("the spec exists");
        toml::from_str(&text).expect("the spec is TOML")
    };
    let trends = spec("trends");
    let settings: Settings = trends["params"]
        .clone()
        .try_into()
        .expect("[params] reads as Settings");
    assert_eq!(settings, Settings::default());
    let repo_growth = spec("repo_growth");
    for data in [&trends, &repo_growth] {
        let path = data["training"]["data"].as_str().expect("training.data");
        assert!(repository().join(path).exists(), "{path}");
    }
}
