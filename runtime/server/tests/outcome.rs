//! The streaming issue-outcome model on ten years of real Apache Jira history (bundled, converted to GitHub
//! events), through the pipeline as live events go: every opened issue predicted once, every label resolved
//! once (closed within 30 days, or event time past it), learnt once, evaluated prequentially; and a restart in
//! the middle of the history changes nothing of what is learnt.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use forgecast::config::{BusPlan, PipelinePlan, SourcePlan, StoragePlan, StorePlan};
use forgecast::pipeline::Pipeline;
use forgecast::pipeline::outcome::{HORIZON, OUTCOME, WINDOW, learner_key};
use forgecast_core::Event;
use forgecast_core::outcomes::{OutcomeStore, Trigger};
use forgecast_core::registry::{Registry, champion};
use forgecast_core::source::Incoming;
use forgecast_gharchive::jira;
use forgecast_script::Limits;
use forgecast_script::watch::WatchConfig;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plan(data: &Path) -> PipelinePlan {
    plan_with(data, &repo().join("scripts"))
}

fn plan_with(data: &Path, scripts: &Path) -> PipelinePlan {
    PipelinePlan {
        scripts: scripts.to_path_buf(),
        source: SourcePlan::Feed,
        limits: Limits::default(),
        watch: WatchConfig::default(),
        enrich_share: 0.0,
        bus: BusPlan::Embedded,
        storage: StoragePlan {
            data_dir: data.to_path_buf(),
            store: StorePlan::Embedded,
        },
        bounds: Default::default(),
        models: true,
    }
}

/// Feeds `events` through a pipeline on `data` and drains it.
async fn feed(data: &Path, events: &[Arc<Event>]) -> forgecast::pipeline::Summary {
    feed_with(&plan(data), events).await
}

