//! Hot reload on a real directory: edits go live, broken edits are refused, and the ways files really change
//! (editors renaming over the file, Kubernetes swapping a ConfigMap's `..data` link) are all seen.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use forgecast_core::Event;
use forgecast_script::watch::{WatchConfig, watch};
use forgecast_script::{EventView, ScriptEngine, ScriptHost};
use tokio_util::sync::CancellationToken;

const EVENT: &str = r#"{"id":"1","type":"PushEvent","actor":{"login":"a"},"repo":{"name":"o/r"},"created_at":"2015-01-01T15:00:00Z"}"#;

fn routing_to(topic: &str) -> String {
    format!("fn route(event) {{\n    \"{topic}\"\n}}\n")
}

fn topic_now(host: &ScriptHost) -> String {
    let set = host.scripts();
    let script = set.routing().expect("routing is live");
    let event = EventView::new(Arc::new(Event::parse(EVENT).unwrap()));
    script.route(host.engine(), event).unwrap().topics[0].to_string()
}

/// Waits (up to a generous bound, for a loaded machine) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Running {
    host: Arc<ScriptHost>,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn start(dir: &Path, config: WatchConfig) -> Running {
    let host =
        Arc::new(ScriptHost::start(Arc::new(ScriptEngine::default()), dir).expect("valid scripts"));
    let stop = CancellationToken::new();
    tokio::spawn(watch(host.clone(), config, stop.clone()));
    Running { host, stop }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_edit_goes_live_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.rhai");
    fs::write(&file, routing_to("gh.first")).unwrap();
    let run = start(dir.path(), WatchConfig::default());
    assert_eq!(topic_now(&run.host), "gh.first");

    fs::write(&file, routing_to("gh.second")).unwrap();
    eventually("the edit is live", || topic_now(&run.host) == "gh.second").await;

    fs::write(&file, "fn route(event) {\n    \"gh.third\" +\n}\n").unwrap();
    eventually("the broken edit is refused", || {
        run.host.statuses()[0].last_refusal.is_some()
    })
    .await;
    let status = run.host.statuses().remove(0);
    let refusal = status.last_refusal.unwrap();
    assert!(
        refusal.reason.contains("routing.rhai:3:1:"),
        "{}",
        refusal.reason
    );
    assert_eq!(status.status, "live");
    assert_eq!(
        topic_now(&run.host),
        "gh.second",
        "the old version keeps running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_event_types_follow_edits_and_a_bad_list_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("features")).unwrap();
    let file = dir.path().join("features/sentiment.rhai");
    let declaring = |types: &str| {
        format!(
            "fn event_types() {{ {types} }}\nfn features(record) {{ #{{ text: record.type }} }}\n"
        )
    };
    fs::write(&file, declaring(r#"["IssuesEvent"]"#)).unwrap();
    let run = start(dir.path(), WatchConfig::default());
    let reads_pushes = |host: &ScriptHost| {
        let set = host.scripts();
        let script = set.get("features/sentiment").expect("live").clone();
        let event = EventView::new(Arc::new(Event::parse(EVENT).unwrap()));
        script
            .event_features(host.engine(), event)
            .unwrap()
            .is_some()
    };
    assert!(!reads_pushes(&run.host), "a push is not an IssuesEvent");

    fs::write(&file, declaring(r#"["IssuesEvent", "PushEvent"]"#)).unwrap();
    eventually("the new list is live", || reads_pushes(&run.host)).await;

    fs::write(&file, declaring("[]")).unwrap();
    eventually("the empty list is refused", || {
        run.host.statuses()[0].last_refusal.is_some()
    })
    .await;
    let reason = run.host.statuses()[0].last_refusal.clone().unwrap().reason;
    assert!(
        reason.contains("sentiment.rhai:1:1: event_types returned an empty array"),
        "{reason}"
    );
    assert!(
        reads_pushes(&run.host),
        "the previous version keeps running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_its_cases_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.rhai");
    fs::write(&file, routing_to("gh.first")).unwrap();
    fs::write(
        dir.path().join("routing.cases.jsonl"),
        format!("{{\"name\":\"c\",\"input\":{EVENT},\"expect\":\"gh.first\"}}\n"),
    )
    .unwrap();
    let run = start(dir.path(), WatchConfig::default());
    fs::write(&file, routing_to("gh.other")).unwrap();
    eventually("the edit is refused", || {
        run.host.statuses()[0].last_refusal.is_some()
    })
    .await;
    let reason = run.host.statuses()[0].last_refusal.clone().unwrap().reason;
    assert!(
        reason.contains("routing.cases.jsonl:1:1: case \"c\": expected"),
        "{reason}"
    );
    assert_eq!(topic_now(&run.host), "gh.first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_saving_by_rename_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.rhai");
    fs::write(&file, routing_to("gh.first")).unwrap();
    let run = start(dir.path(), WatchConfig::default());
    let temp = dir.path().join(".routing.rhai.swp");
    fs::write(&temp, routing_to("gh.renamed")).unwrap();
    fs::rename(&temp, &file).unwrap();
    eventually("the renamed file is live", || {
        topic_now(&run.host) == "gh.renamed"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_symlink_swap_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The layout kubelet writes: a timestamped folder, `..data` pointing at it, and one link per key.
    fs::create_dir(root.join("..2026_11_26_10_00_00.1")).unwrap();
    fs::write(
        root.join("..2026_11_26_10_00_00.1/routing.rhai"),
        routing_to("gh.v1"),
    )
    .unwrap();
    symlink("..2026_11_26_10_00_00.1", root.join("..data")).unwrap();
    symlink("..data/routing.rhai", root.join("routing.rhai")).unwrap();
    let run = start(root, WatchConfig::default());
    assert_eq!(topic_now(&run.host), "gh.v1");
    assert_eq!(
        run.host.statuses().len(),
        1,
        "hidden ConfigMap folders are not scripts of their own"
    );

    fs::create_dir(root.join("..2026_11_26_10_05_00.2")).unwrap();
    fs::write(
        root.join("..2026_11_26_10_05_00.2/routing.rhai"),
        routing_to("gh.v2"),
    )
    .unwrap();
    symlink("..2026_11_26_10_05_00.2", root.join("..data_tmp")).unwrap();
    fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    fs::remove_dir_all(root.join("..2026_11_26_10_00_00.1")).unwrap();
    eventually("the swapped ConfigMap is live", || {
        topic_now(&run.host) == "gh.v2"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_sees_edits() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.rhai");
    fs::write(&file, routing_to("gh.first")).unwrap();
    let config = WatchConfig {
        notifications: false,
        poll: Duration::from_millis(200),
        ..WatchConfig::default()
    };
    let run = start(dir.path(), config);
    fs::write(&file, routing_to("gh.polled")).unwrap();
    eventually("polling sees the edit", || {
        topic_now(&run.host) == "gh.polled"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_a_steady_stream_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.rhai");
    fs::write(&file, routing_to("gh.v0")).unwrap();
    let run = start(
        dir.path(),
        WatchConfig {
            debounce: Duration::from_millis(10),
            ..WatchConfig::default()
        },
    );
    let host = run.host.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let event = Arc::new(Event::parse(EVENT).unwrap());
            // The version each call ran, in the order of the calls.
            let mut seen: Vec<u32> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let set = host.scripts();
                let script = set.routing().unwrap();
                let decision = script
                    .route(host.engine(), EventView::new(event.clone()))
                    .unwrap();
                assert_eq!(decision.topics.len(), 1, "{:?}", decision.topics);
                let version: u32 = decision.topics[0]
                    .strip_prefix("gh.v")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("not a written version: {:?}", decision.topics));
                if seen.last() != Some(&version) {
                    seen.push(version);
                }
            }
            seen
        })
    };
    for v in 1..=5 {
        fs::write(&file, routing_to(&format!("gh.v{v}"))).unwrap();
        if v == 3 {
            fs::write(&file, "fn route(event) {").unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            fs::write(&file, routing_to("gh.v3")).unwrap();
        }
        let want = format!("gh.v{v}");
        eventually("the edit is live", || topic_now(&run.host) == want).await;
    }
    stop.store(true, Ordering::Relaxed);
    let versions = worker.join().unwrap();
    // Every call ran one whole version; versions only moved forward (the broken one never went live, none
    // went back), and the stream saw reloads while it ran.
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions out of order: {versions:?}"
    );
    assert!(
        versions.len() >= 2,
        "the stream saw no reload: {versions:?}"
    );
}
