//! The Spark engine: `spark/jobs/history.py` run by the Python that has PySpark, its output in this
//! process's log.
//!
//! Spark reads files whole. The store's own lake is therefore given to the job file by file: a file whose
//! length is its committed end in place, a file with bytes past its commit (a write in progress, a crash's
//! leftovers; for a compressed hour, whole gzip members past its end) through a copy of its committed part under
//! `<data-dir>/history/committed/`, removed after the job. A plain file compressed by the writer since the
//! snapshot is copied from its compressed form, cut at the snapshot's end.
//! A file the writer appends to while the job runs may still be read further than the snapshot: those bytes are
//! synced events that the writer commits a moment later, but a crash in between would count them.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use forgecast_gharchive::inflate::Inflater;

use super::Input;
use crate::config::{AggregatePlan, SparkPlan};

/// Runs the Spark job on `lake`, or on the files `own` of the store's own lake, its output in this process's log.
pub(super) fn run(
    plan: &AggregatePlan,
    own: Option<&[Input]>,
    repos: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    if !plan.spark.job.is_file() {
        bail!(
            "the Spark job {} is not there (--spark-job)",
            plan.spark.job.display()
        );
    }
    let history = plan.history_dir();
    let lake = plan.lake.as_path();
    let (copies, list) = (history.join("committed"), history.join("files.json"));
    let clean = || {
        let _ = std::fs::remove_dir_all(&copies);
        let _ = std::fs::remove_file(&list);
    };
    clean();
    let mut job = Command::new(&plan.spark.python);
    job.arg(&plan.spark.job).arg("--lake").arg(lake);
    if let Some(inputs) = own {
        let files = committed_files(lake, inputs, &copies)?;
        std::fs::write(&list, serde_json::to_vec(&files)?)
            .with_context(|| format!("cannot write {}", list.display()))?;
        job.arg("--files").arg(&list);
    }
    let ran = run_job(&plan.spark, job, repos, out);
    clean();
    ran
}

/// The files of the store's own lake as the job reads them: in place when whole files are committed, else a
/// copy of the committed part under `copies`.
fn committed_files(lake: &Path, inputs: &[Input], copies: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::with_capacity(inputs.len());
    for input in inputs {
        let path = &input.path;
        let mut file = match File::open(path) {
            Ok(file) => file,
            // The store's writer compressed this plain file since the snapshot: the job reads the lines committed
            // then, from its compressed form.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && input.committed.is_some() => {
                let copy = copies.join(path.strip_prefix(lake).unwrap_or(path));
                if let Some(parent) = copy.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let text = input
                    .text(&mut Inflater::new(), Vec::new())
                    .with_context(|| format!("cannot read {}", path.display()))?;
                std::fs::write(&copy, text)
                    .with_context(|| format!("cannot write {}", copy.display()))?;
                files.push(copy);
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let end = match input.committed {
            Some(end) if file.metadata()?.len() > end => end,
            _ => {
                files.push(path.clone());
                continue;
            }
        };
        let copy = copies.join(path.strip_prefix(lake).unwrap_or(path));
        if let Some(parent) = copy.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut to =
            File::create(&copy).with_context(|| format!("cannot write {}", copy.display()))?;
        std::io::copy(&mut (&mut file).take(end), &mut to)
            .with_context(|| format!("cannot copy {} to {}", path.display(), copy.display()))?;
        files.push(copy);
    }
    Ok(files)
}

fn run_job(spark: &SparkPlan, mut job: Command, repos: &Path, out: &Path) -> anyhow::Result<()> {
    let mut child = job
        .arg("--repos")
        .arg(repos)
        .arg("--out")
        .arg(out)
        .arg("--master")
        .arg(&spark.master)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {} (--spark-python, a Python with PySpark)",
                spark.python
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
