//! The issue-outcome model replayed on ten years of Apache Jira bug reports (`data/apache-jira-bugfix`), scored
//! prequentially: will an issue be closed within 30 days of being opened?
//!
//! ```text
//! cargo run -p forgecast --example issue_outcome_prequential -- [--data DIR] [--scripts DIR]
//!     [--write-hours DIR]
//! ```
//!
//! The CSV files become GH Archive `IssuesEvent`s (opened, closed) in time order, and the shipped features script
//! (`scripts/features/issue_outcome.rhai`, checked with its cases first) turns each opened event into features,
//! as the pipeline would. Two protocols:
//!
//! - served, with label delay: at an opening the model predicts, and the prediction waits. Its label becomes known
//!   when the issue closes within 30 days (positive), or when the replay's clock passes the opening plus 30 days
//!   with the issue still open (negative); only then does the model learn it.
//! - immediate, as the project's reference script does: predict, then learn the true label at once, in opening
//!   order. This knows the future (a label 30 days early) and is reported only for comparison.
//!
//! Every prediction is scored against its label whichever protocol: AUC, log-loss and Brier over the whole replay,
//! after the first 200 issues (the reference's warm-up), after the issues used to choose the hyperparameters, per
//! year of opening and per project. Learners: the running positive rate, FTRL-Proximal (the served model), and a
//! batch logistic regression refitted every 200 labels on a window of recent ones. The hyperparameters are chosen
//! on the first [`SELECTION`] issues only, under the served protocol; the rest of the replay never informs them.
//! `--write-hours DIR` also writes the events as hour files for `forgecast backfill --source-dir DIR`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Datelike};
use forgecast_core::Event;
use forgecast_gharchive::jira;
use forgecast_models::online::{
    BatchParams, Challenger, Features, FtrlParams, Hasher, OnlineLogistic, Value,
};
use forgecast_models::prequential::{self, Pending, Scores, Windows};
use forgecast_models::sparse::SparseVec;
use forgecast_script::host::check_dir;
use forgecast_script::{EventView, FeatureValue, ScriptEngine};

/// The label: closed within this many seconds of opening.
const HORIZON: i64 = 30 * 86_400;
/// Issues (in opening order) the hyperparameters are chosen on.
const SELECTION: usize = 1000;
/// The reference script's warm-up: issues before it are not scored there.
const WARM_UP: usize = 200;
/// The batch challenger is refitted after this many new labels.
const REFIT_EVERY: usize = 200;
/// Hashed coordinates, 2^BITS, shared by every learner.
const BITS: u32 = 20;

/// One opened issue of the replay.
struct Opened {
    at: i64,
    year: i32,
    repo: String,
    /// Closed within [`HORIZON`].
    label: bool,
    x: SparseVec,
}

