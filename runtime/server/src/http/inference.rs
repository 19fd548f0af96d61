//! The models over the Open Inference Protocol (v2, the REST API KServe and Triton speak), beside
//! `/api/models` ([`models`](super::models)): the same champions, checks and predictions.
//!
//! | route | what |
//! |---|---|
//! | `GET /v2` | server metadata: `{"name": "forgecast", "version", "extensions": []}` |
//! | `GET /v2/health/live` | 200 `{"live": true}` while the process serves |
//! | `GET /v2/health/ready` | 200 `{"ready": true}` when the store accepts writes and every model has a champion, else 503 `{"ready": false}` |
//! | `GET /v2/models/{name}[/versions/{version}]` | model metadata: `name`, `versions` (the champion's, the one served), `platform`, `inputs` (`text`, `BYTES`, `[-1]`), `outputs` (`label`, `BYTES`, `[-1]`; `scores`, `FP32`, `[-1, labels]`) |
//! | `GET /v2/models/{name}[/versions/{version}]/ready` | 200 `{"name", "ready": true}` while a champion serves, 503 `{"name", "ready": false}` before |
//! | `POST /v2/models/{name}[/versions/{version}]/infer` | `{"id"?, "inputs": [{"name": "text", "shape": [N], "datatype": "BYTES", "data": ["…", …]}], "outputs"?: [{"name"}]}` → `{"model_name", "model_version", "id"?, "outputs": [label, scores]}` |
//!
//! An answer has the outputs the request names (both without `outputs`): `label`, `BYTES` of shape `[N]`, and
//! `scores`, `FP32` of shape `[N, labels]` in row-major order, its columns in the order of its
//! `parameters.labels` (comma-separated, the model's own label order); each row sums to 1. The input's data may
//! be flat or nested; the product of its shape must be the number of texts.
//!
//! Errors are `{"error": "…"}`: 400 for a bad body (what is wrong), 413 over [`MAX_BODY`] bytes or
//! [`MAX_INSTANCES`](super::models::MAX_INSTANCES) texts, 404 for an unknown model or a version that is not the one served (only the champion
//! is), 503 while a model has no champion.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use forgecast_models::SentimentModel;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::models::{
    Failure, KNOWN, MAX_BODY, body_limit, check_body, check_count, known, predictions, serving,
};
use crate::pipeline::Shared;

/// The server's name in its metadata.
const SERVER: &str = "forgecast";
/// The platform of the models: the protocol names platforms `<project>_<format>`; a champion is saved as postcard.
const PLATFORM: &str = "forgecast_postcard";
/// The one input: the texts.
const TEXT: &str = "text";
/// The outputs, in the order they are answered when the request names none.
const OUTPUTS: [&str; 2] = [LABEL, SCORES];
/// The output of the most probable labels.
const LABEL: &str = "label";
/// The output of every label's probability.
const SCORES: &str = "scores";

/// The protocol's routes; the infer routes take bodies up to [`body_limit`], as `/api/models/{name}/predict`.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2/models/{name}", get(metadata))
        .route("/v2/models/{name}/versions/{version}", get(metadata))
        .route("/v2/models/{name}/ready", get(ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(ready))
        .route("/v2/models/{name}/infer", post(infer).layer(body_limit()))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(infer).layer(body_limit()),
        )
}

/// The protocol's error object.
fn error((status, message): Failure) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The model, and the version when the path names one.
#[derive(Deserialize)]
struct Target {
    name: String,
    #[serde(default)]
    version: Option<String>,
}

/// The champion that answers for `target`: a 404 for a model this runtime cannot load or a version other than
/// the champion's, a 503 while there is no champion.
async fn served(shared: &Shared, target: &Target) -> Result<(u32, Arc<SentimentModel>), Failure> {
    known(&target.name)?;
    let (version, model) = serving(shared, &target.name).await?;
    match &target.version {
        Some(asked) if *asked != version.to_string() => Err((
            StatusCode::NOT_FOUND,
            format!(
                "{name} version {asked} is not served: only the champion is, version {version}",
                name = target.name
            ),
        )),
        _ => Ok((version, model)),
    }
}

async fn server_metadata() -> Response {
    Json(json!({
        "name": SERVER,
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": [],
    }))
    .into_response()
}

async fn live() -> Response {
    Json(json!({ "live": true })).into_response()
}

async fn server_ready(State(shared): State<Arc<Shared>>) -> Response {
    let mut ready = shared.ready();
    for name in KNOWN {
        ready = ready && serving(&shared, name).await.is_ok();
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready }))).into_response()
}

async fn ready(State(shared): State<Arc<Shared>>, Path(target): Path<Target>) -> Response {
    match served(&shared, &target).await {
        Ok(_) => Json(json!({ "name": target.name, "ready": true })).into_response(),
        Err((StatusCode::SERVICE_UNAVAILABLE, _)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "name": target.name, "ready": false })),
        )
            .into_response(),
        Err(failure) => error(failure),
    }
}

