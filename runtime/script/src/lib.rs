//! The Rhai host: analysts' scripts, run safely and replaced safely while the pipeline runs.
//!
//! - [`engine`]: the engine builder with its always-on limits and the small API scripts see, including the
//!   read-only [`engine::EventView`] that hands events to scripts without copying them into Rhai maps.
//! - [`memory`]: the counting allocator that bounds the memory one script call holds.
//! - [`role`]: which entry point a script must define, decided by where the file lives.
//! - [`output`]: turning what a script returns into typed values, naming the bad field when it is wrong.
//! - [`script`]: one compiled, validated script version, and the calls into it.
//! - [`cases`]: the cases file beside each script, run before any version goes live.
//! - [`host`]: the set of live scripts, rescanned from disk and swapped atomically, with each script's status.
//! - [`watch`]: the directory watcher (inotify or equivalent, plus polling) that drives the rescans.

pub mod cases;
pub mod engine;
pub mod host;
pub mod memory;
pub mod output;
pub mod role;
pub mod script;
pub mod watch;

pub use engine::{EventView, Limits, ScriptEngine};
pub use host::{ReloadEvent, ScriptHost, ScriptSet, ScriptStatus};
pub use output::{FeatureValue, Features, QuerySpec, RetrainDecision, RouteDecision};
pub use role::Role;
pub use script::{CallError, Problem, Script};
