//! The GitHub client and poller against a local server that replays recorded GitHub answers: octokit's
//! recordings of api.github.com (pagination) and, for the events feed, real events from the bundled GH Archive
//! samples with the status codes and headers GitHub documents (304, rate limits, 5xx, `X-Poll-Interval`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, Request, Response};
use forgecast_core::source::{Incoming, QuerySpec};
use forgecast_github::client::Request as GetRequest;
use forgecast_github::{
    ClientConfig, FetchError, Fetched, GithubClient, Poller, QueryStatus, Token,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "ghp_forgecastTestToken0123456789abcdef";

/// One recorded answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: body.into(),
        }
    }

    fn header(mut self, name: &str, value: impl ToString) -> Answer {
        self.headers.push((name.into(), value.to_string()));
        self
    }
}

/// What the server received.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    at: SystemTime,
}

/// Serves queued answers per path-and-query (the last one repeats), and records every request.
#[derive(Clone, Default)]
struct Replay {
    answers: Arc<Mutex<HashMap<String, VecDeque<Answer>>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Replay {
    fn answer(&self, path: &str, answers: Vec<Answer>) {
        self.answers
            .lock()
            .unwrap()
            .insert(path.to_string(), answers.into());
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Starts serving on loopback; returns the base URL.
    async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let me = self.clone();
        let base_for_links = base.clone();
        let app = axum::Router::new().fallback(move |request: Request<Body>| {
            let me = me.clone();
            let base = base_for_links.clone();
            async move {
                let path = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                me.received.lock().unwrap().push(Received {
                    path: path.clone(),
                    headers: request.headers().clone(),
                    at: SystemTime::now(),
                });
                let answer = {
                    let mut answers = me.answers.lock().unwrap();
                    match answers.get_mut(&path) {
                        Some(queue) if queue.len() > 1 => queue.pop_front(),
                        Some(queue) => queue.front().cloned(),
                        None => None,
                    }
                };
                let answer =
                    answer.unwrap_or_else(|| Answer::json(404, r#"{"message":"Not Found"}"#));
                let mut response = Response::builder().status(answer.status);
                for (name, value) in &answer.headers {
                    response =
                        response.header(name, value.replace("https://api.github.com", &base));
                }
                response.body(Body::from(answer.body)).unwrap()
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }
}

/// octokit's recording of five linked pages of issues, as queued answers.
fn octokit(scenario: &str, replay: &Replay) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/octokit")
        .join(scenario)
        .join("normalized-fixture.json");
    let exchanges: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for exchange in exchanges {
        let mut answer = Answer {
            status: exchange["status"].as_u64().unwrap() as u16,
            headers: vec![],
            body: exchange["response"].to_string(),
        };
        for (name, value) in exchange["headers"].as_object().unwrap() {
            let skip = matches!(
                name.as_str(),
                "content-length" | "transfer-encoding" | "connection" | "content-encoding"
            );
            if let (false, Some(value)) = (skip, value.as_str()) {
                answer = answer.header(name, value);
            }
        }
        replay.answer(exchange["path"].as_str().unwrap(), vec![answer]);
    }
}

/// Real events from the bundled GH Archive sample.
fn events(skip: usize, take: usize) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/gharchive-samples/2015-01-01-15.sample.json"),
    )
    .unwrap();
    text.lines()
        .skip(skip)
        .take(take)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn page(items: &[serde_json::Value]) -> String {
    serde_json::Value::Array(items.to_vec()).to_string()
}

fn config(base: &str) -> ClientConfig {
    ClientConfig {
        base_url: base.to_string(),
        token: Token::new(TOKEN),
        max_attempts: 4,
        retry_base: Duration::from_millis(50),
        secondary_wait: Duration::from_millis(200),
        ..ClientConfig::default()
    }
}

fn query(name: &str, path: &str, params: &[(&str, &str)], every: u64, max_pages: u32) -> QuerySpec {
    QuerySpec {
        name: name.into(),
        path: path.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        every,
        max_pages,
    }
}

type Counts = Arc<Mutex<BTreeMap<(String, String), u64>>>;

/// Runs the poller on `queries` until `done` holds (or at most 20 s, for a loaded machine); returns the events it
/// produced, the outcomes it counted and the query states at the end.
async fn poll(
    base: &str,
    queries: Vec<QuerySpec>,
    done: impl Fn(&[Incoming], &[QueryStatus]) -> bool,
) -> (Vec<Incoming>, Counts, Vec<QueryStatus>) {
    let client = Arc::new(GithubClient::new(config(base)).unwrap());
    let poller = Poller::new(client, 1000);
    let statuses = poller.statuses();
    let counts: Counts = Arc::default();
    let observe = {
        let counts = counts.clone();
        Arc::new(move |q: &str, s: &str| {
            *counts
                .lock()
                .unwrap()
                .entry((q.to_string(), s.to_string()))
                .or_default() += 1
        })
    };
    let (tx, mut rx) = mpsc::channel(64);
    let stop = CancellationToken::new();
    let run = tokio::spawn(poller.run(move || queries.clone(), tx, observe, stop.clone()));
    let started = std::time::Instant::now();
    let mut items = Vec::new();
    loop {
        while let Ok(batch) = rx.try_recv() {
            items.extend(batch);
        }
        let now = statuses.lock().unwrap().clone();
        if done(&items, &now) || started.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    run.await.unwrap();
    let statuses = statuses.lock().unwrap().clone();
    (items, counts, statuses)
}

fn ran(statuses: &[QueryStatus], names: &[&str]) -> bool {
    names.iter().all(|n| {
        statuses
            .iter()
            .any(|s| s.name == *n && s.last_outcome.is_some())
    })
}

fn event_ids(items: &[Incoming]) -> Vec<String> {
    items
        .iter()
        .map(|i| match i {
            Incoming::Event(e) => e.id.clone(),
            Incoming::Malformed(l) => panic!("dead letter: {l:?}"),
        })
        .collect()
}

#[tokio::test]
async fn pages_are_followed_to_the_end_or_the_page_cap() {
    let replay = Replay::default();
    octokit("paginate-issues", &replay);
    let base = replay.serve().await;
    let path = "/repos/octokit-fixture-org/paginate-issues/issues";
    let (_, counts, statuses) = poll(
        &base,
        vec![
            query("all-pages", path, &[("per_page", "3")], 3600, 10),
            query("two-pages", path, &[("per_page", "3")], 3600, 2),
        ],
        |_, statuses| ran(statuses, &["all-pages", "two-pages"]),
    )
    .await;
    let outcome = |name: &str| {
        statuses
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .last_outcome
            .clone()
            .unwrap()
    };
    assert_eq!(outcome("all-pages"), "13 items in 5 page(s)");
    assert_eq!(outcome("two-pages"), "6 items in 2 page(s)");
    assert_eq!(
        counts.lock().unwrap()[&("all-pages".into(), "200".into())],
        5
    );
    assert_eq!(
        counts.lock().unwrap()[&("two-pages".into(), "200".into())],
        2
    );
    // Every request identified itself and carried the token; the second page came from the Link header.
    for request in replay.received() {
        assert_eq!(
            request.headers["authorization"],
            format!("Bearer {TOKEN}").as_str()
        );
        assert!(
            request.headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("forgecast/")
        );
    }
    assert!(
        replay
            .received()
            .iter()
            .any(|r| r.path == "/repositories/1000/issues?per_page=3&page=2")
    );
}

#[tokio::test]
async fn a_next_link_to_another_server_is_not_followed_and_gets_no_token() {
    // The other server would collect whatever is sent to it.
    let thief = Replay::default();
    let thief_base = thief.serve().await;
    let replay = Replay::default();
    let first = events(0, 3);
    replay.answer(
        "/events?per_page=3",
        vec![Answer::json(200, page(&first)).header(
            "link",
            format!(r#"<{thief_base}/steal?page=2&secret=1>; rel="next""#),
        )],
    );
    let base = replay.serve().await;
    let (items, counts, statuses) = poll(
        &base,
        vec![query("feed", "/events", &[("per_page", "3")], 3600, 5)],
        |_, statuses| ran(statuses, &["feed"]),
    )
    .await;
    assert_eq!(event_ids(&items).len(), 3, "the first page is kept");
    assert!(
        thief.received().is_empty(),
        "a request left for another server: {:?}",
        thief.received()
    );
    assert_eq!(
        counts.lock().unwrap()[&("feed".into(), "link_refused".into())],
        1
    );
    let outcome = statuses[0].last_outcome.clone().unwrap();
    assert!(outcome.contains("next-page link refused"), "{outcome}");
    assert!(!outcome.contains("secret"), "{outcome}");

    // Asked directly, the client refuses to send the token off the configured API, over http or https.
    let client = GithubClient::new(config(&base)).unwrap();
    let no_params = BTreeMap::new();
    for url in [
        format!("{thief_base}/steal?page=2"),
        "https://127.0.0.1:1/steal".to_string(),
    ] {
        let request = GetRequest {
            path: &url,
            params: &no_params,
            etag: None,
        };
        let err = client.get(&request, &|_| {}).await.unwrap_err();
        assert!(matches!(err, FetchError::Foreign { .. }), "{err:?}");
    }
    assert!(thief.received().is_empty());
}

#[tokio::test]
async fn the_feed_is_polled_conditionally_and_repeats_are_dropped() {
    let replay = Replay::default();
    let first = events(0, 6);
    let overlapping = events(3, 6);
    replay.answer(
        "/events?per_page=3",
        vec![
            Answer::json(200, page(&first[..3]))
                .header("etag", "\"v1\"")
                .header("x-poll-interval", 1)
                .header(
                    "link",
                    "<https://api.github.com/events?page=2>; rel=\"next\"",
                ),
            Answer::json(304, "").header("x-poll-interval", 1),
            Answer::json(200, page(&overlapping))
                .header("etag", "\"v2\"")
                .header("x-poll-interval", 1),
        ],
    );
    replay.answer("/events?page=2", vec![Answer::json(200, page(&first[3..]))]);
    let base = replay.serve().await;
    let (items, counts, statuses) = poll(
        &base,
        vec![query("feed", "/events", &[("per_page", "3")], 1, 3)],
        |items, _| items.len() >= 9,
    )
    .await;

    let ids = event_ids(&items);
    let expected: Vec<String> = first
        .iter()
        .chain(&overlapping[3..])
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids, expected,
        "six events, a 304, then only the three new ones of the overlapping page"
    );
    let received = replay.received();
    let feed: Vec<&Received> = received
        .iter()
        .filter(|r| r.path == "/events?per_page=3")
        .collect();
    assert!(feed.len() >= 3, "{feed:?}");
    assert_eq!(feed[1].headers["if-none-match"], "\"v1\"");
    assert_eq!(counts.lock().unwrap()[&("feed".into(), "304".into())], 1);
    assert!(statuses[0].events >= 9);
}

#[tokio::test]
async fn x_poll_interval_stretches_the_schedule() {
    let replay = Replay::default();
    replay.answer(
        "/events",
        vec![Answer::json(200, page(&events(0, 2))).header("x-poll-interval", 60)],
    );
    let base = replay.serve().await;
    let started = std::time::Instant::now();
    let (_, _, statuses) = poll(&base, vec![query("feed", "/events", &[], 1, 1)], |_, _| {
        started.elapsed() > Duration::from_millis(2500)
    })
    .await;
    assert_eq!(
        replay.received().len(),
        1,
        "every 1 s, but asked for 60 s: polled once in 2.5 s"
    );
    assert_eq!(statuses[0].every, 60);
}

/// Paused tokio time: the wait for the reset is virtual, so the test does not wait an hour. (No request
/// timeout here: with paused time, an idle runtime jumps straight to its next timer.)
#[tokio::test(start_paused = true)]
async fn a_used_up_rate_limit_pauses_until_the_reset() {
    let replay = Replay::default();
    let reset = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    replay.answer(
        "/events",
        vec![
            Answer::json(200, page(&events(0, 1)))
                .header("x-ratelimit-remaining", 0)
                .header("x-ratelimit-reset", reset)
                .header("x-ratelimit-limit", 5000),
            Answer::json(200, page(&events(1, 1)))
                .header("x-ratelimit-remaining", 4999)
                .header("x-ratelimit-reset", reset + 3600),
        ],
    );
    let base = replay.serve().await;
    let client = Arc::new(
        GithubClient::new(ClientConfig {
            timeout: None,
            ..config(&base)
        })
        .unwrap(),
    );
    let params = BTreeMap::new();
    client
        .get(
            &GetRequest {
                path: "/events",
                params: &params,
                etag: None,
            },
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(client.rate().remaining, Some(0));

    let started = tokio::time::Instant::now();
    let second = {
        let client = client.clone();
        tokio::spawn(async move {
            let params = BTreeMap::new();
            client
                .get(
                    &GetRequest {
                        path: "/events",
                        params: &params,
                        etag: None,
                    },
                    &|_| {},
                )
                .await
                .unwrap()
        })
    };
    // While it waits, the pause is visible (GET /api/sources shows it) and nothing is sent.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let rate = client.rate();
    assert_eq!(rate.paused_for.as_deref(), Some("primary rate limit"));
    assert!(rate.paused_until.unwrap() >= reset as i64, "{rate:?}");
    assert_eq!(replay.received().len(), 1);

    second.await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3590),
        "waited {waited:?} of virtual time for the reset"
    );
    assert_eq!(replay.received().len(), 2);
    assert_eq!(client.rate().remaining, Some(4999));
    assert_eq!(client.rate().paused_until, None);
}

#[tokio::test]
async fn secondary_limits_and_server_errors_are_retried_with_backoff() {
    let replay = Replay::default();
    replay.answer(
        "/events",
        vec![
            Answer::json(
                403,
                r#"{"message":"You have exceeded a secondary rate limit."}"#,
            )
            .header("retry-after", 1),
            Answer::json(429, r#"{"message":"Too many requests"}"#),
            Answer::json(502, "<html>bad gateway</html>"),
            Answer::json(200, page(&events(0, 1))),
        ],
    );
    let base = replay.serve().await;
    let client = GithubClient::new(ClientConfig {
        max_attempts: 5,
        ..config(&base)
    })
    .unwrap();
    let params = BTreeMap::new();
    let statuses = Mutex::new(Vec::new());
    let fetched = client
        .get(
            &GetRequest {
                path: "/events",
                params: &params,
                etag: None,
            },
            &|s| statuses.lock().unwrap().push(s.to_string()),
        )
        .await
        .unwrap();
    assert!(matches!(fetched, Fetched::Fresh { .. }));
    assert_eq!(*statuses.lock().unwrap(), ["403", "429", "502", "200"]);
    let at: Vec<SystemTime> = replay.received().iter().map(|r| r.at).collect();
    assert!(
        at[1].duration_since(at[0]).unwrap() >= Duration::from_millis(900),
        "retry-after: 1 was honoured"
    );
    assert!(
        at[2].duration_since(at[1]).unwrap() >= Duration::from_millis(150),
        "429 without retry-after waited the secondary minimum"
    );
}

#[tokio::test]
async fn a_forbidden_resource_is_not_retried() {
    let replay = Replay::default();
    replay.answer(
        "/orgs/x/events",
        vec![Answer::json(
            403,
            r#"{"message":"Resource not accessible by integration"}"#,
        )],
    );
    let base = replay.serve().await;
    let client = GithubClient::new(config(&base)).unwrap();
    let params = BTreeMap::new();
    let err = client
        .get(
            &GetRequest {
                path: "/orgs/x/events",
                params: &params,
                etag: None,
            },
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Status { status: 403, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("Resource not accessible"), "{err}");
    assert_eq!(replay.received().len(), 1);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_counted_and_polling_goes_on() {
    let replay = Replay::default();
    replay.answer(
        "/events",
        vec![
            Answer::json(200, "<html>maintenance</html>"),
            Answer::json(200, page(&events(0, 2))),
        ],
    );
    let base = replay.serve().await;
    let (items, counts, _) = poll(
        &base,
        vec![query("feed", "/events", &[], 1, 1)],
        |items, _| items.len() >= 2,
    )
    .await;
    assert_eq!(
        counts.lock().unwrap()[&("feed".into(), "bad_body".into())],
        1
    );
    assert_eq!(event_ids(&items).len(), 2, "the next poll worked");
}

/// A writer that keeps everything logged, for checking what reached the logs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_token_never_reaches_logs_or_errors_even_when_connecting_fails() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let err = tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Nothing listens on this port: every attempt is refused.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let client = GithubClient::new(config(&format!("http://127.0.0.1:{port}"))).unwrap();
            let params = BTreeMap::from([("q".to_string(), "language:rust".to_string())]);
            client
                .get(
                    &GetRequest {
                        path: "/search/repositories",
                        params: &params,
                        etag: None,
                    },
                    &|_| {},
                )
                .await
                .unwrap_err()
        })
    });
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        matches!(err, FetchError::GaveUp { attempts: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("cannot connect"), "{err}");
    assert!(
        logs.contains("Request failed; retrying."),
        "the retries were logged:\n{logs}"
    );
    for text in [logs.as_str(), &err.to_string(), &format!("{err:?}")] {
        assert!(
            !text.contains(TOKEN) && !text.contains("forgecastTestToken"),
            "token leaked in:\n{text}"
        );
    }
}

mod enrichment {
    use super::*;
    use forgecast_core::store::Store;
    use forgecast_embedded::SqliteStore;
    use forgecast_github::{EnrichConfig, EnrichStats, Enricher};

    async fn enrich(
        base: &str,
        store: &SqliteStore,
        config: EnrichConfig,
        names: &[&str],
        until: impl Fn(&EnrichStats) -> bool,
    ) -> EnrichStats {
        let client = Arc::new(GithubClient::new(super::config(base)).unwrap());
        let enricher = Enricher::new(client, store.clone(), config);
        let stats = enricher.stats();
        let (tx, rx) = mpsc::channel(16);
        let stop = CancellationToken::new();
        let run = tokio::spawn(enricher.run(rx, Arc::new(|_: &str, _: &str| {}), stop.clone()));
        for name in names {
            tx.send(name.to_string()).await.unwrap();
        }
        let started = std::time::Instant::now();
        while !until(&stats.lock().unwrap()) && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
        run.await.unwrap();
        stats.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn repositories_are_cached_with_their_etag_and_refreshed_conditionally() {
        let replay = Replay::default();
        octokit("get-repository", &replay);
        let rust = r#"{"full_name":"rust-lang/rust","language":"Rust","topics":["compiler"],"stargazers_count":100000}"#;
        replay.answer(
            "/repos/rust-lang/rust",
            vec![Answer::json(200, rust).header("etag", "\"r1\"")],
        );
        replay.answer(
            "/repos/someone/gone",
            vec![Answer::json(404, r#"{"message":"Not Found"}"#)],
        );
        let base = replay.serve().await;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        let names = [
            "octokit-fixture-org/hello-world",
            "rust-lang/rust",
            "someone/gone",
            "rust-lang/rust",
        ];
        let stats = enrich(&base, &store, EnrichConfig::default(), &names, |s| {
            s.fetched + s.missing + s.cached >= 3
        })
        .await;
        assert_eq!((stats.fetched, stats.missing), (2, 1), "{stats:?}");

        let cached = store
            .repo_meta(vec![
                "octokit-fixture-org/hello-world".into(),
                "rust-lang/rust".into(),
                "someone/gone".into(),
            ])
            .await
            .unwrap();
        assert_eq!(cached[0].topics, ["fixtures", "hello", "hello-world"]);
        assert_eq!(cached[0].stars, 42);
        assert_eq!(
            cached[0].etag.as_deref(),
            Some("\"00000000000000000000000000000000\"")
        );
        assert_eq!(cached[1].language.as_deref(), Some("Rust"));
        assert!(!cached[2].found, "a 404 is remembered");
        // Each fetch keeps the repository's stars as a point, for its growth forecast; a 404 keeps none.
        use forgecast_core::stars::StarStore;
        let points = store.star_points("rust-lang/rust").await.unwrap();
        assert_eq!(points.iter().map(|p| p.stars).collect::<Vec<_>>(), [100000]);
        assert_eq!(points[0].at, cached[1].fetched_at);
        assert!(store.star_points("someone/gone").await.unwrap().is_empty());

        // Fresh entries are not asked again; stale ones are asked conditionally and a 304 keeps them.
        let fresh = enrich(
            &base,
            &store,
            EnrichConfig::default(),
            &["rust-lang/rust"],
            |s| s.cached >= 1,
        )
        .await;
        assert_eq!(fresh.cached, 1);
        replay.answer("/repos/rust-lang/rust", vec![Answer::json(304, "")]);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let stale = EnrichConfig {
            stale_after: Duration::ZERO,
            ..EnrichConfig::default()
        };
        let refreshed = enrich(&base, &store, stale, &["rust-lang/rust"], |s| {
            s.unchanged >= 1
        })
        .await;
        assert_eq!(refreshed.unchanged, 1);
        // The refresh is a fetch too: a second point (a second later at least, points being per second).
        let points = store.star_points("rust-lang/rust").await.unwrap();
        assert_eq!(points.len(), 2, "{points:?}");
        assert!(points[0].at < points[1].at && points[1].stars == 100000);
        let last = replay
            .received()
            .into_iter()
            .rfind(|r| r.path == "/repos/rust-lang/rust")
            .unwrap();
        assert_eq!(last.headers["if-none-match"], "\"r1\"");
        assert_eq!(
            store
                .repo_meta(vec!["rust-lang/rust".into()])
                .await
                .unwrap()[0]
                .language
                .as_deref(),
            Some("Rust")
        );
    }

    #[tokio::test]
    async fn a_repository_name_that_github_cannot_have_given_is_not_requested() {
        let replay = Replay::default();
        replay.answer(
            "/repos/a/one",
            vec![Answer::json(
                200,
                r#"{"full_name":"a/one","language":"Go"}"#,
            )],
        );
        let base = replay.serve().await;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        let names = ["x/../../admin/secret?", "a/one?x=1", "a/b/c", "a/one"];
        let stats = enrich(&base, &store, EnrichConfig::default(), &names, |s| {
            s.invalid + s.fetched >= 4
        })
        .await;
        assert_eq!((stats.invalid, stats.fetched), (3, 1), "{stats:?}");
        let paths: Vec<String> = replay.received().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/repos/a/one"]);
    }

    #[tokio::test]
    async fn enrichment_spends_only_its_share_of_the_rate_limit() {
        let replay = Replay::default();
        let low = |name: &str| {
            Answer::json(200, format!(r#"{{"full_name":"{name}","language":"Go"}}"#))
                .header("x-ratelimit-limit", 5000)
                .header("x-ratelimit-remaining", 3000)
                .header("x-ratelimit-reset", 4102444800u64)
        };
        replay.answer("/repos/a/one", vec![low("a/one")]);
        replay.answer("/repos/a/two", vec![low("a/two")]);
        let base = replay.serve().await;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        let config = EnrichConfig {
            share: 0.2,
            budget_wait: Duration::from_millis(50),
            ..EnrichConfig::default()
        };
        let stats = enrich(&base, &store, config, &["a/one", "a/two"], |s| {
            s.held_back >= 3
        })
        .await;
        assert_eq!(
            stats.fetched, 1,
            "after the first answer only 60% of the limit is left: the enricher waits"
        );
        assert_eq!(replay.received().len(), 1);
        assert_eq!(stats.queued, 1);
    }

    #[tokio::test]
    async fn a_busy_repository_known_fresh_is_not_looked_up_again_even_without_budget() {
        let replay = Replay::default();
        replay.answer(
            "/repos/a/one",
            vec![
                Answer::json(200, r#"{"full_name":"a/one","language":"Go"}"#)
                    .header("x-ratelimit-limit", 5000)
                    .header("x-ratelimit-remaining", 3000)
                    .header("x-ratelimit-reset", 4102444800u64),
            ],
        );
        let base = replay.serve().await;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        let client = Arc::new(GithubClient::new(super::config(&base)).unwrap());
        let config = EnrichConfig {
            budget_wait: Duration::from_millis(50),
            ..EnrichConfig::default()
        };
        let enricher = Enricher::new(client, store, config);
        let stats = enricher.stats();
        let (tx, rx) = mpsc::channel(16);
        let stop = CancellationToken::new();
        let run = tokio::spawn(enricher.run(rx, Arc::new(|_: &str, _: &str| {}), stop.clone()));
        tx.send("a/one".to_string()).await.unwrap();
        let started = std::time::Instant::now();
        while stats.lock().unwrap().fetched < 1 && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Its events keep naming it; the budget is spent (60% left), yet nothing waits for it.
        for _ in 0..3 {
            tx.send("a/one".to_string()).await.unwrap();
        }
        while stats.lock().unwrap().cached < 3 && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
        run.await.unwrap();
        let stats = stats.lock().unwrap().clone();
        assert_eq!(
            (stats.fetched, stats.cached, stats.held_back),
            (1, 3, 0),
            "{stats:?}"
        );
        assert_eq!(replay.received().len(), 1);
    }
}
