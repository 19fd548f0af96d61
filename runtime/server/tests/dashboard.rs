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

/// A model name, a training text and a metric name that would run code if the page ever treated them as HTML.
const HOSTILE_MODEL: &str = "<img src=x onerror=\"window.__pwned='model'\">";
const HOSTILE_TRAINING: &str =
    "<script>window.__pwned='training'</script> 3 rows, <b>no</b> holdout";
const HOSTILE_METRIC: &str = "<svg onload=\"window.__pwned='metric'\">";

/// The Apache Storm project's Jira history (1,032 issues, about five evaluation windows of 200 labels),
/// converted to GH Archive hours and backfilled into `dir/data` as `tests/outcome.rs` does; returns the data
/// directory.
fn backfilled_storm(dir: &Path) -> std::path::PathBuf {
    use std::process::Command;
    let input = dir.join("jira");
    std::fs::create_dir_all(&input).unwrap();
    let file = "storm-jira-bug-fix-dataset.csv";
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/apache-jira-bugfix")
            .join(file),
        input.join(file),
    )
    .unwrap();
    let hours = dir.join("hours");
    let out = support::stdout_of(
        Command::new(env!("CARGO_BIN_EXE_forgecast"))
            .args(["convert", "jira", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&hours),
    );
    // The converter names the hours to replay: `… --sparse --from H --to H`.
    let range: Vec<&str> = out
        .split("--sparse")
        .nth(1)
        .unwrap_or_else(|| panic!("no range in {out}"))
        .split_whitespace()
        .take(4)
        .collect();
    let data = dir.join("data");
    support::stdout_of(
        Command::new(env!("CARGO_BIN_EXE_forgecast"))
            .args(["backfill", "--sparse", "--source-dir"])
            .arg(&hours)
            .args(&range)
            .arg("--scripts")
            .arg(support::scripts())
            .arg("--data-dir")
            .arg(&data),
    );
    data
}

/// Registers three versions of `name`, trained on `trainings`, a day apart from `created`, with
/// `metrics(i)`: v1 retired, v2 champion, v3 challenger.
async fn register_three(
    store: &SqliteStore,
    name: &str,
    created: i64,
    trainings: [&str; 3],
    metrics: impl Fn(usize) -> BTreeMap<String, f64>,
) {
    use forgecast_core::registry::{Alias, NewVersion, Registry};
    for (i, training) in trainings.into_iter().enumerate() {
        let version = NewVersion {
            name: name.into(),
            created: created + i as i64 * 86_400,
            training: training.into(),
            params: json!({"learner": "<i>none</i>"}),
            metrics: metrics(i),
            sha256: "00".repeat(32),
            size: 1,
        };
        store.register(version, vec![0]).await.unwrap();
    }
    for (version, alias) in [
        (1, Alias::Champion),
        (2, Alias::Champion),
        (3, Alias::Challenger),
    ] {
        store.set_alias(name, version, alias).await.unwrap();
    }
}

/// Registers three versions of [`HOSTILE_MODEL`]; v2, the champion, trained on [`HOSTILE_TRAINING`].
async fn register_hostile_model(data: &Path) {
    let store = SqliteStore::open(&data.join("forgecast.sqlite")).unwrap();
    let metrics = |i: usize| {
        BTreeMap::from([
            (HOSTILE_METRIC.to_string(), 0.5 + i as f64 / 8.0),
            ("auc".to_string(), 0.712_345 - i as f64 / 100.0),
        ])
    };
    let trainings = ["first try", HOSTILE_TRAINING, "third try"];
    register_three(&store, HOSTILE_MODEL, 1_700_000_000, trainings, metrics).await;
}

/// What the models view shows, per model card once there are `MIN_CARDS`; `null` before.
const READ_MODELS: &str = r##"
const cards = [...document.querySelectorAll("#models-list article.model")];
if (cards.length < MIN_CARDS) return null;
const rows = (card, id) => [...card.querySelectorAll(`[data-testid="${id}"] tbody tr`)]
  .map((tr) => [...tr.cells].map((td) => td.textContent));
