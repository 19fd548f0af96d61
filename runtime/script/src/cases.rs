//! Cases files: inputs and expected outputs that a script version must reproduce before it goes live.
//!
//! `routing.rhai` has its cases in `routing.cases.jsonl` beside it, one JSON object per line, so that a failing
//! case is reported at its own line and a GH Archive event can be pasted in as it is:
//!
//! ```text
//! {"name": "pushes go to gh.raw.push", "input": {"id": "1", "type": "PushEvent", …}, "expect": "gh.raw.push"}
//! ```
//!
//! `input` is a GitHub event for routing and features scripts, the context map for the retrain policy, and
//! absent for query scripts. `now` (Unix seconds, optional) fixes what `now()` returns during the case. `expect` takes any shape the entry point may return; both sides go through the same
//! conversion before they are compared. Blank lines and lines starting with `#` are skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use forgecast_core::Event;
use serde::Deserialize;
use serde_json::Value;

use crate::engine::{EventView, PinnedNow, ScriptEngine, json_to_dynamic};
use crate::output::{RetrainDecision, RouteDecision, features_from_dynamic, queries_from_dynamic};
use crate::role::Role;
use crate::script::{Problem, Script};

/// The cases file that belongs to a script file.
pub fn cases_path(script: &Path) -> PathBuf {
    script.with_extension("cases.jsonl")
}

/// One case, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    input: Value,
    expect: Value,
    /// Unix seconds that `now()` returns during this case.
    #[serde(default)]
    now: Option<i64>,
}

/// Runs every case of `cases` (the text of the file at `path`) against `script`; returns what failed.
pub fn run_cases(engine: &ScriptEngine, script: &Script, path: &Path, cases: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, line) in cases.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let case: Case = match serde_json::from_str(trimmed) {
            Ok(case) => case,
            Err(e) => {
                problems.push(Problem::at(
                    path,
                    line_no,
                    e.column(),
                    format!("not a case: {e}"),
                ));
                continue;
            }
        };
        if let Err(problem) = run_case(engine, script, &case, path, line_no) {
            problems.push(problem);
        }
    }
    problems
}

fn run_case(
    engine: &ScriptEngine,
    script: &Script,
    case: &Case,
    path: &Path,
    line: usize,
) -> Result<(), Problem> {
    let at_case =
        |reason: String| Problem::at(path, line, 1, format!("case {:?}: {reason}", case.name));
    let call_failed = |e: crate::script::CallError| {
        Problem::at(
            script.path(),
            e.line,
            e.col,
            format!(
                "case {:?} ({}:{line}): {}",
                case.name,
                path.display(),
                e.message
            ),
        )
    };
    let event = || -> Result<Arc<Event>, Problem> {
        let text = serde_json::to_string(&case.input).unwrap_or_default();
        let event = Event::parse(&text)
            .map_err(|e| at_case(format!("`input` is not a usable event: {e}")))?;
        Ok(Arc::new(event))
    };
    let _pinned = PinnedNow::pin(case.now);
    let expected = json_to_dynamic(&case.expect);
    let (got, want) = match script.role() {
        Role::Routing => {
            let got = script
                .route(engine, EventView::new(event()?))
                .map_err(call_failed)?;
            let want = RouteDecision::from_dynamic(&expected)
                .map_err(|e| at_case(format!("`expect`: {e}")))?;
            (to_json(&got), to_json(&want))
        }
        Role::Features => {
            let event = event()?;
            let got = script
                .event_features(engine, EventView::new(event.clone()))
                .map_err(call_failed)?;
            let want =
                features_from_dynamic(&expected).map_err(|e| at_case(format!("`expect`: {e}")))?;
            if got != want && !script.reads(&event.kind) {
                return Err(at_case(format!(
                    "expected {}, got null: its type {} is not in `event_types()`, so the script is not called for it",
                    to_json(&want),
                    event.kind
                )));
            }
            (to_json(&got), to_json(&want))
        }
        Role::RetrainPolicy => {
            let got = script
                .should_retrain(engine, json_to_dynamic(&case.input))
                .map_err(call_failed)?;
            let want = RetrainDecision::from_dynamic(&expected)
                .map_err(|e| at_case(format!("`expect`: {e}")))?;
            (to_json(&got), to_json(&want))
        }
        Role::Queries => {
            let got = script.queries(engine).map_err(call_failed)?;
            let want =
                queries_from_dynamic(&expected).map_err(|e| at_case(format!("`expect`: {e}")))?;
            (to_json(&got), to_json(&want))
        }
    };
    if got == want {
        Ok(())
    } else {
        Err(at_case(format!("expected {want}, got {got}")))
    }
}

fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str =
        r#"fn route(event) { if event.is_bot { "gh.bots" } else { "gh.raw." + event.type } }"#;
    const EVENT: &str = r#"{"id":"1","type":"PushEvent","actor":{"login":"a"},"repo":{"name":"o/r"},"created_at":"2015-01-01T15:00:00Z"}"#;

    fn routing() -> (ScriptEngine, Script) {
        let engine = ScriptEngine::default();
        let script = Script::compile(&engine, "routing", Path::new("routing.rhai"), ROUTE).unwrap();
        (engine, script)
    }

    #[test]
    fn passing_cases_report_nothing() {
        let (engine, script) = routing();
        let cases = format!(
            "# comment\n\n{{\"name\":\"push\",\"input\":{EVENT},\"expect\":\"gh.raw.PushEvent\"}}\n"
        );
        assert_eq!(
            run_cases(&engine, &script, Path::new("routing.cases.jsonl"), &cases),
            vec![]
        );
    }

    #[test]
    fn a_failing_case_is_reported_at_its_line_with_both_values() {
        let (engine, script) = routing();
        let cases = format!(
            "{{\"name\":\"ok\",\"input\":{EVENT},\"expect\":[\"gh.raw.PushEvent\"]}}\n{{\"name\":\"bad\",\"input\":{EVENT},\"expect\":null}}\n"
        );
        let problems = run_cases(&engine, &script, Path::new("routing.cases.jsonl"), &cases);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
        assert!(
            problems[0].reason.contains("expected")
                && problems[0].reason.contains("gh.raw.PushEvent")
        );
    }

    #[test]
    fn a_case_of_a_type_the_script_does_not_declare_says_so() {
        let engine = ScriptEngine::default();
        let source = r#"
            fn event_types() { ["IssuesEvent"] }
            fn features(record) { #{ kind: record.type } }
        "#;
        let script = Script::compile(&engine, "features/x", Path::new("x.rhai"), source).unwrap();
        let issue = EVENT.replace("PushEvent", "IssuesEvent");
        let cases = format!(
            "{{\"name\":\"issue\",\"input\":{issue},\"expect\":{{\"kind\":\"IssuesEvent\"}}}}\n{{\"name\":\"push skipped\",\"input\":{EVENT},\"expect\":null}}\n{{\"name\":\"push\",\"input\":{EVENT},\"expect\":{{\"kind\":\"PushEvent\"}}}}\n"
        );
        let problems = run_cases(&engine, &script, Path::new("x.cases.jsonl"), &cases);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 3);
        assert!(
            problems[0]
                .reason
                .contains("its type PushEvent is not in `event_types()`"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_case_that_is_not_json_is_a_problem_not_a_pass() {
        let (engine, script) = routing();
        let problems = run_cases(
            &engine,
            &script,
            Path::new("c.jsonl"),
            "{\"name\": \"x\", \"expect\"",
        );
        assert_eq!(problems.len(), 1);
        assert!(problems[0].reason.starts_with("not a case"));
    }
}
