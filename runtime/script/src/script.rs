//! One compiled and validated version of a script, and the calls into it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rhai::{AST, CallFnOptions, Dynamic, EvalAltResult, FuncArgs, Scope};
use sha2::{Digest, Sha256};

use crate::engine::{CallScope, DEADLINE_TEXT, EventView, MEMORY_TEXT, ScriptEngine, line_col};
use crate::output::{
    Features, QuerySpec, RetrainDecision, RouteDecision, event_types_from_dynamic,
    features_from_dynamic, queries_from_dynamic,
};
use crate::role::Role;

/// A problem found in a script or its cases, located as `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file at fault.
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub col: usize,
    /// What is wrong, in one sentence.
    pub reason: String,
}

impl Problem {
    /// A problem at a known place.
    pub fn at(file: &Path, line: usize, col: usize, reason: impl Into<String>) -> Problem {
        Problem {
            file: file.to_path_buf(),
            line,
            col,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line.max(1),
            self.col.max(1),
            self.reason
        )
    }
}

/// A script call that failed: the event or input it was called with goes to the dead letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{script} ({version}) line {line}: {message}")]
pub struct CallError {
    /// Script id.
    pub script: String,
    /// Content hash of the version that failed.
    pub version: String,
    /// Line in the script, 0 when unknown.
    pub line: usize,
    /// Column in the script, 0 when unknown.
    pub col: usize,
    /// What went wrong.
    pub message: String,
}

/// A compiled script version that passed validation.
pub struct Script {
    id: Arc<str>,
    role: Role,
    path: PathBuf,
    hash: Arc<str>,
    ast: AST,
    /// For a features script that defines `fn event_types()`: the event types it reads. Other events are
    /// skipped without a call.
    event_types: Option<Vec<String>>,
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("id", &self.id)
            .field("hash", &self.hash)
            .finish()
    }
}

/// First 12 hex digits of the SHA-256 of a text: short enough for log lines, long enough to tell versions apart.
pub fn content_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}

impl Script {
    /// Compiles `source` as script `id` and checks that its entry point exists with the right parameters.
    /// Does not run the cases: see [`crate::cases`].
    pub fn compile(
        engine: &ScriptEngine,
        id: &str,
        path: &Path,
        source: &str,
    ) -> Result<Script, Problem> {
        let role = Role::of(id).ok_or_else(|| {
            Problem::at(
                path,
                1,
                1,
                format!("not a place for a script; put scripts in {}", Role::LAYOUT),
            )
        })?;
        let mut ast = engine.rhai().compile(source).map_err(|e| {
            let (line, col) = line_col(e.1);
            Problem::at(path, line, col, e.0.to_string())
        })?;
        ast.set_source(id);
        let entry = role.entry();
        let wanted = role.params().len();
        let found: Vec<usize> = ast
            .iter_functions()
            .filter(|f| f.name == entry)
            .map(|f| f.params.len())
            .collect();
        if !found.contains(&wanted) {
            let (line, col) = find_fn(source, entry);
            let reason = match found.first() {
                None => format!("missing entry point `{}`", role.signature()),
                Some(n) => format!(
                    "`fn {entry}` takes {n} parameter(s); expected `{}`",
                    role.signature()
                ),
            };
            return Err(Problem::at(path, line, col, reason));
        }
        let mut script = Script {
            id: Arc::from(id),
            role,
            path: path.to_path_buf(),
            hash: Arc::from(content_hash(source)),
            ast,
            event_types: None,
        };
        let declared: Vec<usize> = script
            .ast
            .iter_functions()
            .filter(|f| f.name == EVENT_TYPES)
            .map(|f| f.params.len())
            .collect();
        if role == Role::Features && !declared.is_empty() {
            let (line, col) = find_fn(source, EVENT_TYPES);
            if !declared.contains(&0) {
                let reason = format!(
                    "`fn {EVENT_TYPES}` takes {} parameter(s); expected `fn {EVENT_TYPES}()`",
                    declared[0]
                );
                return Err(Problem::at(path, line, col, reason));
            }
            let value = script
                .call(engine, EVENT_TYPES, ())
                .map_err(|e| match e.line {
                    0 => Problem::at(path, line, col, e.message),
                    _ => Problem::at(path, e.line, e.col, e.message),
                })?;
            let types = event_types_from_dynamic(&value)
                .map_err(|reason| Problem::at(path, line, col, reason))?;
            script.event_types = Some(types);
        }
        Ok(script)
    }

