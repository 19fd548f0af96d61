//! The Spark engine: `spark/jobs/history.py` run by the Python that has PySpark, its output in this
//! process's log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::cli::AggregateArgs;

/// Runs the Spark job, its output in this process's log.
pub(super) fn run(
    args: &AggregateArgs,
    lake: &Path,
    repos: &Path,
    out: &Path,
) -> anyhow::Result<()> {
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
        .arg("--master")
        .arg(&args.spark_master)
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