const chart = (card, what) => [...card.querySelectorAll(`[data-testid="auc-chart"] ${what}`)];
return cards.map((card) => ({
  name: card.getAttribute("data-model"),
  title: card.querySelector(".model-name").textContent,
  versions: rows(card, "model-versions"),
  metrics: [...card.querySelectorAll('[data-testid="model-versions"] tbody tr')].map((tr) => [...tr.cells[3].querySelectorAll("li")]
    .map((li) => [li.querySelector(".metric-name").textContent, li.querySelector(".metric-value").textContent])),
  latest: rows(card, "latest-window"),
  decisions: rows(card, "decisions"),
  outcome_titles: [...card.querySelectorAll('[data-testid="decisions"] tbody tr')].map((tr) => tr.cells[5].getAttribute("title")),
  charts: card.querySelectorAll('[data-testid="auc-chart"]').length,
  points: chart(card, "circle").map((c) => [Number(c.getAttribute("data-window")), Number(c.getAttribute("data-value"))]),
  retrains: chart(card, "line.mark-retrain").map((l) => Number(l.getAttribute("data-window"))),
  promotions: chart(card, "line.mark-promotion").map((l) => [Number(l.getAttribute("data-window")), Number(l.getAttribute("data-version"))]),
  drift_status: card.querySelector('[data-testid="drift-status"]')?.textContent ?? null,
  drift: rows(card, "drift-table"),
}));
"##;

/// `value` with `digits` decimals as the page's `toFixed` writes it: Rust's formatting, except that an exact
/// half rounds away from zero (Rust rounds it to even).
fn fixed(value: f64, digits: usize) -> String {
    let exact = format!("{value:.1100}");
    let tail = &exact[exact.find('.').unwrap() + 1 + digits..];
    if tail.starts_with('5') && tail[1..].bytes().all(|b| b == b'0') {
        format!("{:.digits$}", f64::from_bits(value.to_bits() + 1))
    } else {
        format!("{value:.digits$}")
    }
}

/// Unix seconds as the page shows a time.
fn utc_time(unix: &Value) -> String {
    format_timestamp(unix.as_i64().unwrap())
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// Unix seconds as the page shows a date.
fn utc_day(unix: &Value) -> String {
    format_timestamp(unix.as_i64().unwrap())[..10].to_string()
}

/// A figure as the page shows it: three decimals, or "–" for none.
fn figure(value: &Value) -> String {
    value.as_f64().map_or("–".into(), |v| fixed(v, 3))
}

/// A table's rows of cell texts.
type Rows = Vec<Vec<String>>;
/// Each version's metrics as the page lists them: name and value.
type Metrics = Vec<Vec<(String, String)>>;

/// The versions table of a model (`/api/models/{name}`), newest first: version, role, created and training
/// per version (the cells of [`page_versions`]), and its metrics.
fn expected_versions(model: &Value) -> (Rows, Metrics) {
    let versions: Vec<&Value> = model["versions"].as_array().unwrap().iter().rev().collect();
    let cells = versions
        .iter()
        .map(|v| {
            vec![
                format!("v{}", v["version"]),
                v["alias"].as_str().unwrap_or("–").to_string(),
                utc_day(&v["created"]),
                v["training"].as_str().unwrap().to_string(),
            ]
        })
        .collect();
    let metrics = versions
        .iter()
        .map(|v| {
            let mut list: Vec<(String, String)> = v["metrics"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, value)| value.is_number())
                .map(|(name, value)| (name.clone(), figure(value)))
                .collect();
            list.sort();
            list
        })
        .collect();
    (cells, metrics)
}

