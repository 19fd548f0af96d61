//! The dashboard in a real browser (headless Chromium driven over WebDriver): the numbers on the page are the
//! numbers of its JSON API, live numbers move while events flow, and hostile text from GitHub is shown as
//! text and runs nothing. Screenshots of each view are saved under `target/screenshots/`.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use forgecast_core::Event;
use forgecast_core::store::{RepoMeta, Store};
use forgecast_core::time::{format_timestamp, now_unix};
use forgecast_embedded::SqliteStore;
use serde_json::{Value, json};
use support::{Browser, get_json, replay_once, up};

/// A repository name and organisation that would run code if the page ever treated them as HTML.
const HOSTILE_REPO: &str =
    "<script>window.__pwned='script'</script>/<img src=x onerror=\"window.__pwned='img'\">";
const HOSTILE_ORG: &str = "<svg onload=\"window.__pwned='svg'\">";
const HOSTILE_TOPIC: &str = "<iframe srcdoc=\"<script>parent.__pwned='topic'</script>\">";

/// Fills a store with one pass of the bundled events, plus the busiest repository of all with a hostile name.
async fn prepared_store() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    replay_once(data.path());
    let store = SqliteStore::open(&data.path().join("forgecast.sqlite")).unwrap();
    let time = format_timestamp(now_unix());
    let hostile: Vec<Arc<Event>> = (0..80)
        .map(|i| {
            let line = json!({"id": format!("9{i:011}"), "type": "IssuesEvent", "actor": {"login": "mallory"},
                "repo": {"name": HOSTILE_REPO}, "org": {"login": HOSTILE_ORG}, "created_at": time, "payload": {}});
            Arc::new(Event::parse(&line.to_string()).unwrap())
        })
        .collect();
    // Its metadata (as the enricher would cache it) names a hostile topic too.
    let meta = RepoMeta {
        name: HOSTILE_REPO.into(),
        found: true,
        language: None,
        topics: vec![HOSTILE_TOPIC.into(), "rust".into()],
        stars: 1,
        etag: None,
        fetched_at: now_unix(),
    };
    store.put_repo_meta(vec![meta]).await.unwrap();
    store.write_events(hostile).await.unwrap();
    data
}

const READ_LIVE: &str = r##"
const text = (id) => document.querySelector(`[data-testid="${id}"]`).textContent;
const rows = (id) => [...document.querySelectorAll(`[data-testid="${id}"] tbody tr`)]
  .map((tr) => [tr.querySelector(".key").textContent, tr.querySelector(".count").textContent]);
const bars = {};
for (const rect of document.querySelectorAll('[data-testid="per-minute-chart"] rect')) {
  const name = rect.getAttribute("data-series");
  bars[name] = (bars[name] || 0) + Number(rect.getAttribute("data-count"));
}
if (text("total") === "–") return null;
return { total: text("total"), stored: text("events-stored"), dead: text("dead-letters"),
  lag: text("lag"), live: text("scripts-live"), refused: text("scripts-refused"),
  accepted_reloads: text("reloads-accepted"), refused_reloads: text("reloads-refused"),
  repos: rows("top-repos"), languages: rows("top-languages"), orgs: rows("top-orgs"), topics: rows("top-topics"), bars,
  legend: [...document.querySelectorAll("#per-minute-legend li")].map((li) => li.getAttribute("data-series")),
  titles: document.querySelectorAll('[data-testid="per-minute-chart"] rect title').length,
  axis: [...document.querySelectorAll('[data-testid="per-minute-chart"] text')].map((t) => t.textContent) };
"##;