    /// The event types a features script reads (its `fn event_types()`), or `None`: every event.
    pub fn event_types(&self) -> Option<&[String]> {
        self.event_types.as_deref()
    }

    /// Whether an event of type `kind` reaches the script's entry point.
    pub fn reads(&self, kind: &str) -> bool {
        self.event_types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t == kind))
    }

    /// Script id: the path under the scripts directory without `.rhai`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the script is for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Content hash of this version.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    fn call(
        &self,
        engine: &ScriptEngine,
        name: &str,
        args: impl FuncArgs,
    ) -> Result<Dynamic, CallError> {
        let deadline = Duration::from_millis(engine.limits().deadline_ms);
        let _scope = CallScope::enter(
            &self.id,
            &self.hash,
            deadline,
            engine.limits().max_call_bytes,
        );
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        engine
            .rhai()
            .call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &self.ast, name, args)
            .map_err(|err| {
                let inner = innermost(&err);
                let (line, col) = line_col(inner.position());
                let message = match inner {
                    EvalAltResult::ErrorTerminated(token, _)
                        if token.clone().into_string().ok().as_deref() == Some(MEMORY_TEXT) =>
                    {
                        format!(
                            "{MEMORY_TEXT}: held more than {} bytes",
                            engine.limits().max_call_bytes
                        )
                    }
                    EvalAltResult::ErrorTerminated(..) => {
                        format!(
                            "{DEADLINE_TEXT}: ran longer than {} ms",
                            engine.limits().deadline_ms
                        )
                    }
                    EvalAltResult::ErrorTooManyOperations(_) => {
                        format!(
                            "ran more than {} operations",
                            engine.limits().max_operations
                        )
                    }
                    other => other.to_string(),
                };
                self.error(line, col, message)
            })
    }

    fn error(&self, line: usize, col: usize, message: String) -> CallError {
        CallError {
            script: self.id.to_string(),
            version: self.hash.to_string(),
            line,
            col,
            message,
        }
    }

    fn convert<T>(
        &self,
        value: Dynamic,
        convert: impl FnOnce(&Dynamic) -> Result<T, String>,
    ) -> Result<T, CallError> {
        convert(&value).map_err(|message| self.error(0, 0, message))
    }

    /// Calls `route(event)`.
    pub fn route(
        &self,
        engine: &ScriptEngine,
        event: EventView,
    ) -> Result<RouteDecision, CallError> {
        let value = self.call(engine, self.role.entry(), (event,))?;
        self.convert(value, RouteDecision::from_dynamic)
    }

    /// Calls `features(record)` with an event, or gives `None` without a call when the script declares the
    /// event types it reads and this event's is not one of them.
    pub fn event_features(
        &self,
        engine: &ScriptEngine,
        event: EventView,
    ) -> Result<Option<Features>, CallError> {
        if !self.reads(&event.event().kind) {
            return Ok(None);
        }
        self.features(engine, Dynamic::from(event))
    }

    /// Calls `features(record)` whatever the record (`fn event_types()` does not apply): for a view that an
    /// earlier call already read, say.
    pub fn features(
        &self,
        engine: &ScriptEngine,
        record: Dynamic,
    ) -> Result<Option<Features>, CallError> {
        let value = self.call(engine, self.role.entry(), (record,))?;
        self.convert(value, features_from_dynamic)
    }

    /// Calls `should_retrain(ctx)`.
    pub fn should_retrain(
        &self,
        engine: &ScriptEngine,
        ctx: Dynamic,
    ) -> Result<RetrainDecision, CallError> {
        let value = self.call(engine, self.role.entry(), (ctx,))?;
        self.convert(value, RetrainDecision::from_dynamic)
    }

    /// Calls `queries()`.
    pub fn queries(&self, engine: &ScriptEngine) -> Result<Vec<QuerySpec>, CallError> {
        let value = self.call(engine, self.role.entry(), ())?;
        self.convert(value, queries_from_dynamic)
    }
}

/// The optional function of a features script that names the event types it reads.
const EVENT_TYPES: &str = "event_types";

