//! The dashboard's speed in headless Chromium, on localhost: how soon the first view shows its numbers, and how
//! long the Trends view takes to draw (and redraw after a click) with 50 languages over 10 years of history.
//!
//! Prints figures; it asserts nothing about them (machines here are shared and noisy). Needs Debian's
//! chromium and chromium-driver, as the browser tests do.

#[path = "../tests/support/mod.rs"]
mod support;

use support::{Browser, replay_once, up};

/// Runs `f` `n` times; returns the median of what it measured, in milliseconds.
async fn median(n: usize, mut f: impl AsyncFnMut() -> f64) -> f64 {
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        runs.push(f().await);
    }
    runs.sort_by(f64::total_cmp);
    runs[n / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let data = tempfile::tempdir().unwrap();
    replay_once(data.path());
    let server = up(data.path(), &["--source", "none"]);
    let url = server.url.clone();
    let browser = Browser::start().await;
    println!(
        "Dashboard in headless Chromium on localhost; store: the 3,872 bundled events and the GitHut history"
    );

    // First view: from the start of the navigation to the live numbers drawn (the page's own User Timing
    // measure ends when they are rendered), as the user waits for it.
    let first = median(5, async || {
        browser.open("about:blank").await;
        browser.open(&format!("{url}/")).await;
        let end = browser
            .wait_for(
                "the live numbers",
                r#"const m = performance.getEntriesByName("forgecast:live")[0];
                return m ? m.startTime + m.duration : null;"#,
            )
            .await;
        end.as_f64().unwrap()
    })
    .await;
    println!(
        "  first view with its numbers        {first:>7.0} ms   from navigation start (median of 5; target: under 1,000 ms)"
    );

    // Trends with the 50 largest languages of the history's last quarter, over ten years of quarters.
    let history = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/githut/gh-pull-request.json");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(history).unwrap()).unwrap();
    let mut last: Vec<(u64, String)> = rows
        .iter()
        .filter(|r| r["year"] == "2024" && r["quarter"] == "1")
        .map(|r| {
            (
                r["count"].as_str().unwrap().parse().unwrap(),
                r["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    last.sort_by(|a, b| b.cmp(a));
    let fifty: Vec<String> = last.into_iter().take(50).map(|(_, name)| name).collect();
    let keys = serde_json::to_string(&fifty).unwrap();
    browser.open(&format!("{url}/#trends")).await;
    browser.wait_for("the trends chart", r#"return document.querySelector('[data-testid="trends-chart"] circle') ? true : null;"#).await;
    let draw = median(5, async || {
        let script = format!(
            r#"trendsState.from = 2014; trendsState.keys = {keys}; performance.clearMeasures("forgecast:trends");
               await refresh(VIEWS.find((v) => v.id === "trends"));
               const m = performance.getEntriesByName("forgecast:trends")[0];
               return [m.duration, document.querySelectorAll('[data-testid="trends-chart"] circle').length];"#
        );
        let result = browser.run(&format!("return (async () => {{ {script} }})();")).await;
        result[0].as_f64().unwrap()
    })
    .await;
    let points = browser
        .run(r#"return document.querySelectorAll('[data-testid="trends-chart"] circle').length;"#)
        .await;
    println!(
        "  trends, {} languages × 2014–2024   {draw:>7.0} ms   to fetch and draw {points} points (median of 5)",
        fifty.len()
    );

    let click = median(5, async || {
        let result = browser
            .run(
                r#"return (async () => {
                     const box = document.querySelector('#trends-languages input');
                     const started = performance.now();
                     box.click();
                     while (!performance.getEntriesByName("forgecast:trends").some((m) => m.startTime >= started)) {
                       await new Promise((r) => setTimeout(r, 5));
                     }
                     return performance.now() - started;
                   })();"#,
            )
            .await;
        result.as_f64().unwrap()
    })
    .await;
    println!("  trends, a checkbox click to redrawn {click:>7.0} ms   (median of 5)");
}
