//! `forgecast up --source github` against a local server that answers like GitHub's events feed: events reach
//! the store, `GET /api/sources` shows the query and the rate limit, `/metrics` counts the requests, and an
//! edited query script changes what is polled without a restart.

mod support;

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use support::{copy_dir, start_with_env};

/// Serves the first 50 events of the 2015 sample as `/events` (and `/orgs/rust-lang/events`), with rate-limit
/// headers; records the paths asked for.
async fn feed() -> (String, Arc<Mutex<Vec<String>>>) {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/gharchive-samples/2015-01-01-15.sample.json"),
    )
    .unwrap();
    let page: Vec<serde_json::Value> = text
        .lines()
        .take(50)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let body = serde_json::Value::Array(page).to_string();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let (body, seen) = (body.clone(), seen.clone());
        async move {
            seen.lock().unwrap().push(uri.path().to_string());
            let authorised = headers
                .get("authorization")
                .is_some_and(|v| v == "Bearer test-token-not-secret-42");
            let status = match (authorised, uri.path().starts_with("/repos/")) {
                (false, _) => StatusCode::UNAUTHORIZED,
                // Repository metadata for the enricher: this server knows none.
                (true, true) => StatusCode::NOT_FOUND,
                (true, false) => StatusCode::OK,
            };
            (
                status,
                [
                    ("x-ratelimit-limit", "5000"),
                    ("x-ratelimit-remaining", "4321"),
                    ("x-ratelimit-reset", "4102444800"),
                    ("etag", "\"e1\""),
                ],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, asked)
}

async fn get(url: &str) -> String {
    forgecast_github::http::client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polled_events_are_stored_and_the_source_is_visible() {
    let (api, asked) = feed().await;
    let scripts = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts"),
        scripts.path(),
    );
    // Only the events feed: the search queries would ask this server for paths it does not know.
    fs::remove_file(scripts.path().join("queries/new_repos.rhai")).unwrap();
    fs::remove_file(scripts.path().join("queries/new_repos.cases.jsonl")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let up = start_with_env(
        scripts.path(),
        data.path(),
        &["--source", "github", "--github-api-url", &api],
        &[("GITHUB_TOKEN", "test-token-not-secret-42")],
    );
    let url = up.url.clone();

    eventually("the 50 polled events are stored", async || {
        let live: serde_json::Value =
            serde_json::from_str(&get(&format!("{url}/api/live")).await).unwrap();
        live["health"]["events_stored"] == 50
    })
    .await;
    let sources: serde_json::Value =
        serde_json::from_str(&get(&format!("{url}/api/sources")).await).unwrap();
    assert_eq!(sources["github"]["rate"]["remaining"], 4321);
    assert_eq!(sources["github"]["queries"][0]["name"], "public-events");
    assert_eq!(
        sources["github"]["queries"][0]["last_outcome"],
        "50 items in 1 page(s)"
    );
    // The enricher asked for the repositories of the stored events, within its share of the rate limit
    // (4,321 of 5,000 left is above the 80% it must leave to the queries).
    eventually("repositories are looked up", async || {
        let sources: serde_json::Value =
            serde_json::from_str(&get(&format!("{url}/api/sources")).await).unwrap();
        sources["github"]["enrichment"]["missing"]
            .as_u64()
            .unwrap_or(0)
            > 0
    })
    .await;
    assert!(
        asked
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.starts_with("/repos/"))
    );
    let metrics = get(&format!("{url}/metrics")).await;
    assert!(
        metrics.contains("forgecast_github_requests_total{query=\"public-events\",status=\"200\"}"),
        "{metrics}"
    );

    // An edited query script changes what is polled, without a restart.
    fs::write(
        scripts.path().join("queries/events.rhai"),
        "fn queries() {\n    [#{ name: \"rust-lang-events\", path: \"/orgs/rust-lang/events\", every: 60 }]\n}\n",
    )
    .unwrap();
    fs::remove_file(scripts.path().join("queries/events.cases.jsonl")).unwrap();
    eventually("the new query runs", async || {
        asked
            .lock()
            .unwrap()
            .iter()
            .any(|p| p == "/orgs/rust-lang/events")
    })
    .await;
    let sources: serde_json::Value =
        serde_json::from_str(&get(&format!("{url}/api/sources")).await).unwrap();
    assert_eq!(sources["github"]["queries"].as_array().unwrap().len(), 1);
    assert_eq!(sources["github"]["queries"][0]["name"], "rust-lang-events");
    assert!(
        !up.all.lock().unwrap().contains("test-token-not-secret-42"),
        "the token reached the log"
    );
}
