//! `forgecast eval MODEL --data FILE`: a registered version (the champion by default) scored on labelled data it
//! may never have seen: per-class precision, recall and F1, macro-F1, and the confusion matrix.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, bail};
use forgecast_models::dataset::{Row, SENTIMENT_LABELS, read_rows};
use forgecast_models::metrics::Confusion;

use super::models::{load, registry};
use crate::config::ModelPlan;

/// Reads labelled rows: the gold-standard CSV, or JSON lines `{"text": "…", "label": "negative"}`.
fn labelled(path: &Path) -> anyhow::Result<Vec<Row>> {
    if path.extension().is_some_and(|e| e == "csv") {
        return Ok(read_rows(path)?);
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for (at, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| format!("{}:{}: {what}", path.display(), at + 1);
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| anyhow::anyhow!(bad(&e.to_string())))?;
        let text = value["text"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!(bad("no \"text\"")))?;
        let given = value["label"].as_str().unwrap_or_default();
        let Some(label) = SENTIMENT_LABELS.iter().find(|l| **l == given) else {
            bail!(bad(&format!(
                "label {given:?}; use one of {}",
                SENTIMENT_LABELS.join(", ")
            )));
        };
        rows.push(Row {
            id: (at + 1).to_string(),
            fold: String::new(),
            text: text.to_string(),
            label,
        });
    }
    Ok(rows)
}

/// Scores the version and prints the figures; returns the macro-F1.
pub async fn run(plan: ModelPlan) -> anyhow::Result<f64> {
    let data = plan.data.clone().context("eval needs --data")?;
    let rows = labelled(&data)?;
    if rows.is_empty() {
        bail!("{} holds no labelled text", data.display());
    }
    let store = registry(&plan.storage).await?;
    let (version, model) = load(&store, plan.model.as_str(), plan.version).await?;
    let confusion: Confusion =
        tokio::task::spawn_blocking(move || forgecast_models::sentiment::evaluate(&model, &rows))
            .await?;
    println!(
        "{} version {} on {} ({} texts)",
        plan.model.as_str(),
        version.version,
        data.display(),
        confusion.total()
    );
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>8}",
        "label", "precision", "recall", "F1", "texts"
    );
    for (class, label) in SENTIMENT_LABELS.iter().enumerate() {
        let s = confusion.class_scores(class);
        println!(
            "{label:<10} {:>9.3} {:>9.3} {:>9.3} {:>8}",
            s.precision, s.recall, s.f1, s.support
        );
    }
    println!(
        "macro-F1 {:.3}, accuracy {:.3}",
        confusion.macro_f1(),
        confusion.accuracy()
    );
    println!(
        "confusion (rows: truth, columns: predicted; {}):",
        SENTIMENT_LABELS.join(", ")
    );
    for (label, row) in SENTIMENT_LABELS.iter().zip(confusion.counts()) {
        println!(
            "  {label:<9} {}",
            row.iter().map(|n| format!("{n:>6}")).collect::<String>()
        );
    }
    Ok(confusion.macro_f1())
}
