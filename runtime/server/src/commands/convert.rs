//! `forgecast convert jira --input DIR --output DIR`: issue histories kept elsewhere written as GH Archive
//! hour files, for `forgecast backfill --source-dir DIR --sparse` to replay through the pipeline as live events.

use anyhow::Context;

use crate::cli::{ConvertArgs, ConvertFormat};

/// Converts; prints what was read and written.
pub fn run(args: ConvertArgs) -> anyhow::Result<()> {
    match args.format {
        ConvertFormat::Jira => {
            if !args.input.is_dir() {
                anyhow::bail!("--input {}: not a directory", args.input.display());
            }
            let jira = |e: forgecast_gharchive::jira::JiraError| anyhow::anyhow!("{e}");
            let issues = forgecast_gharchive::jira::read_dir(&args.input).map_err(jira)?;
            let events = forgecast_gharchive::jira::events(&issues);
            let files = forgecast_gharchive::jira::write_hours(&events, &args.output, true)
                .map_err(jira)
                .with_context(|| format!("writing under {}", args.output.display()))?;
            let opened = events.iter().filter(|e| e.action == "opened").count();
            println!(
                "{} issues: {opened} opened and {} closed events in {} hour files under {}.",
                issues.len(),
                events.len() - opened,
                files.len(),
                args.output.display()
            );
            let hour = |unix: i64| {
                chrono::DateTime::from_timestamp(unix, 0)
                    .unwrap_or_default()
                    .format("%Y-%m-%dT%H")
                    .to_string()
            };
            if let (Some(first), Some(last)) = (events.first(), events.last()) {
                println!(
                    "Replay them: forgecast backfill --source-dir {} --sparse --from {} --to {}",
                    args.output.display(),
                    hour(first.created_at),
                    hour(last.created_at)
                );
            }
        }
    }
    Ok(())
}