/// One event of the replay, in time order: an issue opening or closing.
struct Step {
    issue: usize,
    at: i64,
    opens: bool,
}

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut data = root.join("data/apache-jira-bugfix");
    let mut scripts = root.join("scripts");
    let mut hours_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a directory"))
        };
        match arg.as_str() {
            "--data" => data = PathBuf::from(value()?),
            "--scripts" => scripts = PathBuf::from(value()?),
            "--write-hours" => hours_dir = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument {other:?}"),
        }
    }

    let issues = jira::read_dir(&data)?;
    let events = jira::events(&issues);
    if let Some(dir) = &hours_dir {
        let files = jira::write_hours(&events, dir, true)?;
        println!("wrote {} hour files to {}", files.len(), dir.display());
    }
    let (opened, steps) = features_of(&events, &scripts)?;
    if opened.is_empty() {
        bail!("no opened issue in {}", data.display());
    }
    let positives = opened.iter().filter(|o| o.label).count();
    println!(
        "{} issues, {} events, {} opened issues scored; closed within 30 days: {positives} ({:.3})",
        issues.len(),
        events.len(),
        opened.len(),
        positives as f64 / opened.len() as f64
    );

    // Hyperparameters: chosen on the first SELECTION issues under the served protocol, nothing later.
    let early: Vec<usize> = (0..SELECTION.min(opened.len())).collect();
    let early_steps: Vec<&Step> = steps.iter().filter(|s| s.issue < SELECTION).collect();
    let last_chosen_on = opened[early.len() - 1].at;
    println!(
        "\nchoice of hyperparameters by AUC, served protocol, on issues 1..{SELECTION} only (opened up to {}):",
        forgecast_core::time::format_timestamp(last_chosen_on)
    );
    let mut best_ftrl = (f64::NEG_INFINITY, FtrlParams::default());
    for alpha in [0.01, 0.03, 0.1, 0.3, 1.0, 3.0] {
        for (l1, l2) in [(0.0, 1.0), (1.0, 1.0)] {
            let params = FtrlParams {
                alpha,
                beta: 1.0,
                l1,
                l2,
                bits: BITS,
            };
            let p = delayed(
                &opened,
                &early_steps,
                &mut Ftrl(OnlineLogistic::new(params)),
            );
            let s = scores_of(&opened, &p, &early);
            let auc = s.auc.unwrap_or(f64::NAN);
            println!(
                "  FTRL alpha {alpha:<5} beta 1 l1 {l1} l2 {l2}: AUC {auc:.3}, log-loss {:.3}",
                s.log_loss
            );
            if auc > best_ftrl.0 {
                best_ftrl = (auc, params);
            }
        }
    }
    let mut best_batch = (f64::NEG_INFINITY, BatchParams::default(), usize::MAX);
    for c in [0.1, 0.3, 1.0] {
        for window in [1000, usize::MAX] {
            let params = BatchParams {
                c,
                bits: BITS,
                ..BatchParams::default()
            };
            let p = delayed(&opened, &early_steps, &mut Batch::new(params, window));
            let s = scores_of(&opened, &p, &early);
            let auc = s.auc.unwrap_or(f64::NAN);
            println!(
                "  batch C {c:<4} window {}: AUC {auc:.3}, log-loss {:.3}",
                window_name(window),
                s.log_loss
            );
            if auc > best_batch.0 {
                best_batch = (auc, params, window);
            }
        }
    }
    let (ftrl, (batch, window)) = (best_ftrl.1, (best_batch.1, best_batch.2));
    println!(
        "chosen: FTRL alpha {} l1 {} l2 {}; batch C {} window {}",
        ftrl.alpha,
        ftrl.l1,
        ftrl.l2,
        batch.c,
        window_name(window)
    );

    let all_steps: Vec<&Step> = steps.iter().collect();
    let runs: Vec<(&str, Vec<f64>)> = vec![
        (
            "running positive rate, delayed",
            delayed(&opened, &all_steps, &mut Prior::default()),
        ),
        (
            "FTRL, delayed (served)",
            delayed(&opened, &all_steps, &mut Ftrl(OnlineLogistic::new(ftrl))),
        ),
        (
            "batch logistic, delayed",
            delayed(&opened, &all_steps, &mut Batch::new(batch, window)),
        ),
        (
            "running positive rate, immediate",
            immediate(&opened, &mut Prior::default()),
        ),
        (
            "FTRL, immediate",
            immediate(&opened, &mut Ftrl(OnlineLogistic::new(ftrl))),
        ),
        (
            "batch logistic, immediate",
            immediate(&opened, &mut Batch::new(batch, window)),
        ),
        (
            "FTRL paper-style defaults, delayed",
            delayed(
                &opened,
                &all_steps,
                &mut Ftrl(OnlineLogistic::new(FtrlParams {
                    bits: BITS,
                    ..FtrlParams::default()
                })),
            ),
        ),
    ];

    let all: Vec<usize> = (0..opened.len()).collect();
    let after_warm_up: Vec<usize> = (WARM_UP.min(opened.len())..opened.len()).collect();
    let after_selection: Vec<usize> = (SELECTION.min(opened.len())..opened.len()).collect();
    println!(
        "\n{:<36} {:>26} {:>26} {:>26}",
        "prequential AUC / log-loss / Brier",
        format!("all {}", all.len()),
        format!("from {} ({})", WARM_UP + 1, after_warm_up.len()),
        format!("from {} ({})", SELECTION + 1, after_selection.len()),
    );
    for (name, p) in &runs {
        let cells: Vec<String> = [&all, &after_warm_up, &after_selection]
            .iter()
            .map(|part| {
                let s = scores_of(&opened, p, part);
                format!(
                    "{:.3} / {:.3} / {:.3}",
                    s.auc.unwrap_or(f64::NAN),
                    s.log_loss,
                    s.brier
                )
            })
            .collect();
        println!(
            "{name:<36} {:>26} {:>26} {:>26}",
            cells[0], cells[1], cells[2]
        );
    }

    let served = &runs[1].1;
    let prior = &runs[0].1;
    let batch_run = &runs[2].1;
    let immediate_ftrl = &runs[4].1;
    let mut by_year: [Windows<i32>; 4] = Default::default();
    let mut by_project: [Windows<String>; 4] = Default::default();
    for (i, o) in opened.iter().enumerate() {
        for (k, p) in [served, prior, batch_run, immediate_ftrl]
            .iter()
            .enumerate()
        {
            by_year[k].add(o.year, p[i], o.label);
            by_project[k].add(o.repo.clone(), p[i], o.label);
        }
    }
    println!(
        "\nper year of opening: the served FTRL (delayed); AUC of the running rate and the batch logistic (both \
         delayed) and of FTRL learning at once"
    );
    print_windows(&by_year);
    println!("\nper project: the same");
    print_windows(&by_project);
    Ok(())
}

