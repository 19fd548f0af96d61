//! Forecasts as a user sees them: `forgecast forecast backtest` on the bundled history (the served method beats
//! naive there, its intervals cover within reason), `forecast trends`, and `GET /api/forecast` of a running `up`
//! with its registered trend model, `as_of` cutting the history, and the 400s that name the bad parameter.

mod support;

use std::process::Command;

use serde_json::Value;

fn forecast(data: &std::path::Path, args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forgecast"));
    command
        .arg("forecast")
        .args(args)
        .arg("--data-dir")
        .arg(data);
    support::stdout_of(&mut command)
}

/// The row of `method` in a backtest table: MASE, median, ratio to naive, then the per-step figures and coverage.
fn row(table: &str, method: &str) -> Vec<f64> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(method))
        .unwrap_or_else(|| panic!("no {method} in\n{table}"))
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect()
}

#[test]
fn the_served_method_beats_naive_on_the_bundled_history_and_its_intervals_cover() {
    let data = tempfile::tempdir().unwrap();
    let table = forecast(
        data.path(),
        &[
            "backtest",
            "--top",
            "20",
            "--horizon",
            "4",
            "--origins",
            "9",
        ],
    );
    assert!(table.contains("2012Q2 to 2024Q1 (48 periods)"), "{table}");
    let naive = row(&table, "naive");
    let served = row(&table, "combination");
    assert!(table.contains("(served)"), "{table}");
    // The reference protocol's naive figure on the same data.
    assert!((naive[0] - 1.194).abs() < 0.0005, "naive MASE {}", naive[0]);
    assert!(
        served[0] < naive[0],
        "served {} against naive {}",
        served[0],
        naive[0]
    );
    let (cov80, cov95) = (served[served.len() - 2], served[served.len() - 1]);
    assert!((0.65..=0.97).contains(&cov80), "80 % coverage {cov80}");
    assert!((0.85..=1.0).contains(&cov95), "95 % coverage {cov95}");

    let json: Value = serde_json::from_str(&forecast(
        data.path(),
        &[
            "trends",
            "--keys",
            "Rust,Go",
            "--as-of",
            "2021Q4",
            "--horizon",
            "2",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(json["as_of"], "2021Q4");
    assert_eq!(json["series"][0]["key"], "Rust");
    assert_eq!(
        json["series"][0]["forecast"]["periods"],
        serde_json::json!(["2022Q1", "2022Q2"])
    );
}

#[test]
fn repository_stars_are_forecast_on_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let out = forecast(
        data.path(),
        &["repos", "--repo", "rust-lang/rust", "--horizon", "2"],
    );
    assert!(
        out.starts_with("rust-lang/rust: stars per snapshot"),
        "{out}"
    );
    assert!(out.contains("2025-07-02"), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("  ") && l.contains('['))
            .count(),
        2,
        "{out}"
    );
    let json: Value =
        serde_json::from_str(&forecast(data.path(), &["repos", "--limit", "3", "--json"])).unwrap();
    assert_eq!(json["relative"].as_array().unwrap().len(), 3);
    assert_eq!(json["as_of"], "2025-07-02");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_forecasts_from_the_registered_model_and_names_bad_parameters() {
    let data = tempfile::tempdir().unwrap();
    let up = support::up(data.path(), &["--source", "none"]);
    let url = &up.url;
    // The trend model is fitted and registered off the request path at start.
    let model = support::champion_of(url, "trends").await;
    let metrics = &model["versions"][0]["metrics"];
    assert!(
        metrics["mase"].as_f64().unwrap() < metrics["mase_naive"].as_f64().unwrap(),
        "{metrics}"
    );

    let answer = support::get_json(&format!(
        "{url}/api/forecast?dimension=language&metric=PullRequestEvent&granularity=quarter&horizon=4&keys=Rust,Go&as_of=2021Q4"
    ))
    .await;
    assert_eq!(answer["as_of"], "2021Q4");
    assert_eq!(answer["horizon"], 4);
    assert_eq!(answer["model"]["name"], "trends");
    assert_eq!(answer["model"]["version"], model["champion"]);
    assert_eq!(answer["model"]["method"], "combination");
    let rust = &answer["series"][0];
    assert_eq!(rust["key"], "Rust");
    let history = rust["history"]["periods"].as_array().unwrap();
    assert_eq!(history.last().unwrap(), "2021Q4", "as_of cuts the history");
    let f = &rust["forecast"];
    assert_eq!(
        f["periods"],
        serde_json::json!(["2022Q1", "2022Q2", "2022Q3", "2022Q4"])
    );
    for i in 0..4 {
        let at = |k: &str| f[k][i].as_f64().unwrap();
        assert!(
            at("lower95") <= at("lower80")
                && at("lower80") <= at("shares")
                && at("shares") <= at("upper80")
                && at("upper80") <= at("upper95"),
            "{f}"
        );
    }
    // Without keys: the ten largest.
    let top = support::get_json(&format!("{url}/api/forecast")).await;
    assert_eq!(top["series"].as_array().unwrap().len(), 10);
    assert_eq!(top["as_of"], "2024Q1");

    let client = forgecast_github::http::client();
    for (query, named) in [
        ("as_of=2021-12", "as_of"),
        ("as_of=1999Q1", "as_of"),
        ("keys=Cobolt", "Cobolt"),
        ("horizon=99", "horizon"),
        ("metric=ForkEvent", "metric"),
        ("dimension=type", "a forecast needs at least"),
        ("color=blue", "`color`"),
        ("horizon=x", "horizon"),
        ("top=-1", "top"),
    ] {
        let response = client
            .get(format!("{url}/api/forecast?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{query}");
        let text = response.text().await.unwrap();
        assert!(text.contains(named), "{query}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_stars_are_forecast_from_the_snapshots_and_beat_drift_there() {
    let data = tempfile::tempdir().unwrap();
    // Stars the enricher fetched: a repository no snapshot lists, twice half a year apart and once a day later.
    {
        use forgecast_core::stars::{StarPoint, StarStore};
        let store =
            forgecast_embedded::SqliteStore::open_alongside(&data.path().join("forgecast.sqlite"))
                .unwrap();
        let point = |at: i64, stars: u64| StarPoint {
            repo: "someone/new".into(),
            at,
            stars,
        };
        // 2025-01-01, 2025-07-02, 2025-07-03.
        store
            .record_stars(vec![
                point(1_735_689_600, 1000),
                point(1_751_414_400, 1500),
                point(1_751_500_800, 1510),
            ])
            .await
            .unwrap();
    }
    let up = support::up(data.path(), &["--source", "none"]);
    let url = &up.url;
    let client = forgecast_github::http::client();
    let model = support::champion_of(url, "repo_growth").await;
    // Its backtest over the snapshots' rolling origins: at least 10 % better than drift one and two half-years ahead.
    let m = &model["versions"][0]["metrics"];
    for h in [1, 2] {
        let (damped, drift) = (
            m[format!("mape_h{h}")].as_f64().unwrap(),
            m[format!("mape_drift_h{h}")].as_f64().unwrap(),
        );
        assert!(
            damped <= 0.9 * drift,
            "h={h}: {damped} against drift {drift}"
        );
        let cover = m[format!("coverage95_h{h}")].as_f64().unwrap();
        assert!(cover > 0.85, "h={h}: 95 % coverage {cover}");
    }

    let one = support::get_json(&format!(
        "{url}/api/forecast/repos?repo=rust-lang/rust&horizon=2"
    ))
    .await;
    assert_eq!(one["model"]["name"], "repo_growth");
    assert_eq!(one["model"]["version"], model["champion"]);
    let series = &one["series"][0];
    assert_eq!(series["repo"], "rust-lang/rust");
    let history = series["history"]["stars"].as_array().unwrap();
    assert!(history.len() >= 10, "{series}");
    let last = history.last().unwrap().as_f64().unwrap();
    let f = &series["forecast"];
    assert_eq!(f["periods"].as_array().unwrap().len(), 2);
    for i in 0..2 {
        let at = |k: &str| f[k][i].as_f64().unwrap();
        assert!(
            at("lower95") <= at("lower80")
                && at("lower80") <= at("stars")
                && at("stars") <= at("upper80")
                && at("upper80") <= at("upper95"),
            "{f}"
        );
        assert!(
            at("stars") >= last,
            "a growing repository keeps growing: {f}"
        );
    }
    // A repository outside the snapshots is forecast from the fetched points; the drift runs over the half-year,
    // not the last day.
    let new = support::get_json(&format!(
        "{url}/api/forecast/repos?repo=someone/new&horizon=1"
    ))
    .await;
    let series = &new["series"][0];
    assert_eq!(
        series["history"]["periods"],
        serde_json::json!(["2025-01-01", "2025-07-02", "2025-07-03"])
    );
    assert_eq!(
        series["history"]["stars"],
        serde_json::json!([1000, 1500, 1510])
    );
    let ahead = series["forecast"]["stars"][0].as_f64().unwrap();
    assert!(ahead > 1510.0 && ahead <= 1510.0 + 510.0, "{series}");
    // The command line reads the same points from the same store, and answers the same.
    let printed: Value = serde_json::from_str(&forecast(
        data.path(),
        &["repos", "--repo", "someone/new", "--horizon", "1", "--json"],
    ))
    .unwrap();
    assert_eq!(&printed, series);

    let top = support::get_json(&format!("{url}/api/forecast/repos?limit=5")).await;
    assert_eq!(top["relative"].as_array().unwrap().len(), 5);
    assert_eq!(top["absolute"].as_array().unwrap().len(), 5);
    let gains: Vec<f64> = top["absolute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["gain"].as_f64().unwrap())
        .collect();
    assert!(gains.windows(2).all(|w| w[0] >= w[1]), "{gains:?}");

    for (query, status, named) in [
        ("repo=nobody/nothing", 404, "nobody/nothing"),
        ("horizon=9", 400, "horizon"),
        ("stars=1", 400, "`stars`"),
        ("limit=-1", 400, "limit"),
    ] {
        let response = client
            .get(format!("{url}/api/forecast/repos?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{query}");
        let text = response.text().await.unwrap();
        assert!(text.contains(named), "{query}: {text}");
    }
}
