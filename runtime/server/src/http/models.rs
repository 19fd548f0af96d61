//! The models over HTTP: the registry as JSON, and predictions by the champion.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/models` | every model: its champion and its versions with their figures |
//! | `GET /api/models/{name}` | one model's versions |
//! | `GET /api/models/{name}/evaluations` | a streaming model's prequential evaluations, per window |
//! | `GET /api/models/{name}/decisions` | the retrain policy's decisions, per window, with their context |
//! | `GET /api/models/{name}/drift` | how far each window's features and predictions moved from the version's first window |
//! | `POST /api/models/{name}/predict` | `{"instances": [{"text": "…"}, …]}` → `{"model", "version", "predictions": [{"label", "scores"}]}` |
//!
//! A bad body is a 400 that says what is wrong, one over [`MAX_BODY`] bytes or [`MAX_INSTANCES`] instances a
//! 413, a model that is not known a 404, a model without a champion yet a 503. The champion comes from
//! [`Champions`](crate::champions::Champions), so a promotion (by any process) serves within seconds, without a
//! restart. The Open Inference Protocol v2 routes ([`inference`](super::inference)) share these checks and the
//! prediction code.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use forgecast_core::registry::{ModelVersion, Registry, champion};
use forgecast_models::{Prediction, SentimentModel};
use serde::Serialize;

use super::guard::refuse;
use crate::backends::AnyStore;
use crate::pipeline::Shared;

/// The models this runtime can load.
pub const KNOWN: [&str; 1] = ["sentiment"];
/// Largest request body.
pub const MAX_BODY: usize = 1 << 20;
/// Most instances in one request.
pub const MAX_INSTANCES: usize = 1000;

/// One model as listed.
#[derive(Serialize)]
struct Listed {
    name: String,
    champion: Option<u32>,
    versions: Vec<ModelVersion>,
}

async fn listed(store: &AnyStore, name: &str) -> Result<Listed, String> {
    let versions = store.versions(name).await.map_err(|e| e.to_string())?;
    Ok(Listed {
        name: name.to_string(),
        champion: champion(&versions).map(|v| v.version),
        versions,
    })
}

fn unavailable(message: String) -> Response {
    refuse(StatusCode::SERVICE_UNAVAILABLE, message).into_response()
}

pub(super) async fn list(State(shared): State<Arc<Shared>>) -> Response {
    let names = match shared.store.model_names().await {
        Ok(names) => names,
        Err(e) => return unavailable(e.to_string()),
    };
    let mut models = Vec::new();
    for name in names {
        match listed(&shared.store, &name).await {
            Ok(model) => models.push(model),
            Err(e) => return unavailable(e),
        }
    }
    Json(models).into_response()
}

