//! The engine every script runs on, with limits that are always on and the API scripts may use.
//!
//! Scripts get no file, network or process access: module imports resolve nowhere, `eval` is disabled, and the
//! registered API is pure functions over values. A call that runs away is stopped by the operation limit or,
//! whichever comes first, by a wall-clock deadline checked from Rhai's progress callback, which also stops a
//! call holding more memory than `max_call_bytes` (see [`crate::memory`]).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use forgecast_core::Event;
use forgecast_core::event::is_bot_login;
use forgecast_core::time::{format_timestamp, now_unix, parse_timestamp};
use rhai::module_resolvers::DummyModuleResolver;
use rhai::{Array, Dynamic, Engine, ImmutableString, Position};
use serde::Deserialize;

/// Engine limits, applied to every call of every script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Rhai operations per call.
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_levels: usize,
    /// Nesting of expressions, at top level and inside functions.
    pub max_expr_depth: usize,
    /// Longest string a script may build, in bytes.
    pub max_string_size: usize,
    /// Largest array a script may build.
    pub max_array_size: usize,
    /// Largest object map a script may build.
    pub max_map_size: usize,
    /// Memory one call may hold, in bytes, whatever it builds it of (counted when the binary installs
    /// [`crate::memory::CountingAllocator`], as `forgecast` does).
    pub max_call_bytes: usize,
    /// Wall-clock time per call, in milliseconds.
    pub deadline_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 1_000_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_string_size: 1 << 20,
            max_array_size: 10_000,
            max_map_size: 10_000,
            max_call_bytes: 32 << 20,
            deadline_ms: 100,
        }
    }
}

/// How often (in operations) the progress callback looks at the clock.
const CLOCK_EVERY_OPS: u64 = 512;

/// The script being called on this thread, for the deadline and for attributing `print` output.
struct Current {
    script: Arc<str>,
    version: Arc<str>,
    deadline: Instant,
    memory: crate::memory::Counted,
    max_bytes: isize,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
    static PINNED_NOW: Cell<Option<i64>> = const { Cell::new(None) };
}

/// Makes `now()` return a fixed time on this thread until dropped, so cases of time-dependent scripts are
/// reproducible.
pub(crate) struct PinnedNow(());

impl PinnedNow {
    pub(crate) fn pin(unix: Option<i64>) -> PinnedNow {
        PINNED_NOW.with(|p| p.set(unix));
        PinnedNow(())
    }
}

impl Drop for PinnedNow {
    fn drop(&mut self) {
        PINNED_NOW.with(|p| p.set(None));
    }
}

fn script_now() -> i64 {
    PINNED_NOW.with(Cell::get).unwrap_or_else(now_unix)
}

/// Marks the script running on this thread until dropped.
pub(crate) struct CallScope(());

impl CallScope {
    pub(crate) fn enter(
        script: &Arc<str>,
        version: &Arc<str>,
        deadline: Duration,
        max_bytes: usize,
    ) -> CallScope {
        CURRENT.with(|c| {
            *c.borrow_mut() = Some(Current {
                script: script.clone(),
                version: version.clone(),
                deadline: Instant::now() + deadline,
                memory: crate::memory::Counted::start(),
                max_bytes: isize::try_from(max_bytes).unwrap_or(isize::MAX),
            })
        });
        CallScope(())
    }
}

impl Drop for CallScope {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

fn with_current<R>(f: impl FnOnce(&str, &str) -> R) -> R {
    CURRENT.with(|c| match &*c.borrow() {
        Some(cur) => f(&cur.script, &cur.version),
        None => f("-", "-"),
    })
}

/// Text the progress callback stops a call with; recognised again in [`crate::script::CallError`].
pub(crate) const DEADLINE_TEXT: &str = "deadline exceeded";
/// Text the progress callback stops a call holding too much memory with.
pub(crate) const MEMORY_TEXT: &str = "memory limit exceeded";

/// A configured Rhai engine together with its limits.
pub struct ScriptEngine {
    engine: Engine,
    limits: Limits,
}

impl ScriptEngine {
    /// Builds the engine with `limits` and the Forgecast script API.
    pub fn new(limits: Limits) -> ScriptEngine {
        let mut engine = Engine::new();
        engine
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_module_resolver(DummyModuleResolver::new())
            .set_strict_variables(true)
            .disable_symbol("eval");
        engine.on_progress(|ops| {
            CURRENT.with(|c| {
                let current = c.borrow();
                let cur = current.as_ref()?;
                // Memory at every operation (one operation can build a large string); the clock less often.
                if cur.memory.held() > cur.max_bytes {
                    return Some(Dynamic::from(MEMORY_TEXT));
                }
                (ops % CLOCK_EVERY_OPS == 0 && Instant::now() > cur.deadline)
                    .then(|| Dynamic::from(DEADLINE_TEXT))
            })
        });
        engine.on_print(|text| {
            with_current(
                |script, version| tracing::info!(target: "script", script, version, "{text}"),
            )
        });
        engine.on_debug(|text, _source, pos| {
            with_current(|script, version| {
                tracing::debug!(target: "script", script, version, line = pos.line(), "{text}")
            })
        });
        register_api(&mut engine);
        ScriptEngine { engine, limits }
    }

