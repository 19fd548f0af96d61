//! The HTTP server: the dashboard and its JSON API, health, metrics, script status and live taps of topics.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the dashboard (`assets/` holds its script and styles; nothing is loaded from elsewhere) |
//! | `GET /api/live` | the live view's numbers: events per minute by type, top repositories, languages, organisations, health |
//! | `GET /healthz` | 200 while the process serves |
//! | `GET /readyz` | 200 when the store accepts writes, 503 while it is failing |
//! | `GET /metrics` | Prometheus text |
//! | `GET /api/trends` | shares per language over quarters or years, growth table, overlay of years (see [`trends`]) |
//! | `GET /api/sources` | the GitHub source: rate-limit state (`limit`, `remaining`, `reset`, `paused_until`, `paused_for`), each query's schedule and last outcome, and what repository enrichment did |
//! | `GET /api/scripts` | each script: id, file, status, hash, loaded-at, last refusal |
//! | `GET /api/scripts/reloads` | the last 100 reload decisions, newest first |
//! | `GET /api/tap?topic=T` | server-sent events: every record routed to `T` (`gh.raw.*` prefixes, `*` for all); admin route |
//! | `GET /api/models[/{name}]`, `POST /api/models/{name}/predict` | the registry, and predictions by the champion (see [`models`]) |
//! | `GET /v2`, `/v2/health/{live,ready}`, `/v2/models/{name}[/ready]`, `POST /v2/models/{name}/infer` | the same champions over the Open Inference Protocol v2 (see [`inference`]) |
//! | `GET /api/forecast`, `GET /api/forecast/repos` | where the trends' shares and the most starred repositories' stars are heading, with 80 % and 95 % intervals (see [`forecast`]) |
//! | `GET /api/sentiment[/souring, /recent]` | the sentiment of discussions as the model stage counted it (see [`sentiment`]) |
//!
//! Every route passes [`guard`] first: allowed `Host` names, browser protections on every answer, and for admin
//! routes the admin token (or loopback without one).

mod dashboard;
mod forecast;
pub mod guard;
mod inference;
mod live;
pub mod models;
mod params;
pub mod sentiment;
mod tap;
pub mod trends;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router, middleware};
use forgecast_core::bus::Bus;
use forgecast_core::store::Store;

use crate::pipeline::Shared;

pub use forecast::TRENDS_MODEL;
pub use guard::Guard;
pub use tap::{Tapped, topic_matches};

/// The application router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: admin routes
/// look at the client's address.
pub fn router(shared: Arc<Shared>, guard: Arc<Guard>) -> Router {
    let admin =
        Router::new()
            .route("/api/tap", get(tap::tap))
            .route_layer(middleware::from_fn_with_state(
                guard.clone(),
                guard::admin_only,
            ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/scripts", get(scripts))
        .route("/api/scripts/reloads", get(reloads))
        .route("/api/live", get(live::live))
        .route("/api/sources", get(sources))
        .route("/api/trends", get(trends::trends))
        .route("/api/forecast", get(forecast::trends))
        .route("/api/forecast/repos", get(forecast::repos))
        .route("/api/sentiment", get(sentiment::series))
        .route("/api/sentiment/souring", get(sentiment::souring_repos))
        .route("/api/sentiment/recent", get(sentiment::recent))
        .route("/api/models", get(models::list))
        .route("/api/models/{name}", get(models::show))
        .route("/api/models/{name}/evaluations", get(models::evaluations))
        .route("/api/models/{name}/decisions", get(models::decisions))
        .route("/api/models/{name}/drift", get(models::drift))
        .route(
            "/api/models/{name}/predict",
            axum::routing::post(models::predict).layer(models::body_limit()),
        )
        .merge(inference::routes())
        .route("/", get(dashboard::page))
        .route("/assets/{file}", get(dashboard::asset))
        .merge(admin)
        .layer(Extension(guard.clone()))
        .layer(middleware::from_fn_with_state(guard, guard::check_host))
        .layer(middleware::from_fn(guard::protect))
        .with_state(shared)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store failing; retrying\n").into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    shared.metrics.observe_bus(&shared.bus.stats());
    (
        [(header::CONTENT_TYPE, content_type)],
        shared.metrics.render(),
    )
        .into_response()
}

async fn scripts(State(shared): State<Arc<Shared>>) -> Response {
    let topics = shared.topics.status();
    let list: Vec<serde_json::Value> = shared
        .host
        .statuses()
        .into_iter()
        .map(|status| {
            let mut value = serde_json::to_value(status).unwrap_or_default();
            // The bound on topics is what the routing script can run into: shown beside it.
            if value["id"] == "routing" {
                value["topics"] = serde_json::to_value(topics).unwrap_or_default();
            }
            value
        })
        .collect();
    Json(list).into_response()
}

async fn sources(State(shared): State<Arc<Shared>>) -> Response {
    let github = shared
        .github
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let body = match github {
        Some(view) => {
            let queries = view
                .queries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let enrichment = view
                .enrichment
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            serde_json::json!({ "github": { "rate": view.client.rate(), "queries": queries, "enrichment": enrichment } })
        }
        None => serde_json::json!({ "github": null }),
    };
    Json(body).into_response()
}

async fn reloads(State(shared): State<Arc<Shared>>) -> Response {
    match shared.store.recent_reloads(100).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}