async fn feed_with(plan: &PipelinePlan, events: &[Arc<Event>]) -> forgecast::pipeline::Summary {
    let mut pipeline = Pipeline::start(plan).await.expect("pipeline starts");
    let input = pipeline.take_feed().unwrap();
    for chunk in events.chunks(500) {
        input
            .send(chunk.iter().map(|e| Incoming::Event(e.clone())).collect())
            .await
            .unwrap();
    }
    drop(input);
    tokio::time::timeout(Duration::from_secs(300), pipeline.drain())
        .await
        .expect("drains")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jira_history_is_predicted_resolved_learnt_and_evaluated_once() {
    let issues = jira::read_dir(&repo().join("data/apache-jira-bugfix")).unwrap();
    let events: Vec<Arc<Event>> = jira::events(&issues)
        .iter()
        .map(|e| Arc::new(Event::parse(&e.line).unwrap()))
        .collect();
    let created: Vec<&jira::JiraIssue> = issues.iter().filter(|i| i.created.is_some()).collect();
    let last_event = events.iter().map(|e| e.created_at).max().unwrap();
    // What must be known at the end, computed from the files: positives closed within 30 days; negatives
    // past their horizon by the last event's time without such a close; the rest still waiting.
    let positives = created
        .iter()
        .filter(|i| {
            i.resolved
                .is_some_and(|r| r.max(i.created.unwrap()) <= i.created.unwrap() + HORIZON)
        })
        .count() as u64;
    let negatives = created
        .iter()
        .filter(|i| {
            let c = i.created.unwrap();
            i.resolved.is_none_or(|r| r.max(c) > c + HORIZON) && c + HORIZON < last_event
        })
        .count() as u64;

    let whole = tempfile::tempdir().unwrap();
    let summary = feed(whole.path(), &events).await;
    assert_eq!(
        summary.outcome.opened,
        created.len() as u64,
        "every opened issue predicted once"
    );
    assert_eq!(summary.outcome.learnt, positives + negatives);
    let store =
        forgecast_embedded::SqliteStore::open_alongside(&whole.path().join("forgecast.sqlite"))
            .unwrap();
    assert_eq!(
        store.pending_count(OUTCOME).await.unwrap(),
        created.len() as u64 - positives - negatives
    );
    let resolved = store
        .resolutions_after(OUTCOME, 0, usize::MAX >> 1)
        .await
        .unwrap();
    assert_eq!(
        resolved.iter().filter(|r| r.label).count() as u64,
        positives
    );
    assert!(
        resolved.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "numbered without gaps"
    );
    let evaluations = store.evaluations(OUTCOME).await.unwrap();
    assert_eq!(evaluations.len() as u64, resolved.len() as u64 / WINDOW);
    let pairs: Vec<(f64, bool)> = resolved
        .iter()
        .map(|r| (r.opened.probability, r.label))
        .collect();
    let overall = forgecast_models::prequential::scores(&pairs);
    let auc = overall.auc.unwrap();
    println!(
        "prequential over {} labels: AUC {auc:.3}, log-loss {:.3}, Brier {:.3}, positive rate {:.3}",
        pairs.len(),
        overall.log_loss,
        overall.brier,
        overall.positive_rate
    );
    assert!(auc >= 0.6, "prequential AUC {auc:.3}");
    // After each window, the retrain policy decided, with its context, and said why; and at each alarm of the
    // change detector inside a window.
    let decisions = store.decisions(OUTCOME).await.unwrap();
    assert_eq!(
        decisions
            .iter()
            .filter(|d| d.trigger == Trigger::Window)
            .map(|d| d.window)
            .collect::<Vec<_>>(),
        evaluations.iter().map(|e| e.first_seq).collect::<Vec<_>>()
    );
    for d in decisions.iter().filter(|d| d.trigger == Trigger::Alarm) {
        assert!(d.context["alarms"].as_u64().unwrap() > 0, "{d:?}");
        assert_eq!(d.context["trigger"], "alarm");
        assert_eq!(
            d.context["window_labels"].as_u64().unwrap(),
            (d.window - 1) % WINDOW + 1
        );
    }
    for d in &decisions {
        assert!(!d.script.is_empty() && !d.reason.is_empty(), "{d:?}");
        for key in [
            "age_days",
            "new_labels",
            "live_error",
            "baseline_error",
            "drift_psi",
            "alarms",
        ] {
            assert!(d.context[key].is_number(), "{key} in {}", d.context);
        }
    }
    for d in &decisions {
        let outcome = d.retrain_result.as_ref().map_or("-".to_string(), |r| {
            format!(
                "v{:?} promoted {} ({:.3} vs {:.3}; {:.3} vs {:.3})",
                r.challenger,
                r.promoted,
                r.challenger_score,
                r.champion_score,
                r.challenger_log_loss,
                r.champion_log_loss
            )
        });
        println!(
            "{} {:>5} v{} retrain {:<5} {} | {}",
            d.trigger.as_str(),
            d.window,
            d.version,
            d.retrain,
            d.reason,
            outcome
        );
    }
    // Each window's drift is kept: every watched feature and the predictions against the version's first window.
    let drift = store.drift(OUTCOME).await.unwrap();
    assert_eq!(
        drift.iter().map(|d| d.window).collect::<Vec<_>>(),
        evaluations.iter().map(|e| e.first_seq).collect::<Vec<_>>()
    );
    for d in &drift {
        let mut names: Vec<&str> = d.features.iter().map(|f| f.feature.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "author_association",
                "body_chars",
                "labels",
                "repo",
                "title_words"
            ]
        );
        assert!(d.features.windows(2).all(|w| w[0].psi >= w[1].psi));
        assert!(
            d.features
                .iter()
                .all(|f| (f.kind == "numeric") == f.ks.is_some())
        );
        assert!(d.prediction.ks.is_some());
        let largest = d.features[0].psi;
        let decided = decisions
            .iter()
            .find(|x| x.window == d.window && x.trigger == Trigger::Window)
            .unwrap();
        assert_eq!(decided.context["drift_psi"].as_f64().unwrap(), largest);
    }
    assert!(drift[0].features.iter().all(|f| f.psi == 0.0));
    // The first window is its own reference: no drift; later ones drift as the projects change.
    assert_eq!(decisions[0].context["drift_psi"], 0.0);
    assert!(
        decisions
            .iter()
            .any(|d| d.reason.starts_with("feature drift")),
        "{decisions:?}"
    );
    let serving = champion(&store.versions(OUTCOME).await.unwrap())
        .unwrap()
        .version;
    let (state, through) = store.learner(&learner_key(serving)).await.unwrap().unwrap();
    assert_eq!(through, resolved.len() as u64);
    drop(store);

    // The same history with a restart in the middle, and the second half delivered with the first again
    // (a redelivery): the same labels, learnt in the same order, give the same learner, byte for byte.
    let split = tempfile::tempdir().unwrap();
    let half = events.len() / 2;
    feed(split.path(), &events[..half]).await;
    let again = feed(split.path(), &events).await;
    assert_eq!(
        again.outcome.opened,
        created.len() as u64 - count_opened(&events[..half])
    );
    let store =
        forgecast_embedded::SqliteStore::open_alongside(&split.path().join("forgecast.sqlite"))
            .unwrap();
    // (Retrains are decided on the prequential figures, which may differ a little, so the champion's number may
    // too; its learner may not.)
    let split_serving = champion(&store.versions(OUTCOME).await.unwrap())
        .unwrap()
        .version;
    assert_eq!(
        store.learner(&learner_key(split_serving)).await.unwrap(),
        Some((state, through))
    );
    // The windows hold the same labels; the probabilities in them may differ a little, since where a batch
    // is cut decides which labels an opening's prediction had learnt.
    let windows = |list: &[forgecast_core::outcomes::Evaluation]| -> Vec<(u64, u64, u64, String)> {
        list.iter()
            .map(|e| {
                (
                    e.first_seq,
                    e.last_seq,
                    e.count,
                    format!("{:.4}", e.positive_rate),
                )
            })
            .collect()
    };
    assert_eq!(
        windows(&store.evaluations(OUTCOME).await.unwrap()),
        windows(&evaluations)
    );
}

