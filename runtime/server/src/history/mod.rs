//! The history of a lake per month, quarter and year (what `forgecast aggregate` runs), computed by the
//! runtime's own engine ([`native`], `--engine embedded`) or by the Spark job ([`spark`]), then loaded into the
//! store.
//!
//! Both engines read the same inputs (the lake's hour files and the repository languages and topics the store
//! has cached, exported to `<data-dir>/history/repos.jsonl`) and write the same JSON lines, so their results can
//! be compared row by row. Loading sets the counters to the computed values: running again changes nothing.
//!
//! The store's own lake is read alongside its writer, which may be appending, or may have been killed between
//! the lake's sync and SQLite's commit: each of its files, plain (`HH.json`, an hour going on) or compressed
//! (`HH.json.gz`, an hour over), is read only up to the end the store committed, as SQLite records it when the
//! run starts ([`Input`]); a file it does not record is not read. A plain file the writer compresses meanwhile
//! is read from its compressed form, which starts with the same lines.

mod native;
mod spark;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use forgecast_core::aggregate::{AggregateRow, Dimension, Granularity};
use forgecast_core::store::Store;
use forgecast_embedded::SqliteStore;
use forgecast_gharchive::inflate::Inflater;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::backends::{Access, AnyStore, open_store};
use crate::cli::Engine;
use crate::config::AggregatePlan;

/// One line of the counts file.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    granularity: String,
    bucket: i64,
    dimension: String,
    key: String,
    count: u64,
}

/// What an aggregation did.
#[derive(Debug)]
pub struct Report {
    /// The counts file.
    pub out: PathBuf,
    /// Rows computed.
    pub rows: usize,
    /// Whether they were loaded into the store.
    pub imported: bool,
}

/// What the store's cache knows of repositories: name → (language, topics).
type Repos = HashMap<String, (Option<String>, Vec<String>)>;

/// One hour file for an engine to read, and how much of it.
#[derive(Debug, Clone)]
struct Input {
    path: PathBuf,
    /// For a file of the store's own lake, the end the store committed: bytes past it are not events yet (a write
    /// in progress, or a crash's leftovers, which only the writer cuts off). `None`: the whole file.
    committed: Option<u64>,
}

impl Input {
    /// Whether the file is gzipped.
    fn gz(&self) -> bool {
        self.path.to_string_lossy().ends_with(".gz")
    }

    /// The file's lines: the whole file or its committed part, inflated into `out` (its capacity reused) when
    /// it is compressed.
    fn text(&self, inflater: &mut Inflater, mut out: Vec<u8>) -> std::io::Result<Vec<u8>> {
        match (self.read(), self.committed) {
            (Ok(raw), _) if self.gz() => {
                inflater.gunzip(&raw, &mut out)?;
                Ok(out)
            }
            (Ok(raw), _) => Ok(raw),
            // The store's writer compressed this plain file since the snapshot: its compressed form starts with
            // the lines committed then.
            (Err(e), Some(end)) if e.kind() == std::io::ErrorKind::NotFound && !self.gz() => {
                let mut gz = self.path.clone().into_os_string();
                gz.push(".gz");
                inflater.gunzip(&std::fs::read(gz)?, &mut out)?;
                out.truncate(end as usize);
                Ok(out)
            }
            (Err(e), _) => Err(e),
        }
    }

    /// The bytes to count as they are on disk: the whole file, or its committed part.
    fn read(&self) -> std::io::Result<Vec<u8>> {
        match self.committed {
            None => std::fs::read(&self.path),
            Some(end) => {
                let mut bytes = Vec::with_capacity(end as usize);
                std::fs::File::open(&self.path)?
                    .take(end)
                    .read_to_end(&mut bytes)?;
                Ok(bytes)
            }
        }
    }
}

/// The hour files under `lake`. Given the committed ends of the store's own lake (by name on disk), its files,
/// plain and compressed, are read only up to them, and those with nothing committed not at all.
fn inputs(lake: &Path, committed: Option<&HashMap<String, u64>>) -> anyhow::Result<Vec<Input>> {
    let files = forgecast_lake::layout::hour_files(lake)
        .with_context(|| format!("cannot read the lake {}", lake.display()))?;
    let mut inputs = Vec::with_capacity(files.len());
    let (mut tails, mut tail_bytes) = (0u64, 0u64);
    for path in files {
        let end = committed.map(|ends| {
            let relative = path.strip_prefix(lake).unwrap_or(&path).to_string_lossy();
            ends.get(relative.as_ref()).copied().unwrap_or(0)
        });
        if let Some(end) = end {
            if end == 0 {
                continue;
            }
            // A plain file gone since the listing was compressed by the writer: read then from its new form.
            let len = match std::fs::metadata(&path) {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => end,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", path.display()));
                }
            };
            if len > end {
                tails += 1;
                tail_bytes += len - end;
            }
        }
        inputs.push(Input {
            path,
            committed: end,
        });
    }
    if tails > 0 {
        tracing::info!(
            component = "aggregate",
            files = tails,
            bytes = tail_bytes,
            "Bytes past the store's last commit in some hour files (a write in progress, or what a crash left) are left out."
        );
    }
    Ok(inputs)
}