fn window_name(window: usize) -> String {
    match window {
        usize::MAX => "all".to_string(),
        n => n.to_string(),
    }
}

fn print_windows<K: Ord + std::fmt::Display>(windows: &[Windows<K>; 4]) {
    let columns: Vec<Vec<(&K, Scores)>> = windows.iter().map(Windows::scores).collect();
    let auc = |s: &Scores| match s.auc {
        Some(a) => format!("{a:.3}"),
        None => "  -  ".to_string(),
    };
    println!(
        "  {:<18} {:>5} {:>6}   served: {:>5} {:>8} {:>6}   AUC of: {:>5} {:>5} {:>5}",
        "", "n", "rate", "AUC", "log-loss", "Brier", "rate", "batch", "immed"
    );
    for (row, (key, served)) in columns[0].iter().enumerate() {
        println!(
            "  {key:<18} {:>5} {:>6.3}           {:>5} {:>8.3} {:>6.3}           {:>5} {:>5} {:>5}",
            served.count,
            served.positive_rate,
            auc(served),
            served.log_loss,
            served.brier,
            auc(&columns[1][row].1),
            auc(&columns[2][row].1),
            auc(&columns[3][row].1)
        );
    }
}

/// Converts the events, runs the features script on each opened one, and lists the replay's steps.
fn features_of(
    events: &[jira::JiraEvent],
    scripts: &Path,
) -> anyhow::Result<(Vec<Opened>, Vec<Step>)> {
    let engine = ScriptEngine::default();
    let (loaded, problems) = check_dir(&engine, scripts);
    if !problems.is_empty() {
        bail!(
            "the scripts do not check:\n{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let script = loaded
        .iter()
        .find(|s| s.id() == "features/issue_outcome")
        .context("no features/issue_outcome script")?;
    let hasher = Hasher::new(BITS);
    // Each issue's closing time, for the label of its opening.
    let mut closed_at: HashMap<&str, i64> = HashMap::new();
    for e in events.iter().filter(|e| e.action == "closed") {
        closed_at.insert(e.id.trim_end_matches("-closed"), e.created_at);
    }
    let mut opened = Vec::new();
    let mut at_of: HashMap<&str, usize> = HashMap::new();
    let mut steps = Vec::with_capacity(events.len());
    for e in events {
        let key = e.id.trim_end_matches("-opened").trim_end_matches("-closed");
        if e.action == "closed" {
            if let Some(i) = at_of.get(key) {
                steps.push(Step {
                    issue: *i,
                    at: e.created_at,
                    opens: false,
                });
            }
            continue;
        }
        let event = Event::parse(&e.line).with_context(|| format!("event {}", e.id))?;
        let repo = event.repo.clone();
        let Some(features) = script
            .event_features(&engine, EventView::new(Arc::new(event)))
            .map_err(|e| anyhow::anyhow!("{}: {}", e.script, e.message))?
        else {
            continue;
        };
        let features: Features = features
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    FeatureValue::Number(n) => Value::Number(n),
                    FeatureValue::Text(t) => Value::Text(t),
                    FeatureValue::Bool(b) => Value::Bool(b),
                };
                (name, value)
            })
            .collect();
        let label = closed_at
            .get(key)
            .is_some_and(|c| c - e.created_at <= HORIZON);
        at_of.insert(key, opened.len());
        steps.push(Step {
            issue: opened.len(),
            at: e.created_at,
            opens: true,
        });
        opened.push(Opened {
            at: e.created_at,
            year: DateTime::from_timestamp(e.created_at, 0)
                .unwrap_or_default()
                .year(),
            repo,
            label,
            x: hasher.vectorize(&features),
        });
    }
    Ok((opened, steps))
}

