//! `forgecast train MODEL`: cross-validation on the data's own folds (with two baselines in the same run), then
//! a model trained on all of it, registered as a new version with its figures, and promoted if asked; and the
//! default model a first start trains ([`first_start`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use forgecast_core::registry::{Alias, NewVersion, Registry};
use forgecast_core::time::now_unix;
use forgecast_models::dataset::{BUNDLED_GITHUB_NAME, Folds, bundled_rows, read_rows};
use forgecast_models::sentiment::{CvReport, FoldReport, TrainingSummary};
use forgecast_models::{Params, SentimentModel};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::backends::{Access, AnyStore, open_store};
use crate::config::ModelPlan;
use crate::pipeline::score::SENTIMENT;

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
    let training = format!(
        "{} ({texts} texts); figures: {}-fold cross-validation on its own folds, macro-F1",
        data.display(),
        report.folds.len()
    );
    let alias = if plan.promote {
        Alias::Champion
    } else {
        Alias::Challenger
    };
    let registered = register(&store, &model, &params, &summary, training, metrics, alias).await?;
    println!(
        "Registered {} version {} as {} (macro-F1 {f1:.3} ± {f1_sd:.3}, artifact {} bytes, sha256 {}).",
        plan.model.as_str(),
        registered.version,
        alias.as_str(),
        registered.size,
        &registered.sha256[..12]
    );
    Ok(registered.version)
}

/// A version as registered.
struct Registered {
    version: u32,
    size: usize,
    sha256: String,
}

/// Registers `model` as the next version of the sentiment model, with `alias`.
async fn register(
    store: &AnyStore,
    model: &SentimentModel,
    params: &Params,
    summary: &TrainingSummary,
    training: String,
    metrics: BTreeMap<String, f64>,
    alias: Alias,
) -> anyhow::Result<Registered> {
    let artifact = model.to_bytes();
    let size = artifact.len();
    let sha256 = format!("{:x}", Sha256::digest(&artifact));
    let version = NewVersion {
        name: SENTIMENT.into(),
        created: now_unix(),
        training,
        params: chosen(params, summary),
        metrics,
        sha256: sha256.clone(),
        size: size as u64,
    };
    let number = store.register(version, artifact).await?;
    store.set_alias(SENTIMENT, number, alias).await?;
    Ok(Registered {
        version: number,
        size,
        sha256,
    })
}

/// On a store whose sentiment model has no version yet, trains one on the bundled data with
/// [`Params::first_start`] (seconds) and makes it the champion. Later starts find it and do nothing; a store
/// with versions but no champion (every one rolled back) is left as its operator left it.
pub async fn first_start(store: &AnyStore) -> anyhow::Result<()> {
    crate::champions::once_per_store(
        store,
        "train/sentiment",
        || async { Ok(!store.versions(SENTIMENT).await?.is_empty()) },
        || train_first(store),
    )
    .await
}

async fn train_first(store: &AnyStore) -> anyhow::Result<()> {
    if !store.versions(SENTIMENT).await?.is_empty() {
        return Ok(());
    }
    tracing::info!(
        component = "models",
        model = SENTIMENT,
        "No sentiment model yet: training the default on the bundled data."
    );
    let started = std::time::Instant::now();
    let (model, summary, params, texts) = tokio::task::spawn_blocking(|| -> anyhow::Result<_> {
        let rows = bundled_rows()?;
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        let labels: Vec<&str> = rows.iter().map(|r| r.label).collect();
        let groups: Vec<&str> = rows.iter().map(|r| r.fold.as_str()).collect();
        let params = Params::first_start();
        let (model, summary) =
            SentimentModel::train_grouped(&texts, &labels, Some(&groups), &params)?;
        Ok((model, summary, params, rows.len()))
    })
    .await??;
    let best_inner = summary
        .inner_scores
        .iter()
        .map(|s| s.2)
        .fold(f64::NAN, f64::max);
    let metrics = [("inner_cv_macro_f1".to_string(), best_inner)]
        .into_iter()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let training = format!(
        "{BUNDLED_GITHUB_NAME} ({texts} texts), trained at first start: word unigrams, C by a {}-fold inner \
         cross-validation of whole folds; `forgecast train sentiment` measures the 10-fold figures",
        params.inner_folds
    );
    let registered = register(
        store,
        &model,
        &params,
        &summary,
        training,
        metrics,
        Alias::Champion,
    )
    .await?;
    tracing::info!(
        component = "models",
        model = SENTIMENT,
        version = registered.version,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        inner_cv_macro_f1 = format!("{best_inner:.3}"),
        "Default sentiment model trained and promoted."
    );
    Ok(())
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
