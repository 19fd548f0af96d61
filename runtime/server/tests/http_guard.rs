//! What the HTTP server lets through, against the real binary: allowed hosts, the browser protections, the admin
//! token on the tap, the bound on tap clients and on `/api/trends` keys.

mod support;

use std::time::{Duration, Instant};

use support::{scripts, start_with_env};

const TOKEN: &str = "test-admin-token-0123456789";

fn client() -> reqwest::Client {
    forgecast_github::http::client()
}

/// Opens a tap on every topic; the answer's status, and the response kept open while it is held.
async fn tap(url: &str, token: Option<&str>) -> reqwest::Response {
    let request = client().get(format!("{url}/api/tap?topic=*"));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_are_guarded_and_bounded() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("forgecast.toml");
    std::fs::write(
        &config,
        "[bounds]\nmax_tap_clients = 2\nmax_trend_keys = 5\n",
    )
    .unwrap();
    let up = start_with_env(
        &scripts(),
        &data.path().join("data"),
        &["--replay-speed", "50", "--config", config.to_str().unwrap()],
        &[("FORGECAST_ADMIN_TOKEN", TOKEN)],
    );
    let url = up.url.clone();

    // The dashboard carries the browser protections; its page loads no inline script.
    let page = client().get(format!("{url}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>"), "inline script in the page");

    // A name that is not allowed (what a DNS-rebinding page sends) is refused; addresses and localhost pass.
    let port = url.rsplit(':').next().unwrap();
    let rebound = client()
        .get(format!("{url}/api/live"))
        .header("host", format!("attacker.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 421);
    assert!(
        rebound
            .text()
            .await
            .unwrap()
            .contains("FORGECAST_ALLOWED_HOSTS")
    );
    let local = client()
        .get(format!("{url}/api/live"))
        .header("host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 200);

    // The tap shows raw events: with a token configured it needs it, also from loopback.
    let refused = tap(&url, None).await;
    assert_eq!(refused.status(), 401);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("FORGECAST_ADMIN_TOKEN")
    );
    assert_eq!(
        tap(&url, Some("wrong-token-0123456789")).await.status(),
        401
    );

    // At most two tap clients at once; a third is told why, and a place comes back when a client leaves.
    let first = tap(&url, Some(TOKEN)).await;
    let second = tap(&url, Some(TOKEN)).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = tap(&url, Some(TOKEN)).await;
    assert_eq!(third.status(), 503);
    assert!(third.text().await.unwrap().contains("max_tap_clients"));
    drop(first);
    let started = Instant::now();
    let again = loop {
        // The server notices the client left at its next write; the replay keeps records flowing.
        let again = tap(&url, Some(TOKEN)).await;
        if again.status() == 200 || started.elapsed() > Duration::from_secs(30) {
            break again;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        again.status(),
        200,
        "the place of the client that left came back"
    );
    drop((second, again));

    // The bound on routing's topics shows beside the routing script.
    let scripts = support::get_json(&format!("{url}/api/scripts")).await;
    let routing = scripts
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "routing")
        .unwrap();
    assert_eq!(routing["topics"]["max"], 64, "{routing}");
    assert!(
        routing["topics"]["used"].as_u64().unwrap() >= 1,
        "{routing}"
    );

    // `keys` is bounded, and the answer names the limit.
    let many: Vec<String> = (0..6).map(|i| format!("Lang{i}")).collect();
    let too_many = client()
        .get(format!("{url}/api/trends?keys={}", many.join(",")))
        .send()
        .await
        .unwrap();
    assert_eq!(too_many.status(), 400);
    assert!(too_many.text().await.unwrap().contains("max_trend_keys"));
    let fine = client()
        .get(format!("{url}/api/trends?keys={}", many[..5].join(",")))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_the_tap_answers_loopback() {
    let data = tempfile::tempdir().unwrap();
    let up = start_with_env(
        &scripts(),
        data.path(),
        &["--replay-speed", "50"],
        &[("FORGECAST_ADMIN_TOKEN", "")],
    );
    assert_eq!(tap(&up.url, None).await.status(), 200);
}