fn count_opened(events: &[Arc<Event>]) -> u64 {
    events
        .iter()
        .filter(|e| e.raw.contains("\"action\":\"opened\""))
        .count() as u64
}

#[test]
fn a_converted_year_of_jira_history_is_backfilled_into_predictions_and_evaluations() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let hours = dir.path().join("hours");
    let run = |args: &[&str]| {
        support::stdout_of(
            Command::new(env!("CARGO_BIN_EXE_forgecast"))
                .args(args)
                .current_dir(repo()),
        )
    };
    let out = run(&[
        "convert",
        "jira",
        "--input",
        repo().join("data/apache-jira-bugfix").to_str().unwrap(),
        "--output",
        hours.to_str().unwrap(),
    ]);
    assert!(
        out.starts_with("4575 issues: 4575 opened and 4575 closed events"),
        "{out}"
    );
    assert!(
        out.contains("--sparse --from 2009-01-08T08 --to 2018-12-31T18"),
        "{out}"
    );

    let data = dir.path().join("data");
    let out = run(&[
        "backfill",
        "--source-dir",
        hours.to_str().unwrap(),
        "--sparse",
        "--from",
        "2016-01-01T00",
        "--to",
        "2016-12-31T23",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    // The events of 2016, counted from the converter's own output.
    let issues = jira::read_dir(&repo().join("data/apache-jira-bugfix")).unwrap();
    let (start, end) = (1_451_606_400, 1_483_228_800);
    let in_2016: Vec<jira::JiraEvent> = jira::events(&issues)
        .into_iter()
        .filter(|e| (start..end).contains(&e.created_at))
        .collect();
    assert!(
        out.contains(&format!(
            "{} events decoded, {} new in the store",
            in_2016.len(),
            in_2016.len()
        )),
        "{out}"
    );
    assert!(
        out.contains("0 missing") && out.contains("without a file (--sparse)"),
        "{out}"
    );
    let opened = in_2016.iter().filter(|e| e.action == "opened").count() as u64;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = forgecast_embedded::SqliteStore::open_alongside(&data.join("forgecast.sqlite"))
            .unwrap();
        let resolved = store
            .resolutions_after(OUTCOME, 0, usize::MAX >> 1)
            .await
            .unwrap();
        let pending = store.pending_count(OUTCOME).await.unwrap();
        assert_eq!(
            resolved.len() as u64 + pending,
            opened,
            "each opened issue predicted once"
        );
        assert_eq!(
            store.evaluations(OUTCOME).await.unwrap().len() as u64,
            resolved.len() as u64 / WINDOW
        );
        assert!(resolved.len() as u64 >= WINDOW, "{} labels", resolved.len());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_failing_on_some_windows_never_stops_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("scripts");
    copy_dir(&repo().join("scripts"), &scripts);
    // Passes its cases (few labels), throws once more than 1,000 labels are learnt.
    std::fs::write(
        scripts.join("policies/retrain.rhai"),
        "fn should_retrain(ctx) {\n    if ctx.new_labels > 1000 { throw \"labels overflow\"; }\n    #{ retrain: false, reason: \"fine\" }\n}\n",
    )
    .unwrap();
    std::fs::write(
        scripts.join("policies/retrain.cases.jsonl"),
        r#"{"name":"few labels","input":{"model":"issue_outcome","age_days":1,"new_labels":20,"live_error":0.2,"baseline_error":0.2,"drift_psi":0.1,"alarms":0},"expect":{"retrain":false,"reason":"fine"}}"#,
    )
    .unwrap();
    let issues = jira::read_dir(&repo().join("data/apache-jira-bugfix")).unwrap();
    let events: Vec<Arc<Event>> = jira::events(&issues)
        .iter()
        .map(|e| Arc::new(Event::parse(&e.line).unwrap()))
        .collect();
    let data = dir.path().join("data");
    let summary = feed_with(&plan_with(&data, &scripts), &events).await;
    assert_eq!(summary.outcome.opened, issues.len() as u64);
    let store =
        forgecast_embedded::SqliteStore::open_alongside(&data.join("forgecast.sqlite")).unwrap();
    let decisions = store.decisions(OUTCOME).await.unwrap();
    assert_eq!(
        decisions
            .iter()
            .filter(|d| d.trigger == Trigger::Window)
            .count() as u64,
        summary.outcome.evaluations
    );
    for d in &decisions {
        if d.window > 1000 {
            assert!(!d.retrain && d.reason.contains("labels overflow"), "{d:?}");
        } else {
            assert_eq!(d.reason, "fine");
        }
    }
    assert!(decisions.iter().any(|d| d.window > 1000));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A synthetic issue history whose concept changes at a known point. One issue is opened every 6 hours in one
/// repository, with one of 30 components (a label) and a title of words that say nothing. Before issue
/// [`CHANGE`], issues of the even components are closed 2 days after opening 85 % of the time (else 60 days
/// after, past the 30-day horizon) and those of the odd ones 15 %; from it on, the other way round. Deterministic
/// (SplitMix64 from a fixed seed).
fn changing_history(issues: u64) -> Vec<jira::JiraIssue> {
    let mut state: u64 = 2026;
    let mut next = move || {
        state = state.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
    };
    let words = [
        "crash", "error", "update", "build", "docs", "test", "fails", "when", "using", "with",
    ];
    let start = 1_262_304_000; // 2010-01-01
    (0..issues)
        .map(|n| {
            let component = (next() * 30.0) as u64;
            let fast = component.is_multiple_of(2) ^ (n >= CHANGE);
            let soon = next() < if fast { 0.85 } else { 0.15 };
            let created = start + n as i64 * 6 * 3600;
            let title = (0..4)
                .map(|_| (words[(next() * 10.0) as usize].to_string(), 1))
                .collect();
            jira::JiraIssue {
                project: "SYNTH".into(),
                key: format!("SYNTH-{n}"),
                number: n + 1,
                priority: "Major".into(),
                reporter: format!("user{}", (next() * 50.0) as u64),
                assignee: String::new(),
                components: vec![format!("c{component}")],
                summary: title,
                description: Vec::new(),
                created: Some(created),
                resolved: Some(created + if soon { 2 } else { 60 } * 86_400),
                comments: 0,
            }
        })
        .collect()
}

/// The opening at which [`changing_history`]'s concept flips.
const CHANGE: u64 = 4000;

/// The loop end to end on a known change: the change detector fires soon after it, the policy asks for a
/// retrain, the challenger (learnt on the labels of the new concept) beats the champion on the next window and
/// is promoted, every process's learner serves it, and the prequential AUC is back within one window; before the
/// change nothing is promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concept_change_is_detected_retrained_promoted_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path());
    concept_change(&plan, &dir.path().join("forgecast.sqlite"), "online").await;
}

/// The same with a policy that asks for the batch challenger: a logistic regression fitted at once on the labels
/// before the window, then served and taught online like any champion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_challenger_asked_for_by_the_policy_takes_over_after_a_concept_change() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("scripts");
    copy_dir(&repo().join("scripts"), &scripts);
    let shipped = std::fs::read_to_string(scripts.join("policies/retrain.rhai")).unwrap();
    let batch = shipped.replace(
        "return #{ retrain: true, reason:",
        "return #{ retrain: true, challenger: \"batch\", reason:",
    );
    assert_ne!(batch, shipped);
    std::fs::write(scripts.join("policies/retrain.rhai"), batch).unwrap();
    // Its cases expect the shipped answers, which no longer name the challenger.
    std::fs::remove_file(scripts.join("policies/retrain.cases.jsonl")).unwrap();
    let data = dir.path().join("data");
    concept_change(
        &plan_with(&data, &scripts),
        &data.join("forgecast.sqlite"),
        "batch",
    )
    .await;
}