fn tensor(name: &str, datatype: &str, shape: Value) -> Value {
    json!({ "name": name, "datatype": datatype, "shape": shape })
}

async fn metadata(State(shared): State<Arc<Shared>>, Path(target): Path<Target>) -> Response {
    let (version, model) = match served(&shared, &target).await {
        Ok(found) => found,
        Err(failure) => return error(failure),
    };
    Json(json!({
        "name": target.name,
        "versions": [version.to_string()],
        "platform": PLATFORM,
        "inputs": [tensor(TEXT, "BYTES", json!([-1]))],
        "outputs": [
            tensor(LABEL, "BYTES", json!([-1])),
            tensor(SCORES, "FP32", json!([-1, model.labels().len()])),
        ],
    }))
    .into_response()
}

/// What an inference request asks for.
#[derive(Debug, PartialEq)]
struct Asked {
    id: Option<String>,
    texts: Vec<String>,
    outputs: Vec<&'static str>,
}

/// The request in `body`, or what is wrong with it.
fn asked(body: &[u8]) -> Result<Asked, Failure> {
    let bad = |message: String| (StatusCode::BAD_REQUEST, message);
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let Some(request) = value.as_object() else {
        return Err(bad(format!(
            "the body is {}, not an inference request {{\"inputs\": [...]}}",
            kind(&value)
        )));
    };
    let id = match request.get("id") {
        None => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(other) => return Err(bad(format!("\"id\" is {}, not a string", kind(other)))),
    };
    let inputs = request
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad(
                "no \"inputs\" list: expected {\"inputs\": [{\"name\": \"text\", \"shape\": [N], \
             \"datatype\": \"BYTES\", \"data\": [\"…\", …]}]}"
                    .into(),
            )
        })?;
    let mut text = None;
    for (i, input) in inputs.iter().enumerate() {
        match input.get("name").and_then(Value::as_str) {
            None => return Err(bad(format!("inputs[{i}] has no \"name\" string"))),
            Some(TEXT) if text.is_some() => {
                return Err(bad(format!("inputs[{i}] is a second input named \"text\"")));
            }
            Some(TEXT) => text = Some(input),
            Some(other) => {
                return Err(bad(format!(
                    "inputs[{i}] is named {other:?}; the model takes one input, \"text\""
                )));
            }
        }
    }
    let input = text.ok_or_else(|| bad("no input named \"text\"".into()))?;
    match input.get("datatype").and_then(Value::as_str) {
        Some("BYTES") => {}
        Some(other) => {
            return Err(bad(format!(
                "input \"text\" has datatype {other:?}; it must be \"BYTES\""
            )));
        }
        None => {
            return Err(bad(
                "input \"text\" has no \"datatype\" string; it must be \"BYTES\"".into(),
            ));
        }
    }
    let shape = input
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|dims| dims.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
        .ok_or_else(|| {
            bad("input \"text\" has no \"shape\" list of non-negative integers".into())
        })?;
    let mut texts = Vec::new();
    match input.get("data") {
        Some(data @ Value::Array(_)) => flatten(data, &mut texts).map_err(bad)?,
        _ => return Err(bad("input \"text\" has no \"data\" list".into())),
    }
    check_count(texts.len(), "texts in input \"text\"")?;
    let elements = shape.iter().try_fold(1u64, |n, d| n.checked_mul(*d));
    if elements != Some(texts.len() as u64) {
        return Err(bad(format!(
            "input \"text\" has shape {shape:?} ({} elements) but {} texts in its data",
            elements.map_or("too many".to_string(), |n| n.to_string()),
            texts.len()
        )));
    }
    Ok(Asked {
        id,
        texts,
        outputs: requested_outputs(request.get("outputs")).map_err(bad)?,
    })
}

/// Appends the strings of `data` (flat or nested lists) to `texts`, in row-major order.
fn flatten(data: &Value, texts: &mut Vec<String>) -> Result<(), String> {
    match data {
        Value::String(text) => texts.push(text.clone()),
        Value::Array(items) => {
            for item in items {
                flatten(item, texts)?;
            }
        }
        other => {
            return Err(format!(
                "input \"text\": data element {} is {}, not a string",
                texts.len(),
                kind(other)
            ));
        }
    }
    Ok(())
}

/// What a JSON value is, to say in an error without echoing it.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The outputs a request names, in its order; every output when it names none.
fn requested_outputs(outputs: Option<&Value>) -> Result<Vec<&'static str>, String> {
    let Some(outputs) = outputs else {
        return Ok(OUTPUTS.to_vec());
    };
    let list = outputs
        .as_array()
        .ok_or_else(|| format!("\"outputs\" is {}, not a list", kind(outputs)))?;
    if list.is_empty() {
        return Ok(OUTPUTS.to_vec());
    }
    let mut named = Vec::new();
    for (i, output) in list.iter().enumerate() {
        let name = output
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("outputs[{i}] has no \"name\" string"))?;
        let known = OUTPUTS.into_iter().find(|o| *o == name).ok_or_else(|| {
            format!(
                "outputs[{i}] is {name:?}; the model's outputs are {}",
                OUTPUTS.join(", ")
            )
        })?;
        if named.contains(&known) {
            return Err(format!("outputs[{i}] names {name:?} a second time"));
        }
        named.push(known);
    }
    Ok(named)
}