    /// The Rhai engine.
    pub fn rhai(&self) -> &Engine {
        &self.engine
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl Default for ScriptEngine {
    fn default() -> Self {
        ScriptEngine::new(Limits::default())
    }
}

/// An event as scripts see it: read-only properties, read without copying the event into a Rhai map.
///
/// `event.type`, `event.actor`, `event.repo` and the like come from the fields parsed at ingestion. Anything
/// else is read with `event.field("payload.action")`: the first [`SCANS`] reads of an event each scan its
/// original JSON for that one value ([`forgecast_core::json_path`]); a script that reads more of it gets the whole
/// document parsed once, and every later read looks it up there.
#[derive(Clone)]
pub struct EventView {
    event: Arc<Event>,
    tree: Arc<OnceLock<serde_json::Value>>,
    scans: Arc<AtomicU32>,
}

/// Reads of an event's fields answered by scanning its JSON before it is parsed whole: one for most scripts
/// (the comment of a comment event), two for a title and a body.
pub const SCANS: u32 = 2;

impl EventView {
    /// Wraps an event for a script call.
    pub fn new(event: Arc<Event>) -> EventView {
        EventView {
            event,
            tree: Arc::new(OnceLock::new()),
            scans: Arc::new(AtomicU32::new(0)),
        }
    }

    /// The event behind the view.
    pub fn event(&self) -> &Arc<Event> {
        &self.event
    }

    fn tree(&self) -> &serde_json::Value {
        // The runtime parses the event for the script: not memory the script built.
        self.tree.get_or_init(|| {
            crate::memory::uncounted(|| {
                serde_json::from_str(&self.event.raw).unwrap_or(serde_json::Value::Null)
            })
        })
    }

    fn field(&mut self, path: &str) -> Dynamic {
        if self.tree.get().is_none() && self.scans.fetch_add(1, Ordering::Relaxed) < SCANS {
            let parts: Vec<&str> = path.split('.').collect();
            // The runtime reads the event for the script: not memory the script built.
            let found = crate::memory::uncounted(|| {
                forgecast_core::json_path::value_at(&self.event.raw, &parts)
            });
            return found.map_or(Dynamic::UNIT, |value| json_to_dynamic(&value));
        }
        let mut node = self.tree();
        for part in path.split('.') {
            let next = match node {
                serde_json::Value::Object(map) => map.get(part),
                serde_json::Value::Array(items) => {
                    part.parse::<usize>().ok().and_then(|i| items.get(i))
                }
                _ => None,
            };
            match next {
                Some(child) => node = child,
                None => return Dynamic::UNIT,
            }
        }
        json_to_dynamic(node)
    }
}

/// Converts JSON into Rhai values (objects become maps, `null` becomes `()`).
pub fn json_to_dynamic(value: &serde_json::Value) -> Dynamic {
    match value {
        serde_json::Value::Null => Dynamic::UNIT,
        serde_json::Value::Bool(b) => Dynamic::from_bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Dynamic::from(s.clone()),
        serde_json::Value::Array(items) => {
            Dynamic::from_array(items.iter().map(json_to_dynamic).collect())
        }
        serde_json::Value::Object(map) => Dynamic::from_map(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
                .collect(),
        ),
    }
}

fn text(s: &str) -> ImmutableString {
    ImmutableString::from(s)
}

fn register_api(engine: &mut Engine) {
    engine
        .register_type_with_name::<EventView>("Event")
        .register_get("id", |e: &mut EventView| text(&e.event.id))
        .register_get("type", |e: &mut EventView| text(&e.event.kind))
        .register_get("actor", |e: &mut EventView| text(&e.event.actor))
        .register_get("repo", |e: &mut EventView| text(&e.event.repo))
        .register_get("org", |e: &mut EventView| {
            e.event
                .org
                .as_deref()
                .map_or(Dynamic::UNIT, |o| text(o).into())
        })
        .register_get("language", |e: &mut EventView| {
            e.event
                .language
                .as_deref()
                .map_or(Dynamic::UNIT, |l| text(l).into())
        })
        .register_get("created_at", |e: &mut EventView| e.event.created_at)
        .register_get("is_bot", |e: &mut EventView| e.event.is_bot())
        .register_get("payload", |e: &mut EventView| e.field("payload"))
        .register_fn("field", |e: &mut EventView, path: &str| e.field(path))
        .register_fn("to_string", |e: &mut EventView| {
            format!("{} {} {}", e.event.kind, e.event.repo, e.event.id)
        });

    engine
        .register_fn("is_bot", is_bot_login)
        .register_fn("hash", |s: &str| fnv1a(s) as i64 & i64::MAX)
        .register_fn("sample", |s: &str, percent: i64| {
            (fnv1a(s) % 100) < percent.clamp(0, 100) as u64
        })
        .register_fn("now", script_now)
        .register_fn("parse_time", |s: &str| {
            parse_timestamp(s).map_or(Dynamic::UNIT, Dynamic::from_int)
        })
        .register_fn("format_time", |unix: i64| format_timestamp(unix))
        .register_fn("discussion_text", discussion_text)
        .register_fn("words", |s: &str| -> Array {
            words(s).map(Dynamic::from).collect()
        })
        .register_fn("count_words", |s: &str, list: Array| -> i64 {
            let wanted: Vec<String> = list
                .iter()
                .filter_map(|d| d.clone().into_string().ok())
                .map(|w| w.to_lowercase())
                .collect();
            raw_words(s)
                .filter(|w| wanted.iter().any(|x| same_word(w, x)))
                .count() as i64
        })
        .register_fn("log", |msg: &str| {
            with_current(
                |script, version| tracing::info!(target: "script", script, version, "{msg}"),
            )
        })
        .register_fn("warn", |msg: &str| {
            with_current(
                |script, version| tracing::warn!(target: "script", script, version, "{msg}"),
            )
        });
}

/// Words of a text as written, split on anything that is not a letter, digit, `_` or `'`.
fn raw_words(s: &str) -> impl Iterator<Item = &str> + '_ {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\''))
        .filter(|w| !w.is_empty())
}