/// Feeds the synthetic history whose concept changes at issue [`CHANGE`] and checks what the loop did: the
/// detector fired soon after the change, the policy was called at the alarm, a challenger of `kind` was promoted
/// and the prequential AUC recovered.
async fn concept_change(plan: &PipelinePlan, sqlite: &Path, kind: &str) {
    let issues = changing_history(5600);
    let events: Vec<Arc<Event>> = jira::events(&issues)
        .iter()
        .map(|e| Arc::new(Event::parse(&e.line).unwrap()))
        .collect();
    feed_with(plan, &events).await;
    let store = forgecast_embedded::SqliteStore::open_alongside(sqlite).unwrap();
    let resolved = store
        .resolutions_after(OUTCOME, 0, usize::MAX >> 1)
        .await
        .unwrap();
    // The first label of an issue opened after the change (labels are numbered as they become known).
    let number = |r: &forgecast_core::outcomes::Resolution| -> u64 {
        r.opened.issue.rsplit('#').next().unwrap().parse().unwrap()
    };
    let changed_at = resolved
        .iter()
        .find(|r| number(r) > CHANGE)
        .map(|r| r.seq)
        .unwrap();
    let decisions = store.decisions(OUTCOME).await.unwrap();
    let evaluations = store.evaluations(OUTCOME).await.unwrap();
    for d in &decisions {
        println!(
            "{} {:>5} v{} alarms {} retrain {} {} | {:?}",
            d.trigger.as_str(),
            d.window,
            d.version,
            d.context["alarms"],
            d.retrain,
            d.reason,
            d.retrain_result.as_ref().map(|r| (
                r.challenger,
                r.promoted,
                r.challenger_score,
                r.champion_score
            ))
        );
    }
    let aucs: Vec<(u64, f64)> = evaluations
        .iter()
        .map(|e| (e.first_seq, e.auc.unwrap()))
        .collect();
    println!("change at label {changed_at}; AUC per window: {aucs:?}");

    // Nothing promoted before the change.
    let promoted: Vec<&forgecast_core::outcomes::Decision> = decisions
        .iter()
        .filter(|d| d.retrain_result.as_ref().is_some_and(|r| r.promoted))
        .collect();
    assert!(
        promoted.iter().all(|d| d.window > changed_at),
        "{promoted:?}"
    );
    // The detector fired within 400 labels of the change, the policy was asked at once and asked for a retrain.
    let alarmed = decisions
        .iter()
        .find(|d| d.trigger == Trigger::Alarm && d.window >= changed_at)
        .expect("an alarm after the change");
    assert!(
        alarmed.window <= changed_at + 400,
        "alarm at label {}",
        alarmed.window
    );
    assert!(
        alarmed.retrain
            && alarmed.reason.contains("change detector")
            && alarmed.context["trigger"] == "alarm",
        "{alarmed:?}"
    );
    assert!(alarmed.retrain_result.is_some(), "{alarmed:?}");
    // A challenger was promoted within three windows of the change, the learner serves it, and the window
    // after its promotion is back above 0.75 (it fell below 0.5 after the change).
    let first = promoted.first().expect("a promotion after the change");
    // The label the promotion came after: a window's last, or the alarm's.
    let promoted_at = match first.trigger {
        Trigger::Window => first.window + WINDOW - 1,
        Trigger::Alarm => first.window,
    };
    assert!(promoted_at <= changed_at + 3 * WINDOW, "{first:?}");
    let result = first.retrain_result.as_ref().unwrap();
    assert!(
        result.challenger_score > result.champion_score + 0.2,
        "{result:?}"
    );
    assert_eq!(result.candidate, kind);
    let promoted_version = store
        .versions(OUTCOME)
        .await
        .unwrap()
        .into_iter()
        .find(|v| Some(v.version) == result.challenger)
        .unwrap();
    assert_eq!(
        promoted_version.meta.params["challenger"]["kind"], kind,
        "{:?}",
        promoted_version.meta
    );
    let serving = champion(&store.versions(OUTCOME).await.unwrap())
        .unwrap()
        .version;
    assert!(
        promoted
            .iter()
            .any(|d| d.retrain_result.as_ref().unwrap().challenger == Some(serving)),
        "the champion is a promoted challenger (v{serving})"
    );
    let auc_at = |window: u64| aucs.iter().find(|(w, _)| *w == window).map(|(_, a)| *a);
    // The window the promotion came in, and the one after.
    let at = (promoted_at - 1) / WINDOW * WINDOW + 1;
    let next = at + WINDOW;
    assert!(
        aucs.iter()
            .filter(|(w, _)| *w > changed_at && *w + WINDOW <= next)
            .any(|(_, a)| *a < 0.5),
        "the change hurt: {aucs:?}"
    );
    // The window after the promotion still holds labels of issues the old champion predicted (labels come up
    // to 30 days after the opening); the new champion's own predictions in it are back, and the window after
    // that is back whole.
    let own: Vec<(f64, bool)> = resolved
        .iter()
        .filter(|r| {
            r.seq >= next && r.seq < next + WINDOW && Some(r.opened.version) == result.challenger
        })
        .map(|r| (r.opened.probability, r.label))
        .collect();
    let own_auc = forgecast_models::prequential::scores(&own).auc.unwrap();
    assert!(
        own.len() >= 50 && own_auc > 0.75,
        "{} predictions of the new champion in the window after its promotion, AUC {own_auc:.3}",
        own.len()
    );
    assert!(auc_at(next).unwrap() > auc_at(at).unwrap() + 0.2);
    let whole = auc_at(next + WINDOW).expect("a second window after the promotion");
    assert!(
        whole > 0.75,
        "AUC {whole:.3} in the second window after the promotion"
    );
    assert!(
        aucs.iter()
            .filter(|(w, _)| *w < changed_at.saturating_sub(WINDOW) && *w > WINDOW)
            .all(|(_, a)| *a > 0.75),
        "{aucs:?}"
    );
}