/// An inference response; the protocol names its fields.
#[derive(Serialize)]
struct Inferred<'a> {
    model_name: &'a str,
    model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    outputs: Vec<Output<'a>>,
}

/// One output tensor.
#[derive(Serialize)]
struct Output<'a> {
    name: &'static str,
    datatype: &'static str,
    shape: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Columns>,
    data: Data<'a>,
}

/// The columns of `scores`: the model's labels, comma-separated.
#[derive(Serialize)]
struct Columns {
    labels: String,
}

/// Tensor data, flattened.
#[derive(Serialize)]
#[serde(untagged)]
enum Data<'a> {
    Bytes(Vec<&'a str>),
    Fp32(Vec<f32>),
}

async fn infer(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<Target>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        known(&target.name)?;
        let body = body.map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => (
                e.status(),
                format!(
                    "the body has more than {} bytes; at most {MAX_BODY}",
                    2 * MAX_BODY
                ),
            ),
            status => (status, e.body_text()),
        })?;
        check_body(&body)?;
        let asked = asked(&body)?;
        let (version, model) = served(&shared, &target).await?;
        let answers = predictions(model.clone(), asked.texts).await?;
        let n = answers.len();
        let outputs = asked
            .outputs
            .iter()
            .map(|&output| match output {
                LABEL => Output {
                    name: LABEL,
                    datatype: "BYTES",
                    shape: vec![n],
                    parameters: None,
                    data: Data::Bytes(answers.iter().map(|a| a.label.as_str()).collect()),
                },
                _ => Output {
                    name: SCORES,
                    datatype: "FP32",
                    shape: vec![n, model.labels().len()],
                    parameters: Some(Columns {
                        labels: model.labels().join(","),
                    }),
                    // The model's label order, as the columns say.
                    data: Data::Fp32(
                        answers
                            .iter()
                            .flat_map(|a| a.scores.iter().map(|(_, p)| *p as f32))
                            .collect(),
                    ),
                },
            })
            .collect();
        Ok::<_, Failure>(
            Json(Inferred {
                model_name: &target.name,
                model_version: version.to_string(),
                id: asked.id,
                outputs,
            })
            .into_response(),
        )
    };
    answer.await.unwrap_or_else(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> (StatusCode, String) {
        asked(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_request_gives_its_texts_in_row_major_order_and_the_outputs_it_names() {
        let request = r#"{"id": "7", "inputs": [{"name": "text", "shape": [2, 1], "datatype": "BYTES",
            "data": [["a"], ["b"]]}], "outputs": [{"name": "scores"}]}"#;
        assert_eq!(
            asked(request.as_bytes()).unwrap(),
            Asked {
                id: Some("7".into()),
                texts: vec!["a".into(), "b".into()],
                outputs: vec![SCORES],
            }
        );
        let plain =
            r#"{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}"#;
        assert_eq!(
            asked(plain.as_bytes()).unwrap().outputs,
            vec![LABEL, SCORES]
        );
    }

    #[test]
    fn a_bad_request_is_told_what_is_wrong() {
        let input = |fields: &str| format!(r#"{{"inputs": [{{"name": "text", {fields}}}]}}"#);
        let cases = [
            ("not json".to_string(), "not JSON"),
            ("[1]".to_string(), "not an inference request"),
            (r#"{"inputs": []}"#.to_string(), "no input named \"text\""),
            (
                r#"{"inputs": [{"name": "txt", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}"#.into(),
                "inputs[0] is named \"txt\"",
            ),
            (
                input(r#""shape": [1], "datatype": "FP32", "data": [1.0]"#),
                "datatype \"FP32\"; it must be \"BYTES\"",
            ),
            (
                input(r#""shape": [3], "datatype": "BYTES", "data": ["a", "b"]"#),
                "shape [3] (3 elements) but 2 texts",
            ),
            (
                input(r#""shape": [-1], "datatype": "BYTES", "data": ["a"]"#),
                "no \"shape\" list of non-negative integers",
            ),
            (
                input(r#""shape": [2], "datatype": "BYTES", "data": ["a", 5]"#),
                "data element 1 is a number, not a string",
            ),
            (
                r#"{"id": 3, "inputs": []}"#.into(),
                "\"id\" is a number, not a string",
            ),
            (
                r#"{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}],
                    "outputs": [{"name": "logits"}]}"#
                    .into(),
                "outputs[0] is \"logits\"",
            ),
        ];
        for (body, says) in cases {
            let (status, message) = refused(&body);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {message}");
            assert!(message.contains(says), "{body}: {message}");
        }
        let many = input(&format!(
            r#""shape": [1001], "datatype": "BYTES", "data": [{}]"#,
            vec!["\"a\""; 1001].join(",")
        ));
        assert_eq!(refused(&many).0, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