pub(super) async fn show(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match listed(&shared.store, &name).await {
        Ok(model) if model.versions.is_empty() && !KNOWN.contains(&name.as_str()) => {
            refuse(StatusCode::NOT_FOUND, format!("no model {name:?}")).into_response()
        }
        Ok(model) => Json(model).into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /api/models/{name}/evaluations`: the prequential evaluations of a streaming model, oldest window first
/// (`version`, `first_seq`, `last_seq`, `from`, `to`, `count`, `positive_rate`, `auc`, `log_loss`, `brier`,
/// `label_delay_days`); an empty list for a model without any.
pub(super) async fn evaluations(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    use forgecast_core::outcomes::OutcomeStore;
    match shared.store.evaluations(&name).await {
        Ok(found) => Json(found).into_response(),
        Err(e) => unavailable(e.to_string()),
    }
}

/// `GET /api/models/{name}/decisions`: what the retrain policy decided after each evaluation window, with the
/// context it was shown (`window`, `at`, `version`, `script`, `retrain`, `reason`, `context`).
pub(super) async fn decisions(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    use forgecast_core::outcomes::OutcomeStore;
    match shared.store.decisions(&name).await {
        Ok(found) => Json(found).into_response(),
        Err(e) => unavailable(e.to_string()),
    }
}

/// `GET /api/models/{name}/drift`: `{"model", "windows": [...]}`, each window's PSI (and KS for numbers) per
/// feature and of the predictions against the serving version's first window, oldest window first.
pub(super) async fn drift(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    use forgecast_core::outcomes::OutcomeStore;
    match shared.store.drift(&name).await {
        Ok(found) => Json(serde_json::json!({ "model": name, "windows": found })).into_response(),
        Err(e) => unavailable(e.to_string()),
    }
}

/// A request refused: the status and what is wrong. `/api/models` answers it as plain text,
/// [`inference`](super::inference) as `{"error": …}`.
pub(super) type Failure = (StatusCode, String);

/// The body limit of the routes that take texts: up to twice [`MAX_BODY`] is read, so that the handler can say
/// how large a body over [`MAX_BODY`] was; past that axum stops reading.
pub(super) fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(2 * MAX_BODY)
}

/// A 404 for a model this runtime cannot load.
pub(super) fn known(name: &str) -> Result<(), Failure> {
    if KNOWN.contains(&name) {
        return Ok(());
    }
    Err((
        StatusCode::NOT_FOUND,
        format!("no model {name:?}; known: {}", KNOWN.join(", ")),
    ))
}

/// A 413 for a body over [`MAX_BODY`] bytes.
pub(super) fn check_body(body: &[u8]) -> Result<(), Failure> {
    if body.len() > MAX_BODY {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body has {} bytes; at most {MAX_BODY}", body.len()),
        ));
    }
    Ok(())
}

/// A 413 for more than [`MAX_INSTANCES`] texts; `what` names them as the request does.
pub(super) fn check_count(count: usize, what: &str) -> Result<(), Failure> {
    if count > MAX_INSTANCES {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{count} {what}; at most {MAX_INSTANCES} per request"),
        ));
    }
    Ok(())
}

/// The champion of `name` and its version, or a 503 while there is none (or the store fails).
pub(super) async fn serving(
    shared: &Shared,
    name: &str,
) -> Result<(u32, Arc<SentimentModel>), Failure> {
    match shared.champions.get(&shared.store, name).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{name} has no champion yet; `forgecast train {name} --promote` trains one"),
        )),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e)),
    }
}

/// The answers of `model` for `texts`, in their order, computed off the async runtime.
pub(super) async fn predictions(
    model: Arc<SentimentModel>,
    texts: Vec<String>,
) -> Result<Vec<Prediction>, Failure> {
    tokio::task::spawn_blocking(move || model.predict_batch(&texts))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// One answer.
#[derive(Serialize)]
struct Predicted {
    label: String,
    scores: BTreeMap<String, f64>,
}

/// The instances of a request body, or what is wrong with it.
fn instances(body: &[u8]) -> Result<Vec<String>, Failure> {
    let bad = |message: String| (StatusCode::BAD_REQUEST, message);
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let list = value["instances"]
        .as_array()
        .ok_or_else(|| bad("expected {\"instances\": [{\"text\": \"…\"}, …]}".into()))?;
    check_count(list.len(), "instances")?;
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            item["text"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(format!("instances[{i}] has no \"text\" string")))
        })
        .collect()
}

pub(super) async fn predict(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let answer = async {
        known(&name)?;
        check_body(&body)?;
        let texts = instances(&body)?;
        let (version, model) = serving(&shared, &name).await?;
        let predictions: Vec<Predicted> = predictions(model, texts)
            .await?
            .into_iter()
            .map(|p| Predicted {
                label: p.label,
                scores: p.scores.into_iter().collect(),
            })
            .collect();
        Ok::<_, Failure>(serde_json::json!({
            "model": name,
            "version": version,
            "predictions": predictions,
        }))
    };
    match answer.await {
        Ok(answer) => Json(answer).into_response(),
        Err((status, message)) => refuse(status, message).into_response(),
    }
}
