//! `forgecast aggregate`: the history of a lake per month, quarter and year, computed by the runtime's own
//! aggregator or by the Spark job, then loaded into the store.
//!
//! Both engines read the same inputs (the lake's hour files and the repository languages and topics the store
//! has cached, exported to `<data-dir>/history/repos.jsonl`) and write the same JSON lines, so their results can
//! be compared row by row. Loading sets the counters to the computed values: running again changes nothing.

mod embedded;
mod spark;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use forgecast_connect::backend::AnyStore;
use forgecast_connect::embedded::SqliteStore;
use forgecast_connect::mongo::MongoStore;
use forgecast_core::aggregate::{AggregateRow, Dimension, Granularity};
use forgecast_core::store::Store;
use serde::{Deserialize, Serialize};

use crate::cli::{AggregateArgs, Engine, StoreKind};

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

/// Computes (and, unless told not to, loads) the history of the lake.
pub async fn run(args: AggregateArgs) -> anyhow::Result<Report> {
    let store_path = args.data_dir.join("forgecast.sqlite");
    let lake = match (&args.lake, args.store) {
        (Some(lake), _) => lake.clone(),
        (None, StoreKind::Embedded) => SqliteStore::lake_path(&store_path),
        (None, StoreKind::Mongo) => {
            bail!("--lake is needed with --store mongo: only the embedded store keeps a lake")
        }
    };
    if !lake.is_dir() {
        bail!("--lake: {} is not a directory", lake.display());
    }
    let store = match args.store {
        // Alongside: `forgecast up` may be writing to the same data directory while the history is computed.
        StoreKind::Embedded => AnyStore::Sqlite(SqliteStore::open_alongside(&store_path)?),
        StoreKind::Mongo => {
            AnyStore::Mongo(MongoStore::connect(&args.mongo_uri, &args.mongo_db).await?)
        }
    };
    let history_dir = args.data_dir.join("history");
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

    let name = match args.engine {
        Engine::Embedded => "embedded",
        Engine::Spark => "spark",
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| history_dir.join(format!("{name}.jsonl")));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    tracing::info!(component = "aggregate", engine = name, lake = %lake.display(), "Computing the history.");
    match args.engine {
        Engine::Embedded => {
            // Seconds of work on every core: the runtime's other tasks (signals) move to another thread.
            let (rows, lines) = tokio::task::block_in_place(|| embedded::history(&lake, &known))?;
            tracing::info!(
                component = "aggregate",
                events = lines.events,
                malformed = lines.malformed,
                "Lake read."
            );
            write_rows(&out, &rows)?
        }
        Engine::Spark => spark::run(&args, &lake, &repos, &out)?,
    }
    let rows = read_rows(&out)?;
    let count = rows.len();
    if !args.no_import {
        store.put_counters(rows).await?;
    }
    Ok(Report {
        out,
        rows: count,
        imported: !args.no_import,
    })
}
