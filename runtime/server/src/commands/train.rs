//! `forgecast train MODEL`: cross-validation on the data's own folds (with two baselines in the same run), then
//! a model trained on all of it, registered as a new version with its figures, and promoted if asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use forgecast_core::registry::{Alias, NewVersion, Registry};
use forgecast_core::time::now_unix;
use forgecast_models::dataset::{Folds, read_rows};
use forgecast_models::sentiment::{CvReport, FoldReport, TrainingSummary};
use forgecast_models::{Params, SentimentModel};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::backends::{Access, open_store};
use crate::config::ModelPlan;

/// Trains and registers; returns the new version's number.
pub async fn run(plan: ModelPlan) -> anyhow::Result<u32> {
    let data = plan.data.clone().context("train needs --data")?;
    let rows = read_rows(&data)?;
    let Some(store) = open_store(&plan.storage, Access::Reader, &CancellationToken::new()).await?
    else {
        anyhow::bail!("the store could not be reached");
    };
    let folds = {
        let mut names: Vec<&str> = rows.iter().map(|r| r.fold.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    };
    println!(
        "Training {} on {} ({} texts): {folds}-fold cross-validation on the file's own folds, then all of it.",
        plan.model.as_str(),
        data.display(),
        rows.len()
    );
    let bar = Arc::new(ProgressBar::new(folds as u64 + 1));
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}  ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message("cross-validating");
    let trained = {
        let bar = bar.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let params = Params::default();
            let report = forgecast_models::cross_validate(
                &rows,
                &Folds::Named,
                &params,
                &mut |fold: &FoldReport| {
                    bar.println(format!(
                        "  {:<16} macro-F1 {:.3}  ({:.1} s)",
                        fold.name, fold.macro_f1, fold.seconds
                    ));
                    bar.inc(1);
                },
            );
            bar.set_message("training on every text");
            let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
            let labels: Vec<&str> = rows.iter().map(|r| r.label).collect();
            let groups: Vec<&str> = rows.iter().map(|r| r.fold.as_str()).collect();
            let (model, summary) =
                SentimentModel::train_grouped(&texts, &labels, Some(&groups), &params)?;
            bar.inc(1);
            Ok((report, model, summary, params, rows.len()))
        })
        .await??
    };
    bar.finish_and_clear();
    let (report, model, summary, params, texts) = trained;
    print_report(&report);

    let artifact = model.to_bytes();
    let size = artifact.len();
    let sha256 = format!("{:x}", Sha256::digest(&artifact));
    let (f1, f1_sd) = report.macro_f1();
    let metrics: BTreeMap<String, f64> = [
        ("macro_f1", f1),
        ("macro_f1_sd", f1_sd),
        ("accuracy", report.pooled.accuracy()),
        ("baseline_unigram_macro_f1", report.unigram_f1().0),
        ("baseline_majority_macro_f1", report.majority_f1().0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let version = NewVersion {
        name: plan.model.as_str().into(),
        created: now_unix(),
        training: format!(
            "{} ({texts} texts); figures: {}-fold cross-validation on its own folds, macro-F1",
            data.display(),
            report.folds.len()
        ),
        params: chosen(&params, &summary),
        metrics,
        sha256: sha256.clone(),
        size: size as u64,
    };
    let number = store.register(version, artifact).await?;
    let alias = if plan.promote {
        Alias::Champion
    } else {
        Alias::Challenger
    };
    store.set_alias(plan.model.as_str(), number, alias).await?;
    println!(
        "Registered {} version {number} as {} (macro-F1 {f1:.3} ± {f1_sd:.3}, artifact {} bytes, sha256 {}).",
        plan.model.as_str(),
        alias.as_str(),
        size,
        &sha256[..12]
    );
    Ok(number)
}

/// What the version was trained with: the learner and the settings the inner cross-validation kept.
fn chosen(params: &Params, summary: &TrainingSummary) -> serde_json::Value {
    serde_json::json!({
        "learner": "one-vs-rest linear SVM (dual coordinate descent, squared hinge), softmax over margins",
        "features": params.feature_sets.get(summary.feature_set),
        "c": summary.c,
        "softmax_scale": summary.softmax_scale,
        "vocabulary": summary.features,
        "candidates": { "feature_sets": params.feature_sets.len(), "c_grid": params.c_grid, "inner_folds": params.inner_folds },
    })
}

/// The per-fold table, the means with their spread, and the baselines of the same run.
fn print_report(report: &CvReport) {
    println!(
        "{:<16} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "fold", "train", "test", "macro-F1", "accuracy", "unigram", "majority"
    );
    for fold in &report.folds {
        println!(
            "{:<16} {:>6} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            fold.name,
            fold.train,
            fold.test,
            fold.macro_f1,
            fold.accuracy,
            fold.unigram_f1,
            fold.majority_f1
        );
    }
    let (f1, sd) = report.macro_f1();
    let (uni, uni_sd) = report.unigram_f1();
    let (maj, maj_sd) = report.majority_f1();
    println!("macro-F1 {f1:.3} ± {sd:.3} (mean ± sd over folds)");
    println!(
        "baseline: word-unigram tf-idf + the same SVM {uni:.3} ± {uni_sd:.3}; majority class {maj:.3} ± {maj_sd:.3}"
    );
    println!(
        "pooled confusion (rows: truth, columns: predicted; {}):",
        report.labels.join(", ")
    );
    for (label, row) in report.labels.iter().zip(report.pooled.counts()) {
        println!(
            "  {label:<9} {}",
            row.iter().map(|n| format!("{n:>6}")).collect::<String>()
        );
    }
}