/// The version, role, created and training cells of a card's versions table, as [`READ_MODELS`] read them.
fn page_versions(card: &Value) -> Rows {
    card["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            [0, 1, 2, 4]
                .iter()
                .map(|&i| row[i].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// The latest-window table of a model's evaluations (oldest first), as figure and value rows.
fn expected_latest(evaluations: &[Value]) -> Rows {
    let Some(e) = evaluations.last() else {
        return Vec::new();
    };
    [
        (
            "Labels",
            format!("{}–{}", shown(&e["first_seq"]), shown(&e["last_seq"])),
        ),
        ("Version", format!("v{}", e["version"])),
        (
            "Event time (UTC)",
            format!("{} – {}", utc_day(&e["from"]), utc_day(&e["to"])),
        ),
        ("Scored", shown(&e["count"])),
        ("AUC", figure(&e["auc"])),
        ("Log-loss", figure(&e["log_loss"])),
        ("Brier", figure(&e["brier"])),
        ("Positive rate", figure(&e["positive_rate"])),
        (
            "Label delay (days)",
            fixed(e["label_delay_days"].as_f64().unwrap(), 1),
        ),
    ]
    .into_iter()
    .map(|(name, value)| vec![name.to_string(), value])
    .collect()
}

/// The outcome of a decision's retrain as the page shows it: promoted or rejected with the challenger, or "—".
fn expected_outcome(result: &Value) -> String {
    match result["challenger"].as_u64() {
        Some(v) if result["promoted"] == true => format!("promoted v{v}"),
        Some(v) => format!("rejected v{v}"),
        None => "—".into(),
    }
}

/// The decisions table: newest first (the API's order reversed), at most 20; time, what called the policy,
/// champion, retrain, reason, outcome.
fn expected_decisions(decisions: &[Value]) -> Rows {
    decisions
        .iter()
        .rev()
        .take(20)
        .map(|d| {
            let called_by = if d["trigger"] == "alarm" {
                format!("alarm at label {}", shown(&d["window"]))
            } else {
                format!("window from label {}", shown(&d["window"]))
            };
            vec![
                utc_time(&d["at"]),
                called_by,
                format!("v{}", d["version"]),
                if d["retrain"] == true { "yes" } else { "no" }.into(),
                d["reason"].as_str().unwrap().to_string(),
                expected_outcome(&d["retrain_result"]),
            ]
        })
        .collect()
}

/// The drift table of the latest window of a `/api/models/{name}/drift` answer: features by PSI, largest
/// first, then the predictions; feature, kind, PSI, KS, shift.
fn expected_drift(drift: &Value) -> Rows {
    let Some(window) = drift["windows"].as_array().and_then(|w| w.last()) else {
        return Vec::new();
    };
    let row = |name: &str, kind: &str, figures: &Value| {
        let psi = figures["psi"].as_f64().unwrap();
        let shift = if psi >= 0.25 {
            "major"
        } else if psi >= 0.1 {
            "moderate"
        } else {
            ""
        };
        vec![
            name.to_string(),
            kind.to_string(),
            figure(&figures["psi"]),
            figure(&figures["ks"]),
            shift.to_string(),
        ]
    };
    let mut features: Vec<&Value> = window["features"].as_array().unwrap().iter().collect();
    features.sort_by(|a, b| {
        b["psi"]
            .as_f64()
            .unwrap()
            .total_cmp(&a["psi"].as_f64().unwrap())
            .then(a["feature"].as_str().cmp(&b["feature"].as_str()))
    });
    let mut rows: Rows = features
        .into_iter()
        .map(|f| {
            row(
                f["feature"].as_str().unwrap(),
                f["kind"].as_str().unwrap(),
                f,
            )
        })
        .collect();
    rows.push(row(
        "predicted probability",
        "prediction",
        &window["prediction"],
    ));
    rows
}

/// Waits (two minutes at most) until `/api/models` lists every model of `names`; returns the list.
async fn models_listing(url: &str, names: &[&str]) -> Value {
    let started = Instant::now();
    loop {
        let models = get_json(&format!("{url}/api/models")).await;
        let listed: Vec<&str> = models
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        if names.iter().all(|n| listed.contains(n)) {
            return models;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "models listed: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A model's path segment in the API's URLs.
fn model_path(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Checks every card of the models view against the API: versions and roles with their figures; for a
/// streaming model the AUC points and retrain and promotion marks, the latest window and the decisions; the
/// drift table, or that there are no drift figures yet. Returns the API's answers per model (versions,
/// evaluations, decisions).
async fn assert_models_view(
    url: &str,
    page: &Value,
    models: &Value,
) -> BTreeMap<String, [Value; 3]> {
    let listed = models.as_array().unwrap();
    let cards = page.as_array().unwrap();
    assert_eq!(
        cards.iter().map(|c| c["name"].clone()).collect::<Vec<_>>(),
        listed.iter().map(|m| m["name"].clone()).collect::<Vec<_>>(),
        "one card per model, in the API's order"
    );
    let client = forgecast_github::http::client();
    let mut answers = BTreeMap::new();
    for (card, model) in cards.iter().zip(listed) {
        let name = model["name"].as_str().unwrap();
        let base = format!("{url}/api/models/{}", model_path(name));
        let shown_model = get_json(&base).await;
        assert_eq!(card["title"], name, "the name as text");
        let (cells, metrics) = expected_versions(&shown_model);
        assert_eq!(page_versions(card), cells, "{name}: versions");
        let page_metrics: Metrics = serde_json::from_value(card["metrics"].clone()).unwrap();
        assert_eq!(page_metrics, metrics, "{name}: metrics");

        let evaluations = get_json(&format!("{base}/evaluations")).await;
        let decisions = get_json(&format!("{base}/decisions")).await;
        let (evaluations_list, decisions_list) = (
            evaluations.as_array().unwrap().clone(),
            decisions.as_array().unwrap().clone(),
        );
        let streaming = !evaluations_list.is_empty() || !decisions_list.is_empty();
        assert_eq!(card["charts"], json!(u64::from(streaming)), "{name}: chart");
        let points: Vec<(u64, f64)> = evaluations_list
            .iter()
            .filter(|e| e["auc"].is_number())
            .map(|e| (e["first_seq"].as_u64().unwrap(), e["auc"].as_f64().unwrap()))
            .collect();
        let page_points: Vec<(u64, f64)> = serde_json::from_value(card["points"].clone()).unwrap();
        assert_eq!(page_points, points, "{name}: one point per scored window");
        let retrains: Vec<u64> = decisions_list
            .iter()
            .filter(|d| d["retrain"] == true)
            .map(|d| d["window"].as_u64().unwrap())
            .collect();
        assert_eq!(card["retrains"], json!(retrains), "{name}: retrain marks");
        let promotions: Vec<(u64, u64)> = decisions_list
            .iter()
            .filter(|d| d["retrain_result"]["promoted"] == true)
            .filter_map(|d| {
                Some((
                    d["window"].as_u64()?,
                    d["retrain_result"]["challenger"].as_u64()?,
                ))
            })
            .collect();
        assert_eq!(
            card["promotions"],
            json!(promotions),
            "{name}: promotion marks"
        );
        assert_eq!(
            card["latest"],
            json!(expected_latest(&evaluations_list)),
            "{name}: latest window"
        );
        assert_eq!(
            card["decisions"],
            json!(expected_decisions(&decisions_list)),
            "{name}: decisions"
        );

        let drift = client.get(format!("{base}/drift")).send().await.unwrap();
        let drift = match drift.status().as_u16() {
            404 => Value::Null,
            200 => serde_json::from_slice(&drift.bytes().await.unwrap()).unwrap(),
            other => panic!("{name}: drift answered {other}"),
        };
        let drift_rows = expected_drift(&drift);
        assert_eq!(card["drift"], json!(drift_rows), "{name}: drift");
        let status = (streaming && drift_rows.is_empty()).then_some("No drift figures yet.");
        assert_eq!(card["drift_status"], json!(status), "{name}: drift status");
        answers.insert(name.to_string(), [shown_model, evaluations, decisions]);
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_view_shows_its_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = backfilled_storm(dir.path());
    register_hostile_model(&data).await;
    let server = up(&data, &["--source", "none"]);
    let url = server.url.clone();
    let names = [
        "issue_outcome",
        "sentiment",
        "trends",
        "repo_growth",
        HOSTILE_MODEL,
    ];
    let models = models_listing(&url, &names).await;
    let browser = Browser::start().await;
    browser.open(&format!("{url}/#models")).await;
    let page = browser
        .wait_for(
            "the models view",
            &READ_MODELS.replace("MIN_CARDS", &models.as_array().unwrap().len().to_string()),
        )
        .await;
    let answers = assert_models_view(&url, &page, &models).await;

    // The Jira history gave several windows, each scored (so that each is a point), and decisions to retrain.
    let [_, evaluations, decisions] = &answers["issue_outcome"];
    let evaluations = evaluations.as_array().unwrap();
    assert!(evaluations.len() >= 4, "{} windows", evaluations.len());
    assert!(evaluations.iter().all(|e| e["auc"].is_number()));
    let card = |name: &str| {
        page.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    let issue_outcome = card("issue_outcome");
    assert_eq!(
        issue_outcome["points"].as_array().unwrap().len(),
        evaluations.len(),
        "one chart point per evaluation window"
    );
    assert!(
        !issue_outcome["retrains"].as_array().unwrap().is_empty(),
        "{decisions}"
    );
    assert_eq!(
        issue_outcome["latest"][4],
        json!(["AUC", figure(&evaluations.last().unwrap()["auc"])])
    );
    for name in ["sentiment", "trends", "repo_growth"] {
        let c = card(name);
        assert_eq!(
            (c["charts"].as_u64(), c["versions"][0][1].as_str()),
            (Some(0), Some("champion")),
            "{name}: its versions only"
        );
    }

    // The hostile model: name, training text and metric name shown as they are, nothing of them run.
    let hostile = card(HOSTILE_MODEL);
    assert_eq!(hostile["title"], HOSTILE_MODEL);
    let roles: Vec<(String, String)> = hostile["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().into(), r[1].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        roles,
        [("v3", "challenger"), ("v2", "champion"), ("v1", "retired")]
            .map(|(v, r)| (v.to_string(), r.to_string()))
    );
    assert_eq!(hostile["versions"][1][2], "2023-11-15");
    assert_eq!(hostile["versions"][1][4], HOSTILE_TRAINING);
    assert_eq!(
        hostile["metrics"][1],
        json!([[HOSTILE_METRIC, "0.625"], ["auc", "0.702"]])
    );
    let injected = browser
        .run("return { pwned: window.__pwned || null, imgs: document.images.length, scripts: document.scripts.length };")
        .await;
    assert_eq!(injected, json!({ "pwned": null, "imgs": 0, "scripts": 1 }));
    assert_eq!(
        browser
            .run(r#"return document.getElementById("nav-models").textContent;"#)
            .await,
        "Models"
    );
    browser.screenshot("models").await;
    browser
        .run(r#"const card = [...document.querySelectorAll("article.model")].find((a) => a.getAttribute("data-model") === "issue_outcome");
            card.querySelector('[data-testid="auc-chart"]').scrollIntoView(); return true;"#)
        .await;
    browser.screenshot("models-issue-outcome").await;
}

/// A retrain policy's reason and a drift feature that would run code if the page ever treated them as HTML.
const HOSTILE_REASON: &str = "<img src=x onerror=\"window.__pwned='reason'\"> drift <b>high</b>";
const HOSTILE_FEATURE: &str = "<svg onload=\"window.__pwned='feature'\">";

/// A streaming model's history written straight into the store: versions 1 (retired), 2 (champion) and 3
/// (challenger), 25 evaluation windows (one without an AUC) and a decision after each, one with a hostile
/// reason.
async fn recorded_outcomes(data: &Path) {
    use forgecast_core::outcomes::{Decision, Drift, Evaluation, OutcomeStore};
    let store = SqliteStore::open(&data.join("forgecast.sqlite")).unwrap();
    let trainings = [
        "online, version 1",
        "online, version 2",
        "online, version 3",
    ];
    register_three(&store, "issue_outcome", 1_500_000_000, trainings, |_| {
        BTreeMap::new()
    })
    .await;
    for w in 0..25u64 {
        let first = w * 200 + 1;
        let to = 1_500_000_000 + (w as i64 + 1) * 10 * 86_400 + 3_725;
        // Version 2 promoted at window 1,201 (the seventh).
        let version = if w <= 6 { 1 } else { 2 };
        // As JSON, so that fields added to the records later (with their defaults) need no change here.
        let evaluation: Evaluation = serde_json::from_value(json!({
            "model": "issue_outcome", "version": version, "first_seq": first, "last_seq": first + 199,
            "from": to - 10 * 86_400, "to": to, "count": 200, "positive_rate": 0.4 + w as f64 / 100.0,
            "auc": (w != 3).then_some(0.55 + w as f64 / 97.0), "log_loss": 0.6 - w as f64 / 1000.0,
            "brier": 0.2 + w as f64 / 3000.0, "label_delay_days": 12.0 + w as f64 / 7.0,
        }))
        .unwrap();
        store.record_evaluation(evaluation).await.unwrap();
        let reason = if w == 21 {
            HOSTILE_REASON.to_string()
        } else {
            format!("reason {w}")
        };
        // What the retrains did: a promotion, a rejection (with the hostile reason), a retrain that trained no
        // challenger, and one without a result.
        let result = |challenger: Value, promoted: bool, candidate: &str, reason: &str| {
            json!({"challenger": challenger, "promoted": promoted, "metric": "auc", "champion_score": 0.61234,
                "challenger_score": 0.6347, "margin": 0.01, "champion_log_loss": 0.65, "challenger_log_loss": 0.62,
                "candidate": candidate, "trained_on": [first - 200, first - 1], "evaluated_on": [first, first + 199],
                "reason": reason})
        };
        let retrain_result = match first {
            1201 => result(json!(2), true, "batch", "challenger better by 0.022"),
            2601 => result(json!(3), false, "online", HOSTILE_REASON),
            3401 => result(
                Value::Null,
                false,
                "online",
                "training failed: too few labels",
            ),
            _ => Value::Null,
        };
        let decision: Decision = serde_json::from_value(json!({
            "model": "issue_outcome", "window": first, "at": to, "version": version,
            "script": "76328045986c", "retrain": w % 4 == 1 || !retrain_result.is_null(),
            "reason": reason, "context": {"new_labels": 200}, "retrain_result": retrain_result,
        }))
        .unwrap();
        store.record_decision(decision).await.unwrap();
    }
    // The change detector's alarm at label 2,677, decided at once: no retrain.
    let alarm: Decision = serde_json::from_value(json!({
        "model": "issue_outcome", "window": 2677, "trigger": "alarm",
        "at": 1_500_000_000 + 135 * 86_400, "version": 2, "script": "76328045986c", "retrain": false,
        "reason": "only one alarm", "context": {"new_labels": 2677, "alarms": 1},
    }))
    .unwrap();
    store.record_decision(alarm).await.unwrap();
    // Two windows' drift: a stable one, then one with a major, a moderate and a stable feature, one named to run
    // code.
    let reference = json!({"from": 1_500_000_000, "to": 1_502_000_000, "count": 200});
    for (window, psi) in [(4601, [0.01, 0.02, 0.03]), (4801, [0.05, 0.31, 0.1])] {
        let drift: Drift = serde_json::from_value(json!({
            "model": "issue_outcome", "version": 2, "window": window, "from": 1_520_000_000,
            "to": 1_521_000_000 + window as i64, "count": 200, "reference": reference,
            "features": [
                {"feature": "body_length", "kind": "numeric", "psi": psi[0], "ks": 0.0871},
                {"feature": HOSTILE_FEATURE, "kind": "categorical", "psi": psi[1], "ks": null},
                {"feature": "labels", "kind": "categorical", "psi": psi[2], "ks": null}],
            "prediction": {"feature": "probability", "kind": "numeric", "psi": 0.1234, "ks": 0.0456}}))
        .unwrap();
        store.record_drift(drift).await.unwrap();
    }
}

/// The retrain outcomes, an alarm's decision and the drift figures as the store keeps them and the API serves
/// them: a promotion, a rejection, a retrain without a challenger and one without a result; a drift window with
/// a major, a moderate and a stable feature, one named to run code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_view_shows_retrain_outcomes_and_drift() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    recorded_outcomes(&data).await;
    // The model stage off: nothing trained at start, the recorded history as it is.
    let config = dir.path().join("forgecast.toml");
    std::fs::write(&config, "models = false\n").unwrap();
    let server = up(
        &data,
        &["--source", "none", "--config", config.to_str().unwrap()],
    );
    let url = server.url.clone();
    let browser = Browser::start().await;
    browser.open(&format!("{url}/#models")).await;
    let page = browser
        .wait_for(
            "the retrain outcomes",
            &format!(
                "const cards = (() => {{ {READ_MODELS} }})(); return cards && cards[0].drift.length ? cards : null;",
                READ_MODELS = READ_MODELS.replace("MIN_CARDS", "1")
            ),
        )
        .await;

    // The expected page from the server's answers.
    let models = get_json(&format!("{url}/api/models")).await;
    let decisions = get_json(&format!("{url}/api/models/issue_outcome/decisions")).await;
    let drift = get_json(&format!("{url}/api/models/issue_outcome/drift")).await;
    let card = &page[0];
    assert_eq!(
        card["decisions"],
        json!(expected_decisions(decisions.as_array().unwrap()))
    );
    let rows = card["decisions"].as_array().unwrap();
    assert_eq!(rows.len(), 20, "the latest 20 of 26");
    let alarm = rows
        .iter()
        .find(|r| r[1] == "alarm at label 2,677")
        .expect("the alarm's decision");
    assert_eq!(alarm[4], "only one alarm");
    assert_eq!(rows[0][1], "window from label 4,801");
    assert_eq!(
        rows[0][0],
        utc_time(&json!(1_500_000_000 + 250 * 86_400 + 3_725))
    );
    assert_eq!(
        rows.iter()
            .map(|r| r[5].as_str().unwrap())
            .filter(|o| *o != "—")
            .collect::<Vec<_>>(),
        ["rejected v3", "promoted v2"]
    );
    let hostile = rows
        .iter()
        .find(|r| r[4] == HOSTILE_REASON)
        .expect("the hostile reason");
    assert_eq!(hostile[3], "yes");
    assert!(
        card["outcome_titles"]
            .as_array()
            .unwrap()
            .contains(&json!(format!(
                "online challenger, auc 0.635 against the champion's 0.612 (margin 0.010): {HOSTILE_REASON}"
            ))),
        "{}",
        card["outcome_titles"]
    );
    assert!(
        card["outcome_titles"]
            .as_array()
            .unwrap()
            .contains(&json!(format!(
                "batch challenger, auc 0.635 against the champion's 0.612 (margin 0.010): challenger better by 0.022"
            ))),
        "{}",
        card["outcome_titles"]
    );
    let retrains: Vec<u64> = (0..25u64)
        .filter(|w| w % 4 == 1 || *w == 6)
        .map(|w| w * 200 + 1)
        .collect();
    assert_eq!(card["retrains"], json!(retrains));
    assert_eq!(card["promotions"], json!([[1201, 2]]));
    assert_eq!(
        card["points"].as_array().unwrap().len(),
        24,
        "25 windows, one without an AUC"
    );
    let evaluations = get_json(&format!("{url}/api/models/issue_outcome/evaluations")).await;
    assert_eq!(
        card["latest"],
        json!(expected_latest(evaluations.as_array().unwrap()))
    );
    assert_eq!(card["latest"][8], json!(["Label delay (days)", "15.4"]));
    assert_eq!(card["drift"], json!(expected_drift(&drift)));
    assert_eq!(
        card["drift"],
        json!([
            [HOSTILE_FEATURE, "categorical", "0.310", "–", "major"],
            ["labels", "categorical", "0.100", "–", "moderate"],
            ["body_length", "numeric", "0.050", "0.087", ""],
            [
                "predicted probability",
                "prediction",
                "0.123",
                "0.046",
                "moderate"
            ],
        ])
    );
    assert_eq!(card["drift_status"], Value::Null);
    let (cells, _) = expected_versions(&models[0]);
    let versions = page_versions(card);
    assert_eq!(versions, cells);
    assert_eq!(
        versions.iter().map(|v| v[1].as_str()).collect::<Vec<_>>(),
        ["challenger", "champion", "retired"]
    );
    let injected = browser
        .run("return { pwned: window.__pwned || null, imgs: document.images.length, scripts: document.scripts.length };")
        .await;
    assert_eq!(injected, json!({ "pwned": null, "imgs": 0, "scripts": 1 }));
    browser.screenshot("models-outcomes").await;
}
