//! Engine limits stop runaway scripts with a clear error, and the engine stays usable afterwards.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use forgecast_core::Event;
use forgecast_script::memory::CountingAllocator;
use forgecast_script::{EventView, Limits, Script, ScriptEngine};

// As in the `forgecast` binary: the memory a call holds is counted.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const EVENT: &str = r#"{"id":"1","type":"PushEvent","actor":{"login":"a"},"repo":{"name":"o/r"},"created_at":"2015-01-01T15:00:00Z"}"#;

fn event() -> EventView {
    EventView::new(Arc::new(Event::parse(EVENT).unwrap()))
}

fn routing(engine: &ScriptEngine, body: &str) -> Script {
    Script::compile(
        engine,
        "routing",
        Path::new("routing.rhai"),
        &format!("fn route(event) {{\n{body}\n}}"),
    )
    .unwrap()
}

#[test]
fn an_endless_loop_is_stopped_by_the_deadline() {
    let engine = ScriptEngine::new(Limits {
        max_operations: 0,
        deadline_ms: 50,
        ..Limits::default()
    });
    let script = routing(&engine, "loop { }");
    let started = Instant::now();
    let err = script.route(&engine, event()).unwrap_err();
    assert!(err.message.contains("deadline exceeded"), "{err}");
    assert_eq!(err.script, "routing");
    assert_eq!(err.version, script.hash());
    // Generous bound: the point is that it stops at all, not how fast the machine is.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn an_endless_loop_is_stopped_by_the_operation_limit() {
    let engine = ScriptEngine::new(Limits {
        max_operations: 10_000,
        deadline_ms: 60_000,
        ..Limits::default()
    });
    let err = routing(&engine, "let n = 0; loop { n += 1; }")
        .route(&engine, event())
        .unwrap_err();
    assert!(err.message.contains("more than 10000 operations"), "{err}");
}

#[test]
fn a_huge_string_is_refused() {
    let engine = ScriptEngine::new(Limits {
        max_string_size: 1_000,
        ..Limits::default()
    });
    let err = routing(&engine, r#"let s = "x"; for i in 0..20 { s += s; } s"#)
        .route(&engine, event())
        .unwrap_err();
    assert!(err.message.to_lowercase().contains("too large"), "{err}");
}

#[test]
fn a_huge_array_is_refused() {
    let engine = ScriptEngine::new(Limits {
        max_array_size: 100,
        ..Limits::default()
    });
    let err = routing(&engine, "let a = []; for i in 0..1000 { a.push(i); } a")
        .route(&engine, event())
        .unwrap_err();
    assert!(err.message.to_lowercase().contains("too large"), "{err}");
}

#[test]
fn deep_recursion_is_refused() {
    let engine = ScriptEngine::default();
    let source = "fn down(n) { down(n + 1) }\nfn route(event) { down(0) }";
    let script = Script::compile(&engine, "routing", Path::new("routing.rhai"), source).unwrap();
    let err = script.route(&engine, event()).unwrap_err();
    assert!(
        err.message.to_lowercase().contains("stack overflow"),
        "{err}"
    );
}

#[test]
fn scripts_cannot_import_modules_or_eval() {
    let engine = ScriptEngine::default();
    let file = std::env::temp_dir().join("forgecast-import-probe.rhai");
    std::fs::write(&file, "fn topic() { \"gh.leaked\" }").unwrap();
    let body = format!("import {:?} as m;\nm::topic()", file.display().to_string());
    let imported = routing(&engine, &body).route(&engine, event());
    assert!(imported.is_err(), "import read a file: {imported:?}");
    let evaluated = Script::compile(
        &engine,
        "routing",
        Path::new("r.rhai"),
        "fn route(event) { eval(\"40 + 2\") }",
    )
    .map(|s| s.route(&engine, event()));
    assert!(!matches!(evaluated, Ok(Ok(_))), "eval ran: {evaluated:?}");
}

#[test]
fn the_engine_keeps_working_after_a_runaway_call() {
    let engine = ScriptEngine::new(Limits {
        deadline_ms: 20,
        ..Limits::default()
    });
    let stuck = routing(&engine, "loop { }");
    let fine = routing(&engine, r#""gh.raw.push""#);
    assert!(stuck.route(&engine, event()).is_err());
    assert_eq!(
        &*fine.route(&engine, event()).unwrap().topics[0],
        "gh.raw.push"
    );
}

#[test]
fn a_call_cannot_hold_more_than_its_memory_bound_however_it_spreads_it() {
    let engine = ScriptEngine::new(Limits {
        max_call_bytes: 8 << 20,
        ..Limits::default()
    });
    // Each value is within the string and map limits; together they are 37 MB (and 75 MB with 1 MB strings).
    let half_mega = r#"let s = "x"; for i in 0..19 { s += s; }"#;
    for (how, body) in [
        (
            "map filled by index",
            format!(
                r#"{half_mega} let m = #{{}}; for i in 0..75 {{ m["k" + i] = s + i; }} "gh.raw.x""#
            ),
        ),
        (
            "variables",
            format!(
                r#"{half_mega} let a = s + 1; let b = s + 2; let c = s + 3; let d = s + 4; let e = s + 5; let f = s + 6; let g = s + 7; let h = s + 8; let j = s + 9; let k = s + 10; let l = s + 11; let n = s + 12; let o = s + 13; let p = s + 14; let q = s + 15; let r = s + 16; let t = s + 17; "gh.raw.x""#
            ),
        ),
    ] {
        let err = routing(&engine, &body).route(&engine, event()).unwrap_err();
        assert!(
            err.message.contains("memory limit exceeded"),
            "{how}: {err}"
        );
    }
    // Ordinary calls are untouched, and the engine keeps working.
    let fine = routing(
        &engine,
        r#"let m = #{}; for i in 0..100 { m["k" + i] = "v" + i; } "gh.raw.push""#,
    );
    assert_eq!(
        &*fine.route(&engine, event()).unwrap().topics[0],
        "gh.raw.push"
    );
}
