//! The live scripts: discovered on disk, validated, and swapped in atomically.
//!
//! A rescan reads every script and its cases file. A script whose content changed is compiled, checked for its
//! entry point and run against its cases; only then does it replace the running version, in one atomic swap.
//! A version that fails any step is refused: the previous version keeps running, one log line says which file,
//! where and why, and the same content is not tried again until it changes. A script that disappears keeps
//! running its last version, so a half-finished editor save or ConfigMap update never leaves a hole.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use forgecast_core::time::{format_timestamp, now_unix};
use serde::Serialize;

use crate::cases::{cases_path, run_cases};
use crate::engine::ScriptEngine;
use crate::role::Role;
use crate::script::{Problem, Script, content_hash};

/// Deepest folder nesting searched for scripts.
const MAX_DEPTH: usize = 4;

/// An immutable set of live script versions; processors take one per batch.
#[derive(Debug, Default, Clone)]
pub struct ScriptSet {
    scripts: BTreeMap<String, Arc<Script>>,
}

impl ScriptSet {
    /// The script with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Script>> {
        self.scripts.get(id)
    }

    /// The routing script.
    pub fn routing(&self) -> Option<&Arc<Script>> {
        self.get("routing")
    }

    /// Every script of a role.
    pub fn of_role(&self, role: Role) -> impl Iterator<Item = &Arc<Script>> {
        self.scripts.values().filter(move |s| s.role() == role)
    }

    /// Every script.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Script>> {
        self.scripts.values()
    }
}

/// Why a version was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// When, RFC 3339.
    pub at: String,
    /// Content hash of the refused version.
    pub hash: String,
    /// Every problem, as `file:line:col: reason`.
    pub reason: String,
}

/// What `GET /api/scripts` shows for one script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptStatus {
    /// Script id.
    pub id: String,
    /// The file.
    pub file: String,
    /// `live`, `refused` (nothing live yet) or `missing` (file gone; last version still live).
    pub status: &'static str,
    /// Content hash of the live version.
    pub hash: Option<String>,
    /// When the live version went live, RFC 3339.
    pub loaded_at: Option<String>,
    /// The last refusal, if any version was ever refused.
    pub last_refusal: Option<Refusal>,
}

/// One reload decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadEvent {
    /// Script id.
    pub script: String,
    /// Content hash of the version live before, if any.
    pub old_hash: Option<String>,
    /// Content hash of the version considered.
    pub new_hash: String,
    /// Whether it went live.
    pub accepted: bool,
    /// Why not, when refused.
    pub problems: Vec<Problem>,
    /// The event types a features script that went live declares it reads (`fn event_types()`).
    pub event_types: Option<Vec<String>>,
}

impl ReloadEvent {
    /// The problems on one line.
    pub fn reason(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| join(&self.problems))
    }

    /// The declared event types on one line, for the log.
    fn reads(&self) -> Option<String> {
        self.event_types.as_ref().map(|types| types.join(","))
    }
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A script file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Script id: relative path without `.rhai`, `/`-separated.
    pub id: String,
    /// The path to read.
    pub path: PathBuf,
}

/// Lists the script files under `dir`, following symbolic links and skipping hidden entries (which also skips
/// the `..data` and timestamped folders of a Kubernetes ConfigMap volume, reached through their links instead).
pub fn discover(dir: &Path) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    walk(dir, "", 0, &mut found)?;
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

fn walk(dir: &Path, prefix: &str, depth: usize, found: &mut Vec<Found>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() && depth < MAX_DEPTH {
            walk(&path, &format!("{prefix}{name}/"), depth + 1, found)?;
        } else if let Some(stem) = name.strip_suffix(".rhai").filter(|_| meta.is_file()) {
            found.push(Found {
                id: format!("{prefix}{stem}"),
                path,
            });
        }
    }
    Ok(())
}

/// A script file as read: its source and its cases.
struct Read {
    source: String,
    cases: Option<(PathBuf, String)>,
    fingerprint: String,
}