/// What a person wrote in a comment, without what they quoted or pasted: lines quoting an earlier message
/// (`> …`), fenced code blocks and inline code spans are removed, blank runs collapsed, the rest trimmed.
pub fn discussion_text(s: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut fenced = false;
    for line in s.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced || trimmed.starts_with('>') {
            continue;
        }
        kept.push(line);
    }
    let mut out = String::with_capacity(s.len());
    let mut in_code = false;
    for (i, line) in kept.iter().enumerate() {
        if i > 0 && !out.ends_with('\n') {
            out.push('\n');
        }
        for part in line.split('`') {
            if !in_code {
                out.push_str(part);
            }
            in_code = !in_code;
        }
        // An unclosed backtick ends with its line.
        in_code = false;
    }
    out.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lower-cased words of a text.
fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    raw_words(s).map(str::to_lowercase)
}

/// Whether `word` equals the lower-cased `wanted`, ignoring case, without allocating for ASCII words.
fn same_word(word: &str, wanted: &str) -> bool {
    if word.is_ascii() {
        word.eq_ignore_ascii_case(wanted)
    } else {
        word.to_lowercase() == wanted
    }
}

/// A stable 64-bit hash (FNV-1a), the same on every machine and every run, unlike Rust's default hasher.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The line and column of a position, with 0 for unknown.
pub(crate) fn line_col(pos: Position) -> (usize, usize) {
    (pos.line().unwrap_or(0), pos.position().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_across_runs() {
        assert_eq!(fnv1a("torvalds/linux"), fnv1a("torvalds/linux"));
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn same_word_ignores_case_for_any_script() {
        assert!(same_word("LGTM", "lgtm"));
        assert!(same_word("Größe", "größe"));
        assert!(!same_word("bugs", "bug"));
    }

    #[test]
    fn discussion_text_drops_quotes_and_code() {
        let comment = "> you said this\n> twice\n\nThanks, `cargo fmt` fixed it!\n```rust\nfn main() {}\n```\nGreat work.";
        assert_eq!(discussion_text(comment), "Thanks,  fixed it!\nGreat work.");
        assert_eq!(discussion_text("plain"), "plain");
        assert_eq!(discussion_text("> only a quote"), "");
    }

    #[test]
    fn words_split_and_lower_case() {
        assert_eq!(
            words("Thanks, LGTM! can't wait").collect::<Vec<_>>(),
            ["thanks", "lgtm", "can't", "wait"]
        );
    }
}