/// What the replay needs of a learner.
trait Learner {
    fn predict(&self, x: &SparseVec) -> f64;
    fn learn(&mut self, x: &SparseVec, label: bool);
}

/// The share of positive labels learnt so far (0.5 before any).
#[derive(Default)]
struct Prior {
    positives: u64,
    seen: u64,
}

impl Learner for Prior {
    fn predict(&self, _: &SparseVec) -> f64 {
        if self.seen == 0 {
            0.5
        } else {
            self.positives as f64 / self.seen as f64
        }
    }

    fn learn(&mut self, _: &SparseVec, label: bool) {
        self.seen += 1;
        self.positives += u64::from(label);
    }
}

struct Ftrl(OnlineLogistic);

impl Learner for Ftrl {
    fn predict(&self, x: &SparseVec) -> f64 {
        self.0.predict_vector(x)
    }

    fn learn(&mut self, x: &SparseVec, label: bool) {
        self.0.learn_vector(x, label);
    }
}

struct Batch(Challenger);

impl Batch {
    fn new(params: BatchParams, window: usize) -> Batch {
        Batch(Challenger::new(params, window, REFIT_EVERY))
    }
}

impl Learner for Batch {
    fn predict(&self, x: &SparseVec) -> f64 {
        self.0.predict_vector(x)
    }

    fn learn(&mut self, x: &SparseVec, label: bool) {
        self.0.learn_vector(x.clone(), label);
    }
}

/// The served protocol: predict at each opening; learn a label once the replay's clock reveals it. Returns the
/// prediction made at each opening (NaN for issues not in `steps`).
fn delayed(opened: &[Opened], steps: &[&Step], learner: &mut dyn Learner) -> Vec<f64> {
    let mut predictions = vec![f64::NAN; opened.len()];
    let mut pending: Pending<usize, ()> = Pending::new(HORIZON);
    for step in steps {
        // Issues still open 30 days after opening are negatives from now on.
        for resolved in pending.advance(step.at) {
            learner.learn(&opened[resolved.key].x, resolved.label);
        }
        let i = step.issue;
        if step.opens {
            predictions[i] = learner.predict(&opened[i].x);
            pending.open(i, step.at, predictions[i], ());
        } else if let Some(resolved) = pending.close(&i, step.at) {
            learner.learn(&opened[i].x, resolved.label);
        }
    }
    predictions
}

/// The reference protocol: in opening order, predict, then learn the true label at once.
fn immediate(opened: &[Opened], learner: &mut dyn Learner) -> Vec<f64> {
    opened
        .iter()
        .map(|o| {
            let p = learner.predict(&o.x);
            learner.learn(&o.x, o.label);
            p
        })
        .collect()
}

fn scores_of(opened: &[Opened], predictions: &[f64], part: &[usize]) -> Scores {
    let pairs: Vec<(f64, bool)> = part
        .iter()
        .filter(|i| predictions[**i].is_finite())
        .map(|i| (predictions[*i], opened[*i].label))
        .collect();
    prequential::scores(&pairs)
}
