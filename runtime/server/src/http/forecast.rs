//! `GET /api/forecast`: where the trends' shares are heading, with 80 % and 95 % intervals.
//!
//! | parameter | values | default |
//! |---|---|---|
//! | `dimension`, `metric`, `granularity` | as `/api/trends` | `language`, `PullRequestEvent`, `quarter` |
//! | `horizon` | periods ahead, 1 to 12 | 4 |
//! | `keys` | comma-separated keys | the `top` largest over the history |
//! | `top` | 1 to 50 | 10 |
//! | `as_of` | the last period the forecast sees (`2021Q4`, `2021-03`, `2021`), so that anyone can check a forecast against what happened | the last complete period with data |
//!
//! The answer: `as_of`, `horizon`, `model` (`name`, `version` of the registered trend model or `null`, `method`)
//! and `series` (`key`, `history` with `periods` and `shares`, `forecast` with `periods`, `shares`, `lower80`,
//! `upper80`, `lower95`, `upper95`), shares in percent. A parameter that cannot be answered is a 400 naming it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use forgecast_core::registry::{Registry, champion};
use forgecast_models::forecast::Settings;
use serde::Deserialize;

use super::Guard;
use super::guard::{bad, refuse};
use super::params::Params;
use crate::forecasts::{ForecastFailure, MAX_HORIZON, MAX_SERIES, ShareQuery, forecast, history};
use crate::pipeline::Shared;

/// The registered name of the trend forecaster (refitted by [`crate::forecasts::keep_trends_fitted`]).
pub const TRENDS_MODEL: &str = "trends";

/// The query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastQuery {
    dimension: Option<String>,
    metric: Option<String>,
    granularity: Option<String>,
    horizon: Option<usize>,
    keys: Option<String>,
    top: Option<usize>,
    as_of: Option<String>,
}

pub(super) async fn trends(
    State(shared): State<Arc<Shared>>,
    Extension(guard): Extension<Arc<Guard>>,
    Params(query): Params<ForecastQuery>,
) -> Response {
    let horizon = query.horizon.unwrap_or(4);
    if !(1..=MAX_HORIZON).contains(&horizon) {
        return bad(format!("horizon {horizon}: use 1 to {MAX_HORIZON}"));
    }
    let top = query.top.unwrap_or(10);
    if !(1..=MAX_SERIES).contains(&top) {
        return bad(format!("top {top}: use 1 to {MAX_SERIES}"));
    }
    let keys: Option<Vec<String>> = query.keys.as_deref().map(|list| {
        list.split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect()
    });
    if keys.as_ref().is_some_and(|k| k.len() > MAX_SERIES) {
        return bad(format!("keys: at most {MAX_SERIES}"));
    }
    let _turn = match guard.heavy_turn().await {
        Ok(turn) => turn,
        Err(refusal) => return refusal.into_response(),
    };
    let share_query = ShareQuery {
        dimension: query.dimension,
        metric: query.metric,
        granularity: query.granularity,
        keys,
        as_of: query.as_of,
        top,
    };
    let (version, settings) = match serving(&shared).await {
        Ok(found) => found,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    };
    let answer = async {
        let history = history(&shared.store, &share_query).await?;
        let series = forecast(&history, &settings, horizon)?;
        let labels = history.labels();
        Ok::<_, ForecastFailure>(serde_json::json!({
            "as_of": labels[labels.len() - 1],
            "horizon": horizon,
            "model": { "name": TRENDS_MODEL, "version": version, "method": settings.method.name() },
            "series": series,
        }))
    };
    match answer.await {
        Ok(answer) => Json(answer).into_response(),
        Err(ForecastFailure::Query(message)) => bad(message),
        Err(ForecastFailure::Model(e)) => bad(e.to_string()),
        Err(ForecastFailure::Store(e)) => {
            refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

/// The trend model's champion version and settings, or the default settings while none is registered.
async fn serving(shared: &Shared) -> Result<(Option<u32>, Settings), String> {
    let versions = shared
        .store
        .versions(TRENDS_MODEL)
        .await
        .map_err(|e| e.to_string())?;
    let Some(current) = champion(&versions) else {
        return Ok((None, Settings::default()));
    };
    let settings =
        serde_json::from_value(current.meta.params["settings"].clone()).unwrap_or_default();
    Ok((Some(current.version), settings))
}

/// The query of `GET /api/forecast/repos`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReposQuery {
    repo: Option<String>,
    horizon: Option<usize>,
    limit: Option<usize>,
}

/// `GET /api/forecast/repos?repo=owner/name&horizon=2`: one repository's stars and their forecast; without
/// `repo`, the repositories of the latest snapshot expected to grow most by the horizon, relative and absolute.
pub(super) async fn repos(
    State(shared): State<Arc<Shared>>,
    Params(query): Params<ReposQuery>,
) -> Response {
    use crate::repo_growth::{GROWTH_MODEL, MAX_HALF_YEARS, bundled, forecast_repo, risers};
    let horizon = query.horizon.unwrap_or(2);
    if !(1..=MAX_HALF_YEARS).contains(&horizon) {
        return bad(format!(
            "horizon {horizon}: use 1 to {MAX_HALF_YEARS} half-years"
        ));
    }
    let limit = query.limit.unwrap_or(10);
    if !(1..=MAX_SERIES).contains(&limit) {
        return bad(format!("limit {limit}: use 1 to {MAX_SERIES}"));
    }
    let growth = match bundled() {
        Ok(growth) => growth,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    };
    let version = match shared.store.versions(GROWTH_MODEL).await {
        Ok(versions) => champion(&versions).map(|v| v.version),
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let model = serde_json::json!({
        "name": GROWTH_MODEL,
        "version": version,
        "method": "damped_drift",
    });
    match query.repo {
        Some(repo) => {
            use forgecast_core::stars::StarStore;
            let fetched = match shared.store.star_points(&repo).await {
                Ok(points) => points,
                Err(e) => {
                    return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
                }
            };
            let work = tokio::task::spawn_blocking(move || {
                forecast_repo(growth, &repo, horizon, &fetched).ok_or(repo)
            });
            match work.await {
                Ok(Ok(found)) => Json(serde_json::json!({
                    "as_of": found.history.periods.last(),
                    "horizon": horizon,
                    "model": model,
                    "series": [found],
                }))
                .into_response(),
                Ok(Err(repo)) => refuse(
                    StatusCode::NOT_FOUND,
                    format!("repo {repo:?}: no snapshot lists it (the bundled snapshots hold the most starred repositories) and the enricher has not fetched it"),
                )
                .into_response(),
                Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
            }
        }
        None => match tokio::task::spawn_blocking(move || risers(growth, horizon, limit)).await {
            Ok((relative, absolute)) => Json(serde_json::json!({
                "as_of": growth.snapshots.last().map(|s| s.date.clone()),
                "horizon": horizon,
                "model": model,
                "relative": relative,
                "absolute": absolute,
            }))
            .into_response(),
            Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
    }
}
