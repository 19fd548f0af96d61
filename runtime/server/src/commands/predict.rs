//! `forgecast predict MODEL`: JSON lines in (`{"text": "…"}`), one JSON line out per line in
//! (`{"label": "…", "scores": {…}}`, or `{"error": "…"}` for a line that is not an instance, and on it goes).

use std::io::{BufRead, Write};

use super::models::{load, registry};
use crate::config::ModelPlan;

/// Predicts every line of standard input; returns how many lines were not instances.
pub async fn run(plan: ModelPlan) -> anyhow::Result<u64> {
    let store = registry(&plan.storage).await?;
    let (version, model) = load(&store, plan.model.as_str(), plan.version).await?;
    eprintln!(
        "{} version {}: reading JSON lines {{\"text\": \"…\"}} from standard input.",
        plan.model.as_str(),
        version.version
    );
    tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let stdin = std::io::stdin().lock();
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut bad = 0;
        for (at, line) in stdin.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let answer = match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(value) => match value["text"].as_str() {
                    Some(text) => {
                        let p = model.predict(text);
                        let scores: serde_json::Map<String, serde_json::Value> = p
                            .scores
                            .into_iter()
                            .map(|(label, score)| (label, serde_json::json!(score)))
                            .collect();
                        serde_json::json!({ "label": p.label, "scores": scores })
                    }
                    None => {
                        bad += 1;
                        serde_json::json!({ "error": format!("line {}: no \"text\" string", at + 1) })
                    }
                },
                Err(e) => {
                    bad += 1;
                    serde_json::json!({ "error": format!("line {}: not JSON: {e}", at + 1) })
                }
            };
            writeln!(out, "{answer}")?;
        }
        out.flush()?;
        Ok(bad)
    })
    .await?
}