/// Line and column of `fn name` in the source, or the top of the file.
fn find_fn(source: &str, name: &str) -> (usize, usize) {
    let pattern = format!("fn {name}");
    source
        .lines()
        .enumerate()
        .find_map(|(i, line)| line.find(&pattern).map(|col| (i + 1, col + 1)))
        .unwrap_or((1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_errors_point_at_the_line() {
        let engine = ScriptEngine::default();
        let err = Script::compile(
            &engine,
            "routing",
            Path::new("routing.rhai"),
            "fn route(event) {\n  let x = ;\n}",
        )
        .unwrap_err();
        assert_eq!((err.line, err.col), (2, 11), "{err}");
        assert!(err.to_string().starts_with("routing.rhai:2:11: "), "{err}");
    }

    #[test]
    fn a_missing_or_wrong_entry_point_is_refused() {
        let engine = ScriptEngine::default();
        let err = Script::compile(
            &engine,
            "routing",
            Path::new("r.rhai"),
            "fn rout(event) { () }",
        )
        .unwrap_err();
        assert!(
            err.reason.contains("missing entry point `fn route(event)`"),
            "{err}"
        );
        let err = Script::compile(
            &engine,
            "routing",
            Path::new("r.rhai"),
            "\nfn route(a, b) { () }",
        )
        .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("takes 2 parameter(s)"), "{err}");
        let err = Script::compile(
            &engine,
            "misc",
            Path::new("misc.rhai"),
            "fn route(event) { () }",
        )
        .unwrap_err();
        assert!(err.reason.contains("not a place for a script"), "{err}");
    }

    #[test]
    fn undefined_variables_are_compile_errors() {
        let engine = ScriptEngine::default();
        let err = Script::compile(
            &engine,
            "routing",
            Path::new("r.rhai"),
            "fn route(event) { topic }",
        )
        .unwrap_err();
        assert!(err.reason.contains("topic"), "{err}");
    }

    fn event(kind: &str) -> EventView {
        let line = format!(
            r#"{{"id":"1","type":"{kind}","actor":{{"login":"a"}},"repo":{{"name":"o/r"}},"created_at":"2015-01-01T15:00:00Z"}}"#
        );
        EventView::new(Arc::new(forgecast_core::Event::parse(&line).unwrap()))
    }

    #[test]
    fn declared_event_types_decide_which_events_reach_features() {
        let engine = ScriptEngine::default();
        // `features` fails on every call, so an event that gets `None` was never given to it.
        let source = r#"
            fn event_types() { ["IssuesEvent", "IssueCommentEvent"] }
            fn features(record) { throw "called for " + record.type; }
        "#;
        let script = Script::compile(&engine, "features/x", Path::new("x.rhai"), source).unwrap();
        assert_eq!(
            script.event_types(),
            Some(&["IssuesEvent".to_string(), "IssueCommentEvent".to_string()][..])
        );
        assert_eq!(
            script.event_features(&engine, event("PushEvent")).unwrap(),
            None
        );
        let err = script
            .event_features(&engine, event("IssueCommentEvent"))
            .unwrap_err();
        assert!(
            err.message.contains("called for IssueCommentEvent"),
            "{err}"
        );

        // Without the declaration every event is given to `features`.
        let script = Script::compile(
            &engine,
            "features/x",
            Path::new("x.rhai"),
            r#"fn features(record) { throw "called"; }"#,
        )
        .unwrap();
        assert_eq!(script.event_types(), None);
        assert!(script.event_features(&engine, event("PushEvent")).is_err());
    }

    #[test]
    fn a_bad_event_types_declaration_is_refused_where_it_stands() {
        let engine = ScriptEngine::default();
        for (body, says) in [
            (r#""IssuesEvent""#, "returned IssuesEvent (string)"),
            ("[]", "returned an empty array"),
            (r#"["IssuesEvent", 3]"#, "element 1 is 3 (i64)"),
            (r#"["IssuesEvent", ""]"#, "element 1 is an empty string"),
        ] {
            let source = format!("fn features(record) {{ () }}\n\nfn event_types() {{ {body} }}\n");
            let err =
                Script::compile(&engine, "features/x", Path::new("x.rhai"), &source).unwrap_err();
            assert_eq!(err.line, 3, "{err}");
            assert!(
                err.reason
                    .contains("expected a non-empty array of event type names"),
                "{err}"
            );
            assert!(err.reason.contains(says), "{body}: {err}");
        }
        let err = Script::compile(
            &engine,
            "features/x",
            Path::new("x.rhai"),
            "fn features(record) { () }\n\nfn event_types(record) { [\"IssuesEvent\"] }",
        )
        .unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(
            err.reason
                .contains("takes 1 parameter(s); expected `fn event_types()`"),
            "{err}"
        );
        let err = Script::compile(
            &engine,
            "features/x",
            Path::new("x.rhai"),
            "fn features(record) { () }\nfn event_types() { throw \"not yet\"; }",
        )
        .unwrap_err();
        assert!(err.reason.contains("not yet"), "{err}");
        assert_eq!(err.line, 2, "{err}");
    }
}