fn shown(n: &Value) -> String {
    // The page formats numbers with thousands separators (en-US).
    let digits = n.as_u64().unwrap().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rows(list: &Value) -> Vec<Vec<String>> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| vec![e["key"].as_str().unwrap().to_string(), shown(&e["count"])])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_shows_the_numbers_of_its_api_and_hostile_names_as_text() {
    let data = prepared_store().await;
    let server = up(data.path(), &["--source", "none"]);
    let url = server.url.clone();
    let browser = Browser::start().await;
    browser.open(&format!("{url}/")).await;
    let page = browser.wait_for("the live view", READ_LIVE).await;
    let api = get_json(&format!("{url}/api/live")).await;

    assert_eq!(page["total"], shown(&api["total"]));
    assert_eq!(page["stored"], shown(&api["health"]["events_stored"]));
    assert_eq!(
        page["stored"], "3,952",
        "3,872 bundled events and 80 hostile ones"
    );
    assert_eq!(page["dead"], shown(&api["health"]["dead_letters"]));
    for (tile, field) in [
        ("lag", "lag"),
        ("live", "scripts_live"),
        ("refused", "scripts_refused"),
        ("accepted_reloads", "reloads_accepted"),
        ("refused_reloads", "reloads_refused"),
    ] {
        assert_eq!(page[tile], shown(&api["health"][field]), "{tile}");
    }
    assert_eq!(
        serde_json::from_value::<Vec<Vec<String>>>(page["repos"].clone()).unwrap(),
        rows(&api["top_repos"])
    );
    assert_eq!(
        serde_json::from_value::<Vec<Vec<String>>>(page["languages"].clone()).unwrap(),
        rows(&api["top_languages"])
    );
    assert_eq!(
        serde_json::from_value::<Vec<Vec<String>>>(page["orgs"].clone()).unwrap(),
        rows(&api["top_orgs"])
    );
    assert_eq!(
        serde_json::from_value::<Vec<Vec<String>>>(page["topics"].clone()).unwrap(),
        rows(&api["top_topics"])
    );
    assert_eq!(
        page["topics"][0],
        json!([HOSTILE_TOPIC, "80"]),
        "the hostile topic is shown as text"
    );
    for series in api["series"].as_array().unwrap() {
        let name = series["name"].as_str().unwrap();
        let sum: u64 = series["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(page["bars"][name].as_u64().unwrap(), sum, "bars of {name}");
        assert!(
            page["legend"].as_array().unwrap().contains(&json!(name)),
            "{name} in the legend"
        );
    }
    assert!(
        page["titles"].as_u64().unwrap() > 0,
        "bars carry hover values"
    );
    assert!(
        page["axis"]
            .as_array()
            .unwrap()
            .contains(&json!("events / minute")),
        "the y axis is labelled"
    );

    // The hostile repository is the busiest: shown verbatim as text, nothing of it executed or parsed.
    assert_eq!(page["repos"][0][0], HOSTILE_REPO);
    assert!(
        page["orgs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[0] == HOSTILE_ORG)
    );
    let injected = browser
        .run("return { pwned: window.__pwned || null, imgs: document.images.length, svgs: document.querySelectorAll('svg').length, scripts: document.scripts.length, frames: document.querySelectorAll('iframe').length };")
        .await;
    assert_eq!(
        injected,
        json!({ "pwned": null, "imgs": 0, "svgs": 1, "scripts": 1, "frames": 0 })
    );
    browser.screenshot("live").await;

    // Event types by month come from the runtime's own counters: every stored event, each under its type.
    let types = get_json(&format!(
        "{url}/api/trends?dimension=type&granularity=month&keys=PushEvent,IssuesEvent"
    ))
    .await;
    let sum = |list: &Value| {
        list.as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum(&types["totals"]), 3952);
    let pushes_in_samples = forgecast_gharchive::replay::SAMPLES
        .iter()
        .map(|(name, bytes)| {
            forgecast_gharchive::replay::sample_text(name, bytes)
                .unwrap()
                .matches("\"type\":\"PushEvent\"")
                .count() as u64
        })
        .sum::<u64>();
    let series = types["series"].as_array().unwrap();
    assert_eq!(series[1]["key"], "PushEvent");
    assert_eq!(sum(&series[1]["counts"]), pushes_in_samples);
    assert_eq!(
        sum(&series[0]["counts"]),
        80 + 92,
        "the 80 hostile IssuesEvents and the samples' 92"
    );
    assert_eq!(types["overlay"]["slots"].as_array().unwrap().len(), 12);

    // Trends: every point of the chart and every row of the growth table are the API's numbers.
    browser.open(&format!("{url}/#trends")).await;
    let drawn = browser
        .wait_for("the trends chart", r#"const dots = [...document.querySelectorAll('[data-testid="trends-chart"] circle[data-series]')];
            if (!dots.length) return null;
            return { dots: dots.map((d) => [d.getAttribute("data-series"), d.getAttribute("data-label"), Number(d.getAttribute("data-value"))]),
              growth: [...document.querySelectorAll('[data-testid="growth"] tbody tr')].map((tr) => [tr.cells[0].textContent, tr.cells[3].textContent]),
              period: document.querySelector('[data-testid="growth-period"]').textContent };"#)
        .await;
    let trends = get_json(&format!("{url}/api/trends")).await;
    let mut expected_dots = Vec::new();
    for series in trends["series"].as_array().unwrap() {
        for (label, share) in trends["periods"]
            .as_array()
            .unwrap()
            .iter()
            .zip(series["shares"].as_array().unwrap())
        {
            if let Some(share) = share.as_f64() {
                expected_dots.push(json!([series["key"], label, share]));
            }
        }
    }
    let as_points = |list: &Vec<Value>| -> Vec<(String, String, f64)> {
        list.iter()
            .map(|d| {
                (
                    d[0].as_str().unwrap().into(),
                    d[1].as_str().unwrap().into(),
                    d[2].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (page_points, api_points) = (
        as_points(drawn["dots"].as_array().unwrap()),
        as_points(&expected_dots),
    );
    assert!(
        page_points == api_points,
        "chart points differ from the API: {} on the page, {} in the API",
        page_points.len(),
        api_points.len()
    );
    let hover = browser
        .run(r#"return document.querySelector('[data-testid="trends-chart"] circle[data-series] title').textContent;"#)
        .await;
    let first = &trends["series"][0];
    let count = first["counts"][0].as_u64().unwrap();
    assert!(
        hover.as_str().unwrap().starts_with(&format!(
            "{}, {}: ",
            first["key"].as_str().unwrap(),
            trends["periods"][0].as_str().unwrap()
        )) && hover
            .as_str()
            .unwrap()
            .ends_with(&format!("({} events)", shown(&json!(count)))),
        "hover shows share and count: {hover}"
    );
    assert!(
        expected_dots.len() > 8 * 40,
        "eight languages over the history: {}",
        expected_dots.len()
    );
    let growth = &trends["growth"];
    assert_eq!(drawn["period"], growth["period"]);
    let rows: Vec<Value> = growth["risers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(growth["fallers"].as_array().unwrap())
        .map(|r| {
            let c = r["change"].as_f64().unwrap();
            json!([
                r["key"],
                format!("{}{c:.2}", if c > 0.0 { "+" } else { "" })
            ])
        })
        .collect();
    assert_eq!(drawn["growth"].as_array().unwrap(), &rows);
    assert!(!rows.is_empty());

    // Where the compared languages are heading: every forecast point and row of the table from /api/forecast.
    let ahead = browser
        .wait_for("the forecasts", r#"const dots = [...document.querySelectorAll('[data-testid="trends-chart"] circle[data-forecast-series]')];
            const rows = [...document.querySelectorAll('[data-testid="forecast-table"] tbody tr')];
            if (!dots.length || !rows.length) return null;
            return { dots: dots.map((d) => [d.getAttribute("data-forecast-series"), d.getAttribute("data-label"), Number(d.getAttribute("data-value"))]),
              rows: rows.map((tr) => [...tr.cells].map((td) => td.textContent)),
              bands: document.querySelectorAll('[data-testid="trends-chart"] polygon[data-band]').length,
              as_of: document.querySelector('[data-testid="forecast-as-of"]').textContent };"#)
        .await;
    let keys: Vec<&str> = trends["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    let forecast = get_json(&format!(
        "{url}/api/forecast?dimension=language&metric=PullRequestEvent&granularity=quarter&horizon=4&keys={}",
        keys.join(",").replace('+', "%2B").replace('#', "%23")
    ))
    .await;
    assert_eq!(ahead["as_of"], forecast["as_of"]);
    assert_eq!(
        forecast["as_of"], "2024Q1",
        "the last quarter of the bundled history"
    );
    let mut expected_ahead = Vec::new();
    let mut expected_rows = Vec::new();
    for s in forecast["series"].as_array().unwrap() {
        let f = &s["forecast"];
        for (label, share) in f["periods"]
            .as_array()
            .unwrap()
            .iter()
            .zip(f["shares"].as_array().unwrap())
        {
            expected_ahead.push((
                s["key"].as_str().unwrap().to_string(),
                label.as_str().unwrap().to_string(),
                share.as_f64().unwrap(),
            ));
        }
        let history = s["history"]["shares"].as_array().unwrap();
        let now = history[history.len() - 1].as_f64().unwrap();
        let then = f["shares"][3].as_f64().unwrap();
        let change = ((then - now) * 100.0).round() / 100.0;
        expected_rows.push((
            change,
            s["key"].as_str().unwrap().to_string(),
            vec![
                s["key"].as_str().unwrap().to_string(),
                format!("{now:.2}%"),
                format!("{then:.2}%"),
                format!(
                    "{:.2}–{:.2}%",
                    f["lower80"][3].as_f64().unwrap(),
                    f["upper80"][3].as_f64().unwrap()
                ),
                format!("{}{change:.2}", if change > 0.0 { "+" } else { "" }),
            ],
        ));
    }
    expected_rows.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let drawn_ahead: Vec<(String, String, f64)> =
        serde_json::from_value(ahead["dots"].clone()).unwrap();
    assert_eq!(drawn_ahead, expected_ahead);
    assert_eq!(ahead["bands"].as_u64().unwrap() as usize, keys.len());
    let growth_rows = browser
        .wait_for("the growth panel", r#"const rows = [...document.querySelectorAll('[data-testid="repo-growth"] tbody tr')];
            return rows.length ? rows.map((tr) => [...tr.cells].map((td) => td.textContent)) : null;"#)
        .await;
    let growth = get_json(&format!("{url}/api/forecast/repos?horizon=2&limit=5")).await;
    let expected_growth: Vec<Vec<String>> = growth["relative"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            vec![
                r["repo"].as_str().unwrap().to_string(),
                shown(&r["stars"]),
                shown(&json!(r["expected"].as_f64().unwrap().round() as u64)),
                format!("+{:.2}%", r["gain_percent"].as_f64().unwrap()),
            ]
        })
        .collect();
    assert_eq!(growth_rows, json!(expected_growth));
    let table: Vec<Vec<String>> = serde_json::from_value(ahead["rows"].clone()).unwrap();
    assert_eq!(
        table,
        expected_rows.into_iter().map(|r| r.2).collect::<Vec<_>>()
    );

    // Choosing another event type redraws from the API's numbers for it.
    browser.run(r#"const s = document.getElementById("trends-metric"); s.value = "PushEvent"; s.dispatchEvent(new Event("change")); return null;"#).await;
    browser.wait_for("the pushes chart", r#"return document.querySelector('[data-testid="trends-metric-name"]').textContent === "pushes" || null;"#).await;
    let pushes = get_json(&format!("{url}/api/trends?metric=PushEvent")).await;
    let first = &pushes["series"][0];
    let expect = json!([first["key"], pushes["periods"][0], first["shares"][0]]);
    browser
        .wait_for("the first push point", &format!(r#"const d = document.querySelector('[data-testid="trends-chart"] circle[data-series]');
            return d && JSON.stringify([d.getAttribute("data-series"), d.getAttribute("data-label"), Number(d.getAttribute("data-value"))]) === {:?} || null;"#, expect.to_string()))
        .await;
    browser.screenshot("trends").await;

    browser.open(&format!("{url}/#scripts")).await;
    let listed = browser
        .wait_for("the scripts view", r#"const rows = [...document.querySelectorAll('[data-testid="scripts"] tbody tr')];
            return rows.length ? rows.map((tr) => [...tr.cells].slice(0, 3).map((td) => td.textContent)) : null;"#)
        .await;
    let scripts = get_json(&format!("{url}/api/scripts")).await;
    let expected: Vec<Vec<String>> = scripts
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            vec![
                s["id"].as_str().unwrap().into(),
                s["status"].as_str().unwrap().into(),
                s["hash"].as_str().unwrap().into(),
            ]
        })
        .collect();
    assert_eq!(
        serde_json::from_value::<Vec<Vec<String>>>(listed).unwrap(),
        expected
    );
    browser.screenshot("scripts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_numbers_move_while_events_flow_without_a_reload() {
    let data = tempfile::tempdir().unwrap();
    let server = up(data.path(), &["--replay-speed", "50"]);
    let url = server.url.clone();
    let browser = Browser::start().await;
    browser.open(&format!("{url}/")).await;
    browser.run("window.__samePage = true; return null;").await;
    let read = r#"const t = document.querySelector('[data-testid="events-stored"]').textContent;
        return t === "–" ? null : Number(t.replace(/,/g, ""));"#;
    let first = browser
        .wait_for("a first count", read)
        .await
        .as_u64()
        .unwrap();
    let started = Instant::now();
    loop {
        let now = browser.run(read).await.as_u64().unwrap_or(0);
        if now > first {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stored count stayed at {first}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        browser.run("return window.__samePage === true;").await,
        json!(true),
        "no page reload"
    );
}

/// The GitHut history as the test reads it: (event type, language, year) → events.
fn githut_years() -> BTreeMap<(String, String, i64), u64> {
    let mut counts = BTreeMap::new();
    for (kind, file) in [
        ("PullRequestEvent", "gh-pull-request.json"),
        ("PushEvent", "gh-push-event.json"),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/githut")
            .join(file);
        let rows: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for row in rows {
            let year: i64 = row["year"].as_str().unwrap().parse().unwrap();
            let n: u64 = row["count"].as_str().unwrap().parse().unwrap();
            *counts
                .entry((
                    kind.to_string(),
                    row["name"].as_str().unwrap().to_string(),
                    year,
                ))
                .or_insert(0) += n;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trends_are_the_history_files_shares() {
    let data = tempfile::tempdir().unwrap();
    let server = up(data.path(), &["--source", "none"]);
    let url = server.url.clone();
    let history = githut_years();
    for (kind, language) in [("PullRequestEvent", "Rust"), ("PushEvent", "Python")] {
        let trends = get_json(&format!(
            "{url}/api/trends?metric={kind}&granularity=year&from=2015&to=2016&keys={language}"
        ))
        .await;
        assert_eq!(trends["periods"], json!(["2015", "2016"]));
        for (i, year) in [2015, 2016].into_iter().enumerate() {
            let total: u64 = history
                .iter()
                .filter(|((k, _, y), _)| k == kind && *y == year)
                .map(|(_, n)| n)
                .sum();
            let mine = history[&(kind.to_string(), language.to_string(), year)];
            assert_eq!(trends["totals"][i], total);
            assert_eq!(trends["series"][0]["counts"][i], mine);
            let share = (10_000.0 * mine as f64 / total as f64).round() / 100.0;
            assert_eq!(
                trends["series"][0]["shares"][i].as_f64().unwrap(),
                share,
                "{kind} {language} {year}"
            );
        }
    }
    let quarters = get_json(&format!("{url}/api/trends?from=2023&to=2024")).await;
    assert_eq!(
        quarters["periods"],
        json!(["2023Q1", "2023Q2", "2023Q3", "2023Q4", "2024Q1"])
    );
    assert_eq!(quarters["growth"]["period"], "2024Q1");
    assert_eq!(quarters["growth"]["previous"], "2023Q1");
    let bad = forgecast_github::http::client()
        .get(format!("{url}/api/trends?metric=Nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("use one of PullRequestEvent")
    );
}

/// A text that would run code if the page ever treated it as HTML.
const HOSTILE_TEXT: &str =
    "<img src=x onerror=\"window.__pwned='text'\"> this is broken <b>again</b>";

const READ_SENTIMENT: &str = r##"
const text = (id) => document.querySelector(`[data-testid="${id}"]`).textContent;
const rows = (id) => [...document.querySelectorAll(`[data-testid="${id}"] tbody tr`)]
  .map((tr) => [...tr.cells].map((td) => td.textContent));
if (text("sentiment-total") === "–" || text("souring-month") === "–") return null;
const dots = {};
for (const c of document.querySelectorAll('[data-testid="sentiment-chart"] circle')) {
  (dots[c.getAttribute("data-series")] ||= []).push(Number(c.getAttribute("data-value")));
}
return { total: text("sentiment-total"), negative: text("sentiment-negative"), neutral: text("sentiment-neutral"),
  positive: text("sentiment-positive"), key: text("sentiment-key"), month: text("souring-month"),
  souring: rows("souring"), recent: rows("recent-negative"), dots,
  languages: [...document.querySelectorAll("#sentiment-language option")].map((o) => o.value) };
"##;

/// The page's tiles for an answer of `/api/sentiment`: texts scored, then each label's percent.
fn sentiment_tiles(api: &Value) -> (String, Vec<String>) {
    let series = api["series"].as_array().unwrap();
    let count = |label: &str| -> u64 {
        series
            .iter()
            .map(|b| b["counts"][label].as_u64().unwrap())
            .sum()
    };
    let all: u64 = ["negative", "neutral", "positive"]
        .iter()
        .map(|l| count(l))
        .sum();
    let shares = ["negative", "neutral", "positive"]
        .iter()
        .map(|l| format!("{:.1}%", 100.0 * count(l) as f64 / all as f64))
        .collect();
    (shown(&json!(all)), shares)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sentiment_view_shows_its_api_and_hostile_texts_as_text() {
    use forgecast_core::predictions::{PredictionStore, StoredPrediction};
    // One pass of the bundled events, scored by the default champion a first start trains.
    let data = tempfile::tempdir().unwrap();
    replay_once(data.path());
    {
        // A repository whose discussions soured in the latest month, and the newest negative text of all,
        // hostile; later than the replayed events, which the replay moves to about now.
        let store = SqliteStore::open(&data.path().join("forgecast.sqlite")).unwrap();
        let now = now_unix() + 400 * 86_400;
        let prediction =
            |id: String, label: &str, at: i64, repo: &str, text: &str| StoredPrediction {
                event_id: id,
                model: "sentiment".into(),
                version: 1,
                label: label.into(),
                scores: [(label.to_string(), 0.9), ("neutral".to_string(), 0.1)].into(),
                at,
                repo: repo.into(),
                org: None,
                language: Some("Rust".into()),
                excerpt: text.into(),
            };
        let mut added: Vec<StoredPrediction> = (0..4)
            .map(|i| {
                prediction(
                    format!("80{i}"),
                    "neutral",
                    now - 45 * 86_400,
                    HOSTILE_REPO,
                    "fine",
                )
            })
            .collect();
        added.extend((0..3).map(|i| {
            prediction(
                format!("81{i}"),
                "negative",
                now - 60,
                HOSTILE_REPO,
                "not fine",
            )
        }));
        added.push(prediction(
            "899".into(),
            "negative",
            now,
            HOSTILE_REPO,
            HOSTILE_TEXT,
        ));
        store.write_predictions(added).await.unwrap();
    }
    let server = up(data.path(), &["--source", "none"]);
    let url = server.url.clone();
    let browser = Browser::start().await;
    browser.open(&format!("{url}/#sentiment")).await;
    let page = browser.wait_for("the sentiment view", READ_SENTIMENT).await;
    let api = get_json(&format!("{url}/api/sentiment")).await;
    let souring = get_json(&format!("{url}/api/sentiment/souring?limit=10")).await;
    let recent = get_json(&format!(
        "{url}/api/sentiment/recent?label=negative&limit=20"
    ))
    .await;

    let (total, shares) = sentiment_tiles(&api);
    assert!(
        total.len() > 2,
        "the bundled discussions are scored: {total}"
    );
    assert_eq!(page["total"], total);
    assert_eq!(
        [&page["negative"], &page["neutral"], &page["positive"]],
        [&json!(shares[0]), &json!(shares[1]), &json!(shares[2])]
    );
    assert_eq!(page["key"], "every discussion");
    for label in ["negative", "neutral", "positive"] {
        let expected: Vec<f64> = api["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["shares"][label].as_f64().unwrap())
            .collect();
        let drawn: Vec<f64> = serde_json::from_value(page["dots"][label].clone()).unwrap();
        assert_eq!(drawn, expected, "{label} line");
    }
    assert_eq!(page["languages"], api["languages"]);

    assert_eq!(page["month"], souring["month"]);
    let souring_rows: Vec<Vec<String>> = souring["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            vec![
                r["repo"].as_str().unwrap().to_string(),
                format!("{:.2}%", r["negative_share"].as_f64().unwrap()),
                format!("{:.2}%", r["past_negative_share"].as_f64().unwrap()),
                format!("+{:.2}", r["change"].as_f64().unwrap()),
                shown(&r["count"]),
            ]
        })
        .collect();
    assert_eq!(page["souring"], json!(souring_rows));
    assert_eq!(
        page["souring"][0],
        json!([HOSTILE_REPO, "100.00%", "0.00%", "+100.00", "4"]),
        "the soured repository leads, its name shown as text"
    );

    let recent_rows: Vec<(String, String)> = recent["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["repo"].as_str().unwrap().into(),
                p["text"].as_str().unwrap().into(),
            )
        })
        .collect();
    let page_rows: Vec<(String, String)> = page["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[1].as_str().unwrap().into(), r[2].as_str().unwrap().into()))
        .collect();
    assert_eq!(page_rows, recent_rows);
    assert_eq!(
        page_rows[0],
        (HOSTILE_REPO.to_string(), HOSTILE_TEXT.to_string())
    );
    let injected = browser
        .run("return { pwned: window.__pwned || null, imgs: document.images.length, scripts: document.scripts.length };")
        .await;
    assert_eq!(injected, json!({ "pwned": null, "imgs": 0, "scripts": 1 }));
    browser.screenshot("sentiment").await;

    // One language: the page shows that language's own series.
    let language = api["languages"][0]
        .as_str()
        .expect("a language")
        .to_string();
    browser
        .run(&format!(
            r#"const s = document.getElementById("sentiment-scope"); s.value = "language"; s.dispatchEvent(new Event("change"));
               const l = document.getElementById("sentiment-language"); l.value = {language:?}; l.dispatchEvent(new Event("change")); return true;"#
        ))
        .await;
    let wanted = format!(
        "const key = document.querySelector('[data-testid=\"sentiment-key\"]').textContent; return key === {language:?} ? {{ total: document.querySelector('[data-testid=\"sentiment-total\"]').textContent }} : null;"
    );
    let chosen = browser.wait_for("the language's series", &wanted).await;
    let of_language = get_json(&format!(
        "{url}/api/sentiment?scope=language&key={}",
        language.replace('+', "%2B").replace('#', "%23")
    ))
    .await;
    assert_eq!(chosen["total"], sentiment_tiles(&of_language).0);
    let bad = forgecast_github::http::client()
        .get(format!("{url}/api/sentiment?scope=repo"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert!(bad.text().await.unwrap().contains("needs a key"));
}
