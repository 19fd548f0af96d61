//! Cost of calling scripts through the host, per call, on real GH Archive events.
//!
//! `route` runs the shipped `scripts/routing.rhai`; `features` runs `scripts/features/issue_outcome.rhai` on
//! real IssuesEvents. `features_script_issues` includes the one lazy parse of each event's JSON that the first
//! `field()` call triggers; `features_script_issues_parsed` is the same call once that parse is cached, so the
//! host and script cost alone. `features_sentiment_other_types` gives `scripts/features/sentiment.rhai` pushes,
//! stars and branch creations, which its `event_types()` passes over, and `…_called` the call that saves. The
//! reference in the same run is the routing written in Rust.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use forgecast_core::Event;
use forgecast_script::host::check_dir;
use forgecast_script::{EventView, ScriptEngine};

fn sample_events() -> Vec<Arc<Event>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/gharchive-samples");
    let mut events = Vec::new();
    for name in ["2015-01-01-15.sample.json", "2021-07-21-few-hours.json"] {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        events.extend(text.lines().map(|l| Arc::new(Event::parse(l).unwrap())));
    }
    events
}

fn native_route(event: &Event) -> &'static str {
    if event.is_bot() {
        return "gh.bots";
    }
    match event.kind.as_str() {
        "PushEvent" => "gh.raw.push",
        "PullRequestEvent" | "PullRequestReviewEvent" | "PullRequestReviewCommentEvent" => {
            "gh.raw.pull_request"
        }
        "IssuesEvent" | "IssueCommentEvent" => "gh.raw.issues",
        "WatchEvent" | "ForkEvent" => "gh.raw.stars",
        "CreateEvent" | "DeleteEvent" => "gh.raw.refs",
        "ReleaseEvent" => "gh.raw.release",
        _ => "gh.raw.other",
    }
}

fn bench(c: &mut Criterion) {
    let engine = ScriptEngine::default();
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
    let (loaded, problems) = check_dir(&engine, &scripts);
    assert!(problems.is_empty(), "{problems:?}");
    let routing = loaded.iter().find(|s| s.id() == "routing").unwrap();
    let features = loaded
        .iter()
        .find(|s| s.id() == "features/issue_outcome")
        .unwrap();
    let events = sample_events();
    let issues: Vec<Arc<Event>> = events
        .iter()
        .filter(|e| e.kind == "IssuesEvent")
        .cloned()
        .collect();

    let mut group = c.benchmark_group("per_call");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("route_script", |b| {
        b.iter(|| {
            for event in &events {
                black_box(
                    routing
                        .route(&engine, EventView::new(event.clone()))
                        .unwrap(),
                );
            }
        })
    });
    group.bench_function("route_native_reference", |b| {
        b.iter(|| {
            for event in &events {
                black_box(native_route(black_box(event)));
            }
        })
    });
    let sentiment = loaded
        .iter()
        .find(|s| s.id() == "features/sentiment")
        .unwrap();
    let others: Vec<Arc<Event>> = events
        .iter()
        .filter(|e| e.kind == "PushEvent" || e.kind == "WatchEvent" || e.kind == "CreateEvent")
        .cloned()
        .collect();
    group.throughput(Throughput::Elements(others.len() as u64));
    // Events of types the script does not read: skipped by its `event_types()`, and the call it saves.
    group.bench_function("features_sentiment_other_types", |b| {
        b.iter(|| {
            for event in &others {
                let view = EventView::new(event.clone());
                black_box(sentiment.event_features(&engine, view).unwrap());
            }
        })
    });
    group.bench_function("features_sentiment_other_types_called", |b| {
        b.iter(|| {
            for event in &others {
                let record = rhai::Dynamic::from(EventView::new(event.clone()));
                black_box(sentiment.features(&engine, record).unwrap());
            }
        })
    });
    group.throughput(Throughput::Elements(issues.len() as u64));
    group.bench_function("features_script_issues", |b| {
        b.iter(|| {
            for event in &issues {
                let record = rhai::Dynamic::from(EventView::new(event.clone()));
                black_box(features.features(&engine, record).unwrap());
            }
        })
    });
    // The same calls on views whose JSON was already parsed by an earlier call: the host and script cost alone.
    let views: Vec<EventView> = issues.iter().map(|e| EventView::new(e.clone())).collect();
    group.bench_function("features_script_issues_parsed", |b| {
        b.iter(|| {
            for view in &views {
                black_box(
                    features
                        .features(&engine, rhai::Dynamic::from(view.clone()))
                        .unwrap(),
                );
            }
        })
    });
    // Host overhead alone: a features script that reads one payload field and one property.
    let minimal = forgecast_script::Script::compile(
        &engine,
        "features/minimal",
        Path::new("features/minimal.rhai"),
        "fn features(record) { #{ comments: record.field(\"payload.issue.comments\") ?? 0, bot: record.is_bot } }",
    )
    .unwrap();
    group.bench_function("features_minimal_issues_parsed", |b| {
        b.iter(|| {
            for view in &views {
                black_box(
                    minimal
                        .features(&engine, rhai::Dynamic::from(view.clone()))
                        .unwrap(),
                );
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