/// A version promoted by hand while the pipeline runs (`forgecast models promote`, here a challenger the rule
/// had rejected) is taken over without a restart: the learner starts from that version's artifact, learns the
/// labels after it again, and the issues opened afterwards are predicted by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_promoted_by_hand_is_served_without_a_restart() {
    use forgecast_core::outcomes::OutcomeStore;
    use forgecast_core::registry::Alias;
    let issues = changing_history(2400);
    let events: Vec<Arc<Event>> = jira::events(&issues)
        .iter()
        .map(|e| Arc::new(Event::parse(&e.line).unwrap()))
        .collect();
    let half = events.len() / 2;
    let dir = tempfile::tempdir().unwrap();
    let mut pipeline = Pipeline::start(&plan(dir.path())).await.unwrap();
    let input = pipeline.take_feed().unwrap();
    let send = |events: &[Arc<Event>]| {
        let batch: Vec<Incoming> = events.iter().map(|e| Incoming::Event(e.clone())).collect();
        let input = input.clone();
        async move { input.send(batch).await.unwrap() }
    };
    send(&events[..half]).await;
    let store =
        forgecast_embedded::SqliteStore::open_alongside(&dir.path().join("forgecast.sqlite"))
            .unwrap();
    // Until the first half is predicted and its windows decided.
    let opened_first = count_opened(&events[..half]);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let resolved = store
            .resolutions_after(OUTCOME, 0, usize::MAX >> 1)
            .await
            .unwrap()
            .len() as u64;
        let pending = store.pending_count(OUTCOME).await.unwrap();
        let decided = store
            .decisions(OUTCOME)
            .await
            .unwrap()
            .iter()
            .filter(|d| d.trigger == Trigger::Window)
            .count() as u64;
        if resolved + pending == opened_first && decided == resolved / WINDOW {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "first half not done");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let versions = store.versions(OUTCOME).await.unwrap();
    let rejected = versions
        .iter()
        .rfind(|v| v.alias == Some(Alias::Challenger))
        .expect("a rejected challenger")
        .clone();
    let trained_through = rejected.meta.params["trained_through"].as_u64().unwrap();
    store
        .set_alias(OUTCOME, rejected.version, Alias::Champion)
        .await
        .unwrap();
    // Past the pipeline's look at the registry (every 5 s).
    tokio::time::sleep(forgecast::champions::RECHECK + Duration::from_secs(1)).await;
    send(&events[half..]).await;
    drop(input);
    tokio::time::timeout(Duration::from_secs(300), pipeline.drain())
        .await
        .expect("drains");

    let resolved = store
        .resolutions_after(OUTCOME, 0, usize::MAX >> 1)
        .await
        .unwrap();
    let first_half: std::collections::HashSet<String> = events[..half]
        .iter()
        .filter(|e| e.raw.contains("\"action\":\"opened\""))
        .map(|e| e.id.clone())
        .collect();
    let later: Vec<u32> = resolved
        .iter()
        .filter(|r| !first_half.contains(&r.opened.event_id))
        .map(|r| r.opened.version)
        .collect();
    assert!(later.len() > 100, "{} later labels", later.len());
    // The openings of the first batch after the promotion may be predicted before the stage looks again (it
    // looks when it settles, every 16 openings).
    let by_new = later.iter().filter(|v| **v == rejected.version).count();
    assert!(
        by_new + 16 >= later.len(),
        "{by_new} of {} later predictions by v{}",
        later.len(),
        rejected.version
    );
    // Its learner learnt every label after the one its artifact was trained through, and is kept.
    let (_, through) = store
        .learner(&learner_key(rejected.version))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(through, resolved.len() as u64);
    assert!(trained_through < through);
    let decisions = store.decisions(OUTCOME).await.unwrap();
    assert!(
        decisions
            .iter()
            .filter(|d| d.window > resolved.len() as u64 - WINDOW)
            .all(|d| d.version == rejected.version),
        "{decisions:?}"
    );
}
