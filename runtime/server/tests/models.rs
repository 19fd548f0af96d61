//! The model commands as a user runs them: `train` cross-validates on the gold standard's own folds, trains,
//! registers and promotes; `eval` scores the champion on another labelled set; `predict` answers JSON lines and
//! goes on after a bad one; `models` lists, shows and promotes (a roll-back). Then the champion over HTTP, on
//! `/api/models` and on the Open Inference Protocol v2 routes.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use forgecast::http::models::MAX_BODY;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn forgecast(data: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forgecast"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .current_dir(repo())
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(data: &Path, args: &[&str]) -> String {
    let output = forgecast(data, args).output().unwrap();
    assert!(output.status.success(), "{args:?}:\n{}", text(&output));
    text(&output)
}

/// The number after `label` on the line that starts with it.
fn figure(out: &str, label: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in:\n{out}"))
}

#[test]
fn sentiment_is_trained_evaluated_served_from_the_registry_and_rolled_back() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();

    let out = run(data, &["train", "sentiment", "--promote"]);
    for fold in 0..10 {
        assert!(out.contains(&format!("github_test_{fold} ")), "{out}");
    }
    let f1 = figure(&out, "macro-F1 ");
    assert!(f1 >= 0.85, "10-fold macro-F1 {f1} below the target:\n{out}");
    assert!(out.contains("baseline: word-unigram"), "{out}");
    assert!(
        out.contains("Registered sentiment version 1 as champion"),
        "{out}"
    );

    // Texts from other platforms, never seen: well above chance, though below the in-domain figure.
    let out = run(
        data,
        &["eval", "sentiment", "--data", "data/se-sentiment/jira.csv"],
    );
    let cross = figure(&out, "macro-F1 ");
    assert!(cross > 0.6, "on Jira: {cross}\n{out}");
    assert!(
        out.contains("negative") && out.contains("confusion"),
        "{out}"
    );

    let mut child = forgecast(data, &["predict", "sentiment"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"{\"text\": \"Thanks a lot, this works great! :)\"}\nnot json\n{\"text\": \"This is broken again and nobody cares. Terrible.\"}\n{\"txt\": 1}\n",
        )
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        !output.status.success(),
        "bad lines make the exit status say so"
    );
    let answers: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 4, "one answer per line, bad lines included");
    assert_eq!(answers[0]["label"], "positive", "{}", answers[0]);
    assert_eq!(answers[2]["label"], "negative", "{}", answers[2]);
    for answer in [&answers[0], &answers[2]] {
        let sum: f64 = answer["scores"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-6, "{answer}");
    }
    assert!(answers[1]["error"].as_str().unwrap().contains("line 2"));
    assert!(answers[3]["error"].as_str().unwrap().contains("line 4"));

    // A second version that is not promoted stays a challenger; promoting the first again is a roll-back.
    let out = run(data, &["train", "sentiment"]);
    assert!(out.contains("version 2 as challenger"), "{out}");
    let out = run(data, &["models", "show", "sentiment"]);
    assert!(
        out.contains("v1    champion") && out.contains("v2    challenger"),
        "{out}"
    );
    run(data, &["models", "promote", "sentiment", "2"]);
    run(data, &["models", "promote", "sentiment", "1"]);
    let out = run(data, &["models"]);
    assert!(out.contains("champion v1"), "{out}");
    let out = run(data, &["models", "show", "sentiment"]);
    assert!(out.contains("v2    retired"), "{out}");

    let output = forgecast(data, &["models", "promote", "sentiment", "7"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(text(&output).contains("no version 7"), "{}", text(&output));

    moves_a_version_to_another_registry(data);
    serves_the_champion_over_http(data);
}

/// Version 2 exported to a file and imported into an empty registry: the same artifact and figures, a new
/// number there; a damaged file is refused with the reason and registers nothing.
fn moves_a_version_to_another_registry(data: &Path) {
    let other = tempfile::tempdir().unwrap();
    let file = other.path().join("sentiment-v2.json");
    let out = run(
        data,
        &[
            "models",
            "export",
            "sentiment",
            "2",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.contains("Exported sentiment version 2"), "{out}");
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(exported["version"]["version"], 2);

    let target = other.path().join("data");
    let out = run(
        &target,
        &[
            "models",
            "import",
            "--file",
            file.to_str().unwrap(),
            "--promote",
        ],
    );
    assert!(out.contains("as sentiment version 1 (champion)"), "{out}");
    // The line of the exported version: number and role aside, the same date, figures, size and hash.
    let shown = |dir: &Path, version: &str| -> Vec<String> {
        run(dir, &["models", "show", "sentiment"])
            .lines()
            .find(|l| l.starts_with(&format!("{version} ")))
            .expect("the version is listed")
            .split_whitespace()
            .skip(1)
            .filter(|t| !["champion", "challenger", "retired"].contains(t))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(shown(data, "v2"), shown(&target, "v1"));

    let mut damaged = exported.clone();
    damaged["artifact"] = serde_json::json!("AAAA");
    let broken = other.path().join("damaged.json");
    std::fs::write(&broken, damaged.to_string()).unwrap();
    let output = forgecast(
        &target,
        &["models", "import", "--file", broken.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    assert!(text(&output).contains("damaged"), "{}", text(&output));
    let out = run(&target, &["models", "show", "sentiment"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with('v')).count(),
        1,
        "{out}"
    );
}

/// `up` on the same data directory serves the champion, says what is wrong with bad requests, and serves a new
/// champion promoted while it runs.
fn serves_the_champion_over_http(data: &Path) {
    let up = support::start(&support::scripts(), data, &["--source", "none"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = forgecast_github::http::client();
    let post = |name: &str, body: String| {
        let request = http
            .post(format!("{}/api/models/{name}/predict", up.url))
            .header("content-type", "application/json")
            .body(body);
        runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        })
    };
    let (status, body) = post(
        "sentiment",
        r#"{"instances": [{"text": "Thanks, this works great!"}, {"text": "This is broken and terrible."}]}"#.into(),
    );
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (answer["model"].as_str(), answer["version"].as_u64()),
        (Some("sentiment"), Some(1))
    );
    assert_eq!(answer["predictions"][0]["label"], "positive", "{answer}");
    assert_eq!(answer["predictions"][1]["label"], "negative", "{answer}");
    let sum: f64 = answer["predictions"][0]["scores"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-6);

    let (status, body) = post("sentiment", r#"{"instances": [{"txt": 1}]}"#.into());
    assert_eq!(status, 400);
    assert!(body.contains("instances[0]"), "{body}");
    let (status, _) = post("sentiment", "not json".into());
    assert_eq!(status, 400);
    let many = format!(
        r#"{{"instances": [{}]}}"#,
        vec![r#"{"text": "a"}"#; 1001].join(",")
    );
    assert_eq!(post("sentiment", many).0, 413);
    assert_eq!(post("horoscope", r#"{"instances": []}"#.into()).0, 404);

    let listed: serde_json::Value =
        runtime.block_on(support::get_json(&format!("{}/api/models", up.url)));
    // Every registered model is listed (the forecasters and the streaming model register theirs at start too).
    let sentiment = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "sentiment")
        .expect("sentiment is listed");
    assert_eq!(sentiment["champion"], 1);
    assert_eq!(sentiment["versions"].as_array().unwrap().len(), 2);

    // Promoted by another process while `up` runs: served within seconds, without a restart.
    run(data, &["models", "promote", "sentiment", "2"]);
    let started = std::time::Instant::now();
    loop {
        let (status, body) = post("sentiment", r#"{"instances": [{"text": "ok"}]}"#.into());
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        if answer["version"] == 2 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "still {answer}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Sends `body` to `url` (a GET without one); returns the status and the answer's text.
fn send(runtime: &tokio::runtime::Runtime, url: &str, body: Option<String>) -> (u16, String) {
    let http = forgecast_github::http::client();
    let request = match body {
        Some(body) => http
            .post(url)
            .header("content-type", "application/json")
            .body(body),
        None => http.get(url),
    };
    runtime.block_on(async {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    })
}

/// As [`send`], the answer parsed as JSON.
fn send_json(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    body: Option<String>,
) -> (u16, serde_json::Value) {
    let (status, text) = send(runtime, url, body);
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{url} answered {status} with no JSON ({e}): {text}"));
    (status, value)
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The Open Inference Protocol on a first start (which trains and promotes the default, version 1): metadata
/// and readiness, the same labels and scores as `/api/models`, only the outputs asked for, and a status with an
/// `{"error"}` that says what is wrong for each bad request.
#[test]
fn open_inference_protocol_serves_the_champion_and_names_each_bad_request() {
    let data = tempfile::tempdir().unwrap();
    let up = support::start(&support::scripts(), data.path(), &["--source", "none"]);
    let runtime = current_thread();
    let v2 = |path: &str| format!("{}/v2{path}", up.url);

    let (status, server) = send_json(&runtime, &v2(""), None);
    assert_eq!(status, 200);
    assert_eq!(server["name"], "forgecast");
    assert!(server["version"].is_string(), "{server}");
    assert_eq!(server["extensions"], serde_json::json!([]));
    assert_eq!(send(&runtime, &v2("/health/live"), None).0, 200);
    let (status, ready) = send_json(&runtime, &v2("/health/ready"), None);
    assert_eq!((status, &ready["ready"]), (200, &serde_json::json!(true)));
    let (status, ready) = send_json(&runtime, &v2("/models/sentiment/ready"), None);
    assert_eq!(status, 200);
    assert_eq!(
        ready,
        serde_json::json!({"name": "sentiment", "ready": true})
    );

    let (status, metadata) = send_json(&runtime, &v2("/models/sentiment"), None);
    assert_eq!(status, 200, "{metadata}");
    assert_eq!(metadata["name"], "sentiment");
    assert_eq!(metadata["versions"], serde_json::json!(["1"]));
    assert!(metadata["platform"].is_string(), "{metadata}");
    assert_eq!(
        metadata["inputs"],
        serde_json::json!([{"name": "text", "datatype": "BYTES", "shape": [-1]}])
    );
    assert_eq!(
        metadata["outputs"],
        serde_json::json!([
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "scores", "datatype": "FP32", "shape": [-1, 3]},
        ])
    );

    // Two texts: the labels and scores of `/api/models/sentiment/predict` for the same texts.
    let texts = ["Thanks, this works great!", "This is broken and terrible."];
    let (status, predicted) = send_json(
        &runtime,
        &format!("{}/api/models/sentiment/predict", up.url),
        Some(
            serde_json::json!({"instances": [{"text": texts[0]}, {"text": texts[1]}]}).to_string(),
        ),
    );
    assert_eq!(status, 200, "{predicted}");
    let request = serde_json::json!({
        "id": "42",
        "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": texts}],
    });
    let (status, answer) = send_json(
        &runtime,
        &v2("/models/sentiment/infer"),
        Some(request.to_string()),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["model_name"], "sentiment");
    assert_eq!(answer["model_version"], "1");
    assert_eq!(answer["id"], "42");
    let outputs = answer["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2, "{answer}");
    let (label, scores) = (&outputs[0], &outputs[1]);
    assert_eq!(
        (&label["name"], &label["datatype"], &label["shape"]),
        (
            &serde_json::json!("label"),
            &serde_json::json!("BYTES"),
            &serde_json::json!([2])
        )
    );
    for (i, expected) in predicted["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(label["data"][i], expected["label"], "{answer}");
    }
    assert_eq!(label["data"][0], "positive", "{answer}");
    assert_eq!(label["data"][1], "negative", "{answer}");
    assert_eq!(
        (&scores["name"], &scores["datatype"], &scores["shape"]),
        (
            &serde_json::json!("scores"),
            &serde_json::json!("FP32"),
            &serde_json::json!([2, 3])
        )
    );
    let columns: Vec<&str> = scores["parameters"]["labels"]
        .as_str()
        .unwrap()
        .split(',')
        .collect();
    let flat: Vec<f64> = scores["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!((columns.len(), flat.len()), (3, 6), "{answer}");
    for (row, expected) in flat
        .chunks(3)
        .zip(predicted["predictions"].as_array().unwrap())
    {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{answer}");
        for (p, column) in row.iter().zip(&columns) {
            let want = expected["scores"][column].as_f64().unwrap();
            assert!((p - want).abs() < 1e-6, "{column}: {p} against {want}");
        }
    }

    // Only the outputs asked for; the champion's version by name; another version is not served.
    let only_scores = serde_json::json!({
        "inputs": [{"name": "text", "shape": [1, 1], "datatype": "BYTES", "data": [[texts[0]]]}],
        "outputs": [{"name": "scores"}],
    });
    let (status, answer) = send_json(
        &runtime,
        &v2("/models/sentiment/versions/1/infer"),
        Some(only_scores.to_string()),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outputs"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(answer["outputs"][0]["name"], "scores");
    assert_eq!(answer["outputs"][0]["shape"], serde_json::json!([1, 3]));
    assert!(answer.get("id").is_none(), "no id asked, none answered");

    let input = |fields: &str| format!(r#"{{"inputs": [{{"name": "text", {fields}}}]}}"#);
    let big_text = "a".repeat(MAX_BODY + 1);
    let huge_text = "a".repeat(2 * MAX_BODY + 1);
    let many = input(&format!(
        r#""shape": [1001], "datatype": "BYTES", "data": [{}]"#,
        vec![r#""a""#; 1001].join(",")
    ));
    let refusals = [
        (
            "/models/sentiment/infer",
            "not json".to_string(),
            400,
            "not JSON",
        ),
        (
            "/models/sentiment/infer",
            r#"{"inputs": [{"name": "txt", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}"#
                .into(),
            400,
            "the model takes one input, \"text\"",
        ),
        (
            "/models/sentiment/infer",
            r#"{"inputs": []}"#.into(),
            400,
            "no input named \"text\"",
        ),
        (
            "/models/sentiment/infer",
            input(r#""shape": [1], "datatype": "FP32", "data": [0.5]"#),
            400,
            "datatype \"FP32\"; it must be \"BYTES\"",
        ),
        (
            "/models/sentiment/infer",
            input(r#""shape": [3], "datatype": "BYTES", "data": ["a", "b"]"#),
            400,
            "shape [3] (3 elements) but 2 texts",
        ),
        (
            "/models/sentiment/infer",
            r#"{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}],
                "outputs": [{"name": "logits"}]}"#
                .into(),
            400,
            "\"logits\"; the model's outputs are label, scores",
        ),
        ("/models/sentiment/infer", many, 413, "1001 texts"),
        (
            "/models/sentiment/infer",
            input(&format!(
                r#""shape": [1], "datatype": "BYTES", "data": ["{big_text}"]"#
            )),
            413,
            "at most 1048576",
        ),
        (
            "/models/sentiment/infer",
            input(&format!(
                r#""shape": [1], "datatype": "BYTES", "data": ["{huge_text}"]"#
            )),
            413,
            "at most 1048576",
        ),
        (
            "/models/horoscope/infer",
            input(r#""shape": [1], "datatype": "BYTES", "data": ["a"]"#),
            404,
            "no model \"horoscope\"",
        ),
        (
            "/models/sentiment/versions/2/infer",
            input(r#""shape": [1], "datatype": "BYTES", "data": ["a"]"#),
            404,
            "sentiment version 2 is not served: only the champion is, version 1",
        ),
    ];
    for (path, body, expected, says) in refusals {
        let (status, answer) = send_json(&runtime, &v2(path), Some(body));
        let error = answer["error"].as_str().unwrap_or_default();
        assert_eq!(status, expected, "{path}: {answer}");
        assert!(
            error.contains(says),
            "{path}: {error:?} does not say {says:?}"
        );
    }
    for path in [
        "/models/horoscope",
        "/models/horoscope/ready",
        "/models/sentiment/versions/2",
    ] {
        let (status, answer) = send_json(&runtime, &v2(path), None);
        assert_eq!(status, 404, "{path}: {answer}");
        assert!(answer["error"].is_string(), "{path}: {answer}");
    }
}

/// A config file that keeps the model stage off, so that a first start trains nothing.
fn without_models(dir: &Path) -> PathBuf {
    let file = dir.join("forgecast.toml");
    std::fs::write(&file, "models = false\n").unwrap();
    file
}

#[test]
fn without_a_champion_predictions_are_unavailable() {
    let data = tempfile::tempdir().unwrap();
    let config = without_models(data.path());
    let up = support::start(
        &support::scripts(),
        &data.path().join("data"),
        &["--source", "none", "--config", config.to_str().unwrap()],
    );
    let runtime = current_thread();
    let (status, body) = send(
        &runtime,
        &format!("{}/api/models/sentiment/predict", up.url),
        Some(r#"{"instances": [{"text": "hi"}]}"#.into()),
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no champion yet"), "{body}");

    // The protocol says the same: live, not ready, no inference.
    let v2 = |path: &str| format!("{}/v2{path}", up.url);
    assert_eq!(send(&runtime, &v2("/health/live"), None).0, 200);
    let (status, ready) = send_json(&runtime, &v2("/health/ready"), None);
    assert_eq!((status, &ready["ready"]), (503, &serde_json::json!(false)));
    let (status, ready) = send_json(&runtime, &v2("/models/sentiment/ready"), None);
    assert_eq!(status, 503);
    assert_eq!(
        ready,
        serde_json::json!({"name": "sentiment", "ready": false})
    );
    let (status, answer) = send_json(
        &runtime,
        &v2("/models/sentiment/infer"),
        Some(
            r#"{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hi"]}]}"#
                .into(),
        ),
    );
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no champion yet"),
        "{answer}"
    );
}
