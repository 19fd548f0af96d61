//! `forgecast aggregate`: the history of a lake per month, quarter and year, computed by the runtime's own
//! aggregator or by the Spark job, then loaded into the store.
//!
//! Both engines read the same inputs (the lake's hour files and the repository languages and topics the store
//! has cached, exported to `<data-dir>/history/repos.jsonl`) and write the same JSON lines, so their results can
//! be compared row by row. Loading sets the counters to the computed values: running again changes nothing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context, bail};
use forgecast_connect::backend::AnyStore;
use forgecast_connect::embedded::SqliteStore;
use forgecast_connect::gharchive::{self, Decoded};
use forgecast_connect::mongo::MongoStore;
use forgecast_core::aggregate::{AggregateRow, Dimension, Granularity, RepoFacts};
use forgecast_core::history::{History, SeenIds};
use forgecast_core::source::Incoming;
use forgecast_core::store::Store;
use indicatif::{ProgressBar, ProgressStyle};
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

fn facts<'a>(repos: &'a Repos, name: &str) -> RepoFacts<'a> {
    match repos.get(name) {
        Some((language, topics)) => RepoFacts {
            language: language.as_deref(),
            topics,
        },
        None => RepoFacts::default(),
    }
}

/// Decodes one hour file into `history`, counting each event whose id `seen` has not met before.
fn decode_file(
    lake: &Path,
    file: &Path,
    seen: &Mutex<SeenIds>,
    repos: &Repos,
    history: &mut History,
) -> anyhow::Result<Decoded> {
    let name = file
        .strip_prefix(lake)
        .unwrap_or(file)
        .display()
        .to_string();
    let reader =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut decoded = Decoded::default();
    let each = |chunk| {
        let events: Vec<_> = gharchive::parse_lines(&name, chunk, &mut decoded)
            .into_iter()
            .filter_map(|item| match item {
                Incoming::Event(event) => Some(event),
                Incoming::Malformed(_) => None,
            })
            .collect();
        // One lock per chunk: which of these ids are new, across every thread.
        let new: Vec<bool> = {
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            events.iter().map(|e| seen.first_time(&e.id)).collect()
        };
        for (event, new) in events.iter().zip(new) {
            if new {
                history.add_unique(event, facts(repos, &event.repo));
            }
        }
        true
    };
    let read = if name.ends_with(".gz") {
        gharchive::read_lines(reader, 4096, each)
    } else {
        gharchive::read_plain_lines(reader, 4096, each)
    };
    read.with_context(|| format!("cannot decode {}", file.display()))?;
    Ok(decoded)
}

/// The runtime's own engine. Files are decoded and counted on one thread per core (inflating is the slow
/// part), each into its own [`History`]; one set of ids across the threads keeps an id repeated across files
/// counting once, and the histories are merged at the end.
fn embedded(lake: &Path, repos: &Repos) -> anyhow::Result<Vec<AggregateRow>> {
    let files = gharchive::hour_files(lake)
        .with_context(|| format!("cannot read the lake {}", lake.display()))?;
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} files  {msg}")
            .expect("a valid template"),
    );
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let queue = Mutex::new(files.iter().collect::<Vec<_>>());
    let seen = Mutex::new(SeenIds::default());
    let mut history = History::new();
    let mut decoded = Decoded::default();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (queue, seen, bar) = (&queue, &seen, &bar);
                scope.spawn(move || -> anyhow::Result<(History, Decoded)> {
                    let (mut mine, mut total) = (History::new(), Decoded::default());
                    loop {
                        // Taken in its own statement, so the queue is not locked while the file is decoded.
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                        let Some(file) = next else { break };
                        total.add(&decode_file(lake, file, seen, repos, &mut mine)?);
                        bar.inc(1);
                    }
                    Ok((mine, total))
                })
            })
            .collect();
        for handle in handles {
            let (mine, total) = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a decoding thread panicked"))??;
            history.merge(mine);
            decoded.add(&total);
        }
        Ok(())
    })?;
    bar.finish();
    tracing::info!(
        component = "aggregate",
        files = files.len(),
        events = decoded.events(),
        malformed = decoded.malformed,
        "Lake read."
    );
    Ok(history.rows())
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

/// Runs the Spark job, its output in this process's log.
fn spark(args: &AggregateArgs, lake: &Path, repos: &Path, out: &Path) -> anyhow::Result<()> {
    if !args.spark_job.is_file() {
        bail!(
            "the Spark job {} is not there (--spark-job)",
            args.spark_job.display()
        );
    }
    let mut child = Command::new(&args.spark_python)
        .arg(&args.spark_job)
        .arg("--lake")
        .arg(lake)
        .arg("--repos")
        .arg(repos)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {} (--spark-python, a Python with PySpark)",
                args.spark_python
            )
        })?;
    let stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut last = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            tracing::debug!(component = "spark", stream = "stderr", "{line}");
            last.push(line);
            if last.len() > 20 {
                last.remove(0);
            }
        }
        last
    });
    for line in BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        tracing::info!(component = "spark", "{line}");
    }
    let status = child.wait()?;
    let last = errors.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "the Spark job failed ({status}); its last lines:\n{}",
            last.join("\n")
        );
    }
    Ok(())
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
        Engine::Embedded => write_rows(&out, &embedded(&lake, &known)?)?,
        Engine::Spark => spark(&args, &lake, &repos, &out)?,
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