/// Whether `a` and `b` are the same existing directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

fn write_rows(out: &Path, rows: &[AggregateRow]) -> anyhow::Result<()> {
    let temporary = out.with_extension("jsonl.tmp");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
    for r in rows {
        let line = Line {
            granularity: r.granularity.as_str().into(),
            bucket: r.bucket,
            dimension: r.dimension.as_str().into(),
            key: r.key.clone(),
            count: r.count,
        };
        serde_json::to_writer(&mut file, &line)?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    drop(file);
    std::fs::rename(&temporary, out)?;
    Ok(())
}

/// Reads a counts file (either engine's).
pub fn read_rows(path: &Path) -> anyhow::Result<Vec<AggregateRow>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        let at = || format!("{}:{}", path.display(), number + 1);
        let parsed: Line = serde_json::from_str(&line).with_context(at)?;
        let granularity = Granularity::parse(&parsed.granularity)
            .with_context(|| format!("{}: unknown granularity {:?}", at(), parsed.granularity))?;
        let dimension = Dimension::parse(&parsed.dimension)
            .with_context(|| format!("{}: unknown dimension {:?}", at(), parsed.dimension))?;
        rows.push(AggregateRow {
            granularity,
            bucket: parsed.bucket,
            dimension,
            key: parsed.key,
            count: parsed.count,
        });
    }
    Ok(rows)
}

impl Report {
    /// One line saying what was done.
    pub fn summary(&self) -> String {
        let loaded = if self.imported {
            "loaded into the store"
        } else {
            "not loaded (--no-import)"
        };
        format!(
            "{} history rows in {}, {loaded}",
            self.rows,
            self.out.display()
        )
    }
}

/// Computes (and, unless told not to, loads) the history of the lake, once.
pub async fn run(plan: &AggregatePlan, stop: &CancellationToken) -> anyhow::Result<Report> {
    let lake = &plan.lake;
    // Alongside: `forgecast up` may be writing to the same data directory while the history is computed.
    let Some(store) = open_store(&plan.storage, Access::Reader, stop).await? else {
        bail!("stopped before the store could be reached");
    };
    let store_path = plan.storage.sqlite_path();
    // A snapshot of what the store committed of its own lake, taken before any file is looked at.
    let committed = match &store {
        AnyStore::Sqlite(sqlite) if same_dir(lake, &SqliteStore::lake_path(&store_path)) => {
            Some(sqlite.committed_lake().await?)
        }
        _ => None,
    };
    let inputs = inputs(lake, committed.as_ref())?;
    let history_dir = plan.history_dir();
    std::fs::create_dir_all(&history_dir)?;
    let known: Repos = store
        .repo_facts()
        .await?
        .into_iter()
        .map(|(name, language, topics)| (name, (language, topics)))
        .collect();
    let repos = history_dir.join("repos.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&repos)?);
    for (name, (language, topics)) in &known {
        serde_json::to_writer(
            &mut file,
            &serde_json::json!({ "name": name, "language": language, "topics": topics }),
        )?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    drop(file);

    let name = match plan.engine {
        Engine::Embedded => "embedded",
        Engine::Spark => "spark",
    };
    let out = plan.out.clone();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    tracing::info!(component = "aggregate", engine = name, lake = %lake.display(), "Computing the history.");
    match plan.engine {
        Engine::Embedded => {
            // Seconds of work on every core: the runtime's other tasks (signals) move to another thread.
            let (rows, lines) = tokio::task::block_in_place(|| native::history(inputs, &known))?;
            tracing::info!(
                component = "aggregate",
                events = lines.events,
                malformed = lines.malformed,
                "Lake read."
            );
            write_rows(&out, &rows)?
        }
        Engine::Spark => {
            // The job lists a lake itself; the store's own is given file by file, each cut at its commit.
            let own = committed.is_some().then_some(inputs.as_slice());
            spark::run(plan, own, &repos, &out)?
        }
    }
    let rows = read_rows(&out)?;
    let count = rows.len();
    if plan.import {
        store.put_counters(rows).await?;
    }
    Ok(Report {
        out,
        rows: count,
        imported: plan.import,
    })
}
