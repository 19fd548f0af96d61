//! Cross-validates the sentiment model on a labelled CSV file and prints the per-fold table, mean ± sd and
//! baselines; optionally trains on the whole file, scores other files, measures prediction time and size, and
//! saves the model.
//!
//! ```text
//! cargo run --release -p forgecast-models --example sentiment_cv -- data/se-sentiment/github.csv \
//!     [--cross data/se-sentiment/so.csv]... [--folds K] [--features all|full|words|unigrams] [--c C]
//!     [--inner-folds K] [--no-negation] [--chars LO-HI|none] [--save model.bin]
//! ```
//!
//! `--folds K` draws K stratified folds instead of the file's own; `--features` keeps one candidate feature set
//! (default: all three, chosen by the inner cross-validation); `--c` fixes `C`; `--inner-folds 0` turns the inner
//! cross-validation off (first feature set, `C` 0.5 unless `--c`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use forgecast_models::dataset::{Folds, read_rows};
use forgecast_models::metrics::Confusion;
use forgecast_models::sentiment::{self, CvReport, FoldReport, SentimentModel};
use forgecast_models::{Params, cross_validate};

struct Args {
    data: PathBuf,
    cross: Vec<PathBuf>,
    folds: Folds,
    params: Params,
    save: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        data: PathBuf::from("data/se-sentiment/github.csv"),
        cross: Vec::new(),
        folds: Folds::Named,
        params: Params::default(),
        save: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--cross" => args.cross.push(PathBuf::from(value()?)),
            "--folds" => {
                args.folds = Folds::Stratified {
                    k: value()?.parse()?,
                    seed: 1,
                }
            }
            "--features" => {
                let v = value()?;
                let keep = match v.as_str() {
                    "all" => None,
                    "full" => Some(0),
                    "words" => Some(1),
                    "unigrams" => Some(2),
                    _ => bail!("--features takes all, full, words or unigrams, not {v}"),
                };
                if let Some(keep) = keep {
                    args.params.feature_sets = vec![args.params.feature_sets[keep].clone()];
                }
            }
            "--c" => {
                args.params.svm.c = value()?.parse()?;
                args.params.c_grid = vec![args.params.svm.c];
            }
            "--inner-folds" => args.params.inner_folds = value()?.parse()?,
            "--no-negation" => args
                .params
                .feature_sets
                .iter_mut()
                .for_each(|f| f.negation = false),
            "--chars" => {
                let v = value()?;
                let chars = match v.split_once('-') {
                    _ if v == "none" => None,
                    Some((lo, hi)) => Some((lo.parse()?, hi.parse()?)),
                    None => bail!("--chars takes LO-HI or none, not {v}"),
                };
                for set in args
                    .params
                    .feature_sets
                    .iter_mut()
                    .filter(|f| f.char_ngrams.is_some())
                {
                    set.char_ngrams = chars;
                }
            }
            "--save" => args.save = Some(PathBuf::from(value()?)),
            other if other.starts_with("--") => bail!("unknown option {other}"),
            path => args.data = PathBuf::from(path),
        }
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let started = Instant::now();
    let rows = read_rows(&args.data)?;
    let fold_count = match &args.folds {
        Folds::Named => rows
            .iter()
            .map(|r| r.fold.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        Folds::Stratified { k, .. } => *k,
    };
    println!(
        "{}: {} rows, {} folds ({:?})",
        args.data.display(),
        rows.len(),
        fold_count,
        args.folds
    );
    for (at, set) in args.params.feature_sets.iter().enumerate() {
        println!("feature set {at}: {set:?}");
    }
    println!(
        "C from {:?}; {} inner folds, groups kept whole: {}; {:?}",
        args.params.c_grid,
        args.params.inner_folds,
        matches!(args.folds, Folds::Named),
        args.params.svm
    );
    let mut progress = |f: &FoldReport| {
        println!(
            "fold {:<16} macro-F1 {:.4}  feature set {}  C {:<5}  {:.1}s  (elapsed {:.0}s)",
            f.name,
            f.macro_f1,
            f.summary.feature_set,
            f.summary.c,
            f.seconds,
            started.elapsed().as_secs_f64()
        )
    };
    let report = cross_validate(&rows, &args.folds, &args.params, &mut progress);
    print_report(&report);
    println!(
        "cross-validation took {:.1}s",
        started.elapsed().as_secs_f64()
    );

    if args.cross.is_empty() && args.save.is_none() {
        return Ok(());
    }
    let train_started = Instant::now();
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let labels: Vec<&str> = rows.iter().map(|r| r.label).collect();
    let groups: Vec<&str> = rows.iter().map(|r| r.fold.as_str()).collect();
    let grouped = matches!(args.folds, Folds::Named).then_some(groups.as_slice());
    let (model, summary) = SentimentModel::train_grouped(&texts, &labels, grouped, &args.params)?;
    println!();
    println!(
        "trained on all {} rows in {:.1}s: feature set {}, C {}, softmax scale {:.3}, {} features",
        rows.len(),
        train_started.elapsed().as_secs_f64(),
        summary.feature_set,
        summary.c,
        summary.softmax_scale,
        summary.features
    );
    for path in &args.cross {
        let other = read_rows(path)?;
        let confusion = sentiment::evaluate(&model, &other);
        println!();
        println!(
            "cross-dataset {}: macro-F1 {:.4}, accuracy {:.4}",
            path.display(),
            confusion.macro_f1(),
            confusion.accuracy()
        );
        print_confusion("", model.labels(), &confusion);
    }
    measure(&model, &texts);
    if let Some(path) = &args.save {
        std::fs::write(path, model.to_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("saved {}", path.display());
    }
    Ok(())
}

fn print_report(report: &CvReport) {
    println!();
    println!(
        "| fold | train | test | macro-F1 | accuracy | chosen set, C | inner macro-F1 (best C per set) | vocabulary \
         | unigram baseline | majority |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for f in &report.folds {
        let mut best: Vec<(usize, f64, f64)> = Vec::new();
        for &(set, c, score) in &f.summary.inner_scores {
            match best.iter_mut().find(|b| b.0 == set) {
                Some(b) if score > b.2 => *b = (set, c, score),
                Some(_) => {}
                None => best.push((set, c, score)),
            }
        }
        let inner: Vec<String> = best
            .iter()
            .map(|(set, c, s)| format!("{set}@{c} {s:.3}"))
            .collect();
        println!(
            "| {} | {} | {} | {:.4} | {:.4} | {}, {} | {} | {} | {:.4} | {:.4} |",
            f.name,
            f.train,
            f.test,
            f.macro_f1,
            f.accuracy,
            f.summary.feature_set,
            f.summary.c,
            inner.join(", "),
            f.summary.features,
            f.unigram_f1,
            f.majority_f1
        );
    }
    let (mean, sd) = report.macro_f1();
    let (uni_mean, uni_sd) = report.unigram_f1();
    let (maj_mean, maj_sd) = report.majority_f1();
    println!();
    println!(
        "macro-F1 {mean:.4} ± {sd:.4} (mean ± sd over {} folds)",
        report.folds.len()
    );
    println!("baseline word-unigram tf-idf + same SVM (C fixed): {uni_mean:.4} ± {uni_sd:.4}");
    println!("baseline majority class: {maj_mean:.4} ± {maj_sd:.4}");
    print_confusion("pooled", &report.labels, &report.pooled);
}

fn print_confusion(title: &str, labels: &[String], confusion: &Confusion) {
    println!();
    println!(
        "{title} confusion (rows truth, columns predicted: {})",
        labels.join(", ")
    );
    for (label, row) in labels.iter().zip(confusion.counts()) {
        println!("  {label:<9} {row:?}");
    }
    for (c, label) in labels.iter().enumerate() {
        let s = confusion.class_scores(c);
        println!(
            "  {label:<9} precision {:.4} recall {:.4} F1 {:.4} support {}",
            s.precision, s.recall, s.f1, s.support
        );
    }
}

/// Prediction time of one text at a time, and the model's size saved and in memory.
fn measure(model: &SentimentModel, texts: &[&str]) {
    let mut micros: Vec<f64> = Vec::with_capacity(texts.len());
    for text in texts {
        let started = Instant::now();
        std::hint::black_box(model.predict(std::hint::black_box(text)));
        micros.push(started.elapsed().as_secs_f64() * 1e6);
    }
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize];
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    let mean_chars = texts.iter().map(|t| t.chars().count()).sum::<usize>() / texts.len().max(1);
    println!();
    println!(
        "prediction of one text ({} texts, mean {} chars, one thread): mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs, \
         max {:.1} µs",
        texts.len(),
        mean_chars,
        mean,
        at(0.5),
        at(0.99),
        micros[micros.len() - 1]
    );
    println!(
        "model: {} bytes saved, about {} bytes in memory, {} features",
        model.to_bytes().len(),
        model.memory_bytes(),
        model.vectorizer().len()
    );
}