fn read(found: &Found) -> io::Result<Read> {
    let source = fs::read_to_string(&found.path)?;
    let cases_file = cases_path(&found.path);
    let cases = match fs::read_to_string(&cases_file) {
        Ok(text) => Some((cases_file, text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let fingerprint = content_hash(&format!(
        "{source}\0{}",
        cases.as_ref().map_or("", |c| c.1.as_str())
    ));
    Ok(Read {
        source,
        cases,
        fingerprint,
    })
}

fn validate(engine: &ScriptEngine, found: &Found, read: &Read) -> Result<Script, Vec<Problem>> {
    let script =
        Script::compile(engine, &found.id, &found.path, &read.source).map_err(|p| vec![p])?;
    if let Some((path, text)) = &read.cases {
        let problems = run_cases(engine, &script, path, text);
        if !problems.is_empty() {
            return Err(problems);
        }
    }
    Ok(script)
}

/// Checks every script under `dir` as a reload would: compile, entry point, cases. Returns the valid scripts and
/// every problem found.
pub fn check_dir(engine: &ScriptEngine, dir: &Path) -> (Vec<Script>, Vec<Problem>) {
    let found = match discover(dir) {
        Ok(found) => found,
        Err(e) => {
            return (
                vec![],
                vec![Problem::at(
                    dir,
                    0,
                    0,
                    format!("cannot read the scripts directory: {e}"),
                )],
            );
        }
    };
    let mut scripts = Vec::new();
    let mut problems = Vec::new();
    for f in &found {
        match read(f) {
            Err(e) => problems.push(Problem::at(&f.path, 0, 0, format!("cannot read: {e}"))),
            Ok(r) => match validate(engine, f, &r) {
                Ok(script) => scripts.push(script),
                Err(p) => problems.extend(p),
            },
        }
    }
    (scripts, problems)
}

struct Entry {
    file: PathBuf,
    live_fingerprint: Option<String>,
    refused_fingerprint: Option<String>,
    loaded_at: Option<i64>,
    last_refusal: Option<Refusal>,
    missing: bool,
}

type Listener = Box<dyn Fn(&ReloadEvent) + Send + Sync>;

/// Owns the live scripts of a running pipeline.
pub struct ScriptHost {
    engine: Arc<ScriptEngine>,
    dir: PathBuf,
    live: ArcSwap<ScriptSet>,
    entries: Mutex<BTreeMap<String, Entry>>,
    listeners: Mutex<Vec<Listener>>,
}

impl ScriptHost {
    /// Loads every script under `dir`. At start-up every script must be valid: the problems are returned
    /// otherwise, all of them, so they can be fixed in one go.
    pub fn start(engine: Arc<ScriptEngine>, dir: &Path) -> Result<ScriptHost, Vec<Problem>> {
        let host = ScriptHost {
            engine,
            dir: dir.to_path_buf(),
            live: ArcSwap::from_pointee(ScriptSet::default()),
            entries: Mutex::new(BTreeMap::new()),
            listeners: Mutex::new(Vec::new()),
        };
        let (_, problems) = check_dir(&host.engine, dir);
        if !problems.is_empty() {
            return Err(problems);
        }
        host.rescan_quietly();
        Ok(host)
    }

    fn rescan_quietly(&self) {
        for event in self.scan() {
            let reads = event.reads();
            tracing::info!(component = "scripts", script = %event.script, hash = %event.new_hash, reads = reads.as_deref(), "Script loaded.");
        }
    }

    /// The engine scripts run on.
    pub fn engine(&self) -> &Arc<ScriptEngine> {
        &self.engine
    }

    /// The scripts directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The live scripts, as of now.
    pub fn scripts(&self) -> Arc<ScriptSet> {
        self.live.load_full()
    }

    /// Calls `listener` after every reload decision (for metrics and the store).
    pub fn on_reload(&self, listener: impl Fn(&ReloadEvent) + Send + Sync + 'static) {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(listener));
    }

    /// Every known script with its status, by id.
    pub fn statuses(&self) -> Vec<ScriptStatus> {
        let live = self.scripts();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|(id, entry)| {
                let script = live.get(id);
                ScriptStatus {
                    id: id.clone(),
                    file: entry.file.display().to_string(),
                    status: match (script, entry.missing) {
                        (Some(_), true) => "missing",
                        (Some(_), false) => "live",
                        (None, _) => "refused",
                    },
                    hash: script.map(|s| s.hash().to_string()),
                    loaded_at: entry.loaded_at.map(format_timestamp),
                    last_refusal: entry.last_refusal.clone(),
                }
            })
            .collect()
    }

    /// Reads the directory again and applies every change; returns (and logs) the decisions taken.
    pub fn rescan(&self) -> Vec<ReloadEvent> {
        let events = self.scan();
        for event in &events {
            log(event);
            for listener in self
                .listeners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                listener(event);
            }
        }
        events
    }

    fn scan(&self) -> Vec<ReloadEvent> {
        let found = match discover(&self.dir) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(component = "scripts", dir = %self.dir.display(), error = %e, "Cannot read the scripts directory; keeping the live scripts.");
                return vec![];
            }
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut set = (*self.scripts()).clone();
        let mut events = Vec::new();
        for (id, entry) in entries.iter_mut() {
            let present = found.iter().any(|f| &f.id == id);
            if !present && !entry.missing && set.get(id).is_some() {
                tracing::warn!(component = "scripts", script = %id, "Script file is gone; its last version keeps running.");
            }
            entry.missing = !present;
        }
        for f in &found {
            let Ok(read) = read(f) else { continue };
            let entry = entries.entry(f.id.clone()).or_insert_with(|| Entry {
                file: f.path.clone(),
                live_fingerprint: None,
                refused_fingerprint: None,
                loaded_at: None,
                last_refusal: None,
                missing: false,
            });
            let seen = [&entry.live_fingerprint, &entry.refused_fingerprint];
            if seen
                .iter()
                .any(|fp| fp.as_deref() == Some(read.fingerprint.as_str()))
            {
                continue;
            }
            let old_hash = set.get(&f.id).map(|s| s.hash().to_string());
            let new_hash = content_hash(&read.source);
            match validate(&self.engine, f, &read) {
                Ok(script) => {
                    let event_types = script.event_types().map(<[String]>::to_vec);
                    set.scripts.insert(f.id.clone(), Arc::new(script));
                    entry.live_fingerprint = Some(read.fingerprint);
                    entry.refused_fingerprint = None;
                    entry.loaded_at = Some(now_unix());
                    events.push(ReloadEvent {
                        script: f.id.clone(),
                        old_hash,
                        new_hash,
                        accepted: true,
                        problems: vec![],
                        event_types,
                    });
                }
                Err(problems) => {
                    entry.refused_fingerprint = Some(read.fingerprint);
                    entry.last_refusal = Some(Refusal {
                        at: format_timestamp(now_unix()),
                        hash: new_hash.clone(),
                        reason: join(&problems),
                    });
                    events.push(ReloadEvent {
                        script: f.id.clone(),
                        old_hash,
                        new_hash,
                        accepted: false,
                        problems,
                        event_types: None,
                    });
                }
            }
        }
        if events.iter().any(|e| e.accepted) {
            self.live.store(Arc::new(set));
        }
        events
    }
}

fn log(event: &ReloadEvent) {
    let old = event.old_hash.as_deref().unwrap_or("none");
    if event.accepted {
        let reads = event.reads();
        tracing::info!(component = "scripts", script = %event.script, old, new = %event.new_hash, reads = reads.as_deref(), "Script reloaded; the new version is live.");
    } else {
        let reason = event.reason().unwrap_or_default();
        tracing::warn!(component = "scripts", script = %event.script, old, new = %event.new_hash, "Script refused, the previous version keeps running: {reason}");
    }
}
